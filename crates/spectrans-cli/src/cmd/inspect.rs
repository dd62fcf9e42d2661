//! `spectrans inspect --weights W`: tensors, parameter count, per-layer filter statistics.

use std::path::PathBuf;
use std::process::ExitCode;

use spectrans_models::tensor_file::TensorFile;
use spectrans_models::weights::{INV_FREQ_BUFFER, PE_BUFFER};

/// Arguments of `spectrans inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The weights file (safetensors).
    #[arg(long)]
    pub weights: PathBuf,
}

/// Mean, standard deviation, min and max.
fn stats(values: &[f32]) -> (f64, f64, f32, f32) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = values
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    let min = values.iter().copied().fold(f32::INFINITY, f32::min);
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    (mean, var.sqrt(), min, max)
}

/// The number format the file's tensors are stored in: `f32` when every tensor is F32, else
/// the formats found (a weights file of ours is always f32: `--precision` quantizes at load).
fn stored_precision(file: &TensorFile) -> String {
    let mut formats: Vec<String> = file
        .names()
        .iter()
        .filter_map(|n| file.info(n))
        .map(|(dtype, _)| match format!("{dtype:?}").as_str() {
            "F32" => "f32".to_string(),
            "BF16" => "bf16".to_string(),
            "I8" => "int8".to_string(),
            other => other.to_lowercase(),
        })
        .collect();
    formats.sort();
    formats.dedup();
    if formats.is_empty() {
        "none (no tensors)".into()
    } else {
        formats.join(", ")
    }
}

/// Prints what the file holds.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let file = TensorFile::open(&args.weights)?;
    let mut params = 0usize;
    println!("{:<52} {:>6}  shape", "tensor", "dtype");
    for name in file.names() {
        let Some((dtype, shape)) = file.info(&name) else {
            continue;
        };
        let buffer = name == PE_BUFFER || name == INV_FREQ_BUFFER;
        if !buffer {
            params += shape.iter().product::<usize>();
        }
        println!(
            "{:<52} {:>6}  {:?}{}",
            name,
            format!("{dtype:?}"),
            shape,
            if buffer { "  (buffer)" } else { "" }
        );
    }
    println!("parameters: {params}");
    println!("precision: {}", stored_precision(&file));
    let filters: Vec<String> = file
        .names()
        .into_iter()
        .filter(|n| {
            n.ends_with("mixing_layer.filter_real") || n.ends_with("mixing_layer.filter_imag")
        })
        .collect();
    if !filters.is_empty() {
        println!("\nglobal filters (raw parameters, before the activation):");
        println!(
            "{:<40} {:>10} {:>10} {:>10} {:>10}",
            "tensor", "mean", "std", "min", "max"
        );
        for name in filters {
            let t = file.read_f32(&name)?;
            let values: Vec<f32> = t.iter().copied().collect();
            let (mean, std, min, max) = stats(&values);
            println!("{name:<40} {mean:>10.4} {std:>10.4} {min:>10.4} {max:>10.4}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

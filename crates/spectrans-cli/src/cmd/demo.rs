//! `spectrans demo`: the main job on embedded defaults. Trains the example digits model
//! (examples/configs/digits.toml) on the embedded digits, prints test accuracy and a few
//! predictions, then times a forward pass.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use spectrans_config::Config;
use spectrans_models::{Gfnet, ModelInput};
use spectrans_train::data::{Example, digits};
use spectrans_train::{Batch, BatchInput, BatchTargets, TrainOptions, Trainer, argmax};

use crate::cmd::train::{Outputs, train_loop};
use crate::io::PrecisionArgs;

/// The example config, embedded so the demo needs no files.
pub const DIGITS_CONFIG: &str = include_str!("digits.toml");

/// Arguments of `spectrans demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Passes over the training split (30 reach ~96% test accuracy in 20-30 s on 2 cores).
    #[arg(long, default_value_t = 30)]
    pub epochs: usize,
    /// Seed of everything random.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also save the trained weights here (safetensors).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Run the trained model's predictions and timing in this format (training is f32).
    #[command(flatten)]
    pub precision: PrecisionArgs,
}

/// An 8x8 digit as text, darker characters for higher counts.
fn ascii_digit(e: &Example) -> Vec<String> {
    const SHADES: [char; 5] = [' ', '.', ':', '#', '@'];
    e.tokens()
        .unwrap_or_default()
        .get(1..)
        .unwrap_or_default()
        .chunks(8)
        .map(|row| {
            row.iter()
                .map(|&v| SHADES[((v.clamp(0, 16) as usize) * 4).div_ceil(16)])
                .flat_map(|c| [c, c])
                .collect()
        })
        .collect()
}

/// Trains, evaluates, shows predictions, times a forward pass.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = Config::from_toml_str(DIGITS_CONFIG)?;
    let data = digits();
    data.check_fits(&config)?;
    let (train, test) = data.split(0.2, args.seed);
    println!(
        "GFNet on the 8x8 digits: {} train / {} test images as {}-token sequences; hidden {}, {} layers",
        train.len(),
        test.len(),
        data.seq_len,
        config.hidden_dim(),
        config.num_layers()
    );
    let options = TrainOptions {
        epochs: args.epochs,
        seed: args.seed,
        ..TrainOptions::default()
    };
    let steps = train.len().div_ceil(options.batch_size);
    let mut trainer = Trainer::new(Gfnet::new(&config, args.seed)?, options, steps);
    let start = Instant::now();
    let last = train_loop(
        &mut trainer,
        &train,
        &test,
        args.epochs,
        Outputs {
            checkpoint: args.output.as_deref(),
            ..Outputs::default()
        },
    )?;
    let elapsed = start.elapsed().as_secs_f64();
    if let Some(m) = &last {
        println!(
            "test accuracy {:.2}% after {} epochs in {elapsed:.1}s",
            m.eval_metric("eval_accuracy").unwrap_or(f32::NAN) * 100.0,
            m.epoch
        );
    }

    if args.precision.precision != spectrans_models::Precision::F32 {
        args.precision.apply(&mut trainer.model);
        let at = spectrans_train::evaluate(&trainer.model, &test, 256)?;
        println!(
            "test accuracy at {}: {:.2}%",
            args.precision.precision,
            at.metrics.get("eval_accuracy").copied().unwrap_or(f32::NAN) * 100.0
        );
    }
    let model = &trainer.model;
    let shown: Vec<&Example> = test.examples.iter().take(6).collect();
    let batch = Batch::of(&shown, test.seq_len)?;
    let logits = model.forward(batch.model_input(), None)?.into_dyn();
    let labels = match &batch.targets {
        BatchTargets::Classes(t) => t.iter().copied().collect(),
        BatchTargets::Values(_) => Vec::new(),
    };
    let logits = logits.into_dimensionality::<ndarray::Ix2>()?;
    let pictures: Vec<Vec<String>> = shown.iter().map(|e| ascii_digit(e)).collect();
    println!();
    for row in 0..8 {
        let line: Vec<&str> = pictures.iter().map(|p| p[row].as_str()).collect();
        println!("  {}", line.join("   "));
    }
    let verdicts: Vec<String> = logits
        .rows()
        .into_iter()
        .zip(labels.iter())
        .map(|(r, &l)| format!("{:<16}", format!("pred {} (true {l})", argmax(&r.to_vec()))))
        .collect();
    println!("  {}", verdicts.join("   "));

    let all: Vec<&Example> = test.examples.iter().collect();
    let batch = Batch::of(&all, test.seq_len)?;
    let BatchInput::TokenIds(batch_ids) = &batch.input else {
        anyhow::bail!("the digits are token ids");
    };
    let input = ModelInput::TokenIds(batch_ids.view());
    model.forward(input, None)?;
    let mut times = Vec::new();
    let mut shape = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let out = model.forward(input, None)?;
        times.push(t.elapsed().as_secs_f64());
        shape = out.shape().to_vec();
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let t = times[times.len() / 2];
    println!(
        "\nforward: input_ids {:?} -> logits {:?} in {:.2} ms per batch ({:.0} tokens/s, {} threads)",
        batch_ids.shape(),
        shape,
        t * 1e3,
        batch_ids.len() as f64 / t,
        rayon::current_num_threads()
    );
    if let Some(out) = &args.output {
        println!("weights saved to {}", out.display());
    }
    Ok(ExitCode::SUCCESS)
}

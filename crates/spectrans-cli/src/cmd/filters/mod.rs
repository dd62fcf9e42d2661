//! `spectrans filters --config C --weights W --output DIR`: the learned global filter of every
//! block as pictures and numbers.
//!
//! The filter of block `i` is `H = act(Wr) + i act(Wi)`, shape (frequency = sequence_length,
//! channel = hidden_dim): the same tensor as spectrans' `GlobalFilterMixing.get_filter_response()`
//! (the parameters' own length, before any resampling to an input length), computed by
//! [`spectrans_models::filter_response`]; this command draws and writes it. Written into DIR:
//!
//! - `layer_{i}.svg`: heat maps of `|H|` and `arg H` (radians) over (frequency, channel), each
//!   with a colour bar, and `|H|` averaged over channels against frequency. Heat maps larger
//!   than `svg::MAX_CELLS` (128) a side are averaged into blocks (`arg H` by its circular mean), and
//!   the panel title says so, so a 512 x 768 filter stays a file of a few MiB.
//! - `filters.json`: every layer at full resolution (row = frequency): `magnitude`, `phase`,
//!   `mean_magnitude`, `real` = act(Wr), `imag` = act(Wi).
//!
//! Every file is written to a temporary name in DIR and renamed ([`write_atomically`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ndarray::{Array2, ArrayView1, ArrayView2};
use serde::Serialize;
use spectrans_config::write_atomically;
use spectrans_models::Gfnet;
use spectrans_models::filter_response::{FilterResponse, FilterResponseError};
use spectrans_models::memory::Workload;

use crate::io::{MemoryArgs, load_config};

mod svg;

/// Arguments of `spectrans filters`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The TOML model config.
    #[arg(long)]
    pub config: PathBuf,
    /// The weights (safetensors, PyTorch state_dict names).
    #[arg(long)]
    pub weights: PathBuf,
    /// The folder to write `layer_{i}.svg` and `filters.json` into (created when missing).
    #[arg(long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub memory: MemoryArgs,
}

/// What `spectrans filters` can refuse, beyond a bad config or weights file.
#[derive(Debug, thiserror::Error)]
pub enum FiltersError {
    /// The model has no GFNet block, so there is no filter to show.
    #[error("{config}: the model has no GFNet blocks (num_layers = 0): no global filter to show")]
    NoBlocks {
        /// The config the model was built from.
        config: PathBuf,
    },
    /// A layer's filter has no response (mismatched or empty parts).
    #[error(transparent)]
    Response(#[from] FilterResponseError),
    /// Drawing a layer's SVG failed.
    #[error("{path}: could not draw the plot: {message}")]
    Plot {
        /// The SVG being drawn.
        path: PathBuf,
        /// plotters' message.
        message: String,
    },
    /// The output folder could not be created or a file could not be written.
    #[error("{path}: {what}")]
    Io {
        /// The folder or file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The OS reason.
        #[source]
        source: std::io::Error,
    },
    /// `filters.json` could not be serialized.
    #[error("{path}: could not serialize the filters: {source}")]
    Json {
        /// `filters.json`.
        path: PathBuf,
        /// serde_json's reason.
        #[source]
        source: serde_json::Error,
    },
}

/// Loads the model, writes the SVGs and `filters.json`, prints a line per layer.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = load_config(&args.config)?;
    args.memory
        .check(&config, Workload::Parameters, "loading the model")?;
    let model = Gfnet::from_weights(&config, &args.weights)?;
    let layers = model.filter_responses()?;
    if layers.is_empty() {
        return Err(FiltersError::NoBlocks {
            config: args.config.clone(),
        }
        .into());
    }
    std::fs::create_dir_all(&args.output).map_err(|source| FiltersError::Io {
        path: args.output.clone(),
        what: "could not create the output folder",
        source,
    })?;
    let mut written = Vec::new();
    for layer in &layers {
        let (n, d) = layer.shape();
        let (mean, min, max) = summary(&layer.magnitude);
        println!(
            "layer {} ({}, {n} x {d}): |H| mean {mean:.6}  min {min:.6}  max {max:.6}",
            layer.layer,
            layer.activation.as_str()
        );
        let path = args.output.join(format!("layer_{}.svg", layer.layer));
        let svg = svg::render(layer, &path)?;
        write(&path, svg.as_bytes())?;
        written.push(path);
    }
    let path = args.output.join("filters.json");
    let json = filters_json(&layers, &args.config, &args.weights).map_err(|source| {
        FiltersError::Json {
            path: path.clone(),
            source,
        }
    })?;
    write(&path, &json)?;
    written.push(path);
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), FiltersError> {
    write_atomically(path, bytes).map_err(|source| FiltersError::Io {
        path: path.to_path_buf(),
        what: "could not write",
        source,
    })
}

/// Mean, min and max of `values` (non-empty).
fn summary(values: &Array2<f32>) -> (f64, f32, f32) {
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / values.len().max(1) as f64;
    let min = values.iter().copied().fold(f32::INFINITY, f32::min);
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    (mean, min, max)
}

// ---------------------------------------------------------------------------------------------
// filters.json

/// A (rows, cols) view serialized as a list of rows.
struct Rows<'a>(ArrayView2<'a, f32>);
/// One row.
struct Row<'a>(ArrayView1<'a, f32>);

impl Serialize for Rows<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.outer_iter().map(Row))
    }
}

impl Serialize for Row<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter())
    }
}

#[derive(Serialize)]
struct LayerJson<'a> {
    layer: usize,
    activation: &'static str,
    shape: [usize; 2],
    magnitude: Rows<'a>,
    phase: Rows<'a>,
    mean_magnitude: &'a [f32],
    real: Rows<'a>,
    imag: Rows<'a>,
}

#[derive(Serialize)]
struct FiltersJson<'a> {
    config: String,
    weights: String,
    layers: Vec<LayerJson<'a>>,
}

/// `filters.json`'s bytes (compact; floats as JSON numbers, f32's shortest round-trip form).
fn filters_json(
    layers: &[FilterResponse],
    config: &Path,
    weights: &Path,
) -> Result<Vec<u8>, serde_json::Error> {
    let doc = FiltersJson {
        config: config.display().to_string(),
        weights: weights.display().to_string(),
        layers: layers
            .iter()
            .map(|l| {
                let (n, d) = l.shape();
                LayerJson {
                    layer: l.layer,
                    activation: l.activation.as_str(),
                    shape: [n, d],
                    magnitude: Rows(l.magnitude.view()),
                    phase: Rows(l.phase.view()),
                    mean_magnitude: &l.mean_magnitude,
                    real: Rows(l.real.view()),
                    imag: Rows(l.imag.view()),
                }
            })
            .collect(),
    };
    let mut bytes = serde_json::to_vec(&doc)?;
    bytes.push(b'\n');
    Ok(bytes)
}

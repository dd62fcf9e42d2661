//! `spectrans init --config C --seed S --output W`.

use std::path::PathBuf;
use std::process::ExitCode;

use spectrans_layers::parameter_count;
use spectrans_models::Gfnet;
use spectrans_models::memory::Workload;

use crate::io::{MemoryArgs, load_config};

/// Arguments of `spectrans init`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The TOML model config.
    #[arg(long)]
    pub config: PathBuf,
    /// Seed of the initialisation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where to write the weights (safetensors).
    #[arg(long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub memory: MemoryArgs,
}

/// Initialises a model as spectrans does and saves its state_dict.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = load_config(&args.config)?;
    args.memory
        .check(&config, Workload::Parameters, "the model")?;
    let model = Gfnet::new(&config, args.seed)?;
    model.save_weights(&args.output)?;
    println!(
        "wrote {} ({} parameters, seed {})",
        args.output.display(),
        parameter_count(&model),
        args.seed
    );
    Ok(ExitCode::SUCCESS)
}

//! `spectrans forward --config C --weights W --input I --output O`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use spectrans_models::Gfnet;
use spectrans_models::memory::Workload;
use spectrans_models::tensor_file::{OwnedTensor, write_tensors};

use crate::io::{MemoryArgs, PrecisionArgs, load_config, read_inputs};

/// Arguments of `spectrans forward`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The TOML model config.
    #[arg(long)]
    pub config: PathBuf,
    /// The weights (safetensors, PyTorch state_dict names).
    #[arg(long)]
    pub weights: PathBuf,
    /// The inputs: `input_ids` or `inputs_embeds`, optionally `attention_mask`.
    #[arg(long)]
    pub input: PathBuf,
    /// Where to write `output` (F32).
    #[arg(long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub memory: MemoryArgs,
    #[command(flatten)]
    pub precision: PrecisionArgs,
}

/// Runs the model in eval mode and writes its output.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = load_config(&args.config)?;
    let inputs = read_inputs(&args.input)?;
    let (batch, seq_len) = inputs.batch_and_len();
    args.memory.check(
        &config,
        Workload::Inference { batch, seq_len },
        &format!("a forward pass of {batch} x {seq_len} tokens"),
    )?;
    let model = Gfnet::from_weights_with_precision(&config, &args.weights, args.precision.note())?;
    let output = model.forward(
        inputs.model_input()?,
        inputs.mask.as_ref().map(|m| m.view()),
    )?;
    let mut tensors = BTreeMap::new();
    tensors.insert("output".to_string(), OwnedTensor::F32(output.into_dyn()));
    write_tensors(&args.output, &tensors)?;
    Ok(ExitCode::SUCCESS)
}

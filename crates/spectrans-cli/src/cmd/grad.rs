//! `spectrans grad --config C --weights W --input I [--loss ce|mse] --output O`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use ndarray::{ArrayD, IxDyn};
use spectrans_config::OutputType;
use spectrans_layers::{Parameters, TrainContext};
use spectrans_models::Gfnet;
use spectrans_models::memory::Workload;
use spectrans_models::tensor_file::{OwnedTensor, write_tensors};
use spectrans_train::{LossKind, Targets, compute_gradients};

use crate::io::{MemoryArgs, load_config, read_inputs};

/// The loss to differentiate.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Loss {
    /// Mean cross-entropy over every predicted row.
    Ce,
    /// Mean squared error over every element.
    Mse,
}

/// Arguments of `spectrans grad`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The TOML model config.
    #[arg(long)]
    pub config: PathBuf,
    /// The weights (safetensors, PyTorch state_dict names).
    #[arg(long)]
    pub weights: PathBuf,
    /// The inputs plus `targets` (I64 class ids for ce, F32 of the output's shape for mse).
    #[arg(long)]
    pub input: PathBuf,
    /// The loss; default ce for classification/sequence/lm outputs, mse otherwise.
    #[arg(long, value_enum)]
    pub loss: Option<Loss>,
    /// Seed of the dropout masks.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where to write `loss` and `grad.<name>` for every parameter.
    #[arg(long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub memory: MemoryArgs,
}

/// Computes one training-mode step's loss and gradients and writes them.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = load_config(&args.config)?;
    let inputs = read_inputs(&args.input)?;
    let (batch, seq_len) = inputs.batch_and_len();
    args.memory.check(
        &config,
        Workload::Gradients { batch, seq_len },
        &format!("a training step of {batch} x {seq_len} tokens"),
    )?;
    let model = Gfnet::from_weights(&config, &args.weights)?;
    let pooled_or_tokens_with_classes = matches!(
        config.output_type(),
        OutputType::Classification | OutputType::Sequence | OutputType::Lm
    ) && config.head_output_dim().is_some();
    let kind = match args.loss {
        Some(Loss::Ce) => LossKind::CrossEntropy,
        Some(Loss::Mse) => LossKind::Mse,
        None if pooled_or_tokens_with_classes => LossKind::CrossEntropy,
        None => LossKind::Mse,
    };
    if !inputs.file.contains("targets") {
        bail!(
            "{}: `targets` is missing ({})",
            args.input.display(),
            match kind {
                LossKind::CrossEntropy => "I64 class ids, the output's shape minus its last axis",
                LossKind::Mse => "F32 of the output's shape",
            }
        );
    }
    let class_targets;
    let value_targets;
    let targets = match kind {
        LossKind::CrossEntropy => {
            class_targets = inputs.file.read_i64("targets")?;
            Targets::Classes(class_targets.view())
        }
        LossKind::Mse => {
            value_targets = inputs.file.read_f32("targets")?;
            Targets::Values(value_targets.view())
        }
    };
    let mut ctx = TrainContext::new(args.seed, true);
    let (loss, grads) = compute_gradients(
        &model,
        inputs.model_input()?,
        inputs.mask.as_ref().map(|m| m.view()),
        targets,
        kind,
        &mut ctx,
    )?;
    let mut tensors = BTreeMap::new();
    tensors.insert(
        "loss".to_string(),
        OwnedTensor::F32(ArrayD::from_elem(IxDyn(&[1]), loss)),
    );
    grads.visit("", &mut |name, g| {
        if model.is_trainable(name) {
            tensors.insert(format!("grad.{name}"), OwnedTensor::F32(g.to_owned()));
        }
    });
    write_tensors(&args.output, &tensors)?;
    Ok(ExitCode::SUCCESS)
}

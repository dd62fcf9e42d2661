//! Reading model inputs and configs for the subcommands.

use std::path::Path;

use anyhow::{Context, bail};
use ndarray::{Array2, Array3, ArrayD, Ix2, Ix3};
use spectrans_config::Config;
use spectrans_models::memory::{MemoryBudget, Workload, parse_size};
use spectrans_models::tensor_file::TensorFile;
use spectrans_models::{Gfnet, ModelInput, Precision};

/// The tensors an input file may hold.
const INPUT_NAMES: [&str; 4] = ["input_ids", "inputs_embeds", "attention_mask", "targets"];

/// Inputs read from a safetensors file.
#[derive(Debug)]
pub struct Inputs {
    /// `input_ids` (B, N).
    pub ids: Option<Array2<i64>>,
    /// `inputs_embeds` (B, N, D).
    pub embeds: Option<Array3<f32>>,
    /// `attention_mask` (B, N), nonzero = keep.
    pub mask: Option<Array2<bool>>,
    /// The open file, for `targets`.
    pub file: TensorFile,
}

impl Inputs {
    /// (B, N) of the inputs given ((0, 0) when there are none).
    pub fn batch_and_len(&self) -> (usize, usize) {
        match (&self.embeds, &self.ids) {
            (Some(e), _) => (e.dim().0, e.dim().1),
            (None, Some(ids)) => ids.dim(),
            (None, None) => (0, 0),
        }
    }

    /// The model input: `inputs_embeds` when given (as spectrans prefers), else `input_ids`.
    pub fn model_input(&self) -> anyhow::Result<ModelInput<'_>> {
        match (&self.embeds, &self.ids) {
            (Some(e), _) => Ok(ModelInput::Embeddings(e.view())),
            (None, Some(ids)) => Ok(ModelInput::TokenIds(ids.view())),
            (None, None) => bail!(
                "{}: no input: expected `input_ids` (I64/I32, (B, N)) or `inputs_embeds` (F32, (B, N, D))",
                self.file.path().display()
            ),
        }
    }
}

fn rank<T, D: ndarray::Dimension>(
    file: &TensorFile,
    name: &str,
    a: ArrayD<T>,
    expected: &str,
) -> anyhow::Result<ndarray::Array<T, D>> {
    let shape = a.shape().to_vec();
    a.into_dimensionality::<D>().map_err(|_| {
        anyhow::anyhow!(
            "{}: {name}: expected shape {expected}, found {shape:?}",
            file.path().display()
        )
    })
}

/// Reads `input_ids`, `inputs_embeds` and `attention_mask`; rejects unknown tensor names.
pub fn read_inputs(path: &Path) -> anyhow::Result<Inputs> {
    let file = TensorFile::open(path)?;
    for name in file.names() {
        if !INPUT_NAMES.contains(&name.as_str()) {
            bail!(
                "{}: unexpected tensor `{name}`; an input file holds {}",
                path.display(),
                INPUT_NAMES.join(", ")
            );
        }
    }
    let ids = if file.contains("input_ids") {
        Some(rank::<_, Ix2>(
            &file,
            "input_ids",
            file.read_i64("input_ids")?,
            "(B, N)",
        )?)
    } else {
        None
    };
    let embeds = if file.contains("inputs_embeds") {
        Some(rank::<_, Ix3>(
            &file,
            "inputs_embeds",
            file.read_f32("inputs_embeds")?,
            "(B, N, D)",
        )?)
    } else {
        None
    };
    let mask = if file.contains("attention_mask") {
        Some(rank::<_, Ix2>(
            &file,
            "attention_mask",
            file.read_mask("attention_mask")?,
            "(B, N)",
        )?)
    } else {
        None
    };
    Ok(Inputs {
        ids,
        embeds,
        mask,
        file,
    })
}

/// `--max-memory`, for the subcommands that build a model or run a batch.
#[derive(Debug, clap::Args)]
pub struct MemoryArgs {
    /// Memory the command may use (bytes, or with a unit: 512M, 8G). Default:
    /// $SPECTRANS_MAX_MEMORY, else MemAvailable of /proc/meminfo. A model or batch estimated
    /// to need more stops with an error before anything is allocated.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_memory: Option<u64>,
}

impl MemoryArgs {
    /// The budget: `--max-memory`, else `$SPECTRANS_MAX_MEMORY`, else MemAvailable.
    pub fn budget(&self) -> anyhow::Result<MemoryBudget> {
        Ok(MemoryBudget::from_env(self.max_memory)?)
    }

    /// Refuses `workload` when its estimate exceeds the budget; the error names `what`.
    pub fn check(&self, config: &Config, workload: Workload, what: &str) -> anyhow::Result<()> {
        Ok(self.budget()?.check_fits(config, workload, what)?)
    }
}

/// `--precision`, for the subcommands that run a model in eval mode.
#[derive(Debug, clap::Args)]
pub struct PrecisionArgs {
    /// Number format of the linear layers: f32 (the parity path), bf16 or int8 (dynamic
    /// quantization: weights per output channel, activations per row). Embedding, LayerNorm
    /// and the global filter stay in f32.
    #[arg(long, default_value = "f32", value_name = "f32|bf16|int8")]
    pub precision: Precision,
}

impl PrecisionArgs {
    /// Sets `model` to `--precision` ([`PrecisionArgs::note`] first).
    pub fn apply(&self, model: &mut Gfnet) {
        self.note();
        model.set_precision(self.precision);
    }

    /// Says once on stderr when the format has no fast kernel on this CPU (bf16 without
    /// AVX-512 BF16; int8 without AVX2): the result has the format's accuracy, but not its
    /// speed. Returns the precision, for the constructors that build or load a model in it
    /// ([`Gfnet::with_precision`]).
    pub fn note(&self) -> Precision {
        match self.precision {
            Precision::F32 => {}
            Precision::Bf16 if spectrans_layers::linalg::has_bf16_kernel() => {}
            Precision::Bf16 => eprintln!(
                "note: --precision bf16 holds the weights in bf16 (half the memory), but this \
                 CPU has no AVX-512 BF16: the values are widened to f32 and summed with the \
                 f32 kernel, at about f32 speed"
            ),
            Precision::Int8 if !spectrans_layers::linalg::has_int8_kernel() => eprintln!(
                "note: --precision int8 runs the portable integer kernel on this CPU (no \
                 AVX2): the accuracy of int8, not its speed"
            ),
            Precision::Int8 => {}
        }
        self.precision
    }
}

/// Loads and validates a config, printing every violation.
pub fn load_config(path: &Path) -> anyhow::Result<Config> {
    Config::load(path).with_context(|| format!("invalid config {}", path.display()))
}

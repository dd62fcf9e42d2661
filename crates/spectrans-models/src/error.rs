//! The error type of the models crate.

use spectrans_layers::LayerError;

use crate::memory::MemoryError;
use crate::tensor_file::TensorFileError;

/// One thing wrong with a weights file (or a training state file) against a model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WeightProblem {
    /// The model has a parameter the file lacks.
    #[error("missing tensor `{name}` of shape {shape:?}")]
    Missing {
        /// The parameter's PyTorch name.
        name: String,
        /// Its shape in the model.
        shape: Vec<usize>,
    },
    /// The file has a tensor the model does not.
    #[error("unexpected tensor `{name}`")]
    Unexpected {
        /// The tensor's name in the file.
        name: String,
    },
    /// A tensor (a parameter or a buffer) has another shape than the model's.
    #[error("{} `{name}`: expected shape {expected:?}, found {found:?}", if *.buffer { "buffer" } else { "tensor" })]
    Shape {
        /// The tensor's name.
        name: String,
        /// Whether it is a buffer (a fixed table) rather than a parameter.
        buffer: bool,
        /// The model's shape.
        expected: Vec<usize>,
        /// The file's shape.
        found: Vec<usize>,
    },
    /// A parameter holds NaN or infinity.
    #[error("tensor `{name}` holds a non-finite value at flat index {index}")]
    NonFinite {
        /// The parameter's name.
        name: String,
        /// The first bad element, flat (row-major) index.
        index: usize,
    },
    /// A buffer differs from the table the config defines.
    #[error("buffer `{name}` differs from the table this config defines (max |diff| {max_diff:e})")]
    BufferDiffers {
        /// The buffer's name.
        name: String,
        /// The largest absolute difference.
        max_diff: f32,
    },
    /// A tensor could not be read as f32 (its dtype, or its bytes).
    #[error("{0}")]
    Unreadable(String),
    /// A training state's metadata or counters do not fit this run.
    #[error("{0}")]
    TrainingState(String),
}

/// The problems as one line, `; `-separated.
fn join_problems(problems: &[WeightProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Everything a model can refuse. Each variant names the thing and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Neither `input_ids` nor `inputs_embeds` was given.
    #[error("no input: give input_ids (B, N) or inputs_embeds (B, N, D)")]
    NoInput,
    /// `input_ids` given to a model without an embedding (no vocab_size).
    #[error(
        "input_ids given, but the model has no embedding layer (vocab_size is not set): give inputs_embeds (B, N, {hidden_dim})"
    )]
    NoEmbedding {
        /// The model's hidden size.
        hidden_dim: usize,
    },
    /// A tensor has the wrong shape.
    #[error("{what}: expected shape {expected}, found {found:?}")]
    Shape {
        /// Which tensor.
        what: &'static str,
        /// The expected shape, in words.
        expected: String,
        /// The shape given.
        found: Vec<usize>,
    },
    /// An attention mask row keeps no token.
    #[error("attention_mask row {row} is all zeros: every row must keep at least one token")]
    EmptyMaskRow {
        /// The batch row.
        row: usize,
    },
    /// The input holds NaN or infinity.
    #[error("{what} contains a non-finite value (NaN or infinity) at index {index:?}")]
    NonFinite {
        /// Which tensor.
        what: &'static str,
        /// Where.
        index: Vec<usize>,
    },
    /// The config asks for something this model cannot build.
    #[error("config: {0}")]
    Config(String),
    /// A training forward on a model set to a reduced precision.
    #[error(
        "training runs in f32, but this model is set to {precision}: set_precision(Precision::F32) first"
    )]
    TrainingPrecision {
        /// The precision the model is set to.
        precision: spectrans_layers::Precision,
    },
    /// Settings that fail the config's validation (from [`crate::GfnetBuilder`]).
    #[error(transparent)]
    InvalidConfig(#[from] spectrans_config::ConfigError),
    /// The weights (or a training state) do not match the model; every problem is listed.
    #[error("weights {path}: {}", join_problems(.problems))]
    Weights {
        /// The file.
        path: String,
        /// Every missing, unexpected, misshapen or unreadable tensor, in the order found.
        problems: Vec<WeightProblem>,
    },
    /// A layer refused.
    #[error(transparent)]
    Layer(#[from] LayerError),
    /// A file could not be read or written.
    #[error(transparent)]
    File(#[from] TensorFileError),
    /// The model or the batch would not fit in memory.
    #[error(transparent)]
    Memory(#[from] MemoryError),
    /// A reshape failed (a bug if it ever shows: shapes are checked before).
    #[error("internal reshape: {0}")]
    Reshape(#[from] ndarray::ShapeError),
}

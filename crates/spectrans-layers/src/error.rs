//! The one error type of this crate.

use spectrans_fft::FftError;
use spectrans_linalg::LinalgError;

/// Everything a layer can refuse. Every variant names the thing and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// A tensor (input, gradient or parameter) has the wrong shape.
    #[error("{what}: expected shape {expected}, found {found:?}")]
    Shape {
        /// Which tensor, e.g. "GlobalFilter input".
        what: String,
        /// The expected shape, in words, e.g. "(batch, seq, 64)".
        expected: String,
        /// The shape that was given.
        found: Vec<usize>,
    },
    /// A token id is negative or not below the vocabulary size.
    #[error(
        "token id {id} at position {position:?} is out of range: expected 0 <= id < {vocab_size}"
    )]
    TokenOutOfRange {
        /// The offending id.
        id: i64,
        /// Its (batch, position) index in the id tensor.
        position: (usize, usize),
        /// The number of rows of the embedding table.
        vocab_size: usize,
    },
    /// The input is longer than a table-based positional encoding has rows.
    #[error("sequence length {seq_len} exceeds the {what} table length {max_len}")]
    SequenceTooLong {
        /// Which table, e.g. "sinusoidal positional encoding".
        what: &'static str,
        /// The input's sequence length N.
        seq_len: usize,
        /// The table's sequence length S.
        max_len: usize,
    },
    /// Rotary encoding needs an even hidden dimension.
    #[error("rotary positional encoding needs an even hidden dimension, got {hidden_dim}")]
    OddRotaryDim {
        /// The hidden dimension that was given.
        hidden_dim: usize,
    },
    /// A constructor argument is outside its domain (e.g. dropout p outside [0, 1]).
    #[error("{what} = {value} is invalid: expected {expected}")]
    InvalidArgument {
        /// The argument's name.
        what: &'static str,
        /// The value that was given, printed.
        value: String,
        /// The rule it breaks.
        expected: &'static str,
    },
    /// A parameter name that the layer does not have.
    #[error("unknown parameter {name:?}")]
    UnknownParameter {
        /// The full (prefixed) name.
        name: String,
    },
    /// The FFT crate refused.
    #[error(transparent)]
    Fft(#[from] FftError),
}

/// A product's refusal is a shape error of the operand it names, as any other.
impl From<LinalgError> for LayerError {
    fn from(e: LinalgError) -> Self {
        match e {
            LinalgError::Shape {
                what,
                expected,
                found,
            } => LayerError::Shape {
                what,
                expected,
                found,
            },
        }
    }
}

/// Builds a [`LayerError::Shape`] from a tensor's shape.
pub(crate) fn shape_error(what: &str, expected: String, found: &[usize]) -> LayerError {
    LayerError::Shape {
        what: what.to_string(),
        expected,
        found: found.to_vec(),
    }
}

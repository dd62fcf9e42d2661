//! The one error type of this crate.

/// Everything a product or a quantizer can refuse. Every variant names the operand and what
/// was expected of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinalgError {
    /// An operand (left, right, destination, bias, scale) has the wrong shape or layout.
    #[error("{what}: expected shape {expected}, found {found:?}")]
    Shape {
        /// Which operand, e.g. "matmul destination".
        what: String,
        /// The expected shape, in words, e.g. "(4, 8)".
        expected: String,
        /// The shape that was given.
        found: Vec<usize>,
    },
}

/// Builds a [`LinalgError::Shape`] from an operand's shape.
pub(crate) fn shape_error(what: &str, expected: String, found: &[usize]) -> LinalgError {
    LinalgError::Shape {
        what: what.to_string(),
        expected,
        found: found.to_vec(),
    }
}

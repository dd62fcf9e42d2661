//! Errors of the FFT routines.

/// Everything that can go wrong when planning or running a transform.
#[derive(Debug, thiserror::Error)]
pub enum FftError {
    /// A transform length of zero was requested.
    #[error("transform length must be at least 1, got 0")]
    ZeroLength,
    /// An array argument does not have the shape the transform needs.
    #[error("`{argument}` has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        /// Name of the offending argument, as in the function signature.
        argument: &'static str,
        /// The shape the transform needs.
        expected: Vec<usize>,
        /// The shape that was passed.
        found: Vec<usize>,
    },
    /// A normalisation name that is not `backward`, `forward` or `ortho`.
    #[error("unknown FFT normalisation {value:?}, expected \"backward\", \"forward\" or \"ortho\"")]
    InvalidNorm {
        /// The rejected name.
        value: String,
    },
    /// The underlying FFT library rejected a call (an internal invariant broke).
    #[error("FFT backend failed: {message}")]
    Backend {
        /// What the backend reported.
        message: String,
    },
}

impl FftError {
    pub(crate) fn backend(err: impl std::fmt::Display) -> Self {
        Self::Backend {
            message: err.to_string(),
        }
    }
}

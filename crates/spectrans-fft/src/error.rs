//! Errors of the FFT routines.

/// Everything that can go wrong when planning or running a transform.
#[derive(Debug, thiserror::Error)]
pub enum FftError {
    /// A transform length of zero was requested.
    #[error("transform length must be at least 1, got 0")]
    ZeroLength,
    /// An array argument does not have the shape the transform needs.
    #[error("{argument}: expected shape {expected:?}, found {found:?}")]
    ShapeMismatch {
        /// Name of the offending argument, as in the function signature.
        argument: &'static str,
        /// The shape the transform needs.
        expected: Vec<usize>,
        /// The shape that was passed.
        found: Vec<usize>,
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

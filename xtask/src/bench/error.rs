//! What can go wrong in `cargo xtask bench`.

use std::path::PathBuf;

/// An error of the model benchmark, naming the thing and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A command-line argument was wrong.
    #[error("bench: {0}")]
    Usage(String),
    /// A program could not be started.
    #[error("could not run `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    /// A program ran and failed.
    #[error("`{command}` failed ({status}): {stderr_tail}")]
    Failed {
        command: String,
        status: std::process::ExitStatus,
        stderr_tail: String,
    },
    /// A benchmark process printed no JSON line, or a JSON line without the expected fields.
    #[error("bench line: {0}")]
    BadLine(String),
    /// A PyTorch variant ran and reported that it cannot do this work (the script's `error`).
    #[error("{0}")]
    VariantFailed(String),
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A server under test did not start, or died during the load test.
    #[error("bench serve: {0}")]
    Server(String),
    /// The load generator could not run.
    #[error(transparent)]
    Load(#[from] crate::bench::serve::load::LoadError),
    /// Drawing the chart failed.
    #[error("plot {}: {message}", path.display())]
    Plot { path: PathBuf, message: String },
}

impl BenchError {
    /// An [`BenchError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}

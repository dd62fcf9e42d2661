//! Our typed errors as Python exceptions, and the guard that keeps Rust panics from crossing
//! into Python.
//!
//! | Rust error | Python exception |
//! | --- | --- |
//! | a file that cannot be read or written ([`ConfigError::Io`], [`TensorFileError::Io`]) | `OSError` (`FileNotFoundError`, `PermissionError` by the OS error) |
//! | the model or the batch would not fit in memory ([`MemoryError`]) | `MemoryError` |
//! | a bug (a panic, an internal reshape) | `RuntimeError` |
//! | everything else: a bad config, bad weights, bad inputs | `ValueError` |
//!
//! The message is always ours (`Display`), with the OS reason appended for file errors.

use std::panic::{AssertUnwindSafe, catch_unwind};

use pyo3::PyErr;
use pyo3::exceptions::{
    PyFileExistsError, PyFileNotFoundError, PyIsADirectoryError, PyMemoryError, PyOSError,
    PyPermissionError, PyRuntimeError, PyValueError,
};
use spectrans_config::ConfigError;
use spectrans_models::ModelError;
use spectrans_models::memory::MemoryError;
use spectrans_models::tensor_file::TensorFileError;

/// A file error: `path: reason`, as the OS-specific subclass of `OSError` where one fits.
pub fn io_error(path: &std::path::Path, source: &std::io::Error) -> PyErr {
    let message = format!("{}: {source}", path.display());
    match source.kind() {
        std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(message),
        std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(message),
        std::io::ErrorKind::AlreadyExists => PyFileExistsError::new_err(message),
        std::io::ErrorKind::IsADirectory => PyIsADirectoryError::new_err(message),
        _ => PyOSError::new_err(message),
    }
}

/// A config error: `OSError` for a file that cannot be read, else `ValueError` with every
/// violation (one per line, each naming its field).
pub fn config_error(err: ConfigError) -> PyErr {
    match &err {
        ConfigError::Io { path, source } => io_error(path, source),
        ConfigError::Syntax { .. } | ConfigError::Invalid(_) => {
            PyValueError::new_err(format!("invalid config: {err}"))
        }
    }
}

/// A safetensors file error: `OSError` when the file cannot be opened or written, else
/// `ValueError` (corrupt, a missing tensor, a dtype we cannot read).
pub fn tensor_file_error(err: TensorFileError) -> PyErr {
    match &err {
        TensorFileError::Io { path, source } => io_error(path, source),
        _ => PyValueError::new_err(err.to_string()),
    }
}

/// A memory guard refusal: `MemoryError` (a limit that is not a size: `ValueError`).
pub fn memory_error(err: MemoryError) -> PyErr {
    match err {
        MemoryError::TooLarge { .. } => PyMemoryError::new_err(err.to_string()),
        MemoryError::BadLimit { .. } => PyValueError::new_err(err.to_string()),
    }
}

/// A model error, mapped as the module docs say.
pub fn model_error(err: ModelError) -> PyErr {
    match err {
        ModelError::File(e) => tensor_file_error(e),
        ModelError::InvalidConfig(e) => config_error(e),
        ModelError::Memory(e) => memory_error(e),
        ModelError::Reshape(e) => {
            PyRuntimeError::new_err(format!("internal error (please report it): reshape: {e}"))
        }
        other => PyValueError::new_err(other.to_string()),
    }
}

/// Runs `f`, turning a panic into `RuntimeError` so that none crosses into Python.
pub fn no_panic<T>(what: &str, f: impl FnOnce() -> Result<T, PyErr>) -> Result<T, PyErr> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => Err(PyRuntimeError::new_err(panic_message(
            what,
            payload.as_ref(),
        ))),
    }
}

/// Like [`no_panic`] for work that holds no Python object (it runs without the GIL): the
/// panic comes back as a message, to be raised once the GIL is held again.
pub fn catch_panic<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| panic_message(what, payload.as_ref()))
}

fn panic_message(what: &str, payload: &(dyn std::any::Any + Send)) -> String {
    let detail = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_string());
    format!("internal error in {what} (a Rust panic; please report it): {detail}")
}

//! The rayon thread pools the forward passes run on.
//!
//! A model built with `threads=n` owns a pool of `n` threads. Otherwise it uses the pool set by
//! `spectrans_rs.set_threads(n)`, and without one rayon's global pool (one thread per core,
//! or `RAYON_NUM_THREADS`).

use std::sync::{Arc, Mutex, PoisonError};

use pyo3::PyResult;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use rayon::ThreadPool;

/// The pool `set_threads` installed, if any.
static MODULE_POOL: Mutex<Option<Arc<ThreadPool>>> = Mutex::new(None);

/// A pool of `threads` threads (at least one).
pub fn build(threads: usize) -> PyResult<Arc<ThreadPool>> {
    if threads == 0 {
        return Err(PyValueError::new_err(
            "threads: got 0; must be >= 1 (or None for the default pool)",
        ));
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("spectrans-rs-{i}"))
        .build()
        .map(Arc::new)
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start {threads} threads: {e}")))
}

/// Sets (or with `None` clears) the pool of models built without `threads=`.
pub fn set_module_pool(pool: Option<Arc<ThreadPool>>) {
    *MODULE_POOL.lock().unwrap_or_else(PoisonError::into_inner) = pool;
}

/// The pool of models built without `threads=`, when `set_threads` gave one.
pub fn module_pool() -> Option<Arc<ThreadPool>> {
    MODULE_POOL
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// How many threads a forward on `pool` (or, without one, the default) uses.
pub fn threads_of(pool: Option<&ThreadPool>) -> usize {
    match pool {
        Some(p) => p.current_num_threads(),
        None => module_pool()
            .map(|p| p.current_num_threads())
            .unwrap_or_else(rayon::current_num_threads),
    }
}

/// Runs `f` on `pool`, else on the module pool, else on rayon's global pool.
pub fn run<T: Send>(pool: Option<&Arc<ThreadPool>>, f: impl FnOnce() -> T + Send) -> T {
    match pool.cloned().or_else(module_pool) {
        Some(p) => p.install(f),
        None => f(),
    }
}

//! Where a model's work runs: on the rayon pool, handed over once per call.

/// Runs `f` on a worker of the current rayon pool: directly when called from one of its
/// threads, else on the global pool, handing over once (the caller waits for the answer).
///
/// A forward has several parallel sections per layer. Called from outside the pool, each of
/// them would hand its work to the pool and put the caller to sleep until it is done, a
/// wake-up and a sleep per section; run from inside the pool, the sections are plain
/// `join`s. At batch 1, n = 128 (small config) that was 30 % of a forward at 1 thread.
///
/// ```
/// let on_worker = spectrans_models::on_pool(|| rayon::current_thread_index().is_some());
/// assert!(on_worker);
/// ```
pub fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        f()
    } else {
        rayon::scope(|_| f())
    }
}

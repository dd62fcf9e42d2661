//! The workspace's one scratch strategy: thread-local buffers, grown on demand, reused once warm.

use std::cell::RefCell;
use std::thread::LocalKey;

/// Runs `job` with the calling thread's value of `key`: **the workspace's one scratch
/// strategy.**
///
/// Every temporary buffer of the GEMM, the FFT, the global filter and the feed-forward network
/// lives in a thread-local, grown on demand and never shrunk, so a warm thread allocates
/// nothing and a model's scratch does not grow with its depth (layers on one thread share it).
/// A call that re-enters on the same thread while the value is borrowed (a rayon task run on a
/// thread that waits inside `job`) gets a fresh `T::default()` instead of waiting or panicking.
///
/// ```
/// use std::cell::RefCell;
/// thread_local! { static BUFFER: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) }; }
/// let len = spectrans_linalg::with_thread_local(&BUFFER, |buffer| {
///     buffer.resize(16, 0.0);
///     buffer.len()
/// });
/// assert_eq!(len, 16);
/// ```
pub fn with_thread_local<T: Default + 'static, R>(
    key: &'static LocalKey<RefCell<T>>,
    job: impl FnOnce(&mut T) -> R,
) -> R {
    key.with(|cell| match cell.try_borrow_mut() {
        Ok(mut value) => job(&mut value),
        Err(_) => job(&mut T::default()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! { static BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) }; }

    #[test]
    fn a_reentrant_call_gets_a_fresh_value_and_the_outer_one_keeps_its_own() {
        with_thread_local(&BUF, |outer| {
            outer.push(1);
            let inner_len = with_thread_local(&BUF, |inner| {
                inner.push(2);
                inner.len()
            });
            assert_eq!(inner_len, 1);
            assert_eq!(outer.as_slice(), &[1]);
        });
        assert_eq!(with_thread_local(&BUF, |b| b.clone()), vec![1]);
    }
}

//! Allocator settings for the `spectrans` process.
//!
//! A training step allocates and frees activations of tens of MiB each time (a (B·N, 4D)
//! hidden layer is 16 MiB at the small benchmark config). glibc serves blocks that large with
//! a fresh `mmap` and gives them back with `munmap` on free, so every step pays the kernel
//! to fault in and zero the same pages again (about 8 % of a step in `perf`). Raising the mmap
//! threshold to glibc's maximum (32 MiB) and the trim threshold above it keeps freed blocks
//! in the heap for the next step to reuse. The peak resident memory does not change: the
//! blocks kept are the ones the next step needs.

/// glibc's upper bound for `M_MMAP_THRESHOLD` on 64-bit targets (`HEAP_MAX_SIZE / 2`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 32 << 20;
/// Free memory at the top of the heap kept before glibc trims it back to the kernel.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = 512 << 20;

/// Applies the settings above; call it first thing in `main`, before any thread starts.
/// A no-op where the C library is not glibc.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes malloc's parameters; it is called from `main` before any
    // other thread exists, and a rejected value leaves the defaults in place (the return
    // value only reports that).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}

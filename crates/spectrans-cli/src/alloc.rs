//! Allocator settings for the `spectrans` process.
//!
//! A training step allocates and frees activations of tens of MiB each time (a (B·N, 4D)
//! hidden layer is 16 MiB at the small benchmark config). glibc serves blocks that large with
//! a fresh `mmap` and gives them back with `munmap` on free, so every step pays the kernel
//! to fault in and zero the same pages again (about 8 % of a step in `perf`). Raising the mmap
//! threshold to glibc's maximum (32 MiB) and the trim threshold above it keeps freed blocks
//! in the heap for the next step to reuse. The peak resident memory does not change: the
//! blocks kept are the ones the next step needs.
//!
//! Blocks above that threshold (a long sequence's activations: 64 MiB per (65,536, 256)
//! array) still come from `mmap` and go back on free, so a forward at 65,536 tokens faulted
//! in about 230,000 pages of 4 KiB (10 % of its time in the kernel). [`Allocator`], the
//! process's global allocator, asks for such blocks to be backed by transparent huge pages
//! (`madvise(MADV_HUGEPAGE)`; the system's THP setting is usually `madvise`): one fault per
//! 2 MiB.
//!
//! All threads allocate from one arena (`M_ARENA_MAX` = 1). With an arena per thread, a
//! block freed by one worker stays in that worker's heap while another worker maps a new
//! one, so the peak resident memory of the same forward varied from run to run (190 or
//! 222 MiB at one sequence of 8192, h256); with one arena it is 170 MiB every run, and the
//! blocks are large and few, so the arena's lock costs nothing measurable (small config b1,
//! b8 and the training step: within the noise).

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
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Blocks at least this large are advised to use transparent huge pages: glibc serves them
/// with their own `mmap` (they are above [`MMAP_THRESHOLD`]).
#[cfg(target_os = "linux")]
const HUGE_PAGES_FROM: usize = 32 << 20;
/// A transparent huge page on x86-64 and aarch64 (4 KiB base pages).
#[cfg(target_os = "linux")]
const HUGE_PAGE: usize = 2 << 20;

/// The system allocator, with blocks of [`HUGE_PAGES_FROM`] bytes and more advised to use
/// transparent huge pages (Linux; elsewhere the system allocator as is).
pub struct Allocator;

// SAFETY: every method hands the request to `System` unchanged and returns its answer; the
// only addition is `madvise(MADV_HUGEPAGE)` on whole huge pages inside a block just
// allocated, which changes how the kernel backs those pages, never their contents or
// the block's extent.
unsafe impl std::alloc::GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc`, passed on.
        let block = unsafe { std::alloc::System.alloc(layout) };
        advise_huge_pages(block, layout.size());
        block
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc_zeroed`, passed on.
        let block = unsafe { std::alloc::System.alloc_zeroed(layout) };
        advise_huge_pages(block, layout.size());
        block
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: the caller's contract for `dealloc`: `block` came from this allocator,
        // that is from `System`, with this layout.
        unsafe { std::alloc::System.dealloc(block, layout) }
    }

    unsafe fn realloc(
        &self,
        block: *mut u8,
        layout: std::alloc::Layout,
        new_size: usize,
    ) -> *mut u8 {
        // SAFETY: the caller's contract for `realloc`, passed on (`block` came from `System`).
        let moved = unsafe { std::alloc::System.realloc(block, layout, new_size) };
        advise_huge_pages(moved, new_size);
        moved
    }
}

/// `madvise(MADV_HUGEPAGE)` on the whole huge pages inside `size` bytes from `block`, when
/// the block is at least [`HUGE_PAGES_FROM`] bytes. A hint: a refusal changes nothing.
fn advise_huge_pages(block: *mut u8, size: usize) {
    #[cfg(target_os = "linux")]
    if !block.is_null() && size >= HUGE_PAGES_FROM {
        let start = (block as usize).next_multiple_of(HUGE_PAGE);
        let end = (block as usize + size) / HUGE_PAGE * HUGE_PAGE;
        if end > start {
            // SAFETY: [start, end) lies inside the block just allocated (rounded inwards to
            // whole huge pages), which this process owns; MADV_HUGEPAGE only sets how the
            // kernel may back those pages and keeps their contents.
            unsafe {
                libc::madvise(
                    block.add(start - block as usize).cast(),
                    end - start,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (block, size);
}

#[cfg(test)]
mod tests {
    use std::alloc::{GlobalAlloc, Layout};

    use super::*;

    /// Blocks below and above the huge-page size keep their contents through `realloc`,
    /// and `alloc_zeroed` gives zeros, whatever the kernel does with the advice.
    #[test]
    fn blocks_small_and_huge_keep_their_contents() {
        for size in [64, 4096, 40 << 20] {
            let layout = Layout::from_size_align(size, 64).expect("a valid layout");
            // SAFETY: a non-zero size; every block is freed with the layout it has.
            unsafe {
                let zeroed = Allocator.alloc_zeroed(layout);
                assert!(!zeroed.is_null());
                let values = std::slice::from_raw_parts(zeroed, size);
                assert!(values.iter().all(|&v| v == 0), "zeroed, size {size}");
                Allocator.dealloc(zeroed, layout);

                let block = Allocator.alloc(layout);
                assert!(!block.is_null());
                for i in (0..size).step_by(4093) {
                    *block.add(i) = (i % 251) as u8;
                }
                let grown = Allocator.realloc(block, layout, 2 * size);
                assert!(!grown.is_null());
                for i in (0..size).step_by(4093) {
                    assert_eq!(*grown.add(i), (i % 251) as u8, "size {size}, byte {i}");
                }
                Allocator.dealloc(grown, Layout::from_size_align(2 * size, 64).unwrap());
            }
        }
    }
}

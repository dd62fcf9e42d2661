//! Scratch buffers for the tiled transforms: grown on demand, reused once warm.

use std::cell::RefCell;
use std::sync::{Mutex, PoisonError};

use num_complex::Complex32;

/// Buffers one task needs to transform a block of columns.
#[derive(Debug, Default)]
pub(crate) struct TileScratch {
    /// `w` real signals of length `n`, column after column.
    pub(crate) real: Vec<f32>,
    /// `w` spectra (or complex signals), column after column.
    pub(crate) spectrum: Vec<Complex32>,
    /// Scratch the FFT library asks for.
    pub(crate) fft: Vec<Complex32>,
}

/// How large each buffer of a [`TileScratch`] must be.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ScratchSize {
    pub(crate) real: usize,
    pub(crate) spectrum: usize,
    pub(crate) fft: usize,
}

impl TileScratch {
    /// Grows the buffers to at least `size` (never shrinks, so a warm scratch allocates nothing).
    pub(crate) fn reserve(&mut self, size: ScratchSize) {
        grow(&mut self.real, size.real, 0.0);
        grow(&mut self.spectrum, size.spectrum, Complex32::new(0.0, 0.0));
        grow(&mut self.fft, size.fft, Complex32::new(0.0, 0.0));
    }
}

fn grow<T: Clone>(buffer: &mut Vec<T>, len: usize, fill: T) {
    if buffer.len() < len {
        buffer.resize(len, fill);
    }
}

thread_local! {
    static THREAD_SCRATCH: RefCell<TileScratch> = RefCell::new(TileScratch::default());
}

/// Runs `job` with this thread's scratch, grown to `size`.
pub(crate) fn with_thread_scratch<R>(
    size: ScratchSize,
    job: impl FnOnce(&mut TileScratch) -> R,
) -> R {
    THREAD_SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => {
            scratch.reserve(size);
            job(&mut scratch)
        }
        // Only reachable if a job re-entered on the same thread: use a private scratch.
        Err(_) => {
            let mut scratch = TileScratch::default();
            scratch.reserve(size);
            job(&mut scratch)
        }
    })
}

/// Reusable scratch for [`SeqRealFft::filter`](crate::SeqRealFft::filter) and
/// [`SeqRealFft::filter_adjoint`](crate::SeqRealFft::filter_adjoint).
///
/// It holds one tile scratch per worker thread of the current rayon pool, and the partial
/// cross spectra of `filter_adjoint`. Buffers grow on demand and are never shrunk, so once a
/// workspace has seen the largest shape it is used with, calls allocate nothing.
///
/// ```
/// use spectrans_fft::FilterWorkspace;
/// let mut workspace = FilterWorkspace::new();
/// # let _ = &mut workspace;
/// ```
#[derive(Debug, Default)]
pub struct FilterWorkspace {
    pub(crate) pool: SlotPool,
    pub(crate) partial: Vec<Complex32>,
    pub(crate) filter_columns: Vec<Complex32>,
}

impl FilterWorkspace {
    /// An empty workspace; it grows on first use.
    pub fn new() -> Self {
        Self::default()
    }
}

/// One tile scratch per worker thread of the rayon pool that runs the tasks.
#[derive(Debug, Default)]
pub(crate) struct SlotPool {
    slots: Vec<Mutex<TileScratch>>,
}

impl SlotPool {
    /// Makes sure there is one slot per thread of the current rayon pool.
    pub(crate) fn prepare(&mut self) {
        let threads = rayon::current_num_threads().max(1);
        while self.slots.len() < threads {
            self.slots.push(Mutex::new(TileScratch::default()));
        }
    }

    /// Runs `job` with the scratch of the calling worker thread, grown to `size`.
    ///
    /// A task never calls back into rayon while it holds its slot, so no other task runs on
    /// the same thread meanwhile and the lock is uncontended.
    pub(crate) fn with_slot<R>(
        &self,
        size: ScratchSize,
        job: impl FnOnce(&mut TileScratch) -> R,
    ) -> R {
        let index = rayon::current_thread_index().unwrap_or(0);
        match self.slots.get(index % self.slots.len().max(1)) {
            Some(slot) => {
                let mut scratch = slot.lock().unwrap_or_else(PoisonError::into_inner);
                scratch.reserve(size);
                job(&mut scratch)
            }
            None => with_thread_scratch(size, job),
        }
    }
}

/// `buffer[..len]`, grown if needed and zeroed.
pub(crate) fn zeroed_prefix(buffer: &mut Vec<Complex32>, len: usize) -> &mut [Complex32] {
    grow(buffer, len, Complex32::new(0.0, 0.0));
    let prefix = &mut buffer[..len];
    prefix.fill(Complex32::new(0.0, 0.0));
    prefix
}

//! Scratch buffers for the tiled transforms: grown on demand, reused once warm.

use std::cell::RefCell;

pub use spectrans_linalg::with_thread_local;

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

/// Runs `job` with this thread's tile scratch, grown to `size`.
pub(crate) fn with_thread_scratch<R>(
    size: ScratchSize,
    job: impl FnOnce(&mut TileScratch) -> R,
) -> R {
    with_thread_local(&THREAD_SCRATCH, |scratch| {
        scratch.reserve(size);
        job(scratch)
    })
}

/// Reusable buffers of [`SeqRealFft::filter`](crate::SeqRealFft::filter) and
/// [`SeqRealFft::filter_adjoint`](crate::SeqRealFft::filter_adjoint) that belong to one call
/// rather than to one worker: the filter laid out column after column, and the adjoint's
/// partial cross spectra. (Each worker's tile buffers are its thread's, see
/// [`with_thread_local`].)
///
/// Buffers grow on demand and are never shrunk, so once a workspace has seen the largest
/// shape it is used with, calls allocate nothing. Keep one per thread, for example in a
/// thread-local used through [`with_thread_local`], as the global filter layer does.
///
/// ```
/// use spectrans_fft::FilterWorkspace;
/// let mut workspace = FilterWorkspace::new();
/// # let _ = &mut workspace;
/// ```
#[derive(Debug, Default)]
pub struct FilterWorkspace {
    pub(crate) partial: Vec<Complex32>,
    pub(crate) filter_columns: Vec<Complex32>,
}

impl FilterWorkspace {
    /// An empty workspace; it grows on first use.
    pub fn new() -> Self {
        Self::default()
    }
}

/// `buffer[..len]`, grown if needed and zeroed.
pub(crate) fn zeroed_prefix(buffer: &mut Vec<Complex32>, len: usize) -> &mut [Complex32] {
    grow(buffer, len, Complex32::new(0.0, 0.0));
    let prefix = &mut buffer[..len];
    prefix.fill(Complex32::new(0.0, 0.0));
    prefix
}

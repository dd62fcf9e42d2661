//! Real-to-complex transforms along axis 1 of `(B, n, D)` arrays.

use std::fmt;
use std::sync::Arc;

use ndarray::{ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3, Axis};
use num_complex::Complex32;
use rayon::prelude::*;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use crate::lanes::LanePlan;
use crate::scratch::{ScratchSize, TileScratch, with_thread_scratch};
use crate::shape::expect_shape;
use crate::split::{Split, entry_tasks_fill_threads, slice_tile};
use crate::strided;
use crate::tile::{copy_rows_in, copy_rows_out, gather_columns, scatter_columns};
use crate::{FftError, FftNorm};

/// Plans for one sequence length `n`, made once and reused.
///
/// Transforms run along axis 1 of `(B, n, D)` arrays, in parallel over batch entries and
/// tiles of columns. The plan is `Send + Sync`; share it through an [`Arc`] (see
/// [`real_plan`](crate::real_plan) for a process-wide cache).
///
/// ```
/// use ndarray::Array3;
/// use spectrans_fft::{Complex32, FftNorm, SeqRealFft};
///
/// let plan = SeqRealFft::new(4)?;
/// let x = Array3::from_shape_vec((1, 4, 1), vec![1.0_f32, 2.0, 3.0, 4.0]).unwrap();
/// let mut spectrum = Array3::<Complex32>::zeros((1, plan.spectrum_len(), 1));
/// plan.forward(x.view(), spectrum.view_mut(), FftNorm::Backward)?;
/// assert_eq!(spectrum[[0, 0, 0]], Complex32::new(10.0, 0.0));
/// assert_eq!(spectrum[[0, 1, 0]], Complex32::new(-2.0, 2.0));
///
/// let mut back = Array3::<f32>::zeros((1, 4, 1));
/// plan.inverse(spectrum.view(), back.view_mut(), FftNorm::Backward)?;
/// assert!((back[[0, 2, 0]] - 3.0).abs() < 1e-6);
/// # Ok::<(), spectrans_fft::FftError>(())
/// ```
pub struct SeqRealFft {
    n: usize,
    forward: Arc<dyn RealToComplex<f32>>,
    inverse: Arc<dyn ComplexToReal<f32>>,
    fft_scratch: usize,
    /// The eight-columns-per-vector transforms, for power-of-two `n >= 8`.
    lanes: Option<LanePlan>,
}

impl fmt::Debug for SeqRealFft {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeqRealFft")
            .field("n", &self.n)
            .finish_non_exhaustive()
    }
}

impl SeqRealFft {
    /// Plans the forward and inverse real transforms of length `n` (any `n >= 1`).
    pub fn new(n: usize) -> Result<Self, FftError> {
        if n == 0 {
            return Err(FftError::ZeroLength);
        }
        let mut planner = RealFftPlanner::<f32>::new();
        let forward = planner.plan_fft_forward(n);
        let inverse = planner.plan_fft_inverse(n);
        let fft_scratch = forward.get_scratch_len().max(inverse.get_scratch_len());
        Ok(Self {
            n,
            forward,
            inverse,
            fft_scratch,
            lanes: LanePlan::new(n),
        })
    }

    /// The signal length `n`.
    #[allow(clippy::len_without_is_empty)] // a plan always has n >= 1
    pub fn len(&self) -> usize {
        self.n
    }

    /// The number of non-redundant bins of a real signal's spectrum, `n / 2 + 1`.
    pub fn spectrum_len(&self) -> usize {
        self.n / 2 + 1
    }

    /// Real FFT along axis 1: `(B, n, D)` real to `(B, n/2+1, D)` complex,
    /// `X[b, k, d] = s · Σ_t x[b, t, d] e^{-2πi k t / n}` with `s` from `norm`
    /// (`torch.fft.rfft(x, dim=1, norm=...)`).
    pub fn forward(
        &self,
        input: ArrayView3<'_, f32>,
        mut output: ArrayViewMut3<'_, Complex32>,
        norm: FftNorm,
    ) -> Result<(), FftError> {
        let (batch, _, cols) = input.dim();
        expect_shape("input", input.shape(), &[batch, self.n, cols])?;
        expect_shape(
            "output",
            output.shape(),
            &[batch, self.spectrum_len(), cols],
        )?;
        if batch == 0 || cols == 0 {
            return Ok(());
        }
        let scale = norm.forward_scale(self.n);
        if entry_tasks_fill_threads(batch)
            && let (Some(x), Some(y)) = (input.as_slice(), output.as_slice_mut())
        {
            let size = self.scratch_size(slice_tile(self.len()).min(cols));
            let h = self.spectrum_len();
            return x
                .par_chunks(self.n * cols)
                .zip(y.par_chunks_mut(h * cols))
                .try_for_each(|(x, y)| {
                    with_thread_scratch(size, |s| self.forward_entry(x, y, cols, scale, s))
                });
        }
        let split = Split::per_entry(batch, self.n, cols);
        let size = self.scratch_size(split.tile);
        (
            input.axis_chunks_iter(Axis(0), split.batch_chunk),
            output.axis_chunks_iter_mut(Axis(0), split.batch_chunk),
        )
            .into_par_iter()
            .try_for_each(|(input, mut output)| {
                (
                    input.axis_chunks_iter(Axis(2), split.tile),
                    output.axis_chunks_iter_mut(Axis(2), split.tile),
                )
                    .into_par_iter()
                    .try_for_each(|(input, mut output)| {
                        with_thread_scratch(size, |scratch| {
                            for (x, y) in input.outer_iter().zip(output.outer_iter_mut()) {
                                self.forward_block(x, y, scale, scratch)?;
                            }
                            Ok(())
                        })
                    })
            })
    }

    /// Inverse real FFT along axis 1: `(B, n/2+1, D)` complex to `(B, n, D)` real
    /// (`torch.fft.irfft(X, n=n, dim=1, norm=...)`): the spectrum is extended by Hermitian
    /// symmetry, and the imaginary parts of bin 0 and, for even `n`, bin `n/2` are ignored.
    pub fn inverse(
        &self,
        input: ArrayView3<'_, Complex32>,
        mut output: ArrayViewMut3<'_, f32>,
        norm: FftNorm,
    ) -> Result<(), FftError> {
        let (batch, _, cols) = input.dim();
        expect_shape("input", input.shape(), &[batch, self.spectrum_len(), cols])?;
        expect_shape("output", output.shape(), &[batch, self.n, cols])?;
        if batch == 0 || cols == 0 {
            return Ok(());
        }
        let scale = norm.inverse_scale(self.n);
        if entry_tasks_fill_threads(batch)
            && let (Some(x), Some(y)) = (input.as_slice(), output.as_slice_mut())
        {
            let size = self.scratch_size(slice_tile(self.len()).min(cols));
            let h = self.spectrum_len();
            return x
                .par_chunks(h * cols)
                .zip(y.par_chunks_mut(self.n * cols))
                .try_for_each(|(x, y)| {
                    with_thread_scratch(size, |s| self.inverse_entry(x, y, cols, scale, s))
                });
        }
        let split = Split::per_entry(batch, self.n, cols);
        let size = self.scratch_size(split.tile);
        (
            input.axis_chunks_iter(Axis(0), split.batch_chunk),
            output.axis_chunks_iter_mut(Axis(0), split.batch_chunk),
        )
            .into_par_iter()
            .try_for_each(|(input, mut output)| {
                (
                    input.axis_chunks_iter(Axis(2), split.tile),
                    output.axis_chunks_iter_mut(Axis(2), split.tile),
                )
                    .into_par_iter()
                    .try_for_each(|(input, mut output)| {
                        with_thread_scratch(size, |scratch| {
                            for (x, y) in input.outer_iter().zip(output.outer_iter_mut()) {
                                self.inverse_block(x, y, scale, scratch)?;
                            }
                            Ok(())
                        })
                    })
            })
    }

    /// The eight-columns-per-vector transforms, where `n` allows them.
    pub(crate) fn lanes(&self) -> Option<&LanePlan> {
        self.lanes.as_ref()
    }

    /// Scratch one task needs for a tile of `tile` columns.
    pub(crate) fn scratch_size(&self, tile: usize) -> ScratchSize {
        ScratchSize {
            real: self.n * tile,
            spectrum: self.spectrum_len() * tile,
            fft: self.fft_scratch,
        }
    }

    /// `y = scale · rfft(x)` for one batch entry: `x` is `(n, cols)` and `y` `(n/2+1, cols)`,
    /// both row-major slices.
    fn forward_entry(
        &self,
        x: &[f32],
        y: &mut [Complex32],
        cols: usize,
        scale: f32,
        scratch: &mut TileScratch,
    ) -> Result<(), FftError> {
        if let Some(lanes) = &self.lanes {
            lanes.forward_matrix(x, y, cols, scale);
            return Ok(());
        }
        let (n, h) = (self.n, self.spectrum_len());
        let tile_cols = slice_tile(n);
        for col0 in (0..cols).step_by(tile_cols) {
            let width = tile_cols.min(cols - col0);
            strided::gather_f32(x, cols, col0, n, width, &mut scratch.real);
            self.rfft_columns(scratch, width)?;
            strided::scatter(&scratch.spectrum, h, width, y, cols, col0, |v| v * scale);
        }
        Ok(())
    }

    /// `y = scale · irfft(x)` for one batch entry: `x` is `(n/2+1, cols)` and `y` `(n, cols)`,
    /// both row-major slices.
    fn inverse_entry(
        &self,
        x: &[Complex32],
        y: &mut [f32],
        cols: usize,
        scale: f32,
        scratch: &mut TileScratch,
    ) -> Result<(), FftError> {
        if let Some(lanes) = &self.lanes {
            lanes.inverse_matrix(x, y, cols, scale);
            return Ok(());
        }
        let (n, h) = (self.n, self.spectrum_len());
        let tile_cols = slice_tile(n);
        for col0 in (0..cols).step_by(tile_cols) {
            let width = tile_cols.min(cols - col0);
            strided::gather(x, cols, col0, h, width, &mut scratch.spectrum);
            self.irfft_columns(scratch, width)?;
            strided::scatter(&scratch.real, n, width, y, cols, col0, |v| v * scale);
        }
        Ok(())
    }

    /// `y = scale · rfft(x)` for one `(n, w)` block.
    fn forward_block(
        &self,
        x: ArrayView2<'_, f32>,
        y: ArrayViewMut2<'_, Complex32>,
        scale: f32,
        scratch: &mut TileScratch,
    ) -> Result<(), FftError> {
        let width = x.ncols();
        if let Some(lanes) = &self.lanes {
            let (real, spectrum) = (&mut scratch.real, &mut scratch.spectrum);
            let h = self.spectrum_len();
            copy_rows_out(x, &mut real[..self.n * width]);
            lanes.forward_matrix(
                &real[..self.n * width],
                &mut spectrum[..h * width],
                width,
                scale,
            );
            copy_rows_in(&spectrum[..h * width], y);
            return Ok(());
        }
        gather_columns(x, &mut scratch.real);
        self.rfft_columns(scratch, width)?;
        scatter_columns(&scratch.spectrum, y, |v| v * scale);
        Ok(())
    }

    /// `y = scale · irfft(x)` for one `(n/2+1, w)` block.
    fn inverse_block(
        &self,
        x: ArrayView2<'_, Complex32>,
        y: ArrayViewMut2<'_, f32>,
        scale: f32,
        scratch: &mut TileScratch,
    ) -> Result<(), FftError> {
        let width = x.ncols();
        if let Some(lanes) = &self.lanes {
            let (real, spectrum) = (&mut scratch.real, &mut scratch.spectrum);
            let h = self.spectrum_len();
            copy_rows_out(x, &mut spectrum[..h * width]);
            lanes.inverse_matrix(
                &spectrum[..h * width],
                &mut real[..self.n * width],
                width,
                scale,
            );
            copy_rows_in(&real[..self.n * width], y);
            return Ok(());
        }
        gather_columns(x, &mut scratch.spectrum);
        self.irfft_columns(scratch, width)?;
        scatter_columns(&scratch.real, y, |v| v * scale);
        Ok(())
    }

    /// Unnormalised rfft of the first `width` columns of `scratch.real` into
    /// `scratch.spectrum` (both column after column). `scratch.real` is clobbered.
    pub(crate) fn rfft_columns(
        &self,
        scratch: &mut TileScratch,
        width: usize,
    ) -> Result<(), FftError> {
        let (n, h) = (self.n, self.spectrum_len());
        let TileScratch {
            real,
            spectrum,
            fft,
        } = scratch;
        for (signal, bins) in real[..n * width]
            .chunks_exact_mut(n)
            .zip(spectrum[..h * width].chunks_exact_mut(h))
        {
            self.forward
                .process_with_scratch(signal, bins, fft)
                .map_err(FftError::backend)?;
        }
        Ok(())
    }

    /// Unnormalised irfft of the first `width` spectra of `scratch.spectrum` into
    /// `scratch.real`, ignoring the imaginary parts of bin 0 and (even `n`) bin `n/2`.
    /// `scratch.spectrum` is clobbered.
    pub(crate) fn irfft_columns(
        &self,
        scratch: &mut TileScratch,
        width: usize,
    ) -> Result<(), FftError> {
        let (n, h) = (self.n, self.spectrum_len());
        let TileScratch {
            real,
            spectrum,
            fft,
        } = scratch;
        for (bins, signal) in spectrum[..h * width]
            .chunks_exact_mut(h)
            .zip(real[..n * width].chunks_exact_mut(n))
        {
            if let Some(first) = bins.first_mut() {
                first.im = 0.0;
            }
            if n % 2 == 0
                && let Some(last) = bins.last_mut()
            {
                last.im = 0.0;
            }
            self.inverse
                .process_with_scratch(bins, signal, fft)
                .map_err(FftError::backend)?;
        }
        Ok(())
    }
}

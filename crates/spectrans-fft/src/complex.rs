//! Complex transforms along axis 1 of `(B, n, D)` arrays (spectrans' own full-FFT path).

use std::fmt;
use std::sync::Arc;

use ndarray::{ArrayView3, ArrayViewMut3, Axis};
use num_complex::Complex32;
use rayon::prelude::*;
use rustfft::{Fft, FftPlanner};

use crate::scratch::{ScratchSize, TileScratch, with_thread_scratch};
use crate::shape::expect_shape;
use crate::split::Split;
use crate::tile::{gather_columns, scatter_columns};
use crate::{FftError, FftNorm};

/// Forward and inverse complex FFT plans for one length `n`, applied along axis 1.
///
/// `forward`: `X[b, k, d] = s · Σ_t x[b, t, d] e^{-2πi k t / n}`; `inverse` uses `e^{+2πi k t / n}`;
/// the scale `s` follows [`FftNorm`] (`torch.fft.fft` / `torch.fft.ifft` along `dim=1`).
///
/// ```
/// use ndarray::Array3;
/// use spectrans_fft::{Complex32, FftNorm, SeqComplexFft};
///
/// let plan = SeqComplexFft::new(2)?;
/// let x = Array3::from_shape_vec((1, 2, 1), vec![Complex32::new(1.0, 0.0), Complex32::new(0.0, 1.0)]).unwrap();
/// let mut y = Array3::<Complex32>::zeros((1, 2, 1));
/// plan.forward(x.view(), y.view_mut(), FftNorm::Backward)?;
/// assert_eq!(y[[0, 0, 0]], Complex32::new(1.0, 1.0));
/// assert_eq!(y[[0, 1, 0]], Complex32::new(1.0, -1.0));
/// # Ok::<(), spectrans_fft::FftError>(())
/// ```
pub struct SeqComplexFft {
    n: usize,
    forward: Arc<dyn Fft<f32>>,
    inverse: Arc<dyn Fft<f32>>,
    fft_scratch: usize,
}

impl fmt::Debug for SeqComplexFft {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeqComplexFft")
            .field("n", &self.n)
            .finish_non_exhaustive()
    }
}

impl SeqComplexFft {
    /// Plans the forward and inverse complex transforms of length `n` (any `n >= 1`).
    pub fn new(n: usize) -> Result<Self, FftError> {
        if n == 0 {
            return Err(FftError::ZeroLength);
        }
        let mut planner = FftPlanner::<f32>::new();
        let forward = planner.plan_fft_forward(n);
        let inverse = planner.plan_fft_inverse(n);
        let fft_scratch = forward
            .get_inplace_scratch_len()
            .max(inverse.get_inplace_scratch_len());
        Ok(Self {
            n,
            forward,
            inverse,
            fft_scratch,
        })
    }

    /// The transform length `n`.
    #[allow(clippy::len_without_is_empty)] // a plan always has n >= 1
    pub fn len(&self) -> usize {
        self.n
    }

    /// Complex FFT along axis 1, `(B, n, D)` to `(B, n, D)`, scaled by
    /// [`FftNorm::forward_scale`].
    pub fn forward(
        &self,
        input: ArrayView3<'_, Complex32>,
        output: ArrayViewMut3<'_, Complex32>,
        norm: FftNorm,
    ) -> Result<(), FftError> {
        self.run(&*self.forward, input, output, norm.forward_scale(self.n))
    }

    /// Inverse complex FFT along axis 1, `(B, n, D)` to `(B, n, D)`, scaled by
    /// [`FftNorm::inverse_scale`].
    pub fn inverse(
        &self,
        input: ArrayView3<'_, Complex32>,
        output: ArrayViewMut3<'_, Complex32>,
        norm: FftNorm,
    ) -> Result<(), FftError> {
        self.run(&*self.inverse, input, output, norm.inverse_scale(self.n))
    }

    fn run(
        &self,
        plan: &dyn Fft<f32>,
        input: ArrayView3<'_, Complex32>,
        mut output: ArrayViewMut3<'_, Complex32>,
        scale: f32,
    ) -> Result<(), FftError> {
        let (batch, _, cols) = input.dim();
        expect_shape("input", input.shape(), &[batch, self.n, cols])?;
        expect_shape("output", output.shape(), &[batch, self.n, cols])?;
        if batch == 0 || cols == 0 {
            return Ok(());
        }
        let split = Split::per_entry(batch, self.n, cols);
        let size = ScratchSize {
            real: 0,
            spectrum: self.n * split.tile,
            fft: self.fft_scratch,
        };
        (
            input.axis_chunks_iter(Axis(0), split.batch_chunk),
            output.axis_chunks_iter_mut(Axis(0), split.batch_chunk),
        )
            .into_par_iter()
            .for_each(|(input, mut output)| {
                (
                    input.axis_chunks_iter(Axis(2), split.tile),
                    output.axis_chunks_iter_mut(Axis(2), split.tile),
                )
                    .into_par_iter()
                    .for_each(|(input, mut output)| {
                        with_thread_scratch(size, |scratch| {
                            for (x, y) in input.outer_iter().zip(output.outer_iter_mut()) {
                                let width = x.ncols();
                                let TileScratch { spectrum, fft, .. } = scratch;
                                gather_columns(x, spectrum);
                                // Length n * width: a whole number of length-n transforms.
                                plan.process_with_scratch(&mut spectrum[..self.n * width], fft);
                                scatter_columns(spectrum, y, |v| v * scale);
                            }
                        })
                    })
            });
        Ok(())
    }
}

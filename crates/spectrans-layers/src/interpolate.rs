//! Linear resampling along the sequence axis, PyTorch `interpolate(mode="linear",
//! align_corners=False)` bit for bit, and its transpose (for backward).

use ndarray::{Array2, ArrayView2};

use crate::error::{LayerError, shape_error};

/// One output row's two source rows and weights: `out[i] = w0 · src[i0] + w1 · src[i1]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tap {
    /// Lower source row.
    pub i0: usize,
    /// Upper source row (`i0 + 1`, clamped to the last row).
    pub i1: usize,
    /// Weight of `i0`, `1 - λ`.
    pub w0: f32,
    /// Weight of `i1`, `λ`.
    pub w1: f32,
}

/// Resamples (src_len, D) to (dst_len, D). All arithmetic is f32 as in PyTorch's CPU kernel:
/// `scale = S / N`, `src = max(scale · (i + 0.5) - 0.5, 0)`, `i0 = min(⌊src⌋, S - 1)`,
/// `λ = clamp(src - i0, 0, 1)`, `i1 = min(i0 + 1, S - 1)`, and the output
/// `fma(w0, src[i0], w1 · src[i1])`, the rounding of PyTorch's vectorized (FMA) kernel.
///
/// ```
/// use ndarray::array;
/// use spectrans_layers::LinearResample;
/// let r = LinearResample::new(2, 4);
/// let y = r.apply(array![[0.0f32], [1.0]].view()).unwrap();
/// assert_eq!(y, array![[0.0], [0.25], [0.75], [1.0]]);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LinearResample {
    src_len: usize,
    taps: Vec<Tap>,
}

impl LinearResample {
    /// The taps for `src_len -> dst_len` (`src_len = 0` gives no taps).
    pub fn new(src_len: usize, dst_len: usize) -> Self {
        if src_len == 0 {
            return Self {
                src_len,
                taps: Vec::new(),
            };
        }
        let scale = src_len as f32 / dst_len.max(1) as f32;
        let last = src_len - 1;
        let taps = (0..dst_len)
            .map(|i| {
                let src = (scale * (i as f32 + 0.5) - 0.5).max(0.0);
                // src >= 0, so the cast floors; it saturates for huge values and is clamped anyway.
                let i0 = (src.floor() as usize).min(last);
                let lambda = (src - i0 as f32).clamp(0.0, 1.0);
                Tap {
                    i0,
                    i1: (i0 + 1).min(last),
                    w0: 1.0 - lambda,
                    w1: lambda,
                }
            })
            .collect();
        Self { src_len, taps }
    }

    /// Source length S.
    pub fn src_len(&self) -> usize {
        self.src_len
    }

    /// Destination length N.
    pub fn dst_len(&self) -> usize {
        self.taps.len()
    }

    /// The taps, one per output row.
    pub fn taps(&self) -> &[Tap] {
        &self.taps
    }

    /// `out[i] = w0 · src[i0] + w1 · src[i1]`; `src` is (src_len, D).
    pub fn apply(&self, src: ArrayView2<'_, f32>) -> Result<Array2<f32>, LayerError> {
        let d = src.ncols();
        if src.nrows() != self.src_len {
            return Err(shape_error(
                "resample source",
                format!("({}, D)", self.src_len),
                src.shape(),
            ));
        }
        let mut out = Array2::<f32>::zeros((self.taps.len(), d));
        for (tap, mut row) in self.taps.iter().zip(out.rows_mut()) {
            // i0 <= i1, so one check covers both rows.
            if tap.i1 >= src.nrows() {
                continue;
            }
            ndarray::Zip::from(&mut row)
                .and(src.row(tap.i0))
                .and(src.row(tap.i1))
                .for_each(|o, &a, &b| *o = tap.w0.mul_add(a, tap.w1 * b));
        }
        Ok(out)
    }

    /// The transpose: `grad_src[i0] += w0 · grad[i]`, `grad_src[i1] += w1 · grad[i]`, added into
    /// `grad_src` (src_len, D).
    pub fn transpose_add(
        &self,
        grad: ArrayView2<'_, f32>,
        grad_src: &mut Array2<f32>,
    ) -> Result<(), LayerError> {
        let d = grad.ncols();
        if grad.nrows() != self.taps.len() {
            return Err(shape_error(
                "resample gradient",
                format!("({}, D)", self.taps.len()),
                grad.shape(),
            ));
        }
        if grad_src.dim() != (self.src_len, d) {
            return Err(shape_error(
                "resample source gradient",
                format!("({}, {d})", self.src_len),
                grad_src.shape(),
            ));
        }
        for (tap, g) in self.taps.iter().zip(grad.rows()) {
            // i0 <= i1, so one check covers both rows.
            if tap.i1 >= grad_src.nrows() {
                continue;
            }
            grad_src
                .row_mut(tap.i0)
                .zip_mut_with(&g, |a, &g| *a += tap.w0 * g);
            grad_src
                .row_mut(tap.i1)
                .zip_mut_with(&g, |a, &g| *a += tap.w1 * g);
        }
        Ok(())
    }
}

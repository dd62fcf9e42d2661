//! Folding a full-spectrum filter into half-spectrum form.

use ndarray::{Array2, ArrayView2, Axis};
use num_complex::Complex32;
use rayon::prelude::*;

use crate::FftError;

/// Elements of work below which a fold stays on one thread.
const PARALLEL_MIN_ELEMS: usize = 1 << 14;

/// Fold a full-spectrum filter `H` `(n, D)` into half-spectrum form `(n/2+1, D)`:
/// `Hf[k] = (H[k] + conj(H[(n - k) mod n])) / 2`, `k = 0..=n/2`.
///
/// For real `x`, `Re(ifft(H ⊙ fft(x))) = irfft(Hf ⊙ rfft(x))`: the real part only sees the
/// Hermitian part of `H`. Errors with [`FftError::ZeroLength`] when `n = 0`.
///
/// ```
/// use ndarray::array;
/// use spectrans_fft::{fold_filter, Complex32};
///
/// let c = |re, im| Complex32::new(re, im);
/// let full = array![[c(1.0, 1.0)], [c(2.0, 0.0)], [c(0.0, 4.0)]];
/// let half = fold_filter(full.view())?;
/// assert_eq!(half.dim(), (2, 1));
/// assert_eq!(half[[0, 0]], c(1.0, 0.0)); // (H0 + conj H0) / 2
/// assert_eq!(half[[1, 0]], c(1.0, -2.0)); // (H1 + conj H2) / 2
/// # Ok::<(), spectrans_fft::FftError>(())
/// ```
pub fn fold_filter(full: ArrayView2<'_, Complex32>) -> Result<Array2<Complex32>, FftError> {
    let (n, cols) = full.dim();
    if n == 0 {
        return Err(FftError::ZeroLength);
    }
    let h = n / 2 + 1;
    let mut half = Array2::zeros((h, cols));
    half.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .with_min_len(PARALLEL_MIN_ELEMS.div_ceil(cols.max(1)))
        .for_each(|(k, mut row)| {
            let mirror = (n - k) % n;
            let (upper, lower) = (full.row(k), full.row(mirror));
            for ((out, &a), &b) in row.iter_mut().zip(upper.iter()).zip(lower.iter()) {
                *out = (a + b.conj()) * 0.5;
            }
        });
    Ok(half)
}

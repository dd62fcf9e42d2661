//! Reduced-precision operands: bfloat16 rounding, and int8 dynamic quantization (a right
//! operand's columns symmetric, a left operand's rows asymmetric, 7-bit).
//!
//! These functions give the *values* a bf16 or int8 GEMM multiplies: `round_bf16` rounds to
//! the nearest bfloat16 (ties to even), and the int8 quantizers return the dequantized values
//! `s · q` (weights) and `s · (q − z)` (activations). A product of such values is what the
//! packed bf16 and int8 products of [`crate::gemm`] compute (int8: exact integer sums, then
//! one scale per row and column); a product on an operand that is not packed can multiply
//! these values with the f32 GEMM instead, with the same accuracy.

use ndarray::{ArrayView2, ArrayViewMut2};
use rayon::prelude::*;
pub use spectrans_types::Precision;

use crate::error::LinalgError;
use crate::util::{contiguous, contiguous_mut, min_rows};

/// `x` rounded to the nearest bfloat16 (8 exponent bits, 7 mantissa bits), ties to even;
/// NaN stays NaN, infinities stay infinite.
///
/// ```
/// use spectrans_linalg::precision::round_bf16;
/// assert_eq!(round_bf16(1.0), 1.0);
/// assert_eq!(round_bf16(1.0 + 1.0 / 512.0), 1.0); // below half an ulp (1/128)
/// assert_eq!(round_bf16(1.0 + 3.0 / 256.0), 1.015625); // rounds up to 1 + 2/128
/// ```
#[inline(always)]
pub fn round_bf16(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    let bits = x.to_bits();
    let lsb = (bits >> 16) & 1;
    let rounded = bits.wrapping_add(0x7FFF + lsb) & 0xFFFF_0000;
    f32::from_bits(rounded)
}

/// Writes into `dst` the values `src` has in `precision`, row by row (each row of a
/// Linear's input is one activation row; each row of its weight is one output channel):
///
/// - `F32`: a copy;
/// - `Bf16`: [`round_bf16`] of each value;
/// - `Int8` with `symmetric` (weights): `s · q`, `q = round(w / s)` in [-127, 127],
///   `s = max|w| / 127` per row;
/// - `Int8` without (activations): `s · (q − z)`, `q = clamp(round(x · (1/s)) + z, 0, 127)`,
///   `s = (max − min) / 127` and `z = round(−min / s)` per row, with 0 inside [min, max] so
///   that zero is exact (7 bits, as PyTorch's fbgemm `reduce_range`: see
///   `ACTIVATION_LEVELS`).
///
/// ```
/// use ndarray::{array, Array2};
/// use spectrans_linalg::precision::{Precision, quantize_rows_into};
/// let w = array![[0.5f32, -1.0, 0.25]];
/// let mut q = Array2::zeros((1, 3));
/// quantize_rows_into(w.view(), q.view_mut(), Precision::Int8, true).unwrap();
/// // s = 1/127: -1.0 is exact, 0.5 becomes 64/127.
/// assert_eq!(q[[0, 1]], -1.0);
/// assert!((q[[0, 0]] - 64.0 / 127.0).abs() < 1e-7);
/// ```
pub fn quantize_rows_into(
    src: ArrayView2<'_, f32>,
    mut dst: ArrayViewMut2<'_, f32>,
    precision: Precision,
    symmetric: bool,
) -> Result<(), LinalgError> {
    let (rows, cols) = src.dim();
    if dst.dim() != (rows, cols) {
        return Err(crate::error::shape_error(
            "quantized copy",
            format!("({rows}, {cols})"),
            dst.shape(),
        ));
    }
    if rows == 0 || cols == 0 {
        return Ok(());
    }
    let src = src.as_standard_layout();
    let s = contiguous("quantizer input", &src)?;
    let d = contiguous_mut("quantizer output", &mut dst)?;
    d.par_chunks_mut(cols)
        .with_min_len(min_rows(cols))
        .zip(s.par_chunks(cols))
        .for_each(|(out, row)| quantize_row(row, out, precision, symmetric));
    Ok(())
}

/// One row of [`quantize_rows_into`], compiled for AVX2 where the CPU has it (the rounding
/// then runs eight values per instruction instead of a call to `roundf` per value; the
/// results are the same).
fn quantize_row(row: &[f32], out: &mut [f32], precision: Precision, symmetric: bool) {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        fn with_avx2(
            _cpu: crate::simd::Avx2,
            row: &[f32],
            out: &mut [f32],
            precision: Precision,
            symmetric: bool,
        ) {
            quantize_row_with(row, out, precision, symmetric);
        }
        if let Some(cpu) = crate::simd::Avx2::try_new() {
            // SAFETY: AVX2, the function's one requirement, is vouched for by `cpu`.
            return unsafe { with_avx2(cpu, row, out, precision, symmetric) };
        }
    }
    quantize_row_with(row, out, precision, symmetric);
}

#[inline(always)]
fn quantize_row_with(row: &[f32], out: &mut [f32], precision: Precision, symmetric: bool) {
    match precision {
        Precision::F32 => out.copy_from_slice(row),
        Precision::Bf16 => {
            for (o, &v) in out.iter_mut().zip(row) {
                *o = round_bf16(v);
            }
        }
        Precision::Int8 if symmetric => symmetric_int8_row(row, out),
        Precision::Int8 => asymmetric_u8_row(row, out),
    }
}

/// One weight row, symmetric int8: `s · round(w / s)`, `s = max|w| / 127`.
#[inline(always)]
fn symmetric_int8_row(row: &[f32], out: &mut [f32]) {
    let max = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    if max == 0.0 || !max.is_finite() {
        out.copy_from_slice(row);
        return;
    }
    let scale = max / 127.0;
    for (o, &v) in out.iter_mut().zip(row) {
        *o = (v / scale).round().clamp(-127.0, 127.0) * scale;
    }
}

/// The largest activation code: activations are quantized to 7 bits, `q` in [0, 127], as
/// PyTorch's fbgemm does on x86 (`reduce_range`), so that a pair of products `q · w` (|w| <=
/// 127) fits the 16-bit sums of AVX2's `vpmaddubsw` without saturating.
pub(crate) const ACTIVATION_LEVELS: f32 = 127.0;

/// The per-row activation quantizer: scale `s = (max − min) / 127`, its reciprocal, and zero
/// point `z = round(−min / s)` over the row with 0 included, or `None` when the row is all
/// zero or not finite (nothing to quantize).
#[inline(always)]
pub(crate) fn activation_params(row: &[f32]) -> Option<(f32, f32, f32)> {
    let (min, max) = row
        .iter()
        .fold((0.0f32, 0.0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let range = max - min;
    if range == 0.0 || !range.is_finite() {
        return None;
    }
    let scale = range / ACTIVATION_LEVELS;
    let zero = (-min / scale).round().clamp(0.0, ACTIVATION_LEVELS);
    Some((scale, 1.0 / scale, zero))
}

/// The code of `v`: `clamp(round(v · (1/s)) + z, 0, 127)` (a multiply by the reciprocal, as
/// fbgemm quantizes).
#[inline(always)]
pub(crate) fn activation_code(v: f32, inv_scale: f32, zero: f32) -> f32 {
    ((v * inv_scale).round() + zero).clamp(0.0, ACTIVATION_LEVELS)
}

/// One activation row, asymmetric 7-bit: `s · (q − z)`.
#[inline(always)]
fn asymmetric_u8_row(row: &[f32], out: &mut [f32]) {
    let Some((scale, inv_scale, zero)) = activation_params(row) else {
        out.copy_from_slice(row);
        return;
    };
    for (o, &v) in out.iter_mut().zip(row) {
        *o = (activation_code(v, inv_scale, zero) - zero) * scale;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use proptest::prelude::*;

    fn quantized(x: &Array2<f32>, p: Precision, symmetric: bool) -> Array2<f32> {
        let mut out = Array2::zeros(x.dim());
        quantize_rows_into(x.view(), out.view_mut(), p, symmetric).unwrap();
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::util::proptest_cases(64)))]

        /// bf16 rounding is within half an ulp (2^-8 relative) and idempotent.
        #[test]
        fn bf16_rounding_is_within_half_an_ulp(v in -1e30f32..1e30) {
            let r = round_bf16(v);
            prop_assert!((r - v).abs() <= v.abs() * (1.0 / 256.0) * 1.0001);
            prop_assert_eq!(round_bf16(r), r);
            prop_assert_eq!(r.to_bits() & 0xFFFF, 0);
        }

        /// Each int8 value is within half a step of its input, the step being the row's
        /// scale; weights keep their sign and the row's largest magnitude exactly.
        #[test]
        fn int8_error_is_at_most_half_a_step(
            values in proptest::collection::vec(-50.0f32..50.0, 1..40),
        ) {
            let x = Array2::from_shape_vec((1, values.len()), values.clone()).unwrap();
            let w = quantized(&x, Precision::Int8, true);
            let max = values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let step = max / 127.0;
            for (&q, &v) in w.iter().zip(&values) {
                prop_assert!((q - v).abs() <= step * 0.5001 + 1e-6, "{} vs {}", q, v);
            }
            let a = quantized(&x, Precision::Int8, false);
            let (lo, hi) = values.iter().fold((0.0f32, 0.0f32), |(l, h), &v| (l.min(v), h.max(v)));
            let step = (hi - lo) / ACTIVATION_LEVELS;
            for (&q, &v) in a.iter().zip(&values) {
                prop_assert!((q - v).abs() <= step * 0.5001 + 1e-5, "{} vs {}", q, v);
            }
        }
    }

    /// The dispatched (AVX2) quantizer gives the bits of the baseline one, ties included.
    #[test]
    fn every_build_of_the_quantizer_gives_the_same_bits() {
        let row: Vec<f32> = (0..203)
            .map(|i| match i % 4 {
                0 => (i as f32 - 100.0) * 0.5, // exact halves: ties of round()
                1 => (i as f32 * 0.731).sin() * 40.0,
                2 => -(i as f32) / 3.0,
                _ => 1e-3 * i as f32,
            })
            .collect();
        for precision in Precision::ALL {
            for symmetric in [true, false] {
                let mut fast = vec![0.0; row.len()];
                let mut base = vec![0.0; row.len()];
                quantize_row(&row, &mut fast, *precision, symmetric);
                quantize_row_with(&row, &mut base, *precision, symmetric);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&fast), bits(&base), "{precision} {symmetric}");
            }
        }
    }

    #[test]
    fn zeros_are_exact_and_f32_is_a_copy() {
        let x = Array2::from_shape_vec((2, 3), vec![0.0, 1.3, -0.7, 0.0, 0.0, 0.0]).unwrap();
        for p in Precision::ALL {
            for symmetric in [true, false] {
                let q = quantized(&x, *p, symmetric);
                assert_eq!(q[[0, 0]], 0.0, "{p} {symmetric}");
                assert!(q.row(1).iter().all(|&v| v == 0.0));
            }
        }
        assert_eq!(quantized(&x, Precision::F32, false), x);
    }
}

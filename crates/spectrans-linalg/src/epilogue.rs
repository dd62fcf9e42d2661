//! What happens to a product's sums before they land in C: a bias, a function of each row, an
//! add into what C held, an elementwise scale.

use std::fmt;

use ndarray::ArrayViewMut2;
use rayon::prelude::*;

use crate::error::{LinalgError, shape_error};

/// A function of a row of C and the bias: `row[j] = f(row[j] + bias[j])` for every `j` (the
/// bias has the row's length). Any `Fn(&mut [f32], &[f32]) + Sync` is one.
///
/// ```
/// use spectrans_linalg::RowMap;
/// let relu = |row: &mut [f32], bias: &[f32]| {
///     row.iter_mut().zip(bias).for_each(|(v, b)| *v = (*v + b).max(0.0));
/// };
/// let mut row = [1.0f32, -3.0];
/// relu.map_row(&mut row, &[0.5, 1.0]);
/// assert_eq!(row, [1.5, 0.0]);
/// ```
pub trait RowMap: Sync {
    /// `row[j] = f(row[j] + bias[j])`.
    fn map_row(&self, row: &mut [f32], bias: &[f32]);
}

impl<F: Fn(&mut [f32], &[f32]) + Sync> RowMap for F {
    fn map_row(&self, row: &mut [f32], bias: &[f32]) {
        self(row, bias)
    }
}

/// What happens to `A · B` before it lands in C: `C = f(A · B + bias) ⊙ S`, or with
/// `accumulate`, `C = f(C + A · B + bias) ⊙ S` (a residual add fused into the product).
/// Without a row function `f` the identity; without a bias zero; without a scale S one.
#[derive(Clone, Copy, Default)]
pub struct Epilogue<'a> {
    /// Add the product to what C holds instead of overwriting it.
    pub accumulate: bool,
    /// Added to every row of C, one value per column.
    pub bias: Option<&'a [f32]>,
    /// Applied to every row after the bias is added ([`RowMap`]; the bias is zero when
    /// there is none).
    pub map: Option<&'a dyn RowMap>,
    /// S: a row-major (m, n) matrix that multiplies C element by element, last (a
    /// backward's `⊙ f'(z)`, while the block of C is still in cache).
    pub scale: Option<&'a [f32]>,
}

impl fmt::Debug for Epilogue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Epilogue")
            .field("accumulate", &self.accumulate)
            .field("bias", &self.bias)
            .field("map", &self.map.map(|_| "RowMap"))
            .field("scale", &self.scale)
            .finish()
    }
}

impl Epilogue<'_> {
    /// Whether C gets the sums alone (or added), with nothing applied to its rows.
    pub fn sums_only(&self) -> bool {
        self.bias.is_none() && self.map.is_none() && self.scale.is_none()
    }
}

/// The epilogue's bias, row function and scale on C computed by another product (any
/// layout), split over the rayon pool where C's rows are contiguous; the same per-row work as
/// the fused epilogue, so both give the same bits. (`accumulate` is the product's business.)
pub(crate) fn apply_epilogue(mut dst: ArrayViewMut2<'_, f32>, epilogue: Epilogue<'_>) {
    let (m, n) = dst.dim();
    if m == 0 || n == 0 || epilogue.sums_only() {
        return;
    }
    let zeros = if epilogue.bias.is_none() {
        vec![0.0f32; n]
    } else {
        Vec::new()
    };
    let bias = epilogue.bias.unwrap_or(&zeros);
    let row_work = epilogue.bias.is_some() || epilogue.map.is_some();
    let one_row = |r: usize, row: &mut [f32]| {
        if row_work {
            finish_row(row, bias, epilogue.map);
        }
        if let Some(scale) = epilogue.scale {
            scale_row(row, &scale[r * n..(r + 1) * n]);
        }
    };
    if let Some(rows) = dst.as_slice_mut() {
        rows.par_chunks_mut(n)
            .enumerate()
            .with_min_len(crate::util::min_rows(n))
            .for_each(|(r, row)| one_row(r, row));
        return;
    }
    // Rows that are not contiguous (strided or transposed C): one row at a time through a
    // buffer, the same per-row work.
    let mut values = vec![0.0f32; n];
    for (r, mut row) in dst.rows_mut().into_iter().enumerate() {
        values.iter_mut().zip(&row).for_each(|(v, &c)| *v = c);
        one_row(r, &mut values);
        row.iter_mut().zip(&values).for_each(|(c, &v)| *c = v);
    }
}

/// `row ⊙= scale`.
pub(crate) fn scale_row(row: &mut [f32], scale: &[f32]) {
    row.iter_mut().zip(scale).for_each(|(v, s)| *v *= s);
}

/// `row = f(row + bias)` (or `row += bias` without a row function).
pub(crate) fn finish_row(row: &mut [f32], bias: &[f32], map: Option<&dyn RowMap>) {
    match map {
        Some(f) => f.map_row(row, bias),
        None => row.iter_mut().zip(bias).for_each(|(v, b)| *v += b),
    }
}

/// The bias has n values, the scale m · n.
pub(crate) fn check_epilogue(
    epilogue: &Epilogue<'_>,
    m: usize,
    n: usize,
) -> Result<(), LinalgError> {
    if let Some(bias) = epilogue.bias
        && bias.len() != n
    {
        return Err(shape_error("matmul bias", format!("({n})"), &[bias.len()]));
    }
    if let Some(scale) = epilogue.scale
        && scale.len() != m * n
    {
        return Err(shape_error(
            "matmul scale",
            format!("{m} x {n} values"),
            &[scale.len()],
        ));
    }
    Ok(())
}

//! Moving a `(rows, w)` block of a strided array into `w` contiguous columns and back.
//!
//! The sequence axis of a `(B, n, D)` array has stride `D`, so each length-`n` signal is
//! scattered through memory. A transform first copies a block of `w` neighbouring columns
//! into a column-major scratch (`w` contiguous signals of length `rows`), runs the `w`
//! transforms there, and copies the results back. Rows of the block are read and written
//! as contiguous slices when the layout allows, element by element otherwise.

use ndarray::{ArrayView2, ArrayViewMut2};

/// Rows handled together, so that each column of the scratch is written in short runs.
const ROW_BLOCK: usize = 8;

/// `dst[j * rows + r] = src[r, j]` for the `(rows, w)` block `src`.
pub(crate) fn gather_columns<T: Copy>(src: ArrayView2<'_, T>, dst: &mut [T]) {
    let (rows, width) = src.dim();
    if rows == 0 || width == 0 {
        return;
    }
    let dst = &mut dst[..rows * width];
    let mut r0 = 0;
    // Fast path: ROW_BLOCK rows at a time, each a contiguous slice, so that every column
    // of the scratch receives a run of ROW_BLOCK consecutive values.
    while r0 + ROW_BLOCK <= rows {
        let mut block: [&[T]; ROW_BLOCK] = [&[]; ROW_BLOCK];
        let mut all_contiguous = true;
        for (i, slot) in block.iter_mut().enumerate() {
            match src.row(r0 + i).to_slice() {
                Some(row) => *slot = row,
                None => all_contiguous = false,
            }
        }
        if !all_contiguous {
            break;
        }
        for (j, column) in dst.chunks_exact_mut(rows).enumerate() {
            for (out, row) in column[r0..r0 + ROW_BLOCK].iter_mut().zip(block.iter()) {
                *out = row[j];
            }
        }
        r0 += ROW_BLOCK;
    }
    for r in r0..rows {
        let row = src.row(r);
        match row.to_slice() {
            Some(values) => {
                for (j, &v) in values.iter().enumerate() {
                    dst[j * rows + r] = v;
                }
            }
            None => {
                for (j, &v) in row.iter().enumerate() {
                    dst[j * rows + r] = v;
                }
            }
        }
    }
}

/// `dst[r, j] = map(src[j * rows + r])` for the `(rows, w)` block `dst`.
pub(crate) fn scatter_columns<T: Copy, U>(
    src: &[T],
    mut dst: ArrayViewMut2<'_, U>,
    map: impl Fn(T) -> U,
) {
    let (rows, width) = dst.dim();
    let src = &src[..rows * width];
    for (r, mut row) in dst.rows_mut().into_iter().enumerate() {
        match row.as_slice_mut() {
            Some(out) => {
                for (j, o) in out.iter_mut().enumerate() {
                    *o = map(src[j * rows + r]);
                }
            }
            None => {
                for (j, o) in row.iter_mut().enumerate() {
                    *o = map(src[j * rows + r]);
                }
            }
        }
    }
}

/// Copies a `(rows, w)` view into a row-major slice of `rows · w` elements.
pub(crate) fn copy_rows_out<T: Copy>(src: ArrayView2<'_, T>, dst: &mut [T]) {
    let width = src.ncols();
    for (row, out) in src
        .rows()
        .into_iter()
        .zip(dst.chunks_exact_mut(width.max(1)))
    {
        match row.to_slice() {
            Some(values) => out.copy_from_slice(values),
            None => out.iter_mut().zip(row.iter()).for_each(|(o, &v)| *o = v),
        }
    }
}

/// Copies a row-major slice of `rows · w` elements into a `(rows, w)` view.
pub(crate) fn copy_rows_in<T: Copy>(src: &[T], mut dst: ArrayViewMut2<'_, T>) {
    let width = dst.ncols();
    for (mut row, values) in dst
        .rows_mut()
        .into_iter()
        .zip(src.chunks_exact(width.max(1)))
    {
        match row.as_slice_mut() {
            Some(out) => out.copy_from_slice(values),
            None => row.iter_mut().zip(values).for_each(|(o, &v)| *o = v),
        }
    }
}

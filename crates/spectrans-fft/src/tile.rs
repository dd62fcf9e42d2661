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

/// Rows of this many elements are copied as one fixed-size block (inlined, no call to
/// `memcpy` per row): the width of the filter's column tiles.
pub(crate) const FIXED_WIDTH: usize = 16;

/// `dst.copy_from_slice(src)`, as one fixed-size copy when the rows are [`FIXED_WIDTH`] long.
#[inline(always)]
pub(crate) fn copy_row<T: Copy>(dst: &mut [T], src: &[T]) {
    match (
        <&mut [T; FIXED_WIDTH]>::try_from(&mut *dst),
        <&[T; FIXED_WIDTH]>::try_from(src),
    ) {
        (Ok(dst), Ok(src)) => *dst = *src,
        _ => dst.copy_from_slice(src),
    }
}

/// Rows ahead of the one copied that [`copy_rows_out`] and [`copy_rows_in`] ask the CPU
/// for: a view's rows lie a whole row of its parent apart, across pages, a stride the
/// hardware prefetchers do not follow.
const PREFETCH_ROWS: isize = 32;

/// Asks the CPU for the cache lines of the first and the last of `len` elements from
/// `start` on (a hint: it reads nothing into the program and never faults, so any address
/// will do). The crate's one prefetch.
#[inline(always)]
pub(crate) fn prefetch_run<T>(start: *const T, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let last = start.wrapping_add(len.max(1) - 1);
        for p in [start, last] {
            // SAFETY: a prefetch is a hint: it reads nothing into the program and cannot
            // fault, whatever the address (`wrapping_add` computes it without UB).
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>()) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (start, len);
}

/// Copies a `(rows, w)` view into a row-major slice of `rows · w` elements.
pub(crate) fn copy_rows_out<T: Copy>(src: ArrayView2<'_, T>, dst: &mut [T]) {
    let width = src.ncols();
    let (ahead, stride) = (src.as_ptr(), src.strides()[0]);
    for (t, (row, out)) in src
        .rows()
        .into_iter()
        .zip(dst.chunks_exact_mut(width.max(1)))
        .enumerate()
    {
        prefetch_run(
            ahead.wrapping_offset((t as isize + PREFETCH_ROWS) * stride),
            width,
        );
        match row.to_slice() {
            Some(values) => copy_row(out, values),
            None => out.iter_mut().zip(row.iter()).for_each(|(o, &v)| *o = v),
        }
    }
}

/// Copies a row-major slice of `rows · w` elements into a `(rows, w)` view.
pub(crate) fn copy_rows_in<T: Copy>(src: &[T], mut dst: ArrayViewMut2<'_, T>) {
    let width = dst.ncols();
    let (ahead, stride) = (dst.as_ptr(), dst.strides()[0]);
    for (t, (mut row, values)) in dst
        .rows_mut()
        .into_iter()
        .zip(src.chunks_exact(width.max(1)))
        .enumerate()
    {
        prefetch_run(
            ahead.wrapping_offset((t as isize + PREFETCH_ROWS) * stride),
            width,
        );
        match row.as_slice_mut() {
            Some(out) => copy_row(out, values),
            None => row.iter_mut().zip(values).for_each(|(o, &v)| *o = v),
        }
    }
}

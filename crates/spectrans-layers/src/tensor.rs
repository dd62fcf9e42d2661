//! Small shape helpers shared by the layers.

use ndarray::{Array2, Array3, ArrayView3, CowArray, Ix2};

use crate::error::{LayerError, shape_error};

/// Rows of work below which a loop stays on one thread.
pub(crate) const PARALLEL_MIN_ELEMS: usize = 1 << 15;

/// Checks that `x` is (batch, seq, `dim`).
pub(crate) fn check_hidden(
    what: &str,
    x: &ArrayView3<'_, f32>,
    dim: usize,
) -> Result<(), LayerError> {
    if x.dim().2 != dim {
        return Err(shape_error(what, format!("(batch, seq, {dim})"), x.shape()));
    }
    Ok(())
}

/// A (batch, seq, dim) view as (batch * seq, dim) rows, copying only if not in standard layout.
pub(crate) fn rows_of<'a>(
    x: &'a ArrayView3<'_, f32>,
) -> Result<CowArray<'a, f32, Ix2>, LayerError> {
    let (b, n, d) = x.dim();
    x.as_standard_layout()
        .into_shape_with_order((b * n, d))
        .map_err(|_| shape_error("activation", format!("({b}, {n}, {d})"), x.shape()))
}

/// Reshapes a (rows, dim) array back into (batch, seq, dim); `rows == batch * seq` by construction.
pub(crate) fn to_3d(a: Array2<f32>, batch: usize, seq: usize) -> Result<Array3<f32>, LayerError> {
    let dim = a.ncols();
    let found = a.shape().to_vec();
    a.into_shape_with_order((batch, seq, dim))
        .map_err(|_| shape_error("rows", format!("({}, {dim})", batch * seq), &found))
}

/// `Σ xs` in f32 with 8 independent accumulators (vectorizes; pairwise-like accuracy).
#[inline]
pub(crate) fn sum8(xs: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = xs.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for v in rest {
        s += v;
    }
    s
}

/// Minimum rows per rayon task so each task has about `PARALLEL_MIN_ELEMS / 4` elements.
pub(crate) fn min_rows(dim: usize) -> usize {
    (PARALLEL_MIN_ELEMS / 4 / dim.max(1)).max(1)
}

/// `values ⊙= scale` (equal lengths, rows of `width`), split over the rayon pool.
pub(crate) fn scale_in_place(values: &mut [f32], scale: &[f32], width: usize) {
    use rayon::prelude::*;
    let chunk = width.max(1) * 64;
    values
        .par_chunks_mut(chunk)
        .zip(scale.par_chunks(chunk))
        .for_each(|(v, s)| v.iter_mut().zip(s).for_each(|(v, s)| *v *= s));
}

/// `dst += src` elementwise, split over the rayon pool in contiguous chunks (falls back to a
/// parallel `Zip` for non-standard layouts). Shapes must match.
pub(crate) fn par_add_assign<D: ndarray::Dimension>(
    what: &str,
    dst: &mut ndarray::Array<f32, D>,
    src: &ndarray::ArrayView<'_, f32, D>,
) -> Result<(), LayerError> {
    use rayon::prelude::*;
    if dst.shape() != src.shape() {
        return Err(shape_error(what, format!("{:?}", dst.shape()), src.shape()));
    }
    match (dst.as_slice_mut(), src.as_slice()) {
        (Some(d), Some(s)) => {
            const CHUNK: usize = PARALLEL_MIN_ELEMS / 2;
            d.par_chunks_mut(CHUNK)
                .zip(s.par_chunks(CHUNK))
                .for_each(|(d, s)| d.iter_mut().zip(s).for_each(|(d, s)| *d += s));
        }
        _ => ndarray::Zip::from(dst)
            .and(src)
            .par_for_each(|d, &s| *d += s),
    }
    Ok(())
}

/// `Σ_rows m` of a contiguous (rows, n) slice added into `acc` (len n), split over the pool.
/// Blocks of rows are fixed by `n` alone and their sums are added in block order, so the bits
/// do not depend on the thread count or on work stealing.
pub(crate) fn par_add_column_sums(acc: &mut [f32], m: &[f32]) {
    use rayon::prelude::*;
    let n = acc.len();
    if n == 0 {
        return;
    }
    let rows_per_task = min_rows(n).max(16);
    let partials: Vec<Vec<f32>> = m
        .par_chunks(n * rows_per_task)
        .map(|block| {
            let mut s = vec![0.0f32; n];
            for r in block.chunks_exact(n) {
                s.iter_mut().zip(r).for_each(|(s, v)| *s += v);
            }
            s
        })
        .collect();
    add_in_order(acc, &partials);
}

/// `acc += Σ_t partials[t]`, summed in task order: the fixed-order end of a parallel reduction
/// (rayon's `reduce` groups partial results as work stealing happens to split them).
pub(crate) fn add_in_order(acc: &mut [f32], partials: &[Vec<f32>]) {
    let Some((first, rest)) = partials.split_first() else {
        return;
    };
    let mut total = first.clone();
    for p in rest {
        total.iter_mut().zip(p).for_each(|(t, v)| *t += v);
    }
    acc.iter_mut().zip(&total).for_each(|(a, t)| *a += t);
}

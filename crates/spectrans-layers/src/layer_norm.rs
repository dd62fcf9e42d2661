//! LayerNorm over the last axis: `y = (x - mean) / sqrt(var + eps) * w + b`, biased variance.

use ndarray::{Array1, Array2, Array3, ArrayView2, ArrayView3, ArrayViewMut2};
use spectrans_linalg::{contiguous, contiguous_mut};

use crate::dropout::TrainContext;
use crate::error::{LayerError, shape_error};
use crate::reuse::{push_storage, take_overwritten};
use rayon::iter::Either;
use rayon::prelude::*;

use crate::tensor::{add_in_order, check_hidden, min_rows, rows_of, sum8, to_3d};

/// Layer normalization over the hidden axis (PyTorch `nn.LayerNorm(dim, eps)`).
#[derive(Debug, Clone)]
pub struct LayerNorm {
    /// `weight` (gamma), shape (dim), initialized to ones.
    pub weight: Array1<f32>,
    /// `bias` (beta), shape (dim), initialized to zeros.
    pub bias: Array1<f32>,
    /// The epsilon added to the variance.
    pub eps: f32,
}

/// Gradients of a [`LayerNorm`].
#[derive(Debug, Clone)]
pub struct LayerNormGrads {
    /// dL/dweight.
    pub weight: Array1<f32>,
    /// dL/dbias.
    pub bias: Array1<f32>,
}

/// What [`LayerNorm::backward`] needs.
#[derive(Debug, Clone)]
pub struct LayerNormCache {
    /// `xhat = (x - mean) * rstd`, (batch * seq, dim).
    pub normalized: Array2<f32>,
    /// `rstd = 1 / sqrt(var + eps)` per row.
    pub rstd: Array1<f32>,
    /// (batch, seq) of the input.
    pub batch_seq: (usize, usize),
}

impl LayerNormCache {
    /// Adds its large arrays to `out`, for the next step ([`crate::reuse`]).
    pub fn into_arrays(self, out: &mut Vec<Vec<f32>>) {
        push_storage(self.normalized, out);
    }
}

/// `out = (x - mean) * rstd * w + b` for one row: the eval forward's arithmetic, shared by
/// the whole-array and the block-of-rows paths so that both give the same bits.
#[inline]
fn normalize_row(out: &mut [f32], x: &[f32], (mean, rstd): (f32, f32), w: &[f32], b: &[f32]) {
    for (((o, &v), &w), &b) in out.iter_mut().zip(x).zip(w).zip(b) {
        *o = (v - mean) * rstd * w + b;
    }
}

/// Mean and `1 / sqrt(var + eps)` of one row, two-pass in f32.
#[inline]
fn moments(row: &[f32], eps: f32) -> (f32, f32) {
    let n = row.len().max(1) as f32;
    let mean = sum8(row) / n;
    let mut acc = [0.0f32; 8];
    let chunks = row.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            let d = v - mean;
            *a += d * d;
        }
    }
    let mut ss = acc.iter().sum::<f32>();
    for v in rest {
        ss += (v - mean) * (v - mean);
    }
    let var = (ss / n).max(0.0);
    (mean, 1.0 / (var + eps).sqrt())
}

impl LayerNorm {
    /// Weight ones, bias zeros.
    pub fn new(dim: usize, eps: f32) -> Self {
        Self {
            weight: Array1::ones(dim),
            bias: Array1::zeros(dim),
            eps,
        }
    }

    /// The normalized width.
    pub fn dim(&self) -> usize {
        self.weight.len()
    }

    /// The public fields agree: `bias` has `weight`'s length. Checked on every use, so a field
    /// set to the wrong length is a typed error, never a panic or a silently shortened row.
    fn check_params(&self) -> Result<(), LayerError> {
        if self.bias.len() != self.weight.len() {
            return Err(shape_error(
                "LayerNorm bias",
                format!("({}) to match the weight", self.weight.len()),
                self.bias.shape(),
            ));
        }
        Ok(())
    }

    /// Eval forward on (batch, seq, dim).
    ///
    /// ```
    /// use ndarray::array;
    /// use spectrans_layers::LayerNorm;
    /// let y = LayerNorm::new(2, 0.0).forward(array![[[1.0f32, 3.0]]].view()).unwrap();
    /// assert_eq!(y, array![[[-1.0, 1.0]]]);
    /// ```
    pub fn forward(&self, x: ArrayView3<'_, f32>) -> Result<Array3<f32>, LayerError> {
        let (b, n, d) = x.dim();
        let mut out = Array3::<f32>::zeros((b, n, d));
        self.normalize_into(x, &mut out, None)?;
        Ok(out)
    }

    /// Training forward; caches `xhat` and `rstd`. (No dropout; `ctx` is unused.) The same
    /// kernel as [`LayerNorm::forward`], so both give the same bits.
    pub fn forward_train(
        &self,
        x: ArrayView3<'_, f32>,
        _ctx: &mut TrainContext,
    ) -> Result<(Array3<f32>, LayerNormCache), LayerError> {
        let (b, n, d) = x.dim();
        // Both are written whole by normalize_into: arrays of the step before will do.
        let mut normalized = take_overwritten(b * n, d);
        let mut rstd = Array1::<f32>::zeros(b * n);
        let mut out = take_overwritten(b * n, d)
            .into_shape_with_order((b, n, d))
            .expect("b * n rows of d values");
        self.normalize_into(x, &mut out, Some((&mut normalized, &mut rstd)))?;
        Ok((
            out,
            LayerNormCache {
                normalized,
                rstd,
                batch_seq: (b, n),
            },
        ))
    }

    /// The one forward kernel: `out = xhat * w + b` row by row, and when `cache` is given,
    /// `xhat` (rows, dim) and `rstd` (rows) into it. `out` and the cache are shaped by the
    /// caller from `x`.
    fn normalize_into(
        &self,
        x: ArrayView3<'_, f32>,
        out: &mut Array3<f32>,
        cache: Option<(&mut Array2<f32>, &mut Array1<f32>)>,
    ) -> Result<(), LayerError> {
        self.check_params()?;
        check_hidden("LayerNorm input", &x, self.dim())?;
        let d = self.dim();
        if d == 0 {
            return Ok(());
        }
        let rows = rows_of(&x)?;
        let xs = contiguous("LayerNorm input", &rows)?;
        let ws = contiguous("LayerNorm weight", &self.weight)?;
        let bs = contiguous("LayerNorm bias", &self.bias)?;
        let eps = self.eps;
        let row_count = xs.len() / d;
        let cached = match cache {
            Some((normalized, rstd)) => Either::Left(
                contiguous_mut("LayerNorm cache", normalized)?
                    .par_chunks_mut(d)
                    .zip(contiguous_mut("LayerNorm rstd", rstd)?.par_iter_mut())
                    .map(Some),
            ),
            None => Either::Right((0..row_count).into_par_iter().map(|_| None)),
        };
        contiguous_mut("LayerNorm output", out)?
            .par_chunks_mut(d)
            .zip(xs.par_chunks(d))
            .zip(cached)
            .with_min_len(min_rows(d))
            .for_each(|((o, r), cached)| {
                let (mean, rstd) = moments(r, eps);
                match cached {
                    Some((xh, s)) => {
                        *s = rstd;
                        for ((((xh, o), &v), &w), &b) in
                            xh.iter_mut().zip(o.iter_mut()).zip(r).zip(ws).zip(bs)
                        {
                            *xh = (v - mean) * rstd;
                            *o = *xh * w + b;
                        }
                    }
                    None => normalize_row(o, r, (mean, rstd), ws, bs),
                }
            });
        Ok(())
    }

    /// Eval forward of a block of rows (x (rows, dim) into out (rows, dim)) on the calling
    /// thread: the per-row arithmetic of [`LayerNorm::forward`], so the same bits.
    pub(crate) fn normalize_rows(
        &self,
        x: ArrayView2<'_, f32>,
        mut out: ArrayViewMut2<'_, f32>,
    ) -> Result<(), LayerError> {
        self.check_params()?;
        let d = self.dim();
        if x.ncols() != d || out.dim() != x.dim() {
            return Err(shape_error(
                "LayerNorm rows",
                format!("({}, {d}) in and out", x.nrows()),
                out.shape(),
            ));
        }
        let ws = contiguous("LayerNorm weight", &self.weight)?;
        let bs = contiguous("LayerNorm bias", &self.bias)?;
        let x = x.as_standard_layout();
        let xs = contiguous("LayerNorm input", &x)?;
        let os = contiguous_mut("LayerNorm output", &mut out)?;
        for (o, r) in os.chunks_exact_mut(d.max(1)).zip(xs.chunks_exact(d.max(1))) {
            normalize_row(o, r, moments(r, self.eps), ws, bs);
        }
        Ok(())
    }

    /// Backward: `dx = rstd (ĝ - mean(ĝ) - x̂ mean(ĝ x̂))` with `ĝ = dy w`;
    /// accumulates `dw += Σ dy x̂`, `db += Σ dy`.
    pub fn backward(
        &self,
        cache: &LayerNormCache,
        grad_out: ArrayView3<'_, f32>,
        grads: &mut LayerNormGrads,
    ) -> Result<Array3<f32>, LayerError> {
        self.check_params()?;
        let (b, n) = cache.batch_seq;
        let d = self.dim();
        if grad_out.dim() != (b, n, d) {
            return Err(shape_error(
                "LayerNorm output gradient",
                format!("({b}, {n}, {d})"),
                grad_out.shape(),
            ));
        }
        if grads.weight.len() != d || grads.bias.len() != d {
            return Err(shape_error(
                "LayerNorm gradient buffer",
                format!("({d})"),
                grads.weight.shape(),
            ));
        }
        let mut dx = Array2::<f32>::zeros((b * n, d));
        if d == 0 {
            return to_3d(dx, b, n);
        }
        let dy = rows_of(&grad_out)?;
        let dys = contiguous("LayerNorm output gradient", &dy)?;
        let xhs = contiguous("LayerNorm cache", &cache.normalized)?;
        let rstds = contiguous("LayerNorm rstd", &cache.rstd)?;
        if xhs.len() != dys.len() || rstds.len() != b * n {
            return Err(shape_error(
                "LayerNorm cache",
                format!("({}, {d})", b * n),
                cache.normalized.shape(),
            ));
        }
        let w = contiguous("LayerNorm weight", &self.weight)?;
        let inv_d = 1.0 / d as f32;
        let rows_per_task = min_rows(d).max(16);
        let span = rows_per_task * d;
        // One parallel sweep: dx per row, and per-task partial sums of dw, db added in task order.
        let partial = contiguous_mut("LayerNorm input gradient", &mut dx)?
            .par_chunks_mut(span)
            .zip(dys.par_chunks(span))
            .zip(xhs.par_chunks(span))
            .zip(rstds.par_chunks(rows_per_task))
            .map(|(((o, g), xh), rs)| {
                let mut dw = vec![0.0f32; d];
                let mut db = vec![0.0f32; d];
                for (((o, g), xh), &rstd) in o
                    .chunks_exact_mut(d)
                    .zip(g.chunks_exact(d))
                    .zip(xh.chunks_exact(d))
                    .zip(rs)
                {
                    let mut mean_g = 0.0f32;
                    let mut mean_gx = 0.0f32;
                    for ((((&g, &xh), &w), dw), db) in g
                        .iter()
                        .zip(xh)
                        .zip(w)
                        .zip(dw.iter_mut())
                        .zip(db.iter_mut())
                    {
                        let gh = g * w;
                        mean_g += gh;
                        mean_gx += gh * xh;
                        *dw += g * xh;
                        *db += g;
                    }
                    mean_g *= inv_d;
                    mean_gx *= inv_d;
                    for (((o, &g), &xh), &w) in o.iter_mut().zip(g).zip(xh).zip(w) {
                        *o = rstd * (g * w - mean_g - xh * mean_gx);
                    }
                }
                (dw, db)
            })
            .collect::<Vec<_>>();
        let (dw, db): (Vec<Vec<f32>>, Vec<Vec<f32>>) = partial.into_iter().unzip();
        add_in_order(
            contiguous_mut("LayerNorm weight gradient", &mut grads.weight)?,
            &dw,
        );
        add_in_order(
            contiguous_mut("LayerNorm bias gradient", &mut grads.bias)?,
            &db,
        );
        to_3d(dx, b, n)
    }
}

impl LayerNormGrads {
    /// Zero gradients shaped like `ln`.
    pub fn zeros_like(ln: &LayerNorm) -> Self {
        Self {
            weight: Array1::zeros(ln.dim()),
            bias: Array1::zeros(ln.dim()),
        }
    }
}

crate::parameters!(LayerNorm, LayerNormGrads => [tensor weight, tensor bias]);

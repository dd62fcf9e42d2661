//! Output heads: classification and regression over pooled tokens, and per-token (sequence / lm).
//!
//! Names follow spectrans: `output_head.classifier`, `output_head.regressor`,
//! `output_head.lm_head`. Each head applies dropout to its input in training, as spectrans does.

use ndarray::{Array2, Array3, ArrayView2, ArrayView3, ArrayViewD, ArrayViewMutD, Axis, s};
use rand::Rng;
use spectrans_layers::{
    Dropout, DropoutMask, Linear, LinearCache, LinearGrads, Parameters, TrainContext,
};

use crate::error::ModelError;

/// How a head reduces (batch, seq, hidden) to (batch, hidden).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// The first token (spectrans' default for classification).
    Cls,
    /// The mean over the tokens the attention mask keeps (spectrans' default for regression).
    Mean,
    /// The maximum over kept tokens (masked tokens are filled with -1e9 first, as spectrans does).
    Max,
}

/// What the head does with the hidden states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadKind {
    /// Linear on pooled tokens to `num_classes` (`output_head.classifier`).
    Classification,
    /// Linear on pooled tokens to 1 (`output_head.regressor`).
    Regression,
    /// Linear on every token (`output_head.lm_head`), for `sequence` and `lm` outputs.
    Sequence,
}

/// An output head.
#[derive(Debug, Clone)]
pub struct OutputHead {
    /// Which head.
    pub kind: HeadKind,
    /// Pooling for classification and regression (ignored by sequence heads).
    pub pooling: Pooling,
    /// The head's linear layer.
    pub linear: Linear,
    dropout: Dropout,
}

/// Gradients of an [`OutputHead`], same names.
#[derive(Debug, Clone)]
pub struct OutputHeadGrads {
    kind: HeadKind,
    /// Gradients of the linear layer.
    pub linear: LinearGrads,
}

/// What the head's backward needs.
#[derive(Debug)]
pub struct OutputHeadCache {
    dims: (usize, usize, usize),
    /// Row weights of the pooling: for mean, 1/count or 0; for max, the argmax index per (b, d).
    pooling: PoolingCache,
    dropout: DropoutMask,
    linear: LinearCache,
}

#[derive(Debug)]
enum PoolingCache {
    Cls,
    Mean(Array2<f32>),
    Max(Array2<usize>),
    Tokens,
}

fn local_name(kind: HeadKind) -> &'static str {
    match kind {
        HeadKind::Classification => "classifier.",
        HeadKind::Regression => "regressor.",
        HeadKind::Sequence => "lm_head.",
    }
}

impl OutputHead {
    /// A head with PyTorch's default Linear initialisation.
    pub fn new(
        kind: HeadKind,
        pooling: Pooling,
        hidden_dim: usize,
        out_dim: usize,
        dropout: f32,
        rng: &mut impl Rng,
    ) -> Result<Self, ModelError> {
        Ok(Self {
            kind,
            pooling,
            linear: Linear::new(hidden_dim, out_dim, rng),
            dropout: Dropout::new(dropout)?,
        })
    }

    /// The output width.
    pub fn out_dim(&self) -> usize {
        self.linear.out_features()
    }

    fn pool(
        &self,
        hidden: ArrayView3<'_, f32>,
        mask: Option<ArrayView2<'_, bool>>,
    ) -> (Array2<f32>, PoolingCache) {
        let (b, n, d) = hidden.dim();
        match self.pooling {
            Pooling::Cls => (hidden.slice(s![.., 0, ..]).to_owned(), PoolingCache::Cls),
            Pooling::Mean => {
                // weights[b, t] = mask / count (or 1/N without a mask), as spectrans'
                // (h * mask).sum(1) / mask.sum(1).
                let weights = Array2::from_shape_fn((b, n), |(bi, t)| match &mask {
                    Some(m) => {
                        let count = m.row(bi).iter().filter(|&&k| k).count() as f32;
                        if m[[bi, t]] { 1.0 / count } else { 0.0 }
                    }
                    None => 1.0 / n as f32,
                });
                let mut pooled = Array2::<f32>::zeros((b, d));
                for bi in 0..b {
                    let mut row = pooled.row_mut(bi);
                    let mut count = 0.0f32;
                    for t in 0..n {
                        let keep = mask.as_ref().is_none_or(|m| m[[bi, t]]);
                        if keep {
                            row.scaled_add(1.0, &hidden.slice(s![bi, t, ..]));
                            count += 1.0;
                        }
                    }
                    row.mapv_inplace(|v| v / count);
                }
                (pooled, PoolingCache::Mean(weights))
            }
            Pooling::Max => {
                let mut pooled = Array2::<f32>::from_elem((b, d), f32::NEG_INFINITY);
                let mut arg = Array2::<usize>::zeros((b, d));
                for bi in 0..b {
                    for t in 0..n {
                        let keep = mask.as_ref().is_none_or(|m| m[[bi, t]]);
                        for di in 0..d {
                            let v = if keep { hidden[[bi, t, di]] } else { -1e9 };
                            if v > pooled[[bi, di]] {
                                pooled[[bi, di]] = v;
                                arg[[bi, di]] = t;
                            }
                        }
                    }
                }
                (pooled, PoolingCache::Max(arg))
            }
        }
    }

    /// Eval-mode forward: (B, C) for pooled heads, (B, N, C) for sequence heads.
    pub fn forward(
        &self,
        hidden: ArrayView3<'_, f32>,
        mask: Option<ArrayView2<'_, bool>>,
    ) -> Result<ndarray::ArrayD<f32>, ModelError> {
        let mut ctx = TrainContext::new(0, false);
        Ok(self.forward_train(hidden, mask, &mut ctx)?.0)
    }

    /// Training-mode forward (dropout per `ctx`), with what backward needs.
    pub fn forward_train(
        &self,
        hidden: ArrayView3<'_, f32>,
        mask: Option<ArrayView2<'_, bool>>,
        ctx: &mut TrainContext,
    ) -> Result<(ndarray::ArrayD<f32>, OutputHeadCache), ModelError> {
        let dims = hidden.dim();
        let (b, n, d) = dims;
        let (mut rows, pooling) = match self.kind {
            HeadKind::Sequence => (
                hidden
                    .as_standard_layout()
                    .into_owned()
                    .into_shape_with_order((b * n, d))?,
                PoolingCache::Tokens,
            ),
            _ => self.pool(hidden, mask),
        };
        let dropout = match rows.as_slice_mut() {
            Some(slice) => self.dropout.apply(slice, ctx),
            None => DropoutMask::identity(),
        };
        let (out, linear) = self.linear.forward_train(rows.view(), ctx)?;
        let out = match self.kind {
            HeadKind::Sequence => out
                .into_shape_with_order((b, n, self.out_dim()))?
                .into_dyn(),
            _ => out.into_dyn(),
        };
        Ok((
            out,
            OutputHeadCache {
                dims,
                pooling,
                dropout,
                linear,
            },
        ))
    }

    /// Backward: accumulates into `grads`, returns the gradient w.r.t. the hidden states.
    pub fn backward(
        &self,
        cache: &OutputHeadCache,
        grad_out: ArrayViewD<'_, f32>,
        grads: &mut OutputHeadGrads,
    ) -> Result<Array3<f32>, ModelError> {
        let (b, n, d) = cache.dims;
        let rows = match self.kind {
            HeadKind::Sequence => b * n,
            _ => b,
        };
        let grad_rows = grad_out
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order((rows, self.out_dim()))?;
        let mut g = self
            .linear
            .backward(&cache.linear, grad_rows.view(), &mut grads.linear)?;
        if let Some(slice) = g.as_slice_mut() {
            cache
                .dropout
                .backward_in_place(slice, "output head dropout")?;
        }
        let mut dh = Array3::<f32>::zeros((b, n, d));
        match &cache.pooling {
            PoolingCache::Tokens => {
                dh.assign(&g.into_shape_with_order((b, n, d))?);
            }
            PoolingCache::Cls => dh.slice_mut(s![.., 0, ..]).assign(&g),
            PoolingCache::Mean(weights) => {
                for bi in 0..b {
                    for t in 0..n {
                        let w = weights[[bi, t]];
                        if w != 0.0 {
                            dh.slice_mut(s![bi, t, ..]).scaled_add(w, &g.row(bi));
                        }
                    }
                }
            }
            PoolingCache::Max(arg) => {
                for bi in 0..b {
                    for di in 0..d {
                        dh[[bi, arg[[bi, di]], di]] += g[[bi, di]];
                    }
                }
            }
        }
        Ok(dh)
    }
}

impl OutputHeadGrads {
    /// Zero gradients shaped like `head`.
    pub fn zeros_like(head: &OutputHead) -> Self {
        Self {
            kind: head.kind,
            linear: LinearGrads::zeros_like(&head.linear),
        }
    }
}

impl Parameters for OutputHead {
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, ArrayViewD<'_, f32>)) {
        self.linear
            .visit(&format!("{prefix}{}", local_name(self.kind)), f);
    }
    fn visit_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, ArrayViewMutD<'_, f32>)) {
        self.linear
            .visit_mut(&format!("{prefix}{}", local_name(self.kind)), f);
    }
}

impl Parameters for OutputHeadGrads {
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, ArrayViewD<'_, f32>)) {
        self.linear
            .visit(&format!("{prefix}{}", local_name(self.kind)), f);
    }
    fn visit_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, ArrayViewMutD<'_, f32>)) {
        self.linear
            .visit_mut(&format!("{prefix}{}", local_name(self.kind)), f);
    }
}

/// Checks that an attention mask is (B, N) and keeps at least one token per row.
pub fn check_mask(mask: ArrayView2<'_, bool>, batch: usize, seq: usize) -> Result<(), ModelError> {
    if mask.dim() != (batch, seq) {
        return Err(ModelError::Shape {
            what: "attention_mask",
            expected: format!("({batch}, {seq})"),
            found: mask.shape().to_vec(),
        });
    }
    if let Some(row) = mask.axis_iter(Axis(0)).position(|r| r.iter().all(|&k| !k)) {
        return Err(ModelError::EmptyMaskRow { row });
    }
    Ok(())
}

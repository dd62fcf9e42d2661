//! FeedForward: `fc2(dropout(act(fc1(x))))`, D -> F -> D.

use ndarray::{Array2, Array3, ArrayView2, ArrayView3, ArrayViewD, ArrayViewMutD};
use rand::Rng;
use rayon::prelude::*;

use crate::activation::Activation;
use crate::dropout::{Dropout, DropoutMask, TrainContext};
use crate::error::{shape_error, LayerError};
use crate::fast_math;
use crate::linear::{Linear, LinearGrads};
use crate::params::{join, Parameters};
use crate::tensor::{check_hidden, contiguous, contiguous_mut, min_rows, rows_of, to_3d};

/// The transformer feed-forward network (spectrans `FeedForwardNetwork`).
#[derive(Debug, Clone)]
pub struct FeedForward {
    /// `fc1`: dim -> hidden.
    pub fc1: Linear,
    /// `fc2`: hidden -> dim.
    pub fc2: Linear,
    /// The activation between them.
    pub activation: Activation,
    /// Dropout after the activation.
    pub dropout: Dropout,
}

/// Gradients of a [`FeedForward`].
#[derive(Debug, Clone)]
pub struct FeedForwardGrads {
    /// Of `fc1`.
    pub fc1: LinearGrads,
    /// Of `fc2`.
    pub fc2: LinearGrads,
}

/// What [`FeedForward::backward`] needs.
#[derive(Debug, Clone)]
pub struct FeedForwardCache {
    /// The input rows, (batch * seq, dim).
    pub input: Array2<f32>,
    /// `z = fc1(x)` before the activation, (batch * seq, hidden).
    pub pre_activation: Array2<f32>,
    /// The dropout mask applied to `act(z)`.
    pub mask: DropoutMask,
    /// (batch, seq) of the input.
    pub batch_seq: (usize, usize),
}

impl FeedForward {
    /// `fc1 = Linear(dim, hidden)`, `fc2 = Linear(hidden, dim)` with PyTorch's init.
    pub fn new(
        dim: usize,
        hidden: usize,
        activation: Activation,
        dropout: f32,
        rng: &mut impl Rng,
    ) -> Result<Self, LayerError> {
        let dropout = Dropout::new(dropout)?;
        let fc1 = Linear::new(dim, hidden, rng);
        let fc2 = Linear::new(hidden, dim, rng);
        Ok(Self {
            fc1,
            fc2,
            activation,
            dropout,
        })
    }

    /// Model width D.
    pub fn dim(&self) -> usize {
        self.fc1.in_features()
    }

    /// Inner width F.
    pub fn hidden(&self) -> usize {
        self.fc1.out_features()
    }

    /// `z = x W1ᵀ` then, in one pass, `z = act(z + b1)` (pre-activation kept only when asked).
    fn hidden_pass(
        &self,
        rows: ArrayView2<'_, f32>,
        keep_pre: bool,
    ) -> Result<(Array2<f32>, Option<Array2<f32>>), LayerError> {
        let f = self.hidden();
        let mut h = Array2::<f32>::zeros((rows.nrows(), f));
        self.fc1.forward_no_bias_into(rows.view(), h.view_mut())?;
        if f == 0 {
            let pre = keep_pre.then(|| h.clone());
            return Ok((h, pre));
        }
        let b1 = contiguous("fc1.bias", &self.fc1.bias)?;
        let act = self.activation;
        let hs = contiguous_mut("FeedForward hidden", &mut h)?;
        let pre = if keep_pre {
            // z = h + b1 kept for backward; h = act(z).
            let mut z = vec![0.0f32; hs.len()];
            z.par_chunks_mut(f)
                .with_min_len(min_rows(f))
                .zip(hs.par_chunks_mut(f))
                .for_each(|(zr, hr)| {
                    if act == Activation::Gelu {
                        fast_math::gelu_bias_row_keep(hr, zr, b1);
                        return;
                    }
                    for ((z, v), &b) in zr.iter_mut().zip(hr.iter_mut()).zip(b1) {
                        *z = *v + b;
                        *v = act.apply(*z);
                    }
                });
            let rows_n = z.len() / f;
            Some(Array2::from_shape_vec((rows_n, f), z).map_err(|_| {
                shape_error(
                    "FeedForward pre-activation",
                    format!("(rows, {f})"),
                    &[rows_n, f],
                )
            })?)
        } else {
            hs.par_chunks_mut(f)
                .with_min_len(min_rows(f))
                .for_each(|row| act.apply_bias_row(row, b1));
            None
        };
        Ok((h, pre))
    }

    /// Eval forward on (batch, seq, dim).
    pub fn forward(&self, x: ArrayView3<'_, f32>) -> Result<Array3<f32>, LayerError> {
        let (b, n, _) = x.dim();
        check_hidden("FeedForward input", &x, self.dim())?;
        let rows = rows_of(&x)?;
        let (h, _) = self.hidden_pass(rows.view(), false)?;
        to_3d(self.fc2.forward(h.view())?, b, n)
    }

    /// Training forward (dropout from `ctx`); caches input, pre-activation and mask.
    pub fn forward_train(
        &self,
        x: ArrayView3<'_, f32>,
        ctx: &mut TrainContext,
    ) -> Result<(Array3<f32>, FeedForwardCache), LayerError> {
        let (b, n, _) = x.dim();
        check_hidden("FeedForward input", &x, self.dim())?;
        let input = rows_of(&x)?.into_owned();
        let (mut h, pre) = self.hidden_pass(input.view(), true)?;
        let pre_activation = pre.unwrap_or_else(|| Array2::zeros(h.raw_dim()));
        let mask = self
            .dropout
            .apply(contiguous_mut("FeedForward hidden", &mut h)?, ctx);
        let y = to_3d(self.fc2.forward(h.view())?, b, n)?;
        Ok((
            y,
            FeedForwardCache {
                input,
                pre_activation,
                mask,
                batch_seq: (b, n),
            },
        ))
    }

    /// Backward: accumulates into `grads`, returns dL/dx (batch, seq, dim).
    pub fn backward(
        &self,
        cache: &FeedForwardCache,
        grad_out: ArrayView3<'_, f32>,
        grads: &mut FeedForwardGrads,
    ) -> Result<Array3<f32>, LayerError> {
        let (b, n) = cache.batch_seq;
        if grad_out.dim() != (b, n, self.dim()) {
            return Err(shape_error(
                "FeedForward output gradient",
                format!("({b}, {n}, {})", self.dim()),
                grad_out.shape(),
            ));
        }
        let f = self.hidden();
        let act = self.activation;
        // a = dropout(act(z)), recomputed instead of stored.
        let mut a = Array2::<f32>::zeros(cache.pre_activation.raw_dim());
        {
            let z = contiguous("FeedForward pre-activation", &cache.pre_activation)?;
            let a_rows = contiguous_mut("FeedForward hidden", &mut a)?;
            let chunk = f.max(1) * 64;
            a_rows
                .par_chunks_mut(chunk)
                .zip(z.par_chunks(chunk))
                .for_each(|(a, z)| {
                    if act == Activation::Gelu {
                        fast_math::gelu_into(a, z);
                    } else {
                        for (a, &z) in a.iter_mut().zip(z) {
                            *a = act.apply(z);
                        }
                    }
                });
        }
        cache
            .mask
            .forward_in_place(contiguous_mut("FeedForward hidden", &mut a)?, "FeedForward")?;
        let dy = rows_of(&grad_out)?;
        self.fc2
            .backward_params(a.view(), dy.view(), &mut grads.fc2)?;
        let mut dz = self.fc2.backward_input(dy.view())?;
        cache.mask.backward_in_place(
            contiguous_mut("FeedForward hidden grad", &mut dz)?,
            "FeedForward",
        )?;
        if f > 0 {
            let z = contiguous("FeedForward pre-activation", &cache.pre_activation)?;
            let chunk = f * 64;
            contiguous_mut("FeedForward hidden grad", &mut dz)?
                .par_chunks_mut(chunk)
                .zip(z.par_chunks(chunk))
                .for_each(|(g, z)| {
                    if act == Activation::Gelu {
                        fast_math::mul_gelu_derivative(g, z);
                    } else {
                        for (g, &z) in g.iter_mut().zip(z) {
                            *g *= act.derivative(z);
                        }
                    }
                });
        }
        self.fc1
            .backward_params(cache.input.view(), dz.view(), &mut grads.fc1)?;
        let dx = self.fc1.backward_input(dz.view())?;
        to_3d(dx, b, n)
    }
}

impl FeedForwardGrads {
    /// Zero gradients shaped like `ffn`.
    pub fn zeros_like(ffn: &FeedForward) -> Self {
        Self {
            fc1: LinearGrads::zeros_like(&ffn.fc1),
            fc2: LinearGrads::zeros_like(&ffn.fc2),
        }
    }
}

macro_rules! ffn_params {
    ($t:ty) => {
        impl Parameters for $t {
            fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, ArrayViewD<'_, f32>)) {
                self.fc1.visit(&join(prefix, "fc1."), f);
                self.fc2.visit(&join(prefix, "fc2."), f);
            }
            fn visit_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, ArrayViewMutD<'_, f32>)) {
                self.fc1.visit_mut(&join(prefix, "fc1."), f);
                self.fc2.visit_mut(&join(prefix, "fc2."), f);
            }
        }
    };
}
ffn_params!(FeedForward);
ffn_params!(FeedForwardGrads);

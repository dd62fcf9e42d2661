//! FeedForward: `fc2(dropout(act(fc1(x))))`, D -> F -> D.

use std::cell::RefCell;

use ndarray::{Array2, Array3, ArrayView2, ArrayView3, ArrayViewMut2, Axis, s};
use rand::Rng;
use rayon::prelude::*;
use spectrans_linalg::{
    Epilogue, PackedRhs, Parallelism, Rhs, contiguous, contiguous_mut, gemm, row_blocks,
    with_thread_local,
};

use crate::activation::{Activation, ActivationExt};
use crate::dropout::{Dropout, DropoutMask, TrainContext};
use crate::error::{LayerError, shape_error};
use crate::layer_norm::LayerNorm;
use crate::linear::{Linear, LinearGrads};
use crate::reuse::{push_storage, take_overwritten};
use crate::tensor::{check_hidden, min_rows, rows_of, scale_in_place, to_3d};

/// Rows of one block of the blocked FFN (the eval forward, [`FeedForward::eval_into`], and the
/// training forward without dropout): a (168, 4·D) block of hidden activations is 688 KiB at
/// D = 256, in L2 with room for the operands.
const FUSED_ROWS: usize = 168;

thread_local! {
    /// The FFN's (rows, hidden) temporaries, shared by every FeedForward on this thread (see
    /// [`spectrans_linalg::with_thread_local`], the one scratch strategy): a fresh 4·D-wide buffer
    /// per call costs page faults on every call, and one buffer per layer would multiply a
    /// model's memory by its depth.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// A block's normalized rows, for [`FeedForward::forward_add_normalized`].
    static NORMALIZED: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

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
    /// fc2's input `dropout(act(z))` with `z = fc1(x)`, (batch * seq, hidden).
    pub hidden: Array2<f32>,
    /// `act'(z)`, (batch * seq, hidden): computed in the forward sweep that evaluates
    /// `act(z)` (for GELU from the same `exp`), so backward evaluates no activation.
    pub act_derivative: Array2<f32>,
    /// The dropout mask applied to `act(z)`.
    pub mask: DropoutMask,
    /// (batch, seq) of the input.
    pub batch_seq: (usize, usize),
}

impl FeedForwardCache {
    /// Adds its large arrays to `out`, for the next step ([`crate::reuse`]).
    pub fn into_arrays(self, out: &mut Vec<Vec<f32>>) {
        push_storage(self.input, out);
        push_storage(self.hidden, out);
        push_storage(self.act_derivative, out);
    }
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

    /// The public fields agree: each Linear's bias matches its weight, and fc2 reads what fc1
    /// writes. Checked on every forward, so a field set to the wrong shape is a typed error.
    fn check_params(&self) -> Result<(), LayerError> {
        self.fc1.check_params()?;
        self.fc2.check_params()?;
        if self.fc2.in_features() != self.fc1.out_features() {
            return Err(shape_error(
                "FeedForward fc2.weight",
                format!("(out, {}) to read fc1's output", self.fc1.out_features()),
                &[self.fc2.out_features(), self.fc2.in_features()],
            ));
        }
        Ok(())
    }

    /// Runs `job` with this thread's scratch buffer, or a fresh one when a call on this thread
    /// already holds it (a rayon task run while the holder waits).
    fn with_scratch<R>(&self, job: impl FnOnce(&mut Vec<f32>) -> R) -> R {
        with_thread_local(&SCRATCH, job)
    }

    /// The one fc1 kernel of both forwards: `h = act(x W1ᵀ + b1)` into `h` (overwritten, so
    /// it may be uninitialised scratch), and `act'(x W1ᵀ + b1)` into `derivative` when given
    /// (training), from the same sweep.
    fn hidden_into(
        &self,
        rows: ArrayView2<'_, f32>,
        mut h: ArrayViewMut2<'_, f32>,
        derivative: Option<ArrayViewMut2<'_, f32>>,
        parallelism: Parallelism,
    ) -> Result<(), LayerError> {
        let b1 = contiguous("fc1.bias", &self.fc1.bias)?;
        let act = self.activation;
        let Some(mut derivative) = derivative else {
            // Eval: the bias and activation run in the GEMM's epilogue, on each block of h
            // while it is in cache.
            let map = |row: &mut [f32], bias: &[f32]| act.apply_bias_row(row, bias);
            let epilogue = Epilogue {
                bias: Some(b1),
                map: Some(&map),
                ..Epilogue::default()
            };
            return self.fc1.product_with(rows, h, epilogue, parallelism);
        };
        self.fc1.forward_no_bias_into(rows, h.view_mut())?;
        let f = self.hidden();
        if f == 0 {
            return Ok(());
        }
        contiguous_mut("FeedForward hidden", &mut h)?
            .par_chunks_mut(f)
            .with_min_len(min_rows(f))
            .zip(contiguous_mut("FeedForward act'", &mut derivative)?.par_chunks_mut(f))
            .for_each(|(h, g)| act.apply_bias_row_with_derivative(h, g, b1));
        Ok(())
    }

    /// Eval `out += act(x W1ᵀ + b1) W2ᵀ + b2`, block by block of about [`FUSED_ROWS`] rows:
    /// each block's hidden activations are computed into its thread's scratch and consumed by
    /// fc2 while they are still in cache, instead of the whole (rows, 4·D) hidden layer going
    /// out to memory and back. One block per rayon task, its products on that thread; each
    /// row's sums are the same as in one product over all rows, so the bits do not depend on
    /// the blocking.
    fn eval_into(
        &self,
        rows: ArrayView2<'_, f32>,
        out: ArrayViewMut2<'_, f32>,
    ) -> Result<(), LayerError> {
        let blocks = row_blocks(rows.nrows(), FUSED_ROWS, rayon::current_num_threads());
        if blocks.len() < 2 {
            // One block: its products split over the pool themselves.
            return self.with_scratch(|buf| self.eval_block(rows, out, buf, Parallelism::Rayon));
        }
        let outs = split_rows(out, &blocks);
        blocks
            .into_par_iter()
            .zip(outs)
            .with_max_len(1)
            .try_for_each(|(r, out_block)| {
                let block = rows.slice(s![r, ..]);
                self.with_scratch(|buf| self.eval_block(block, out_block, buf, Parallelism::None))
            })
    }

    /// [`FeedForward::eval_into`] on one block of rows, its hidden activations written into
    /// `buf` (grown, never zeroed: the GEMM overwrites it).
    fn eval_block(
        &self,
        rows: ArrayView2<'_, f32>,
        out: ArrayViewMut2<'_, f32>,
        buf: &mut Vec<f32>,
        parallelism: Parallelism,
    ) -> Result<(), LayerError> {
        let f = self.hidden();
        let len = rows.nrows() * f;
        if buf.len() < len {
            buf.resize(len, 0.0);
        }
        let hs = buf.get_mut(..len).unwrap_or_default();
        let mut h = ArrayViewMut2::from_shape((rows.nrows(), f), hs).map_err(|_| {
            shape_error(
                "FeedForward hidden",
                format!("({}, {f})", rows.nrows()),
                &[len],
            )
        })?;
        self.hidden_into(rows, h.view_mut(), None, parallelism)?;
        let epilogue = Epilogue {
            accumulate: true,
            bias: Some(contiguous("fc2.bias", &self.fc2.bias)?),
            ..Epilogue::default()
        };
        self.fc2.product_with(h.view(), out, epilogue, parallelism)
    }

    /// Eval forward on (batch, seq, dim).
    pub fn forward(&self, x: ArrayView3<'_, f32>) -> Result<Array3<f32>, LayerError> {
        let (b, n, _) = x.dim();
        check_hidden("FeedForward input", &x, self.dim())?;
        let mut out = Array3::<f32>::zeros((b, n, self.dim()));
        self.forward_add_into(x, &mut out)?;
        Ok(out)
    }

    /// Eval forward accumulated into `acc`: `acc += FFN(x)` (the residual add of a pre-norm
    /// block and fc2's bias fused into fc2's GEMM: `acc = acc + act(z) W2ᵀ + b2`).
    pub fn forward_add_into(
        &self,
        x: ArrayView3<'_, f32>,
        acc: &mut Array3<f32>,
    ) -> Result<(), LayerError> {
        self.check_params()?;
        let (b, n, _) = x.dim();
        check_hidden("FeedForward input", &x, self.dim())?;
        if acc.dim() != (b, n, self.dim()) {
            return Err(shape_error(
                "FeedForward accumulator",
                format!("({b}, {n}, {})", self.dim()),
                acc.shape(),
            ));
        }
        let rows = rows_of(&x)?;
        self.eval_into(rows.view(), accumulator_rows(acc)?)
    }

    /// Eval `acc += FFN(norm(acc))`, a pre-norm block's second half, with the LayerNorm fused
    /// in: each block of about [`FUSED_ROWS`] rows is normalized into its thread's scratch and
    /// goes through fc1 and fc2 from there (fc2 adding into the same rows), so the normalized
    /// rows never go out to memory and back. The same per-row arithmetic as
    /// `forward_add_into(norm.forward(acc))`, so the same bits.
    pub(crate) fn forward_add_normalized(
        &self,
        norm: &LayerNorm,
        acc: &mut Array3<f32>,
    ) -> Result<(), LayerError> {
        self.check_params()?;
        let (b, n, _) = acc.dim();
        check_hidden("FeedForward input", &acc.view(), self.dim())?;
        let blocks = row_blocks(b * n, FUSED_ROWS, rayon::current_num_threads());
        if blocks.len() < 2 || !acc.is_standard_layout() {
            // One block: its products split over the pool themselves, from a normalized copy.
            let c = norm.forward(acc.view())?;
            return self.forward_add_into(c.view(), acc);
        }
        split_rows(accumulator_rows(acc)?, &blocks)
            .into_par_iter()
            .with_max_len(1)
            .try_for_each(|mut block| {
                with_thread_local(&NORMALIZED, |normalized| {
                    let len = block.len();
                    if normalized.len() < len {
                        normalized.resize(len, 0.0);
                    }
                    let mut c = ArrayViewMut2::from_shape(block.dim(), &mut normalized[..len])
                        .map_err(|_| {
                            shape_error("LayerNorm rows", format!("{len} values"), block.shape())
                        })?;
                    norm.normalize_rows(block.view(), c.view_mut())?;
                    self.with_scratch(|buf| {
                        self.eval_block(c.view(), block.view_mut(), buf, Parallelism::None)
                    })
                })
            })
    }

    /// Training forward (dropout from `ctx`); caches input, pre-activation and mask.
    pub fn forward_train(
        &self,
        x: ArrayView3<'_, f32>,
        ctx: &mut TrainContext,
    ) -> Result<(Array3<f32>, FeedForwardCache), LayerError> {
        check_hidden("FeedForward input", &x, self.dim())?;
        self.forward_train_owned(x.as_standard_layout().into_owned(), ctx)
    }

    /// [`FeedForward::forward_train`] taking ownership of `x`, which becomes the cached input
    /// (no copy of the activations).
    pub fn forward_train_owned(
        &self,
        x: Array3<f32>,
        ctx: &mut TrainContext,
    ) -> Result<(Array3<f32>, FeedForwardCache), LayerError> {
        self.check_params()?;
        let (b, n, d) = x.dim();
        check_hidden("FeedForward input", &x.view(), self.dim())?;
        let x = if x.is_standard_layout() {
            x
        } else {
            x.as_standard_layout().into_owned()
        };
        let input = x.into_shape_with_order((b * n, d)).map_err(|_| {
            shape_error("FeedForward input", format!("({b}, {n}, {d})"), &[b, n, d])
        })?;
        let f = self.hidden();
        let rows_n = b * n;
        // Both are written whole on either path below (the products overwrite, the activation
        // sweep writes act' for every element): arrays of the step before will do.
        let mut hidden = take_overwritten(rows_n, f);
        let mut act_derivative = take_overwritten(rows_n, f);
        let blocks = row_blocks(rows_n, FUSED_ROWS, rayon::current_num_threads());
        let dropout_off = !ctx.training || self.dropout.p() == 0.0;
        if let (true, Some(w1), Some(w2)) = (
            dropout_off && blocks.len() >= 2,
            self.fc1.packed_f32(),
            self.fc2.packed_f32(),
        ) {
            let mut y = Array2::<f32>::zeros((rows_n, d));
            let weights = (&*w1, &*w2);
            let block_views = split_rows(hidden.view_mut(), &blocks)
                .into_iter()
                .zip(split_rows(act_derivative.view_mut(), &blocks))
                .zip(split_rows(y.view_mut(), &blocks));
            blocks
                .into_par_iter()
                .zip(block_views.collect::<Vec<_>>())
                .with_max_len(1)
                .try_for_each(|(r, ((h, g), y))| {
                    let x = input.slice(s![r, ..]);
                    self.train_block(x, weights, h, g, y)
                })?;
            let y = to_3d(y, b, n)?;
            let mask = DropoutMask::identity();
            let batch_seq = (b, n);
            let cache = FeedForwardCache {
                input,
                hidden,
                act_derivative,
                mask,
                batch_seq,
            };
            return Ok((y, cache));
        }
        self.hidden_into(
            input.view(),
            hidden.view_mut(),
            Some(act_derivative.view_mut()),
            Parallelism::Rayon,
        )?;
        let mask = self
            .dropout
            .apply(contiguous_mut("FeedForward hidden", &mut hidden)?, ctx);
        let y = to_3d(self.fc2.forward(hidden.view())?, b, n)?;
        Ok((
            y,
            FeedForwardCache {
                input,
                hidden,
                act_derivative,
                mask,
                batch_seq: (b, n),
            },
        ))
    }

    /// The training forward (no dropout) of one block of rows, its hidden activations still
    /// in cache for fc2: `h = x W1ᵀ`, then `g = act'(h + b1)` and `h = act(h + b1)` in one
    /// sweep, then `y = h W2ᵀ + b2`; `weights` are fc1's and fc2's, packed once per forward.
    /// The same products and row functions as the unblocked path, so the same bits.
    fn train_block(
        &self,
        x: ArrayView2<'_, f32>,
        (w1, w2): (&PackedRhs, &PackedRhs),
        mut h: ArrayViewMut2<'_, f32>,
        mut g: ArrayViewMut2<'_, f32>,
        y: ArrayViewMut2<'_, f32>,
    ) -> Result<(), LayerError> {
        gemm(
            h.view_mut(),
            x,
            Rhs::Packed(w1),
            Epilogue::default(),
            Parallelism::None,
        )?;
        let b1 = contiguous("fc1.bias", &self.fc1.bias)?;
        let act = self.activation;
        let f = self.hidden();
        let hs = contiguous_mut("FeedForward hidden", &mut h)?;
        let gs = contiguous_mut("FeedForward act'", &mut g)?;
        for (h, g) in hs.chunks_mut(f).zip(gs.chunks_mut(f)) {
            act.apply_bias_row_with_derivative(h, g, b1);
        }
        let epilogue = Epilogue {
            bias: Some(contiguous("fc2.bias", &self.fc2.bias)?),
            ..Epilogue::default()
        };
        Ok(gemm(
            y,
            h.view(),
            Rhs::Packed(w2),
            epilogue,
            Parallelism::None,
        )?)
    }

    /// Backward: accumulates into `grads`, returns dL/dx (batch, seq, dim).
    pub fn backward(
        &self,
        cache: &FeedForwardCache,
        grad_out: ArrayView3<'_, f32>,
        grads: &mut FeedForwardGrads,
    ) -> Result<Array3<f32>, LayerError> {
        self.with_scratch(|buf| self.backward_with(cache, grad_out, grads, buf))
    }

    fn backward_with(
        &self,
        cache: &FeedForwardCache,
        grad_out: ArrayView3<'_, f32>,
        grads: &mut FeedForwardGrads,
        buf: &mut Vec<f32>,
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
        let rows_n = b * n;
        for (what, a) in [
            ("FeedForward cache hidden", &cache.hidden),
            ("FeedForward cache act'", &cache.act_derivative),
        ] {
            if a.dim() != (rows_n, f) {
                return Err(shape_error(what, format!("({rows_n}, {f})"), a.shape()));
            }
        }
        let dy = rows_of(&grad_out)?;
        self.fc2
            .backward_params(cache.hidden.view(), dy.view(), &mut grads.fc2)?;
        // dz lives in the reused scratch: no page faults per step.
        let len = rows_n * f;
        if buf.len() < len {
            buf.resize(len, 0.0);
        }
        let dz_buf = buf.get_mut(..len).unwrap_or_default();
        let mut dz = ArrayViewMut2::from_shape((rows_n, f), dz_buf)
            .map_err(|_| shape_error("FeedForward scratch", format!("({rows_n}, {f})"), &[len]))?;
        let act_derivative = contiguous("FeedForward act'", &cache.act_derivative)?;
        if cache.mask.is_identity() {
            // dz = (dy W2) ⊙ act'(z), the product scaled block by block while in cache.
            self.fc2
                .backward_input_scaled_into(dy.view(), dz.view_mut(), act_derivative)?;
        } else {
            // The dropout mask comes between: dz = ((dy W2) ⊙ mask) ⊙ act'(z).
            self.fc2.backward_input_into(dy.view(), dz.view_mut())?;
            let dz_rows = contiguous_mut("FeedForward hidden grad", &mut dz)?;
            cache.mask.backward_in_place(dz_rows, "FeedForward")?;
            scale_in_place(dz_rows, act_derivative, f);
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

crate::parameters!(FeedForward, FeedForwardGrads => [module fc1, module fc2]);

/// A (batch, seq, dim) accumulator as its (batch * seq, dim) rows.
fn accumulator_rows(acc: &mut Array3<f32>) -> Result<ArrayViewMut2<'_, f32>, LayerError> {
    let (b, n, d) = acc.dim();
    acc.view_mut()
        .into_shape_with_order((b * n, d))
        .map_err(|_| {
            shape_error(
                "FeedForward accumulator",
                format!("({}, {d})", b * n),
                &[b, n, d],
            )
        })
}

/// `view` cut into the row blocks `blocks` (consecutive ranges from row 0).
fn split_rows<'a>(
    view: ArrayViewMut2<'a, f32>,
    blocks: &[std::ops::Range<usize>],
) -> Vec<ArrayViewMut2<'a, f32>> {
    let mut parts = Vec::with_capacity(blocks.len());
    let mut rest = view;
    for r in blocks {
        let (block, tail) = rest.split_at(Axis(0), r.len());
        parts.push(block);
        rest = tail;
    }
    parts
}

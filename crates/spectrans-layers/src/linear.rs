//! Linear(in, out): `y = x Wᵀ + b` on rows, PyTorch layout (weight is (out, in)).

use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, Axis};
use rand::Rng;
use rand_distr::{Distribution, Uniform};

use std::cell::RefCell;

use spectrans_fft::with_thread_local;

use crate::dropout::TrainContext;
use crate::error::{LayerError, shape_error};
use crate::matmul::matmul_into;
use crate::precision::{Precision, quantize_rows_into};
use crate::tensor::{contiguous, contiguous_mut, min_rows, par_add_column_sums};
use rayon::prelude::*;

/// A fully connected layer: `y = x Wᵀ + b`, `x` (rows, in), `W` (out, in), `b` (out).
#[derive(Debug, Clone)]
pub struct Linear {
    /// `weight`, shape (out, in).
    pub weight: Array2<f32>,
    /// `bias`, shape (out).
    pub bias: Array1<f32>,
    /// The number format of the eval forwards' product (see [`Linear::set_precision`]).
    precision: Precision,
}

thread_local! {
    /// The reduced-precision copies of the input and the weight (see
    /// [`spectrans_fft::with_thread_local`], the one scratch strategy).
    static QUANTIZED: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Gradients of a [`Linear`], same names and shapes.
#[derive(Debug, Clone)]
pub struct LinearGrads {
    /// dL/dW, (out, in).
    pub weight: Array2<f32>,
    /// dL/db, (out).
    pub bias: Array1<f32>,
}

/// What [`Linear::backward`] needs: the input rows.
#[derive(Debug, Clone)]
pub struct LinearCache {
    /// The forward input, (rows, in).
    pub input: Array2<f32>,
}

impl Linear {
    /// PyTorch's default init: weight and bias `U(-1/sqrt(in), 1/sqrt(in))`.
    pub fn new(in_features: usize, out_features: usize, rng: &mut impl Rng) -> Self {
        let bound = if in_features == 0 {
            0.0
        } else {
            1.0 / (in_features as f32).sqrt()
        };
        let mut draw = |shape: (usize, usize)| {
            if bound > 0.0 {
                let dist = Uniform::new_inclusive(-bound, bound);
                Array2::from_shape_simple_fn(shape, || dist.sample(rng))
            } else {
                Array2::zeros(shape)
            }
        };
        let weight = draw((out_features, in_features));
        let bias = draw((1, out_features)).remove_axis(Axis(0));
        Self {
            weight,
            bias,
            precision: Precision::F32,
        }
    }

    /// Sets the number format of the eval forwards' product `x Wᵀ`: at `Bf16` both operands
    /// are rounded to bfloat16, at `Int8` the weight is quantized per output channel
    /// (symmetric) and the input per row (asymmetric u8), then multiplied with f32
    /// accumulation and the bias added in f32 ([`crate::precision`]). The quantization is
    /// done on each call from the current `weight`, so editing the weight never leaves a
    /// stale copy behind. Training (`forward_train`, `backward`) always runs in f32.
    pub fn set_precision(&mut self, precision: Precision) {
        self.precision = precision;
    }

    /// The number format of the eval forwards.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// `out = x Wᵀ` (or `out += x Wᵀ`) in this layer's precision.
    fn product(
        &self,
        x: ArrayView2<'_, f32>,
        out: ArrayViewMut2<'_, f32>,
        accumulate: bool,
    ) -> Result<(), LayerError> {
        if self.precision == Precision::F32 {
            return matmul_into(out, x, self.weight.t(), accumulate);
        }
        with_thread_local(&QUANTIZED, |(xs, ws)| {
            let x_len = x.len();
            let w_len = self.weight.len();
            xs.resize(x_len.max(xs.len()), 0.0);
            ws.resize(w_len.max(ws.len()), 0.0);
            let shape_err = |what: &'static str, dim: (usize, usize)| {
                shape_error(what, format!("({}, {})", dim.0, dim.1), &[dim.0 * dim.1])
            };
            let mut xq = ArrayViewMut2::from_shape(x.dim(), &mut xs[..x_len])
                .map_err(|_| shape_err("Linear quantized input", x.dim()))?;
            let mut wq = ArrayViewMut2::from_shape(self.weight.dim(), &mut ws[..w_len])
                .map_err(|_| shape_err("Linear quantized weight", self.weight.dim()))?;
            quantize_rows_into(x, xq.view_mut(), self.precision, false)?;
            quantize_rows_into(self.weight.view(), wq.view_mut(), self.precision, true)?;
            matmul_into(out, xq.view(), wq.view().t(), accumulate)
        })
    }

    /// Input width.
    pub fn in_features(&self) -> usize {
        self.weight.ncols()
    }

    /// Output width.
    pub fn out_features(&self) -> usize {
        self.weight.nrows()
    }

    /// The public fields agree: `bias` has one entry per weight row. Every forward and the
    /// parameter backward check it, so a bias set to the wrong length is a typed error, never a
    /// panic.
    pub(crate) fn check_params(&self) -> Result<(), LayerError> {
        if self.bias.len() != self.out_features() {
            return Err(shape_error(
                "Linear bias",
                format!("({}) to match the weight's rows", self.out_features()),
                self.bias.shape(),
            ));
        }
        Ok(())
    }

    /// [`Linear::check_params`], and `x` has `in` columns.
    fn check_input(&self, x: &ArrayView2<'_, f32>) -> Result<(), LayerError> {
        self.check_params()?;
        if x.ncols() != self.in_features() {
            return Err(shape_error(
                "Linear input",
                format!("(rows, {})", self.in_features()),
                x.shape(),
            ));
        }
        Ok(())
    }

    /// `out = x Wᵀ` without the bias (the caller fuses the bias into its next pass).
    pub fn forward_no_bias_into(
        &self,
        x: ArrayView2<'_, f32>,
        out: ArrayViewMut2<'_, f32>,
    ) -> Result<(), LayerError> {
        self.check_input(&x)?;
        self.product(x, out, false)
    }

    /// `out += x Wᵀ` (no bias): fuses a residual add into the GEMM.
    pub fn forward_no_bias_accumulate(
        &self,
        x: ArrayView2<'_, f32>,
        out: ArrayViewMut2<'_, f32>,
    ) -> Result<(), LayerError> {
        self.check_input(&x)?;
        self.product(x, out, true)
    }

    /// `out = x Wᵀ + b` into a caller-owned buffer of shape (rows, out).
    pub fn forward_into(
        &self,
        x: ArrayView2<'_, f32>,
        mut out: ArrayViewMut2<'_, f32>,
    ) -> Result<(), LayerError> {
        self.check_input(&x)?;
        if out.dim() != (x.nrows(), self.out_features()) {
            return Err(shape_error(
                "Linear output buffer",
                format!("({}, {})", x.nrows(), self.out_features()),
                out.shape(),
            ));
        }
        let n = self.out_features();
        match (out.as_slice_mut(), self.bias.as_slice()) {
            (Some(o), Some(b)) if n > 0 => o
                .par_chunks_mut(n)
                .with_min_len(min_rows(n))
                .for_each(|r| r.copy_from_slice(b)),
            _ => out
                .rows_mut()
                .into_iter()
                .for_each(|mut r| r.assign(&self.bias)),
        }
        self.product(x, out, true)
    }

    /// Eval forward: `y = x Wᵀ + b`, x (rows, in) -> y (rows, out).
    ///
    /// ```
    /// use ndarray::array;
    /// use spectrans_layers::Linear;
    /// let mut lin = Linear::new(2, 1, &mut rand::thread_rng());
    /// lin.weight = array![[1.0, -1.0]];
    /// lin.bias = array![0.5];
    /// let y = lin.forward(array![[3.0f32, 1.0]].view()).unwrap();
    /// assert_eq!(y, array![[2.5]]);
    /// ```
    pub fn forward(&self, x: ArrayView2<'_, f32>) -> Result<Array2<f32>, LayerError> {
        let mut out = Array2::zeros((x.nrows(), self.out_features()));
        self.forward_into(x, out.view_mut())?;
        Ok(out)
    }

    /// Training forward; caches the input. (Linear has no dropout; `ctx` is unused.)
    pub fn forward_train(
        &self,
        x: ArrayView2<'_, f32>,
        _ctx: &mut TrainContext,
    ) -> Result<(Array2<f32>, LinearCache), LayerError> {
        let y = self.forward(x)?;
        Ok((
            y,
            LinearCache {
                input: x.to_owned(),
            },
        ))
    }

    /// Accumulates `dW += dYᵀ X`, `db += Σ_rows dY` and returns `dX = dY W`.
    pub fn backward(
        &self,
        cache: &LinearCache,
        grad_out: ArrayView2<'_, f32>,
        grads: &mut LinearGrads,
    ) -> Result<Array2<f32>, LayerError> {
        self.backward_params(cache.input.view(), grad_out, grads)?;
        self.backward_input(grad_out)
    }

    /// Parameter half of backward: `dW += dYᵀ X`, `db += Σ_rows dY`.
    pub fn backward_params(
        &self,
        input: ArrayView2<'_, f32>,
        grad_out: ArrayView2<'_, f32>,
        grads: &mut LinearGrads,
    ) -> Result<(), LayerError> {
        self.check_input(&input)?;
        self.check_grad_out(&grad_out, input.nrows())?;
        check_grads(grads, self)?;
        matmul_into(grads.weight.view_mut(), grad_out.t(), input, true)?;
        let dy = grad_out.as_standard_layout();
        let dy = contiguous("Linear output gradient", &dy)?;
        let db = contiguous_mut("Linear bias gradient", &mut grads.bias)?;
        par_add_column_sums(db, dy);
        Ok(())
    }

    /// Input half of backward: `dX = dY W`.
    pub fn backward_input(&self, grad_out: ArrayView2<'_, f32>) -> Result<Array2<f32>, LayerError> {
        self.check_grad_out(&grad_out, grad_out.nrows())?;
        let mut dx = Array2::zeros((grad_out.nrows(), self.in_features()));
        matmul_into(dx.view_mut(), grad_out, self.weight.view(), false)?;
        Ok(dx)
    }

    /// Input half of backward into a caller-owned (rows, in) buffer: `dX = dY W`.
    pub fn backward_input_into(
        &self,
        grad_out: ArrayView2<'_, f32>,
        dx: ArrayViewMut2<'_, f32>,
    ) -> Result<(), LayerError> {
        self.check_grad_out(&grad_out, grad_out.nrows())?;
        matmul_into(dx, grad_out, self.weight.view(), false)
    }

    fn check_grad_out(&self, g: &ArrayView2<'_, f32>, rows: usize) -> Result<(), LayerError> {
        if g.dim() != (rows, self.out_features()) {
            return Err(shape_error(
                "Linear output gradient",
                format!("({rows}, {})", self.out_features()),
                g.shape(),
            ));
        }
        Ok(())
    }
}

fn check_grads(grads: &LinearGrads, lin: &Linear) -> Result<(), LayerError> {
    if grads.weight.dim() != lin.weight.dim() || grads.bias.len() != lin.bias.len() {
        return Err(shape_error(
            "Linear gradient buffer (weight)",
            format!("{:?}", lin.weight.shape()),
            grads.weight.shape(),
        ));
    }
    Ok(())
}

impl LinearGrads {
    /// Zero gradients shaped like `lin`.
    pub fn zeros_like(lin: &Linear) -> Self {
        Self {
            weight: Array2::zeros(lin.weight.raw_dim()),
            bias: Array1::zeros(lin.bias.raw_dim()),
        }
    }
}

crate::parameters!(Linear, LinearGrads => [tensor weight, tensor bias]);

//! Linear(in, out): `y = x Wᵀ + b` on rows, PyTorch layout (weight is (out, in)).

use std::borrow::Cow;

use ndarray::{Array1, Array2, ArrayView2, ArrayViewD, ArrayViewMut2, ArrayViewMutD, Axis};
use rand::Rng;
use rand_distr::{Distribution, Uniform};

use std::cell::RefCell;

use spectrans_linalg::precision::quantize_rows_into;
use spectrans_linalg::{
    Epilogue, PackedRhs, Parallelism, Precision, Rhs, contiguous, contiguous_mut, gemm,
    with_thread_local,
};

use crate::dropout::TrainContext;
use crate::error::{LayerError, shape_error};
use crate::params::{Parameters, join};
use crate::tensor::par_add_column_sums;

/// A fully connected layer: `y = x Wᵀ + b`, `x` (rows, in), `W` (out, in), `b` (out).
///
/// The weight is read through [`Linear::weight`] and changed through
/// [`Linear::weight_mut`] or [`Linear::set_weight`]: [`Linear::pack`] may keep it in the
/// GEMM's packed layout instead (for inference), and every way of changing it unpacks it
/// first, so a packed copy can never go stale.
#[derive(Debug, Clone)]
pub struct Linear {
    /// `weight`, shape (out, in), plain or packed.
    weight: Weight,
    /// `bias`, shape (out).
    pub bias: Array1<f32>,
    /// The number format of the eval forwards' product (see [`Linear::set_precision`]).
    precision: Precision,
}

/// Where a [`Linear`]'s weight lives: one copy, never two.
#[derive(Debug, Clone)]
enum Weight {
    /// PyTorch layout (out, in).
    Plain(Array2<f32>),
    /// Packed for the products (B = Wᵀ, [`PackedRhs`]), for eval forwards.
    Packed(PackedRhs),
}

thread_local! {
    /// The reduced-precision copies of the input and of a plain weight (see
    /// [`spectrans_linalg::with_thread_local`], the one scratch strategy).
    static QUANTIZED_INPUT: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static QUANTIZED_WEIGHT: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
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
        Self::from_parts(weight, bias)
    }

    /// A layer with this weight (out, in) and bias (out). The shapes are checked on use (a
    /// bias of the wrong length is a typed error at the first forward).
    ///
    /// ```
    /// use ndarray::array;
    /// use spectrans_layers::Linear;
    /// let lin = Linear::from_parts(array![[1.0f32, -1.0]], array![0.5]);
    /// assert_eq!(lin.forward(array![[3.0f32, 1.0]].view()).unwrap(), array![[2.5]]);
    /// ```
    pub fn from_parts(weight: Array2<f32>, bias: Array1<f32>) -> Self {
        Self {
            weight: Weight::Plain(weight),
            bias,
            precision: Precision::F32,
        }
    }

    /// The weight, (out, in): borrowed, or unpacked into a copy when the layer is packed.
    pub fn weight(&self) -> Cow<'_, Array2<f32>> {
        match &self.weight {
            Weight::Plain(w) => Cow::Borrowed(w),
            Weight::Packed(p) => Cow::Owned(p.to_weight()),
        }
    }

    /// The weight for editing in place (unpacks a packed layer first).
    pub fn weight_mut(&mut self) -> &mut Array2<f32> {
        if let Weight::Packed(p) = &self.weight {
            self.weight = Weight::Plain(p.to_weight());
        }
        match &mut self.weight {
            Weight::Plain(w) => w,
            Weight::Packed(_) => unreachable!("unpacked just above"),
        }
    }

    /// Replaces the weight, (out, in) (shapes are checked on use).
    pub fn set_weight(&mut self, weight: Array2<f32>) {
        self.weight = Weight::Plain(weight);
    }

    /// Keeps the weight in the layout the products read ([`PackedRhs::for_products`]), so
    /// that eval forwards skip packing it on every call; the plain copy is dropped. At f32
    /// this is done only where the products run faster on a packed weight
    /// ([`spectrans_linalg::packs_f32`]), and the memory stays the same. At bf16 and int8 it
    /// is always done: the weight is then held in that format, in half or a quarter of the
    /// memory, and quantized once rather than on every call. Training works on a packed layer
    /// too (the first parameter update unpacks it).
    pub fn pack(&mut self) {
        if let Weight::Plain(w) = &self.weight
            && let Some(packed) = PackedRhs::for_products(w.view(), self.precision)
        {
            self.weight = Weight::Packed(packed);
        }
    }

    /// The f32 weight packed, where products on it run faster packed: the kept packing, or a
    /// fresh one of a plain weight (for a caller that runs many products on one weight, as
    /// the blocked training FFN does). `None` otherwise.
    pub(crate) fn packed_f32(&self) -> Option<Cow<'_, PackedRhs>> {
        if self.precision != Precision::F32 {
            return None;
        }
        match &self.weight {
            Weight::Packed(p) => Some(Cow::Borrowed(p)),
            Weight::Plain(w) => PackedRhs::for_products(w.view(), Precision::F32).map(Cow::Owned),
        }
    }

    /// Whether [`Linear::pack`] packed the weight.
    pub fn is_packed(&self) -> bool {
        matches!(self.weight, Weight::Packed(_))
    }

    /// (out, in) of the weight, packed or not.
    fn weight_dim(&self) -> (usize, usize) {
        match &self.weight {
            Weight::Plain(w) => w.dim(),
            Weight::Packed(p) => (p.cols(), p.rows()),
        }
    }

    /// Sets the number format of the eval forwards' product `x Wᵀ`: at `Bf16` both operands
    /// are rounded to bfloat16 and summed in f32; at `Int8` the weight is quantized per output
    /// channel (symmetric) and the input per row (asymmetric, 7-bit codes), summed in integers
    /// and dequantized; the bias is added in f32 ([`spectrans_linalg::precision`]). The input is quantized
    /// on each call. The weight is quantized once: a packed layer ([`Linear::pack`]) is
    /// repacked in the new format right away, a plain one when it is packed (until then each
    /// call quantizes it from the current values). Held in bf16 or int8, the weight keeps only
    /// those values: going back to f32 gives the rounded or dequantized weight, not the
    /// original (reload it for that). Training (`forward_train`, `backward`) always runs in
    /// f32.
    pub fn set_precision(&mut self, precision: Precision) {
        if precision == self.precision {
            return;
        }
        let was_packed = self.is_packed();
        self.weight_mut();
        self.precision = precision;
        if was_packed {
            self.pack();
        }
    }

    /// The number format of the eval forwards.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// `out = epilogue(x Wᵀ)` in this layer's precision (the epilogue's bias has the layer's
    /// out width; see [`Epilogue`]), on the threads `parallelism` allows.
    pub(crate) fn product_with(
        &self,
        x: ArrayView2<'_, f32>,
        out: ArrayViewMut2<'_, f32>,
        epilogue: Epilogue<'_>,
        parallelism: Parallelism,
    ) -> Result<(), LayerError> {
        let weight = match &self.weight {
            // A packed bf16 or int8 weight converts the input itself (bf16 rounding, or
            // integer codes).
            Weight::Packed(p) => return Ok(gemm(out, x, Rhs::Packed(p), epilogue, parallelism)?),
            Weight::Plain(w) => w,
        };
        if self.precision == Precision::F32 {
            return Ok(gemm(out, x, Rhs::Plain(weight.t()), epilogue, parallelism)?);
        }
        let precision = self.precision;
        with_quantized_input(x, precision, |xq| {
            // The weight's reduced values, in the second scratch buffer.
            with_thread_local(&QUANTIZED_WEIGHT, |ws| {
                let mut wq = scratch_view(ws, weight.dim(), "Linear quantized weight")?;
                quantize_rows_into(weight.view(), wq.view_mut(), precision, true)?;
                Ok(gemm(
                    out,
                    xq,
                    Rhs::Plain(wq.view().t()),
                    epilogue,
                    parallelism,
                )?)
            })
        })
    }

    /// `out = x Wᵀ` (or `out += x Wᵀ`) in this layer's precision.
    fn product(
        &self,
        x: ArrayView2<'_, f32>,
        out: ArrayViewMut2<'_, f32>,
        accumulate: bool,
    ) -> Result<(), LayerError> {
        let epilogue = Epilogue {
            accumulate,
            ..Epilogue::default()
        };
        self.product_with(x, out, epilogue, Parallelism::Rayon)
    }

    /// Input width.
    pub fn in_features(&self) -> usize {
        self.weight_dim().1
    }

    /// Output width.
    pub fn out_features(&self) -> usize {
        self.weight_dim().0
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
        out: ArrayViewMut2<'_, f32>,
    ) -> Result<(), LayerError> {
        self.check_input(&x)?;
        if out.dim() != (x.nrows(), self.out_features()) {
            return Err(shape_error(
                "Linear output buffer",
                format!("({}, {})", x.nrows(), self.out_features()),
                out.shape(),
            ));
        }
        let bias = contiguous("Linear bias", &self.bias)?;
        let epilogue = Epilogue {
            bias: Some(bias),
            ..Epilogue::default()
        };
        self.product_with(x, out, epilogue, Parallelism::Rayon)
    }

    /// Eval forward: `y = x Wᵀ + b`, x (rows, in) -> y (rows, out).
    ///
    /// ```
    /// use ndarray::array;
    /// use spectrans_layers::Linear;
    /// let mut lin = Linear::new(2, 1, &mut rand::thread_rng());
    /// lin.set_weight(array![[1.0, -1.0]]);
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
        matmul(
            grads.weight.view_mut(),
            grad_out.t(),
            input,
            Epilogue {
                accumulate: true,
                ..Epilogue::default()
            },
        )?;
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
        matmul(
            dx.view_mut(),
            grad_out,
            self.weight().view(),
            Epilogue::default(),
        )?;
        Ok(dx)
    }

    /// Input half of backward into a caller-owned (rows, in) buffer: `dX = dY W`.
    pub fn backward_input_into(
        &self,
        grad_out: ArrayView2<'_, f32>,
        dx: ArrayViewMut2<'_, f32>,
    ) -> Result<(), LayerError> {
        self.check_grad_out(&grad_out, grad_out.nrows())?;
        matmul(dx, grad_out, self.weight().view(), Epilogue::default())
    }

    /// `dX = (dY W) ⊙ scale` into a caller-owned (rows, in) buffer, `scale` (rows, in)
    /// row-major: the input gradient times an elementwise factor (an activation's
    /// derivative), applied by the product's epilogue.
    pub(crate) fn backward_input_scaled_into(
        &self,
        grad_out: ArrayView2<'_, f32>,
        dx: ArrayViewMut2<'_, f32>,
        scale: &[f32],
    ) -> Result<(), LayerError> {
        self.check_grad_out(&grad_out, grad_out.nrows())?;
        let epilogue = Epilogue {
            scale: Some(scale),
            ..Epilogue::default()
        };
        matmul(dx, grad_out, self.weight().view(), epilogue)
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
    let (out, inp) = lin.weight_dim();
    if grads.weight.dim() != (out, inp) || grads.bias.len() != lin.bias.len() {
        return Err(shape_error(
            "Linear gradient buffer (weight)",
            format!("[{out}, {inp}]"),
            grads.weight.shape(),
        ));
    }
    Ok(())
}

impl LinearGrads {
    /// Zero gradients shaped like `lin`.
    pub fn zeros_like(lin: &Linear) -> Self {
        Self {
            weight: Array2::zeros(lin.weight_dim()),
            bias: Array1::zeros(lin.bias.raw_dim()),
        }
    }
}

crate::parameters!(LinearGrads => [tensor weight, tensor bias]);

impl Parameters for Linear {
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, ArrayViewD<'_, f32>)) {
        f(&join(prefix, "weight"), self.weight().view().into_dyn());
        f(&join(prefix, "bias"), self.bias.view().into_dyn());
    }

    /// Unpacks a packed weight first: whatever `f` writes lands in the plain copy.
    fn visit_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, ArrayViewMutD<'_, f32>)) {
        f(
            &join(prefix, "weight"),
            self.weight_mut().view_mut().into_dyn(),
        );
        f(&join(prefix, "bias"), self.bias.view_mut().into_dyn());
    }
}

/// `dst = epilogue(lhs · rhs)` in f32 on the rayon pool (training's products).
fn matmul(
    dst: ArrayViewMut2<'_, f32>,
    lhs: ArrayView2<'_, f32>,
    rhs: ArrayView2<'_, f32>,
    epilogue: Epilogue<'_>,
) -> Result<(), LayerError> {
    Ok(gemm(
        dst,
        lhs,
        Rhs::Plain(rhs),
        epilogue,
        Parallelism::Rayon,
    )?)
}

/// Runs `job` on the values `x` has in `precision` (rounded to bfloat16, or quantized per
/// row: [`quantize_rows_into`]), in this thread's scratch.
fn with_quantized_input(
    x: ArrayView2<'_, f32>,
    precision: Precision,
    job: impl FnOnce(ArrayView2<'_, f32>) -> Result<(), LayerError>,
) -> Result<(), LayerError> {
    with_thread_local(&QUANTIZED_INPUT, |xs| {
        let mut xq = scratch_view(xs, x.dim(), "Linear quantized input")?;
        quantize_rows_into(x, xq.view_mut(), precision, false)?;
        job(xq.view())
    })
}

/// The first `rows · cols` values of `buffer` (grown if needed) as a (rows, cols) view.
fn scratch_view<'b>(
    buffer: &'b mut Vec<f32>,
    (rows, cols): (usize, usize),
    what: &'static str,
) -> Result<ArrayViewMut2<'b, f32>, LayerError> {
    let len = rows * cols;
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
    ArrayViewMut2::from_shape((rows, cols), &mut buffer[..len])
        .map_err(|_| shape_error(what, format!("({rows}, {cols})"), &[len]))
}

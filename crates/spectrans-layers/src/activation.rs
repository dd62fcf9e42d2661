//! Pointwise activations with their derivatives (feed-forward and filter activations).
//!
//! The choices themselves, [`Activation`] and [`FilterActivation`], are defined once in
//! spectrans-types (the config names them too); their math is here, as the extension traits
//! [`ActivationExt`] and [`FilterActivationExt`].

use num_complex::Complex32;
pub use spectrans_types::{Activation, FilterActivation};

use spectrans_linalg::fast_math::{erf_f32, exp_f32};

/// `σ(x) = 1 / (1 + e^{-x})`, with the branch-free `exp` of `fast_math` so that loops over
/// it vectorize (the filter activation runs over a whole (n, D) filter every call).
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp_f32(-x))
}

/// `1 / sqrt(2)`.
const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// `1 / sqrt(2π)`.
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;
/// PyTorch's default LeakyReLU slope.
pub const LEAKY_RELU_SLOPE: f32 = 0.01;

/// The math of a feed-forward [`Activation`]: `f`, `f'`, and the row kernels the layers run.
pub trait ActivationExt: Copy {
    /// `f(x)`.
    ///
    /// ```
    /// use spectrans_layers::{Activation, ActivationExt};
    /// assert!((Activation::Gelu.apply(1.0) - 0.841_344_7).abs() < 1e-6);
    /// assert_eq!(Activation::Relu.apply(-2.0), 0.0);
    /// ```
    fn apply(self, x: f32) -> f32;
    /// `row[j] = f(row[j] + bias[j])` over a row.
    fn apply_bias_row(self, row: &mut [f32], bias: &[f32]);
    /// With `z = row[j] + bias[j]`: `row[j] = f(z)` and `grad[j] = f'(z)`, one sweep.
    fn apply_bias_row_with_derivative(self, row: &mut [f32], grad: &mut [f32], bias: &[f32]);
    /// `f'(x)`.
    fn derivative(self, x: f32) -> f32;
}

impl ActivationExt for Activation {
    /// Exact GELU uses erf to 1.5e-7, as PyTorch's CPU kernel.
    #[inline]
    fn apply(self, x: f32) -> f32 {
        match self {
            Activation::Gelu => x * 0.5 * (1.0 + erf_f32(x * FRAC_1_SQRT_2)),
            Activation::Relu => x.max(0.0),
            Activation::Silu => x * sigmoid(x),
            Activation::Tanh => x.tanh(),
            Activation::Sigmoid => sigmoid(x),
            Activation::Elu => {
                if x > 0.0 {
                    x
                } else {
                    x.exp_m1()
                }
            }
            Activation::LeakyRelu => {
                if x > 0.0 {
                    x
                } else {
                    LEAKY_RELU_SLOPE * x
                }
            }
        }
    }

    /// `row[j] = f(row[j] + bias[j])` over a row, the match hoisted out of the loop so each
    /// arm vectorizes.
    fn apply_bias_row(self, row: &mut [f32], bias: &[f32]) {
        macro_rules! each {
            ($act:expr) => {
                for (v, &b) in row.iter_mut().zip(bias) {
                    *v = $act.apply(*v + b);
                }
            };
        }
        match self {
            Activation::Gelu => spectrans_linalg::fast_math::gelu_bias_row(row, bias),
            Activation::Relu => each!(Activation::Relu),
            Activation::Silu => each!(Activation::Silu),
            Activation::Tanh => each!(Activation::Tanh),
            Activation::Sigmoid => each!(Activation::Sigmoid),
            Activation::Elu => each!(Activation::Elu),
            Activation::LeakyRelu => each!(Activation::LeakyRelu),
        }
    }

    /// With `z = row[j] + bias[j]`: `row[j] = f(z)` and `grad[j] = f'(z)`, one sweep (the
    /// training forward keeps `f'` for backward).
    fn apply_bias_row_with_derivative(self, row: &mut [f32], grad: &mut [f32], bias: &[f32]) {
        if self == Activation::Gelu {
            spectrans_linalg::fast_math::gelu_bias_row_with_derivative(row, grad, bias);
            return;
        }
        for ((v, g), &b) in row.iter_mut().zip(grad.iter_mut()).zip(bias) {
            let z = *v + b;
            *v = self.apply(z);
            *g = self.derivative(z);
        }
    }

    /// `f'(x)` (at the kinks, the value PyTorch uses: relu'(0) = 0, leaky'(0) = 0.01, elu'(0) = 1).
    #[inline]
    fn derivative(self, x: f32) -> f32 {
        match self {
            Activation::Gelu => {
                0.5 * (1.0 + erf_f32(x * FRAC_1_SQRT_2))
                    + x * FRAC_1_SQRT_2PI * exp_f32(-0.5 * x * x)
            }
            Activation::Relu => {
                if x > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::Silu => {
                let s = sigmoid(x);
                s * (1.0 + x * (1.0 - s))
            }
            Activation::Tanh => {
                let t = x.tanh();
                1.0 - t * t
            }
            Activation::Sigmoid => {
                let s = sigmoid(x);
                s * (1.0 - s)
            }
            Activation::Elu => {
                if x > 0.0 {
                    1.0
                } else {
                    x.exp()
                }
            }
            Activation::LeakyRelu => {
                if x > 0.0 {
                    1.0
                } else {
                    LEAKY_RELU_SLOPE
                }
            }
        }
    }
}

/// The math of a [`FilterActivation`], applied to the filter weights' real and imaginary
/// parts separately.
pub trait FilterActivationExt: Copy {
    /// `act(w)`.
    fn apply(self, w: f32) -> f32;
    /// `out[j] = act(re[j]) + i act(im[j])` over a row.
    fn apply_complex_row(self, re: &[f32], im: &[f32], out: &mut [Complex32]);
    /// `act'(w)`.
    fn derivative(self, w: f32) -> f32;
}

impl FilterActivationExt for FilterActivation {
    /// `act(w)`.
    #[inline]
    fn apply(self, w: f32) -> f32 {
        match self {
            FilterActivation::Sigmoid => sigmoid(w),
            FilterActivation::Tanh => w.tanh(),
            FilterActivation::Identity => w,
        }
    }

    /// `out[j] = act(re[j]) + i act(im[j])` over a row, the match hoisted out of the loop so
    /// that each arm vectorizes.
    fn apply_complex_row(self, re: &[f32], im: &[f32], out: &mut [Complex32]) {
        macro_rules! each {
            ($f:expr) => {
                for ((o, &r), &i) in out.iter_mut().zip(re).zip(im) {
                    *o = Complex32::new($f(r), $f(i));
                }
            };
        }
        match self {
            FilterActivation::Sigmoid => {
                spectrans_linalg::fast_math::sigmoid_complex_row(re, im, out)
            }
            FilterActivation::Tanh => each!(f32::tanh),
            FilterActivation::Identity => each!(|w: f32| w),
        }
    }

    /// `act'(w)`.
    #[inline]
    fn derivative(self, w: f32) -> f32 {
        match self {
            FilterActivation::Sigmoid => {
                let s = sigmoid(w);
                s * (1.0 - s)
            }
            FilterActivation::Tanh => {
                let t = w.tanh();
                1.0 - t * t
            }
            FilterActivation::Identity => 1.0,
        }
    }
}

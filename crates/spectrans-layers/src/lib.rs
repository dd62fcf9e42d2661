//! GFNet layers with forward and backward passes, ported from spectrans 0.1.0:
//! [`GlobalFilter`], [`Linear`], [`LayerNorm`], [`FeedForward`], [`Embedding`],
//! [`PositionalEncoding`], [`Dropout`] and the pre-norm [`GfnetBlock`].
//!
//! Every layer `L` has `forward` (eval), `forward_train` (returns a cache, draws dropout masks
//! from a [`TrainContext`]) and `backward` (accumulates into an `LGrads`, returns the input
//! gradient). Parameters are visited by their PyTorch `state_dict` names via [`Parameters`].
//! Activations are `ndarray::Array3<f32>` (batch, seq, hidden) in standard layout.
//!
//! ```
//! use ndarray::Array3;
//! use rand::SeedableRng;
//! use spectrans_layers::{BlockOptions, GfnetBlock, GfnetBlockGrads, TrainContext};
//!
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
//! let block = GfnetBlock::new(BlockOptions::new(8, 16), &mut rng)?;
//! let x = Array3::from_shape_fn((2, 12, 8), |(b, t, d)| ((b + t * d) as f32).sin());
//! let y = block.forward(x.view())?; // 12 != 16: the filter is resampled
//! let mut ctx = TrainContext::new(1, true);
//! let (_, cache) = block.forward_train(x.view(), &mut ctx)?;
//! let mut grads = GfnetBlockGrads::zeros_like(&block);
//! let dx = block.backward(&cache, y.view(), &mut grads)?;
//! assert_eq!(dx.dim(), x.dim());
//! # Ok::<(), spectrans_layers::LayerError>(())
//! ```

#![deny(missing_docs)]

mod activation;
mod block;
mod dropout;
mod embedding;
mod error;
mod feed_forward;
mod global_filter;
mod interpolate;
mod layer_norm;
mod linear;
mod params;
mod positional;
pub mod reuse;
mod tensor;

pub use activation::{
    Activation, ActivationExt, FilterActivation, FilterActivationExt, LEAKY_RELU_SLOPE, sigmoid,
};
pub use block::{BlockOptions, GfnetBlock, GfnetBlockCache, GfnetBlockGrads, OutputTokens};
pub use dropout::{Dropout, DropoutMask, TrainContext};
pub use embedding::{Embedding, EmbeddingCache, EmbeddingGrads, TokenId, xavier_uniform};
pub use error::LayerError;
pub use feed_forward::{FeedForward, FeedForwardCache, FeedForwardGrads};
pub use global_filter::{GlobalFilter, GlobalFilterCache, GlobalFilterGrads};
pub use interpolate::{LinearResample, Tap};
pub use layer_norm::{LayerNorm, LayerNormCache, LayerNormGrads};
pub use linear::{Linear, LinearCache, LinearGrads};
pub use params::{Parameters, fill_zero, parameter_count, parameter_shapes, set_parameter};
pub use positional::{
    LearnedEncoding, PositionalEncoding, PositionalEncodingCache, PositionalEncodingGrads,
    RotaryEncoding, SinusoidalEncoding, rotary_inv_freq, sinusoidal_table,
};
pub use spectrans_fft::FftNorm;
/// The kernels under these layers (products, precision, scratch), at the version they use.
pub use spectrans_linalg as linalg;
pub use spectrans_linalg::Precision;

/// What [`parameters!`] expands to needs, reachable from any crate.
#[doc(hidden)]
pub mod __macro_support {
    pub use crate::params::join;
    pub use ndarray::{ArrayViewD, ArrayViewMutD};
}

//! The pre-norm GFNet block: `h = x + drop(GF(LN1(x)))`, `out = h + drop(FFN(LN2(h)))`.

use ndarray::{Array3, ArrayView3, s};
use rand::Rng;
use spectrans_fft::FftNorm;
use spectrans_linalg::contiguous_mut;

use crate::activation::{Activation, FilterActivation};
use crate::dropout::{Dropout, DropoutMask, TrainContext};
use crate::error::{LayerError, shape_error};
use crate::feed_forward::{FeedForward, FeedForwardCache, FeedForwardGrads};
use crate::global_filter::{GlobalFilter, GlobalFilterCache, GlobalFilterGrads};
use crate::layer_norm::{LayerNorm, LayerNormCache, LayerNormGrads};
use crate::tensor::par_add_assign;

/// Everything that shapes a [`GfnetBlock`]. Start from [`BlockOptions::new`] and override fields.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockOptions {
    /// D.
    pub hidden_dim: usize,
    /// S, the filter's length.
    pub sequence_length: usize,
    /// F, the FFN's inner width (spectrans default 4 D).
    pub ffn_hidden_dim: usize,
    /// FFN activation (default GELU).
    pub ffn_activation: Activation,
    /// Filter activation (default sigmoid).
    pub filter_activation: FilterActivation,
    /// FFT normalization (carried, no effect on the math).
    pub fft_norm: FftNorm,
    /// Std of the filter init (default 0.02).
    pub filter_init_std: f32,
    /// The block's residual-branch dropout (applied after the mixing layer and after the FFN).
    pub dropout: f32,
    /// The mixing layer's own output dropout.
    pub mixing_dropout: f32,
    /// The FFN's inner dropout (after the activation).
    pub ffn_dropout: f32,
    /// LayerNorm epsilon (spectrans default 1e-12).
    pub norm_eps: f32,
}

impl BlockOptions {
    /// spectrans' defaults for the given width and length; all dropouts 0.
    pub fn new(hidden_dim: usize, sequence_length: usize) -> Self {
        Self {
            hidden_dim,
            sequence_length,
            ffn_hidden_dim: 4 * hidden_dim,
            ffn_activation: Activation::Gelu,
            filter_activation: FilterActivation::Sigmoid,
            fft_norm: FftNorm::Ortho,
            filter_init_std: 0.02,
            dropout: 0.0,
            mixing_dropout: 0.0,
            ffn_dropout: 0.0,
            norm_eps: 1e-12,
        }
    }

    /// The options of every block of a model built from `config` (also `BlockOptions::from`
    /// with the `config` feature).
    #[cfg(feature = "config")]
    pub fn from_config(config: &spectrans_config::Config) -> Self {
        Self::from(config)
    }

    /// Sets all three dropouts to `p`, as spectrans' GFNet does with its one `dropout`.
    pub fn with_dropout(mut self, p: f32) -> Self {
        self.dropout = p;
        self.mixing_dropout = p;
        self.ffn_dropout = p;
        self
    }
}

/// The options of every block of a model built from `config`: its widths, activations, FFT
/// norm, filter init and norm eps, and its one `dropout` for all three dropouts, as spectrans'
/// GFNet passes them. The enums are the same types in both crates (spectrans-types).
///
/// ```
/// use spectrans_config::Config;
/// use spectrans_layers::{Activation, BlockOptions};
/// let config = Config::from_toml_str(
///     "[model]\nhidden_dim = 8\nnum_layers = 1\nsequence_length = 4\n\
///      [layers.ffn]\nactivation = \"relu\"\n",
/// )?;
/// let options = BlockOptions::from(&config);
/// assert_eq!((options.hidden_dim, options.ffn_hidden_dim), (8, 32));
/// assert_eq!(options.ffn_activation, Activation::Relu);
/// # Ok::<(), spectrans_config::ConfigError>(())
/// ```
#[cfg(feature = "config")]
impl From<&spectrans_config::Config> for BlockOptions {
    fn from(config: &spectrans_config::Config) -> Self {
        let dropout = config.dropout();
        Self {
            hidden_dim: config.hidden_dim(),
            sequence_length: config.sequence_length(),
            ffn_hidden_dim: config.ffn_hidden_dim(),
            ffn_activation: config.ffn_activation(),
            filter_activation: config.filter_activation(),
            fft_norm: config.fft_norm(),
            filter_init_std: config.filter_init_std() as f32,
            dropout,
            mixing_dropout: dropout,
            ffn_dropout: dropout,
            norm_eps: config.norm_eps() as f32,
        }
    }
}

/// Which tokens of its output a block computes.
///
/// The global filter mixes every token, so a block always reads all of them; but the
/// feed-forward half works token by token, so a block whose output feeds only a cls-pooled
/// head (the last block of a classifier) needs it at token 0 alone: the same numbers for that
/// token, a factor N less FFN work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputTokens {
    /// Every token: the output is (B, N, D).
    #[default]
    All,
    /// Token 0 only: the output is (B, 1, D), equal to `[:, 0:1, :]` of the full output.
    First,
}

impl OutputTokens {
    /// How many tokens of a length-`n` sequence the output keeps.
    pub fn count(self, n: usize) -> usize {
        match self {
            OutputTokens::All => n,
            OutputTokens::First => n.min(1),
        }
    }

    /// The kept tokens of `h` (B, N, D): `h` itself or a copy of its first token.
    fn select(self, h: Array3<f32>) -> Array3<f32> {
        match self {
            OutputTokens::All => h,
            OutputTokens::First => h.slice(s![.., 0..1, ..]).to_owned(),
        }
    }

    /// The gradient w.r.t. the full (B, N, D) tensor from the gradient w.r.t. the kept tokens.
    fn expand(self, g: Array3<f32>, n: usize) -> Array3<f32> {
        match self {
            OutputTokens::All => g,
            OutputTokens::First => {
                let (b, _, d) = g.dim();
                let mut full = Array3::<f32>::zeros((b, n, d));
                full.slice_mut(s![.., 0..1, ..]).assign(&g);
                full
            }
        }
    }
}

/// spectrans' `PreNormBlock` with a `GlobalFilterMixing` layer.
#[derive(Debug, Clone)]
pub struct GfnetBlock {
    /// `mixing_layer`.
    pub mixing_layer: GlobalFilter,
    /// `norm1`, before the mixing layer.
    pub norm1: LayerNorm,
    /// `ffn`.
    pub ffn: FeedForward,
    /// `norm2`, before the FFN.
    pub norm2: LayerNorm,
    /// Residual-branch dropout.
    pub dropout: Dropout,
}

/// Gradients of a [`GfnetBlock`].
#[derive(Debug, Clone)]
pub struct GfnetBlockGrads {
    /// Of `mixing_layer`.
    pub mixing_layer: GlobalFilterGrads,
    /// Of `norm1`.
    pub norm1: LayerNormGrads,
    /// Of `ffn`.
    pub ffn: FeedForwardGrads,
    /// Of `norm2`.
    pub norm2: LayerNormGrads,
}

/// What [`GfnetBlock::backward`] needs.
#[derive(Debug, Clone)]
pub struct GfnetBlockCache {
    /// `norm1`'s cache.
    pub norm1: LayerNormCache,
    /// The mixing layer's cache.
    pub mixing: GlobalFilterCache,
    /// Residual dropout after the mixing layer.
    pub mixing_mask: DropoutMask,
    /// `norm2`'s cache.
    pub norm2: LayerNormCache,
    /// The FFN's cache.
    pub ffn: FeedForwardCache,
    /// Residual dropout after the FFN.
    pub ffn_mask: DropoutMask,
    /// Input shape.
    pub shape: (usize, usize, usize),
    /// The tokens the output kept.
    pub tokens: OutputTokens,
}

impl GfnetBlock {
    /// Builds the block with PyTorch/spectrans initialization from `rng`
    /// (filter, then fc1, then fc2, the order spectrans creates them).
    pub fn new(options: BlockOptions, rng: &mut impl Rng) -> Result<Self, LayerError> {
        let o = options;
        let mixing_layer = GlobalFilter::new(
            o.hidden_dim,
            o.sequence_length,
            o.filter_activation,
            o.fft_norm,
            o.filter_init_std,
            o.mixing_dropout,
            rng,
        )?;
        let ffn = FeedForward::new(
            o.hidden_dim,
            o.ffn_hidden_dim,
            o.ffn_activation,
            o.ffn_dropout,
            rng,
        )?;
        Ok(Self {
            mixing_layer,
            norm1: LayerNorm::new(o.hidden_dim, o.norm_eps),
            ffn,
            norm2: LayerNorm::new(o.hidden_dim, o.norm_eps),
            dropout: Dropout::new(o.dropout)?,
        })
    }

    /// D.
    pub fn hidden_dim(&self) -> usize {
        self.norm1.dim()
    }

    /// Eval forward on (batch, n, dim); residual adds happen in place.
    pub fn forward(&self, x: ArrayView3<'_, f32>) -> Result<Array3<f32>, LayerError> {
        self.forward_tokens(x, OutputTokens::All)
    }

    /// Eval forward that computes the output at `tokens` only: (batch, `tokens.count(n)`, dim).
    pub fn forward_tokens(
        &self,
        x: ArrayView3<'_, f32>,
        tokens: OutputTokens,
    ) -> Result<Array3<f32>, LayerError> {
        let mut h = self.mixing_layer.forward(self.norm1.forward(x)?.view())?;
        par_add_assign("GfnetBlock residual", &mut h, &x)?;
        let mut h = tokens.select(h);
        // out = h + FFN(norm2(h)), accumulated into h (no fresh buffer, no extra add pass),
        // norm2 fused into the FFN's row blocks.
        self.ffn.forward_add_normalized(&self.norm2, &mut h)?;
        Ok(h)
    }

    /// Training forward: dropout masks from `ctx`, caches for backward.
    pub fn forward_train(
        &self,
        x: ArrayView3<'_, f32>,
        ctx: &mut TrainContext,
    ) -> Result<(Array3<f32>, GfnetBlockCache), LayerError> {
        self.forward_train_tokens(x, ctx, OutputTokens::All)
    }

    /// Training forward that computes the output at `tokens` only (see [`OutputTokens`]).
    pub fn forward_train_tokens(
        &self,
        x: ArrayView3<'_, f32>,
        ctx: &mut TrainContext,
        tokens: OutputTokens,
    ) -> Result<(Array3<f32>, GfnetBlockCache), LayerError> {
        let (a, norm1) = self.norm1.forward_train(x, ctx)?;
        let (mut h, mixing) = self.mixing_layer.forward_train(a.view(), ctx)?;
        let mixing_mask = self
            .dropout
            .apply(contiguous_mut("block mixing output", &mut h)?, ctx);
        par_add_assign("GfnetBlock residual", &mut h, &x)?;
        let h = tokens.select(h);
        let (c, norm2) = self.norm2.forward_train(h.view(), ctx)?;
        let (mut out, ffn) = self.ffn.forward_train_owned(c, ctx)?;
        let ffn_mask = self
            .dropout
            .apply(contiguous_mut("block FFN output", &mut out)?, ctx);
        par_add_assign("GfnetBlock residual", &mut out, &h.view())?;
        Ok((
            out,
            GfnetBlockCache {
                norm1,
                mixing,
                mixing_mask,
                norm2,
                ffn,
                ffn_mask,
                shape: x.dim(),
                tokens,
            },
        ))
    }

    /// Backward: accumulates into `grads`, returns dL/dx.
    pub fn backward(
        &self,
        cache: &GfnetBlockCache,
        grad_out: ArrayView3<'_, f32>,
        grads: &mut GfnetBlockGrads,
    ) -> Result<Array3<f32>, LayerError> {
        let (b, n, d) = cache.shape;
        let kept = cache.tokens.count(n);
        if grad_out.dim() != (b, kept, d) {
            return Err(shape_error(
                "GfnetBlock output gradient",
                format!("({b}, {kept}, {d})"),
                grad_out.shape(),
            ));
        }
        // out = h + drop(ffn(norm2(h)))
        let df = cache.ffn_mask.masked_grad(grad_out, "block FFN")?;
        let dc = self.ffn.backward(&cache.ffn, df.view(), &mut grads.ffn)?;
        drop(df);
        let mut dh = self
            .norm2
            .backward(&cache.norm2, dc.view(), &mut grads.norm2)?;
        drop(dc);
        par_add_assign("GfnetBlock output gradient", &mut dh, &grad_out)?;
        let dh = cache.tokens.expand(dh, n);
        // h = x + drop(gf(norm1(x)))
        let dm = cache.mixing_mask.masked_grad(dh.view(), "block mixing")?;
        let da = self
            .mixing_layer
            .backward(&cache.mixing, dm.view(), &mut grads.mixing_layer)?;
        drop(dm);
        let mut dx = self
            .norm1
            .backward(&cache.norm1, da.view(), &mut grads.norm1)?;
        par_add_assign("GfnetBlock residual gradient", &mut dx, &dh.view())?;
        Ok(dx)
    }
}

impl GfnetBlockCache {
    /// Adds its large arrays to `out`, for the next step ([`crate::reuse`]).
    pub fn into_arrays(self, out: &mut Vec<Vec<f32>>) {
        self.norm1.into_arrays(out);
        self.norm2.into_arrays(out);
        self.ffn.into_arrays(out);
    }
}

impl GfnetBlockGrads {
    /// Zero gradients shaped like `block`.
    pub fn zeros_like(block: &GfnetBlock) -> Self {
        Self {
            mixing_layer: GlobalFilterGrads::zeros_like(&block.mixing_layer),
            norm1: LayerNormGrads::zeros_like(&block.norm1),
            ffn: FeedForwardGrads::zeros_like(&block.ffn),
            norm2: LayerNormGrads::zeros_like(&block.norm2),
        }
    }
}

// PyTorch's state_dict order: mixing_layer, norm1, ffn, norm2.
crate::parameters!(GfnetBlock, GfnetBlockGrads => [
    module mixing_layer,
    module norm1,
    module ffn,
    module norm2,
]);

//! Building a [`Config`] in code, starting from the defaults of spectrans' Python API.

use crate::enums::{
    Activation, FftNorm, FilterActivation, ModelType, OutputType, PositionalEncodingType,
};
use crate::error::ConfigError;
use crate::raw::{RawConfig, RawFfn, RawLayers, RawMixing, RawModel};
use crate::values::Config;

/// Sets fields one by one; [`ConfigBuilder::build`] validates them like a file.
///
/// Starts from `GFNet()`'s defaults: hidden 768, 12 layers, sequence length 512, dropout 0.1,
/// norm_eps 1e-12, sinusoidal positions, classification, sigmoid filters, ffn = 4 * hidden.
///
/// ```
/// use spectrans_config::{Config, ModelType};
/// let c = Config::builder().hidden_dim(64).num_layers(2).vocab_size(1000).build()?;
/// assert_eq!((c.hidden_dim(), c.sequence_length(), c.ffn_hidden_dim()), (64, 512, 256));
/// assert_eq!(c.dropout(), 0.1);
///
/// // Values are checked at build time, every violation at once.
/// let err = Config::builder().hidden_dim(0).dropout(2.0).build().unwrap_err();
/// assert_eq!(err.violations().len(), 2);
///
/// // An encoder has no head; output_type stays unset unless you set it.
/// let enc = Config::builder().model_type(ModelType::GfnetEncoder).build()?;
/// assert_eq!(enc.head_output_dim(), None);
/// # Ok::<(), spectrans_config::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct ConfigBuilder {
    model: RawModel,
    mixing: RawMixing,
    ffn: RawFfn,
}

impl Default for ConfigBuilder {
    fn default() -> Self {
        Self::new()
    }
}

/// Sizes beyond i64 cannot be written to TOML; they saturate and then fail validation's
/// overflow rule rather than wrap.
fn int(v: usize) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl ConfigBuilder {
    /// The seed defaults (see the type's docs).
    pub fn new() -> Self {
        ConfigBuilder {
            model: RawModel {
                hidden_dim: Some(768),
                num_layers: Some(12),
                sequence_length: Some(512),
                dropout: Some(0.1),
                ..RawModel::default()
            },
            mixing: RawMixing::default(),
            ffn: RawFfn::default(),
        }
    }

    /// gfnet or gfnet_encoder.
    pub fn model_type(mut self, v: ModelType) -> Self {
        self.model.model_type = Some(v);
        self
    }
    /// Width D of every token vector (> 0).
    pub fn hidden_dim(mut self, v: usize) -> Self {
        self.model.hidden_dim = Some(int(v));
        self
    }
    /// Number of blocks (> 0).
    pub fn num_layers(mut self, v: usize) -> Self {
        self.model.num_layers = Some(int(v));
        self
    }
    /// Filter and positional table length (> 0).
    pub fn sequence_length(mut self, v: usize) -> Self {
        self.model.sequence_length = Some(int(v));
        self
    }
    /// Dropout probability (0 <= p <= 1).
    pub fn dropout(mut self, v: impl Into<f64>) -> Self {
        self.model.dropout = Some(v.into());
        self
    }
    /// Token embedding rows (>= 1), or `None` for a model fed `inputs_embeds`.
    pub fn vocab_size(mut self, v: impl Into<Option<usize>>) -> Self {
        self.model.vocab_size = v.into().map(int);
        self
    }
    /// Output classes (>= 1), or `None`.
    pub fn num_classes(mut self, v: impl Into<Option<usize>>) -> Self {
        self.model.num_classes = v.into().map(int);
        self
    }
    /// FFN inner width (>= 1), or `None` for 4 * hidden_dim.
    pub fn ffn_hidden_dim(mut self, v: impl Into<Option<usize>>) -> Self {
        self.model.ffn_hidden_dim = v.into().map(int);
        self
    }
    /// false disables positional encoding whatever its type.
    pub fn use_positional_encoding(mut self, v: bool) -> Self {
        self.model.use_positional_encoding = Some(v);
        self
    }
    /// How positions are encoded.
    pub fn positional_encoding_type(mut self, v: PositionalEncodingType) -> Self {
        self.model.positional_encoding_type = Some(v);
        self
    }
    /// LayerNorm epsilon (> 0).
    pub fn norm_eps(mut self, v: impl Into<f64>) -> Self {
        self.model.norm_eps = Some(v.into());
        self
    }
    /// The task head.
    pub fn output_type(mut self, v: OutputType) -> Self {
        self.model.output_type = Some(v);
        self
    }
    /// Recompute activations in the backward pass.
    pub fn gradient_checkpointing(mut self, v: bool) -> Self {
        self.model.gradient_checkpointing = Some(v);
        self
    }
    /// Applied to the real and imaginary filter weights.
    pub fn filter_activation(mut self, v: FilterActivation) -> Self {
        self.model.filter_activation = Some(v);
        self
    }
    /// FFT scaling of the global filter.
    pub fn fft_norm(mut self, v: FftNorm) -> Self {
        self.mixing.fft_norm = Some(v);
        self
    }
    /// Standard deviation of the random filter initialisation (> 0).
    pub fn filter_init_std(mut self, v: impl Into<f64>) -> Self {
        self.mixing.filter_init_std = Some(v.into());
        self
    }
    /// Whether the filters are trainable.
    pub fn learnable_filters(mut self, v: bool) -> Self {
        self.mixing.learnable_filters = Some(v);
        self
    }
    /// Activation between the two FFN linears.
    pub fn ffn_activation(mut self, v: Activation) -> Self {
        self.ffn.activation = Some(v);
        self
    }

    /// The raw config the builder holds.
    pub fn to_raw(&self) -> RawConfig {
        RawConfig {
            model: Some(self.model.clone()),
            layers: Some(RawLayers {
                mixing: Some(self.mixing.clone()),
                ffn: Some(self.ffn.clone()),
            }),
        }
    }

    /// Validates the fields set so far (every violation is reported).
    pub fn build(&self) -> Result<Config, ConfigError> {
        Config::validate(self.to_raw())
    }
}

//! Building a model in code with the keywords and defaults of spectrans' `GFNet(...)` and
//! `GFNetEncoder(...)` constructors, validated by the same rules as a TOML config.

use spectrans_config::{
    Activation, Config, ConfigBuilder, FftNorm, FilterActivation, ModelType, OutputType,
    PositionalEncodingType,
};

use crate::error::ModelError;
use crate::gfnet::Gfnet;

/// Sets a model's hyper-parameters one by one, then [`GfnetBuilder::build`]s it with a seed.
///
/// [`Gfnet::builder`] starts from `GFNet()`'s defaults (no vocabulary, hidden 768, 12 layers,
/// `max_sequence_length` 512, dropout 0.1, norm_eps 1e-12, sinusoidal positions,
/// classification, sigmoid filters, FFN width 4 x hidden); [`Gfnet::encoder_builder`] from
/// `GFNetEncoder()`'s (no vocabulary, no head: it returns hidden states).
///
/// The three examples of spectrans' GFNet page, shrunk so the doc test runs in a moment
/// (spectrans uses vocab 30000, hidden 768, 12 layers and 512 tokens; the shapes follow the
/// same rules at any size):
///
/// ```
/// use ndarray::{Array2, Array3};
/// use spectrans_models::{Config, Gfnet, ModelInput};
///
/// // A classifier: input_ids (8, N) -> logits (8, 2).
/// let model = Gfnet::builder()
///     .vocab_size(1000)
///     .hidden_dim(32)
///     .num_layers(2)
///     .max_sequence_length(64)
///     .num_classes(2)
///     .build(0)?;
/// let input_ids = Array2::from_shape_fn((8, 64), |(b, n)| ((b * 31 + n * 7) % 1000) as i64);
/// let logits = model.forward(ModelInput::TokenIds(input_ids.view()), None)?;
/// assert_eq!(logits.shape(), &[8, 2]);
///
/// // An encoder: inputs_embeds (8, N, D) -> features (8, N, D).
/// let encoder = Gfnet::encoder_builder()
///     .hidden_dim(32)
///     .num_layers(2)
///     .max_sequence_length(64)
///     .build(0)?;
/// let inputs = Array3::<f32>::from_elem((8, 64, 32), 0.5);
/// let features = encoder.forward(ModelInput::Embeddings(inputs.view()), None)?;
/// assert_eq!(features.shape(), &[8, 64, 32]);
///
/// // From a configuration (spectrans' GFNetModelConfig; here TOML).
/// let config = Config::from_toml_str(
///     "[model]\nhidden_dim = 32\nnum_layers = 2\nsequence_length = 64\n",
/// )?;
/// let model = Gfnet::new(&config, 0)?;
/// assert_eq!(model.config().hidden_dim(), 32);
///
/// // Values are checked as in a file, every violation at once.
/// let err = Gfnet::builder().hidden_dim(0).dropout(1.5).build(0).unwrap_err();
/// assert!(err.to_string().contains("model.hidden_dim"), "{err}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct GfnetBuilder {
    config: ConfigBuilder,
}

impl Gfnet {
    /// A builder with the defaults of spectrans' `GFNet(...)`.
    pub fn builder() -> GfnetBuilder {
        GfnetBuilder {
            config: Config::builder(),
        }
    }

    /// A builder with the defaults of spectrans' `GFNetEncoder(...)`: no vocabulary and no
    /// head (inputs_embeds in, hidden states out).
    pub fn encoder_builder() -> GfnetBuilder {
        GfnetBuilder {
            config: Config::builder().model_type(ModelType::GfnetEncoder),
        }
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty => $field:ident),* $(,)?) => {
        $(
            $(#[$doc])*
            pub fn $name(mut self, value: $ty) -> Self {
                self.config = self.config.$field(value);
                self
            }
        )*
    };
}

impl GfnetBuilder {
    setters! {
        /// `vocab_size`: token embeddings for input_ids (none: inputs_embeds only).
        vocab_size: usize => vocab_size,
        /// `hidden_dim`, the model width D.
        hidden_dim: usize => hidden_dim,
        /// `num_layers`, the number of blocks.
        num_layers: usize => num_layers,
        /// `max_sequence_length` (the config's `sequence_length`): the filter's length and
        /// the positional table's.
        max_sequence_length: usize => sequence_length,
        /// `num_classes` of the classification (or sequence, lm) head.
        num_classes: usize => num_classes,
        /// `use_positional_encoding`.
        use_positional_encoding: bool => use_positional_encoding,
        /// `positional_encoding_type`.
        positional_encoding_type: PositionalEncodingType => positional_encoding_type,
        /// `dropout`, everywhere.
        dropout: f64 => dropout,
        /// `ffn_hidden_dim` (default 4 x hidden_dim).
        ffn_hidden_dim: usize => ffn_hidden_dim,
        /// `norm_eps` of every LayerNorm.
        norm_eps: f64 => norm_eps,
        /// `output_type`, the head.
        output_type: OutputType => output_type,
        /// `filter_activation` applied to the filter weights.
        filter_activation: FilterActivation => filter_activation,
        /// `gradient_checkpointing` in training.
        gradient_checkpointing: bool => gradient_checkpointing,
        /// `fft_norm` of the global filter (no effect on the result).
        fft_norm: FftNorm => fft_norm,
        /// `filter_init_std` of the random filter initialisation.
        filter_init_std: f64 => filter_init_std,
        /// `learnable_filters`: whether training updates the filters.
        learnable_filters: bool => learnable_filters,
        /// The activation between the FFN's two linears.
        ffn_activation: Activation => ffn_activation,
    }

    /// The validated config these settings make (every violation at once).
    pub fn config(&self) -> Result<Config, ModelError> {
        Ok(self.config.build()?)
    }

    /// Validates the settings and builds the model, initialised as spectrans does from `seed`.
    pub fn build(&self, seed: u64) -> Result<Gfnet, ModelError> {
        Gfnet::new(&self.config()?, seed)
    }
}

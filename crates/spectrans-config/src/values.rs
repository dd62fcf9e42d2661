//! The validated values of a config: the [`Config`] struct alone. Validation (`validate.rs`)
//! fills it in and `config.rs` implements everything it does; both import this leaf, neither
//! imports the other's importer.

use crate::enums::{
    Activation, FftNorm, FilterActivation, ModelType, OutputType, PositionalEncodingType,
};

/// A config that passed validation, with every default resolved.
///
/// The only ways to get one are [`Config::from_toml_str`], [`Config::load`],
/// [`Config::validate`] and [`crate::ConfigBuilder::build`], so a model built from a `Config` never
/// sees an invalid value.
///
/// ```
/// use spectrans_config::{Config, OutputType};
/// let c = Config::from_toml_str(
///     "[model]\nhidden_dim = 8\nnum_layers = 2\nsequence_length = 16\nnum_classes = 3\n",
/// )?;
/// assert_eq!(c.ffn_hidden_dim(), 32); // 4 * hidden_dim
/// assert_eq!(c.output_type(), OutputType::Classification);
/// assert_eq!(c.head_output_dim(), Some(3));
/// assert_eq!(Config::from_toml_str(&c.to_toml_string())?, c);
/// # Ok::<(), spectrans_config::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub(crate) model_type: ModelType,
    pub(crate) hidden_dim: usize,
    pub(crate) num_layers: usize,
    pub(crate) sequence_length: usize,
    pub(crate) dropout: f64,
    pub(crate) vocab_size: Option<usize>,
    pub(crate) num_classes: Option<usize>,
    pub(crate) ffn_hidden_dim: usize,
    pub(crate) use_positional_encoding: bool,
    pub(crate) positional_encoding_type: PositionalEncodingType,
    pub(crate) norm_eps: f64,
    pub(crate) output_type: OutputType,
    pub(crate) gradient_checkpointing: bool,
    pub(crate) filter_activation: FilterActivation,
    pub(crate) fft_norm: FftNorm,
    pub(crate) filter_init_std: f64,
    pub(crate) learnable_filters: bool,
    pub(crate) ffn_activation: Activation,
}

//! TOML model configs for the GFNet models of spectrans-rs, and their validation.
//!
//! A config has a `[model]` table with the fields of spectrans' `GFNetModelConfig`, and
//! optional `[layers.mixing]` and `[layers.ffn]` tables like spectrans' YAML examples. The
//! only way to obtain a [`Config`] is through validation, which reports every violation of a
//! file at once, each naming its field path, the value and the rule:
//!
//! ```
//! use spectrans_config::Config;
//! let err = Config::from_toml_str("[model]\nhiden_dim = 64\nnum_layers = 0\nsequence_length = 8\n")
//!     .unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "model.hiden_dim: unknown field `hiden_dim` in [model]; did you mean `hidden_dim`?\n\
//!      model.hidden_dim: missing; required (an integer > 0)\n\
//!      model.num_layers: got 0; must be > 0"
//! );
//! ```
//!
//! The schema itself is data ([`schema::FIELDS`], [`schema::CROSS_FIELD_RULES`]) from which
//! docs/config.md is generated. This crate depends on spectrans-types, serde, toml and
//! thiserror only. It also holds [`write_atomically`], the one way the workspace writes
//! output files.

#![deny(missing_docs)]

mod atomic;
mod builder;
mod config;
mod enums;
mod error;
mod parse;
mod raw;
pub mod schema;
mod suggest;
mod validate;
mod values;

pub use atomic::write_atomically;
pub use builder::ConfigBuilder;
pub use enums::{
    Activation, FftNorm, FilterActivation, MixingType, ModelType, OutputType,
    PositionalEncodingType, UnknownVariant,
};
pub use error::{ConfigError, Violation};
pub use raw::{RawConfig, RawFfn, RawLayers, RawMixing, RawModel};
pub use values::Config;

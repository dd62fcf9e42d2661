//! The config file as written: serde structs whose fields are `Option` where the file may omit
//! them, so "given" and "defaulted" stay apart until validation.
//!
//! Integers are `i64` (TOML's integer) so that a negative value reaches the validator and is
//! reported with its field, instead of failing as a type error.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::enums::{
    Activation, FftNorm, FilterActivation, MixingType, ModelType, OutputType,
    PositionalEncodingType,
};

/// A whole config file: `[model]` and the optional `[layers.*]` tables.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[model]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<RawModel>,
    /// `[layers]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<RawLayers>,
}

/// `[model]`: spectrans' GFNetModelConfig fields.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // the schema (crate::schema::FIELDS) documents every field
pub struct RawModel {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_type: Option<ModelType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden_dim: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_layers: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence_length: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropout: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocab_size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_classes: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ffn_hidden_dim: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_positional_encoding: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positional_encoding_type: Option<PositionalEncodingType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub norm_eps: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_type: Option<OutputType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gradient_checkpointing: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_activation: Option<FilterActivation>,
}

/// `[layers]`: per-layer settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLayers {
    /// `[layers.mixing]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mixing: Option<RawMixing>,
    /// `[layers.ffn]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ffn: Option<RawFfn>,
}

/// `[layers.mixing]`: spectrans' GlobalFilterMixingConfig.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawMixing {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<MixingType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden_dim: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence_length: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation: Option<FilterActivation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropout: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learnable_filters: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fft_norm: Option<FftNorm>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_init_std: Option<f64>,
}

/// `[layers.ffn]`: the feed-forward network of each block.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawFfn {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden_dim: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intermediate_dim: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation: Option<Activation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropout: Option<f64>,
}

/// A TOML float literal for `v`: shortest round-trip digits, exponent form for tiny or huge
/// values (`1e-12`), always recognisably a float (`1.0`, not `1`).
pub(crate) fn toml_float(v: f64) -> String {
    if v.is_nan() {
        "nan".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.to_owned()
    } else {
        // Debug prints the shortest digits that read back to the same f64, and switches to
        // exponent form outside 1e-4..1e16; both are valid TOML floats.
        format!("{v:?}")
    }
}

/// Writes `key = value` lines; `None` fields are omitted (TOML has no null).
struct Table {
    out: String,
}

impl Table {
    fn header(&mut self, name: &str) {
        if !self.out.is_empty() {
            self.out.push('\n');
        }
        let _ = writeln!(self.out, "[{name}]");
    }
    fn int(&mut self, key: &str, v: Option<i64>) {
        if let Some(v) = v {
            let _ = writeln!(self.out, "{key} = {v}");
        }
    }
    fn float(&mut self, key: &str, v: Option<f64>) {
        if let Some(v) = v {
            let _ = writeln!(self.out, "{key} = {}", toml_float(v));
        }
    }
    fn bool(&mut self, key: &str, v: Option<bool>) {
        if let Some(v) = v {
            let _ = writeln!(self.out, "{key} = {v}");
        }
    }
    /// Choice spellings are plain ASCII identifiers, so no escaping is needed.
    fn choice(&mut self, key: &str, v: Option<impl std::fmt::Display>) {
        if let Some(v) = v {
            let _ = writeln!(self.out, "{key} = \"{v}\"");
        }
    }
}

impl RawConfig {
    /// The config as TOML text, fields in schema order, omitted fields left out.
    ///
    /// ```
    /// use spectrans_config::{RawConfig, RawModel};
    /// let raw = RawConfig {
    ///     model: Some(RawModel { hidden_dim: Some(64), norm_eps: Some(1e-6), ..Default::default() }),
    ///     layers: None,
    /// };
    /// assert_eq!(raw.to_toml_string(), "[model]\nhidden_dim = 64\nnorm_eps = 1e-6\n");
    /// ```
    pub fn to_toml_string(&self) -> String {
        let mut t = Table { out: String::new() };
        if let Some(m) = &self.model {
            t.header("model");
            t.choice("model_type", m.model_type);
            t.int("hidden_dim", m.hidden_dim);
            t.int("num_layers", m.num_layers);
            t.int("sequence_length", m.sequence_length);
            t.float("dropout", m.dropout);
            t.int("vocab_size", m.vocab_size);
            t.int("num_classes", m.num_classes);
            t.int("ffn_hidden_dim", m.ffn_hidden_dim);
            t.bool("use_positional_encoding", m.use_positional_encoding);
            t.choice("positional_encoding_type", m.positional_encoding_type);
            t.float("norm_eps", m.norm_eps);
            t.choice("output_type", m.output_type);
            t.bool("gradient_checkpointing", m.gradient_checkpointing);
            t.choice("filter_activation", m.filter_activation);
        }
        let layers = self.layers.as_ref();
        if let Some(x) = layers.and_then(|l| l.mixing.as_ref()) {
            t.header("layers.mixing");
            t.choice("type", x.kind);
            t.int("hidden_dim", x.hidden_dim);
            t.int("sequence_length", x.sequence_length);
            t.choice("activation", x.activation);
            t.float("dropout", x.dropout);
            t.bool("learnable_filters", x.learnable_filters);
            t.choice("fft_norm", x.fft_norm);
            t.float("filter_init_std", x.filter_init_std);
        }
        if let Some(x) = layers.and_then(|l| l.ffn.as_ref()) {
            t.header("layers.ffn");
            t.int("hidden_dim", x.hidden_dim);
            t.int("intermediate_dim", x.intermediate_dim);
            t.choice("activation", x.activation);
            t.float("dropout", x.dropout);
        }
        if layers.is_some_and(|l| l.mixing.is_none() && l.ffn.is_none()) {
            t.header("layers");
        }
        t.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::FIELDS;

    fn full() -> RawConfig {
        RawConfig {
            model: Some(RawModel {
                model_type: Some(ModelType::Gfnet),
                hidden_dim: Some(8),
                num_layers: Some(2),
                sequence_length: Some(4),
                dropout: Some(0.25),
                vocab_size: Some(10),
                num_classes: Some(3),
                ffn_hidden_dim: Some(16),
                use_positional_encoding: Some(true),
                positional_encoding_type: Some(PositionalEncodingType::Learned),
                norm_eps: Some(1e-12),
                output_type: Some(OutputType::Sequence),
                gradient_checkpointing: Some(false),
                filter_activation: Some(FilterActivation::Tanh),
            }),
            layers: Some(RawLayers {
                mixing: Some(RawMixing {
                    kind: Some(MixingType::GlobalFilter),
                    hidden_dim: Some(8),
                    sequence_length: Some(4),
                    activation: Some(FilterActivation::Tanh),
                    dropout: Some(0.25),
                    learnable_filters: Some(false),
                    fft_norm: Some(FftNorm::Backward),
                    filter_init_std: Some(2.0),
                }),
                ffn: Some(RawFfn {
                    hidden_dim: Some(8),
                    intermediate_dim: Some(16),
                    activation: Some(Activation::LeakyRelu),
                    dropout: Some(0.25),
                }),
            }),
        }
    }

    #[test]
    fn emitter_writes_every_schema_field() {
        let text = full().to_toml_string();
        let doc: toml::Table = text.parse().unwrap();
        for f in FIELDS {
            let mut t = &doc;
            for part in f.section.path().split('.') {
                t = t[part].as_table().unwrap();
            }
            assert!(t.contains_key(f.key), "{} missing from\n{text}", f.path());
        }
    }

    #[test]
    fn emitter_output_reads_back_through_serde() {
        let raw = full();
        let back: RawConfig = toml::from_str(&raw.to_toml_string()).unwrap();
        assert_eq!(back, raw);
    }

    #[test]
    fn floats_are_written_as_floats() {
        assert_eq!(toml_float(1.0), "1.0");
        assert_eq!(toml_float(1e-12), "1e-12");
        assert_eq!(toml_float(0.1), "0.1");
        assert_eq!(toml_float(f64::NEG_INFINITY), "-inf");
        let v: toml::Table = format!("x = {}", toml_float(1e300)).parse().unwrap();
        assert_eq!(v["x"].as_float(), Some(1e300));
    }
}

//! The string-valued choices of the schema, each with its TOML spelling.
//!
//! `Display` writes the TOML string, `FromStr` reads it back, and `NAMES` lists every
//! accepted spelling (used for error messages, suggestions and the generated docs). The
//! choices the FFT and the layers share ([`FftNorm`], [`FilterActivation`], [`Activation`])
//! are defined once, in spectrans-types, and re-exported here; the config-only ones below.

pub use spectrans_types::{Activation, FftNorm, FilterActivation, UnknownVariant};

spectrans_types::choice_enum! {
    serde;
    /// Which model the config builds: spectrans' `GFNet` or the head-less `GFNetEncoder`.
    ModelType, "model_type" {
        /// Embedding (optional), GFNet blocks, final norm and an output head.
        Gfnet => "gfnet",
        /// GFNet blocks and final norm only: no embedding and no head.
        GfnetEncoder => "gfnet_encoder",
    }
}

spectrans_types::choice_enum! {
    serde;
    /// How token positions are encoded before the first block.
    PositionalEncodingType, "positional_encoding_type" {
        /// Fixed sin/cos table of `sequence_length` rows.
        Sinusoidal => "sinusoidal",
        /// A trained `Embedding(sequence_length, hidden_dim)`.
        Learned => "learned",
        /// Rotary position embedding (needs an even `hidden_dim`).
        Rotary => "rotary",
        /// No positional encoding.
        None => "none",
    }
}

spectrans_types::choice_enum! {
    serde;
    /// The task head on top of the final norm.
    OutputType, "output_type" {
        /// Linear on the first token to `num_classes` (hidden states without `num_classes`).
        Classification => "classification",
        /// Linear(hidden, 1) on the (masked) mean over tokens.
        Regression => "regression",
        /// Linear per token to num_classes, else vocab_size, else hidden_dim.
        Sequence => "sequence",
        /// Linear per token to num_classes, else vocab_size.
        Lm => "lm",
        /// No head: the hidden states.
        None => "none",
    }
}

spectrans_types::choice_enum! {
    serde;
    /// The mixing layer kind of `[layers.mixing]`; GFNet has only the global filter.
    MixingType, "type" {
        /// spectrans' GlobalFilterMixing.
        GlobalFilter => "global_filter",
    }
}

#[cfg(test)]
mod tests {
    use std::fmt;
    use std::str::FromStr;

    use serde::{Deserialize, Serialize};

    use super::*;

    fn round_trips<T>(all: &[T], names: &[&str])
    where
        T: Copy + fmt::Display + FromStr + PartialEq + fmt::Debug,
    {
        assert_eq!(all.len(), names.len());
        for (v, n) in all.iter().zip(names) {
            assert_eq!(v.to_string(), *n);
            assert_eq!(n.parse::<T>().ok(), Some(*v));
        }
    }

    #[test]
    fn display_and_from_str_are_inverse() {
        round_trips(ModelType::ALL, ModelType::NAMES);
        round_trips(PositionalEncodingType::ALL, PositionalEncodingType::NAMES);
        round_trips(OutputType::ALL, OutputType::NAMES);
        round_trips(FilterActivation::ALL, FilterActivation::NAMES);
        round_trips(FftNorm::ALL, FftNorm::NAMES);
        round_trips(Activation::ALL, Activation::NAMES);
        round_trips(MixingType::ALL, MixingType::NAMES);
    }

    #[test]
    fn unknown_spelling_lists_the_choices() {
        let err = "softmax".parse::<FilterActivation>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown filter_activation `softmax`; expected one of sigmoid, tanh, identity"
        );
        assert!(
            "Sigmoid".parse::<FilterActivation>().is_err(),
            "spellings are case-sensitive"
        );
    }

    #[test]
    fn serde_uses_the_toml_spelling() {
        #[derive(Serialize, Deserialize)]
        struct W {
            a: Activation,
        }
        let s = toml::to_string(&W {
            a: Activation::LeakyRelu,
        })
        .unwrap();
        assert_eq!(s.trim(), "a = \"leaky_relu\"");
        let w: W = toml::from_str("a = \"silu\"").unwrap();
        assert_eq!(w.a, Activation::Silu);
    }
}

//! The schema as data: every field of every table, its type, default and rule.
//!
//! The validator takes its rules from here and `cargo xtask docs` renders docs/config.md from
//! here, so the reference and the checks cannot drift apart.

use crate::enums::{
    Activation, FftNorm, FilterActivation, MixingType, ModelType, OutputType,
    PositionalEncodingType,
};

/// A TOML table of the schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// `[model]`: spectrans' GFNetModelConfig.
    Model,
    /// `[layers.mixing]`: spectrans' GlobalFilterMixingConfig.
    Mixing,
    /// `[layers.ffn]`: the feed-forward network of each block.
    Ffn,
}

impl Section {
    /// Every section, in document order.
    pub const ALL: &'static [Section] = &[Section::Model, Section::Mixing, Section::Ffn];

    /// Dotted path of the table, e.g. `layers.mixing`.
    pub const fn path(self) -> &'static str {
        match self {
            Section::Model => "model",
            Section::Mixing => "layers.mixing",
            Section::Ffn => "layers.ffn",
        }
    }

    /// The fields of this section, in document order.
    pub fn fields(self) -> impl Iterator<Item = &'static FieldSpec> {
        FIELDS.iter().filter(move |f| f.section == self)
    }

    /// The spec of `key` in this section, if there is one.
    pub fn field(self, key: &str) -> Option<&'static FieldSpec> {
        self.fields().find(|f| f.key == key)
    }
}

/// The TOML type a field takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A TOML integer.
    Int,
    /// A TOML float; an integer is accepted and converted.
    Float,
    /// A TOML boolean.
    Bool,
    /// A TOML string, one of the listed spellings.
    Choice(&'static [&'static str]),
}

impl Kind {
    /// Name of the type for docs and messages.
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Int => "int",
            Kind::Float => "float",
            Kind::Bool => "bool",
            Kind::Choice(_) => "string",
        }
    }
}

/// The rule a field's own value must meet (rules between fields are in [`CROSS_FIELD_RULES`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// An integer `> 0`.
    Positive,
    /// An integer `>= 1`.
    AtLeastOne,
    /// A float `0 <= p <= 1`.
    Probability,
    /// A finite float `> 0`.
    PositiveFinite,
    /// One of the spellings of the field's [`Kind::Choice`].
    OneOf,
    /// Any value of the type.
    Any,
}

impl Rule {
    /// The rule as written in docs and messages, e.g. `0 <= p <= 1`.
    pub fn describe(self, kind: Kind) -> String {
        match (self, kind) {
            (Rule::Positive, _) => "> 0".to_owned(),
            (Rule::AtLeastOne, _) => ">= 1".to_owned(),
            (Rule::Probability, _) => "0 <= p <= 1".to_owned(),
            (Rule::PositiveFinite, _) => "> 0 and finite".to_owned(),
            (Rule::OneOf, Kind::Choice(names)) => format!("one of {}", names.join(", ")),
            (Rule::OneOf, _) | (Rule::Any, _) => String::new(),
        }
    }

    /// Whether the integer `v` meets the rule.
    pub fn allows_int(self, v: i64) -> bool {
        match self {
            Rule::Positive | Rule::AtLeastOne => v >= 1,
            _ => true,
        }
    }

    /// Whether the float `v` meets the rule (NaN and infinities never do).
    pub fn allows_float(self, v: f64) -> bool {
        v.is_finite()
            && match self {
                Rule::Probability => (0.0..=1.0).contains(&v),
                Rule::PositiveFinite => v > 0.0,
                _ => true,
            }
    }
}

/// One field of the schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldSpec {
    /// The table the field lives in.
    pub section: Section,
    /// The key inside the table.
    pub key: &'static str,
    /// Its TOML type.
    pub kind: Kind,
    /// Its default as written in docs ("required" when there is none).
    pub default: &'static str,
    /// The rule its own value must meet.
    pub rule: Rule,
    /// The `[model]` field it repeats (and must agree with), for `[layers.*]` fields.
    pub repeats: Option<&'static str>,
    /// What it means.
    pub doc: &'static str,
}

impl FieldSpec {
    /// Dotted path, e.g. `layers.mixing.fft_norm`.
    pub fn path(&self) -> String {
        format!("{}.{}", self.section.path(), self.key)
    }

    /// The full rule as written in docs: the value rule, then the agreement rule.
    pub fn rule_text(&self) -> String {
        let own = self.rule.describe(self.kind);
        match (own.is_empty(), self.repeats) {
            (_, None) => own,
            (true, Some(m)) => format!("equals {m}"),
            (false, Some(m)) => format!("{own}; equals {m}"),
        }
    }
}

const fn field(
    section: Section,
    key: &'static str,
    kind: Kind,
    default: &'static str,
    rule: Rule,
    doc: &'static str,
) -> FieldSpec {
    FieldSpec {
        section,
        key,
        kind,
        default,
        rule,
        repeats: None,
        doc,
    }
}

const fn repeat(
    section: Section,
    key: &'static str,
    kind: Kind,
    rule: Rule,
    repeats: &'static str,
    doc: &'static str,
) -> FieldSpec {
    FieldSpec {
        section,
        key,
        kind,
        default: "the model's value",
        rule,
        repeats: Some(repeats),
        doc,
    }
}

use Kind::{Bool, Choice, Float, Int};
use Section::{Ffn, Mixing, Model};

/// Every field of the schema, in document order.
pub const FIELDS: &[FieldSpec] = &[
    field(
        Model,
        "model_type",
        Choice(ModelType::NAMES),
        "\"gfnet\"",
        Rule::OneOf,
        "gfnet (spectrans' GFNet) or gfnet_encoder (GFNetEncoder: no embedding, no head)",
    ),
    field(
        Model,
        "hidden_dim",
        Int,
        "required",
        Rule::Positive,
        "width D of every token vector",
    ),
    field(
        Model,
        "num_layers",
        Int,
        "required",
        Rule::Positive,
        "number L of GFNet blocks",
    ),
    field(
        Model,
        "sequence_length",
        Int,
        "required",
        Rule::Positive,
        "filter length and positional table length S",
    ),
    field(
        Model,
        "dropout",
        Float,
        "0.0",
        Rule::Probability,
        "dropout probability everywhere (training only)",
    ),
    field(
        Model,
        "vocab_size",
        Int,
        "none",
        Rule::AtLeastOne,
        "token embedding rows V; without it the model takes inputs_embeds",
    ),
    field(
        Model,
        "num_classes",
        Int,
        "none",
        Rule::AtLeastOne,
        "output width of the head",
    ),
    field(
        Model,
        "ffn_hidden_dim",
        Int,
        "4 * hidden_dim",
        Rule::AtLeastOne,
        "inner width F of each block's FFN",
    ),
    field(
        Model,
        "use_positional_encoding",
        Bool,
        "true",
        Rule::Any,
        "false disables positional encoding whatever its type",
    ),
    field(
        Model,
        "positional_encoding_type",
        Choice(PositionalEncodingType::NAMES),
        "\"sinusoidal\"",
        Rule::OneOf,
        "how positions are encoded",
    ),
    field(
        Model,
        "norm_eps",
        Float,
        "1e-12",
        Rule::PositiveFinite,
        "LayerNorm epsilon",
    ),
    field(
        Model,
        "output_type",
        Choice(OutputType::NAMES),
        "\"classification\"",
        Rule::OneOf,
        "the task head",
    ),
    field(
        Model,
        "gradient_checkpointing",
        Bool,
        "false",
        Rule::Any,
        "recompute activations in the backward pass (memory for time)",
    ),
    field(
        Model,
        "filter_activation",
        Choice(FilterActivation::NAMES),
        "\"sigmoid\"",
        Rule::OneOf,
        "applied to the real and imaginary filter weights",
    ),
    field(
        Mixing,
        "type",
        Choice(MixingType::NAMES),
        "\"global_filter\"",
        Rule::OneOf,
        "the mixing layer; GFNet has only the global filter",
    ),
    repeat(
        Mixing,
        "hidden_dim",
        Int,
        Rule::Positive,
        "model.hidden_dim",
        "repeats the model field",
    ),
    repeat(
        Mixing,
        "sequence_length",
        Int,
        Rule::Positive,
        "model.sequence_length",
        "repeats the model field",
    ),
    repeat(
        Mixing,
        "activation",
        Choice(FilterActivation::NAMES),
        Rule::OneOf,
        "model.filter_activation",
        "repeats the model field",
    ),
    repeat(
        Mixing,
        "dropout",
        Float,
        Rule::Probability,
        "model.dropout",
        "repeats the model field",
    ),
    field(
        Mixing,
        "learnable_filters",
        Bool,
        "true",
        Rule::Any,
        "false freezes the filters (they are then not trainable parameters)",
    ),
    field(
        Mixing,
        "fft_norm",
        Choice(FftNorm::NAMES),
        "\"ortho\"",
        Rule::OneOf,
        "FFT scaling of the global filter",
    ),
    field(
        Mixing,
        "filter_init_std",
        Float,
        "0.02",
        Rule::PositiveFinite,
        "standard deviation of the random filter initialisation",
    ),
    repeat(
        Ffn,
        "hidden_dim",
        Int,
        Rule::Positive,
        "model.hidden_dim",
        "repeats the model field",
    ),
    FieldSpec {
        section: Ffn,
        key: "intermediate_dim",
        kind: Int,
        default: "the model's ffn_hidden_dim",
        rule: Rule::AtLeastOne,
        repeats: Some("model.ffn_hidden_dim"),
        doc: "FFN inner width; sets it when model.ffn_hidden_dim is omitted",
    },
    field(
        Ffn,
        "activation",
        Choice(Activation::NAMES),
        "\"gelu\"",
        Rule::OneOf,
        "activation between the two FFN linears (spectrans' GFNet uses gelu)",
    ),
    repeat(
        Ffn,
        "dropout",
        Float,
        Rule::Probability,
        "model.dropout",
        "repeats the model field",
    ),
];

/// The rules that tie fields together, as written in docs; the field named first is the one a
/// violation is reported on.
pub const CROSS_FIELD_RULES: &[(&str, &str)] = &[
    (
        "model.output_type",
        "\"lm\" needs model.num_classes or model.vocab_size (the width of its output)",
    ),
    (
        "model.vocab_size, model.num_classes, model.output_type",
        "with model_type \"gfnet_encoder\" (no embedding, no head) omit vocab_size and \
         num_classes, and omit output_type or set it to \"none\"",
    ),
    (
        "model.positional_encoding_type",
        "the positional table must be buildable: \"sinusoidal\" and \"rotary\" pair up hidden \
         units, so while use_positional_encoding is true they need an even model.hidden_dim \
         (PyTorch spectrans fails on an odd one); \"learned\" and \"none\" take any",
    ),
    (
        "model",
        "the parameter count (from hidden_dim, sequence_length, num_layers, ffn_hidden_dim, \
         vocab_size, num_classes) must fit in usize",
    ),
    (
        "layers.mixing.*, layers.ffn.*",
        "a field that repeats a [model] field must equal the model's value (its default when \
         the model omits it); layers.ffn.intermediate_dim sets the FFN width when \
         model.ffn_hidden_dim is omitted",
    ),
    (
        "(top level)",
        "only [model] and [layers], and in [layers] only [layers.mixing] and [layers.ffn]; \
         unknown tables and keys are errors",
    ),
];

/// The tables the top level and `[layers]` may hold.
pub const TOP_LEVEL_KEYS: &[&str] = &["model", "layers"];
/// The tables `[layers]` may hold.
pub const LAYERS_KEYS: &[&str] = &["mixing", "ffn"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_per_section() {
        for s in Section::ALL {
            let keys: Vec<_> = s.fields().map(|f| f.key).collect();
            let mut dedup = keys.clone();
            dedup.sort_unstable();
            dedup.dedup();
            assert_eq!(keys.len(), dedup.len(), "{}", s.path());
        }
    }

    #[test]
    fn choice_fields_use_one_of_and_others_do_not() {
        for f in FIELDS {
            assert_eq!(
                matches!(f.kind, Kind::Choice(_)),
                f.rule == Rule::OneOf,
                "{}",
                f.path()
            );
        }
    }

    #[test]
    fn repeated_fields_name_model_fields_of_the_same_type() {
        for f in FIELDS {
            if let Some(m) = f.repeats {
                let key = m.strip_prefix("model.").unwrap();
                let target = Section::Model.field(key).unwrap();
                assert_eq!(target.kind, f.kind, "{}", f.path());
            }
        }
    }

    #[test]
    fn rules_accept_and_reject_at_their_bounds() {
        assert!(Rule::Positive.allows_int(1) && !Rule::Positive.allows_int(0));
        assert!(Rule::AtLeastOne.allows_int(1) && !Rule::AtLeastOne.allows_int(-5));
        assert!(Rule::Probability.allows_float(0.0) && Rule::Probability.allows_float(1.0));
        assert!(
            !Rule::Probability.allows_float(1.0000001) && !Rule::Probability.allows_float(-0.1)
        );
        assert!(!Rule::Probability.allows_float(f64::NAN));
        assert!(
            Rule::PositiveFinite.allows_float(1e-300) && !Rule::PositiveFinite.allows_float(0.0)
        );
        assert!(!Rule::PositiveFinite.allows_float(f64::INFINITY));
        assert!(!Rule::Any.allows_float(f64::NEG_INFINITY));
    }

    #[test]
    fn rule_text_names_the_repeated_field() {
        let f = Section::Mixing.field("dropout").unwrap();
        assert_eq!(f.rule_text(), "0 <= p <= 1; equals model.dropout");
        let f = Section::Model.field("output_type").unwrap();
        assert_eq!(
            f.rule_text(),
            "one of classification, regression, sequence, lm, none"
        );
    }
}

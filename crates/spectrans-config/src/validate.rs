//! [`RawConfig`] to [`Config`]: every value rule of [`crate::schema`], the defaults, and the rules
//! between fields. All violations are collected, not just the first.

use std::collections::BTreeSet;

use crate::enums::{FilterActivation, ModelType, OutputType, PositionalEncodingType};
use crate::error::Violation;
use crate::raw::{RawConfig, RawFfn, RawMixing, RawModel, toml_float};
use crate::schema::{FieldSpec, Section};
use crate::values::Config;

/// Default `[model]` values (spectrans' GFNetModelConfig / ModelConfig).
pub(crate) mod defaults {
    use crate::enums::{
        Activation, FftNorm, FilterActivation, ModelType, OutputType, PositionalEncodingType,
    };

    pub const MODEL_TYPE: ModelType = ModelType::Gfnet;
    pub const DROPOUT: f64 = 0.0;
    pub const USE_POSITIONAL_ENCODING: bool = true;
    pub const POSITIONAL_ENCODING_TYPE: PositionalEncodingType = PositionalEncodingType::Sinusoidal;
    pub const NORM_EPS: f64 = 1e-12;
    pub const OUTPUT_TYPE: OutputType = OutputType::Classification;
    pub const GRADIENT_CHECKPOINTING: bool = false;
    pub const FILTER_ACTIVATION: FilterActivation = FilterActivation::Sigmoid;
    pub const LEARNABLE_FILTERS: bool = true;
    pub const FFT_NORM: FftNorm = FftNorm::Ortho;
    pub const FILTER_INIT_STD: f64 = 0.02;
    pub const FFN_ACTIVATION: Activation = Activation::Gelu;
    /// `ffn_hidden_dim` defaults to this multiple of `hidden_dim`.
    pub const FFN_RATIO: usize = 4;
}

/// Collects violations while the fields are resolved.
struct Checker<'a> {
    out: Vec<Violation>,
    rejected: &'a BTreeSet<String>,
}

fn spec(section: Section, key: &str) -> &'static FieldSpec {
    // Keys passed here are literals of this module, all present in the schema (unit-tested).
    match section.field(key) {
        Some(s) => s,
        None => unreachable!("schema has no field {}.{key}", section.path()),
    }
}

impl Checker<'_> {
    fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.out.push(Violation::new(field, message));
    }

    /// Whether `path` or a table above it was present but rejected by the parser.
    fn is_rejected(&self, path: &str) -> bool {
        self.rejected.iter().any(|r| {
            path == r
                || path
                    .strip_prefix(r.as_str())
                    .is_some_and(|rest| rest.starts_with('.'))
        })
    }

    /// An integer field: checked against its rule, converted to usize.
    fn int(&mut self, section: Section, key: &str, v: Option<i64>) -> Option<usize> {
        let s = spec(section, key);
        let v = v?;
        if !s.rule.allows_int(v) {
            self.push(
                s.path(),
                format!("got {v}; must be {}", s.rule.describe(s.kind)),
            );
            return None;
        }
        match usize::try_from(v) {
            Ok(u) => Some(u),
            Err(_) => {
                self.push(
                    s.path(),
                    format!("got {v}; too large for this platform's usize"),
                );
                None
            }
        }
    }

    /// A required integer field: as [`Checker::int`], and an error when missing.
    fn required_int(&mut self, section: Section, key: &str, v: Option<i64>) -> Option<usize> {
        let s = spec(section, key);
        if v.is_none() && !self.is_rejected(&s.path()) {
            self.push(
                s.path(),
                format!("missing; required (an integer {})", s.rule.describe(s.kind)),
            );
        }
        self.int(section, key, v)
    }

    /// A float field: checked against its rule (NaN and infinities never pass).
    fn float(&mut self, section: Section, key: &str, v: Option<f64>) -> Option<f64> {
        let s = spec(section, key);
        let v = v?;
        if !s.rule.allows_float(v) {
            self.push(
                s.path(),
                format!("got {}; must be {}", toml_float(v), s.rule.describe(s.kind)),
            );
            return None;
        }
        Some(v)
    }

    /// A `[layers.*]` field that repeats a model field must equal the model's resolved value.
    fn agree<T: PartialEq + Copy>(
        &mut self,
        section: Section,
        key: &str,
        given: Option<T>,
        model: Option<T>,
        show: impl Fn(T) -> String,
    ) {
        let s = spec(section, key);
        if let (Some(g), Some(m), Some(target)) = (given, model, s.repeats)
            && g != m
        {
            self.push(
                s.path(),
                format!("got {}; must equal {target} = {}", show(g), show(m)),
            );
        }
    }
}

fn quoted<T: std::fmt::Display>(v: T) -> String {
    format!("\"{v}\"")
}

/// `violations` in report order: [model] problems first, then [layers.*], then unknown tables.
/// The sort is stable, so each table keeps the order its problems were found in.
pub(crate) fn sorted(mut violations: Vec<Violation>) -> Vec<Violation> {
    violations.sort_by_key(|v| match v.field.split('.').next() {
        Some("model") => 0,
        Some("layers") => 1,
        _ => 2,
    });
    violations
}

/// Validates `raw`, skipping "missing" errors for the paths in `rejected` (present in the file
/// but of the wrong type, already reported by the parser).
pub(crate) fn validate(
    raw: &RawConfig,
    rejected: &BTreeSet<String>,
) -> Result<Config, Vec<Violation>> {
    let mut c = Checker {
        out: Vec::new(),
        rejected,
    };
    let model = raw.model.clone().unwrap_or_default();
    let layers = raw.layers.clone().unwrap_or_default();
    let mixing = layers.mixing.unwrap_or_default();
    let ffn = layers.ffn.unwrap_or_default();

    let m = check_model(&mut c, &model);
    check_mixing(&mut c, &mixing, &m);
    check_ffn(&mut c, &ffn, &model, &m);

    let intermediate = c.int(Section::Ffn, "intermediate_dim", ffn.intermediate_dim);
    let ffn_hidden_dim = match (m.ffn_hidden_dim.or(intermediate), m.hidden_dim) {
        (Some(f), _) => Some(f),
        (None, Some(d)) => {
            let f = d.checked_mul(defaults::FFN_RATIO);
            if f.is_none() {
                c.push(
                    "model.hidden_dim",
                    format!("got {d}; 4 * hidden_dim (the default ffn_hidden_dim) overflows usize"),
                );
            }
            f
        }
        (None, None) => None,
    };
    let filter_init_std = c.float(Section::Mixing, "filter_init_std", mixing.filter_init_std);

    let (Some(hidden_dim), Some(num_layers), Some(sequence_length), Some(ffn_hidden_dim)) = (
        m.hidden_dim,
        m.num_layers,
        m.sequence_length,
        ffn_hidden_dim,
    ) else {
        return Err(c.out);
    };
    if !c.out.is_empty() {
        return Err(c.out);
    }
    let config = Config {
        model_type: m.model_type,
        hidden_dim,
        num_layers,
        sequence_length,
        dropout: m.dropout,
        vocab_size: m.vocab_size,
        num_classes: m.num_classes,
        ffn_hidden_dim,
        use_positional_encoding: m.use_positional_encoding,
        positional_encoding_type: m.positional_encoding_type,
        norm_eps: m.norm_eps,
        output_type: m.output_type,
        gradient_checkpointing: m.gradient_checkpointing,
        filter_activation: m.filter_activation,
        fft_norm: mixing.fft_norm.unwrap_or(defaults::FFT_NORM),
        filter_init_std: filter_init_std.unwrap_or(defaults::FILTER_INIT_STD),
        learnable_filters: mixing
            .learnable_filters
            .unwrap_or(defaults::LEARNABLE_FILTERS),
        ffn_activation: ffn.activation.unwrap_or(defaults::FFN_ACTIVATION),
    };
    if config.checked_parameter_count().is_none() {
        return Err(vec![Violation::new(
            "model",
            format!(
                "hidden_dim {hidden_dim}, sequence_length {sequence_length}, num_layers {num_layers}, \
                 ffn_hidden_dim {ffn_hidden_dim}: the parameter count overflows usize"
            ),
        )]);
    }
    Ok(config)
}

/// The `[model]` fields resolved (None where invalid or missing and required).
struct Model {
    model_type: ModelType,
    hidden_dim: Option<usize>,
    num_layers: Option<usize>,
    sequence_length: Option<usize>,
    dropout: f64,
    vocab_size: Option<usize>,
    num_classes: Option<usize>,
    ffn_hidden_dim: Option<usize>,
    use_positional_encoding: bool,
    positional_encoding_type: PositionalEncodingType,
    norm_eps: f64,
    output_type: OutputType,
    gradient_checkpointing: bool,
    filter_activation: FilterActivation,
}

fn check_model(c: &mut Checker<'_>, r: &RawModel) -> Model {
    use Section::Model as S;
    let model_type = r.model_type.unwrap_or(defaults::MODEL_TYPE);
    let hidden_dim = c.required_int(S, "hidden_dim", r.hidden_dim);
    let num_layers = c.required_int(S, "num_layers", r.num_layers);
    let sequence_length = c.required_int(S, "sequence_length", r.sequence_length);
    let dropout = c.float(S, "dropout", r.dropout);
    let vocab_size = c.int(S, "vocab_size", r.vocab_size);
    let num_classes = c.int(S, "num_classes", r.num_classes);
    let ffn_hidden_dim = c.int(S, "ffn_hidden_dim", r.ffn_hidden_dim);
    let norm_eps = c.float(S, "norm_eps", r.norm_eps);
    let use_pe = r
        .use_positional_encoding
        .unwrap_or(defaults::USE_POSITIONAL_ENCODING);
    let pe_type = r
        .positional_encoding_type
        .unwrap_or(defaults::POSITIONAL_ENCODING_TYPE);

    let output_type = match model_type {
        ModelType::Gfnet => r.output_type.unwrap_or(defaults::OUTPUT_TYPE),
        ModelType::GfnetEncoder => {
            let why = "model_type \"gfnet_encoder\" has no embedding and no head";
            if let Some(v) = r.vocab_size {
                c.push(
                    "model.vocab_size",
                    format!("got {v}; {why}: omit vocab_size"),
                );
            }
            if let Some(v) = r.num_classes {
                c.push(
                    "model.num_classes",
                    format!("got {v}; {why}: omit num_classes"),
                );
            }
            if let Some(o) = r.output_type.filter(|o| *o != OutputType::None) {
                c.push(
                    "model.output_type",
                    format!("got \"{o}\"; {why}: omit output_type or set it to \"none\""),
                );
            }
            OutputType::None
        }
    };
    if output_type == OutputType::Lm && r.num_classes.is_none() && r.vocab_size.is_none() {
        c.push(
            "model.output_type",
            "got \"lm\"; the lm head needs model.num_classes or model.vocab_size",
        );
    }
    let needs_even = matches!(
        pe_type,
        PositionalEncodingType::Rotary | PositionalEncodingType::Sinusoidal
    );
    if let (true, true, Some(d)) = (use_pe, needs_even, hidden_dim)
        && d % 2 != 0
    {
        c.push(
            "model.positional_encoding_type",
            format!(
                "got \"{pe_type}\" with model.hidden_dim = {d}; {pe_type} positions need an even \
                     hidden_dim (their table pairs up hidden units): use an even hidden_dim, or \
                     \"learned\" or \"none\""
            ),
        );
    }
    Model {
        model_type,
        hidden_dim,
        num_layers,
        sequence_length,
        dropout: dropout.unwrap_or(defaults::DROPOUT),
        vocab_size,
        num_classes,
        ffn_hidden_dim,
        use_positional_encoding: use_pe,
        positional_encoding_type: pe_type,
        norm_eps: norm_eps.unwrap_or(defaults::NORM_EPS),
        output_type,
        gradient_checkpointing: r
            .gradient_checkpointing
            .unwrap_or(defaults::GRADIENT_CHECKPOINTING),
        filter_activation: r.filter_activation.unwrap_or(defaults::FILTER_ACTIVATION),
    }
}

fn check_mixing(c: &mut Checker<'_>, r: &RawMixing, m: &Model) {
    use Section::Mixing as S;
    let show_int = |v: usize| v.to_string();
    let hidden = c.int(S, "hidden_dim", r.hidden_dim);
    c.agree(S, "hidden_dim", hidden, m.hidden_dim, show_int);
    let seq = c.int(S, "sequence_length", r.sequence_length);
    c.agree(S, "sequence_length", seq, m.sequence_length, show_int);
    c.agree(
        S,
        "activation",
        r.activation,
        Some(m.filter_activation),
        quoted,
    );
    let dropout = c.float(S, "dropout", r.dropout);
    c.agree(S, "dropout", dropout, Some(m.dropout), toml_float);
}

fn check_ffn(c: &mut Checker<'_>, r: &RawFfn, raw_model: &RawModel, m: &Model) {
    use Section::Ffn as S;
    let show_int = |v: usize| v.to_string();
    let hidden = c.int(S, "hidden_dim", r.hidden_dim);
    c.agree(S, "hidden_dim", hidden, m.hidden_dim, show_int);
    // intermediate_dim's own rule is checked where the FFN width is resolved; here only whether
    // it agrees with a given model.ffn_hidden_dim.
    let intermediate = r
        .intermediate_dim
        .and_then(|v| usize::try_from(v).ok())
        .filter(|v| *v >= 1);
    if raw_model.ffn_hidden_dim.is_some() {
        c.agree(
            S,
            "intermediate_dim",
            intermediate,
            m.ffn_hidden_dim,
            show_int,
        );
    }
    let dropout = c.float(S, "dropout", r.dropout);
    c.agree(S, "dropout", dropout, Some(m.dropout), toml_float);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::FIELDS;

    #[test]
    fn every_key_used_here_is_in_the_schema() {
        // spec() is only called with these keys; make sure none would hit unreachable!.
        for (s, k) in [
            (Section::Model, "hidden_dim"),
            (Section::Model, "num_layers"),
            (Section::Model, "sequence_length"),
            (Section::Model, "dropout"),
            (Section::Model, "vocab_size"),
            (Section::Model, "num_classes"),
            (Section::Model, "ffn_hidden_dim"),
            (Section::Model, "norm_eps"),
            (Section::Mixing, "hidden_dim"),
            (Section::Mixing, "sequence_length"),
            (Section::Mixing, "activation"),
            (Section::Mixing, "dropout"),
            (Section::Mixing, "filter_init_std"),
            (Section::Ffn, "hidden_dim"),
            (Section::Ffn, "intermediate_dim"),
            (Section::Ffn, "dropout"),
        ] {
            assert!(s.field(k).is_some(), "{}.{k}", s.path());
        }
        assert!(FIELDS.len() >= 16);
    }
}

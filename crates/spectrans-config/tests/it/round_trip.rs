//! Property tests: save/load round trips for random valid configs, and the hand-written TOML
//! walker agreeing with plain serde on random raw configs (valid or not).

use proptest::prelude::*;
use spectrans_config::{
    Activation, Config, ConfigBuilder, FftNorm, FilterActivation, MixingType, ModelType,
    OutputType, PositionalEncodingType, RawConfig, RawFfn, RawLayers, RawMixing, RawModel,
};

fn pick<T: Copy + std::fmt::Debug + 'static>(all: &'static [T]) -> impl Strategy<Value = T> {
    prop::sample::select(all)
}

/// Floats as configs hold them: awkward decimals, tiny exponents, integers.
fn probability() -> impl Strategy<Value = f64> {
    prop_oneof![
        0.0..=1.0f64,
        Just(0.0),
        Just(1.0),
        (0u32..=10).prop_map(|k| f64::from(k) / 10.0)
    ]
}

fn positive() -> impl Strategy<Value = f64> {
    prop_oneof![
        (-15i32..3, 1.0..10.0f64).prop_map(|(e, m)| m * 10f64.powi(e)),
        Just(1.0),
        Just(1e-12)
    ]
}

prop_compose! {
    fn valid_builder()(
        model_type in pick(ModelType::ALL),
        half_hidden in 1usize..48,
        odd in any::<bool>(),
        num_layers in 1usize..16,
        sequence_length in 1usize..1024,
        dropout in probability(),
        vocab in prop::option::of(1usize..100_000),
        classes in prop::option::of(1usize..5000),
        ffn in prop::option::of(1usize..4096),
        use_pe in any::<bool>(),
        pe in pick(PositionalEncodingType::ALL),
        eps in positive(),
        output in pick(OutputType::ALL),
        checkpointing in any::<bool>(),
        filter_act in pick(FilterActivation::ALL),
        fft in pick(FftNorm::ALL),
        init_std in positive(),
        learnable in any::<bool>(),
        ffn_act in pick(Activation::ALL),
    ) -> ConfigBuilder {
        let even_needed = use_pe && matches!(pe, PositionalEncodingType::Rotary | PositionalEncodingType::Sinusoidal);
        let hidden = 2 * half_hidden - usize::from(odd && !even_needed);
        let encoder = model_type == ModelType::GfnetEncoder;
        let mut b = Config::builder()
            .model_type(model_type)
            .hidden_dim(hidden)
            .num_layers(num_layers)
            .sequence_length(sequence_length)
            .dropout(dropout)
            .ffn_hidden_dim(ffn)
            .use_positional_encoding(use_pe)
            .positional_encoding_type(pe)
            .norm_eps(eps)
            .gradient_checkpointing(checkpointing)
            .filter_activation(filter_act)
            .fft_norm(fft)
            .filter_init_std(init_std)
            .learnable_filters(learnable)
            .ffn_activation(ffn_act);
        if encoder {
            b = b.output_type(OutputType::None);
        } else {
            let classes = if output == OutputType::Lm && vocab.is_none() { classes.or(Some(3)) } else { classes };
            b = b.vocab_size(vocab).num_classes(classes).output_type(output);
        }
        b
    }
}

fn opt<S: Strategy>(s: S) -> impl Strategy<Value = Option<S::Value>> {
    prop::option::of(s)
}

/// Any finite float TOML can carry, including negatives and huge or tiny magnitudes.
fn any_float() -> impl Strategy<Value = f64> {
    prop_oneof![prop::num::f64::NORMAL, prop::num::f64::ZERO, -2.0..2.0f64]
}

prop_compose! {
    fn raw_model()(
        a in opt(pick(ModelType::ALL)), b in opt(any::<i64>()), c in opt(-5i64..100), d in opt(any::<i64>()),
        e in opt(any_float()), f in opt(any::<i64>()), g in opt(-3i64..10), h in opt(any::<i64>()),
        i in opt(any::<bool>()), j in opt(pick(PositionalEncodingType::ALL)), k in opt(any_float()),
        l in opt(pick(OutputType::ALL)), m in opt(any::<bool>()), n in opt(pick(FilterActivation::ALL)),
    ) -> RawModel {
        RawModel {
            model_type: a, hidden_dim: b, num_layers: c, sequence_length: d, dropout: e, vocab_size: f,
            num_classes: g, ffn_hidden_dim: h, use_positional_encoding: i, positional_encoding_type: j,
            norm_eps: k, output_type: l, gradient_checkpointing: m, filter_activation: n,
        }
    }
}

prop_compose! {
    fn raw_config()(
        model in opt(raw_model()),
        mixing in opt((opt(pick(MixingType::ALL)), opt(any::<i64>()), opt(-3i64..20), opt(pick(FilterActivation::ALL)),
            opt(any_float()), opt(any::<bool>()), opt(pick(FftNorm::ALL)), opt(any_float()))),
        ffn in opt((opt(-3i64..20), opt(any::<i64>()), opt(pick(Activation::ALL)), opt(any_float()))),
        has_layers in any::<bool>(),
    ) -> RawConfig {
        let mixing = mixing.map(|(kind, hidden_dim, sequence_length, activation, dropout, learnable_filters, fft_norm, filter_init_std)| RawMixing {
            kind, hidden_dim, sequence_length, activation, dropout, learnable_filters, fft_norm, filter_init_std,
        });
        let ffn = ffn.map(|(hidden_dim, intermediate_dim, activation, dropout)| RawFfn { hidden_dim, intermediate_dim, activation, dropout });
        let layers = (has_layers || mixing.is_some() || ffn.is_some()).then_some(RawLayers { mixing, ffn });
        RawConfig { model, layers }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn load_of_save_is_identity(b in valid_builder()) {
        let c = b.build().map_err(|e| TestCaseError::fail(format!("generator made an invalid config: {e}")))?;
        let text = c.to_toml_string();
        let back = Config::from_toml_str(&text).map_err(|e| TestCaseError::fail(format!("{e}\n---\n{text}")))?;
        prop_assert_eq!(&back, &c);
        // Saving again writes the same text: the form is canonical.
        prop_assert_eq!(back.to_toml_string(), text);
    }

    #[test]
    fn emitted_raw_text_reads_back_the_same_through_serde_and_the_walker(raw in raw_config()) {
        let text = raw.to_toml_string();
        let via_serde: RawConfig = toml::from_str(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(&via_serde, &raw);
        // The text path (walker + validator) and the struct path (validator) agree exactly.
        let from_text = Config::from_toml_str(&text);
        let from_raw = Config::validate(raw);
        match (from_text, from_raw) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(a), Err(b)) => prop_assert_eq!(a.violations(), b.violations()),
            (a, b) => prop_assert!(false, "text {:?} vs raw {:?}\n{}", a, b, text),
        }
    }

    #[test]
    fn every_violation_names_a_schema_path(raw in raw_config()) {
        if let Err(e) = Config::validate(raw) {
            prop_assert!(!e.violations().is_empty());
            for v in e.violations() {
                prop_assert!(v.field == "model" || v.field.starts_with("model.") || v.field.starts_with("layers."), "{}", v);
                prop_assert!(!v.message.is_empty() && !v.to_string().contains('\n'), "{}", v);
            }
        }
    }
}

//! Parameter counts: against numbers PyTorch reported for spectrans 0.1.0
//! (`sum(p.numel() for p in GFNet(...).parameters())`), and against an independent count that
//! lists every tensor of the state dict by name and shape.

use proptest::prelude::*;
use spectrans_config::{Config, ModelType, OutputType, PositionalEncodingType};

fn toml(model: &str) -> Config {
    Config::from_toml_str(&format!("[model]\n{model}\n")).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn counts_match_pytorch() {
    // (config, count printed by PyTorch for the same GFNet / GFNetEncoder arguments)
    let cases = [
        (
            "hidden_dim = 512\nnum_layers = 8\nsequence_length = 224\nnum_classes = 1000\n\
          positional_encoding_type = \"learned\"\nffn_hidden_dim = 2048\nnorm_eps = 1e-6\ndropout = 0.1",
            19_277_800,
        ),
        (
            "vocab_size = 100\nhidden_dim = 16\nnum_layers = 2\nsequence_length = 32\nnum_classes = 4",
            8_132,
        ),
        (
            "vocab_size = 100\nhidden_dim = 16\nnum_layers = 2\nsequence_length = 32\noutput_type = \"lm\"",
            9_764,
        ),
        (
            "hidden_dim = 16\nnum_layers = 2\nsequence_length = 32\noutput_type = \"regression\"\nffn_hidden_dim = 24",
            3_841,
        ),
        (
            "hidden_dim = 16\nnum_layers = 2\nsequence_length = 32\noutput_type = \"sequence\"",
            6_736,
        ),
        (
            "vocab_size = 50\nhidden_dim = 16\nnum_layers = 3\nsequence_length = 8\noutput_type = \"sequence\"\n\
          positional_encoding_type = \"rotary\"",
            9_026,
        ),
        (
            "hidden_dim = 16\nnum_layers = 2\nsequence_length = 32",
            6_464,
        ),
        (
            "model_type = \"gfnet_encoder\"\nhidden_dim = 16\nnum_layers = 2\nsequence_length = 32\n\
          positional_encoding_type = \"learned\"",
            6_976,
        ),
    ];
    for (model, expected) in cases {
        assert_eq!(toml(model).parameter_count(), expected, "{model}");
    }
}

/// Every trainable tensor (state-dict name, shape) of the model, per docs/design.md's names.
fn tensors(c: &Config) -> Vec<(String, Vec<usize>)> {
    let (d, s, f) = (c.hidden_dim(), c.sequence_length(), c.ffn_hidden_dim());
    let mut t = Vec::new();
    if let (ModelType::Gfnet, Some(v)) = (c.model_type(), c.vocab_size()) {
        t.push(("embedding.weight".to_owned(), vec![v, d]));
    }
    if c.use_positional_encoding()
        && c.positional_encoding_type() == PositionalEncodingType::Learned
    {
        t.push((
            "positional_encoding.position_embeddings.weight".to_owned(),
            vec![s, d],
        ));
    }
    for i in 0..c.num_layers() {
        let b = format!("blocks.{i}");
        if c.learnable_filters() {
            t.push((format!("{b}.mixing_layer.filter_real"), vec![s, d]));
            t.push((format!("{b}.mixing_layer.filter_imag"), vec![s, d]));
        }
        for n in ["norm1", "norm2"] {
            t.push((format!("{b}.{n}.weight"), vec![d]));
            t.push((format!("{b}.{n}.bias"), vec![d]));
        }
        t.push((format!("{b}.ffn.fc1.weight"), vec![f, d]));
        t.push((format!("{b}.ffn.fc1.bias"), vec![f]));
        t.push((format!("{b}.ffn.fc2.weight"), vec![d, f]));
        t.push((format!("{b}.ffn.fc2.bias"), vec![d]));
    }
    t.push(("final_norm.weight".to_owned(), vec![d]));
    t.push(("final_norm.bias".to_owned(), vec![d]));
    let head = match (c.output_type(), c.num_classes(), c.vocab_size()) {
        (OutputType::Classification, Some(k), _) => Some(("classifier", k)),
        (OutputType::Regression, _, _) => Some(("regressor", 1)),
        (OutputType::Sequence, k, v) => Some(("classifier", k.or(v).unwrap_or(d))),
        (OutputType::Lm, k, v) => k.or(v).map(|o| ("lm_head", o)),
        _ => None,
    };
    if let Some((name, out)) = head {
        t.push((format!("output_head.{name}.weight"), vec![out, d]));
        t.push((format!("output_head.{name}.bias"), vec![out]));
    }
    t
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    #[test]
    fn count_equals_the_sum_over_state_dict_tensors(
        half_hidden in 1usize..64, layers in 1usize..6, seq in 1usize..300,
        vocab in prop::option::of(1usize..5000), classes in prop::option::of(1usize..100),
        ffn in prop::option::of(1usize..512), pe in prop::sample::select(PositionalEncodingType::ALL),
        use_pe in any::<bool>(), output in prop::sample::select(OutputType::ALL),
        encoder in any::<bool>(), learnable in any::<bool>(),
    ) {
        let mut b = Config::builder().hidden_dim(2 * half_hidden).num_layers(layers).sequence_length(seq)
            .ffn_hidden_dim(ffn).positional_encoding_type(pe).use_positional_encoding(use_pe)
            .learnable_filters(learnable);
        if encoder {
            b = b.model_type(ModelType::GfnetEncoder);
        } else {
            let classes = if output == OutputType::Lm && vocab.is_none() { Some(2) } else { classes };
            b = b.vocab_size(vocab).num_classes(classes).output_type(output);
        }
        let c = b.build().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let total: usize = tensors(&c).iter().map(|(_, shape)| shape.iter().product::<usize>()).sum();
        prop_assert_eq!(c.parameter_count(), total);
        let needle = format!("; {total} parameters;");
        prop_assert!(c.summary().contains(&needle), "{}", c.summary());
    }
}

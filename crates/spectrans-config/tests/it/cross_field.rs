//! Rules between fields, whole-file behaviour (all violations at once, syntax positions), and
//! file I/O.

use spectrans_config::{Activation, Config, ConfigError, OutputType, PositionalEncodingType};

const BASE: &str = "[model]\nhidden_dim = 8\nnum_layers = 2\nsequence_length = 16\n";

fn with_model(extra: &str) -> String {
    format!("{BASE}{extra}\n")
}

fn errors(text: &str) -> Vec<String> {
    match Config::from_toml_str(text) {
        Ok(c) => panic!("expected errors, got {c:?}\n---\n{text}"),
        Err(e) => e.to_string().lines().map(str::to_owned).collect(),
    }
}

fn ok(text: &str) -> Config {
    Config::from_toml_str(text).unwrap_or_else(|e| panic!("{e}\n---\n{text}"))
}

#[test]
fn lm_needs_num_classes_or_vocab_size() {
    assert_eq!(
        errors(&with_model("output_type = \"lm\"")),
        ["model.output_type: got \"lm\"; the lm head needs model.num_classes or model.vocab_size"]
    );
    assert_eq!(
        ok(&with_model("output_type = \"lm\"\nvocab_size = 50")).head_output_dim(),
        Some(50)
    );
    assert_eq!(
        ok(&with_model(
            "output_type = \"lm\"\nnum_classes = 7\nvocab_size = 50"
        ))
        .head_output_dim(),
        Some(7)
    );
}

#[test]
fn encoder_refuses_embedding_and_head_fields() {
    let e = errors(&with_model(
        "model_type = \"gfnet_encoder\"\nvocab_size = 10\nnum_classes = 3\noutput_type = \"classification\"",
    ));
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(
        e[0].starts_with("model.vocab_size: got 10; model_type \"gfnet_encoder\" has no embedding")
    );
    assert!(e[1].starts_with("model.num_classes: got 3;"));
    assert!(e[2].starts_with("model.output_type: got \"classification\";"));
    let c = ok(&with_model(
        "model_type = \"gfnet_encoder\"\noutput_type = \"none\"",
    ));
    assert_eq!(
        (c.output_type(), c.head_output_dim(), c.vocab_size()),
        (OutputType::None, None, None)
    );
    // Without output_type the encoder still has no head (the TOML default is for gfnet).
    assert_eq!(
        ok(&with_model("model_type = \"gfnet_encoder\"")).output_type(),
        OutputType::None
    );
}

#[test]
fn rotary_and_sinusoidal_need_an_even_hidden_dim() {
    let odd = "[model]\nhidden_dim = 7\nnum_layers = 1\nsequence_length = 4\n";
    for t in ["rotary", "sinusoidal"] {
        let e = errors(&format!("{odd}positional_encoding_type = \"{t}\"\n"));
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with(&format!(
            "model.positional_encoding_type: got \"{t}\" with model.hidden_dim = 7; {t} positions need an even hidden_dim"
        )), "{e:?}");
    }
    // The default is sinusoidal.
    assert_eq!(errors(odd).len(), 1);
    for t in ["learned", "none"] {
        ok(&format!("{odd}positional_encoding_type = \"{t}\"\n"));
    }
    let c = ok(&format!(
        "{odd}use_positional_encoding = false\npositional_encoding_type = \"rotary\"\n"
    ));
    assert_eq!(c.positional_encoding(), PositionalEncodingType::None);
    assert_eq!(c.positional_encoding_type(), PositionalEncodingType::Rotary);
}

#[test]
fn layer_fields_must_agree_with_the_model() {
    let text = "[model]\nhidden_dim = 8\nnum_layers = 1\nsequence_length = 16\ndropout = 0.1\n\
                filter_activation = \"tanh\"\nffn_hidden_dim = 32\n\
                [layers.mixing]\nhidden_dim = 16\nsequence_length = 8\nactivation = \"sigmoid\"\ndropout = 0.2\n\
                [layers.ffn]\nhidden_dim = 4\nintermediate_dim = 64\ndropout = 0.0\n";
    assert_eq!(
        errors(text),
        [
            "layers.mixing.hidden_dim: got 16; must equal model.hidden_dim = 8",
            "layers.mixing.sequence_length: got 8; must equal model.sequence_length = 16",
            "layers.mixing.activation: got \"sigmoid\"; must equal model.filter_activation = \"tanh\"",
            "layers.mixing.dropout: got 0.2; must equal model.dropout = 0.1",
            "layers.ffn.hidden_dim: got 4; must equal model.hidden_dim = 8",
            "layers.ffn.intermediate_dim: got 64; must equal model.ffn_hidden_dim = 32",
            "layers.ffn.dropout: got 0.0; must equal model.dropout = 0.1",
        ]
    );
}

#[test]
fn agreeing_layer_fields_and_layer_only_fields_are_taken() {
    let c = ok(
        "[model]\nhidden_dim = 8\nnum_layers = 1\nsequence_length = 16\ndropout = 0.1\n\
                [layers.mixing]\ntype = \"global_filter\"\nhidden_dim = 8\nsequence_length = 16\n\
                activation = \"sigmoid\"\ndropout = 0.1\nlearnable_filters = false\nfft_norm = \"forward\"\n\
                filter_init_std = 0.5\n[layers.ffn]\nintermediate_dim = 24\nactivation = \"silu\"\n",
    );
    assert_eq!(
        c.ffn_hidden_dim(),
        24,
        "intermediate_dim sets the width when the model omits it"
    );
    assert_eq!(c.ffn_activation(), Activation::Silu);
    assert!(!c.learnable_filters());
    assert_eq!(c.filter_init_std(), 0.5);
    assert_eq!(c.fft_norm().to_string(), "forward");
    assert_eq!(c.dropout(), 0.1f32);
}

#[test]
fn missing_required_fields_are_each_reported() {
    assert_eq!(
        errors("[model]\n"),
        [
            "model.hidden_dim: missing; required (an integer > 0)",
            "model.num_layers: missing; required (an integer > 0)",
            "model.sequence_length: missing; required (an integer > 0)",
        ]
    );
    assert_eq!(errors("").len(), 3, "an empty file lacks the same three");
}

#[test]
fn a_field_of_the_wrong_type_is_not_also_called_missing() {
    assert_eq!(
        errors("[model]\nhidden_dim = \"8\"\nnum_layers = 2\nsequence_length = 16\n"),
        ["model.hidden_dim: got string \"8\"; expected an integer"]
    );
    assert_eq!(
        errors("model = 5\n"),
        ["model: got integer 5; expected a table [model]"]
    );
}

#[test]
fn all_violations_of_a_file_are_collected() {
    let e = errors(
        "[model]\nhiden_dim = 8\nnum_layers = -1\nsequence_length = 16\ndropout = 3\nnorm_eps = 0\n\
         output_type = \"lm\"\nfilter_activation = \"relu\"\n[layers.ffn]\nactivation = \"swish\"\n[training]\n",
    );
    let fields: Vec<&str> = e
        .iter()
        .map(|l| l.split(':').next().unwrap_or(""))
        .collect();
    for f in [
        "model.hiden_dim",
        "model.hidden_dim",
        "model.num_layers",
        "model.dropout",
        "model.norm_eps",
        "model.output_type",
        "model.filter_activation",
        "layers.ffn.activation",
        "training",
    ] {
        assert!(fields.contains(&f), "{f} not in {e:#?}");
    }
}

#[test]
fn huge_sizes_are_rejected_not_overflowed() {
    let e = errors(&format!(
        "[model]\nhidden_dim = {}\nnum_layers = 2\nsequence_length = 16\n",
        i64::MAX - 1
    ));
    assert!(e.iter().all(|l| l.starts_with("model")), "{e:?}");
    let e = errors(
        "[model]\nhidden_dim = 4194304\nnum_layers = 4194304\nsequence_length = 4194304\nffn_hidden_dim = 1\n",
    );
    assert!(e[0].starts_with("model: hidden_dim 4194304"), "{e:?}");
    assert!(
        e[0].ends_with("the parameter count overflows usize"),
        "{e:?}"
    );
}

#[test]
fn syntax_errors_name_line_and_column() {
    let err = Config::from_toml_str("[model]\nhidden_dim = 8\nnum_layers = \n").unwrap_err();
    let ConfigError::Syntax { line, column, .. } = err else {
        panic!("{err}")
    };
    assert_eq!(line, 3);
    assert!(column > 1);
    assert!(
        err.to_string()
            .starts_with("TOML syntax error at line 3, column "),
        "{err}"
    );
    let err = Config::from_toml_str("[model]\nhidden_dim = 8\nhidden_dim = 9\n").unwrap_err();
    assert!(
        matches!(err, ConfigError::Syntax { line: 3, .. }),
        "duplicate key: {err}"
    );
}

#[test]
fn save_then_load_gives_the_same_config() {
    let c = Config::builder()
        .hidden_dim(16)
        .num_layers(3)
        .sequence_length(32)
        .num_classes(5)
        .norm_eps(1e-6)
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("saved.toml");
    c.save(&path).unwrap();
    assert_eq!(Config::load(&path).unwrap(), c);
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary file left behind");
}

#[test]
fn io_errors_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("does-not-exist.toml");
    let err = Config::load(&path).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }));
    assert!(err.to_string().contains("does-not-exist.toml"), "{err}");
    let c = Config::builder().build().unwrap();
    let err = c
        .save(dir.path().join("no-such-dir").join("x.toml"))
        .unwrap_err();
    assert!(err.to_string().contains("no-such-dir"), "{err}");
}

//! Every field of the schema, with a good and a bad value of each rule, through the TOML path
//! users take. Each bad value must give a violation that names the field.

use spectrans_config::schema::{FIELDS, FieldSpec, Kind, Rule, Section};
use spectrans_config::{Config, ConfigError};

const BASE_MODEL: &[(&str, &str)] = &[
    ("hidden_dim", "8"),
    ("num_layers", "2"),
    ("sequence_length", "16"),
];

/// A config text with the base model fields, plus `key = value` in the field's section (which
/// replaces a base field of the same name).
fn with_field(spec: &FieldSpec, value: &str) -> String {
    let mut model: Vec<(String, String)> = BASE_MODEL
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let mut mixing = Vec::new();
    let mut ffn = Vec::new();
    let target = match spec.section {
        Section::Model => &mut model,
        Section::Mixing => &mut mixing,
        Section::Ffn => &mut ffn,
    };
    target.retain(|(k, _)| k != spec.key);
    target.push((spec.key.to_owned(), value.to_owned()));
    let mut s = String::new();
    for (name, fields) in [
        ("model", &model),
        ("layers.mixing", &mixing),
        ("layers.ffn", &ffn),
    ] {
        s.push_str(&format!("[{name}]\n"));
        for (k, v) in fields {
            s.push_str(&format!("{k} = {v}\n"));
        }
    }
    s
}

/// Values that meet the field's own rule and agree with the base model.
fn good_values(spec: &FieldSpec) -> Vec<String> {
    let base = |key: &str| {
        BASE_MODEL
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| (*v).to_owned())
    };
    if let Some(model_field) = spec.repeats {
        let key = model_field.trim_start_matches("model.");
        return match (spec.kind, key) {
            (Kind::Float, _) => vec!["0.0".into(), "0".into()], // model.dropout defaults to 0.0
            (Kind::Choice(_), _) => vec!["\"sigmoid\"".into()], // model.filter_activation default
            (_, "ffn_hidden_dim") => vec!["1".into(), "48".into()], // model omits it: any width
            _ => vec![base(key).unwrap_or_else(|| panic!("no base value for {key}"))],
        };
    }
    match (spec.kind, spec.rule) {
        // hidden_dim must stay even for the default sinusoidal positions (a cross-field rule).
        (Kind::Int, _) if spec.key == "hidden_dim" => vec!["2".into(), "64".into()],
        (Kind::Int, _) => vec!["1".into(), "2".into(), "64".into()],
        (Kind::Float, Rule::Probability) => {
            vec!["0.0".into(), "1.0".into(), "0.5".into(), "1".into()]
        }
        (Kind::Float, _) => vec!["1e-6".into(), "2".into(), "0.02".into()],
        (Kind::Bool, _) => vec!["true".into(), "false".into()],
        (Kind::Choice(names), _) => names
            .iter()
            .filter(|n| !(spec.key == "output_type" && **n == "lm")) // needs vocab: cross rule
            .map(|n| format!("\"{n}\""))
            .collect(),
    }
}

/// Values that break the field's own rule or type, with a fragment the message must show.
fn bad_values(spec: &FieldSpec) -> Vec<(String, &'static str)> {
    let mut bad: Vec<(String, &'static str)> = match (spec.kind, spec.rule) {
        (Kind::Int, _) => vec![
            ("0".into(), "got 0"),
            ("-3".into(), "got -3"),
            ("2.5".into(), "expected an integer"),
            ("\"8\"".into(), "expected an integer"),
        ],
        (Kind::Float, Rule::Probability) => vec![
            ("1.5".into(), "got 1.5; must be 0 <= p <= 1"),
            ("-0.1".into(), "got -0.1"),
            ("2".into(), "got 2.0"),
            ("nan".into(), "got nan"),
            ("inf".into(), "got inf"),
            ("\"0.1\"".into(), "expected a number"),
        ],
        (Kind::Float, _) => vec![
            ("0.0".into(), "got 0.0; must be > 0 and finite"),
            ("-1e-3".into(), "got -0.001"),
            ("nan".into(), "got nan"),
            ("-inf".into(), "got -inf"),
            ("[1.0]".into(), "expected a number"),
        ],
        (Kind::Bool, _) => vec![
            ("1".into(), "expected true or false"),
            ("\"yes\"".into(), "expected true or false"),
        ],
        (Kind::Choice(_), _) => {
            vec![
                ("\"nope\"".into(), "must be one of"),
                ("3".into(), "expected a string"),
            ]
        }
    };
    if let (Some(model_field), Kind::Int) = (spec.repeats, spec.kind)
        && model_field != "model.ffn_hidden_dim"
    {
        bad.push(("7".into(), "must equal model."));
    }
    if let (Some(_), Kind::Float) = (spec.repeats, spec.kind) {
        bad.push(("0.3".into(), "got 0.3; must equal model.dropout = 0.0"));
    }
    if let (Some(_), Kind::Choice(_)) = (spec.repeats, spec.kind) {
        bad.push((
            "\"tanh\"".into(),
            "got \"tanh\"; must equal model.filter_activation = \"sigmoid\"",
        ));
    }
    bad
}

#[test]
fn base_config_is_valid() {
    let spec = Section::Model.field("hidden_dim").unwrap();
    Config::from_toml_str(&with_field(spec, "8")).unwrap();
}

#[test]
fn every_field_accepts_its_good_values() {
    let mut checked = 0;
    for spec in FIELDS {
        for v in good_values(spec) {
            let text = with_field(spec, &v);
            if let Err(e) = Config::from_toml_str(&text) {
                panic!("{} = {v} should be valid:\n{e}\n---\n{text}", spec.path());
            }
            checked += 1;
        }
    }
    assert!(checked >= 2 * FIELDS.len(), "{checked}");
}

#[test]
fn every_field_rejects_its_bad_values_naming_the_field() {
    let mut checked = 0;
    for spec in FIELDS {
        for (v, fragment) in bad_values(spec) {
            let text = with_field(spec, &v);
            let err = Config::from_toml_str(&text)
                .expect_err(&format!("{} = {v} must fail", spec.path()));
            let ConfigError::Invalid(violations) = &err else {
                panic!("{err}")
            };
            let path = spec.path();
            assert!(
                violations
                    .iter()
                    .any(|x| x.field == path && x.message.contains(fragment)),
                "{path} = {v}: expected a violation of {path} containing {fragment:?}, got:\n{err}"
            );
            for line in err.to_string().lines() {
                assert!(line.starts_with(&format!("{path}: ")), "{line}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 2 * FIELDS.len(), "{checked}");
}

#[test]
fn choice_fields_suggest_near_spellings() {
    let spec = Section::Mixing.field("fft_norm").unwrap();
    let err = Config::from_toml_str(&with_field(spec, "\"orth\"")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "layers.mixing.fft_norm: got \"orth\"; must be one of ortho, forward, backward; did you mean `ortho`?"
    );
}

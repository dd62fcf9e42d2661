//! The defaults are written once, in the validator, and the schema (the source of
//! docs/config.md) must say the same: resolve a config that gives only the required fields
//! and compare every resolved value with the default the schema documents.

use spectrans_config::Config;
use spectrans_config::schema::FIELDS;

/// The value at a dotted path (`model.dropout`, `layers.mixing.fft_norm`) of a TOML document.
fn lookup<'a>(doc: &'a toml::Value, path: &str) -> Option<&'a toml::Value> {
    path.split('.').try_fold(doc, |v, key| v.get(key))
}

#[test]
fn the_schema_documents_the_defaults_the_validator_applies() {
    let config =
        Config::from_toml_str("[model]\nhidden_dim = 24\nnum_layers = 2\nsequence_length = 16\n")
            .expect("the required fields alone make a valid config");
    let resolved: toml::Value = toml::from_str(&config.to_toml_string()).expect("TOML");
    let mut checked = 0;
    for field in FIELDS {
        let path = field.path();
        let got = lookup(&resolved, &path);
        match field.default {
            "required" => {
                assert!(got.is_some(), "{path} is required, so it is always written");
            }
            "none" => assert_eq!(got, None, "{path} has no default, so it is not written"),
            "4 * hidden_dim" => {
                assert_eq!(
                    got.and_then(toml::Value::as_integer),
                    Some(4 * 24),
                    "{path}"
                );
                checked += 1;
            }
            other if other.starts_with("the model's") => {
                // A [layers.*] field that repeats a [model] field: same value.
                let model_key = field.repeats.unwrap_or(field.key);
                let model_value = lookup(&resolved, &format!("model.{model_key}"));
                if got.is_some() {
                    assert_eq!(got, model_value, "{path} repeats model.{model_key}");
                }
            }
            literal => {
                let want: toml::Value = toml::from_str::<toml::Table>(&format!("v = {literal}"))
                    .unwrap_or_else(|e| panic!("{path}: default {literal:?} is not TOML: {e}"))
                    .remove("v")
                    .expect("the key just written");
                assert_eq!(got, Some(&want), "{path}: schema says {literal}");
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 12,
        "only {checked} literal defaults were compared"
    );
}

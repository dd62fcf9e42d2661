//! TOML text to [`RawConfig`], collecting every structural problem: unknown keys (with the
//! nearest known key), values of the wrong type, strings outside a field's choices.
//!
//! The walker copies each accepted value into a clean table (integers given for floats become
//! floats) that serde then maps onto [`RawConfig`]; value rules are the validator's job.

use std::collections::BTreeSet;

use toml::{Table, Value};

use crate::error::{ConfigError, Violation};
use crate::raw::{RawConfig, toml_float};
use crate::schema::{Kind, LAYERS_KEYS, Section, TOP_LEVEL_KEYS};
use crate::suggest::did_you_mean;

/// What the walker found: the typed fields, the problems, and the paths of fields that were
/// present but rejected (so the validator does not call them missing too).
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub raw: RawConfig,
    pub violations: Vec<Violation>,
    pub rejected: BTreeSet<String>,
}

/// Parses `text`; only TOML syntax errors are returned as `Err`.
pub(crate) fn parse(text: &str) -> Result<Parsed, ConfigError> {
    let doc: Table = text
        .parse()
        .map_err(|e: toml::de::Error| syntax_error(text, &e))?;
    let mut p = Parsed::default();
    let mut clean = Table::new();
    // [model] first, then [layers], then anything unknown: the order the problems are reported in.
    let rank = |k: &str| {
        TOP_LEVEL_KEYS
            .iter()
            .position(|t| *t == k)
            .unwrap_or(TOP_LEVEL_KEYS.len())
    };
    let mut entries: Vec<(&String, &Value)> = doc.iter().collect();
    entries.sort_by_key(|(k, _)| rank(k));
    for (key, value) in entries {
        match key.as_str() {
            "model" => {
                if let Some(t) = expect_table(&mut p, "model", value) {
                    clean.insert(
                        key.clone(),
                        Value::Table(walk_section(&mut p, Section::Model, t)),
                    );
                }
            }
            "layers" => {
                if let Some(t) = expect_table(&mut p, "layers", value) {
                    clean.insert(key.clone(), Value::Table(walk_layers(&mut p, t)));
                }
            }
            other => p.violations.push(Violation::new(
                other,
                format!(
                    "unknown table `{other}`; expected [model] or [layers]{}",
                    did_you_mean(other, TOP_LEVEL_KEYS)
                ),
            )),
        }
    }
    match Value::Table(clean).try_into::<RawConfig>() {
        Ok(raw) => p.raw = raw,
        // The clean table holds only known keys of the right types, so serde accepts it; keep a
        // message rather than a panic should the schema and the structs ever disagree.
        Err(e) => p.violations.push(Violation::new(
            "(config)",
            format!("internal schema mismatch: {e}"),
        )),
    }
    Ok(p)
}

fn walk_layers(p: &mut Parsed, layers: &Table) -> Table {
    let mut clean = Table::new();
    for (key, value) in layers {
        let section = match key.as_str() {
            "mixing" => Section::Mixing,
            "ffn" => Section::Ffn,
            other => {
                p.violations.push(Violation::new(
                    format!("layers.{other}"),
                    format!(
                        "unknown table `{other}` in [layers]; expected [layers.mixing] or [layers.ffn]{}",
                        did_you_mean(other, LAYERS_KEYS)
                    ),
                ));
                continue;
            }
        };
        if let Some(t) = expect_table(p, section.path(), value) {
            clean.insert(key.clone(), Value::Table(walk_section(p, section, t)));
        }
    }
    clean
}

fn walk_section(p: &mut Parsed, section: Section, table: &Table) -> Table {
    let known: Vec<&str> = section.fields().map(|f| f.key).collect();
    let mut clean = Table::new();
    for (key, value) in table {
        let path = format!("{}.{key}", section.path());
        let Some(spec) = section.field(key) else {
            let msg = format!(
                "unknown field `{key}` in [{}]{}",
                section.path(),
                did_you_mean(key, &known)
            );
            p.violations.push(Violation::new(path, msg));
            continue;
        };
        match typed(spec.kind, value) {
            Ok(v) => {
                clean.insert(key.clone(), v);
            }
            Err(msg) => {
                p.violations.push(Violation::new(path.clone(), msg));
                p.rejected.insert(path);
            }
        }
    }
    clean
}

/// The value converted to the field's kind, or a message naming what was given and expected.
fn typed(kind: Kind, value: &Value) -> Result<Value, String> {
    match (kind, value) {
        (Kind::Int, Value::Integer(_))
        | (Kind::Float, Value::Float(_))
        | (Kind::Bool, Value::Boolean(_)) => Ok(value.clone()),
        // TOML integers are i64; every one has a nearest f64.
        (Kind::Float, Value::Integer(i)) => Ok(Value::Float(*i as f64)),
        (Kind::Choice(names), Value::String(s)) => {
            if names.contains(&s.as_str()) {
                Ok(value.clone())
            } else {
                Err(format!(
                    "got \"{s}\"; must be one of {}{}",
                    names.join(", "),
                    did_you_mean(s, names)
                ))
            }
        }
        (kind, other) => {
            let expected = match kind {
                Kind::Int => "an integer",
                Kind::Float => "a number",
                Kind::Bool => "true or false",
                Kind::Choice(_) => "a string",
            };
            Err(format!(
                "got {} {}; expected {expected}",
                other.type_str(),
                show(other)
            ))
        }
    }
}

fn expect_table<'a>(p: &mut Parsed, path: &str, value: &'a Value) -> Option<&'a Table> {
    match value {
        Value::Table(t) => Some(t),
        other => {
            p.violations.push(Violation::new(
                path,
                format!(
                    "got {} {}; expected a table [{path}]",
                    other.type_str(),
                    show(other)
                ),
            ));
            p.rejected.insert(path.to_owned());
            None
        }
    }
}

/// A short rendering of a TOML value for messages.
pub(crate) fn show(v: &Value) -> String {
    let s = match v {
        Value::Float(f) => toml_float(*f),
        other => other.to_string(),
    };
    const MAX: usize = 40;
    if s.chars().count() > MAX {
        let cut: String = s.chars().take(MAX).collect();
        format!("{cut}...")
    } else {
        s
    }
}

/// A syntax error with the 1-based line and column of its first byte.
fn syntax_error(text: &str, e: &toml::de::Error) -> ConfigError {
    let offset = e.span().map_or(0, |s| s.start).min(text.len());
    let (line, column) = line_column(text, offset);
    // toml puts hints on further lines; keep the message on one line.
    let message = e
        .message()
        .trim()
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("; ");
    ConfigError::Syntax {
        line,
        column,
        message,
    }
}

/// 1-based line and column (in characters) of byte `offset` of `text`.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    // Clamp to a char boundary at or before offset.
    let mut at = offset.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(text: &str) -> Vec<String> {
        parse(text)
            .unwrap()
            .violations
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn unknown_field_suggests_the_nearest_key() {
        assert_eq!(
            messages("[model]\nhiden_dim = 4\n"),
            ["model.hiden_dim: unknown field `hiden_dim` in [model]; did you mean `hidden_dim`?"]
        );
        assert_eq!(
            messages("[layers.mixing]\nfft_nrom = \"ortho\"\n"),
            [
                "layers.mixing.fft_nrom: unknown field `fft_nrom` in [layers.mixing]; did you mean `fft_norm`?"
            ]
        );
    }

    #[test]
    fn unknown_tables_are_reported_at_both_levels() {
        let m = messages("[modle]\n[layers.fnn]\n[training]\n");
        assert!(
            m.iter()
                .any(|s| s.starts_with("modle: ") && s.contains("did you mean `model`?"))
        );
        assert!(
            m.iter()
                .any(|s| s.starts_with("layers.fnn: ") && s.contains("did you mean `ffn`?"))
        );
        assert!(m.iter().any(|s| s.starts_with("training: unknown table")));
    }

    #[test]
    fn wrong_types_name_field_value_and_expectation() {
        let p = parse("[model]\nhidden_dim = \"64\"\ndropout = true\nmodel_type = \"gfnett\"\n")
            .unwrap();
        let m: Vec<_> = p.violations.iter().map(ToString::to_string).collect();
        assert!(m.contains(&"model.hidden_dim: got string \"64\"; expected an integer".to_owned()));
        assert!(m.contains(&"model.dropout: got boolean true; expected a number".to_owned()));
        assert!(m.contains(
            &"model.model_type: got \"gfnett\"; must be one of gfnet, gfnet_encoder; did you mean `gfnet`?"
                .to_owned()
        ));
        assert!(p.rejected.contains("model.hidden_dim"));
    }

    #[test]
    fn integer_for_float_is_accepted() {
        let p = parse("[model]\ndropout = 0\nnorm_eps = 1\n").unwrap();
        assert!(p.violations.is_empty());
        let m = p.raw.model.unwrap();
        assert_eq!((m.dropout, m.norm_eps), (Some(0.0), Some(1.0)));
    }

    #[test]
    fn float_for_integer_is_rejected() {
        assert_eq!(
            messages("[model]\nhidden_dim = 64.0\n"),
            ["model.hidden_dim: got float 64.0; expected an integer"]
        );
    }

    #[test]
    fn syntax_errors_give_line_and_column() {
        let Err(ConfigError::Syntax { line, column, .. }) =
            parse("[model]\nhidden_dim = 4\nnum_layers = = 2\n")
        else {
            panic!("expected a syntax error");
        };
        assert_eq!(line, 3);
        assert!(column >= 12, "column {column}");
    }

    #[test]
    fn line_column_counts_characters() {
        let t = "ab\nçd\nx";
        assert_eq!(line_column(t, 0), (1, 1));
        assert_eq!(line_column(t, 3), (2, 1));
        assert_eq!(line_column(t, 5), (2, 2)); // after the two-byte ç
        assert_eq!(line_column(t, 99), (3, 2));
    }
}

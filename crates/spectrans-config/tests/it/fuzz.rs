//! Fuzz properties: [`Config::from_toml_str`] and [`Config::load`] end in `Ok` or a
//! [`ConfigError`] on arbitrary and mutated text, never in a panic, a hang or a huge
//! allocation; and whatever they accept, `summary`, `parameter_count` and `to_toml_string` can
//! describe, and reading that TOML back gives the same config.
//!
//! Inputs: valid configs mutated in their text (characters and lines inserted, dropped,
//! repeated), structurally generated documents (any table header, schema and unknown keys,
//! repeated keys, values of every TOML type: huge and negative integers, NaN and infinities,
//! long strings, arrays, inline and nested tables, dates, deep nesting), random strings, and
//! random bytes read through `Config::load` from a temp file (so non-UTF-8 too).
//!
//! Each case runs on its own thread under `catch_unwind`, with a time limit
//! (`LIMITS.case_time`) and a cap on the largest single allocation (`LIMITS.allocation`,
//! watched by the counting global allocator below). Cases per property: `LIMITS.default_cases`, or
//! `PROPTEST_CASES` from the environment (`cargo xtask fuzz --cases N` sets it).

use std::cell::Cell;
use std::fmt::Debug;
use std::time::Duration;

use proptest::collection::vec;
use proptest::prelude::*;
use spectrans_config::schema::FIELDS;
use spectrans_config::{
    Activation, Config, ConfigError, FftNorm, FilterActivation, MixingType, ModelType, OutputType,
    PositionalEncodingType,
};
use spectrans_testkit::{LargestRequest, Limits, fuzz, guarded};

// ---------------------------------------------------------------------------------------------
// Harness (as in spectrans-models' fuzz tests).
// ---------------------------------------------------------------------------------------------

/// Cases, time and allocation limits of every property here (the harness is
/// [`spectrans_testkit::fuzz`]).
const LIMITS: Limits = Limits {
    default_cases: 256,
    case_time: Duration::from_secs(20),
    allocation: 16 << 20,
};

#[global_allocator]
static ALLOCATOR: LargestRequest = LargestRequest;

// ---------------------------------------------------------------------------------------------
// The check.
// ---------------------------------------------------------------------------------------------

/// What became of a parse, after checking the contract of the result.
fn judge(text: &str, result: Result<Config, ConfigError>) -> String {
    match result {
        Ok(c) => {
            let _ = (c.summary(), c.parameter_count(), c.head_output_dim());
            let written = c.to_toml_string();
            match Config::from_toml_str(&written) {
                Ok(back) => assert_eq!(back, c, "to_toml_string does not read back:\n{written}"),
                Err(e) => panic!("to_toml_string does not read back ({e}):\n{written}"),
            }
            "valid".into()
        }
        Err(e) => {
            let _ = e.to_string();
            match e {
                ConfigError::Syntax { line, column, .. } => {
                    let lines = text.split('\n').count();
                    assert!(
                        (1..=lines).contains(&line) && column >= 1,
                        "syntax error at line {line}, column {column} of {lines} lines"
                    );
                    "syntax error".into()
                }
                ConfigError::Invalid(v) => {
                    assert!(!v.is_empty(), "Invalid with no violation");
                    "invalid".into()
                }
                ConfigError::Io { .. } => panic!("from_toml_str gave an Io error"),
            }
        }
    }
}

fn check_text(text: String) -> Result<String, String> {
    guarded(LIMITS, move || judge(&text, Config::from_toml_str(&text)))
}

// ---------------------------------------------------------------------------------------------
// Inputs.
// ---------------------------------------------------------------------------------------------

/// Valid configs: a minimal one, the layers tables, an encoder, every field written out.
fn valid_texts() -> Vec<String> {
    let full = Config::builder()
        .hidden_dim(8)
        .num_layers(2)
        .sequence_length(16)
        .vocab_size(100)
        .num_classes(3)
        .positional_encoding_type(PositionalEncodingType::Rotary)
        .build()
        .expect("valid config")
        .to_toml_string();
    vec![
        "[model]\nhidden_dim = 8\nnum_layers = 2\nsequence_length = 16\nnum_classes = 3\n".into(),
        "[model]\nvocab_size = 50\nhidden_dim = 16\nnum_layers = 3\nsequence_length = 8\n\
         output_type = \"sequence\"\ndropout = 0.1\nnorm_eps = 1e-6\n\n\
         [layers.mixing]\ntype = \"global_filter\"\nfft_norm = \"forward\"\n\
         learnable_filters = false\nfilter_init_std = 0.05\n\n\
         [layers.ffn]\nintermediate_dim = 24\nactivation = \"relu\"\n"
            .into(),
        "# encoder\n[model]\nmodel_type = \"gfnet_encoder\"\nhidden_dim = 16 # D\n\
         num_layers = 2\nsequence_length = 32\npositional_encoding_type = \"learned\"\n"
            .into(),
        full,
    ]
}

fn all_keys() -> Vec<&'static str> {
    let mut keys: Vec<&str> = FIELDS.iter().map(|f| f.key).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

fn choice_names() -> Vec<&'static str> {
    [
        ModelType::NAMES,
        PositionalEncodingType::NAMES,
        OutputType::NAMES,
        FilterActivation::NAMES,
        FftNorm::NAMES,
        Activation::NAMES,
        MixingType::NAMES,
    ]
    .concat()
}

/// A TOML value as text: every type, the edges of each, some not valid TOML at all.
fn toml_value() -> impl Strategy<Value = String> {
    let names = choice_names();
    prop_oneof![
        6 => (1i64..64).prop_map(|v| v.to_string()),
        2 => any::<i64>().prop_map(|v| v.to_string()),
        2 => prop::sample::select(vec![
            "0", "-1", "9223372036854775807", "-9223372036854775808", "9223372036854775808",
            "0x7fffffffffffffff", "0o777", "0b1", "1_000", "+3", "4294967296", "18446744073709551615",
            "01",
        ])
        .prop_map(String::from),
        2 => prop::sample::select(vec![
            "0.5", "0.0", "-0.0", "1.0", "1e308", "1e-320", "5e-324", "1e400", "-1e400", "1e-12",
            "0.1", "nan", "+nan", "-nan", "inf", "+inf", "-inf", "1.", ".5", "1e", "2.5e-3",
        ])
        .prop_map(String::from),
        2 => any::<f64>().prop_map(|v| {
            // TOML spells non-finite floats its own way.
            if v.is_nan() { "nan".into() } else if v.is_infinite() { if v > 0.0 { "inf".into() } else { "-inf".into() } } else { format!("{v:?}") }
        }),
        3 => prop::sample::select(names).prop_map(|n| format!("\"{n}\"")),
        1 => prop::sample::select(vec![
            "\"\"", "\"64\"", "'sigmoid'", "\"\"\"multi\nline\"\"\"", "\"\\u0000\"", "\"\\uD800\"",
            "\"unterminated", "\"é\"",
        ])
        .prop_map(String::from),
        1 => "[a-z_]{0,12}".prop_map(|s| format!("\"{s}\"")),
        1 => (1usize..100_000).prop_map(|n| format!("\"{}\"", "x".repeat(n))),
        2 => prop::sample::select(vec!["true", "false", "True", "yes"]).prop_map(String::from),
        1 => prop::sample::select(vec![
            "[]", "[1, 2]", "[[1], [2]]", "[\"a\", 1]", "[1,]", "{}", "{ a = 1 }",
            "{ hidden_dim = 8, num_layers = 2 }", "{ x = { y = { z = 1 } } }",
        ])
        .prop_map(String::from),
        1 => prop::sample::select(vec![
            "1979-05-27T07:32:00Z", "1979-05-27", "07:32:00", "1979-05-27T00:32:00.999999-07:00",
        ])
        .prop_map(String::from),
        1 => prop_oneof![1usize..100, Just(1_000), Just(50_000)]
            .prop_map(|d| format!("{}{}", "[".repeat(d), "]".repeat(d))),
        1 => prop_oneof![1usize..100, Just(1_000), Just(50_000)]
            .prop_map(|d| format!("{}1{}", "{ a = ".repeat(d), " }".repeat(d))),
    ]
}

/// A key: one of the schema's (any section), a near miss, junk, dotted, quoted.
fn toml_key() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(all_keys()).prop_map(String::from),
        1 => prop::sample::select(vec![
            "hiden_dim", "num_layer", "typ", "\"hidden_dim\"", "'num_layers'", "model.hidden_dim",
            "layers.mixing.fft_norm", "\"\"", "\"é\"", "a.b.c", "\"a\\u0000b\"",
        ])
        .prop_map(String::from),
        1 => "[a-z_]{1,12}",
        1 => (100usize..5000).prop_map(|n| "k".repeat(n)),
    ]
}

/// A table header line, or none (keys at the top level).
fn table_header() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(vec!["[model]", "[layers.mixing]", "[layers.ffn]"]),
        1 => prop::sample::select(vec![
            "", "[layers]", "[training]", "[modle]", "[model.sub]", "[[model]]", "[[layers.ffn]]",
            "[layers.fnn]", "[ model ]", "[\"model\"]", "[model", "[]",
        ]),
    ]
    .prop_map(String::from)
}

#[derive(Debug, Clone)]
struct Table {
    header: String,
    entries: Vec<(String, String)>,
}

fn render(tables: &[Table]) -> String {
    let mut out = String::new();
    for t in tables {
        out.push_str(&t.header);
        out.push('\n');
        for (k, v) in &t.entries {
            out.push_str(&format!("{k} = {v}\n"));
        }
    }
    out
}

#[test]
fn fuzz_toml_structured() {
    let table = (table_header(), vec((toml_key(), toml_value()), 0..8))
        .prop_map(|(header, entries)| Table { header, entries });
    // Half the documents start with the required fields, so that some are valid configs.
    let required = Table {
        header: "[model]".into(),
        entries: [
            ("hidden_dim", "8"),
            ("num_layers", "2"),
            ("sequence_length", "16"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .to_vec(),
    };
    fuzz(
        "toml_structured",
        file!(),
        LIMITS,
        (any::<bool>(), vec(table, 0..5)),
        move |(with_required, tables), _| {
            let mut all = Vec::new();
            if *with_required {
                all.push(required.clone());
            }
            all.extend(tables.iter().cloned());
            check_text(render(&all))
        },
    );
}

/// A valid config with plausible values swapped in: mostly still valid TOML, often a valid
/// config, so the round trip of accepted configs is exercised too.
#[test]
fn fuzz_toml_value_swaps() {
    let texts = valid_texts();
    let n = texts.len();
    fuzz(
        "toml_value_swaps",
        file!(),
        LIMITS,
        (0..n, vec((any::<usize>(), toml_value()), 1..4)),
        move |(base, swaps), _| {
            let mut lines: Vec<String> = texts[*base].lines().map(String::from).collect();
            let assignments: Vec<usize> = (0..lines.len())
                .filter(|&i| lines[i].contains(" = "))
                .collect();
            for (at, value) in swaps {
                let i = assignments[at % assignments.len()];
                let key = lines[i].split(" = ").next().unwrap_or("").to_owned();
                lines[i] = format!("{key} = {value}");
            }
            check_text(lines.join("\n"))
        },
    );
}

/// An edit of a config's text.
#[derive(Debug, Clone)]
enum Edit {
    /// Remove up to `len` characters from a character position.
    Delete {
        at: usize,
        len: usize,
    },
    /// Insert text at a character position.
    Insert {
        at: usize,
        text: String,
    },
    DropLine {
        line: usize,
    },
    DuplicateLine {
        line: usize,
    },
    SwapLines {
        a: usize,
        b: usize,
    },
    /// Append `key = value` (a duplicate when the key is already in that table).
    Append {
        key: String,
        value: String,
    },
}

fn edit() -> impl Strategy<Value = Edit> {
    let snippet = prop_oneof![
        prop::sample::select(vec![
            "\n",
            "=",
            "[",
            "]",
            "{",
            "}",
            "\"",
            "'",
            "#",
            ",",
            ".",
            " ",
            "\t",
            "\r",
            "\u{0}",
            "\u{feff}",
            "é",
            "[model]\n",
            "[layers]\n",
            "\n[[model]]\n",
            "\"\"\"",
            "\\",
            "hidden_dim = 8\n",
            "= =",
            "-",
            "nan",
            "1e999",
        ])
        .prop_map(String::from),
        any::<String>(),
    ];
    prop_oneof![
        (any::<usize>(), 1usize..8).prop_map(|(at, len)| Edit::Delete { at, len }),
        (any::<usize>(), snippet).prop_map(|(at, text)| Edit::Insert { at, text }),
        any::<usize>().prop_map(|line| Edit::DropLine { line }),
        any::<usize>().prop_map(|line| Edit::DuplicateLine { line }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines { a, b }),
        (toml_key(), toml_value()).prop_map(|(key, value)| Edit::Append { key, value }),
    ]
}

fn apply(text: &mut String, e: &Edit) {
    let chars = text.chars().count();
    let byte = |t: &str, at: usize| t.char_indices().nth(at).map_or(t.len(), |(i, _)| i);
    let mut lines: Vec<String> = text.split('\n').map(String::from).collect();
    match e {
        Edit::Delete { at, len } => {
            if chars > 0 {
                let at = at % chars;
                let (s, end) = (byte(text, at), byte(text, at + len));
                text.replace_range(s..end, "");
            }
            return;
        }
        Edit::Insert { at, text: more } => {
            let at = byte(text, at % (chars + 1));
            text.insert_str(at, more);
            return;
        }
        Edit::DropLine { line } => {
            lines.remove(line % lines.len());
        }
        Edit::DuplicateLine { line } => {
            let i = line % lines.len();
            lines.insert(i, lines[i].clone());
        }
        Edit::SwapLines { a, b } => {
            let n = lines.len();
            lines.swap(a % n, b % n);
        }
        Edit::Append { key, value } => lines.push(format!("{key} = {value}")),
    }
    *text = lines.join("\n");
}

#[test]
fn fuzz_toml_text_mutations() {
    let texts = valid_texts();
    let n = texts.len();
    fuzz(
        "toml_text_mutations",
        file!(),
        LIMITS,
        (0..n, vec(edit(), 0..6)),
        move |(base, edits), _| {
            let mut text = texts[*base].clone();
            for e in edits {
                apply(&mut text, e);
            }
            let outcome = check_text(text)?;
            if edits.is_empty() && outcome != "valid" {
                return Err(format!("an unedited valid config gave {outcome}"));
            }
            Ok(outcome)
        },
    );
}

#[test]
fn fuzz_toml_random_strings() {
    fuzz(
        "toml_random_strings",
        file!(),
        LIMITS,
        prop_oneof![any::<String>(), "[\\[\\]a-z_=\"'#.{},0-9\n \\-+]{0,200}",],
        |text, _| check_text(text.clone()),
    );
}

/// `Config::load` on bytes: valid configs with byte-level damage (non-UTF-8 included) and
/// random bytes, from a temp file owned by the property.
#[test]
fn fuzz_config_load_bytes() {
    let texts = valid_texts();
    let n = texts.len();
    let damaged = (
        0..n,
        vec(
            (
                any::<usize>(),
                prop_oneof![
                    6 => 0x20u8..0x7f,
                    1 => Just(0xffu8),
                    1 => Just(0xc3),
                    1 => Just(0x80),
                    1 => Just(0),
                    1 => any::<u8>()
                ],
            ),
            0..4,
        ),
    )
        .prop_map(move |(base, flips)| {
            let mut bytes = texts[base].clone().into_bytes();
            for (at, b) in flips {
                let at = at % bytes.len();
                bytes[at] = b;
            }
            bytes
        });
    let counter = Cell::new(0u64);
    fuzz(
        "config_load_bytes",
        file!(),
        LIMITS,
        prop_oneof![3 => damaged, 1 => vec(any::<u8>(), 0..512)],
        |bytes, dir| {
            counter.set(counter.get() + 1);
            let path = dir.join(format!("case-{}.toml", counter.get()));
            std::fs::write(&path, bytes).map_err(|e| e.to_string())?;
            let shown_path = path.to_string_lossy().into_owned();
            let result = guarded(LIMITS, {
                let path = path.clone();
                move || match Config::load(&path) {
                    Err(ConfigError::Io { path: p, source }) => {
                        assert_eq!(p, path, "the Io error names the file");
                        assert_eq!(source.kind(), std::io::ErrorKind::InvalidData);
                        "io error (not UTF-8)".to_string()
                    }
                    other => {
                        let text = std::fs::read_to_string(&path).expect("UTF-8 text");
                        judge(&text, other)
                    }
                }
            });
            let _ = std::fs::remove_file(&path);
            result.map_err(|e| format!("{shown_path}: {e}"))
        },
    );
}

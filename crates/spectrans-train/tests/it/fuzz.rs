//! Fuzz properties: the data set loaders ([`Dataset::load`], CSV and JSON lines, for every
//! task) end in `Ok` or a typed error that names the file and line on arbitrary and mutated
//! input, never in a panic, an abort, a hang or a huge allocation.
//!
//! Each case runs on its own thread under `catch_unwind`, with a time limit and a cap on the
//! largest single allocation (the harness is [`spectrans_testkit::fuzz`]). Cases per property:
//! `LIMITS.default_cases`, or `PROPTEST_CASES` from the environment.

use std::path::{Path, PathBuf};
use std::time::Duration;

use proptest::collection::vec;
use proptest::prelude::*;
use spectrans_testkit::{LargestRequest, Limits, fuzz};
use spectrans_train::Batch;
use spectrans_train::data::{DataError, Dataset, Target, Task};

// ---------------------------------------------------------------------------------------------
// Harness: case count, panic / time / allocation guard, outcome tally.
// ---------------------------------------------------------------------------------------------

/// Cases, time and allocation limits of every property here (the harness is
/// [`spectrans_testkit::fuzz`]).
const LIMITS: Limits = Limits {
    default_cases: 128,
    case_time: Duration::from_secs(20),
    allocation: 64 << 20,
};

#[global_allocator]
static ALLOCATOR: LargestRequest = LargestRequest;

// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// Data sets.
// ---------------------------------------------------------------------------------------------

/// Loads a data set file for every task; checks the contract of whatever comes back.
fn exercise_dataset(path: PathBuf) -> String {
    let tasks = [
        Task::Classification,
        Task::Regression,
        Task::TokenLabels,
        Task::Hidden,
    ];
    let outcomes: Vec<String> = tasks
        .iter()
        .map(|&task| exercise_dataset_for(&path, task))
        .collect();
    outcomes.join(" / ")
}

fn exercise_dataset_for(path: &Path, task: Task) -> String {
    match Dataset::load_for(path, task) {
        Ok(d) => {
            assert!(!d.is_empty(), "an Ok data set has examples");
            assert!(d.seq_len >= 1, "an Ok data set has tokens");
            assert_eq!(d.task, task);
            for e in &d.examples {
                let tokens = e.tokens().expect("text files hold tokens");
                assert_eq!(tokens.len(), d.seq_len, "every sequence has seq_len tokens");
                assert!(tokens.iter().all(|&t| t >= 0));
                match &e.target {
                    Target::Class(c) => assert!(*c >= 0),
                    Target::Labels(l) => {
                        assert_eq!(l.len(), d.seq_len);
                        assert!(l.iter().all(|&c| c >= 0 || c == -100));
                    }
                    Target::Values(v) => assert!(!v.is_empty() && v.iter().all(|x| x.is_finite())),
                    Target::Hidden(_) => panic!("text files hold no hidden states"),
                }
            }
            let _ = (d.vocab_size(), d.num_classes());
            let (train, test) = d.split(0.25, 7);
            assert_eq!(train.len() + test.len(), d.len());
            if let Ok(batch) = Batch::of(&d.examples.iter().collect::<Vec<_>>(), d.seq_len) {
                assert_eq!(batch.len(), d.len());
            }
            "loaded".into()
        }
        Err(e) => {
            let shown = e.to_string();
            assert!(
                shown.contains(&*path.to_string_lossy()),
                "data error does not name the file: {shown}"
            );
            match e {
                DataError::Parse { line, .. } => {
                    let lines = std::fs::read_to_string(path)
                        .map(|t| t.lines().count())
                        .unwrap_or(0);
                    assert!(
                        line >= 1 && line <= lines,
                        "line {line} of {lines}: {shown}"
                    );
                    "parse error".into()
                }
                DataError::Io { .. } => "io error (not UTF-8)".into(),
                DataError::Empty { .. } => "empty".into(),
                DataError::Format { .. } => "unknown format".into(),
                DataError::Tensors { .. } => "tensor error".into(),
            }
        }
    }
}

/// A text-level edit of a data file.
#[derive(Debug, Clone)]
enum TextEdit {
    Flip { at: usize, xor: u8 },
    Insert { at: usize, bytes: Vec<u8> },
    Truncate { keep: usize },
    DuplicateLine { line: usize },
    DropLine { line: usize },
    Crlf,
}

fn text_edit() -> impl Strategy<Value = TextEdit> {
    prop_oneof![
        (any::<usize>(), 1u8..).prop_map(|(at, xor)| TextEdit::Flip { at, xor }),
        (
            any::<usize>(),
            prop_oneof![
                vec(any::<u8>(), 1..8),
                prop::sample::select(vec![
                    "\n",
                    ",",
                    "-",
                    "9999999999999999999999",
                    "\u{0}",
                    "\u{feff}",
                    "\r",
                    "\"",
                    "[",
                    "{",
                    "}",
                    "]",
                    "1e5",
                    "٣",
                    " ",
                ])
                .prop_map(|s| s.as_bytes().to_vec()),
                Just(vec![0xff]),
                Just(vec![0xc3]),
            ]
        )
            .prop_map(|(at, bytes)| TextEdit::Insert { at, bytes }),
        any::<usize>().prop_map(|keep| TextEdit::Truncate { keep }),
        any::<usize>().prop_map(|line| TextEdit::DuplicateLine { line }),
        any::<usize>().prop_map(|line| TextEdit::DropLine { line }),
        Just(TextEdit::Crlf),
    ]
}

/// Half the files are left as generated, so that well-formed ones load now and then.
fn edit_count() -> impl Strategy<Value = usize> {
    prop_oneof![Just(0usize), 1usize..4]
}

fn apply_text(bytes: &mut Vec<u8>, edit: &TextEdit) {
    let len = bytes.len();
    let lines =
        |b: &[u8]| -> Vec<Vec<u8>> { b.split(|&c| c == b'\n').map(<[u8]>::to_vec).collect() };
    match edit {
        TextEdit::Flip { at, xor } => {
            if len > 0 {
                bytes[at % len] ^= xor;
            }
        }
        TextEdit::Insert { at, bytes: more } => {
            let at = at % (len + 1);
            bytes.splice(at..at, more.iter().copied());
        }
        TextEdit::Truncate { keep } => bytes.truncate(keep % (len + 1)),
        TextEdit::DuplicateLine { line } => {
            let mut ls = lines(bytes);
            let i = line % ls.len();
            ls.insert(i, ls[i].clone());
            *bytes = ls.join(&b'\n');
        }
        TextEdit::DropLine { line } => {
            let mut ls = lines(bytes);
            ls.remove(line % ls.len());
            *bytes = ls.join(&b'\n');
        }
        TextEdit::Crlf => {
            *bytes = lines(bytes).join(&b"\r\n"[..]);
        }
    }
}

/// CSV fields: ints, negatives, the edges of i64 and beyond, floats, blanks, junk.
fn csv_field() -> impl Strategy<Value = String> {
    prop_oneof![
        40 => (0i64..30).prop_map(|v| v.to_string()),
        1 => any::<i64>().prop_map(|v| v.to_string()),
        2 => prop::sample::select(vec![
            "-1", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
            "99999999999999999999999999", "1.5", "1e3", "NaN", "inf", "", " ", " 7 ", "+5",
            "0x10", "x", "٣", "\"3\"", "\t2",
        ])
        .prop_map(String::from),
        1 => "[ -~]{0,6}",
    ]
}

#[test]
fn fuzz_dataset_csv() {
    // Rows of one width usually (so some files load), ragged sometimes.
    let row = |width: usize| vec(csv_field(), 1..=width + 1);
    let text = (1usize..8).prop_flat_map(move |w| {
        vec(
            prop_oneof![
                8 => vec(csv_field(), w + 1).prop_map(|f| f.join(",")),
                1 => row(w + 2).prop_map(|f| f.join(",")),
                1 => Just(String::new()),
                1 => Just("   ".to_string()),
            ],
            0..12,
        )
        .prop_map(|lines| lines.join("\n"))
    });
    fuzz(
        "dataset_csv",
        file!(),
        LIMITS,
        (text, edit_count().prop_flat_map(|n| vec(text_edit(), n))),
        |(text, edits), dir| {
            let mut bytes = text.clone().into_bytes();
            for e in edits {
                apply_text(&mut bytes, e);
            }
            spectrans_testkit::on_file(LIMITS, dir, ".csv", &bytes, exercise_dataset)
        },
    );
}

/// JSON values where a token list or a label is expected.
fn json_number_like() -> impl Strategy<Value = String> {
    prop_oneof![
        40 => (0i64..30).prop_map(|v| v.to_string()),
        1 => any::<i64>().prop_map(|v| v.to_string()),
        2 => prop::sample::select(vec![
            "-1", "9223372036854775808", "-9223372036854775809", "1e400", "1.5", "1e3", "-0",
            "null", "true", "\"3\"", "[]", "{}", "[1]", "18446744073709551616",
        ])
        .prop_map(String::from),
    ]
}

fn jsonl_line(width: usize) -> impl Strategy<Value = String> {
    let tokens = move || {
        prop_oneof![
            40 => vec(json_number_like(), width).prop_map(|t| format!("[{}]", t.join(","))),
            1 => vec(json_number_like(), 0..width + 3).prop_map(|t| format!("[{}]", t.join(","))),
            1 => prop::sample::select(vec!["null", "7", "\"1,2\"", "{}", "[[1,2]]"])
                .prop_map(String::from),
            1 => prop_oneof![Just(200usize), Just(5_000), Just(100_000)]
                .prop_map(|d| format!("{}{}", "[".repeat(d), "]".repeat(d))),
        ]
    };
    prop_oneof![
        40 => (tokens(), json_number_like()).prop_map(|(t, l)| format!("{{\"tokens\": {t}, \"label\": {l}}}")),
        20 => (tokens(), json_number_like()).prop_map(|(t, v)| format!("{{\"tokens\": {t}, \"target\": {v}}}")),
        20 => (tokens(), tokens()).prop_map(|(t, l)| format!("{{\"tokens\": {t}, \"labels\": {l}}}")),
        1 => (tokens(), json_number_like())
            .prop_map(|(t, l)| format!("{{\"label\": {l}, \"tokens\": {t}, \"extra\": 1}}")),
        1 => tokens().prop_map(|t| format!("{{\"tokens\": {t}}}")),
        1 => json_number_like().prop_map(|l| format!("{{\"label\": {l}}}")),
        1 => (tokens(), json_number_like())
            .prop_map(|(t, l)| format!("{{\"tokens\": {t}, \"tokens\": {t}, \"label\": {l}}}")),
        1 => prop::sample::select(vec!["", "  ", "[]", "null", "{", "}", "{\"tokens\": [1,2], \"label\": 0}  trailing"])
            .prop_map(String::from),
        1 => "[ -~]{0,30}",
    ]
}

#[test]
fn fuzz_dataset_jsonl() {
    let text =
        (1usize..8).prop_flat_map(|w| vec(jsonl_line(w), 0..10).prop_map(|lines| lines.join("\n")));
    fuzz(
        "dataset_jsonl",
        file!(),
        LIMITS,
        (
            text,
            edit_count().prop_flat_map(|n| vec(text_edit(), n)),
            prop::sample::select(vec![".jsonl", ".json"]),
        ),
        |(text, edits, ext), dir| {
            let mut bytes = text.clone().into_bytes();
            for e in edits {
                apply_text(&mut bytes, e);
            }
            spectrans_testkit::on_file(LIMITS, dir, ext, &bytes, exercise_dataset)
        },
    );
}

#[test]
fn fuzz_dataset_random_bytes() {
    let bytes = prop_oneof![
        vec(any::<u8>(), 0..1024),
        "[0-9,\\-\n ]{0,200}".prop_map(String::into_bytes),
        "[0-9,:\\[\\]{}\"a-z\n .\\-]{0,200}".prop_map(String::into_bytes),
    ];
    fuzz(
        "dataset_random_bytes",
        file!(),
        LIMITS,
        (
            bytes,
            prop::sample::select(vec![".csv", ".jsonl", ".json", ".txt", ""]),
        ),
        |(bytes, ext), dir| spectrans_testkit::on_file(LIMITS, dir, ext, bytes, exercise_dataset),
    );
}

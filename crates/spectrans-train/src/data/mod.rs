//! Training data for every head: the embedded 8x8 digits, and the user's own files.
//!
//! What a file holds depends on the [`Task`] (from the model's head, [`Task::of`]):
//!
//! | task | JSON lines | CSV |
//! | --- | --- | --- |
//! | classification | `{"tokens": [..], "label": n}` | `label,token,token,...` |
//! | regression | `{"tokens": [..], "target": x}` or `"target": [x, ...]` | `target,token,...` |
//! | sequence, lm | `{"tokens": [..], "labels": [..]}`, one label per token, -100 ignored | (none) |
//! | hidden states (no head) | (none) | (none) |
//!
//! Every task also reads a `.safetensors` file: `input_ids` (I64/I32, (B, N)) or
//! `inputs_embeds` (F32, (B, N, D)), and `targets`: class ids (B,) for classification, values
//! (B,) or (B, 1) for regression, labels (B, N) for sequence and lm, hidden states (B, N, D)
//! for a model without a head (the only format for a `gfnet_encoder`).
//!
//! Every sequence of a file has one length. Errors name the file, the line (or the example of
//! a safetensors file) and the field. [`Dataset::check_fits`] checks the data against a model
//! (token ids in the vocabulary, labels in range, widths), again naming the line.

use std::path::{Path, PathBuf};

use ndarray::Array2;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use spectrans_config::{Config, OutputType, PositionalEncodingType};

mod csv;
mod digits;
mod jsonl;
mod safetensors;

pub use digits::{DIGITS_CLS_TOKEN, digits};

/// The label that cross-entropy skips, as PyTorch's `ignore_index` default.
pub const IGNORE_INDEX: i64 = -100;

/// What a model learns, by its head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// One class per sequence (cross-entropy).
    Classification,
    /// Values per sequence (mean squared error).
    Regression,
    /// One class per token, [`IGNORE_INDEX`] skipped (cross-entropy; sequence and lm heads).
    TokenLabels,
    /// The hidden states of a model without a head (mean squared error).
    Hidden,
}

impl Task {
    /// The task of `config`'s head.
    pub fn of(config: &Config) -> Task {
        match (config.output_type(), config.head_output_dim()) {
            (_, None) => Task::Hidden,
            (OutputType::Classification, Some(_)) => Task::Classification,
            (OutputType::Regression, Some(_)) => Task::Regression,
            (OutputType::Sequence | OutputType::Lm, Some(_)) => Task::TokenLabels,
            (OutputType::None, Some(_)) => Task::Hidden,
        }
    }

    /// Its name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Task::Classification => "classification",
            Task::Regression => "regression",
            Task::TokenLabels => "token labelling (sequence, lm)",
            Task::Hidden => "hidden states (no head)",
        }
    }

    /// The JSON-lines layout of one example.
    fn jsonl_layout(self) -> &'static str {
        match self {
            Task::Classification => "{\"tokens\": [ints], \"label\": int}",
            Task::Regression => "{\"tokens\": [ints], \"target\": number or [numbers]}",
            Task::TokenLabels => "{\"tokens\": [ints], \"labels\": [one int per token]}",
            Task::Hidden => "(none: hidden-state targets come in a .safetensors file)",
        }
    }
}

/// What a model reads for one example.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Token ids (N).
    Tokens(Vec<i64>),
    /// Embeddings (N, D).
    Embeddings(Array2<f32>),
}

/// What a model should output for one example.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A class id.
    Class(i64),
    /// Regression values (the head's width).
    Values(Vec<f32>),
    /// One class id per token ([`IGNORE_INDEX`] skipped).
    Labels(Vec<i64>),
    /// Hidden states (N, D).
    Hidden(Array2<f32>),
}

/// One example.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// The input.
    pub input: Input,
    /// The target.
    pub target: Target,
    /// 1-based line of the file (the example's index + 1 for safetensors; 0 when embedded).
    pub line: usize,
}

impl Example {
    /// A token sequence with a class label (the classification layout).
    pub fn classified(tokens: Vec<i64>, label: i64) -> Self {
        Self {
            input: Input::Tokens(tokens),
            target: Target::Class(label),
            line: 0,
        }
    }

    /// The token ids, when the input is tokens.
    pub fn tokens(&self) -> Option<&[i64]> {
        match &self.input {
            Input::Tokens(t) => Some(t),
            Input::Embeddings(_) => None,
        }
    }

    /// The class label, when the target is one.
    pub fn label(&self) -> Option<i64> {
        match self.target {
            Target::Class(c) => Some(c),
            _ => None,
        }
    }

    fn len(&self) -> usize {
        match &self.input {
            Input::Tokens(t) => t.len(),
            Input::Embeddings(e) => e.nrows(),
        }
    }
}

/// A data set whose sequences all have one length.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// The examples.
    pub examples: Vec<Example>,
    /// The length of every sequence.
    pub seq_len: usize,
    /// What the targets are.
    pub task: Task,
    /// Where the examples came from (for messages).
    pub source: PathBuf,
}

/// Errors reading a data set, or data that do not fit the model.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be read. Displays the path; the OS error is the
    /// [`source`](std::error::Error::source), so a `{:#}` chain prints it once.
    #[error("{}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// An example is malformed or does not fit the model.
    #[error("{path}, line {line}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number (the example's index + 1 in a safetensors file).
        line: usize,
        /// What is wrong, naming the field, and what was expected.
        message: String,
    },
    /// The file has no examples.
    #[error("{path}: no examples found")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The extension says no format this task reads.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// The formats this task reads.
        message: String,
    },
    /// A safetensors data file lacks a tensor or holds one of the wrong type or shape.
    #[error("{path}: {message}")]
    Tensors {
        /// The file.
        path: PathBuf,
        /// What is wrong and what was expected.
        message: String,
    },
}

impl Dataset {
    /// The number of examples.
    pub fn len(&self) -> usize {
        self.examples.len()
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.examples.is_empty()
    }

    /// The largest token id plus one (0 for embeddings).
    pub fn vocab_size(&self) -> usize {
        self.examples
            .iter()
            .filter_map(Example::tokens)
            .flatten()
            .map(|&t| t.max(0) as usize + 1)
            .max()
            .unwrap_or(0)
    }

    /// The largest class label plus one ([`IGNORE_INDEX`] aside; 0 for value targets).
    pub fn num_classes(&self) -> usize {
        let labels = |e: &Example| -> Vec<i64> {
            match &e.target {
                Target::Class(c) => vec![*c],
                Target::Labels(l) => l.clone(),
                _ => vec![],
            }
        };
        self.examples
            .iter()
            .flat_map(labels)
            .map(|c| c.max(-1) + 1)
            .max()
            .unwrap_or(0) as usize
    }

    /// Shuffles with `seed` and splits off the last `test_fraction` as a held-out set.
    pub fn split(&self, test_fraction: f64, seed: u64) -> (Dataset, Dataset) {
        let mut examples = self.examples.clone();
        examples.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        let test_len = ((examples.len() as f64) * test_fraction.clamp(0.0, 1.0)).round() as usize;
        let test = examples.split_off(examples.len() - test_len);
        let part = |examples| Dataset {
            examples,
            seq_len: self.seq_len,
            task: self.task,
            source: self.source.clone(),
        };
        (part(examples), part(test))
    }

    /// Reads a classification file (CSV or JSON lines, by extension).
    pub fn load(path: impl AsRef<Path>) -> Result<Dataset, DataError> {
        Self::load_for(path, Task::Classification)
    }

    /// Reads a data file for `task`: `.csv`, `.jsonl`/`.json` or `.safetensors`.
    pub fn load_for(path: impl AsRef<Path>, task: Task) -> Result<Dataset, DataError> {
        let path = path.as_ref();
        let extension = path.extension().and_then(|e| e.to_str());
        if extension == Some("safetensors") {
            return safetensors::load_safetensors(path, task);
        }
        let formats = match task {
            Task::Classification | Task::Regression => Some("a .csv, .jsonl or .safetensors file"),
            Task::TokenLabels => Some("a .jsonl or .safetensors file"),
            Task::Hidden => None,
        };
        let format_error = || DataError::Format {
            path: path.to_path_buf(),
            message: match formats {
                Some(f) => format!("unknown data format for {}; expected {f}", task.name()),
                None => format!(
                    "{} data come in a .safetensors file (`inputs_embeds` or `input_ids`, and `targets`)",
                    task.name()
                ),
            },
        };
        let csv = matches!(task, Task::Classification | Task::Regression);
        let parse: fn(&Path, &str, Task) -> Result<Dataset, DataError> = match extension {
            Some("csv") if csv => csv::parse_csv,
            Some("jsonl" | "json") if formats.is_some() => jsonl::parse_jsonl,
            _ => return Err(format_error()),
        };
        let text = std::fs::read_to_string(path).map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        parse(path, &text, task)
    }

    /// Checks the data against `config`: the task is the head's, token ids are below
    /// `vocab_size`, labels below the head's width, regression targets as wide as the head,
    /// embeddings and hidden targets `hidden_dim` wide, and sequences no longer than a
    /// positional table. The first problem is reported with its line and field.
    pub fn check_fits(&self, config: &Config) -> Result<(), DataError> {
        let task = Task::of(config);
        let whole = |message: String| DataError::Format {
            path: self.source.clone(),
            message,
        };
        if task != self.task {
            return Err(whole(format!(
                "the data are for {}, but the model's head does {}",
                self.task.name(),
                task.name()
            )));
        }
        let table = matches!(
            config.positional_encoding(),
            PositionalEncodingType::Sinusoidal | PositionalEncodingType::Learned
        );
        if table && self.seq_len > config.sequence_length() {
            return Err(whole(format!(
                "the sequences have {} tokens, longer than model.sequence_length = {}",
                self.seq_len,
                config.sequence_length()
            )));
        }
        let width = config.head_output_dim();
        let d = config.hidden_dim();
        for e in &self.examples {
            let bad = |message: String| DataError::Parse {
                path: self.source.clone(),
                line: e.line,
                message,
            };
            match (&e.input, config.vocab_size()) {
                (Input::Tokens(_), None) => {
                    return Err(bad(
                        "field `tokens`: this model has no vocab_size; give inputs_embeds".into(),
                    ));
                }
                (Input::Tokens(t), Some(v)) => {
                    if let Some((i, tok)) = t.iter().enumerate().find(|(_, t)| **t as usize >= v) {
                        return Err(bad(format!(
                            "field `tokens`: token {tok} at position {i} is out of the vocabulary (model.vocab_size = {v})"
                        )));
                    }
                }
                (Input::Embeddings(x), _) if x.ncols() != d => {
                    return Err(bad(format!(
                        "field `inputs_embeds`: {} wide, expected hidden_dim = {d}",
                        x.ncols()
                    )));
                }
                (Input::Embeddings(_), _) => {}
            }
            let classes = width.unwrap_or(0);
            match &e.target {
                Target::Class(c) if *c as usize >= classes => {
                    return Err(bad(format!(
                        "field `label`: {c} is out of range; the head has {classes} classes (0..{classes})"
                    )));
                }
                Target::Labels(l) => {
                    if let Some((i, c)) = l
                        .iter()
                        .enumerate()
                        .find(|(_, c)| **c != IGNORE_INDEX && **c as usize >= classes)
                    {
                        return Err(bad(format!(
                            "field `labels`: label {c} at position {i} is out of range; the head has {classes} classes (or -100 to ignore)"
                        )));
                    }
                }
                Target::Values(v) if Some(v.len()) != width => {
                    return Err(bad(format!(
                        "field `target`: {} values, but the regression head outputs {}",
                        v.len(),
                        width.unwrap_or(0)
                    )));
                }
                Target::Hidden(h) if h.ncols() != d => {
                    return Err(bad(format!(
                        "field `targets`: {} wide, expected hidden_dim = {d}",
                        h.ncols()
                    )));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Checks what holds for every file: one sequence length, at least one token, no negative
/// token, labels >= 0 (or [`IGNORE_INDEX`] for token labels), one label per token, hidden
/// targets shaped like the input.
pub(super) fn collect(
    path: &Path,
    examples: Vec<Example>,
    task: Task,
) -> Result<Dataset, DataError> {
    let Some(first) = examples.first() else {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
        });
    };
    let seq_len = first.len();
    for e in &examples {
        let bad = |message: String| DataError::Parse {
            path: path.to_path_buf(),
            line: e.line,
            message,
        };
        let n = e.len();
        if n != seq_len {
            return Err(bad(format!(
                "field `tokens`: {n} tokens, expected {seq_len} like the first example"
            )));
        }
        if n == 0 {
            return Err(bad(
                "field `tokens`: an example needs at least one token".into()
            ));
        }
        if let Some(t) = e.tokens().and_then(|t| t.iter().find(|&&t| t < 0)) {
            return Err(bad(format!("field `tokens`: token {t} is negative")));
        }
        match &e.target {
            Target::Class(c) if *c < 0 => {
                return Err(bad(format!("field `label`: {c} is negative")));
            }
            Target::Labels(l) if l.len() != n => {
                return Err(bad(format!(
                    "field `labels`: {} labels for {n} tokens; expected one per token",
                    l.len()
                )));
            }
            Target::Labels(l) => {
                if let Some(c) = l.iter().find(|&&c| c < 0 && c != IGNORE_INDEX) {
                    return Err(bad(format!(
                        "field `labels`: label {c} is negative (only -100, ignored, may be)"
                    )));
                }
            }
            Target::Values(v) if v.is_empty() => {
                return Err(bad("field `target`: no values".into()));
            }
            Target::Hidden(h) if h.nrows() != n => {
                return Err(bad(format!(
                    "field `targets`: {} rows for {n} tokens",
                    h.nrows()
                )));
            }
            _ => {}
        }
    }
    Ok(Dataset {
        examples,
        seq_len,
        task,
        source: path.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_has_the_known_shape() {
        let d = digits();
        assert_eq!(d.len(), 1797);
        assert_eq!(d.seq_len, 65);
        assert_eq!(d.vocab_size(), 18);
        assert_eq!(d.num_classes(), 10);
        // scikit-learn: digits.target[:3] == [0, 1, 2], digits.data[0][:8] == [0,0,5,13,9,1,0,0]
        assert_eq!(
            d.examples
                .iter()
                .take(3)
                .map(|e| e.label().unwrap())
                .collect::<Vec<_>>(),
            [0, 1, 2]
        );
        assert_eq!(
            &d.examples[0].tokens().unwrap()[..9],
            &[17, 0, 0, 5, 13, 9, 1, 0, 0]
        );
        assert!(d.examples.iter().all(|e| e.tokens().unwrap().len() == 65));
    }

    #[test]
    fn split_is_deterministic_and_disjoint() {
        let d = digits();
        let (a, b) = d.split(0.2, 7);
        let (a2, b2) = d.split(0.2, 7);
        assert_eq!(a, a2);
        assert_eq!(b, b2);
        assert_eq!(a.len() + b.len(), d.len());
        assert_eq!(b.len(), 359);
    }

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn user_files_parse_and_errors_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let ok = Dataset::load(write(&dir, "ok.csv", "1,3,4,5\n0,1,1,2\n")).unwrap();
        assert_eq!(ok.seq_len, 3);
        assert_eq!(ok.examples[0].label(), Some(1));
        let ok = Dataset::load(write(
            &dir,
            "ok.jsonl",
            "{\"tokens\": [1, 2], \"label\": 0}\n{\"tokens\": [3, 4], \"label\": 1}\n",
        ))
        .unwrap();
        assert_eq!(ok.len(), 2);
        let err = Dataset::load(write(&dir, "ragged.csv", "1,3,4,5\n0,1,1\n")).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        let err = Dataset::load(write(&dir, "bad.csv", "1,3,x\n")).unwrap_err();
        assert!(err.to_string().contains("`x`"), "{err}");
        let err = Dataset::load(write(&dir, "neg.csv", "1,-3,4\n")).unwrap_err();
        assert!(err.to_string().contains("negative"), "{err}");
        assert!(matches!(
            Dataset::load(write(&dir, "x.txt", "1,2\n")),
            Err(DataError::Format { .. })
        ));
        assert!(matches!(
            Dataset::load(write(&dir, "empty.csv", "\n")),
            Err(DataError::Empty { .. })
        ));
    }

    #[test]
    fn every_task_reads_its_layout_and_names_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let r = Dataset::load_for(
            write(
                &dir,
                "r.jsonl",
                "{\"tokens\": [1, 2], \"target\": 0.5}\n{\"tokens\": [3, 4], \"target\": [1.5]}\n",
            ),
            Task::Regression,
        )
        .unwrap();
        assert_eq!(r.examples[1].target, Target::Values(vec![1.5]));
        let r = Dataset::load_for(write(&dir, "r.csv", "0.25,1,2\n-3,4,5\n"), Task::Regression)
            .unwrap();
        assert_eq!(r.examples[1].target, Target::Values(vec![-3.0]));
        let err =
            Dataset::load_for(write(&dir, "inf.csv", "inf,1,2\n"), Task::Regression).unwrap_err();
        assert!(err.to_string().contains("finite"), "{err}");
        let err = Dataset::load_for(
            write(&dir, "r2.csv", "0.25,1,2\nabc,4,5\n"),
            Task::Regression,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("line 2") && err.to_string().contains("`target`"),
            "{err}"
        );
        let err = Dataset::load_for(
            write(
                &dir,
                "r3.jsonl",
                "{\"tokens\": [1, 2], \"target\": \"high\"}\n",
            ),
            Task::Regression,
        )
        .unwrap_err();
        assert!(err.to_string().contains("field `target`"), "{err}");
        let s = Dataset::load_for(
            write(
                &dir,
                "s.jsonl",
                "{\"tokens\": [1, 2, 3], \"labels\": [0, -100, 2]}\n",
            ),
            Task::TokenLabels,
        )
        .unwrap();
        assert_eq!(s.examples[0].target, Target::Labels(vec![0, -100, 2]));
        let err = Dataset::load_for(
            write(
                &dir,
                "s2.jsonl",
                "{\"tokens\": [1, 2, 3], \"labels\": [0, 1, 2]}\n{\"tokens\": [1, 2, 3], \"labels\": [0, 1]}\n",
            ),
            Task::TokenLabels,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("line 2") && err.to_string().contains("2 labels for 3"),
            "{err}"
        );
        assert!(matches!(
            Dataset::load_for(write(&dir, "s.csv", "1,2\n"), Task::TokenLabels),
            Err(DataError::Format { .. })
        ));
        assert!(matches!(
            Dataset::load_for(write(&dir, "h.jsonl", "{}\n"), Task::Hidden),
            Err(DataError::Format { .. })
        ));
    }
}

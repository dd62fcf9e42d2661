//! Labelled token-sequence data sets: the embedded 8x8 digits, and the user's own files.
//!
//! A user file is either CSV (one example a line: `label,token,token,...`) or JSON lines
//! (`{"tokens": [..], "label": n}`), chosen by its extension (`.csv`, `.jsonl`/`.json`).
//! Every sequence in a file must have the same length.

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// The digits as shipped in scikit-learn (UCI optdigits test set, CC BY 4.0): 64 pixel counts
/// (0..=16) then the label, per line. Attribution in `data/README.md`.
const DIGITS_CSV: &str = include_str!("../data/optdigits.csv");

/// The token that [`digits`] puts in front of every image, for the classification head's
/// first-token (cls) pooling to read.
pub const DIGITS_CLS_TOKEN: i64 = 17;

/// One labelled sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// Token ids.
    pub tokens: Vec<i64>,
    /// Class id.
    pub label: i64,
}

/// A labelled data set whose sequences all have one length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    /// The examples.
    pub examples: Vec<Example>,
    /// The length of every sequence.
    pub seq_len: usize,
}

/// Errors reading a data set.
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
    /// A line could not be parsed.
    #[error("{path}, line {line}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong and what was expected.
        message: String,
    },
    /// The file has no examples.
    #[error("{path}: no examples found")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The extension says neither CSV nor JSON lines.
    #[error("{path}: unknown data format; expected a .csv or .jsonl file")]
    Format {
        /// The file.
        path: PathBuf,
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

    /// The largest token id plus one.
    pub fn vocab_size(&self) -> usize {
        self.examples
            .iter()
            .flat_map(|e| e.tokens.iter())
            .map(|&t| t.max(0) as usize + 1)
            .max()
            .unwrap_or(0)
    }

    /// The largest label plus one.
    pub fn num_classes(&self) -> usize {
        self.examples
            .iter()
            .map(|e| e.label.max(0) as usize + 1)
            .max()
            .unwrap_or(0)
    }

    /// Shuffles with `seed` and splits off the last `test_fraction` as a held-out set.
    pub fn split(&self, test_fraction: f64, seed: u64) -> (Dataset, Dataset) {
        let mut examples = self.examples.clone();
        examples.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        let test_len = ((examples.len() as f64) * test_fraction.clamp(0.0, 1.0)).round() as usize;
        let test = examples.split_off(examples.len() - test_len);
        (
            Dataset {
                examples,
                seq_len: self.seq_len,
            },
            Dataset {
                examples: test,
                seq_len: self.seq_len,
            },
        )
    }

    /// Reads a CSV or JSON-lines file (by extension).
    pub fn load(path: impl AsRef<Path>) -> Result<Dataset, DataError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        match path.extension().and_then(|e| e.to_str()) {
            Some("csv") => parse_csv(path, &text, false),
            Some("jsonl") | Some("json") => parse_jsonl(path, &text),
            _ => Err(DataError::Format {
                path: path.to_path_buf(),
            }),
        }
    }
}

/// The 1,797 8x8 digits as 65-token sequences: the cls token ([`DIGITS_CLS_TOKEN`]) then the
/// 64 pixel counts (0..=16) row by row; labels 0..=9. Vocabulary 18, 10 classes.
pub fn digits() -> Dataset {
    let path = Path::new("<embedded optdigits.csv>");
    // The embedded file is part of the crate and covered by a test; a failure here is a bug.
    let raw = parse_csv(path, DIGITS_CSV, true).expect("embedded digits data parses");
    Dataset {
        examples: raw
            .examples
            .into_iter()
            .map(|e| {
                let mut tokens = Vec::with_capacity(65);
                tokens.push(DIGITS_CLS_TOKEN);
                tokens.extend(e.tokens);
                Example {
                    tokens,
                    label: e.label,
                }
            })
            .collect(),
        seq_len: 65,
    }
}

fn parse_int(path: &Path, line: usize, field: &str, what: &str) -> Result<i64, DataError> {
    field.trim().parse::<i64>().map_err(|_| DataError::Parse {
        path: path.to_path_buf(),
        line,
        message: format!("{what} `{}` is not an integer", field.trim()),
    })
}

/// CSV lines; `label_last` reads scikit-learn's layout (label at the end) instead of ours.
fn parse_csv(path: &Path, text: &str, label_last: bool) -> Result<Dataset, DataError> {
    let mut examples = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() < 2 {
            return Err(DataError::Parse {
                path: path.to_path_buf(),
                line: i + 1,
                message: "expected `label,token,token,...`".into(),
            });
        }
        let (label_field, token_fields) = if label_last {
            let (t, l) = fields.split_at(fields.len() - 1);
            (l[0], t)
        } else {
            let (l, t) = fields.split_at(1);
            (l[0], t)
        };
        let label = parse_int(path, i + 1, label_field, "label")?;
        let tokens = token_fields
            .iter()
            .map(|f| parse_int(path, i + 1, f, "token"))
            .collect::<Result<Vec<_>, _>>()?;
        examples.push((i + 1, Example { tokens, label }));
    }
    collect(path, examples)
}

fn parse_jsonl(path: &Path, text: &str) -> Result<Dataset, DataError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Line {
        tokens: Vec<i64>,
        label: i64,
    }
    let mut examples = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Line = serde_json::from_str(line).map_err(|e| DataError::Parse {
            path: path.to_path_buf(),
            line: i + 1,
            message: format!("expected {{\"tokens\": [ints], \"label\": int}}: {e}"),
        })?;
        examples.push((
            i + 1,
            Example {
                tokens: parsed.tokens,
                label: parsed.label,
            },
        ));
    }
    collect(path, examples)
}

fn collect(path: &Path, examples: Vec<(usize, Example)>) -> Result<Dataset, DataError> {
    let Some((_, first)) = examples.first() else {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
        });
    };
    let seq_len = first.tokens.len();
    for (line, e) in &examples {
        let bad = |message: String| DataError::Parse {
            path: path.to_path_buf(),
            line: *line,
            message,
        };
        if e.tokens.len() != seq_len {
            return Err(bad(format!(
                "{} tokens, expected {seq_len} like the first example",
                e.tokens.len()
            )));
        }
        if seq_len == 0 {
            return Err(bad("an example needs at least one token".into()));
        }
        if let Some(t) = e.tokens.iter().find(|&&t| t < 0) {
            return Err(bad(format!("token {t} is negative")));
        }
        if e.label < 0 {
            return Err(bad(format!("label {} is negative", e.label)));
        }
    }
    Ok(Dataset {
        examples: examples.into_iter().map(|(_, e)| e).collect(),
        seq_len,
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
                .map(|e| e.label)
                .collect::<Vec<_>>(),
            [0, 1, 2]
        );
        assert_eq!(&d.examples[0].tokens[..9], &[17, 0, 0, 5, 13, 9, 1, 0, 0]);
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
        assert_eq!(ok.examples[0].label, 1);
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
}

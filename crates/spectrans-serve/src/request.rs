//! From a request body (or a `predict` line) to validated sequences: JSON shapes and types,
//! the tokenizer step, token-id ranges, masks, lengths and padding.

use std::path::Path;

use serde_json::{Map, Value};
use tokenizers::{PaddingDirection, PaddingStrategy, Tokenizer, TruncationParams};

use crate::engine::Sequence;

/// A request that cannot be run, with the HTTP status it answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RequestError {
    /// 400 (malformed JSON or types) or 422 (well-formed but not valid for this model).
    pub status: u16,
    /// What was wrong and what was expected.
    pub message: String,
}

impl RequestError {
    /// A 400: malformed JSON or a value of the wrong type.
    pub fn bad_request(message: impl Into<String>) -> Self {
        RequestError {
            status: 400,
            message: message.into(),
        }
    }

    /// A 422: well-formed input this model cannot take.
    pub fn unprocessable(message: impl Into<String>) -> Self {
        RequestError {
            status: 422,
            message: message.into(),
        }
    }
}

/// Why a tokenizer file could not be used.
#[derive(Debug, thiserror::Error)]
#[error("tokenizer {path}: {message}")]
pub struct TokenizerError {
    /// The file.
    pub path: String,
    /// What went wrong.
    pub message: String,
}

/// Which side pads go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PadSide {
    /// After the tokens (the usual).
    Right,
    /// Before the tokens.
    Left,
}

/// Padding every sequence (and its mask) to one length, as a model trained with
/// `padding="max_length"` expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Padding {
    /// The length every sequence is padded to.
    pub length: usize,
    /// The token id of a pad.
    pub pad_id: i64,
    /// Where the pads go.
    pub side: PadSide,
}

/// What `--pad-to` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PadTo {
    /// The model's `sequence_length`.
    Max,
    /// A fixed length.
    Length(usize),
}

impl std::str::FromStr for PadTo {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "max" {
            return Ok(PadTo::Max);
        }
        match s.parse::<usize>() {
            Ok(n) if n > 0 => Ok(PadTo::Length(n)),
            _ => Err(format!("`{s}`: expected `max` or a length of at least 1")),
        }
    }
}

/// Sequences ready for the engine, with the tokenized ids when the input was text.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// One per sequence, in request order.
    pub sequences: Vec<Sequence>,
    /// The token ids the tokenizer produced (before padding), when the input was text.
    pub tokenized: Option<Vec<Vec<i64>>>,
}

/// Turns request bodies into validated sequences for one model.
#[derive(Debug)]
pub struct Preprocessor {
    vocab_size: Option<usize>,
    max_len: usize,
    padding: Option<Padding>,
    tokenizer: Option<Tokenizer>,
}

impl Preprocessor {
    /// A preprocessor for a model of `vocab_size` tokens accepting sequences of at most
    /// `max_len` tokens (its `sequence_length`).
    pub fn new(vocab_size: Option<usize>, max_len: usize) -> Self {
        Preprocessor {
            vocab_size,
            max_len,
            padding: None,
            tokenizer: None,
        }
    }

    /// Loads a `tokenizer.json`. Its truncation is kept, with the maximum length capped at
    /// the model's; without one, sequences are truncated to the model's length. Its own
    /// padding settings become this preprocessor's padding (unless [`Preprocessor::pad`]
    /// sets one), applied to token-id input as well.
    pub fn with_tokenizer_file(mut self, path: &Path) -> Result<Self, TokenizerError> {
        let err = |message: String| TokenizerError {
            path: path.display().to_string(),
            message,
        };
        let mut tok = Tokenizer::from_file(path).map_err(|e| err(e.to_string()))?;
        let trunc = match tok.get_truncation() {
            Some(t) => TruncationParams {
                max_length: t.max_length.min(self.max_len),
                ..t.clone()
            },
            None => TruncationParams {
                max_length: self.max_len,
                ..TruncationParams::default()
            },
        };
        tok.with_truncation(Some(trunc))
            .map_err(|e| err(format!("cannot set truncation: {e}")))?;
        if let Some(p) = tok.get_padding().cloned()
            && let PaddingStrategy::Fixed(n) = p.strategy
            && self.padding.is_none()
        {
            self.padding = Some(Padding {
                length: n.min(self.max_len),
                pad_id: i64::from(p.pad_id),
                side: match p.direction {
                    PaddingDirection::Left => PadSide::Left,
                    PaddingDirection::Right => PadSide::Right,
                },
            });
        }
        // Padding is applied here, the same way for text and token ids.
        tok.with_padding(None);
        self.tokenizer = Some(tok);
        Ok(self)
    }

    /// The pad id a tokenizer file names, if it pads.
    pub fn tokenizer_pad_id(&self) -> Option<i64> {
        self.padding.map(|p| p.pad_id)
    }

    /// Pads every sequence to `pad_to` with `pad_id` (default: the tokenizer's pad id,
    /// else 0). Errors when the length exceeds the model's or the id is out of range.
    pub fn pad(mut self, pad_to: PadTo, pad_id: Option<i64>) -> Result<Self, String> {
        let length = match pad_to {
            PadTo::Max => self.max_len,
            PadTo::Length(n) if n <= self.max_len => n,
            PadTo::Length(n) => {
                return Err(format!(
                    "--pad-to {n}: longer than the model's sequence_length {}",
                    self.max_len
                ));
            }
        };
        let pad_id = pad_id.or(self.padding.map(|p| p.pad_id)).unwrap_or(0);
        if let Some(v) = self.vocab_size
            && (pad_id < 0 || pad_id as u64 >= v as u64)
        {
            return Err(format!(
                "--pad-id {pad_id}: expected a token id in [0, {v})"
            ));
        }
        let side = self.padding.map_or(PadSide::Right, |p| p.side);
        self.padding = Some(Padding {
            length,
            pad_id,
            side,
        });
        Ok(self)
    }

    /// The padding in force.
    pub fn padding(&self) -> Option<Padding> {
        self.padding
    }

    /// Whether a tokenizer is loaded.
    pub fn has_tokenizer(&self) -> bool {
        self.tokenizer.is_some()
    }

    /// The longest sequence accepted.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Parses and validates a `POST /predict` body.
    pub fn prepare_body(&self, body: &[u8]) -> Result<Prepared, RequestError> {
        let value: Value = serde_json::from_slice(body).map_err(|e| {
            RequestError::bad_request(format!(
                "malformed JSON body: {e}; expected an object like {{\"input_ids\": [1, 2, 3]}}"
            ))
        })?;
        let Value::Object(obj) = value else {
            return Err(RequestError::bad_request(format!(
                "the body is a JSON {}; expected an object with `input_ids` or `inputs`",
                kind(&value)
            )));
        };
        self.prepare_object(&obj, "inputs")
    }

    /// Validates one JSON object: `input_ids` (one sequence or a list of them) with an
    /// optional `attention_mask`, or text under `text_key` (`inputs` for HTTP, `text` for
    /// `predict` lines).
    pub fn prepare_object(
        &self,
        obj: &Map<String, Value>,
        text_key: &str,
    ) -> Result<Prepared, RequestError> {
        match (obj.get("input_ids"), obj.get(text_key)) {
            (Some(_), Some(_)) => Err(RequestError::bad_request(format!(
                "both `input_ids` and `{text_key}` given; expected exactly one of them"
            ))),
            (None, None) => Err(RequestError::bad_request(format!(
                "neither `input_ids` nor `{text_key}` given; expected exactly one of them"
            ))),
            (Some(ids), None) => {
                let (ids, nested) = parse_ids(ids)?;
                let masks = match obj.get("attention_mask") {
                    None | Some(Value::Null) => None,
                    Some(m) => Some(parse_mask(m, &ids, nested)?),
                };
                let sequences = self.finish(ids, masks)?;
                Ok(Prepared {
                    sequences,
                    tokenized: None,
                })
            }
            (None, Some(text)) => {
                if obj.contains_key("attention_mask") {
                    return Err(RequestError::bad_request(format!(
                        "`attention_mask` goes with `input_ids`; with `{text_key}` the tokenizer makes the mask"
                    )));
                }
                let texts = match text {
                    Value::String(s) => vec![s.as_str()],
                    Value::Array(items) => items
                        .iter()
                        .enumerate()
                        .map(|(i, v)| {
                            v.as_str().ok_or_else(|| {
                                RequestError::bad_request(format!(
                                    "`{text_key}`[{i}] is a JSON {}; expected a string",
                                    kind(v)
                                ))
                            })
                        })
                        .collect::<Result<_, _>>()?,
                    other => {
                        return Err(RequestError::bad_request(format!(
                            "`{text_key}` is a JSON {}; expected a string or a list of strings",
                            kind(other)
                        )));
                    }
                };
                if texts.is_empty() {
                    return Err(RequestError::unprocessable(format!(
                        "`{text_key}` is an empty list; expected at least one text"
                    )));
                }
                let ids = self.tokenize(&texts, text_key)?;
                let sequences = self.finish(ids.clone(), None)?;
                Ok(Prepared {
                    sequences,
                    tokenized: Some(ids),
                })
            }
        }
    }

    fn tokenize(&self, texts: &[&str], text_key: &str) -> Result<Vec<Vec<i64>>, RequestError> {
        let Some(tok) = &self.tokenizer else {
            return Err(RequestError::unprocessable(format!(
                "`{text_key}` needs a tokenizer, and this server has none (start it with \
                 --tokenizer tokenizer.json); send `input_ids` instead"
            )));
        };
        texts
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let enc = tok.encode(*text, true).map_err(|e| {
                    RequestError::unprocessable(format!(
                        "`{text_key}`[{i}]: the tokenizer failed: {e}"
                    ))
                })?;
                Ok(enc.get_ids().iter().map(|&id| i64::from(id)).collect())
            })
            .collect()
    }

    /// Range and length checks, then padding.
    fn finish(
        &self,
        ids: Vec<Vec<i64>>,
        masks: Option<Vec<Vec<bool>>>,
    ) -> Result<Vec<Sequence>, RequestError> {
        if ids.is_empty() {
            return Err(RequestError::unprocessable(
                "`input_ids` is an empty list; expected at least one sequence of at least one token",
            ));
        }
        let Some(vocab) = self.vocab_size else {
            return Err(RequestError::unprocessable(
                "this model has no vocab_size (no embedding): it cannot take token ids",
            ));
        };
        let many = ids.len() > 1;
        let at = |i: usize| {
            if many {
                format!("sequence {i}")
            } else {
                "the sequence".to_string()
            }
        };
        let limit = self.padding.map_or(self.max_len, |p| p.length);
        let mut out = Vec::with_capacity(ids.len());
        let mut masks = masks.map(|m| m.into_iter());
        for (i, seq) in ids.into_iter().enumerate() {
            let mask = masks.as_mut().and_then(Iterator::next);
            if seq.is_empty() {
                return Err(RequestError::unprocessable(format!(
                    "{} is empty; expected at least one token",
                    at(i)
                )));
            }
            if seq.len() > limit {
                let what = if self.padding.is_some() {
                    "the padding length"
                } else {
                    "the model's sequence_length"
                };
                return Err(RequestError::unprocessable(format!(
                    "{} has {} tokens; {what} is {limit}",
                    at(i),
                    seq.len()
                )));
            }
            if let Some(pos) = seq.iter().position(|&t| t < 0 || t as u64 >= vocab as u64) {
                return Err(RequestError::unprocessable(format!(
                    "{}: token id {} at position {pos} is out of range; expected an id in [0, {vocab})",
                    at(i),
                    seq[pos]
                )));
            }
            if let Some(m) = &mask
                && !m.iter().any(|&k| k)
            {
                return Err(RequestError::unprocessable(format!(
                    "attention_mask of {} keeps no token; expected at least one 1",
                    at(i)
                )));
            }
            out.push(match self.padding {
                Some(p) if seq.len() < p.length => pad(seq, mask, p),
                Some(_) => Sequence {
                    mask: Some(mask.unwrap_or_else(|| vec![true; seq.len()])),
                    ids: seq,
                },
                None => Sequence { ids: seq, mask },
            });
        }
        Ok(out)
    }
}

fn pad(ids: Vec<i64>, mask: Option<Vec<bool>>, p: Padding) -> Sequence {
    let n = ids.len();
    let extra = p.length - n;
    let mask = mask.unwrap_or_else(|| vec![true; n]);
    let (ids, mask) = match p.side {
        PadSide::Right => {
            let mut i = ids;
            let mut m = mask;
            i.resize(p.length, p.pad_id);
            m.resize(p.length, false);
            (i, m)
        }
        PadSide::Left => {
            let mut i = vec![p.pad_id; extra];
            i.extend(ids);
            let mut m = vec![false; extra];
            m.extend(mask);
            (i, m)
        }
    };
    Sequence {
        ids,
        mask: Some(mask),
    }
}

/// The JSON type of a value, for messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

fn parse_id(v: &Value, at: impl Fn() -> String) -> Result<i64, RequestError> {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(i)
            } else if n.is_u64() {
                Err(RequestError::unprocessable(format!(
                    "{}: token id {n} is out of range",
                    at()
                )))
            } else {
                Err(RequestError::bad_request(format!(
                    "{}: {n} is not an integer; expected an integer token id",
                    at()
                )))
            }
        }
        other => Err(RequestError::bad_request(format!(
            "{} is a JSON {}; expected an integer token id",
            at(),
            kind(other)
        ))),
    }
}

/// `[1, 2, 3]` (one sequence) or `[[1, 2], [3]]` (several); returns the sequences and
/// whether the input was nested.
fn parse_ids(v: &Value) -> Result<(Vec<Vec<i64>>, bool), RequestError> {
    let Value::Array(items) = v else {
        return Err(RequestError::bad_request(format!(
            "`input_ids` is a JSON {}; expected a list of token ids or a list of such lists",
            kind(v)
        )));
    };
    let nested = items.first().is_some_and(Value::is_array);
    if !nested {
        let seq = items
            .iter()
            .enumerate()
            .map(|(j, x)| parse_id(x, || format!("`input_ids`[{j}]")))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok((vec![seq], false));
    }
    let seqs = items
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let Value::Array(row) = row else {
                return Err(RequestError::bad_request(format!(
                    "`input_ids`[{i}] is a JSON {}; expected a list of token ids (every item a list, as the first)",
                    kind(row)
                )));
            };
            row.iter()
                .enumerate()
                .map(|(j, x)| parse_id(x, || format!("`input_ids`[{i}][{j}]")))
                .collect()
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((seqs, true))
}

fn parse_flag(v: &Value, at: impl Fn() -> String) -> Result<bool, RequestError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) => match n.as_i64() {
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            _ if n.as_f64() == Some(0.0) => Ok(false),
            _ if n.as_f64() == Some(1.0) => Ok(true),
            _ => Err(RequestError::unprocessable(format!(
                "{}: {n}; expected 0 or 1 (or false/true)",
                at()
            ))),
        },
        other => Err(RequestError::bad_request(format!(
            "{} is a JSON {}; expected 0 or 1 (or false/true)",
            at(),
            kind(other)
        ))),
    }
}

fn parse_mask(v: &Value, ids: &[Vec<i64>], nested: bool) -> Result<Vec<Vec<bool>>, RequestError> {
    let Value::Array(items) = v else {
        return Err(RequestError::bad_request(format!(
            "`attention_mask` is a JSON {}; expected a list of 0/1 of the shape of `input_ids`",
            kind(v)
        )));
    };
    let rows: Vec<(String, &Vec<Value>)> = if nested {
        if items.len() != ids.len() {
            return Err(RequestError::unprocessable(format!(
                "`attention_mask` has {} rows and `input_ids` {}; expected the same shape",
                items.len(),
                ids.len()
            )));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, row)| match row {
                Value::Array(r) => Ok((format!("`attention_mask`[{i}]"), r)),
                other => Err(RequestError::unprocessable(format!(
                    "`attention_mask`[{i}] is a JSON {}; expected a list of the shape of `input_ids`[{i}]",
                    kind(other)
                ))),
            })
            .collect::<Result<_, _>>()?
    } else {
        if items.first().is_some_and(Value::is_array) {
            return Err(RequestError::unprocessable(
                "`attention_mask` is a list of lists but `input_ids` is one sequence; expected the same shape",
            ));
        }
        vec![("`attention_mask`".to_string(), items)]
    };
    rows.into_iter()
        .zip(ids)
        .map(|((name, row), seq)| {
            if row.len() != seq.len() {
                return Err(RequestError::unprocessable(format!(
                    "{name} has {} values for {} tokens; expected the shape of `input_ids`",
                    row.len(),
                    seq.len()
                )));
            }
            row.iter()
                .enumerate()
                .map(|(j, x)| parse_flag(x, || format!("{name}[{j}]")))
                .collect()
        })
        .collect()
}

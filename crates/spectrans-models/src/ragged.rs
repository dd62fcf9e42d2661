//! Batches of sequences of different lengths.
//!
//! A GFNet's global filter mixes every position of a sequence, so a sequence padded to a
//! longer batch gets another answer, whatever the mask says ([`Gfnet::forward`]). Two ways to
//! score a ragged batch:
//!
//! - [`Gfnet::forward_ragged`]: each sequence gets exactly (bit for bit) the answer it gets
//!   alone. Sequences of equal length run together, one forward per length.
//! - [`pad_sequences`]: opt-in padding to one length, for models trained on padded inputs
//!   (`padding="max_length"` in Hugging Face tokenizers). The answer is then that of the padded
//!   sequence, which differs from the unpadded one.

use std::collections::BTreeMap;

use ndarray::{Array2, Axis, Slice};
use spectrans_layers::LayerError;

use crate::error::ModelError;
use crate::gfnet::{Gfnet, ModelInput, ModelOutput};
use crate::pool::on_pool;

/// At most this many sequences of one length run in one forward of
/// [`Gfnet::forward_ragged`], to bound the memory of one call.
pub const RAGGED_GROUP_ROWS: usize = 64;

impl Gfnet {
    /// Runs sequences of different lengths, each as if alone: `outputs[i]` is, bit for bit,
    /// what [`Gfnet::forward`] gives for `sequences[i]` as a batch of one (with `masks[i]`,
    /// when given). Sequences of equal length share a forward (at most
    /// [`RAGGED_GROUP_ROWS`] at a time); no sequence is padded. Each output keeps its batch
    /// axis of 1.
    ///
    /// ```
    /// use spectrans_models::{Gfnet, ModelInput, ndarray::Array2};
    /// let model = Gfnet::builder().vocab_size(20).hidden_dim(16).num_layers(2)
    ///     .max_sequence_length(8).num_classes(3).build(0)?;
    /// let sequences: [&[i64]; 3] = [&[1, 2, 3], &[4, 5, 6, 7, 8], &[9, 10, 11]];
    /// let outputs = model.forward_ragged(&sequences, None)?;
    /// for (seq, out) in sequences.iter().zip(&outputs) {
    ///     let ids = Array2::from_shape_vec((1, seq.len()), seq.to_vec())?;
    ///     let alone = model.forward(ModelInput::TokenIds(ids.view()), None)?;
    ///     assert_eq!(out, &alone);
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn forward_ragged(
        &self,
        sequences: &[&[i64]],
        masks: Option<&[&[bool]]>,
    ) -> Result<Vec<ModelOutput>, ModelError> {
        on_pool(|| {
            if let Some(masks) = masks {
                if masks.len() != sequences.len() {
                    return Err(ModelError::Shape {
                        what: "attention masks",
                        expected: format!("one per sequence ({})", sequences.len()),
                        found: vec![masks.len()],
                    });
                }
                for (row, (mask, seq)) in masks.iter().zip(sequences).enumerate() {
                    if mask.len() != seq.len() {
                        return Err(ModelError::Shape {
                            what: "attention mask",
                            expected: format!("sequence {row}'s length ({})", seq.len()),
                            found: vec![mask.len()],
                        });
                    }
                }
            }
            if let Some(row) = sequences.iter().position(|s| s.is_empty()) {
                return Err(ModelError::Shape {
                    what: "sequence",
                    expected: format!("at least one token (sequence {row} is empty)"),
                    found: vec![0],
                });
            }
            let mut by_length: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
            for (i, seq) in sequences.iter().enumerate() {
                by_length.entry(seq.len()).or_default().push(i);
            }
            let mut outputs: Vec<Option<ModelOutput>> = vec![None; sequences.len()];
            for (len, members) in by_length {
                for group in members.chunks(RAGGED_GROUP_ROWS) {
                    let ids =
                        Array2::from_shape_fn((group.len(), len), |(r, t)| sequences[group[r]][t]);
                    let mask = masks.map(|m| {
                        Array2::from_shape_fn((group.len(), len), |(r, t)| m[group[r]][t])
                    });
                    let out = self
                        .forward(
                            ModelInput::TokenIds(ids.view()),
                            mask.as_ref().map(|m| m.view()),
                        )
                        .map_err(|e| renumber_rows(e, group))?;
                    for (r, &i) in group.iter().enumerate() {
                        outputs[i] = Some(out.row(r));
                    }
                }
            }
            Ok(outputs.into_iter().flatten().collect())
        })
    }
}

impl ModelOutput {
    /// Row `r` of the batch, keeping a batch axis of 1.
    fn row(&self, r: usize) -> ModelOutput {
        let rows = Slice::from(r..r + 1);
        match self {
            Self::PerSequence(a) => Self::PerSequence(a.slice_axis(Axis(0), rows).to_owned()),
            Self::PerToken(a) => Self::PerToken(a.slice_axis(Axis(0), rows).to_owned()),
            Self::Hidden(a) => Self::Hidden(a.slice_axis(Axis(0), rows).to_owned()),
        }
    }
}

/// An error of a group's forward, with its batch rows renumbered to the caller's sequence
/// indices.
fn renumber_rows(err: ModelError, group: &[usize]) -> ModelError {
    let original = |row: usize| group.get(row).copied().unwrap_or(row);
    match err {
        ModelError::EmptyMaskRow { row } => ModelError::EmptyMaskRow { row: original(row) },
        ModelError::Layer(LayerError::TokenOutOfRange {
            id,
            position: (row, t),
            vocab_size,
        }) => ModelError::Layer(LayerError::TokenOutOfRange {
            id,
            position: (original(row), t),
            vocab_size,
        }),
        other => other,
    }
}

/// How long [`pad_sequences`] makes every sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PadTo {
    /// The longest sequence given.
    Longest,
    /// Exactly this many tokens; a longer sequence is an error.
    Length(usize),
}

/// Pads `sequences` with `pad_id` on the right to one length and returns `(input_ids,
/// attention_mask)`, the mask `true` on real tokens. Opt-in: a padded sequence's answer is
/// that of the padded sequence, not of the sequence alone (the filter mixes pads in); use it
/// for models trained on padded inputs, [`Gfnet::forward_ragged`] otherwise.
///
/// ```
/// use spectrans_models::ragged::{PadTo, pad_sequences};
/// let (ids, mask) = pad_sequences(&[&[5, 6, 7], &[8]], 0, PadTo::Longest)?;
/// assert_eq!(ids.row(1).to_vec(), vec![8, 0, 0]);
/// assert_eq!(mask.row(1).to_vec(), vec![true, false, false]);
/// # Ok::<(), spectrans_models::ModelError>(())
/// ```
pub fn pad_sequences(
    sequences: &[&[i64]],
    pad_id: i64,
    to: PadTo,
) -> Result<(Array2<i64>, Array2<bool>), ModelError> {
    let longest = sequences.iter().map(|s| s.len()).max().unwrap_or(0);
    let len = match to {
        PadTo::Longest => longest,
        PadTo::Length(n) => {
            if let Some(row) = sequences.iter().position(|s| s.len() > n) {
                return Err(ModelError::Shape {
                    what: "sequence to pad",
                    expected: format!("at most {n} tokens (sequence {row})"),
                    found: vec![sequences[row].len()],
                });
            }
            n
        }
    };
    let ids = Array2::from_shape_fn((sequences.len(), len), |(r, t)| {
        sequences[r].get(t).copied().unwrap_or(pad_id)
    });
    let mask = Array2::from_shape_fn((sequences.len(), len), |(r, t)| t < sequences[r].len());
    Ok((ids, mask))
}

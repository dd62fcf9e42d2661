//! Examples stacked into the tensors one step reads.

use ndarray::{Array2, Array3, ArrayD, IxDyn};
use spectrans_models::ModelInput;

use crate::data::{Example, Input, Target};
use crate::error::TrainError;
use crate::loss::{LossKind, Targets};

/// A batch's input.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchInput {
    /// Token ids (B, N).
    TokenIds(Array2<i64>),
    /// Embeddings (B, N, D).
    Embeddings(Array3<f32>),
}

/// A batch's targets.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchTargets {
    /// Class ids: (B,) per sequence or (B, N) per token.
    Classes(ArrayD<i64>),
    /// Values: (B, C) per sequence or (B, N, D) hidden states.
    Values(ArrayD<f32>),
}

/// Examples stacked for one step.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// What the model reads.
    pub input: BatchInput,
    /// What it should output.
    pub targets: BatchTargets,
}

impl Batch {
    /// Stacks `examples`, each of `seq_len` tokens (shorter token sequences are padded with
    /// id 0). Every example must have the input and target kinds of the first.
    ///
    /// ```
    /// use spectrans_train::{Batch, BatchTargets, data::Example};
    /// let a = Example::classified(vec![1, 2, 3], 0);
    /// let b = Example::classified(vec![4, 5, 6], 1);
    /// let batch = Batch::of(&[&a, &b], 3)?;
    /// assert!(matches!(batch.targets, BatchTargets::Classes(ref t) if t.shape() == [2]));
    /// # Ok::<(), spectrans_train::TrainError>(())
    /// ```
    pub fn of(examples: &[&Example], seq_len: usize) -> Result<Batch, TrainError> {
        let Some(first) = examples.first() else {
            return Err(TrainError::Data("an empty batch".into()));
        };
        let b = examples.len();
        let mixed = || {
            TrainError::Data(
                "examples of different kinds in one batch (tokens and embeddings, or different targets)".into(),
            )
        };
        let input = match &first.input {
            Input::Tokens(_) => {
                let mut ids = Array2::<i64>::zeros((b, seq_len));
                for (mut row, e) in ids.outer_iter_mut().zip(examples) {
                    let t = e.tokens().ok_or_else(mixed)?;
                    for (dst, &src) in row.iter_mut().zip(t) {
                        *dst = src;
                    }
                }
                BatchInput::TokenIds(ids)
            }
            Input::Embeddings(x) => {
                let d = x.ncols();
                let mut out = Array3::<f32>::zeros((b, seq_len, d));
                for (mut dst, e) in out.outer_iter_mut().zip(examples) {
                    match &e.input {
                        Input::Embeddings(x) if x.dim() == (seq_len, d) => dst.assign(x),
                        _ => return Err(mixed()),
                    }
                }
                BatchInput::Embeddings(out)
            }
        };
        let targets = match &first.target {
            Target::Class(_) => BatchTargets::Classes(
                examples
                    .iter()
                    .map(|e| e.label().ok_or_else(mixed))
                    .collect::<Result<Vec<_>, _>>()
                    .map(|v| ArrayD::from_shape_vec(IxDyn(&[b]), v))??,
            ),
            Target::Labels(_) => {
                let mut t = Vec::with_capacity(b * seq_len);
                for e in examples {
                    match &e.target {
                        Target::Labels(l) if l.len() == seq_len => t.extend_from_slice(l),
                        _ => return Err(mixed()),
                    }
                }
                BatchTargets::Classes(ArrayD::from_shape_vec(IxDyn(&[b, seq_len]), t)?)
            }
            Target::Values(v) => {
                let width = v.len();
                let mut t = Vec::with_capacity(b * width);
                for e in examples {
                    match &e.target {
                        Target::Values(v) if v.len() == width => t.extend_from_slice(v),
                        _ => return Err(mixed()),
                    }
                }
                BatchTargets::Values(ArrayD::from_shape_vec(IxDyn(&[b, width]), t)?)
            }
            Target::Hidden(h) => {
                let d = h.ncols();
                let mut t = Vec::with_capacity(b * seq_len * d);
                for e in examples {
                    match &e.target {
                        Target::Hidden(h) if h.dim() == (seq_len, d) => t.extend(h.iter()),
                        _ => return Err(mixed()),
                    }
                }
                BatchTargets::Values(ArrayD::from_shape_vec(IxDyn(&[b, seq_len, d]), t)?)
            }
        };
        Ok(Batch { input, targets })
    }

    /// The number of examples.
    pub fn len(&self) -> usize {
        match &self.input {
            BatchInput::TokenIds(ids) => ids.nrows(),
            BatchInput::Embeddings(x) => x.dim().0,
        }
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The input as the model takes it.
    pub fn model_input(&self) -> ModelInput<'_> {
        match &self.input {
            BatchInput::TokenIds(ids) => ModelInput::TokenIds(ids.view()),
            BatchInput::Embeddings(x) => ModelInput::Embeddings(x.view()),
        }
    }

    /// The targets as the loss takes them.
    pub fn loss_targets(&self) -> Targets<'_> {
        match &self.targets {
            BatchTargets::Classes(t) => Targets::Classes(t.view()),
            BatchTargets::Values(t) => Targets::Values(t.view()),
        }
    }

    /// Cross-entropy for class targets, mean squared error for values.
    pub fn loss_kind(&self) -> LossKind {
        match &self.targets {
            BatchTargets::Classes(_) => LossKind::CrossEntropy,
            BatchTargets::Values(_) => LossKind::Mse,
        }
    }
}

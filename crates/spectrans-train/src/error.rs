//! The training crate's error.

use spectrans_models::ModelError;

use crate::data::DataError;

/// Everything training can refuse: the model's errors, bad data, bad targets, a diverged run,
/// a checkpoint that does not fit.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The model refused (shapes, weights, files, memory).
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A data file is malformed or does not fit the model.
    #[error(transparent)]
    DataFile(#[from] DataError),
    /// Examples that cannot form a batch.
    #[error("data: {0}")]
    Data(String),
    /// A loss refused its inputs.
    #[error("loss: {0}")]
    Loss(#[from] LossError),
    /// Targets of the wrong kind for the loss or the model.
    #[error("targets: {0}")]
    Targets(String),
    /// Training produced a NaN or infinite loss or gradient; nothing was updated by the step.
    #[error(
        "training diverged at step {step} (epoch {epoch}): the {what} is NaN or infinite; the weights were not updated and the last checkpoint is kept"
    )]
    Diverged {
        /// The loss or the gradient norm.
        what: &'static str,
        /// The 1-based optimisation step of the run.
        step: u64,
        /// The 1-based epoch.
        epoch: usize,
    },
    /// A training checkpoint cannot be written or does not fit this run.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// A reshape failed (a bug if it ever shows: shapes are checked before).
    #[error("internal reshape: {0}")]
    Reshape(#[from] ndarray::ShapeError),
}

impl From<spectrans_models::tensor_file::TensorFileError> for TrainError {
    fn from(e: spectrans_models::tensor_file::TensorFileError) -> Self {
        TrainError::Model(e.into())
    }
}

/// Errors in loss inputs.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LossError {
    /// Targets do not match the predictions.
    #[error("targets ({what}): expected shape {expected:?}, found {found:?}")]
    Shape {
        /// What the shape should be.
        what: &'static str,
        /// The expected shape.
        expected: Vec<usize>,
        /// The shape given.
        found: Vec<usize>,
    },
    /// A class id outside 0..classes.
    #[error("target class {class} at row {row} is out of range: expected 0 <= class < {classes}")]
    ClassOutOfRange {
        /// The row of the bad target.
        row: usize,
        /// The value given.
        class: i64,
        /// The number of classes.
        classes: usize,
    },
    /// Nothing to average over.
    #[error("the loss has no rows to average over")]
    Empty,
}

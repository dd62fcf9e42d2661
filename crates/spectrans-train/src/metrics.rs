//! What an epoch measured, and evaluation on a held-out set for every task.

use std::collections::BTreeMap;

use ndarray::{ArrayView2, Axis};
use spectrans_models::Gfnet;

use crate::batch::{Batch, BatchTargets};
use crate::data::{Dataset, Example, IGNORE_INDEX, Task};
use crate::error::TrainError;
use crate::loss::loss_and_grad;

/// What one epoch measured. The evaluation metrics are named by the task (see [`evaluate`])
/// and written flat into the JSON line (`"eval_accuracy": 0.97`). JSON writes NaN (an empty
/// evaluation set) as `null`, which reads back as NaN.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch's steps.
    #[serde(deserialize_with = "f32_or_nan")]
    pub train_loss: f32,
    /// Loss on the held-out set.
    #[serde(deserialize_with = "f32_or_nan")]
    pub eval_loss: f32,
    /// The task's metrics on the held-out set, by name.
    #[serde(flatten, deserialize_with = "named_f32_or_nan")]
    pub eval: BTreeMap<String, f32>,
    /// Training examples per second (of the steps this process ran, after a resume).
    #[serde(deserialize_with = "f32_or_nan")]
    pub examples_per_second: f32,
    /// Wall time of the epoch's training steps (in this process, after a resume).
    #[serde(deserialize_with = "f32_or_nan")]
    pub seconds: f32,
    /// Learning rate at the epoch's end.
    #[serde(deserialize_with = "f32_or_nan")]
    pub lr: f32,
}

impl EpochMetrics {
    /// These metrics with the wall-clock figures (`seconds`, `examples_per_second`) set to NaN.
    pub fn without_timings(&self) -> Self {
        Self {
            examples_per_second: f32::NAN,
            seconds: f32::NAN,
            ..self.clone()
        }
    }

    /// The evaluation metric `name` (`eval_accuracy`, `eval_mse`, ...), if measured.
    pub fn eval_metric(&self, name: &str) -> Option<f32> {
        self.eval.get(name).copied()
    }
}

fn f32_or_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
    use serde::Deserialize;
    Ok(Option::<f32>::deserialize(d)?.unwrap_or(f32::NAN))
}

fn named_f32_or_nan<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, f32>, D::Error> {
    use serde::Deserialize;
    Ok(BTreeMap::<String, Option<f32>>::deserialize(d)?
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or(f32::NAN)))
        .collect())
}

/// The loss and the task's metrics on a held-out set.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// The mean loss (cross-entropy or mean squared error, as in training).
    pub loss: f32,
    /// By task: `eval_accuracy` (classification), `eval_mse` and `eval_r2` (regression),
    /// `eval_token_accuracy` (sequence, lm; -100 labels skipped), `eval_mse` (hidden states).
    pub metrics: BTreeMap<String, f32>,
}

/// Running sums of one evaluation.
#[derive(Default)]
struct Sums {
    loss: f64,
    loss_weight: f64,
    correct: usize,
    counted: usize,
    /// Σ (y - ŷ)², Σ y, Σ y², count, for the squared error and R².
    squared_error: f64,
    target_sum: f64,
    target_square_sum: f64,
    values: usize,
}

/// Evaluates `model` (eval mode) on `data` in batches of `batch_size`. An empty set gives NaN.
pub fn evaluate(
    model: &Gfnet,
    data: &Dataset,
    batch_size: usize,
) -> Result<Evaluation, TrainError> {
    let names: &[&str] = match data.task {
        Task::Classification => &["eval_accuracy"],
        Task::Regression => &["eval_mse", "eval_r2"],
        Task::TokenLabels => &["eval_token_accuracy"],
        Task::Hidden => &["eval_mse"],
    };
    let mut sums = Sums::default();
    let all: Vec<&Example> = data.examples.iter().collect();
    for chunk in all.chunks(batch_size.max(1)) {
        let batch = Batch::of(chunk, data.seq_len)?;
        let output = model.forward(batch.model_input(), None)?.into_dyn();
        let (loss, _) = loss_and_grad(output.view(), batch.loss_targets(), batch.loss_kind())?;
        match &batch.targets {
            BatchTargets::Classes(t) => {
                let classes = *output.shape().last().unwrap_or(&1);
                let rows = output.len() / classes.max(1);
                let logits = output
                    .as_standard_layout()
                    .into_owned()
                    .into_shape_with_order((rows, classes))?;
                let rows_counted = count_correct(logits.view(), t.iter().copied(), &mut sums);
                sums.loss += loss as f64 * rows_counted as f64;
                sums.loss_weight += rows_counted as f64;
            }
            BatchTargets::Values(t) => {
                for (&p, &y) in output.iter().zip(t.iter()) {
                    let d = p as f64 - y as f64;
                    sums.squared_error += d * d;
                    sums.target_sum += y as f64;
                    sums.target_square_sum += y as f64 * y as f64;
                    sums.values += 1;
                }
                sums.loss += loss as f64 * t.len() as f64;
                sums.loss_weight += t.len() as f64;
            }
        }
    }
    let ratio = |a: f64, b: f64| if b > 0.0 { (a / b) as f32 } else { f32::NAN };
    let mse = ratio(sums.squared_error, sums.values as f64);
    let n = sums.values as f64;
    let total_variance = sums.target_square_sum - sums.target_sum * sums.target_sum / n.max(1.0);
    let metrics = names
        .iter()
        .map(|&name| {
            let value = match name {
                "eval_accuracy" | "eval_token_accuracy" => {
                    ratio(sums.correct as f64, sums.counted as f64)
                }
                "eval_r2" => (1.0 - sums.squared_error / total_variance) as f32,
                _ => mse,
            };
            (name.to_string(), value)
        })
        .collect();
    Ok(Evaluation {
        loss: ratio(sums.loss, sums.loss_weight),
        metrics,
    })
}

/// Adds the rows whose argmax is their target to `sums` (rows with target -100 skipped);
/// returns how many rows counted.
fn count_correct(
    logits: ArrayView2<'_, f32>,
    targets: impl Iterator<Item = i64>,
    sums: &mut Sums,
) -> usize {
    let mut counted = 0;
    for (row, t) in logits.axis_iter(Axis(0)).zip(targets) {
        if t == IGNORE_INDEX {
            continue;
        }
        counted += 1;
        if row.as_slice().map(argmax) == Some(t as usize) {
            sums.correct += 1;
        }
    }
    sums.counted += counted;
    counted
}

/// The index of the largest value (the first of equals).
pub fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv { (i, v) } else { (bi, bv) }
        })
        .0
}

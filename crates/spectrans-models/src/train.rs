//! Training: one step (forward, loss, backward, clipping, AdamW), evaluation, and checkpoints
//! with optimiser state so a run can resume where it stopped.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2, ArrayD, ArrayViewD, Axis, IxDyn};
use spectrans_layers::{Parameters, TrainContext};

use crate::data::{Dataset, Example};
use crate::error::ModelError;
use crate::gfnet::{Gfnet, GfnetGrads, ModelInput};
use crate::loss::{cross_entropy, mse};
use crate::optim::{clip_coefficient, global_norm, AdamW, LrSchedule, Optimizer};
use crate::tensor_file::{write_tensors, OwnedTensor, TensorFile};

/// Which loss a step minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossKind {
    /// Mean cross-entropy over every predicted row (targets: class ids).
    CrossEntropy,
    /// Mean squared error over every element (targets: the output's shape).
    Mse,
}

/// Training targets.
#[derive(Debug, Clone)]
pub enum Targets<'a> {
    /// Class ids: the output's shape minus its last axis.
    Classes(ArrayViewD<'a, i64>),
    /// Values of the output's shape.
    Values(ArrayViewD<'a, f32>),
}

/// The loss of `output` against `targets`, and its gradient w.r.t. `output`.
pub fn loss_and_grad(
    output: ArrayViewD<'_, f32>,
    targets: Targets<'_>,
    kind: LossKind,
) -> Result<(f32, ArrayD<f32>), ModelError> {
    match (kind, targets) {
        (LossKind::CrossEntropy, Targets::Classes(t)) => {
            let shape = output.shape();
            let classes = *shape.last().unwrap_or(&0);
            if output.ndim() < 2 || t.shape() != &shape[..shape.len() - 1] {
                return Err(ModelError::Shape {
                    what: "targets",
                    expected: format!(
                        "{:?} (the output's shape minus its last axis)",
                        &shape[..shape.len().saturating_sub(1)]
                    ),
                    found: t.shape().to_vec(),
                });
            }
            let rows = output.len() / classes.max(1);
            let logits = output
                .as_standard_layout()
                .into_owned()
                .into_shape_with_order((rows, classes))?;
            let targets: Vec<i64> = t.iter().copied().collect();
            let (loss, g) = cross_entropy(logits.view(), &targets)?;
            Ok((loss, g.into_shape_with_order(IxDyn(shape))?))
        }
        (LossKind::Mse, Targets::Values(t)) => Ok(mse(output, t)?),
        (LossKind::CrossEntropy, Targets::Values(_)) => Err(ModelError::Config(
            "cross-entropy needs integer class targets (I64)".into(),
        )),
        (LossKind::Mse, Targets::Classes(_)) => Err(ModelError::Config(
            "mse needs floating targets of the output's shape (F32)".into(),
        )),
    }
}

/// One training-mode forward and backward, no update: the loss and every gradient.
pub fn compute_gradients(
    model: &Gfnet,
    input: ModelInput<'_>,
    attention_mask: Option<ndarray::ArrayView2<'_, bool>>,
    targets: Targets<'_>,
    kind: LossKind,
    ctx: &mut TrainContext,
) -> Result<(f32, GfnetGrads), ModelError> {
    let (output, cache) = model.forward_train(input, attention_mask, ctx)?;
    let (loss, grad_output) = loss_and_grad(output.view(), targets, kind)?;
    if !loss.is_finite() {
        return Err(ModelError::NonFinite {
            what: "loss",
            index: vec![],
        });
    }
    let mut grads = model.zero_grads();
    model.backward(cache, grad_output.view(), &mut grads)?;
    Ok((loss, grads))
}

/// Hyper-parameters of a training run.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOptions {
    /// Passes over the training set.
    pub epochs: usize,
    /// Examples per step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f32,
    /// AdamW's decoupled weight decay.
    pub weight_decay: f32,
    /// Fraction of the steps spent warming up linearly.
    pub warmup_fraction: f32,
    /// Clip gradients to this global norm (None: no clipping).
    pub clip_norm: Option<f32>,
    /// Seed of the shuffles and dropout masks.
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 32,
            lr: 3e-3,
            weight_decay: 0.01,
            warmup_fraction: 0.1,
            clip_norm: Some(1.0),
            seed: 0,
        }
    }
}

/// A model with its optimiser state, stepping through a schedule.
#[derive(Debug)]
pub struct Trainer {
    /// The model being trained.
    pub model: Gfnet,
    /// Its AdamW state.
    pub optimizer: AdamW,
    /// The learning-rate schedule.
    pub schedule: LrSchedule,
    /// Epochs completed.
    pub epoch: usize,
    options: TrainOptions,
}

/// What one epoch measured.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch's steps.
    pub train_loss: f32,
    /// Loss on the held-out set.
    pub eval_loss: f32,
    /// Accuracy on the held-out set.
    pub eval_accuracy: f32,
    /// Training examples per second.
    pub examples_per_second: f32,
    /// Wall time of the epoch's training steps.
    pub seconds: f32,
    /// Learning rate at the epoch's end.
    pub lr: f32,
}

/// Batches a slice of examples as (ids (B, N), labels (B,)).
pub fn batch_tensors(examples: &[&Example], seq_len: usize) -> (Array2<i64>, Array1<i64>) {
    let ids = Array2::from_shape_fn((examples.len(), seq_len), |(b, n)| {
        examples[b].tokens.get(n).copied().unwrap_or(0)
    });
    let labels = Array1::from_iter(examples.iter().map(|e| e.label));
    (ids, labels)
}

impl Trainer {
    /// A trainer for `model` over `steps_per_epoch * options.epochs` steps.
    pub fn new(model: Gfnet, options: TrainOptions, steps_per_epoch: usize) -> Self {
        let total = (steps_per_epoch * options.epochs).max(1) as u64;
        let schedule = LrSchedule {
            base_lr: options.lr,
            min_lr: options.lr * 0.01,
            warmup_steps: ((total as f32) * options.warmup_fraction).round() as u64,
            total_steps: total,
        };
        Self {
            model,
            optimizer: AdamW::new(options.weight_decay),
            schedule,
            epoch: 0,
            options,
        }
    }

    /// The options of the run.
    pub fn options(&self) -> &TrainOptions {
        &self.options
    }

    /// One optimisation step on a batch; returns the loss.
    pub fn step(
        &mut self,
        ids: ndarray::ArrayView2<'_, i64>,
        labels: ndarray::ArrayView1<'_, i64>,
        ctx: &mut TrainContext,
    ) -> Result<f32, ModelError> {
        let labels = labels.into_dyn();
        let (loss, grads) = compute_gradients(
            &self.model,
            ModelInput::TokenIds(ids),
            None,
            Targets::Classes(labels),
            LossKind::CrossEntropy,
            ctx,
        )?;
        self.apply(&grads);
        Ok(loss)
    }

    /// Clips and applies gradients with the scheduled learning rate.
    pub fn apply(&mut self, grads: &GfnetGrads) {
        let model = &self.model;
        let mut by_name: HashMap<String, ArrayD<f32>> = HashMap::new();
        grads.visit("", &mut |name, g| {
            if model.is_trainable(name) {
                by_name.insert(name.to_string(), g.to_owned());
            }
        });
        let coef = match self.options.clip_norm {
            Some(max) => clip_coefficient(global_norm(by_name.values().map(|v| v.view())), max),
            None => 1.0,
        };
        if coef != 1.0 {
            for g in by_name.values_mut() {
                g.mapv_inplace(|v| v * coef);
            }
        }
        let lr = self.schedule.lr_at(self.optimizer.steps() + 1);
        self.optimizer.begin_step(lr);
        let optimizer = &mut self.optimizer;
        self.model.visit_mut("", &mut |name, p| {
            if let Some(g) = by_name.get(name) {
                optimizer.update(name, p, g.view());
            }
        });
    }

    /// Trains one epoch over `train` (shuffled with the run's seed and the epoch number), then
    /// evaluates on `eval`. `on_step` sees (steps done, steps in epoch, loss).
    pub fn run_epoch(
        &mut self,
        train: &Dataset,
        eval: &Dataset,
        on_step: &mut dyn FnMut(usize, usize, f32),
    ) -> Result<EpochMetrics, ModelError> {
        use rand::seq::SliceRandom;
        use rand::SeedableRng;
        let seed = self.options.seed;
        let epoch = self.epoch as u64;
        let mut order: Vec<&Example> = train.examples.iter().collect();
        order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(
            seed ^ (epoch + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        ));
        let mut ctx = TrainContext::new(seed.wrapping_add(epoch << 32), true);
        let steps = order.len().div_ceil(self.options.batch_size.max(1));
        let start = std::time::Instant::now();
        let mut total = 0.0f64;
        for (i, chunk) in order.chunks(self.options.batch_size.max(1)).enumerate() {
            let (ids, labels) = batch_tensors(chunk, train.seq_len);
            let loss = self.step(ids.view(), labels.view(), &mut ctx)?;
            total += loss as f64;
            on_step(i + 1, steps, loss);
        }
        let seconds = start.elapsed().as_secs_f32();
        self.epoch += 1;
        let (eval_loss, eval_accuracy) = evaluate(&self.model, eval, 256)?;
        Ok(EpochMetrics {
            epoch: self.epoch,
            train_loss: (total / steps.max(1) as f64) as f32,
            eval_loss,
            eval_accuracy,
            examples_per_second: order.len() as f32 / seconds.max(1e-9),
            seconds,
            lr: self.schedule.lr_at(self.optimizer.steps()),
        })
    }

    /// Saves the model (PyTorch-loadable weights at `path`) and, beside it, the optimiser state
    /// (`<path>.optim.safetensors`: AdamW moments by parameter name, the step and the epoch).
    pub fn save_checkpoint(&self, path: &Path) -> Result<(), ModelError> {
        self.model.save_weights(path)?;
        let mut state: BTreeMap<String, OwnedTensor> = BTreeMap::new();
        for (name, (m, v)) in self.optimizer.all_moments() {
            state.insert(format!("exp_avg.{name}"), OwnedTensor::F32(m.clone()));
            state.insert(format!("exp_avg_sq.{name}"), OwnedTensor::F32(v.clone()));
        }
        state.insert(
            "step".into(),
            OwnedTensor::I64(ArrayD::from_elem(
                IxDyn(&[1]),
                self.optimizer.steps() as i64,
            )),
        );
        state.insert(
            "epoch".into(),
            OwnedTensor::I64(ArrayD::from_elem(IxDyn(&[1]), self.epoch as i64)),
        );
        write_tensors(optimizer_path(path), &state)?;
        Ok(())
    }

    /// Restores model weights and optimiser state saved by [`Trainer::save_checkpoint`].
    pub fn resume(&mut self, path: &Path) -> Result<(), ModelError> {
        self.model.load_weights(path)?;
        let file = TensorFile::open(optimizer_path(path))?;
        let read_scalar = |name: &str| -> Result<i64, ModelError> {
            file.read_i64(name)?
                .iter()
                .next()
                .copied()
                .ok_or_else(|| ModelError::Weights {
                    path: file.path().display().to_string(),
                    problems: format!("`{name}` is empty"),
                })
        };
        let step = read_scalar("step")?.max(0) as u64;
        let epoch = read_scalar("epoch")?.max(0) as usize;
        let mut moments = HashMap::new();
        let mut problems = Vec::new();
        self.model.visit("", &mut |name, p| {
            let m = file.read_f32(&format!("exp_avg.{name}"));
            let v = file.read_f32(&format!("exp_avg_sq.{name}"));
            match (m, v) {
                (Ok(m), Ok(v)) if m.shape() == p.shape() && v.shape() == p.shape() => {
                    moments.insert(name.to_string(), (m, v));
                }
                (Ok(_), Ok(_)) => problems.push(format!("moments of `{name}` are misshapen")),
                (Err(e), _) | (_, Err(e)) => {
                    if step > 0 {
                        problems.push(e.to_string())
                    }
                }
            }
        });
        if !problems.is_empty() {
            return Err(ModelError::Weights {
                path: file.path().display().to_string(),
                problems: problems.join("; "),
            });
        }
        self.optimizer.restore(step, moments);
        self.epoch = epoch;
        Ok(())
    }
}

/// Where [`Trainer::save_checkpoint`] puts the optimiser state for weights at `path`.
pub fn optimizer_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".optim.safetensors");
    PathBuf::from(s)
}

/// Mean cross-entropy and accuracy of a classifier on a data set (eval mode).
pub fn evaluate(
    model: &Gfnet,
    data: &Dataset,
    batch_size: usize,
) -> Result<(f32, f32), ModelError> {
    if data.is_empty() {
        return Ok((f32::NAN, f32::NAN));
    }
    let mut loss = 0.0f64;
    let mut correct = 0usize;
    let all: Vec<&Example> = data.examples.iter().collect();
    for chunk in all.chunks(batch_size.max(1)) {
        let (ids, labels) = batch_tensors(chunk, data.seq_len);
        let logits = model.forward(ModelInput::TokenIds(ids.view()), None)?;
        let logits = logits.into_dimensionality::<ndarray::Ix2>().map_err(|_| {
            ModelError::Config("evaluation needs a classification model with num_classes".into())
        })?;
        let targets: Vec<i64> = labels.to_vec();
        let (l, _) = cross_entropy(logits.view(), &targets)?;
        loss += l as f64 * chunk.len() as f64;
        for (row, &t) in logits.axis_iter(Axis(0)).zip(targets.iter()) {
            if argmax(&row.to_vec()) == t as usize {
                correct += 1;
            }
        }
    }
    Ok((
        (loss / data.len() as f64) as f32,
        correct as f32 / data.len() as f32,
    ))
}

/// The index of the largest value (the first of equals).
pub fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv {
                (i, v)
            } else {
                (bi, bv)
            }
        })
        .0
}

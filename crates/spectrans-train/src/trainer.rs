//! Training: one step (forward, loss, backward, clipping, AdamW), evaluation, and checkpoints
//! with optimiser state so a run can resume where it stopped.

use std::collections::{BTreeMap, HashMap};

use std::path::{Path, PathBuf};

use ndarray::ArrayD;
use spectrans_models::tensor_file::{OwnedTensor, TensorFile, write_tensors_with_metadata};
use spectrans_models::{
    Gfnet, GfnetGrads, ModelError, ModelInput, Parameters, TrainContext, WeightProblem, on_pool,
};

use crate::batch::Batch;
use crate::data::{Dataset, Example};
use crate::error::TrainError;
use crate::loss::{LossKind, Targets, loss_and_grad};
use crate::metrics::{EpochMetrics, evaluate};
use crate::optim::{AdamW, LrSchedule, Optimizer, clip_coefficient, global_norm};

/// One training-mode forward and backward, no update: the loss and every gradient.
pub fn compute_gradients(
    model: &Gfnet,
    input: ModelInput<'_>,
    attention_mask: Option<ndarray::ArrayView2<'_, bool>>,
    targets: Targets<'_>,
    kind: LossKind,
    ctx: &mut TrainContext,
) -> Result<(f32, GfnetGrads), TrainError> {
    on_pool(|| {
        let (output, cache) = model.forward_train(input, attention_mask, ctx)?;
        let (loss, grad_output) = loss_and_grad(output.view(), targets, kind)?;
        if !loss.is_finite() {
            return Err(ModelError::NonFinite {
                what: "loss",
                index: vec![],
            }
            .into());
        }
        let mut grads = model.zero_grads();
        model.backward(&cache, grad_output.view(), &mut grads)?;
        cache.recycle();
        Ok((loss, grads))
    })
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
    /// Steps done in the epoch in progress (0 between epochs).
    pub epoch_step: usize,
    /// Σ loss over the steps done in the epoch in progress.
    epoch_loss: f64,
    /// The metrics of every completed epoch, oldest first.
    pub history: Vec<EpochMetrics>,
    options: TrainOptions,
}

/// Where an epoch stands after a step, for [`Trainer::run_epoch_with`]'s callback.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepProgress {
    /// Steps done in this epoch (1-based).
    pub done: usize,
    /// Steps in the epoch.
    pub steps: usize,
    /// Optimisation steps done since the run began (the optimiser's step count).
    pub global_step: u64,
    /// This step's loss.
    pub loss: f32,
}

/// The dropout seed of global step `step`: each step's masks depend on the run's seed and the
/// step alone, so a run resumed mid-epoch draws the masks the uninterrupted run drew.
fn step_seed(seed: u64, step: u64) -> u64 {
    // SplitMix64's finaliser: neighbouring steps get unrelated seeds.
    let mut z = seed ^ step.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The order in which epoch `epoch` visits the examples (seeded by the run's seed and `epoch`).
fn epoch_order(train: &Dataset, seed: u64, epoch: usize) -> Vec<&Example> {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    let mut order: Vec<&Example> = train.examples.iter().collect();
    order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(
        seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
    ));
    order
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
            epoch_step: 0,
            epoch_loss: 0.0,
            history: Vec::new(),
            options,
        }
    }

    /// The options of the run.
    pub fn options(&self) -> &TrainOptions {
        &self.options
    }

    /// One optimisation step on a batch; returns the loss. A loss or a gradient that is NaN
    /// or infinite stops with [`TrainError::Diverged`] before anything is updated.
    pub fn step(&mut self, batch: &Batch, ctx: &mut TrainContext) -> Result<f32, TrainError> {
        let result = compute_gradients(
            &self.model,
            batch.model_input(),
            None,
            batch.loss_targets(),
            batch.loss_kind(),
            ctx,
        );
        let (loss, grads) = match result {
            Err(TrainError::Model(ModelError::NonFinite { what: "loss", .. })) => {
                return Err(self.diverged("loss"));
            }
            other => other?,
        };
        self.apply(&grads)?;
        Ok(loss)
    }

    fn diverged(&self, what: &'static str) -> TrainError {
        TrainError::Diverged {
            what,
            step: self.optimizer.steps() + 1,
            epoch: self.epoch + 1,
        }
    }

    /// Clips and applies gradients with the scheduled learning rate. The global norm is summed
    /// in parameter-name order, so the clipping factor has the same bits on every run.
    pub fn apply(&mut self, grads: &GfnetGrads) -> Result<(), TrainError> {
        on_pool(|| {
            let model = &self.model;
            let mut by_name: BTreeMap<String, ArrayD<f32>> = BTreeMap::new();
            grads.visit("", &mut |name, g| {
                if model.is_trainable(name) {
                    by_name.insert(name.to_string(), g.to_owned());
                }
            });
            let norm = global_norm(by_name.values().map(|v| v.view()));
            if !norm.is_finite() {
                return Err(self.diverged("gradient norm"));
            }
            let coef = match self.options.clip_norm {
                Some(max) => clip_coefficient(norm, max),
                None => 1.0,
            };
            if coef != 1.0 {
                for g in by_name.values_mut() {
                    g.par_mapv_inplace(|v| v * coef);
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
            Ok(())
        })
    }

    /// Trains one epoch over `train` (shuffled with the run's seed and the epoch number), then
    /// evaluates on `eval`. `on_step` sees (steps done, steps in epoch, loss).
    pub fn run_epoch(
        &mut self,
        train: &Dataset,
        eval: &Dataset,
        on_step: &mut dyn FnMut(usize, usize, f32),
    ) -> Result<EpochMetrics, TrainError> {
        self.run_epoch_with(train, eval, &mut |_, p| {
            on_step(p.done, p.steps, p.loss);
            Ok(())
        })
    }

    /// [`Trainer::run_epoch`], continuing an epoch a checkpoint left half done, with a callback
    /// that sees the trainer after every step (to save a checkpoint) and may stop the run.
    ///
    /// Step `s` of the run draws its dropout masks from `(seed, s)` and epoch `e` shuffles with
    /// `(seed, e)`, so a resumed run takes the same steps, bit for bit, as one never stopped.
    pub fn run_epoch_with(
        &mut self,
        train: &Dataset,
        eval: &Dataset,
        on_step: &mut dyn FnMut(&Trainer, StepProgress) -> Result<(), TrainError>,
    ) -> Result<EpochMetrics, TrainError> {
        let seed = self.options.seed;
        let batch = self.options.batch_size.max(1);
        let order = epoch_order(train, seed, self.epoch);
        let steps = order.len().div_ceil(batch);
        if self.epoch_step > steps {
            return Err(TrainError::Checkpoint(format!(
                "the checkpoint is {} steps into an epoch of {steps} steps: resume with the data and --batch-size it was trained with",
                self.epoch_step
            )));
        }
        let start = std::time::Instant::now();
        let first = self.epoch_step;
        for (i, chunk) in order.chunks(batch).enumerate().skip(first) {
            let batch = Batch::of(chunk, train.seq_len)?;
            let mut ctx = TrainContext::new(step_seed(seed, self.optimizer.steps()), true);
            let loss = self.step(&batch, &mut ctx)?;
            self.epoch_loss += loss as f64;
            self.epoch_step = i + 1;
            let progress = StepProgress {
                done: i + 1,
                steps,
                global_step: self.optimizer.steps(),
                loss,
            };
            on_step(self, progress)?;
        }
        let seconds = start.elapsed().as_secs_f32();
        // The last step's cache arrays, kept for a next step: not needed through evaluation.
        spectrans_models::reuse::release();
        let train_loss = (self.epoch_loss / steps.max(1) as f64) as f32;
        self.epoch += 1;
        self.epoch_step = 0;
        self.epoch_loss = 0.0;
        let evaluation = evaluate(&self.model, eval, 256)?;
        let examples = order.len().saturating_sub(first * batch);
        let metrics = EpochMetrics {
            epoch: self.epoch,
            train_loss,
            eval_loss: evaluation.loss,
            eval: evaluation.metrics,
            examples_per_second: examples as f32 / seconds.max(1e-9),
            seconds,
            lr: self.schedule.lr_at(self.optimizer.steps()),
        };
        self.history.push(metrics.clone());
        Ok(metrics)
    }

    /// Saves a checkpoint: first the training state, `<path>.optim.safetensors` (a copy of
    /// every parameter as `model.<name>`, AdamW's moments as `exp_avg.<name>` and
    /// `exp_avg_sq.<name>`, and in its metadata the step, the epoch, the place in the epoch and
    /// the metrics so far), then the PyTorch-loadable weights at `path`. Each file is written
    /// to a temporary file and renamed, so a crash at any moment leaves whole files, and the
    /// state alone is what [`Trainer::resume`] reads: it always holds one step's weights and
    /// moments together.
    pub fn save_checkpoint(&self, path: &Path) -> Result<(), TrainError> {
        let mut state: BTreeMap<String, OwnedTensor> = BTreeMap::new();
        self.model.visit("", &mut |name, p| {
            state.insert(format!("model.{name}"), OwnedTensor::F32(p.to_owned()));
        });
        for (name, (m, v)) in self.optimizer.all_moments() {
            state.insert(format!("exp_avg.{name}"), OwnedTensor::F32(m.clone()));
            state.insert(format!("exp_avg_sq.{name}"), OwnedTensor::F32(v.clone()));
        }
        let counters = StateCounters {
            format: STATE_FORMAT.to_string(),
            step: self.optimizer.steps(),
            epoch: self.epoch,
            epoch_step: self.epoch_step,
            epoch_loss_bits: self.epoch_loss.to_bits(),
            seed: self.options.seed,
            batch_size: self.options.batch_size,
            // Wall-clock figures differ from run to run; the state file must not.
            history: self
                .history
                .iter()
                .map(EpochMetrics::without_timings)
                .collect(),
        };
        // One metadata entry: safetensors writes its metadata map in hash order, and the file
        // must have the same bytes on every run.
        let json = serde_json::to_string(&counters)
            .map_err(|e| TrainError::Checkpoint(format!("cannot encode the state: {e}")))?;
        let metadata = BTreeMap::from([(STATE_KEY.to_string(), json)]);
        write_tensors_with_metadata(optimizer_path(path), &state, &metadata)?;
        self.model.save_weights(path)?;
        Ok(())
    }

    /// Restores the training state saved by [`Trainer::save_checkpoint`] for weights at `path`
    /// (it reads `<path>.optim.safetensors` alone). The restored [`Trainer::history`] has no
    /// timings (see [`EpochMetrics::without_timings`]). Nothing changes unless all of it is whole
    /// and fits this model; a checkpoint from another seed or batch size is refused.
    pub fn resume(&mut self, path: &Path) -> Result<(), TrainError> {
        let file = TensorFile::open(optimizer_path(path))?;
        let where_ = file.path().display().to_string();
        let bad = |problem: String| {
            TrainError::from(ModelError::Weights {
                path: where_.clone(),
                problems: vec![WeightProblem::TrainingState(problem)],
            })
        };
        let text = file.metadata(STATE_KEY).ok_or_else(|| {
            bad(format!(
                "metadata `{STATE_KEY}` is missing: not a training state written by this version"
            ))
        })?;
        let counters: StateCounters = serde_json::from_str(text)
            .map_err(|e| bad(format!("metadata `{STATE_KEY}` is not valid ({e})")))?;
        if counters.format != STATE_FORMAT {
            return Err(bad(format!(
                "format {:?}, expected {STATE_FORMAT:?}",
                counters.format
            )));
        }
        for (key, theirs, ours) in [
            ("seed", counters.seed, self.options.seed),
            (
                "batch size",
                counters.batch_size as u64,
                self.options.batch_size as u64,
            ),
        ] {
            if theirs != ours {
                return Err(TrainError::Checkpoint(format!(
                    "{where_} was trained with {key} {theirs}; this run asks for {ours}: resume with the same {key}"
                )));
            }
        }
        let step = counters.step;
        let mut params = HashMap::new();
        let mut moments = HashMap::new();
        let mut problems = Vec::new();
        self.model.visit("", &mut |name, p| {
            let read = |key: String| match file.read_f32(&key) {
                Ok(t) if t.shape() != p.shape() => Err(WeightProblem::Shape {
                    found: t.shape().to_vec(),
                    name: key,
                    buffer: false,
                    expected: p.shape().to_vec(),
                }),
                Ok(t) => match t.iter().position(|v| !v.is_finite()) {
                    Some(index) => Err(WeightProblem::NonFinite { name: key, index }),
                    None => Ok(t),
                },
                Err(e) => Err(WeightProblem::Unreadable(e.to_string())),
            };
            match read(format!("model.{name}")) {
                Ok(t) => {
                    params.insert(name.to_string(), t);
                }
                Err(e) => problems.push(e),
            }
            if step == 0 || !self.model.is_trainable(name) {
                return;
            }
            match (
                read(format!("exp_avg.{name}")),
                read(format!("exp_avg_sq.{name}")),
            ) {
                (Ok(m), Ok(v)) => {
                    moments.insert(name.to_string(), (m, v));
                }
                (Err(e), _) | (_, Err(e)) => problems.push(e),
            }
        });
        if !problems.is_empty() {
            return Err(ModelError::Weights {
                path: where_,
                problems,
            }
            .into());
        }
        self.model.visit_mut("", &mut |name, mut p| {
            if let Some(v) = params.get(name) {
                p.assign(v);
            }
        });
        self.optimizer.restore(step, moments);
        self.epoch = counters.epoch;
        self.epoch_step = counters.epoch_step;
        self.epoch_loss = f64::from_bits(counters.epoch_loss_bits);
        self.history = counters.history;
        Ok(())
    }
}

/// The metadata key of a training state file, and its `format`.
const STATE_KEY: &str = "spectrans_training_state";
const STATE_FORMAT: &str = "spectrans-rs training state v1";

/// Where a run stands, kept in a training state file's metadata as JSON.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct StateCounters {
    format: String,
    step: u64,
    epoch: usize,
    epoch_step: usize,
    /// `f64::to_bits` of Σ loss over the epoch in progress: exact through JSON.
    epoch_loss_bits: u64,
    seed: u64,
    batch_size: usize,
    history: Vec<EpochMetrics>,
}

/// Where [`Trainer::save_checkpoint`] puts the optimiser state for weights at `path`.
pub fn optimizer_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".optim.safetensors");
    PathBuf::from(s)
}

//! `spectrans train --config C [--data FILE] [--epochs E] [--seed S] --output W`: every head.
//! The data's layout follows the head (see [`spectrans_train::data`]); the metrics log names
//! each epoch's evaluation metrics.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use indicatif::{ProgressBar, ProgressStyle};
use spectrans_models::Gfnet;
use spectrans_models::memory::Workload;
use spectrans_models::tensor_file::write_atomically;
use spectrans_train::data::{Dataset, Task, digits};
use spectrans_train::{EpochMetrics, TrainOptions, Trainer};

use crate::io::{MemoryArgs, load_config};

/// Arguments of `spectrans train`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The TOML model config; its head says what the data hold.
    #[arg(long)]
    pub config: PathBuf,
    /// Training data, by head: classification CSV `label,token,...` or JSON lines
    /// `{"tokens": [..], "label": n}`; regression CSV `target,token,...` or
    /// `{"tokens": [..], "target": x}`; sequence and lm `{"tokens": [..], "labels": [..]}`
    /// (-100 ignored); any head, and a gfnet_encoder only, a .safetensors file with
    /// `input_ids` or `inputs_embeds` and `targets`. Default: the embedded 8x8 digits (a
    /// classifier with 10 classes).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Passes over the training split.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Seed of the initialisation, the split, the shuffles and the dropout masks.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where to write the checkpoint (PyTorch-loadable safetensors), after every epoch.
    #[arg(long)]
    pub output: PathBuf,
    /// Resume from a checkpoint written by an earlier run (weights and optimiser state).
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Examples per step.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Peak learning rate (AdamW, linear warm-up then cosine decay).
    #[arg(long, default_value_t = 3e-3)]
    pub lr: f32,
    /// AdamW weight decay.
    #[arg(long, default_value_t = 0.01)]
    pub weight_decay: f32,
    /// Fraction of the data held out for evaluation after each epoch.
    #[arg(long, default_value_t = 0.2)]
    pub test_fraction: f64,
    /// The metrics log (JSON lines, one per epoch). Default: `<output>.metrics.jsonl`.
    #[arg(long)]
    pub metrics: Option<PathBuf>,
    /// Also write a checkpoint every this many optimisation steps (for long epochs); one is
    /// always written after each epoch.
    #[arg(long, value_name = "STEPS")]
    pub checkpoint_every: Option<usize>,
    #[command(flatten)]
    pub memory: MemoryArgs,
}

/// The metrics log path for a checkpoint path.
fn default_metrics_path(output: &Path) -> PathBuf {
    let mut s = output.as_os_str().to_owned();
    s.push(".metrics.jsonl");
    PathBuf::from(s)
}

/// Where [`train_loop`] writes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Outputs<'a> {
    /// The checkpoint (weights at this path, the training state beside it).
    pub checkpoint: Option<&'a Path>,
    /// The metrics log (JSON lines, one per completed epoch).
    pub metrics: Option<&'a Path>,
    /// Also checkpoint every this many steps inside an epoch.
    pub every: Option<usize>,
}

/// Trains `trainer` until `epochs` epochs are done, with a progress bar, and after every epoch
/// (and every `outputs.every` steps) a checkpoint and the metrics log. Returns the last
/// epoch's metrics.
pub fn train_loop(
    trainer: &mut Trainer,
    train: &Dataset,
    test: &Dataset,
    epochs: usize,
    outputs: Outputs<'_>,
) -> anyhow::Result<Option<EpochMetrics>> {
    anyhow::ensure!(
        !train.is_empty(),
        "no training examples left after the held-out split"
    );
    let mut last = None;
    let batch = trainer.options().batch_size.max(1);
    while trainer.epoch < epochs {
        let steps = train.len().div_ceil(batch) as u64;
        let bar = ProgressBar::new(steps);
        bar.set_style(
            ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("{}/{}", trainer.epoch + 1, epochs));
        let start = std::time::Instant::now();
        let first = trainer.epoch_step;
        let metrics = trainer.run_epoch_with(train, test, &mut |trainer, p| {
            let seen = ((p.done - first) * batch).min(train.len());
            let rate = seen as f64 / start.elapsed().as_secs_f64().max(1e-9);
            bar.set_position(p.done as u64);
            bar.set_message(format!("loss {:.4}, {rate:.0} examples/s", p.loss));
            match (outputs.checkpoint, outputs.every) {
                // The epoch's last step is saved below, with the epoch's metrics.
                (Some(out), Some(k)) if p.global_step % k as u64 == 0 && p.done < p.steps => {
                    trainer.save_checkpoint(out)
                }
                _ => Ok(()),
            }
        });
        bar.finish_and_clear();
        let metrics = metrics?;
        println!(
            "epoch {:>3}/{epochs}: train loss {:.4}, eval loss {:.4}{}, {:.0} examples/s, {:.1}s",
            metrics.epoch,
            metrics.train_loss,
            metrics.eval_loss,
            describe(&metrics),
            metrics.examples_per_second,
            metrics.seconds
        );
        if let Some(out) = outputs.checkpoint {
            trainer.save_checkpoint(out)?;
        }
        if let Some(p) = outputs.metrics {
            write_metrics(p, &trainer.history)?;
        }
        last = Some(metrics);
    }
    Ok(last)
}

/// The evaluation metrics for the epoch line: `, eval accuracy 97.50%, eval r2 0.9312`.
fn describe(metrics: &EpochMetrics) -> String {
    metrics
        .eval
        .iter()
        .map(|(name, &v)| {
            let label = name.replace('_', " ");
            if name.ends_with("accuracy") {
                format!(", {label} {:.2}%", v * 100.0)
            } else {
                format!(", {label} {v:.4}")
            }
        })
        .collect()
}

/// Copies the timings of the epochs a resumed checkpoint holds from the metrics log the
/// interrupted run wrote (the training state keeps none); epochs the log lacks keep `null`.
fn restore_timings(history: &mut [EpochMetrics], log: &Path) {
    let Ok(text) = std::fs::read_to_string(log) else {
        return;
    };
    let logged: Vec<EpochMetrics> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    for m in history.iter_mut() {
        if let Some(l) = logged.iter().find(|l| l.epoch == m.epoch) {
            m.seconds = l.seconds;
            m.examples_per_second = l.examples_per_second;
        }
    }
}

/// Writes the metrics log: one JSON line per completed epoch, from the trainer's history (so
/// after a resume it holds exactly the epochs the checkpoint has).
fn write_metrics(path: &Path, history: &[EpochMetrics]) -> anyhow::Result<()> {
    let mut log = String::new();
    for m in history {
        log.push_str(&serde_json::to_string(m)?);
        log.push('\n');
    }
    write_atomically(path, log.as_bytes())?;
    Ok(())
}

/// Loads data, builds or resumes the model, and trains.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = load_config(&args.config)?;
    let task = Task::of(&config);
    let data = match &args.data {
        Some(p) => Dataset::load_for(p, task)?,
        None if task == Task::Classification => digits(),
        None => bail!(
            "the model's head does {}: give --data (the embedded digits are for classification)",
            task.name()
        ),
    };
    data.check_fits(&config)?;
    anyhow::ensure!(args.batch_size > 0, "--batch-size must be at least 1");
    anyhow::ensure!(
        (0.0..1.0).contains(&args.test_fraction),
        "--test-fraction must be in [0, 1), got {}",
        args.test_fraction
    );
    anyhow::ensure!(
        args.checkpoint_every != Some(0),
        "--checkpoint-every must be at least 1"
    );
    let seq_len = data.seq_len;
    args.memory.check(
        &config,
        Workload::Training {
            batch: args.batch_size,
            seq_len,
        },
        &format!(
            "training with batches of {} x {seq_len} tokens",
            args.batch_size
        ),
    )?;
    let (train, test) = data.split(args.test_fraction, args.seed);
    let model = Gfnet::new(&config, args.seed)?;
    let options = TrainOptions {
        epochs: args.epochs,
        batch_size: args.batch_size,
        lr: args.lr,
        weight_decay: args.weight_decay,
        seed: args.seed,
        ..TrainOptions::default()
    };
    let steps = train.len().div_ceil(args.batch_size);
    let mut trainer = Trainer::new(model, options, steps);
    let metrics = args
        .metrics
        .clone()
        .unwrap_or_else(|| default_metrics_path(&args.output));
    if let Some(ckpt) = &args.resume {
        trainer.resume(ckpt)?;
        restore_timings(&mut trainer.history, &metrics);
        if trainer.epoch_step > 0 {
            println!(
                "resumed from {} at epoch {}, step {} of it",
                ckpt.display(),
                trainer.epoch + 1,
                trainer.epoch_step
            );
        } else {
            println!("resumed from {} at epoch {}", ckpt.display(), trainer.epoch);
        }
    }
    println!(
        "training {} on {} examples, evaluating on {} ({} tokens each), {} epochs",
        task.name(),
        train.len(),
        test.len(),
        data.seq_len,
        args.epochs
    );
    train_loop(
        &mut trainer,
        &train,
        &test,
        args.epochs,
        Outputs {
            checkpoint: Some(&args.output),
            metrics: Some(&metrics),
            every: args.checkpoint_every,
        },
    )?;
    println!(
        "checkpoint: {}; metrics: {}",
        args.output.display(),
        metrics.display()
    );
    Ok(ExitCode::SUCCESS)
}

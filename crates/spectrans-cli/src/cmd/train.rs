//! `spectrans train --config C [--data FILE] [--epochs E] [--seed S] --output W`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use spectrans_config::{Config, OutputType, PositionalEncodingType};
use spectrans_models::data::{digits, Dataset};
use spectrans_models::tensor_file::write_atomically;
use spectrans_models::{EpochMetrics, Gfnet, TrainOptions, Trainer};

use crate::io::load_config;

/// Arguments of `spectrans train`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The TOML model config (a classifier: output_type classification with num_classes).
    #[arg(long)]
    pub config: PathBuf,
    /// Training data: CSV (`label,token,...`) or JSON lines (`{"tokens": [..], "label": n}`).
    /// Default: the embedded 8x8 digits.
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
}

/// Checks that the data fit the model.
pub fn check_data(config: &Config, data: &Dataset) -> anyhow::Result<()> {
    if config.output_type() != OutputType::Classification || config.num_classes().is_none() {
        bail!("training needs a classifier: model.output_type = \"classification\" with model.num_classes");
    }
    let classes = config.num_classes().unwrap_or(0);
    if data.num_classes() > classes {
        bail!(
            "the data have labels up to {}, but model.num_classes = {classes}",
            data.num_classes() - 1
        );
    }
    match config.vocab_size() {
        Some(v) if data.vocab_size() > v => bail!(
            "the data have token ids up to {}, but model.vocab_size = {v}",
            data.vocab_size() - 1
        ),
        Some(_) => {}
        None => bail!("training on token ids needs model.vocab_size"),
    }
    let table = matches!(
        config.positional_encoding(),
        PositionalEncodingType::Sinusoidal | PositionalEncodingType::Learned
    );
    if table && data.seq_len > config.sequence_length() {
        bail!(
            "the data's sequences have {} tokens, longer than model.sequence_length = {}",
            data.seq_len,
            config.sequence_length()
        );
    }
    Ok(())
}

/// The metrics log path for a checkpoint path.
fn default_metrics_path(output: &Path) -> PathBuf {
    let mut s = output.as_os_str().to_owned();
    s.push(".metrics.jsonl");
    PathBuf::from(s)
}

/// Trains `trainer` until `epochs` epochs are done, with a progress bar, a checkpoint and a
/// metrics line after every epoch. Returns the last epoch's metrics.
pub fn train_loop(
    trainer: &mut Trainer,
    train: &Dataset,
    test: &Dataset,
    epochs: usize,
    output: Option<&Path>,
    metrics_path: Option<&Path>,
) -> anyhow::Result<Option<EpochMetrics>> {
    let mut log = match metrics_path {
        Some(p) if trainer.epoch > 0 && p.exists() => {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
        }
        _ => String::new(),
    };
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
        let mut seen = 0usize;
        let metrics = trainer.run_epoch(train, test, &mut |done, _, loss| {
            seen = (done * batch).min(train.len());
            let rate = seen as f64 / start.elapsed().as_secs_f64().max(1e-9);
            bar.set_position(done as u64);
            bar.set_message(format!("loss {loss:.4}, {rate:.0} examples/s"));
        })?;
        bar.finish_and_clear();
        println!(
            "epoch {:>3}/{epochs}: train loss {:.4}, eval loss {:.4}, eval accuracy {:.2}%, {:.0} examples/s, {:.1}s",
            metrics.epoch,
            metrics.train_loss,
            metrics.eval_loss,
            metrics.eval_accuracy * 100.0,
            metrics.examples_per_second,
            metrics.seconds
        );
        if let Some(out) = output {
            trainer.save_checkpoint(out)?;
        }
        if let Some(p) = metrics_path {
            log.push_str(&serde_json::to_string(&metrics)?);
            log.push('\n');
            write_atomically(p, log.as_bytes())?;
        }
        last = Some(metrics);
    }
    Ok(last)
}

/// Loads data, builds or resumes the model, and trains.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = load_config(&args.config)?;
    let data = match &args.data {
        Some(p) => Dataset::load(p)?,
        None => digits(),
    };
    check_data(&config, &data)?;
    anyhow::ensure!(args.batch_size > 0, "--batch-size must be at least 1");
    anyhow::ensure!(
        (0.0..1.0).contains(&args.test_fraction),
        "--test-fraction must be in [0, 1), got {}",
        args.test_fraction
    );
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
    if let Some(ckpt) = &args.resume {
        trainer.resume(ckpt)?;
        println!("resumed from {} at epoch {}", ckpt.display(), trainer.epoch);
    }
    println!(
        "training on {} examples, evaluating on {} ({} tokens each), {} epochs",
        train.len(),
        test.len(),
        data.seq_len,
        args.epochs
    );
    let metrics = args
        .metrics
        .clone()
        .unwrap_or_else(|| default_metrics_path(&args.output));
    train_loop(
        &mut trainer,
        &train,
        &test,
        args.epochs,
        Some(&args.output),
        Some(&metrics),
    )?;
    println!(
        "checkpoint: {}; metrics: {}",
        args.output.display(),
        metrics.display()
    );
    Ok(ExitCode::SUCCESS)
}

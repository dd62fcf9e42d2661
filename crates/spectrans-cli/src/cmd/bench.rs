//! `spectrans bench --config C --batch B [--seq-len N] [--iters K] [--threads T] [--idle-ms MS]
//! [--train] --json`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use ndarray::{Array2, Array3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use spectrans_config::Config;
use spectrans_layers::TrainContext;
use spectrans_models::memory::Workload;
use spectrans_models::{Gfnet, ModelInput};
use spectrans_train::{LossKind, Targets, Trainer, compute_gradients};

use crate::io::{MemoryArgs, PrecisionArgs, load_config};

/// Arguments of `spectrans bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The TOML model config.
    #[arg(long)]
    pub config: PathBuf,
    /// Sequences per batch.
    #[arg(long)]
    pub batch: usize,
    /// Tokens per sequence (default: the config's sequence_length).
    #[arg(long)]
    pub seq_len: Option<usize>,
    /// Timed runs after the warm-up; the median is reported.
    #[arg(long, default_value_t = 10)]
    pub iters: usize,
    /// Worker threads (default: all cores, or RAYON_NUM_THREADS).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Sleep this long before each timed run, so each meets what a request at low load
    /// meets: caches that other work has used in the meantime (default 0: back to back).
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub idle_ms: u64,
    /// Time a training step (forward, cross-entropy or MSE, backward, AdamW) instead.
    #[arg(long)]
    pub train: bool,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub memory: MemoryArgs,
    #[command(flatten)]
    pub precision: PrecisionArgs,
}

/// Peak resident memory of this process in MiB (Linux: VmHWM), if known.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Random inputs of the model's kind: ids when it has an embedding, else embeddings.
fn random_input(
    config: &Config,
    batch: usize,
    n: usize,
    rng: &mut ChaCha8Rng,
) -> (Option<Array2<i64>>, Option<Array3<f32>>) {
    match (config.vocab_size(), config.model_type()) {
        (Some(v), spectrans_config::ModelType::Gfnet) => (
            Some(Array2::from_shape_fn((batch, n), |_| {
                rng.gen_range(0..v as i64)
            })),
            None,
        ),
        _ => (
            None,
            Some(Array3::from_shape_fn(
                (batch, n, config.hidden_dim()),
                |_| rng.gen_range(-1.0f32..1.0),
            )),
        ),
    }
}

/// Times the model and prints the result.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(t) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()
            .context("cannot set the thread count")?;
    }
    anyhow::ensure!(args.batch > 0, "--batch must be at least 1");
    anyhow::ensure!(args.iters > 0, "--iters must be at least 1");
    let config = load_config(&args.config)?;
    let n = args.seq_len.unwrap_or(config.sequence_length());
    anyhow::ensure!(n > 0, "--seq-len must be at least 1");
    let (batch, seq_len) = (args.batch, n);
    let (workload, what) = if args.train {
        (Workload::Training { batch, seq_len }, "a training step")
    } else {
        (Workload::Inference { batch, seq_len }, "a forward pass")
    };
    args.memory.check(
        &config,
        workload,
        &format!("{what} of {batch} x {seq_len} tokens"),
    )?;
    if args.train {
        anyhow::ensure!(
            args.precision.precision == spectrans_models::Precision::F32,
            "--train runs in f32; --precision applies to forwards"
        );
    }
    let model = Gfnet::with_precision(&config, 0, args.precision.note())?;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let (ids, embeds) = random_input(&config, args.batch, n, &mut rng);
    let input = match (&ids, &embeds) {
        (Some(ids), _) => ModelInput::TokenIds(ids.view()),
        (None, Some(e)) => ModelInput::Embeddings(e.view()),
        (None, None) => anyhow::bail!("no input could be made for this config"),
    };
    let mut times = Vec::with_capacity(args.iters);
    let idle = std::time::Duration::from_millis(args.idle_ms);
    let pause = |timed: bool| {
        if timed && !idle.is_zero() {
            std::thread::sleep(idle);
        }
    };
    if args.train {
        let probe = model.forward(input, None)?.into_dyn();
        let classes = config.head_output_dim().filter(|_| {
            probe.ndim() >= 2 && config.output_type() != spectrans_config::OutputType::Regression
        });
        let class_targets = classes.map(|c| {
            let shape = &probe.shape()[..probe.ndim() - 1];
            ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(shape), |_| rng.gen_range(0..c as i64))
        });
        let value_targets = probe.mapv(|_| rng.gen_range(-1.0f32..1.0));
        let mut trainer = Trainer::new(model, Default::default(), args.iters + 2);
        let mut ctx = TrainContext::new(0, true);
        let mut warmup = Warmup::new();
        while times.len() < args.iters {
            let timed = warmup.is_over();
            pause(timed);
            let start = Instant::now();
            let (targets, kind) = match &class_targets {
                Some(t) => (Targets::Classes(t.view()), LossKind::CrossEntropy),
                None => (Targets::Values(value_targets.view()), LossKind::Mse),
            };
            let (_, grads) =
                compute_gradients(&trainer.model, input, None, targets, kind, &mut ctx)?;
            trainer.apply(&grads)?;
            if timed {
                times.push(start.elapsed().as_secs_f64() * 1e3);
            } else {
                warmup.ran();
            }
        }
    } else {
        let mut warmup = Warmup::new();
        while times.len() < args.iters {
            let timed = warmup.is_over();
            pause(timed);
            let start = Instant::now();
            let out = model.forward(input, None)?;
            std::hint::black_box(&out);
            if timed {
                times.push(start.elapsed().as_secs_f64() * 1e3);
            } else {
                warmup.ran();
            }
        }
    }
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    let med = median(times);
    let key = if args.train {
        "train_step_ms"
    } else {
        "forward_ms"
    };
    let tokens_per_s = (args.batch * n) as f64 / (med / 1e3);
    if args.json {
        let json = serde_json::json!({
            "impl": "spectrans-rs",
            "precision": args.precision.precision.as_str(),
            key: med,
            "min_ms": min,
            "iters": args.iters,
            "idle_ms": args.idle_ms,
            "threads": rayon::current_num_threads(),
            "batch": args.batch,
            "seq_len": n,
            "hidden_dim": config.hidden_dim(),
            "num_layers": config.num_layers(),
            "tokens_per_s": tokens_per_s,
            "peak_rss_mb": peak_rss_mb(),
        });
        println!("{json}");
    } else {
        println!(
            "{key}: {med:.3} (min {min:.3}) over {} runs, batch {} x seq {} x hidden {}, {} layers, {} threads: {:.0} tokens/s",
            args.iters,
            args.batch,
            n,
            config.hidden_dim(),
            config.num_layers(),
            rayon::current_num_threads(),
            tokens_per_s
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The untimed runs before the timed ones: at least [`Warmup::RUNS`] of them, for at least
/// [`Warmup::TIME`] (a 3 ms forward is not warm after two runs: its threads, caches and
/// scratch buffers are not). `xtask/python/bench_torch.py` warms PyTorch up by the same rule.
struct Warmup {
    started: Instant,
    runs: usize,
}

impl Warmup {
    const RUNS: usize = 2;
    const TIME: std::time::Duration = std::time::Duration::from_millis(200);

    fn new() -> Self {
        Self {
            started: Instant::now(),
            runs: 0,
        }
    }

    /// Whether the next run is timed.
    fn is_over(&self) -> bool {
        self.runs >= Self::RUNS && self.started.elapsed() >= Self::TIME
    }

    /// Counts one untimed run.
    fn ran(&mut self) {
        self.runs += 1;
    }
}

//! The engine: a queue of sequences, a batcher that groups sequences of equal length under a
//! token budget, and one worker that runs each batch on a dedicated rayon pool.
//!
//! A GFNet's global filter mixes every position of a sequence, so padding a sequence into a
//! longer batch changes its answer. The batcher therefore only puts sequences of the same
//! length (and the same "has a mask" flag) into one batch; each row's answer is then exactly
//! what [`Gfnet::forward`] gives for that sequence alone (see docs/serving.md).

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ndarray::{Array2, Axis};
use spectrans_models::{Gfnet, ModelInput};
use tokio::sync::oneshot;

use crate::metrics::Metrics;

/// One sequence to run: token ids and an optional attention mask of the same length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequence {
    /// Token ids, each in `[0, vocab_size)`.
    pub ids: Vec<i64>,
    /// Which tokens count (`true` = keep); `None` runs the model without a mask.
    pub mask: Option<Vec<bool>>,
}

/// One sequence's output, without the batch axis: `(C,)` for per-sequence heads, `(N, C)`
/// per token, `(N, D)` hidden states.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceOutput {
    /// The shape of `values` (row-major).
    pub shape: Vec<usize>,
    /// The values, row-major.
    pub values: Vec<f32>,
}

/// Why the engine could not answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    /// The engine was shut down before the request was queued.
    #[error("the engine is shutting down and accepts no new work")]
    ShuttingDown,
    /// The engine could not be built.
    #[error("invalid engine settings: {0}")]
    Settings(String),
    /// The model failed on a batch (a bug: inputs are validated before they are queued).
    #[error("the model failed on a batch: {0}")]
    Model(String),
}

/// What a submitted request resolves to: one output per sequence, in order.
pub type Reply = oneshot::Receiver<Result<Vec<SequenceOutput>, EngineError>>;

/// Settings of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Threads of the rayon pool that runs the model (the only threads doing model work).
    pub threads: usize,
    /// Most tokens (rows x length) in one batch; a longer single sequence runs alone.
    pub max_batch_tokens: usize,
    /// How long the batcher waits for more sequences once it has one, when the batch is not
    /// full. Zero: run as soon as the worker is free (sequences that arrive while a batch runs
    /// are still batched together).
    pub max_wait: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            max_batch_tokens: 4096,
            max_wait: Duration::ZERO,
        }
    }
}

/// Where a request's answer goes.
type ReplySender = oneshot::Sender<Result<Vec<SequenceOutput>, EngineError>>;

/// The answer being gathered for one request.
struct Pending {
    outputs: Mutex<Vec<Option<SequenceOutput>>>,
    remaining: AtomicUsize,
    reply: Mutex<Option<ReplySender>>,
}

impl Pending {
    fn fail(&self, err: EngineError) {
        if let Some(tx) = self.reply.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = tx.send(Err(err));
        }
    }

    fn fill(&self, slot: usize, out: SequenceOutput) {
        let mut outs = self.outputs.lock().unwrap_or_else(|e| e.into_inner());
        outs[slot] = Some(out);
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            let all: Option<Vec<_>> = outs.iter_mut().map(Option::take).collect();
            drop(outs);
            if let (Some(all), Some(tx)) = (
                all,
                self.reply.lock().unwrap_or_else(|e| e.into_inner()).take(),
            ) {
                let _ = tx.send(Ok(all));
            }
        }
    }
}

/// One queued sequence.
struct Job {
    seq: Sequence,
    slot: usize,
    pending: Arc<Pending>,
}

struct Inner {
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    worker: Mutex<Option<JoinHandle<()>>>,
    queued: Arc<AtomicUsize>,
    model: Arc<Gfnet>,
    pool: Arc<rayon::ThreadPool>,
    config: EngineConfig,
}

/// The inference engine (cheap to clone: every clone feeds the same queue and worker).
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.inner.config)
            .field("queued", &self.queued())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Starts the worker thread and the model's rayon pool of `config.threads` threads.
    pub fn new(
        model: Gfnet,
        config: EngineConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Self, EngineError> {
        if config.threads == 0 {
            return Err(EngineError::Settings("threads must be at least 1".into()));
        }
        if config.max_batch_tokens == 0 {
            return Err(EngineError::Settings(
                "max_batch_tokens must be at least 1".into(),
            ));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(config.threads)
            .thread_name(|i| format!("spectrans-model-{i}"))
            .build()
            .map_err(|e| EngineError::Settings(format!("cannot start the model threads: {e}")))?;
        let pool = Arc::new(pool);
        let model = Arc::new(model);
        let queued = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::channel::<Job>();
        let worker = {
            let model = Arc::clone(&model);
            let pool = Arc::clone(&pool);
            let queued = Arc::clone(&queued);
            let config = config.clone();
            std::thread::Builder::new()
                .name("spectrans-batcher".into())
                .spawn(move || batcher(rx, &model, &pool, &config, &queued, &metrics))
                .map_err(|e| EngineError::Settings(format!("cannot start the batcher: {e}")))?
        };
        Ok(Engine {
            inner: Arc::new(Inner {
                sender: Mutex::new(Some(tx)),
                worker: Mutex::new(Some(worker)),
                queued,
                model,
                pool,
                config,
            }),
        })
    }

    /// The model this engine runs.
    pub fn model(&self) -> &Gfnet {
        &self.inner.model
    }

    /// The settings in force.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Sequences queued and not yet taken into a batch.
    pub fn queued(&self) -> usize {
        self.inner.queued.load(Ordering::Relaxed)
    }

    /// Runs `f` on the model's rayon pool (what the worker does for each batch): for callers
    /// that want a reference result computed on the same threads, e.g. a batch-1 forward.
    pub fn install<R: Send>(&self, f: impl FnOnce(&Gfnet) -> R + Send) -> R {
        let model = &self.inner.model;
        self.inner.pool.install(|| f(model))
    }

    /// Queues every sequence of one request; the reply resolves once all have run. The
    /// sequences must already be valid for the model (ids in range, lengths accepted, masks
    /// of the same length keeping at least one token).
    pub fn submit(&self, sequences: Vec<Sequence>) -> Result<Reply, EngineError> {
        let (tx, rx) = oneshot::channel();
        let n = sequences.len();
        let pending = Arc::new(Pending {
            outputs: Mutex::new(vec![None; n]),
            remaining: AtomicUsize::new(n),
            reply: Mutex::new(Some(tx)),
        });
        if n == 0 {
            pending.fail(EngineError::Model("a request without sequences".into()));
            return Ok(rx);
        }
        let guard = self.inner.sender.lock().unwrap_or_else(|e| e.into_inner());
        let Some(sender) = guard.as_ref() else {
            return Err(EngineError::ShuttingDown);
        };
        self.inner.queued.fetch_add(n, Ordering::Relaxed);
        for (slot, seq) in sequences.into_iter().enumerate() {
            let job = Job {
                seq,
                slot,
                pending: Arc::clone(&pending),
            };
            if sender.send(job).is_err() {
                pending.fail(EngineError::ShuttingDown);
                return Err(EngineError::ShuttingDown);
            }
        }
        Ok(rx)
    }

    /// Stops taking work, lets the worker finish every queued sequence, and waits for it.
    /// Idempotent.
    pub fn shutdown(&self) {
        drop(
            self.inner
                .sender
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(),
        );
        let handle = self
            .inner
            .worker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

/// The batcher and worker loop: takes sequences in arrival order up to the token budget
/// (waiting at most `max_wait` for more), groups them by (length, has mask), and runs each
/// group in batches of at most `max_batch_tokens` tokens.
fn batcher(
    rx: mpsc::Receiver<Job>,
    model: &Gfnet,
    pool: &rayon::ThreadPool,
    config: &EngineConfig,
    queued: &AtomicUsize,
    metrics: &Metrics,
) {
    let budget = config.max_batch_tokens;
    while let Ok(first) = rx.recv() {
        let mut tokens = first.seq.ids.len();
        let mut jobs = vec![first];
        let mut open = true;
        while tokens < budget {
            match rx.try_recv() {
                Ok(job) => {
                    tokens += job.seq.ids.len();
                    jobs.push(job);
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        if open && !config.max_wait.is_zero() {
            let deadline = Instant::now() + config.max_wait;
            while tokens < budget {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                match rx.recv_timeout(left) {
                    Ok(job) => {
                        tokens += job.seq.ids.len();
                        jobs.push(job);
                    }
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                }
            }
        }
        let left = queued.fetch_sub(jobs.len(), Ordering::Relaxed) - jobs.len();
        metrics.set_queue_depth(left);

        let mut groups: BTreeMap<(usize, bool), Vec<Job>> = BTreeMap::new();
        for job in jobs {
            groups
                .entry((job.seq.ids.len(), job.seq.mask.is_some()))
                .or_default()
                .push(job);
        }
        for ((len, _), group) in groups {
            let rows = (budget / len).max(1);
            let mut group = group.into_iter().peekable();
            while group.peek().is_some() {
                let batch: Vec<Job> = group.by_ref().take(rows).collect();
                run_batch(model, pool, batch, len, metrics);
            }
        }
    }
}

/// Runs one batch of equal-length sequences and hands each row to its request.
fn run_batch(
    model: &Gfnet,
    pool: &rayon::ThreadPool,
    batch: Vec<Job>,
    len: usize,
    metrics: &Metrics,
) {
    let rows = batch.len();
    let ids = Array2::from_shape_fn((rows, len), |(r, c)| batch[r].seq.ids[c]);
    let mask = batch[0].seq.mask.is_some().then(|| {
        Array2::from_shape_fn((rows, len), |(r, c)| {
            batch[r].seq.mask.as_ref().is_some_and(|m| m[c])
        })
    });
    let started = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(|| {
        pool.install(|| {
            model.forward(
                ModelInput::TokenIds(ids.view()),
                mask.as_ref().map(|m| m.view()),
            )
        })
    }));
    let elapsed = started.elapsed();
    metrics.observe_batch(rows, rows * len, elapsed);
    tracing::debug!(rows, len, forward_ms = elapsed.as_secs_f64() * 1e3, "batch");
    let out = match result {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => {
            tracing::error!(error = %e, rows, len, "model failed on a batch");
            for job in &batch {
                job.pending.fail(EngineError::Model(e.to_string()));
            }
            return;
        }
        Err(_) => {
            tracing::error!(rows, len, "model panicked on a batch");
            for job in &batch {
                job.pending
                    .fail(EngineError::Model("the model panicked".into()));
            }
            return;
        }
    };
    let shape = out.shape()[1..].to_vec();
    for (r, job) in batch.into_iter().enumerate() {
        let row = out.index_axis(Axis(0), r);
        let values: Vec<f32> = row.iter().copied().collect();
        job.pending.fill(
            job.slot,
            SequenceOutput {
                shape: shape.clone(),
                values,
            },
        );
    }
}

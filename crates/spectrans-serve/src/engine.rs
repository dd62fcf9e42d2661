//! The engine: a queue of sequences, a batcher that groups sequences of equal length under a
//! token budget, and one worker that runs each batch on a dedicated rayon pool.
//!
//! The batcher's thread is itself thread 0 of that pool (rayon's `use_current_thread`), so a
//! batch starts on the thread that formed it: no hand-off to a pool thread and back, which
//! after idleness meant two more thread wake-ups per request.
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

/// A call of [`Engine::install`], run by the worker between batches.
type Call = Box<dyn FnOnce(&Gfnet) + Send>;

/// What the worker takes from its queue.
enum Work {
    Sequence(Job),
    Call(Call),
}

struct Inner {
    sender: Mutex<Option<mpsc::Sender<Work>>>,
    worker: Mutex<Option<JoinHandle<()>>>,
    queued: Arc<AtomicUsize>,
    model: Arc<Gfnet>,
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
    /// Starts the worker thread and the model's rayon pool of `config.threads` threads, the
    /// worker being the pool's thread 0.
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
        let model = Arc::new(model);
        let queued = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::channel::<Work>();
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<(), EngineError>>(1);
        let worker = {
            let model = Arc::clone(&model);
            let queued = Arc::clone(&queued);
            let config = config.clone();
            std::thread::Builder::new()
                .name("spectrans-batcher".into())
                .spawn(move || {
                    // This thread joins the pool as its thread 0 (rayon leaks that thread's
                    // small per-thread record when it ends: once per engine).
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(config.threads)
                        .thread_name(|i| format!("spectrans-model-{i}"))
                        .use_current_thread()
                        .build();
                    let pool = match pool {
                        Ok(pool) => {
                            let _ = ready_tx.send(Ok(()));
                            pool
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(EngineError::Settings(format!(
                                "cannot start the model threads: {e}"
                            ))));
                            return;
                        }
                    };
                    batcher(rx, &model, &pool, &config, &queued, &metrics);
                })
                .map_err(|e| EngineError::Settings(format!("cannot start the batcher: {e}")))?
        };
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = worker.join();
                return Err(e);
            }
            Err(_) => {
                let _ = worker.join();
                return Err(EngineError::Settings(
                    "the batcher stopped while starting".into(),
                ));
            }
        }
        Ok(Engine {
            inner: Arc::new(Inner {
                sender: Mutex::new(Some(tx)),
                worker: Mutex::new(Some(worker)),
                queued,
                model,
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

    /// Runs `f` on the model's rayon pool, on the worker's thread as for a batch, in turn
    /// with the batches queued before it, and waits for its result: for callers that want a
    /// reference result computed on the same threads, e.g. a batch-1 forward.
    ///
    /// Fails with [`EngineError::ShuttingDown`] once the engine was shut down, and with
    /// [`EngineError::Model`] if `f` panics.
    pub fn install<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Gfnet) -> R + Send + 'static,
    ) -> Result<R, EngineError> {
        let (tx, rx) = mpsc::sync_channel::<R>(1);
        let call: Call = Box::new(move |model| {
            let _ = tx.send(f(model));
        });
        {
            let guard = self.inner.sender.lock().unwrap_or_else(|e| e.into_inner());
            let sender = guard.as_ref().ok_or(EngineError::ShuttingDown)?;
            sender
                .send(Work::Call(call))
                .map_err(|_| EngineError::ShuttingDown)?;
        }
        rx.recv()
            .map_err(|_| EngineError::Model("the installed function panicked".into()))
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
            if sender.send(Work::Sequence(job)).is_err() {
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

/// Runs an [`Engine::install`] call on the pool (inline: this thread is the pool's thread 0).
fn run_call(model: &Gfnet, pool: &rayon::ThreadPool, call: Call) {
    if catch_unwind(AssertUnwindSafe(|| pool.install(|| call(model)))).is_err() {
        tracing::error!("a function installed on the engine panicked");
    }
}

/// The batcher and worker loop: takes sequences in arrival order up to the token budget
/// (waiting at most `max_wait` for more), groups them by (length, has mask), and runs each
/// group in batches of at most `max_batch_tokens` tokens. An [`Engine::install`] call ends
/// the gathering: it runs after the batches of the sequences queued before it.
fn batcher(
    rx: mpsc::Receiver<Work>,
    model: &Gfnet,
    pool: &rayon::ThreadPool,
    config: &EngineConfig,
    queued: &AtomicUsize,
    metrics: &Metrics,
) {
    let budget = config.max_batch_tokens;
    while let Ok(work) = rx.recv() {
        let first = match work {
            Work::Sequence(job) => job,
            Work::Call(call) => {
                run_call(model, pool, call);
                continue;
            }
        };
        let mut tokens = first.seq.ids.len();
        let mut jobs = vec![first];
        let mut open = true;
        let mut call = None;
        while tokens < budget {
            match rx.try_recv() {
                Ok(Work::Sequence(job)) => {
                    tokens += job.seq.ids.len();
                    jobs.push(job);
                }
                Ok(Work::Call(c)) => {
                    call = Some(c);
                    break;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        if open && call.is_none() && !config.max_wait.is_zero() {
            let deadline = Instant::now() + config.max_wait;
            while tokens < budget {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                match rx.recv_timeout(left) {
                    Ok(Work::Sequence(job)) => {
                        tokens += job.seq.ids.len();
                        jobs.push(job);
                    }
                    Ok(Work::Call(c)) => {
                        call = Some(c);
                        break;
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
        if let Some(call) = call {
            run_call(model, pool, call);
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
    // Runs inline: this thread is the pool's thread 0; the others join in as the model splits.
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
        Ok(Ok(out)) => out.into_dyn(),
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

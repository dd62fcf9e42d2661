//! `spectrans serve --config C --weights W [--tokenizer T] [--host H] [--port P] ...`: an HTTP
//! server around the model (see docs/serving.md for the contract).

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use spectrans_models::Gfnet;
use spectrans_models::memory::Workload;
use spectrans_serve::{AppState, Engine, EngineConfig, HttpLimits, Metrics, PadTo, Preprocessor};

use crate::io::{MemoryArgs, PrecisionArgs, load_config};

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The model, tokenizer, padding and batching flags `serve` and `predict` share.
#[derive(Debug, clap::Args)]
pub struct EngineArgs {
    /// The TOML model config.
    #[arg(long)]
    pub config: PathBuf,
    /// The weights (safetensors, PyTorch state_dict names).
    #[arg(long)]
    pub weights: PathBuf,
    /// A Hugging Face `tokenizer.json`: lets requests send text. Its special tokens and
    /// truncation apply (the maximum length capped at the model's sequence_length); its
    /// fixed-length padding, if any, applies like --pad-to.
    #[arg(long, value_name = "tokenizer.json")]
    pub tokenizer: Option<PathBuf>,
    /// Threads running the model (a rayon pool of its own; HTTP runs on other threads).
    /// Default: the number of cores.
    #[arg(long, value_name = "N", default_value_t = default_threads())]
    pub threads: usize,
    /// Most tokens (sequences x length) in one model batch. Only sequences of equal length
    /// share a batch; a single sequence longer than this runs alone.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub max_batch_tokens: usize,
    /// How long the batcher waits for more sequences once it has one and the batch is not
    /// full. 0: run as soon as the model is free (requests that arrive while a batch runs
    /// are batched together anyway).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub max_wait_ms: u64,
    /// Pad every sequence (and its attention mask) to one length: `max` (the model's
    /// sequence_length) or a number, for models trained on inputs padded to a fixed length.
    /// Sequences then all share one length and batch freely; each answer equals `forward`
    /// on the padded sequence alone.
    #[arg(long, value_name = "max|N")]
    pub pad_to: Option<PadTo>,
    /// The token id of a pad (default: the tokenizer's pad id, else 0).
    #[arg(long, value_name = "ID", requires = "pad_to")]
    pub pad_id: Option<i64>,
    #[command(flatten)]
    pub memory: MemoryArgs,
    #[command(flatten)]
    pub precision: PrecisionArgs,
}

impl EngineArgs {
    /// Loads the model and the tokenizer and starts the engine.
    pub fn start(&self) -> anyhow::Result<(Engine, Preprocessor, Arc<Metrics>)> {
        if self.threads == 0 {
            bail!("--threads 0: expected at least 1");
        }
        if self.max_batch_tokens == 0 {
            bail!("--max-batch-tokens 0: expected at least 1");
        }
        let config = load_config(&self.config)?;
        let seq_len = config.sequence_length();
        let rows = (self.max_batch_tokens / seq_len).max(1);
        self.memory.check(
            &config,
            Workload::Inference {
                batch: rows,
                seq_len,
            },
            &format!("a batch of --max-batch-tokens {}", self.max_batch_tokens),
        )?;
        let model =
            Gfnet::from_weights_with_precision(&config, &self.weights, self.precision.note())
                .with_context(|| format!("cannot load {}", self.weights.display()))?;
        let mut pre = Preprocessor::new(config.vocab_size(), seq_len);
        if let Some(path) = &self.tokenizer {
            pre = pre.with_tokenizer_file(path)?;
        }
        if let Some(pad_to) = self.pad_to {
            pre = pre.pad(pad_to, self.pad_id).map_err(anyhow::Error::msg)?;
        }
        let metrics = Arc::new(Metrics::new());
        let engine = Engine::new(
            model,
            EngineConfig {
                threads: self.threads,
                max_batch_tokens: self.max_batch_tokens,
                max_wait: Duration::from_millis(self.max_wait_ms),
            },
            Arc::clone(&metrics),
        )?;
        Ok((engine, pre, metrics))
    }
}

/// Arguments of `spectrans serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Address to listen on (0.0.0.0 for every interface).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on; 0 picks a free one (the `listening on` line names it).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// `POST /predict` requests accepted and not yet answered; one more answers 429 with
    /// Retry-After. Bounds the queue, and so the latency of accepted requests under overload.
    #[arg(long, value_name = "N", default_value_t = 12)]
    pub max_concurrent_requests: usize,
    /// Largest request body in bytes; a larger one answers 413.
    #[arg(long, value_name = "N", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Longest time one request may take before it answers 408.
    #[arg(long, value_name = "MS", default_value_t = 60_000)]
    pub request_timeout_ms: u64,
    /// Threads handling HTTP (parsing, JSON); the model runs on --threads others.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub http_threads: usize,
    /// Log level on stderr: error, warn, info, debug or trace (debug logs every batch).
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    pub log_level: tracing_subscriber::filter::LevelFilter,
}

/// Serves until SIGTERM or SIGINT, then finishes the accepted requests and exits 0.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(args.log_level)
        .with_target(false)
        .try_init()
        .ok();
    if args.max_concurrent_requests == 0 {
        bail!("--max-concurrent-requests 0: expected at least 1");
    }
    if args.max_body_bytes == 0 {
        bail!("--max-body-bytes 0: expected at least 1");
    }
    if args.http_threads == 0 {
        bail!("--http-threads 0: expected at least 1");
    }
    let addr: SocketAddr = (args.host.as_str(), args.port)
        .to_socket_addrs()
        .with_context(|| format!("--host {}: not an address or a known host name", args.host))?
        .next()
        .with_context(|| format!("--host {}: resolves to no address", args.host))?;
    let (engine, pre, metrics) = args.engine.start()?;
    let limits = HttpLimits {
        max_concurrent_requests: args.max_concurrent_requests,
        max_body_bytes: args.max_body_bytes,
        request_timeout: Duration::from_millis(args.request_timeout_ms.max(1)),
    };
    let state = Arc::new(AppState::new(engine.clone(), pre, metrics, limits));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.http_threads)
        .thread_name("spectrans-http")
        .enable_all()
        .build()
        .context("cannot start the HTTP runtime")?;
    let result = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr()?;
        let shutdown = spectrans_serve::shutdown_signal()
            .context("cannot install the SIGTERM/SIGINT handlers")?;
        // The announcement comes first on stderr (scripts wait for it), the log after it.
        eprintln!("listening on http://{local}");
        tracing::info!(
            model = %state.engine().model().config().summary(),
            threads = state.engine().config().threads,
            "model loaded"
        );
        spectrans_serve::serve(listener, state, shutdown)
            .await
            .context("the server failed")
    });
    engine.shutdown();
    result?;
    Ok(ExitCode::SUCCESS)
}

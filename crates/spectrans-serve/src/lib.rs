//! The inference engine of `spectrans serve` and `spectrans predict`: a bounded request
//! queue, a batcher that groups sequences of equal length under a token budget and a short
//! wait, one worker running the model on a dedicated rayon pool, the tokenizer step, an axum
//! router with JSON errors, and Prometheus metrics.
//!
//! The answer to a sequence never depends on what it was batched with: only sequences of the
//! same length share a batch (a GFNet's global filter mixes every position, so a padded
//! sequence would get another answer), and each row's result is bitwise what
//! [`spectrans_models::Gfnet::forward`] gives for that sequence alone.
//!
//! ```no_run
//! use std::sync::Arc;
//! use spectrans_serve::{AppState, Engine, EngineConfig, HttpLimits, Metrics, Preprocessor};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = spectrans_config::Config::from_toml_str(
//!     "[model]\nhidden_dim = 8\nnum_layers = 1\nsequence_length = 16\nvocab_size = 50\nnum_classes = 2\n",
//! )?;
//! let model = spectrans_models::Gfnet::new(&config, 0)?;
//! let metrics = Arc::new(Metrics::new());
//! let engine = Engine::new(model, EngineConfig::default(), Arc::clone(&metrics))?;
//! let pre = Preprocessor::new(config.vocab_size(), config.sequence_length());
//! let state = AppState::new(engine, pre, metrics, HttpLimits::default());
//! let server = spectrans_serve::BackgroundServer::start(state, "127.0.0.1:0".parse()?, 1)?;
//! println!("listening on http://{}", server.addr());
//! server.stop()?;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

pub mod engine;
pub mod http;
pub mod metrics;
pub mod request;

pub use engine::{Engine, EngineConfig, EngineError, Reply, Sequence, SequenceOutput};
pub use http::{AppState, HttpLimits, router};
pub use metrics::Metrics;
pub use request::{PadSide, PadTo, Padding, Prepared, Preprocessor, RequestError, TokenizerError};

/// Serves `state` on `listener` until `shutdown` resolves; then stops accepting connections,
/// answers 503 to new requests on open connections, finishes every accepted request, and
/// stops the engine after its queue is empty.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let flag = Arc::clone(&state);
    let app = router(Arc::clone(&state));
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing the requests in flight");
            flag.begin_shutdown();
        })
        .await?;
    let engine = state.engine().clone();
    let _ = tokio::task::spawn_blocking(move || engine.shutdown()).await;
    tracing::info!("stopped");
    Ok(())
}

/// Installs the SIGTERM and SIGINT handlers now (Ctrl-C elsewhere than Unix) and returns
/// a future that resolves on the first of them. Call it inside a tokio runtime before the
/// server announces itself, so that a signal sent right after the announcement is caught.
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async move {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

/// A server running on its own threads (a tokio runtime of `http_threads` workers), for
/// tests and for programs that embed the server.
#[derive(Debug)]
pub struct BackgroundServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl BackgroundServer {
    /// Binds `addr` (port 0 picks a free port) and serves `state` on a background thread.
    pub fn start(state: AppState, addr: SocketAddr, http_threads: usize) -> std::io::Result<Self> {
        Self::start_shared(Arc::new(state), addr, http_threads)
    }

    /// [`BackgroundServer::start`] with the state shared with the caller (who may then, for
    /// example, call [`AppState::begin_shutdown`] or use its engine).
    pub fn start_shared(
        state: Arc<AppState>,
        addr: SocketAddr,
        http_threads: usize,
    ) -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(http_threads.max(1))
            .thread_name("spectrans-http")
            .enable_all()
            .build()?;
        let listener = rt.block_on(tokio::net::TcpListener::bind(addr))?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("spectrans-serve".into())
            .spawn(move || {
                rt.block_on(serve(listener, state, async move {
                    let _ = rx.await;
                }))
            })?;
        Ok(BackgroundServer {
            addr,
            stop: Some(tx),
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Shuts down gracefully (see [`serve`]) and waits until it has stopped.
    pub fn stop(mut self) -> std::io::Result<()> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> std::io::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("the server thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for BackgroundServer {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}

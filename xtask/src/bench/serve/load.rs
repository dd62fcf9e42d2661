//! The open-loop load generator: requests at a fixed rate on a schedule, each timed from its
//! SCHEDULED send time (so a server that falls behind is charged for the queue it builds, not
//! hidden by a client that waits for a free slot), over HTTP/1.1 keep-alive connections to a
//! loopback address.
//!
//! Request `i` of a run is due at `start + i / rate`. A single-threaded tokio runtime sleeps
//! until each due time and spawns the request; the request takes an idle connection from the
//! pool or opens a new one, so nothing bounds the requests in flight but the run's count.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::rss;

/// One load run: where to send what, how fast, for how long.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// The server (must be a loopback address).
    pub addr: SocketAddr,
    /// The request path, e.g. `/predict`.
    pub path: String,
    /// The JSON body of every request.
    pub body: Bytes,
    /// Requests per second (> 0).
    pub rate: f64,
    /// How long requests are scheduled for.
    pub duration: Duration,
    /// At most this many requests, whatever the rate and duration.
    pub max_requests: usize,
    /// A request without an answer after this long counts as failed.
    pub timeout: Duration,
    /// The server process whose VmRSS is sampled during the run (Linux `/proc`), if any.
    pub rss_pid: Option<u32>,
}

impl LoadSpec {
    /// `POST /predict` with `body` at `rate` for `duration`, sampling the RSS of `pid`: the
    /// runs of the serving benchmark (at most 100,000 requests, each failed after 10 s).
    pub fn predict(addr: SocketAddr, body: Bytes, rate: f64, duration: Duration, pid: u32) -> Self {
        Self {
            addr,
            path: "/predict".into(),
            body,
            rate,
            duration,
            max_requests: 100_000,
            timeout: Duration::from_secs(10),
            rss_pid: Some(pid),
        }
    }

    /// The number of requests the run sends: `ceil(rate * duration)`, at least 1, at most
    /// `max_requests`.
    pub fn count(&self) -> usize {
        let n = (self.rate * self.duration.as_secs_f64()).ceil();
        let n = if n.is_finite() && n >= 1.0 {
            n as usize
        } else {
            1
        };
        n.min(self.max_requests.max(1))
    }

    /// The due time of request `i`, as an offset from the run's start.
    pub fn due(&self, i: usize) -> Duration {
        Duration::from_secs_f64(i as f64 / self.rate)
    }
}

/// What happened to one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The request's index in the schedule.
    pub index: usize,
    /// From its scheduled send time to the end of the answer's body.
    pub latency: Duration,
    /// How late the client actually sent it, past its scheduled time (client overload shows
    /// here; the latency already includes it).
    pub send_lag: Duration,
    /// The HTTP status, or `None` when the connection failed or the request timed out.
    pub status: Option<u16>,
    /// For a failed request: why.
    pub error: Option<String>,
}

/// The VmRSS samples of the server during a run, in MiB.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RssTrace {
    /// At the start of the run.
    pub first_mb: f64,
    /// The largest sample.
    pub max_mb: f64,
    /// At the end of the run, once every answer came back.
    pub last_mb: f64,
}

/// Everything one run measured.
#[derive(Debug, Clone)]
pub struct LoadResult {
    /// The requests per second asked for.
    pub rate: f64,
    /// One per request, in schedule order.
    pub outcomes: Vec<Outcome>,
    /// From the run's start to the last answer.
    pub wall: Duration,
    /// The server's VmRSS during the run, when a pid was given and `/proc` is readable.
    pub rss: Option<RssTrace>,
    /// CPU seconds the client itself used (its runtime's thread), when readable: the share
    /// of the cores the load generator took from the server.
    pub client_cpu_s: Option<f64>,
}

impl LoadResult {
    /// Latencies in ms of the requests answered with `status`.
    pub fn latencies_ms(&self, status: u16) -> Vec<f64> {
        self.outcomes
            .iter()
            .filter(|o| o.status == Some(status))
            .map(|o| o.latency.as_secs_f64() * 1e3)
            .collect()
    }

    /// Latencies in ms of the requests answered with `status`, timed from when the client
    /// actually sent each one rather than from its scheduled time: without the client's own
    /// timer lag (tokio's timer wheel ticks in whole ms), what a lone request costs.
    pub fn latencies_from_send_ms(&self, status: u16) -> Vec<f64> {
        self.outcomes
            .iter()
            .filter(|o| o.status == Some(status))
            .map(|o| o.latency.saturating_sub(o.send_lag).as_secs_f64() * 1e3)
            .collect()
    }

    /// Latencies in ms of every request, a request not answered 200 counted as infinitely
    /// late (so that a percentile over them fails a latency bound when errors are that common).
    pub fn latencies_ms_ok_or_inf(&self) -> Vec<f64> {
        self.outcomes
            .iter()
            .map(|o| match o.status {
                Some(200) => o.latency.as_secs_f64() * 1e3,
                _ => f64::INFINITY,
            })
            .collect()
    }

    /// How many requests got `status`.
    pub fn count(&self, status: u16) -> usize {
        self.outcomes
            .iter()
            .filter(|o| o.status == Some(status))
            .count()
    }

    /// How many requests failed without an HTTP answer.
    pub fn failed(&self) -> usize {
        self.outcomes.iter().filter(|o| o.status.is_none()).count()
    }

    /// The first error message of a failed request, if any.
    pub fn first_error(&self) -> Option<&str> {
        self.outcomes.iter().find_map(|o| o.error.as_deref())
    }

    /// The largest lag of a send past its schedule, in ms.
    pub fn max_send_lag_ms(&self) -> f64 {
        self.outcomes
            .iter()
            .map(|o| o.send_lag.as_secs_f64() * 1e3)
            .fold(0.0, f64::max)
    }
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The target is not on this machine: the generator talks to loopback only.
    #[error("load: {0} is not a loopback address; the load generator talks to 127.0.0.1 only")]
    NotLoopback(SocketAddr),
    /// The rate is not a positive finite number.
    #[error("load: rate {0} req/s is not a positive number")]
    BadRate(f64),
    /// The tokio runtime could not be built.
    #[error("load: could not start the client runtime: {0}")]
    Runtime(std::io::Error),
}

/// Runs one load test and blocks until every request has its answer or its timeout.
pub fn run(spec: &LoadSpec) -> Result<LoadResult, LoadError> {
    if !spec.addr.ip().is_loopback() {
        return Err(LoadError::NotLoopback(spec.addr));
    }
    if !(spec.rate.is_finite() && spec.rate > 0.0) {
        return Err(LoadError::BadRate(spec.rate));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(LoadError::Runtime)?;
    // The runtime runs every request on this thread: its CPU time is the client's.
    let cpu_before = rss::thread_cpu_s();
    let mut result = rt.block_on(run_async(spec));
    result.client_cpu_s = rss::thread_cpu_s()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    Ok(result)
}

/// Idle keep-alive connections, shared by the requests of one run.
type Pool = Arc<Mutex<Vec<SendRequest<Full<Bytes>>>>>;

async fn run_async(spec: &LoadSpec) -> LoadResult {
    let n = spec.count();
    let pool: Pool = Arc::new(Mutex::new(Vec::new()));
    let host = spec.addr.to_string();
    let start = tokio::time::Instant::now();
    let sampler = spec.rss_pid.map(|pid| {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let task = tokio::spawn(async move {
            let mut samples = Vec::new();
            while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(mb) = rss::vm_rss_mb(pid) {
                    samples.push(mb);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            samples
        });
        (stop, task)
    });
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let due = start + spec.due(i);
        tokio::time::sleep_until(due).await;
        let pool = Arc::clone(&pool);
        let req = Request {
            addr: spec.addr,
            host: host.clone(),
            path: spec.path.clone(),
            body: spec.body.clone(),
            timeout: spec.timeout,
        };
        tasks.push(tokio::spawn(async move {
            let sent = tokio::time::Instant::now();
            let send_lag = sent.saturating_duration_since(due);
            let answer = tokio::time::timeout(req.timeout, req.send(&pool)).await;
            let latency = tokio::time::Instant::now().saturating_duration_since(due);
            let (status, error) = match answer {
                Ok(Ok(status)) => (Some(status), None),
                Ok(Err(e)) => (None, Some(e)),
                Err(_) => (None, Some(format!("no answer within {:?}", req.timeout))),
            };
            Outcome {
                index: i,
                latency,
                send_lag,
                status,
                error,
            }
        }));
    }
    let mut outcomes = Vec::with_capacity(n);
    for (i, task) in tasks.into_iter().enumerate() {
        outcomes.push(task.await.unwrap_or_else(|e| Outcome {
            index: i,
            latency: Duration::ZERO,
            send_lag: Duration::ZERO,
            status: None,
            error: Some(format!("request task failed: {e}")),
        }));
    }
    let wall = start.elapsed();
    let rss = match sampler {
        Some((stop, task)) => {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let mut samples = task.await.unwrap_or_default();
            if let Some(last) = spec.rss_pid.and_then(rss::vm_rss_mb) {
                samples.push(last);
            }
            rss_trace(&samples)
        }
        None => None,
    };
    LoadResult {
        rate: spec.rate,
        outcomes,
        wall: Duration::from_secs_f64(wall.as_secs_f64()),
        rss,
        client_cpu_s: None,
    }
}

/// First, largest and last of the samples; `None` when there are none.
pub fn rss_trace(samples: &[f64]) -> Option<RssTrace> {
    Some(RssTrace {
        first_mb: *samples.first()?,
        max_mb: samples.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        last_mb: *samples.last()?,
    })
}

/// One request's parts (owned, so that its task is `'static`).
struct Request {
    addr: SocketAddr,
    host: String,
    path: String,
    body: Bytes,
    timeout: Duration,
}

impl Request {
    /// Sends the request on a pooled or new connection; the status once the body is read.
    async fn send(&self, pool: &Pool) -> Result<u16, String> {
        let mut sender = match take_ready(pool).await {
            Some(s) => s,
            None => connect(self.addr).await?,
        };
        let req = hyper::Request::builder()
            .method(hyper::Method::POST)
            .uri(self.path.as_str())
            .header(hyper::header::HOST, self.host.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(self.body.clone()))
            .map_err(|e| format!("building the request: {e}"))?;
        let response = sender
            .send_request(req)
            .await
            .map_err(|e| format!("sending: {e}"))?;
        let status = response.status().as_u16();
        response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("reading the body: {e}"))?;
        if let Ok(mut idle) = pool.lock() {
            idle.push(sender);
        }
        Ok(status)
    }
}

/// An idle connection that can take a request now, dropping closed ones.
async fn take_ready(pool: &Pool) -> Option<SendRequest<Full<Bytes>>> {
    loop {
        let mut sender = pool.lock().ok()?.pop()?;
        if sender.is_closed() {
            continue;
        }
        if sender.ready().await.is_ok() {
            return Some(sender);
        }
    }
}

/// Opens an HTTP/1.1 connection to `addr` and drives it on the runtime.
async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    // Small requests and answers: send them at once.
    stream.set_nodelay(true).ok();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with {addr}: {e}"))?;
    tokio::spawn(async move {
        // The connection ends when the server closes it or the sender is dropped.
        let _ = conn.await;
    });
    Ok(sender)
}

/// One `GET path` (or `POST` with a body) on a fresh connection: the status and the body text.
pub fn request_once(
    addr: SocketAddr,
    path: &str,
    body: Option<Bytes>,
    timeout: Duration,
) -> Result<(u16, String), String> {
    if !addr.ip().is_loopback() {
        return Err(LoadError::NotLoopback(addr).to_string());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        tokio::time::timeout(timeout, async {
            let mut sender = connect(addr).await?;
            let builder = hyper::Request::builder()
                .uri(path)
                .header(hyper::header::HOST, addr.to_string());
            let req = match body {
                Some(b) => builder
                    .method(hyper::Method::POST)
                    .header(hyper::header::CONTENT_TYPE, "application/json")
                    .body(Full::new(b)),
                None => builder
                    .method(hyper::Method::GET)
                    .body(Full::new(Bytes::new())),
            }
            .map_err(|e| e.to_string())?;
            let response = sender
                .send_request(req)
                .await
                .map_err(|e| format!("sending: {e}"))?;
            let status = response.status().as_u16();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("reading the body: {e}"))?
                .to_bytes();
            Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
        })
        .await
        .map_err(|_| format!("no answer from {addr}{path} within {timeout:?}"))?
    })
}

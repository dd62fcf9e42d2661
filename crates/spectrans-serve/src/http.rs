//! The HTTP front end: routes, status codes, JSON errors and request metrics.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use spectrans_models::HeadKind;
use tokio::sync::Semaphore;

use crate::engine::{Engine, SequenceOutput};
use crate::metrics::Metrics;
use crate::request::{Preprocessor, RequestError};

/// Limits of the HTTP front end.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// `POST /predict` requests accepted and not yet answered; one more answers 429.
    pub max_concurrent_requests: usize,
    /// Largest request body in bytes; a larger one answers 413.
    pub max_body_bytes: usize,
    /// Longest time a request may take before it answers 408.
    pub request_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_concurrent_requests: 512,
            max_body_bytes: 2 * 1024 * 1024,
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// Everything a request handler needs.
#[derive(Debug)]
pub struct AppState {
    engine: Engine,
    pre: Preprocessor,
    metrics: Arc<Metrics>,
    limits: HttpLimits,
    permits: Arc<Semaphore>,
    shutting_down: AtomicBool,
    info: String,
    classification: bool,
}

impl AppState {
    /// The state of a server running `engine` (whose metrics are `metrics`) with `pre` as
    /// its request preprocessor.
    pub fn new(
        engine: Engine,
        pre: Preprocessor,
        metrics: Arc<Metrics>,
        limits: HttpLimits,
    ) -> Self {
        let model = engine.model();
        let config = model.config();
        let classification = model
            .output_head()
            .is_some_and(|h| h.kind == HeadKind::Classification);
        let padding = pre.padding();
        let info = serde_json::json!({
            "model_type": config.model_type().as_str(),
            "output_type": config.output_type().as_str(),
            "hidden_dim": config.hidden_dim(),
            "num_layers": config.num_layers(),
            "sequence_length": config.sequence_length(),
            "vocab_size": config.vocab_size(),
            "num_classes": config.num_classes(),
            "precision": model.precision().as_str(),
            "version": env!("CARGO_PKG_VERSION"),
            "threads": engine.config().threads,
            "max_batch_tokens": engine.config().max_batch_tokens,
            "max_wait_ms": engine.config().max_wait.as_secs_f64() * 1000.0,
            "max_concurrent_requests": limits.max_concurrent_requests,
            "max_body_bytes": limits.max_body_bytes,
            "request_timeout_ms": limits.request_timeout.as_millis() as u64,
            "max_sequence_length": padding.map_or(pre.max_len(), |p| p.length),
            "tokenizer": pre.has_tokenizer(),
            "pad_to": padding.map(|p| p.length),
            "pad_id": padding.map(|p| p.pad_id),
        })
        .to_string();
        AppState {
            permits: Arc::new(Semaphore::new(limits.max_concurrent_requests)),
            engine,
            pre,
            metrics,
            limits,
            shutting_down: AtomicBool::new(false),
            info,
            classification,
        }
    }

    /// From now on `POST /predict` answers 503 (requests already accepted still finish).
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// The router: `GET /health`, `GET /info`, `GET /metrics`, `POST /predict`; every error JSON.
pub fn router(state: Arc<AppState>) -> Router {
    let timeout = state.limits.request_timeout;
    Router::new()
        .route("/health", get(health))
        .route("/info", get(info))
        .route("/metrics", get(metrics))
        .route("/predict", post(predict))
        .fallback(not_found)
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(middleware::from_fn_with_state(Arc::clone(&state), track))
        .with_state(state)
}

fn json_response(status: StatusCode, body: String) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// `{"error": message}` with `status`.
pub fn error_response(status: StatusCode, message: &str) -> Response {
    json_response(status, serde_json::json!({ "error": message }).to_string())
}

const ROUTES: &str = "GET /health, GET /info, GET /metrics, POST /predict";

fn route_label(path: &str) -> &'static str {
    match path {
        "/health" => "/health",
        "/info" => "/info",
        "/metrics" => "/metrics",
        "/predict" => "/predict",
        _ => "unmatched",
    }
}

/// Counts every request and turns any non-JSON error (the framework's own 405, a timeout's
/// 408, ...) into `{"error": ...}`.
async fn track(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let route = route_label(&path);
    let mut resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if (status.is_client_error() || status.is_server_error()) && !is_json {
        let detail = match status {
            StatusCode::METHOD_NOT_ALLOWED => {
                format!("{method} is not allowed on {path}; the routes are {ROUTES}")
            }
            StatusCode::REQUEST_TIMEOUT => format!(
                "the request took longer than the {} ms limit",
                state.limits.request_timeout.as_millis()
            ),
            _ => format!(
                "{} on {method} {path}",
                status.canonical_reason().unwrap_or("error")
            ),
        };
        let mut json = error_response(status, &detail);
        for (name, value) in resp.headers() {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                json.headers_mut().insert(name.clone(), value.clone());
            }
        }
        resp = json;
    }
    state
        .metrics
        .observe_request(route, resp.status().as_u16(), started.elapsed());
    resp
}

async fn not_found(req: Request) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        &format!(
            "no route for {} {}; the routes are {ROUTES}",
            req.method(),
            req.uri().path()
        ),
    )
}

async fn health() -> Response {
    json_response(StatusCode::OK, r#"{"status":"ok"}"#.to_string())
}

async fn info(State(state): State<Arc<AppState>>) -> Response {
    json_response(StatusCode::OK, state.info.clone())
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    state.metrics.set_queue_depth(state.engine.queued());
    let mut r = Response::new(Body::from(state.metrics.encode()));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    r
}

fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(v) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mime = v
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

fn reject(err: &RequestError) -> Response {
    let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_REQUEST);
    error_response(status, &err.message)
}

/// Bytes of an over-limit body still read (and dropped) before answering 413, so that a
/// client that sends its whole body before reading sees the 413 rather than a reset.
const DRAIN_EXTRA: usize = 8 * 1024 * 1024;

async fn read_body(mut body: Body, limit: usize) -> Result<Vec<u8>, Response> {
    use http_body_util::BodyExt;
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            error_response(
                StatusCode::BAD_REQUEST,
                &format!("cannot read the request body: {e}"),
            )
        })?;
        if let Ok(data) = frame.into_data() {
            seen = seen.saturating_add(data.len());
            if seen > limit {
                if seen > limit.saturating_add(DRAIN_EXTRA) {
                    break;
                }
                continue;
            }
            buf.extend_from_slice(&data);
        }
    }
    if seen > limit {
        return Err(too_large(limit));
    }
    Ok(buf)
}

fn too_large(limit: usize) -> Response {
    error_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("the request body is larger than the limit of {limit} bytes (--max-body-bytes)"),
    )
}

/// Reads and drops what is left of a body (at most `cap` bytes) before an early answer, so
/// that the client reads the answer instead of a connection reset.
async fn discard(mut body: Body, cap: usize) {
    use http_body_util::BodyExt;
    let mut seen = 0usize;
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            seen = seen.saturating_add(data.len());
            if seen > cap {
                break;
            }
        }
    }
}

async fn predict(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let cap = state.limits.max_body_bytes.saturating_add(DRAIN_EXTRA);
    if state.shutting_down.load(Ordering::SeqCst) {
        discard(req.into_body(), cap).await;
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down and accepts no new requests",
        );
    }
    if !is_json_content_type(req.headers()) {
        discard(req.into_body(), cap).await;
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected a request with `Content-Type: application/json`",
        );
    }
    let Ok(permit) = Arc::clone(&state.permits).try_acquire_owned() else {
        discard(req.into_body(), cap).await;
        let mut r = error_response(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "the server is at its limit of {} requests in flight; retry later",
                state.limits.max_concurrent_requests
            ),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    };
    let limits = &state.limits;
    state
        .metrics
        .set_in_flight(limits.max_concurrent_requests - state.permits.available_permits());
    let resp = predict_inner(&state, req).await;
    drop(permit);
    state
        .metrics
        .set_in_flight(limits.max_concurrent_requests - state.permits.available_permits());
    resp
}

async fn predict_inner(state: &AppState, req: Request) -> Response {
    let limit = state.limits.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit.saturating_add(DRAIN_EXTRA) as u64) {
        return too_large(limit);
    }
    let body = match read_body(req.into_body(), limit).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let prepared = match state.pre.prepare_body(&body) {
        Ok(p) => p,
        Err(e) => return reject(&e),
    };
    let reply = match state.engine.submit(prepared.sequences) {
        Ok(r) => r,
        Err(e) => return error_response(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let outputs = match reply.await {
        Ok(Ok(outputs)) => outputs,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "a request failed in the engine");
            return error_response(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string());
        }
        Err(_) => {
            return error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "the engine stopped before answering",
            );
        }
    };
    let mut out =
        String::with_capacity(64 + outputs.iter().map(|o| o.values.len() * 12).sum::<usize>());
    out.push_str("{\"outputs\":[");
    for (i, o) in outputs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_output(&mut out, o);
    }
    out.push(']');
    if state.classification {
        out.push_str(",\"labels\":[");
        for (i, o) in outputs.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{}", argmax(&o.values));
        }
        out.push(']');
    }
    if let Some(ids) = &prepared.tokenized {
        out.push_str(",\"input_ids\":");
        out.push_str(&serde_json::to_string(ids).unwrap_or_else(|_| "null".into()));
    }
    out.push('}');
    json_response(StatusCode::OK, out)
}

/// The index of the largest value (the first of equals; NaN never wins).
pub fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] || values[best].is_nan() && !v.is_nan() {
            best = i;
        }
    }
    best
}

/// Writes one output as nested JSON lists. Each f32 is written as the decimal of its exact
/// f64 widening, so parsing it as f64 or as f32 gives back the same bits; a non-finite value
/// is `null`.
pub fn write_output(out: &mut String, o: &SequenceOutput) {
    fn rec(out: &mut String, shape: &[usize], values: &[f32], buf: &mut ryu::Buffer) {
        out.push('[');
        match shape {
            [] | [_] => {
                for (i, &v) in values.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    if v.is_finite() {
                        out.push_str(buf.format_finite(f64::from(v)));
                    } else {
                        out.push_str("null");
                    }
                }
            }
            [n, rest @ ..] => {
                let step = rest.iter().product::<usize>();
                for i in 0..*n {
                    if i > 0 {
                        out.push(',');
                    }
                    rec(out, rest, &values[i * step..(i + 1) * step], buf);
                }
            }
        }
        out.push(']');
    }
    let mut buf = ryu::Buffer::new();
    rec(out, &o.shape, &o.values, &mut buf);
}

impl IntoResponse for RequestError {
    fn into_response(self) -> Response {
        reject(&self)
    }
}

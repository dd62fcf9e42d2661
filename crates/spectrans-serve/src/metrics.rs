//! Prometheus metrics of the server (text exposition on `GET /metrics`).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of the per-request metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteStatus {
    route: String,
    status: u16,
}

/// Labels of the latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    route: String,
}

fn latency_histogram() -> Histogram {
    // 100 µs .. ~6.5 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 17))
}

/// Every metric the server exports, and the registry that encodes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RouteStatus, Counter>,
    latency: Family<Route, Histogram, fn() -> Histogram>,
    batch_sequences: Histogram,
    batch_tokens: Histogram,
    forward_seconds: Histogram,
    queue_depth: Gauge,
    in_flight: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the `spectrans_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("spectrans");
        let requests = Family::<RouteStatus, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route and status code",
            requests.clone(),
        );
        let latency =
            Family::<Route, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its answer, by route",
            latency.clone(),
        );
        let batch_sequences = Histogram::new(exponential_buckets(1.0, 2.0, 12));
        registry.register(
            "batch_sequences",
            "Sequences per model batch",
            batch_sequences.clone(),
        );
        let batch_tokens = Histogram::new(exponential_buckets(1.0, 2.0, 18));
        registry.register(
            "batch_tokens",
            "Tokens (sequences x length) per model batch",
            batch_tokens.clone(),
        );
        let forward_seconds = latency_histogram();
        registry.register(
            "forward_duration_seconds",
            "Time of one model forward over a batch",
            forward_seconds.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Sequences waiting for a batch",
            queue_depth.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "predict_requests_in_flight",
            "Predict requests accepted and not yet answered",
            in_flight.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            batch_sequences,
            batch_tokens,
            forward_seconds,
            queue_depth,
            in_flight,
        }
    }

    /// Counts one answered request and its latency.
    pub fn observe_request(&self, route: &str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RouteStatus {
                route: route.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&Route {
                route: route.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Records one model batch.
    pub fn observe_batch(&self, sequences: usize, tokens: usize, forward: Duration) {
        self.batch_sequences.observe(sequences as f64);
        self.batch_tokens.observe(tokens as f64);
        self.forward_seconds.observe(forward.as_secs_f64());
    }

    /// Sets the number of sequences waiting for a batch.
    pub fn set_queue_depth(&self, depth: usize) {
        self.queue_depth
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// Sets the number of predict requests in flight.
    pub fn set_in_flight(&self, n: usize) {
        self.in_flight.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

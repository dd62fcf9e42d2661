//! The load generator against tiny in-test hyper servers on 127.0.0.1:0, the server process
//! handling against `sh`, and the report's splicing. No Python, a few seconds in all.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use super::latency::percentile;
use super::load::{self, LoadError, LoadSpec};
use super::report::{HEADING, splice_section};
use super::server::Server;
use super::{RunSummary, request_body, shape};

/// How the test server answers `POST /predict`.
#[derive(Debug, Clone, Copy)]
enum Behaviour {
    /// Every request waits this long, concurrently with the others.
    Delay(Duration),
    /// One request at a time, each taking this long (a server with one worker).
    Serial(Duration),
    /// 200 and 429 in turn, at once.
    Alternate429,
}

const BODY: &str = "{\"input_ids\": [1, 2, 3]}";

/// Starts a server on 127.0.0.1:0 on its own thread; it lives until the test process ends.
fn spawn_server(behaviour: Behaviour) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(_) => return,
        };
        rt.block_on(async move {
            let Ok(listener) = tokio::net::TcpListener::bind("127.0.0.1:0").await else {
                return;
            };
            let Ok(addr) = listener.local_addr() else {
                return;
            };
            let _ = tx.send(addr);
            let counter = Arc::new(AtomicUsize::new(0));
            let serial = Arc::new(tokio::sync::Mutex::new(()));
            while let Ok((stream, _)) = listener.accept().await {
                let counter = Arc::clone(&counter);
                let serial = Arc::clone(&serial);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let counter = Arc::clone(&counter);
                        let serial = Arc::clone(&serial);
                        async move {
                            Ok::<_, Infallible>(answer(req, behaviour, &counter, &serial).await)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    rx.recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 1)))
}

async fn answer(
    req: Request<Incoming>,
    behaviour: Behaviour,
    counter: &AtomicUsize,
    serial: &tokio::sync::Mutex<()>,
) -> Response<Full<Bytes>> {
    let respond = |status: u16, body: &str| {
        let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
        *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
        r
    };
    if req.uri().path() == "/health" {
        return respond(200, "{\"status\": \"ok\"}");
    }
    let path_ok = req.method() == hyper::Method::POST && req.uri().path() == "/predict";
    let body = req.into_body().collect().await.map(|b| b.to_bytes());
    if !path_ok || body.as_deref().ok() != Some(BODY.as_bytes()) {
        return respond(400, "{\"error\": \"unexpected request\"}");
    }
    match behaviour {
        Behaviour::Delay(d) => {
            tokio::time::sleep(d).await;
            respond(200, "{\"outputs\": [[0.0, 1.0]], \"labels\": [1]}")
        }
        Behaviour::Serial(d) => {
            let _one_at_a_time = serial.lock().await;
            tokio::time::sleep(d).await;
            respond(200, "{\"outputs\": [[0.0, 1.0]], \"labels\": [1]}")
        }
        Behaviour::Alternate429 => {
            if counter.fetch_add(1, Ordering::SeqCst) % 2 == 1 {
                respond(429, "{\"error\": \"queue full\"}")
            } else {
                respond(200, "{\"outputs\": [[0.0, 1.0]], \"labels\": [1]}")
            }
        }
    }
}

fn spec(addr: SocketAddr, rate: f64, secs: f64) -> LoadSpec {
    LoadSpec {
        addr,
        path: "/predict".into(),
        body: Bytes::from_static(BODY.as_bytes()),
        rate,
        duration: Duration::from_secs_f64(secs),
        max_requests: 10_000,
        timeout: Duration::from_secs(5),
        rss_pid: None,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[test]
fn the_schedule_is_rate_times_duration() {
    let addr = SocketAddr::from(([127, 0, 0, 1], 9));
    let s = spec(addr, 200.0, 0.1);
    assert_eq!(s.count(), 20);
    assert_eq!(s.due(0), Duration::ZERO);
    assert_eq!(s.due(4), Duration::from_millis(20));
    assert_eq!(spec(addr, 3.0, 0.5).count(), 2, "ceil(1.5)");
    assert_eq!(spec(addr, 1.0, 0.01).count(), 1, "at least one");
    let capped = LoadSpec {
        max_requests: 7,
        ..spec(addr, 1000.0, 1.0)
    };
    assert_eq!(capped.count(), 7);
}

#[test]
fn sends_on_schedule_without_waiting_for_answers() -> Result<(), LoadError> {
    let addr = spawn_server(Behaviour::Delay(Duration::from_millis(100)));
    let r = load::run(&spec(addr, 100.0, 0.3))?;
    assert_eq!(r.outcomes.len(), 30);
    assert_eq!(r.count(200), 30, "{:?}", r.first_error());
    // Closed loop on one connection would take 30 x 100 ms; open loop ends 100 ms after
    // the last due time (290 ms). The bounds leave room for a busy machine.
    assert!(r.wall < Duration::from_millis(1500), "wall {:?}", r.wall);
    for o in &r.outcomes {
        let l = ms(o.latency);
        assert!((100.0..1000.0).contains(&l), "request {}: {l} ms", o.index);
    }
    let order: Vec<usize> = r.outcomes.iter().map(|o| o.index).collect();
    assert_eq!(
        order,
        (0..30).collect::<Vec<_>>(),
        "outcomes in schedule order"
    );
    Ok(())
}

#[test]
fn latency_counts_from_the_scheduled_time() -> Result<(), LoadError> {
    // One request at a time, 20 ms each, 200 req/s offered: request k finishes near
    // (k + 1) x 20 ms but was due at k x 5 ms, so its latency grows near 20 + 15 k ms.
    let addr = spawn_server(Behaviour::Serial(Duration::from_millis(20)));
    let r = load::run(&spec(addr, 200.0, 0.1))?;
    assert_eq!(r.count(200), 20, "{:?}", r.first_error());
    let last = ms(r.outcomes[19].latency);
    let first = ms(r.outcomes[0].latency);
    // A lower bound that no slowness can break: the server cannot finish the 20th request
    // before 400 ms, and it was due at 95 ms.
    assert!(
        last >= 290.0,
        "the last request queued behind 19 others: {last} ms"
    );
    assert!(first < 200.0, "the first met an idle server: {first} ms");
    assert!(last > first + 200.0, "first {first} ms, last {last} ms");
    let all = r.latencies_ms_ok_or_inf();
    let p99 = percentile(&all, 99.0).unwrap_or(0.0);
    assert!(p99 >= 250.0);
    assert!(!RunSummary::of(&r).sustained, "p99 {p99} ms is over 50 ms");
    Ok(())
}

#[test]
fn records_every_status() -> Result<(), LoadError> {
    let addr = spawn_server(Behaviour::Alternate429);
    let r = load::run(&spec(addr, 400.0, 0.1))?;
    assert_eq!(r.outcomes.len(), 40);
    assert_eq!(r.count(200) + r.count(429), 40, "{:?}", r.first_error());
    assert_eq!(r.count(429), 20);
    let s = RunSummary::of(&r);
    assert_eq!((s.ok, s.too_many, s.other_status, s.failed), (20, 20, 0, 0));
    assert_eq!(s.share_429(), Some(0.5));
    assert!(s.too_many_ms.is_some() && s.ok_ms.is_some());
    assert!(!s.sustained, "half the requests were refused");
    Ok(())
}

#[test]
fn a_closed_port_is_failed_requests_not_a_crash() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    // The listener is dropped: nothing listens there now.
    let r = load::run(&spec(addr, 100.0, 0.05))?;
    assert_eq!(r.failed(), r.outcomes.len());
    assert!(r.first_error().is_some_and(|e| e.contains("connecting")));
    assert!(!RunSummary::of(&r).sustained);
    Ok(())
}

#[test]
fn refuses_other_hosts_and_bad_rates() {
    let remote = spec(SocketAddr::from(([10, 0, 0, 1], 80)), 10.0, 1.0);
    assert!(matches!(load::run(&remote), Err(LoadError::NotLoopback(_))));
    let local = SocketAddr::from(([127, 0, 0, 1], 9));
    for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            load::run(&spec(local, rate, 1.0)),
            Err(LoadError::BadRate(_))
        ));
    }
    assert!(load::request_once(remote.addr, "/health", None, Duration::from_secs(1)).is_err());
}

#[test]
fn samples_the_rss_of_a_process() -> Result<(), LoadError> {
    let addr = spawn_server(Behaviour::Delay(Duration::from_millis(1)));
    let s = LoadSpec {
        rss_pid: Some(std::process::id()),
        ..spec(addr, 50.0, 0.2)
    };
    let r = load::run(&s)?;
    let rss = r.rss.ok_or(LoadError::BadRate(0.0))?;
    assert!(rss.first_mb > 0.0 && rss.max_mb >= rss.first_mb && rss.max_mb >= rss.last_mb);
    Ok(())
}

#[test]
fn starts_and_stops_a_server_process() -> Result<(), Box<dyn std::error::Error>> {
    let addr = spawn_server(Behaviour::Delay(Duration::from_millis(1)));
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!(
        "echo loading >&2; echo 'listening on http://{addr}' >&2; exec sleep 30"
    ));
    let mut server = Server::start("fake", cmd, Duration::from_secs(10))?;
    assert_eq!(server.addr, addr);
    assert!(server.alive());
    let (status, body) = load::request_once(addr, "/health", None, Duration::from_secs(5))?;
    assert_eq!((status, body.as_str()), (200, "{\"status\": \"ok\"}"));
    let exit = server.stop(Duration::from_secs(5));
    assert!(exit.contains("15") || exit.contains("SIGTERM"), "{exit}");
    Ok(())
}

#[test]
fn a_server_that_dies_before_listening_is_an_error_with_its_stderr() {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("echo 'error: unrecognized subcommand serve' >&2; exit 2");
    let err = Server::start("fake", cmd, Duration::from_secs(10)).map(|s| s.addr);
    let text = format!("{err:?}");
    assert!(err.is_err());
    assert!(text.contains("unrecognized subcommand serve"), "{text}");
}

#[test]
fn the_request_is_one_sequence_of_valid_ids() -> Result<(), serde_json::Error> {
    let s = shape();
    let body = request_body(&s, 0);
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    let ids = v["input_ids"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    assert_eq!(ids.len(), 128);
    assert!(ids.iter().all(|t| t.as_u64().is_some_and(|t| t < 1000)));
    let distinct: std::collections::BTreeSet<u64> = ids.iter().filter_map(|t| t.as_u64()).collect();
    assert!(distinct.len() > 50, "not a constant sequence");
    assert_eq!(body, request_body(&s, 0), "the same seed, the same body");
    Ok(())
}

#[test]
fn splices_the_section_in_place_or_at_the_end() {
    let section = format!("{HEADING}\n\nnew table\n");
    let doc = "# Benchmarks\n\nintro\n\n## Method\n\ntext\n";
    let appended = splice_section(doc, &section);
    assert_eq!(appended, format!("{doc}\n{section}"));
    let again = splice_section(&appended, &format!("{HEADING}\n\nnewer\n"));
    assert_eq!(again, format!("{doc}\n{HEADING}\n\nnewer\n"));
    let middle = "# B\n\n## Serving: old\n\nold rows\n\n## Reduced precision\n\nkept\n";
    assert_eq!(
        splice_section(middle, &section),
        format!("# B\n\n{HEADING}\n\nnew table\n\n## Reduced precision\n\nkept\n")
    );
    assert_eq!(splice_section("", &section), section);
}

fn summary(rate: f64, ok: usize, too_many: usize, p99: f64) -> RunSummary {
    let p = |v: f64| super::latency::Percentiles {
        p50: v / 2.0,
        p90: v * 0.9,
        p99: v,
        max: v,
    };
    RunSummary {
        rate,
        sent: ok + too_many,
        ok,
        too_many,
        other_status: 0,
        failed: 0,
        ok_ms: Some(p(p99)),
        ok_from_send_ms: Some(p(p99 - 1.0)),
        too_many_ms: (too_many > 0).then(|| p(2.0)),
        p99_all_ms: Some(p99),
        sustained: p99 < 50.0 && too_many == 0,
        wall_s: 1.0,
        max_send_lag_ms: 0.0,
        rss: Some(super::load::RssTrace {
            first_mb: 100.0,
            max_mb: 120.0,
            last_mb: 110.0,
        }),
        client_cores: Some(0.25),
        first_error: None,
    }
}

#[test]
fn the_section_shows_both_servers_and_their_ratio() {
    use super::report::{ReportInput, exit_ok, render};
    use super::search::{SearchOutcome, Step};
    use super::{Durations, ServerReport};
    let server = |name: &str, best: f64| ServerReport {
        name: name.into(),
        info: None,
        low_load: Some(summary(10.0, 50, 0, 4.0)),
        search: Some(SearchOutcome {
            best: Some(best),
            first_failed: Some(best * 1.04),
            steps: vec![Step {
                rate: best,
                passed: true,
            }],
        }),
        probes: vec![summary(best, 100, 0, 40.0)],
        fractions: super::FRACTIONS
            .iter()
            .map(|&f| (f, summary(best * f, 10, 0, 5.0)))
            .collect(),
        overload: Some(summary(1500.0, 600, 900, 12.0)),
        peak_rss_mb: Some(130.0),
        exit: Some("exit status: 0".into()),
        error: None,
    };
    let ours = server("spectrans-rs", 500.0);
    let torch = ServerReport {
        exit: Some("exit status: 1".into()),
        ..server("pytorch", 125.0)
    };
    let machine = crate::bench::machine::Machine {
        cpu_model: "Test CPU".into(),
        simd_flags: "avx2".into(),
        cores: 2,
        rustc: "rustc".into(),
        commit: "abc".into(),
        date_utc: "today".into(),
    };
    let text = render(&ReportInput {
        machine: &machine,
        command: "cargo xtask bench serve".into(),
        quick: false,
        threads: 2,
        elapsed_s: 300.0,
        load: (Some(0.1), Some(1.9)),
        bench_batch1_ms: Some(3.5),
        bench_batch1_idle_ms: Some(5.5),
        ours: &ours,
        torch: Some(&torch),
        torch_missing: None,
        durations: &Durations::new(false),
    });
    assert!(text.starts_with(HEADING));
    assert!(text.contains("| CPU | Test CPU |"));
    assert!(
        text.contains("| pytorch | 125 | 130 | 1 | 4.00x | 0.25 |"),
        "{text}"
    );
    assert!(
        text.contains("| spectrans-rs | 2.00 | 4.00 | 1.50 | 3.00 | 3.50 | -2.00 | 5.50 | -4.00 |"),
        "{text}"
    );
    assert!(
        text.contains("| spectrans-rs | 1500 | 60.0 % | 0 | 12.00 | 3.00x |"),
        "{text}"
    );
    assert!(text.contains("pytorch: on SIGTERM it exited with exit status: 1"));
    assert!(!text.contains("\n\n\n"), "one blank line between blocks");
    assert!(exit_ok("spectrans-rs", "exit status: 0"));
    assert!(!exit_ok("spectrans-rs", "signal: 15 (SIGTERM)"));
    assert!(exit_ok("pytorch", "signal: 15 (SIGTERM)"));
}

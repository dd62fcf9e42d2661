//! `cargo xtask bench serve`: `spectrans serve` against a PyTorch server (FastAPI + uvicorn +
//! an asyncio batcher, xtask/python/serve_torch.py) under the same open-loop load, on the same
//! machine and thread count (issue 26, item 6). See [`options::USAGE`] for the arguments.
//!
//! Steps: build `spectrans` in release (and copy it), write the small config (hidden 256,
//! 4 layers, sequence 128) and its random weights (`spectrans init`), time `spectrans bench
//! --batch 1 --seq-len 128`, then for each server in turn (ours first): start it, warm it up,
//! measure single requests at low load, search the highest rate with p99 < 50 ms, measure
//! p50/p99 at 25 %, 50 % and 90 % of that rate, and overload it at 3x OUR sustainable rate;
//! then stop it with SIGTERM. Raw results go to `bench-out/serve-raw.json`, the report section
//! to `<dir of --out>/benchmarks/serving.md`, spliced into `--out` under `## Serving`.

pub mod latency;
pub mod load;
pub mod options;
pub mod report;
pub mod rss;
pub mod search;
pub mod server;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hyper::body::Bytes;

use super::BenchError;
use super::machine::{self, Machine};
use super::plan::ModelShape;
use super::runner;
use crate::refenv;
use latency::Percentiles;
use load::{LoadResult, LoadSpec, RssTrace};
use search::{SearchOutcome, SearchParams};
use server::Server;

/// The p99 bound of a sustained rate, in ms.
pub const P99_BOUND_MS: f64 = 50.0;
/// The fractions of the sustained rate measured after the search.
pub const FRACTIONS: &[f64] = &[0.25, 0.5, 0.9];
/// The overload, as a multiple of OUR sustainable rate.
pub const OVERLOAD_FACTOR: f64 = 3.0;
/// The rate of the single-request (low-load) run: requests 100 ms apart.
pub const LOW_LOAD_RATE: f64 = 10.0;
/// Tokens per request: one sequence of 128.
pub const SEQ_LEN: usize = 128;
/// Where the raw results go, under the work directory.
const RAW_FILE: &str = "serve-raw.json";
/// Where `--low-load-only` writes its raw results, under the work directory.
const LOW_LOAD_FILE: &str = "serve-lowload.json";
/// How long the low-load run of `--low-load-only` lasts (the full run's is shorter, and its
/// p50 over 50 requests moves by a few tenths of a ms from run to run).
const LOW_LOAD_ONLY_RUN: Duration = Duration::from_secs(30);

/// The model every server serves: the small config at sequence 128.
pub fn shape() -> ModelShape {
    ModelShape {
        sequence_length: SEQ_LEN,
        ..ModelShape::SMALL
    }
}

/// How long each phase runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Durations {
    pub warmup: Duration,
    pub low_load: Duration,
    pub probe: Duration,
    pub fraction: Duration,
    pub overload: Duration,
    /// Pause after each run, so that the server drains before the next.
    pub settle: Duration,
    pub search: SearchParams,
}

impl Durations {
    /// The full run (about 1.5 minutes per server plus PyTorch's compile) or the smoke run.
    pub fn new(quick: bool) -> Self {
        let s = Duration::from_secs_f64;
        if quick {
            Self {
                warmup: s(0.5),
                low_load: s(1.5),
                probe: s(1.0),
                fraction: s(1.0),
                overload: s(1.5),
                settle: s(0.3),
                search: SearchParams {
                    start: 32.0,
                    max: 4096.0,
                    min: 1.0,
                    bisect_steps: 2,
                    rel_tol: 0.1,
                },
            }
        } else {
            Self {
                warmup: s(1.5),
                low_load: s(5.0),
                probe: s(4.0),
                fraction: s(5.0),
                overload: s(6.0),
                settle: s(0.7),
                search: SearchParams {
                    start: 32.0,
                    max: 8192.0,
                    min: 1.0,
                    bisect_steps: 5,
                    rel_tol: 0.04,
                },
            }
        }
    }
}

/// The figures of one load run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    pub rate: f64,
    pub sent: usize,
    pub ok: usize,
    pub too_many: usize,
    /// Answers other than 200 and 429.
    pub other_status: usize,
    /// No HTTP answer (connection error or timeout).
    pub failed: usize,
    /// Latencies of the 200s.
    pub ok_ms: Option<Percentiles>,
    /// Latencies of the 200s from the actual send (see [`LoadResult::latencies_from_send_ms`]).
    pub ok_from_send_ms: Option<Percentiles>,
    /// Latencies of the 429s.
    pub too_many_ms: Option<Percentiles>,
    /// p99 over every request, a non-200 counted as infinitely late.
    pub p99_all_ms: Option<f64>,
    /// Whether the run sustained its rate (see [`latency::sustains`]).
    pub sustained: bool,
    pub wall_s: f64,
    pub max_send_lag_ms: f64,
    pub rss: Option<RssTrace>,
    /// The client's CPU use over the run, in cores (CPU seconds / wall seconds).
    pub client_cores: Option<f64>,
    pub first_error: Option<String>,
}

impl RunSummary {
    /// The summary of a load run.
    pub fn of(r: &LoadResult) -> Self {
        let all = r.latencies_ms_ok_or_inf();
        let ok = r.count(200);
        let too_many = r.count(429);
        Self {
            rate: r.rate,
            sent: r.outcomes.len(),
            ok,
            too_many,
            other_status: r.outcomes.len() - ok - too_many - r.failed(),
            failed: r.failed(),
            ok_ms: Percentiles::of(&r.latencies_ms(200)),
            ok_from_send_ms: Percentiles::of(&r.latencies_from_send_ms(200)),
            too_many_ms: Percentiles::of(&r.latencies_ms(429)),
            p99_all_ms: latency::percentile(&all, 99.0),
            sustained: latency::sustains(&all, P99_BOUND_MS),
            wall_s: r.wall.as_secs_f64(),
            max_send_lag_ms: r.max_send_lag_ms(),
            rss: r.rss,
            client_cores: r
                .client_cpu_s
                .filter(|_| r.wall > Duration::ZERO)
                .map(|cpu| cpu / r.wall.as_secs_f64()),
            first_error: r.first_error().map(str::to_owned),
        }
    }

    /// The share of requests answered 429.
    pub fn share_429(&self) -> Option<f64> {
        (self.sent > 0).then(|| self.too_many as f64 / self.sent as f64)
    }

    /// The raw JSON of this summary.
    pub fn to_json(&self) -> serde_json::Value {
        let pct = |p: &Option<Percentiles>| {
            p.map(|p| serde_json::json!({"p50": p.p50, "p90": p.p90, "p99": p.p99, "max": p.max}))
        };
        serde_json::json!({
            "rate": self.rate,
            "sent": self.sent,
            "ok": self.ok,
            "status_429": self.too_many,
            "other_status": self.other_status,
            "failed": self.failed,
            "ok_ms": pct(&self.ok_ms),
            "ok_from_send_ms": pct(&self.ok_from_send_ms),
            "status_429_ms": pct(&self.too_many_ms),
            "p99_all_ms": self.p99_all_ms.filter(|v| v.is_finite()),
            "sustained": self.sustained,
            "wall_s": self.wall_s,
            "max_send_lag_ms": self.max_send_lag_ms,
            "rss_mb": self.rss.map(|r| serde_json::json!({
                "first": r.first_mb, "max": r.max_mb, "last": r.last_mb
            })),
            "client_cores": self.client_cores,
            "first_error": self.first_error,
        })
    }
}

/// Everything measured for one server.
#[derive(Debug, Clone, Default)]
pub struct ServerReport {
    /// `spectrans-rs` or `pytorch`.
    pub name: String,
    /// Its `GET /info` answer.
    pub info: Option<serde_json::Value>,
    pub low_load: Option<RunSummary>,
    pub search: Option<SearchOutcome>,
    /// The probe runs of the search, in order.
    pub probes: Vec<RunSummary>,
    /// (fraction, run) at 25 %, 50 %, 90 % of the sustained rate.
    pub fractions: Vec<(f64, RunSummary)>,
    pub overload: Option<RunSummary>,
    /// VmHWM after the overload (the peak since the process started), MiB.
    pub peak_rss_mb: Option<f64>,
    /// How it exited on SIGTERM.
    pub exit: Option<String>,
    /// Why the measurement stopped early (or never started).
    pub error: Option<String>,
}

impl ServerReport {
    /// The highest rate with p99 under the bound, if the search found one.
    pub fn sustained(&self) -> Option<f64> {
        self.search.as_ref().and_then(|s| s.best)
    }

    /// The probe run at the sustained rate.
    pub fn sustained_probe(&self) -> Option<&RunSummary> {
        let best = self.sustained()?;
        self.probes
            .iter()
            .rev()
            .find(|p| p.rate == best && p.sustained)
    }
}

/// Runs the serving benchmark with the arguments after `bench serve`.
pub fn run(root: &Path, args: &[String]) -> Result<(), BenchError> {
    let opts = options::parse(args)?;
    let machine = Machine::detect(root);
    let started = Instant::now();
    let load_start = machine::load_average();
    let work = root.join("bench-out");
    let ours_bin = match &opts.bin {
        Some(bin) => bin.clone(),
        None => runner::build_ours(root, &work)?,
    };
    let serve_dir = work.join("serve");
    fs::create_dir_all(&serve_dir).map_err(BenchError::io(&serve_dir))?;
    let config = serve_dir.join(format!("{}.toml", shape().stem()));
    fs::write(&config, shape().to_toml()).map_err(BenchError::io(&config))?;
    let weights = serve_dir.join("weights.safetensors");
    runner::run_checked(
        Command::new(&ours_bin)
            .arg("init")
            .arg("--config")
            .arg(&config)
            .arg("--output")
            .arg(&weights)
            .args(["--seed", "0"]),
    )?;
    let body = request_body(&shape(), 0);
    let durations = Durations::new(opts.quick);
    let threads = opts.threads;

    eprintln!("bench serve: spectrans bench --batch 1 --seq-len {SEQ_LEN} --threads {threads}");
    let bench_batch1_ms = bench_batch1(&ours_bin, &config, threads, opts.quick, 0);
    if let Err(e) = &bench_batch1_ms {
        eprintln!("bench serve: no batch-1 reference: {e}");
    }
    let idle_ms = low_load_gap_ms();
    eprintln!("bench serve: the same, {idle_ms} ms idle before each forward");
    let bench_batch1_idle_ms = bench_batch1(&ours_bin, &config, threads, opts.quick, idle_ms);
    if let Err(e) = &bench_batch1_idle_ms {
        eprintln!("bench serve: no idle batch-1 reference: {e}");
    }

    let mut ours_cmd = Command::new(&ours_bin);
    ours_cmd
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .arg("--weights")
        .arg(&weights)
        .args(["--host", "127.0.0.1", "--port", "0"])
        .args(["--threads", &threads.to_string()]);
    thread_env(&mut ours_cmd, threads);
    if opts.low_load_only {
        let refs = (bench_batch1_ms.ok(), bench_batch1_idle_ms.ok());
        return low_load_only(ours_cmd, &body, &durations, refs, &work.join(LOW_LOAD_FILE));
    }
    let ours = measure_server(
        "spectrans-rs",
        ours_cmd,
        Duration::from_secs(120),
        &body,
        &durations,
        None,
    );

    let mut torch_missing = None;
    let torch = if opts.no_torch {
        torch_missing = Some("--no-torch was given".to_string());
        None
    } else {
        let py = refenv::python(root);
        if !py.exists() {
            torch_missing = Some(format!(
                "no reference environment ({} is missing; make it with `cargo xtask ref-env`)",
                py.display()
            ));
            None
        } else {
            let mut cmd = Command::new(&py);
            cmd.arg(refenv::scripts_dir(root).join("serve_torch.py"))
                .arg("--config")
                .arg(&config)
                .arg("--weights")
                .arg(&weights)
                .args(["--host", "127.0.0.1", "--port", "0"])
                .args(["--threads", &threads.to_string()])
                .args(["--variant", &opts.torch_variant])
                .current_dir(root);
            thread_env(&mut cmd, threads);
            // The same bound on waiting work as ours: its queue holds as many sequences as
            // ours accepts requests (one sequence each here) before answering 429.
            if let Some(n) = ours
                .info
                .as_ref()
                .and_then(|i| i.get("max_concurrent_requests"))
                .and_then(serde_json::Value::as_u64)
            {
                cmd.args(["--max-queue", &n.to_string()]);
            }
            // The overload is 3x OUR sustainable rate; without ours, 3x its own.
            let overload_rate = ours.sustained().map(|r| r * OVERLOAD_FACTOR);
            Some(measure_server(
                "pytorch",
                cmd,
                Duration::from_secs(900),
                &body,
                &durations,
                overload_rate,
            ))
        }
    };

    let load_end = machine::load_average();
    let mut command = String::from("cargo xtask bench serve");
    for a in args {
        command.push(' ');
        command.push_str(a);
    }
    let input = report::ReportInput {
        machine: &machine,
        command,
        quick: opts.quick,
        threads,
        elapsed_s: started.elapsed().as_secs_f64(),
        load: (load_start, load_end),
        bench_batch1_ms: bench_batch1_ms.as_ref().ok().copied(),
        bench_batch1_idle_ms: bench_batch1_idle_ms.as_ref().ok().copied(),
        ours: &ours,
        torch: torch.as_ref(),
        torch_missing,
        durations: &durations,
    };
    let raw = report::raw_json(&input);
    let raw_path = work.join(RAW_FILE);
    write(&raw_path, &format!("{raw:#}\n"))?;
    let section = report::render(&input);
    let out = if opts.out.is_absolute() {
        opts.out.clone()
    } else {
        root.join(&opts.out)
    };
    let section_path = section_file(&out);
    write(&section_path, &section)?;
    let doc = fs::read_to_string(&out).unwrap_or_default();
    write(&out, &report::splice_section(&doc, &section))?;
    eprintln!(
        "bench serve: wrote {}, {} and {} in {:.0} s",
        out.display(),
        section_path.display(),
        raw_path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `<dir of out>/benchmarks/serving.md`: the section alone, which `cargo xtask bench` appends
/// when it regenerates the model report.
pub fn section_file(out: &Path) -> PathBuf {
    out.parent()
        .unwrap_or(Path::new("."))
        .join("benchmarks")
        .join("serving.md")
}

/// Writes `text` to a temp file next to `path` and renames it into place.
fn write(path: &Path, text: &str) -> Result<(), BenchError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(BenchError::io(dir))?;
    }
    spectrans_config::write_atomically(path, text.as_bytes()).map_err(BenchError::io(path))
}

/// The thread-count variables every runtime of both servers reads.
fn thread_env(cmd: &mut Command, threads: usize) {
    let t = threads.to_string();
    cmd.env("RAYON_NUM_THREADS", &t)
        .env("OMP_NUM_THREADS", &t)
        .env("MKL_NUM_THREADS", &t);
}

/// `{"input_ids": [128 ids]}`: a fixed pseudo-random sequence (the same for both servers).
pub fn request_body(shape: &ModelShape, seed: u64) -> Bytes {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let ids: Vec<u64> = (0..shape.sequence_length)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % shape.vocab_size as u64
        })
        .collect();
    Bytes::from(serde_json::json!({ "input_ids": ids }).to_string())
}

/// The time between two requests of the low-load run, in whole ms.
pub fn low_load_gap_ms() -> u64 {
    (1000.0 / LOW_LOAD_RATE).round() as u64
}

/// `spectrans bench --batch 1 --seq-len 128 --threads T --idle-ms MS --json`: the median
/// forward in ms, back to back (`idle_ms` 0) or each after `idle_ms` of sleep.
fn bench_batch1(
    bin: &Path,
    config: &Path,
    threads: usize,
    quick: bool,
    idle_ms: u64,
) -> Result<f64, BenchError> {
    let iters = match (quick, idle_ms) {
        (true, _) => 20,
        (false, 0) => 200,
        (false, _) => 60,
    };
    let mut cmd = Command::new(bin);
    cmd.arg("bench")
        .arg("--json")
        .arg("--config")
        .arg(config)
        .args(["--batch", "1", "--seq-len", &SEQ_LEN.to_string()])
        .args(["--iters", &iters.to_string()])
        .args(["--idle-ms", &idle_ms.to_string()])
        .args(["--threads", &threads.to_string()]);
    thread_env(&mut cmd, threads);
    let stdout = runner::run_checked(&mut cmd)?;
    let line = stdout
        .lines()
        .rfind(|l| l.trim_start().starts_with('{'))
        .ok_or_else(|| {
            BenchError::BadLine(format!("no JSON line from spectrans bench: {stdout}"))
        })?;
    let v: serde_json::Value =
        serde_json::from_str(line).map_err(|e| BenchError::BadLine(format!("{e}: {line}")))?;
    v.get("forward_ms")
        .and_then(serde_json::Value::as_f64)
        .ok_or_else(|| BenchError::BadLine(format!("no forward_ms in {line}")))
}

/// `--low-load-only`: starts `spectrans serve`, warms it up, sends single requests at
/// [`LOW_LOAD_RATE`] for [`LOW_LOAD_ONLY_RUN`] (a tenth of it with `--quick`), prints the
/// latencies against the batch-1 references `(back to back, idle)` and writes the raw JSON.
fn low_load_only(
    cmd: Command,
    body: &Bytes,
    d: &Durations,
    refs: (Option<f64>, Option<f64>),
    raw_path: &Path,
) -> Result<(), BenchError> {
    let mut server = Server::start("spectrans-rs", cmd, Duration::from_secs(120))?;
    let (addr, pid) = (server.addr, server.pid());
    let spec =
        |rate: f64, duration: Duration| LoadSpec::predict(addr, body.clone(), rate, duration, pid);
    load::run(&spec(20.0, d.warmup))?;
    std::thread::sleep(d.settle);
    let run = if d.low_load < Duration::from_secs(2) {
        LOW_LOAD_ONLY_RUN / 10
    } else {
        LOW_LOAD_ONLY_RUN
    };
    let before = server_means(addr);
    let result = load::run(&spec(LOW_LOAD_RATE, run))?;
    let after = server_means(addr);
    let summary = RunSummary::of(&result);
    let alive = server.alive();
    let tail = server.stderr_tail();
    let exit = server.stop(Duration::from_secs(15));
    if !alive {
        return Err(BenchError::Server(format!(
            "spectrans-rs died during the low-load run; its stderr ends: {tail}"
        )));
    }
    let (bench, idle) = refs;
    let (p, q) = (summary.ok_ms, summary.ok_from_send_ms);
    let gap = |r: Option<f64>| {
        q.zip(r)
            .map_or("-".to_string(), |(q, b)| format!("{:+.2}", q.p50 - b))
    };
    let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    eprintln!(
        "bench serve: low load {LOW_LOAD_RATE} req/s: {} sent, {} answered 200, client sent {} ms late at most; \
         from the schedule p50 {} ms, p99 {} ms; from the send p50 {} ms, p90 {} ms, p99 {} ms; \
         bench batch 1 {} ms (send p50 {} ms), idle {} ms (send p50 {} ms); {exit}",
        summary.sent,
        summary.ok,
        f(Some(summary.max_send_lag_ms)),
        f(p.map(|p| p.p50)),
        f(p.map(|p| p.p99)),
        f(q.map(|q| q.p50)),
        f(q.map(|q| q.p90)),
        f(q.map(|q| q.p99)),
        f(bench),
        gap(bench),
        f(idle),
        gap(idle),
    );
    // Means over the low-load run, from the server's own histograms: the time from a
    // request's arrival to its answer, and the model forward.
    let means: Vec<Option<f64>> = (0..2)
        .map(|i| {
            let ((s0, c0), (s1, c1)) = (before?[i], after?[i]);
            (c1 > c0).then(|| (s1 - s0) / (c1 - c0) * 1e3)
        })
        .collect();
    eprintln!(
        "bench serve: server-side means over the run: request {:.3} ms, forward {:.3} ms",
        means[0].unwrap_or(f64::NAN),
        means[1].unwrap_or(f64::NAN)
    );
    let raw = serde_json::json!({
        "server_request_mean_ms": means[0],
        "server_forward_mean_ms": means[1],
        "low_load": summary.to_json(),
        "bench_batch1_ms": bench,
        "bench_batch1_idle_ms": idle,
        "exit": exit,
    });
    write(raw_path, &format!("{raw:#}\n"))
}

/// `(sum, count)` of the server's `/predict` request-duration histogram and of its forward
/// histogram, read from `GET /metrics`; `None` when unreadable.
fn server_means(addr: std::net::SocketAddr) -> Option<[(f64, f64); 2]> {
    let (status, text) = load::request_once(addr, "/metrics", None, Duration::from_secs(5)).ok()?;
    if status != 200 {
        return None;
    }
    let find = |prefix: &str, filter: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix) && l.contains(filter))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    let request = "spectrans_http_request_duration_seconds";
    let forward = "spectrans_forward_duration_seconds";
    Some([
        (
            find(&format!("{request}_sum"), "/predict")?,
            find(&format!("{request}_count"), "/predict")?,
        ),
        (
            find(&format!("{forward}_sum"), "")?,
            find(&format!("{forward}_count"), "")?,
        ),
    ])
}

/// Starts one server and measures everything; a failure is recorded in the report, not
/// returned, so that the other server is still measured.
fn measure_server(
    name: &str,
    cmd: Command,
    ready_within: Duration,
    body: &Bytes,
    d: &Durations,
    overload_rate: Option<f64>,
) -> ServerReport {
    let mut report = ServerReport {
        name: name.to_string(),
        ..ServerReport::default()
    };
    eprintln!("bench serve: starting {name}");
    let mut server = match Server::start(name, cmd, ready_within) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            report.error = Some(error_text(&e));
            return report;
        }
    };
    if let Err(e) = phases(&mut server, &mut report, body, d, overload_rate) {
        eprintln!("{e}");
        report.error = Some(error_text(&e));
    }
    report.peak_rss_mb = rss::vm_hwm_mb(server.pid());
    report.exit = Some(server.stop(Duration::from_secs(15)));
    report
}

/// An error's message for the report (without the `bench serve:` prefix of a server error).
fn error_text(e: &BenchError) -> String {
    match e {
        BenchError::Server(message) => message.clone(),
        other => other.to_string(),
    }
}

/// The measurement phases against a started server.
fn phases(
    server: &mut Server,
    report: &mut ServerReport,
    body: &Bytes,
    d: &Durations,
    overload_rate: Option<f64>,
) -> Result<(), BenchError> {
    let name = server.name.clone();
    report.info = load::request_once(server.addr, "/info", None, Duration::from_secs(5))
        .ok()
        .filter(|(status, _)| *status == 200)
        .and_then(|(_, text)| serde_json::from_str(&text).ok());
    let go = |server: &mut Server, rate: f64, duration: Duration, what: &str| {
        let spec = LoadSpec::predict(server.addr, body.clone(), rate, duration, server.pid());
        let result = load::run(&spec)?;
        std::thread::sleep(d.settle);
        let summary = RunSummary::of(&result);
        eprintln!(
            "bench serve: {name:<12} {what:<10} {rate:>7.1} req/s  200: {:>5}  429: {:>5}  other: {:>3}  failed: {:>3}  p50 {:>7.2} ms  p99 {:>7.2} ms  client {:>4.2} cores{}",
            summary.ok,
            summary.too_many,
            summary.other_status,
            summary.failed,
            summary.ok_ms.map_or(f64::NAN, |p| p.p50),
            summary.ok_ms.map_or(f64::NAN, |p| p.p99),
            summary.client_cores.unwrap_or(f64::NAN),
            if summary.sustained {
                ""
            } else {
                "  (not sustained)"
            }
        );
        if !server.alive() {
            return Err(BenchError::Server(format!(
                "{name} died during the {what} run at {rate:.1} req/s; its stderr ends: {}",
                server.stderr_tail()
            )));
        }
        Ok::<RunSummary, BenchError>(summary)
    };
    go(server, 20.0, d.warmup, "warm-up")?;
    report.low_load = Some(go(server, LOW_LOAD_RATE, d.low_load, "low load")?);
    let mut probes = Vec::new();
    let outcome = search::search(d.search, |rate| {
        let s = go(server, rate, d.probe, "probe")?;
        let passed = s.sustained;
        probes.push(s);
        Ok::<bool, BenchError>(passed)
    });
    report.probes = probes;
    let outcome = outcome?;
    let best = outcome.best;
    report.search = Some(outcome);
    let Some(best) = best else {
        return Err(BenchError::Server(format!(
            "{name} sustained no rate down to {} req/s with p99 < {P99_BOUND_MS} ms",
            d.search.min
        )));
    };
    eprintln!("bench serve: {name} sustains {best:.1} req/s with p99 < {P99_BOUND_MS} ms");
    for &f in FRACTIONS {
        let s = go(server, best * f, d.fraction, &format!("{:.0} %", f * 100.0))?;
        report.fractions.push((f, s));
    }
    let rate = overload_rate.unwrap_or(best * OVERLOAD_FACTOR);
    report.overload = Some(go(server, rate, d.overload, "overload")?);
    Ok(())
}

#[cfg(test)]
mod tests;

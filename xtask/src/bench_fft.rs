//! `cargo xtask bench fft`: the spectrans-fft criterion bench, and torch.fft side by side.
//!
//! Runs `cargo bench -p spectrans-fft --bench fft`, reads criterion's medians from
//! `target/criterion/<group>/<shape>/new/estimates.json`, then times PyTorch with the
//! reference venv's Python at the same shapes and thread count (`RAYON_NUM_THREADS`, else
//! the number of CPUs; torch gets `torch.set_num_threads` of the same), and prints a table.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::refenv;

/// The bench's shapes (B, n, D); they must match `crates/spectrans-fft/benches/fft.rs`.
const SHAPES: [(usize, usize, usize); 2] = [(8, 512, 768), (32, 128, 256)];

/// Timing snippet: one JSON line per (op, shape), median of `runs` after `warmup` runs.
const TORCH_SNIPPET: &str = r#"
import json, statistics, sys, time, torch
threads, runs, warmup = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
shapes = json.loads(sys.argv[4])
torch.set_num_threads(threads)
torch.manual_seed(0)
def median_ms(step):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)
with torch.inference_mode():
    for b, n, d in shapes:
        x = torch.randn(b, n, d)
        hf = torch.randn(n // 2 + 1, d, dtype=torch.complex64)
        h = torch.randn(n, d, dtype=torch.complex64)
        ops = {
            "rfft_irfft": lambda: torch.fft.irfft(torch.fft.rfft(x, dim=1, norm="ortho"), n=n, dim=1, norm="ortho"),
            "filter_rfft": lambda: torch.fft.irfft(torch.fft.rfft(x, dim=1, norm="ortho") * hf, n=n, dim=1, norm="ortho"),
            "filter_spectrans": lambda: torch.fft.ifft(torch.fft.fft(x, dim=1, norm="ortho") * h, dim=1, norm="ortho").real,
        }
        for op, step in ops.items():
            print(json.dumps({"op": op, "shape": [b, n, d], "median_ms": median_ms(step), "threads": torch.get_num_threads()}))
"#;

/// What can stop the bench.
#[derive(Debug)]
pub enum BenchFftError {
    /// An argument this subcommand does not know.
    Usage(String),
    /// A command could not start or failed.
    Command { command: String, detail: String },
    /// Criterion's estimates file is missing or unreadable.
    Estimates { path: PathBuf, detail: String },
}

impl fmt::Display for BenchFftError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Usage(arg) => write!(
                f,
                "unknown argument {arg:?}; usage: cargo xtask bench fft [--no-torch] [--torch-runs K]"
            ),
            Self::Command { command, detail } => write!(f, "`{command}` failed: {detail}"),
            Self::Estimates { path, detail } => {
                write!(f, "criterion estimates {}: {detail}", path.display())
            }
        }
    }
}

impl std::error::Error for BenchFftError {}

struct Options {
    torch: bool,
    torch_runs: usize,
}

fn parse(args: &[String]) -> Result<Options, BenchFftError> {
    let mut options = Options {
        torch: true,
        torch_runs: 50,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--no-torch" => options.torch = false,
            "--torch-runs" => {
                options.torch_runs = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&k: &usize| k >= 1)
                    .ok_or_else(|| {
                        BenchFftError::Usage("--torch-runs needs an integer >= 1".into())
                    })?;
            }
            other => return Err(BenchFftError::Usage(other.to_owned())),
        }
    }
    Ok(options)
}

/// Entry point of `cargo xtask bench fft [--no-torch] [--torch-runs K]`.
pub fn run(root: &Path, args: &[String]) -> Result<(), BenchFftError> {
    let options = parse(args)?;
    let threads = thread_count();
    println!("bench fft: {threads} thread(s) (RAYON_NUM_THREADS / torch.set_num_threads)");

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let command = format!("{cargo} bench -p spectrans-fft --bench fft");
    let status = Command::new(&cargo)
        .args(["bench", "-p", "spectrans-fft", "--bench", "fft"])
        .env("RAYON_NUM_THREADS", threads.to_string())
        .current_dir(root)
        .status()
        .map_err(|e| BenchFftError::Command {
            command: command.clone(),
            detail: e.to_string(),
        })?;
    if !status.success() {
        return Err(BenchFftError::Command {
            command,
            detail: status.to_string(),
        });
    }

    let criterion = target_dir(root).join("criterion");
    let mut rows = Vec::new();
    for &(b, n, d) in &SHAPES {
        let shape = format!("{b}x{n}x{d}");
        let round_trip = criterion_median_ms(&criterion, "rfft_irfft", &shape)?;
        let filter = criterion_median_ms(&criterion, "filter", &shape)?;
        rows.push((shape.clone(), "rfft+irfft", round_trip, "rfft_irfft"));
        rows.push((shape.clone(), "filter", filter, "filter_rfft"));
        rows.push((shape, "filter", filter, "filter_spectrans"));
    }

    let torch = if options.torch {
        torch_medians(root, threads, options.torch_runs)
    } else {
        Vec::new()
    };

    println!();
    println!(
        "| shape (B, n, D) | spectrans-fft | median ms | torch (same threads) | median ms | torch / ours |"
    );
    println!("| --- | --- | ---: | --- | ---: | ---: |");
    for (shape, ours, ours_ms, torch_op) in rows {
        let theirs = torch
            .iter()
            .find(|(op, s, _)| op == torch_op && *s == shape)
            .map(|(_, _, ms)| *ms);
        let (theirs_text, ratio) = match theirs {
            Some(ms) => (format!("{ms:.3}"), format!("{:.2}x", ms / ours_ms)),
            None => ("-".to_owned(), "-".to_owned()),
        };
        println!(
            "| {shape} | {ours} | {ours_ms:.3} | {} | {theirs_text} | {ratio} |",
            torch_label(torch_op)
        );
    }
    Ok(())
}

fn torch_label(op: &str) -> &'static str {
    match op {
        "rfft_irfft" => "rfft + irfft (ortho)",
        "filter_rfft" => "irfft(rfft(x) * Hf)",
        _ => "spectrans: ifft(fft(x) * H).real",
    }
}

/// `RAYON_NUM_THREADS` when set to a positive integer, else the number of CPUs.
fn thread_count() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&t: &usize| t >= 1)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

/// Criterion's median (`median.point_estimate`, ns) of one benchmark, in ms.
fn criterion_median_ms(criterion: &Path, group: &str, shape: &str) -> Result<f64, BenchFftError> {
    let path = criterion
        .join(group)
        .join(shape)
        .join("new")
        .join("estimates.json");
    let err = |detail: String| BenchFftError::Estimates {
        path: path.clone(),
        detail,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| err(e.to_string()))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
    json["median"]["point_estimate"]
        .as_f64()
        .map(|ns| ns / 1e6)
        .ok_or_else(|| err("no median.point_estimate".to_owned()))
}

/// (op, "BxNxD", median ms) from the torch snippet; empty (with a note) when the reference
/// venv is missing or the snippet fails, so the Rust numbers still print.
fn torch_medians(root: &Path, threads: usize, runs: usize) -> Vec<(String, String, f64)> {
    let python = refenv::python(root);
    if !python.exists() {
        println!(
            "bench fft: no PyTorch reference venv at {}; skipping the torch side.\n\
             Create it with `cargo xtask ref-env` (recipe: python3 -m venv .venv-ref; \
             .venv-ref/bin/pip install torch numpy ...; see /work/shared/reference-env.md).",
            python.display()
        );
        return Vec::new();
    }
    let shapes = serde_json::to_string(&SHAPES).unwrap_or_else(|_| "[]".to_owned());
    let output = Command::new(&python)
        .args(["-c", TORCH_SNIPPET])
        .args([
            threads.to_string(),
            runs.to_string(),
            "5".to_owned(),
            shapes,
        ])
        .current_dir(root)
        .output();
    let output = match output {
        Ok(out) if out.status.success() => out,
        Ok(out) => {
            eprintln!(
                "bench fft: torch snippet failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            return Vec::new();
        }
        Err(e) => {
            eprintln!("bench fft: could not run {}: {e}", python.display());
            return Vec::new();
        }
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|v| {
            let op = v["op"].as_str()?.to_owned();
            let shape = v["shape"].as_array()?;
            let dims: Vec<String> = shape
                .iter()
                .filter_map(|d| d.as_u64())
                .map(|d| d.to_string())
                .collect();
            Some((op, dims.join("x"), v["median_ms"].as_f64()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_and_reject_unknown_arguments() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let o = parse(&args(&["--no-torch", "--torch-runs", "7"])).unwrap();
        assert!(!o.torch);
        assert_eq!(o.torch_runs, 7);
        assert!(parse(&args(&["--torch-runs", "0"])).is_err());
        assert!(matches!(parse(&args(&["--fast"])), Err(BenchFftError::Usage(a)) if a == "--fast"));
    }

    #[test]
    fn median_is_read_from_criterion_estimates() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-fft-{}", std::process::id()));
        let bench = dir.join("filter").join("8x512x768").join("new");
        std::fs::create_dir_all(&bench).unwrap();
        std::fs::write(
            bench.join("estimates.json"),
            r#"{"mean":{"point_estimate":2.0e6},"median":{"point_estimate":1.5e6}}"#,
        )
        .unwrap();
        assert_eq!(
            criterion_median_ms(&dir, "filter", "8x512x768").unwrap(),
            1.5
        );
        assert!(criterion_median_ms(&dir, "filter", "1x1x1").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

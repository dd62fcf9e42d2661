//! Runs both implementations, one fresh process per measurement, alternating
//! ours, torch, ours, torch, ... so that drift of the machine hits both sides alike.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use super::error::BenchError;
use super::plan::{Case, Mode, Plan};
use super::sample::{Impl, Sample, Variant, parse_line, parse_output};
use crate::refenv;

/// The two programs that are timed.
#[derive(Debug, Clone)]
pub struct Programs {
    /// A private copy of the release `spectrans` binary (others may rebuild the original).
    pub ours: PathBuf,
    /// The reference Python and `bench_torch.py`, when the reference environment exists.
    pub torch: Option<(PathBuf, PathBuf)>,
}

/// Everything measured for one case: the samples of every process, per side and PyTorch
/// variant, and the processes that failed (with their error).
#[derive(Debug, Clone, Default)]
pub struct CaseResult {
    pub ours: Vec<Sample>,
    pub torch: BTreeMap<Variant, Vec<Sample>>,
    pub failures: Vec<(Impl, String)>,
    /// Sides not run because their estimate was over a limit (see
    /// [`super::longseq::skip_reason`]), with the reason.
    pub skipped: Vec<(Impl, String)>,
}

impl CaseResult {
    /// The samples of one side.
    pub fn samples(&self, side: Impl) -> &[Sample] {
        match side {
            Impl::Ours => &self.ours,
            Impl::Torch(v) => self.torch.get(&v).map_or(&[], Vec::as_slice),
        }
    }

    /// Records one process's sample.
    pub fn push(&mut self, side: Impl, sample: Sample) {
        match side {
            Impl::Ours => self.ours.push(sample),
            Impl::Torch(v) => self.torch.entry(v).or_default().push(sample),
        }
    }

    /// Why `side` was skipped, if it was.
    pub fn skip(&self, side: Impl) -> Option<&str> {
        self.skipped
            .iter()
            .find(|(s, _)| *s == side)
            .map(|(_, why)| why.as_str())
    }

    /// The first failure of `side`, if any.
    pub fn failure(&self, side: Impl) -> Option<&str> {
        self.failures
            .iter()
            .find(|(s, _)| *s == side)
            .map(|(_, why)| why.as_str())
    }
}

/// Builds `spectrans` in release and copies it to `dir/spectrans` so that a rebuild by someone
/// else during the run cannot change what is measured.
pub fn build_ours(root: &Path, dir: &Path) -> Result<PathBuf, BenchError> {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args([
        "build",
        "--release",
        "-p",
        "spectrans-cli",
        "--bin",
        "spectrans",
    ])
    .current_dir(root);
    eprintln!("bench: cargo build --release -p spectrans-cli");
    run_checked(&mut cmd)?;
    let built = root.join("target").join("release").join("spectrans");
    fs::create_dir_all(dir).map_err(BenchError::io(dir))?;
    let copy = dir.join("spectrans");
    fs::copy(&built, &copy).map_err(BenchError::io(&built))?;
    Ok(copy)
}

/// The reference Python and script, or `None` (with the reason on stderr) when the reference
/// environment is missing.
pub fn find_torch(root: &Path) -> Option<(PathBuf, PathBuf)> {
    let py = refenv::python(root);
    let script = refenv::scripts_dir(root).join("bench_torch.py");
    let ok = py.exists()
        && Command::new(&py)
            .args(["-c", refenv::CHECK_IMPORT])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
    if ok {
        Some((py, script))
    } else {
        eprintln!(
            "bench: no working PyTorch reference at {} (make it with `cargo xtask ref-env`); \
             measuring ours only",
            py.display()
        );
        None
    }
}

/// Runs every case of `plan` (`configs[i]` is case i's TOML), logging each process and
/// appending its line to `raw_log`.
pub fn run_plan(
    plan: &Plan,
    configs: &[PathBuf],
    programs: &Programs,
    raw_log: &Path,
) -> Result<Vec<CaseResult>, BenchError> {
    let mut raw = String::new();
    let total: usize = plan.cases.iter().map(|c| c.rounds).sum();
    let mut done = 0;
    let mut results = Vec::with_capacity(plan.cases.len());
    for (case, config) in plan.cases.iter().zip(configs) {
        let mut result = CaseResult::default();
        for round in 0..case.rounds {
            done += 1;
            let mut sides = vec![Impl::Ours];
            if programs.torch.is_some() {
                // A variant that failed once (it does not compile, say) is not retried.
                sides.extend(
                    case.variants
                        .iter()
                        .filter(|&&v| round < case.rounds_of(v))
                        .map(|&v| Impl::Torch(v))
                        .filter(|&side| result.failure(side).is_none()),
                );
            }
            sides.retain(|&side| result.skip(side).is_none());
            for side in sides {
                if let Some(why) = super::longseq::skip_reason(plan, &results, case, side) {
                    eprintln!(
                        "bench [{done}/{total}] {:<17} {:<32} skipped: {why}",
                        side.label(),
                        case.label()
                    );
                    raw.push_str(&format!(
                        "{}\n",
                        serde_json::json!({
                            "case": case.label(),
                            "side": side.label(),
                            "skipped": why,
                        })
                    ));
                    result.skipped.push((side, why));
                    continue;
                }
                let started = Instant::now();
                let outcome = run_one(case, config, side, programs);
                let secs = started.elapsed().as_secs_f64();
                match outcome {
                    Ok((sample, line)) => {
                        eprintln!(
                            "bench [{done}/{total}] {:<17} {:<32} {:>10.1} ms  rss {:>7.1} MiB  ({secs:.1} s)",
                            side.label(),
                            case.label(),
                            sample.median_ms,
                            sample.peak_rss_mb.unwrap_or(f64::NAN)
                        );
                        raw.push_str(&format!(
                            "{{\"case\":\"{}\",\"side\":\"{}\",\"result\":{}}}\n",
                            case.label(),
                            side.label(),
                            line
                        ));
                        result.push(side, sample);
                    }
                    Err(err) => {
                        eprintln!(
                            "bench [{done}/{total}] {} {}: FAILED: {err}",
                            side.label(),
                            case.label()
                        );
                        raw.push_str(&format!(
                            "{}\n",
                            serde_json::json!({
                                "case": case.label(),
                                "side": side.label(),
                                "error": err.to_string(),
                            })
                        ));
                        result.failures.push((side, err.to_string()));
                    }
                }
            }
        }
        results.push(result);
        fs::write(raw_log, &raw).map_err(BenchError::io(raw_log))?;
    }
    Ok(results)
}

/// The results of `plan` from the raw log of a run (one JSON object per process:
/// `{"case", "side", "result"}`, `{"case", "side", "error"}` or `{"case", "side", "skipped"}`);
/// lines of cases or sides this plan does not have are left out.
pub fn results_from_raw(plan: &Plan, text: &str) -> Result<Vec<CaseResult>, BenchError> {
    let mut results = vec![CaseResult::default(); plan.cases.len()];
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| BenchError::BadLine(format!("raw line {}: {e}", n + 1)))?;
        let field = |k: &str| v.get(k).and_then(serde_json::Value::as_str);
        let (Some(case), Some(side)) = (field("case"), field("side")) else {
            continue;
        };
        let Some(i) = plan.cases.iter().position(|c| c.label() == case) else {
            continue;
        };
        let side = match side {
            "spectrans-rs" => Impl::Ours,
            other => match Variant::KNOWN.iter().find(|v| v.arg() == other) {
                Some(&v) => Impl::Torch(v),
                None => continue,
            },
        };
        if let Some(err) = field("error") {
            results[i].failures.push((side, err.to_owned()));
        } else if let Some(why) = field("skipped") {
            results[i].skipped.push((side, why.to_owned()));
        } else if let Some(r) = v.get("result") {
            let sample = parse_line(&r.to_string(), plan.cases[i].mode == Mode::Train)?;
            results[i].push(side, sample);
        }
    }
    Ok(results)
}

/// One fresh process of `side` on `case`; returns its sample and its JSON line.
fn run_one(
    case: &Case,
    config: &Path,
    side: Impl,
    programs: &Programs,
) -> Result<(Sample, String), BenchError> {
    let threads = case.threads.to_string();
    let mut cmd = match side {
        Impl::Ours => {
            let mut cmd = Command::new(&programs.ours);
            cmd.arg("bench").arg("--json");
            cmd
        }
        Impl::Torch(variant) => {
            let (py, script) = programs
                .torch
                .as_ref()
                .ok_or_else(|| BenchError::Usage("no PyTorch reference to run".into()))?;
            let mut cmd = Command::new(py);
            cmd.arg(script)
                .args(["--variant", variant.arg()])
                .arg("--warmup")
                .arg(case.warmup.to_string());
            cmd
        }
    };
    cmd.arg("--config")
        .arg(config)
        .args(["--batch", &case.batch.to_string()])
        .args(["--seq-len", &case.shape.sequence_length.to_string()])
        .args(["--iters", &case.iters.to_string()])
        .args(["--threads", &threads])
        .env("RAYON_NUM_THREADS", &threads)
        .env("OMP_NUM_THREADS", &threads)
        .env("MKL_NUM_THREADS", &threads);
    if case.mode == Mode::Train {
        cmd.arg("--train");
    }
    let command = format!("{cmd:?}");
    let out = cmd.output().map_err(|source| BenchError::Spawn {
        command: command.clone(),
        source,
    })?;
    // The script exits 3 after printing `{"error": ...}` when a variant cannot run: that line
    // is the reason to report, not the exit status.
    if !out.status.success() && out.status.code() != Some(VARIANT_FAILED) {
        return Err(failed(command, &out));
    }
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let sample = parse_output(&stdout, case.mode == Mode::Train)?;
    let line = stdout
        .lines()
        .map(str::trim)
        .rfind(|l| l.starts_with('{'))
        .unwrap_or("{}")
        .to_owned();
    Ok((sample, line))
}

/// The exit status of `bench_torch.py` when a variant cannot do the work.
const VARIANT_FAILED: i32 = 3;

/// Runs `cmd`, returning its stdout; a failure carries the tail of its stderr.
pub fn run_checked(cmd: &mut Command) -> Result<String, BenchError> {
    let command = format!("{cmd:?}");
    let out = cmd.output().map_err(|source| BenchError::Spawn {
        command: command.clone(),
        source,
    })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(failed(command, &out))
    }
}

/// A [`BenchError::Failed`] with the last lines of the process's stderr.
fn failed(command: String, out: &std::process::Output) -> BenchError {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(5)..].join(" | ");
    BenchError::Failed {
        command,
        status: out.status,
        stderr_tail: tail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::plan::Effort;

    #[test]
    fn a_raw_log_gives_back_samples_and_failures() -> Result<(), BenchError> {
        let plan = Plan::new(&[2], Effort { quick: true })?;
        let case = plan.cases[0].label();
        let text = format!(
            "{{\"case\":\"{case}\",\"side\":\"spectrans-rs\",\"result\":{{\"forward_ms\":10.0}}}}\n\
             {{\"case\":\"{case}\",\"side\":\"rfft-compile\",\"result\":{{\"forward_ms\":12.5}}}}\n\
             {{\"case\":\"{case}\",\"side\":\"spectrans-compile\",\"error\":\"Dynamo\"}}\n\
             {{\"case\":\"{case}\",\"side\":\"transformer\",\"skipped\":\"too long\"}}\n\
             {{\"case\":\"h1 l1 n1 b1 t9 forward\",\"side\":\"spectrans-rs\",\"result\":{{\"forward_ms\":1.0}}}}\n"
        );
        let results = results_from_raw(&plan, &text)?;
        assert_eq!(results[0].ours[0].median_ms, 10.0);
        assert_eq!(
            results[0].samples(Impl::Torch(Variant::RfftCompile))[0].median_ms,
            12.5
        );
        assert_eq!(
            results[0].failure(Impl::Torch(Variant::SpectransCompile)),
            Some("Dynamo")
        );
        assert_eq!(
            results[0].skip(Impl::Torch(Variant::Transformer)),
            Some("too long")
        );
        assert!(results[1..].iter().all(|r| r.ours.is_empty()));
        assert!(results_from_raw(&plan, "not json\n").is_err());
        Ok(())
    }
}

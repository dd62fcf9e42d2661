//! The GEMM table: single-precision `x · Wᵀ` at the shapes of the model's Linear layers,
//! ours (`spectrans-linalg/examples/gemm_bench.rs`) against torch (MKL) and numpy (its BLAS,
//! OpenBLAS in the reference venv), per thread count, in GFLOP/s per core.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::error::BenchError;
use super::runner::run_checked;

/// One Linear product: `(m, k) · (k, n)`, named for the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GemmShape {
    pub name: String,
    pub m: usize,
    pub k: usize,
    pub n: usize,
}

/// fc1 and fc2 of the small (256) and seed (768) widths at the benchmarks' token counts
/// (batch 8 x 512, and the batch-1 rows' 512 and 128), and the seed classifier head (cls rows).
pub fn shapes() -> Vec<GemmShape> {
    let mut out = Vec::new();
    for (width, d) in [("small", 256), ("seed", 768)] {
        for (tokens, m) in [("b8 n512", 4096), ("b1 n512", 512), ("b1 n128", 128)] {
            out.push(GemmShape {
                name: format!("{width} fc1, {tokens}"),
                m,
                k: d,
                n: 4 * d,
            });
            out.push(GemmShape {
                name: format!("{width} fc2, {tokens}"),
                m,
                k: 4 * d,
                n: d,
            });
        }
    }
    out.push(GemmShape {
        name: "seed head (cls rows), b8".into(),
        m: 8,
        k: 768,
        n: 2,
    });
    out
}

/// The libraries of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Ours,
    Torch,
    Numpy,
}

impl Backend {
    pub const ALL: [Self; 3] = [Self::Ours, Self::Torch, Self::Numpy];

    /// The column heading.
    pub fn title(self) -> &'static str {
        match self {
            Self::Ours => "spectrans-rs",
            Self::Torch => "torch",
            Self::Numpy => "numpy",
        }
    }
}

/// One measured product.
#[derive(Debug, Clone, PartialEq)]
pub struct GemmPoint {
    pub backend: Backend,
    pub shape: [usize; 3],
    pub threads: usize,
    pub gflops: f64,
    /// The library behind it as the process reports it (e.g. `openblas 0.3.x SkylakeX`).
    pub blas: String,
}

/// The FMA peak at one thread count (`examples/fma_peak.rs`): the ceiling of any GEMM.
#[derive(Debug, Clone, PartialEq)]
pub struct Peak {
    pub threads: usize,
    /// GFLOP/s of all threads together.
    pub gflops: f64,
    /// The instruction it ran (e.g. `vfmadd (512-bit, AVX-512 F)`).
    pub instruction: String,
}

/// Everything the GEMM table shows, or why a backend is missing.
#[derive(Debug, Clone, Default)]
pub struct GemmResults {
    pub points: Vec<GemmPoint>,
    pub failures: Vec<(Backend, usize, String)>,
    pub peaks: Vec<Peak>,
    /// Why the FMA peak was not measured at a thread count.
    pub peak_failures: Vec<(usize, String)>,
}

impl GemmShape {
    /// `[m, k, n]`.
    pub fn dims(&self) -> [usize; 3] {
        [self.m, self.k, self.n]
    }

    /// Whether this is one of the feed-forward products (not the head).
    pub fn is_ffn(&self) -> bool {
        self.name.contains(" fc")
    }
}

impl GemmResults {
    /// Our GFLOP/s over the best library's, at one shape and thread count.
    pub fn ours_vs_best(&self, shape: [usize; 3], threads: usize) -> Option<f64> {
        let ours = self.gflops(Backend::Ours, shape, threads)?;
        let best = [Backend::Torch, Backend::Numpy]
            .iter()
            .filter_map(|&b| self.gflops(b, shape, threads))
            .reduce(f64::max)?;
        Some(ours / best)
    }

    /// The worst `ours_vs_best` over the FFN shapes at `tokens` rows and `threads`.
    pub fn worst_ffn_ratio(&self, tokens: usize, threads: usize) -> Option<f64> {
        shapes()
            .iter()
            .filter(|s| s.is_ffn() && s.m == tokens)
            .filter_map(|s| self.ours_vs_best(s.dims(), threads))
            .reduce(f64::min)
    }

    /// GFLOP/s of one backend at one shape and thread count.
    pub fn gflops(&self, backend: Backend, shape: [usize; 3], threads: usize) -> Option<f64> {
        self.points
            .iter()
            .find(|p| p.backend == backend && p.shape == shape && p.threads == threads)
            .map(|p| p.gflops)
    }

    /// The FMA peak of `threads` threads together, in GFLOP/s.
    pub fn peak(&self, threads: usize) -> Option<&Peak> {
        self.peaks.iter().find(|p| p.threads == threads)
    }

    /// The distinct library descriptions per backend.
    pub fn libraries(&self, backend: Backend) -> Vec<String> {
        let mut libs: Vec<String> = self
            .points
            .iter()
            .filter(|p| p.backend == backend)
            .map(|p| p.blas.clone())
            .collect();
        libs.sort();
        libs.dedup();
        libs
    }
}

/// The benchmark binaries of spectrans-linalg's examples, copied out of `target/`.
pub struct Binaries {
    pub gemm_bench: PathBuf,
    pub fma_peak: PathBuf,
}

/// Builds `examples/gemm_bench.rs` and `examples/fma_peak.rs` in release and copies them to
/// `dir`, at the start of a run (a build failure must stop the run before anything is
/// measured, and a rebuild by someone else during the run must not change what is measured).
pub fn build(root: &Path, dir: &Path) -> Result<Binaries, BenchError> {
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .args(["build", "--release", "-p", "spectrans-linalg"])
        .args(["--example", "gemm_bench", "--example", "fma_peak"])
        .current_dir(root);
    eprintln!(
        "bench: cargo build --release -p spectrans-linalg --example gemm_bench --example fma_peak"
    );
    run_checked(&mut cargo)?;
    std::fs::create_dir_all(dir).map_err(BenchError::io(dir))?;
    let copy = |name: &str| -> Result<PathBuf, BenchError> {
        let built = root
            .join("target")
            .join("release")
            .join("examples")
            .join(name);
        let copy = dir.join(name);
        std::fs::copy(&built, &copy).map_err(BenchError::io(&built))?;
        Ok(copy)
    };
    Ok(Binaries {
        gemm_bench: copy("gemm_bench")?,
        fma_peak: copy("fma_peak")?,
    })
}

/// Runs every backend at every thread count; `ours` is the binary from [`build`]. With
/// `peaks_only`, only the FMA peaks (a partial run's floors need them, not the GEMM table).
pub fn run(
    bins: &Binaries,
    threads: &[usize],
    torch: Option<&(PathBuf, PathBuf)>,
    quick: bool,
    peaks_only: bool,
) -> Result<GemmResults, BenchError> {
    let shapes = shapes();
    let (iters, warmup) = if quick { (3, 1) } else { (10, 2) };
    let ours = &bins.gemm_bench;
    let mut results = GemmResults::default();
    for &t in threads {
        eprintln!("bench: FMA peak at {t} thread(s)");
        let mut cmd = Command::new(&bins.fma_peak);
        cmd.args(["--threads", &t.to_string()])
            .args(["--seconds", if quick { "0.3" } else { "1" }]);
        match run_checked(&mut cmd).and_then(|out| parse_peak(&out)) {
            Ok(peak) => results.peaks.push(peak),
            Err(e) => {
                eprintln!("bench: FMA peak failed: {e}");
                results.peak_failures.push((t, e.to_string()));
            }
        }
        for backend in Backend::ALL {
            if peaks_only {
                break;
            }
            let mut cmd = match (backend, torch) {
                (Backend::Ours, _) => {
                    let mut cmd = Command::new(ours);
                    cmd.args(["--threads", &t.to_string()]);
                    for s in &shapes {
                        cmd.arg(format!("{},{},{}", s.m, s.k, s.n));
                    }
                    cmd
                }
                (_, None) => continue,
                (Backend::Torch | Backend::Numpy, Some((py, bench_script))) => {
                    let script = bench_script.with_file_name("gemm_bench.py");
                    let list: Vec<String> = shapes
                        .iter()
                        .map(|s| format!("[{},{},{}]", s.m, s.k, s.n))
                        .collect();
                    let mut cmd = Command::new(py);
                    cmd.arg(script)
                        .args([
                            "--backend",
                            if backend == Backend::Torch {
                                "torch"
                            } else {
                                "numpy"
                            },
                        ])
                        .args(["--threads", &t.to_string()])
                        .args(["--shapes", &format!("[{}]", list.join(","))]);
                    cmd
                }
            };
            cmd.args([
                "--iters",
                &iters.to_string(),
                "--warmup",
                &warmup.to_string(),
            ])
            .env("RAYON_NUM_THREADS", t.to_string())
            .env("OMP_NUM_THREADS", t.to_string())
            .env("MKL_NUM_THREADS", t.to_string())
            .env("OPENBLAS_NUM_THREADS", t.to_string())
            // Let OpenBLAS pick its kernel for this CPU, as a user's numpy would.
            .env_remove("OPENBLAS_CORETYPE")
            .env_remove("OPENBLAS_L2_SIZE");
            eprintln!("bench: GEMM {} at {t} thread(s)", backend.title());
            match run_checked(&mut cmd).and_then(|out| parse_points(&out, backend)) {
                Ok(points) => results.points.extend(points),
                Err(e) => {
                    eprintln!("bench: GEMM {} failed: {e}", backend.title());
                    results.failures.push((backend, t, e.to_string()));
                }
            }
        }
    }
    Ok(results)
}

/// Every JSON line of a gemm bench's output.
pub fn parse_points(stdout: &str, backend: Backend) -> Result<Vec<GemmPoint>, BenchError> {
    let points: Vec<GemmPoint> = stdout
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with('{'))
        .map(|line| parse_point(line, backend))
        .collect::<Result<_, _>>()?;
    if points.is_empty() {
        return Err(BenchError::BadLine(format!(
            "no GEMM lines in output {stdout:?}"
        )));
    }
    Ok(points)
}

/// The JSON line of `fma_peak`.
pub fn parse_peak(stdout: &str) -> Result<Peak, BenchError> {
    let line = stdout
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with('{'))
        .ok_or_else(|| BenchError::BadLine(format!("no FMA peak line in output {stdout:?}")))?;
    let v: Value = serde_json::from_str(line)
        .map_err(|e| BenchError::BadLine(format!("not JSON ({e}): {line}")))?;
    let threads = v
        .get("threads")
        .and_then(Value::as_u64)
        .filter(|&t| t > 0)
        .ok_or_else(|| BenchError::BadLine(format!("no thread count in {line}")))?;
    let gflops = v
        .get("gflops")
        .and_then(Value::as_f64)
        .filter(|g| g.is_finite() && *g > 0.0)
        .ok_or_else(|| BenchError::BadLine(format!("no positive `gflops` in {line}")))?;
    Ok(Peak {
        threads: threads as usize,
        gflops,
        instruction: v
            .get("instruction")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned(),
    })
}

fn parse_point(line: &str, backend: Backend) -> Result<GemmPoint, BenchError> {
    let v: Value = serde_json::from_str(line)
        .map_err(|e| BenchError::BadLine(format!("not JSON ({e}): {line}")))?;
    let count = |key: &str| {
        v.get(key)
            .and_then(Value::as_u64)
            .map(|x| x as usize)
            .ok_or_else(|| BenchError::BadLine(format!("no count `{key}` in {line}")))
    };
    let gflops = v
        .get("gflops")
        .and_then(Value::as_f64)
        .filter(|g| g.is_finite() && *g > 0.0)
        .ok_or_else(|| BenchError::BadLine(format!("no positive `gflops` in {line}")))?;
    Ok(GemmPoint {
        backend,
        shape: [count("m")?, count("k")?, count("n")?],
        threads: count("threads")?,
        gflops,
        blas: v
            .get("blas")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_cover_both_layers_of_both_widths() {
        let s = shapes();
        assert_eq!(s.len(), 13);
        assert!(s.contains(&GemmShape {
            name: "seed fc2, b8 n512".into(),
            m: 4096,
            k: 3072,
            n: 768
        }));
    }

    #[test]
    fn reads_points_and_rejects_empty_output() -> Result<(), BenchError> {
        let out = "noise\n{\"backend\": \"numpy\", \"m\": 8, \"k\": 4, \"n\": 2, \"threads\": 2, \"median_ms\": 1.0, \"gflops\": 12.5, \"blas\": \"openblas SkylakeX\"}\n";
        let p = parse_points(out, Backend::Numpy)?;
        assert_eq!(p[0].shape, [8, 4, 2]);
        assert_eq!(p[0].gflops, 12.5);
        assert_eq!(p[0].blas, "openblas SkylakeX");
        assert!(parse_points("nothing", Backend::Ours).is_err());
        assert!(parse_points("{\"m\": 1}", Backend::Ours).is_err());
        Ok(())
    }

    #[test]
    fn reads_the_fma_peak_and_rejects_a_bad_line() -> Result<(), BenchError> {
        let out = "{\"threads\": 2, \"gflops\": 234.07, \"gflops_per_core\": 117.04, \"instruction\": \"vfmadd (512-bit, AVX-512 F)\"}\n";
        let p = parse_peak(out)?;
        assert_eq!((p.threads, p.gflops), (2, 234.07));
        assert_eq!(p.instruction, "vfmadd (512-bit, AVX-512 F)");
        assert!(parse_peak("nothing").is_err());
        assert!(parse_peak("{\"threads\": 2, \"gflops\": -1}").is_err());
        assert!(parse_peak("{\"gflops\": 5}").is_err());
        Ok(())
    }
}

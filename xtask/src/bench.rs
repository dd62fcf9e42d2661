//! `cargo xtask bench [models | longseq]`: our GFNet against PyTorch spectrans, side by side,
//! written to docs/benchmarks.md (issue 6). See [`options::USAGE`] for the arguments.
//!
//! Steps: build `spectrans` in release (and copy it), write the configs, run every case of the
//! [`plan::Plan`] as fresh processes alternating the two implementations, profile a forward
//! and a training step with perf, draw the throughput charts, render the report. `--only`
//! (or `longseq`) runs some sections and writes their report apart from the full one.

mod error;
mod gemm;
mod longseq;
mod machine;
mod options;
mod plan;
mod plot;
mod precision;
mod profile;
mod report;
mod runner;
mod sample;
mod serve;
mod stats;
mod summary;
mod table;

use std::fs;
use std::path::Path;
use std::time::Instant;

pub use error::BenchError;
use plan::{Effort, Mode, ModelShape, Plan, SWEEP_SEQ_LENS, Section, sweep_batch};
use report::{ProfileSection, ReportInput};
use runner::{CaseResult, Programs};
use sample::{Impl, Variant};

/// Where the run keeps its binary, configs, raw lines and perf data (git-ignored).
const WORK_DIR: &str = "bench-out";
/// The chart's file name, under `<report dir>/benchmarks/`.
const PLOT_FILE: &str = "tokens-per-s-vs-seq-len.svg";
/// The long-sequence chart's file name, under `<report dir>/benchmarks/`.
const LONGSEQ_PLOT_FILE: &str = "long-sequences-tokens-per-s.svg";

/// Runs the model benchmark with the arguments after `bench`.
pub fn run(root: &Path, args: &[String]) -> Result<(), BenchError> {
    match args.first().map(String::as_str) {
        Some("precision") => return precision::run(root, &args[1..]),
        Some("serve") => return serve::run(root, &args[1..]),
        _ => {}
    }
    let opts = options::parse(args)?;
    // Before anything is written: the report's own files must not mark the tree dirty.
    let machine = machine::Machine::detect(root);
    let started = Instant::now();
    let load_start = machine::load_average();
    let plan = Plan::with_sections(
        &opts.threads,
        Effort { quick: opts.quick },
        &opts.sections(),
    )?;
    let work = root.join(WORK_DIR);
    let ours = runner::build_ours(root, &work)?;
    let gemm_bins = gemm::build(root, &work)?;
    let (torch, torch_missing) = if opts.no_torch {
        (None, Some("--no-torch was given".to_string()))
    } else {
        match runner::find_torch(root) {
            Some(t) => (Some(t), None),
            None => (
                None,
                Some("no working `.venv-ref` (make it with `cargo xtask ref-env`)".to_string()),
            ),
        }
    };
    let programs = Programs { ours, torch };
    let configs = plan::write_configs(&plan, &work.join("configs"))?;
    eprintln!(
        "bench: {} cases, {} processes per side",
        plan.cases.len(),
        plan.cases.iter().map(|c| c.rounds).sum::<usize>()
    );
    let results = match &opts.from_raw {
        Some(raw) => {
            let raw = if raw.is_absolute() {
                raw.clone()
            } else {
                root.join(raw)
            };
            eprintln!("bench: model rows from {}", raw.display());
            let text = fs::read_to_string(&raw).map_err(BenchError::io(&raw))?;
            runner::results_from_raw(&plan, &text)?
        }
        None => runner::run_plan(&plan, &configs, &programs, &work.join("models-raw.jsonl"))?,
    };
    let gemm = gemm::run(
        &gemm_bins,
        &plan.thread_counts,
        programs.torch.as_ref(),
        opts.quick,
        !plan.has(Section::Gemm),
    )?;

    let profiling = !opts.no_profile && plan.has(Section::Profile);
    let profile = profiling.then(|| {
        let (run, outcome) = profile_small(&plan, &configs, &programs, &work, opts.quick, false);
        run.section(outcome.and_then(|r| profile::profile(&r).map_err(|e| e.to_string())))
    });
    let train_profile = profiling.then(|| {
        let (run, outcome) = profile_small(&plan, &configs, &programs, &work, opts.quick, true);
        run.section(outcome.and_then(|r| profile::profile_train(&r).map_err(|e| e.to_string())))
    });
    let out = opts.out();
    let out = if out.is_absolute() {
        out
    } else {
        root.join(&out)
    };
    let plot_link = plan
        .has(Section::SeqSweep)
        .then(|| draw_plot(&plan, &results, &out))
        .flatten();
    let longseq_plot_link = plan
        .has(Section::Longseq)
        .then(|| draw_longseq_plot(&plan, &results, &out))
        .flatten();
    let torch_version = results
        .iter()
        .flat_map(|r| r.samples(Impl::Torch(Variant::Spectrans)))
        .find_map(|s| s.torch_version.clone());
    let mut command = String::from("cargo xtask bench");
    for a in args {
        command.push(' ');
        command.push_str(a);
    }
    let doc = report::render(&ReportInput {
        plan: &plan,
        results: &results,
        machine: &machine,
        torch_version,
        torch_missing,
        profile,
        train_profile,
        plot_link,
        longseq_plot_link,
        gemm: &gemm,
        elapsed_s: started.elapsed().as_secs_f64(),
        load: (load_start, machine::load_average()),
        command,
        quick: opts.quick,
        from_raw: opts.from_raw.as_ref().map(|p| p.display().to_string()),
    });
    // The separate runs' sections belong to the full report; a partial one is only its own.
    let doc = if opts.partial() {
        doc
    } else {
        with_serving_section(&out, with_precision_section(root, doc))
    };
    if let Some(dir) = out.parent() {
        fs::create_dir_all(dir).map_err(BenchError::io(dir))?;
    }
    fs::write(&out, doc).map_err(BenchError::io(&out))?;
    eprintln!(
        "bench: wrote {} in {:.0} s",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// What a profile of the small config runs: batch, threads, iterations.
struct ProfileShape {
    batch: usize,
    threads: usize,
    iters: usize,
}

impl ProfileShape {
    /// The report's section for this run's outcome.
    fn section<P: profile::ProfilePart>(
        &self,
        outcome: Result<profile::Breakdown<P>, String>,
    ) -> ProfileSection<P> {
        if let Err(why) = &outcome {
            eprintln!("bench: no profile: {why}");
        }
        ProfileSection {
            batch: self.batch,
            threads: self.threads,
            iters: self.iters,
            outcome,
        }
    }
}

/// The perf run of our small config at one thread (the parts, without pool effects): a
/// forward, or a training step when `train`; or why there is none.
fn profile_small<'a>(
    plan: &Plan,
    configs: &[std::path::PathBuf],
    programs: &'a Programs,
    work: &Path,
    quick: bool,
    train: bool,
) -> (ProfileShape, Result<profile::ProfileRun<'a>, String>) {
    let shape = ProfileShape {
        batch: 8,
        threads: 1,
        iters: match (quick, train) {
            (true, _) => 3,
            (false, false) => 10,
            (false, true) => 5,
        },
    };
    // The small config's TOML: the plan's, or written here when no case of this run has it
    // (`--only profile`).
    let config = match plan
        .cases
        .iter()
        .position(|c| c.shape == ModelShape::SMALL)
        .and_then(|i| configs.get(i))
    {
        Some(config) => Ok(config.clone()),
        None => {
            let dir = work.join("configs");
            let path = dir.join(format!("{}.toml", ModelShape::SMALL.stem()));
            fs::create_dir_all(&dir)
                .and_then(|()| fs::write(&path, ModelShape::SMALL.to_toml()))
                .map(|()| path)
                .map_err(|e| format!("cannot write the small config: {e}"))
        }
    };
    let run = match config {
        Ok(config) => {
            eprintln!(
                "bench: perf profile of the small {} ({} runs, 1 thread)",
                if train { "training step" } else { "forward" },
                shape.iters
            );
            Ok(profile::ProfileRun {
                binary: &programs.ours,
                config,
                batch: shape.batch,
                threads: shape.threads,
                iters: shape.iters,
                out_dir: work.join("perf"),
                train,
            })
        }
        Err(why) => Err(why),
    };
    (shape, run)
}

/// Draws tokens/s against n at batch 1 (log-log) for every side of the long-sequence sweep;
/// returns its link relative to the report.
fn draw_longseq_plot(plan: &Plan, results: &[CaseResult], out: &Path) -> Option<String> {
    let rows = longseq::rows(plan, results);
    let series: Vec<plot::Series> = longseq::SIDES
        .iter()
        .enumerate()
        .map(|(i, side)| plot::Series {
            name: match side {
                Impl::Ours => side.label().to_string(),
                Impl::Torch(Variant::Transformer) => {
                    "PyTorch Transformer encoder (SDPA flash)".to_string()
                }
                Impl::Torch(v) => format!("PyTorch {}", v.title()),
            },
            points: rows
                .iter()
                .filter_map(|(n, cells)| Some((*n as f64, cells.get(i)?.tokens_per_s(*n)?)))
                .collect(),
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    let dir = out.parent()?.join("benchmarks");
    if let Err(e) = fs::create_dir_all(&dir) {
        eprintln!("bench: no chart: {}: {e}", dir.display());
        return None;
    }
    let path = dir.join(LONGSEQ_PLOT_FILE);
    let title = format!(
        "Batch 1, hidden 256, 4 layers, {} threads: tokens/s",
        plan.main_threads
    );
    match plot::tokens_per_s_log_log(&path, &title, "sequence length (batch 1)", &series) {
        Ok(()) => Some(format!("benchmarks/{LONGSEQ_PLOT_FILE}")),
        Err(e) => {
            eprintln!("bench: no chart: {e}");
            None
        }
    }
}

/// Draws tokens/s against sequence length next to the report; returns its relative link.
fn draw_plot(plan: &Plan, results: &[CaseResult], out: &Path) -> Option<String> {
    let series = [Impl::Ours, Impl::Torch(Variant::Spectrans)].map(|side| plot::Series {
        name: match side {
            Impl::Ours => side.label().to_string(),
            Impl::Torch(v) => format!("PyTorch {}", v.title()),
        },
        points: SWEEP_SEQ_LENS
            .iter()
            .filter_map(|&n| {
                let shape = ModelShape {
                    sequence_length: n,
                    ..ModelShape::SMALL
                };
                let batch = sweep_batch(n);
                let i = plan.find(&shape, batch, plan.main_threads, Mode::Forward)?;
                let s = summary::Summary::of(results.get(i)?);
                let ms = match side {
                    Impl::Ours => s.ours_ms,
                    Impl::Torch(_) => s.torch_ms,
                }?;
                Some((n as f64, stats::tokens_per_s(batch, n, ms)?))
            })
            .collect(),
    });
    let series: Vec<plot::Series> = series
        .into_iter()
        .filter(|s| !s.points.is_empty())
        .collect();
    let dir = out.parent()?.join("benchmarks");
    if let Err(e) = fs::create_dir_all(&dir) {
        eprintln!("bench: no chart: {}: {e}", dir.display());
        return None;
    }
    let path = dir.join(PLOT_FILE);
    let title = format!(
        "GFNet forward, hidden 256, 4 layers, {} threads",
        plan.main_threads
    );
    match plot::tokens_per_s_chart(&path, &title, &series) {
        Ok(()) => Some(format!("benchmarks/{PLOT_FILE}")),
        Err(e) => {
            eprintln!("bench: no chart: {e}");
            None
        }
    }
}

/// `doc` followed by the last `cargo xtask bench precision` table
/// ([`precision::TABLE_FILE`]), when there is one: that run is separate (it takes minutes of
/// its own), so the report carries its latest result rather than dropping it.
fn with_precision_section(root: &Path, mut doc: String) -> String {
    if let Ok(table) = fs::read_to_string(root.join(precision::TABLE_FILE)) {
        doc.push_str(&format!(
            "\n## Reduced precision: bf16 and int8 (`cargo xtask bench precision`)\n\n\
             From its own run (`{}`); the accuracy of each format and what the kernels do are \
             in [precision.md](precision.md).\n\n{}",
            precision::TABLE_FILE,
            table.trim_end()
        ));
        doc.push('\n');
    }
    doc
}

/// `doc` followed by the last `cargo xtask bench serve` section
/// (`<dir of out>/benchmarks/serving.md`), when there is one: that run is separate, so the
/// report carries its latest result rather than dropping it.
fn with_serving_section(out: &Path, doc: String) -> String {
    match fs::read_to_string(serve::section_file(out)) {
        Ok(section) => serve::report::splice_section(&doc, &section),
        Err(_) => doc,
    }
}

//! `cargo xtask bench precision [--quick] [--threads T]`: our f32, bf16 and int8 forwards
//! against PyTorch spectrans in f32 (eager), with `quantize_dynamic` (qint8 Linear layers) and
//! under bf16 autocast, side by side at the small and seed configs, batch 8 and batch 1,
//! sequence 512 (issue 14). Each side runs in fresh processes, alternated; the table (time and
//! peak memory, the median over processes) goes to stdout and to [`TABLE_FILE`] (which
//! `cargo xtask bench` appends to docs/benchmarks.md), every process's JSON line to
//! `bench-out/precision-raw.jsonl`.

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::error::BenchError;
use super::machine::Machine;
use super::plan::{Effort, Mode, ModelShape, torch_ms_guess};
use super::runner;
use super::sample::parse_output;
use super::stats::median;

/// Where the rendered table is kept (relative to the workspace root).
pub const TABLE_FILE: &str = "docs/benchmarks/precision.md";

/// The sides measured: ours at each precision, then PyTorch's variants.
const SIDES: [Side; 6] = [
    Side::Ours("f32"),
    Side::Ours("bf16"),
    Side::Ours("int8"),
    Side::Torch("spectrans"),
    Side::Torch("qint8"),
    Side::Torch("bf16-autocast"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// `spectrans bench --precision <p>`.
    Ours(&'static str),
    /// `bench_torch.py --variant <v>`.
    Torch(&'static str),
}

impl Side {
    fn label(self) -> String {
        match self {
            Side::Ours(p) => format!("ours {p}"),
            Side::Torch("spectrans") => "torch f32 eager".into(),
            Side::Torch(v) => format!("torch {v}"),
        }
    }
}

/// Every process of one side: (median ms, peak RSS MiB), or why it could not run.
#[derive(Debug, Default)]
struct Runs {
    samples: Vec<(f64, Option<f64>)>,
    failure: Option<String>,
}

impl Runs {
    fn ms(&self) -> Option<f64> {
        median(&self.samples.iter().map(|s| s.0).collect::<Vec<_>>())
    }

    fn rss(&self) -> Option<f64> {
        median(&self.samples.iter().filter_map(|s| s.1).collect::<Vec<_>>())
    }
}

/// Runs the precision benchmark with the arguments after `bench precision`.
pub fn run(root: &Path, args: &[String]) -> Result<(), BenchError> {
    let mut quick = false;
    let mut threads = 2usize;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--threads" => {
                threads = it
                    .next()
                    .and_then(|t| t.parse().ok())
                    .filter(|&t| t >= 1)
                    .ok_or_else(|| BenchError::Usage("--threads needs a count >= 1".into()))?;
            }
            other => {
                return Err(BenchError::Usage(format!(
                    "bench precision: unknown argument {other:?} (usage: cargo xtask bench \
                     precision [--quick] [--threads T])"
                )));
            }
        }
    }
    let machine = Machine::detect(root);
    let work = root.join(super::WORK_DIR);
    let ours = runner::build_ours(root, &work)?;
    let torch = runner::find_torch(root);
    let raw_path = work.join("precision-raw.jsonl");
    let mut raw = fs::File::create(&raw_path).map_err(BenchError::io(&raw_path))?;

    let mut rows = Vec::new();
    for shape in [ModelShape::SMALL, ModelShape::SEED] {
        let config = work
            .join("configs")
            .join(format!("precision-{}.toml", shape.stem()));
        fs::create_dir_all(config.parent().unwrap_or(&work)).map_err(BenchError::io(&work))?;
        fs::write(&config, shape.to_toml()).map_err(BenchError::io(&config))?;
        for batch in [8usize, 1] {
            let guess = torch_ms_guess(&shape, batch, threads, Mode::Forward);
            let (iters, warmup, rounds) = Effort { quick }.repetitions(guess);
            let mut runs: Vec<Runs> = SIDES.iter().map(|_| Runs::default()).collect();
            for round in 0..rounds {
                for (side, runs) in SIDES.iter().zip(runs.iter_mut()) {
                    // bf16 autocast is many times slower on CPUs without native bf16: one
                    // process is enough to place it.
                    if runs.failure.is_some()
                        || (*side == Side::Torch("bf16-autocast") && round > 0)
                    {
                        continue;
                    }
                    let Some(mut cmd) = command(*side, &ours, torch.as_ref(), warmup) else {
                        runs.failure = Some("no PyTorch reference environment".into());
                        continue;
                    };
                    cmd.arg("--config")
                        .arg(&config)
                        .args(["--batch", &batch.to_string()])
                        .args(["--seq-len", &shape.sequence_length.to_string()])
                        .args(["--iters", &iters.to_string()])
                        .args(["--threads", &threads.to_string()])
                        .env("RAYON_NUM_THREADS", threads.to_string())
                        .env("OMP_NUM_THREADS", threads.to_string())
                        .env("MKL_NUM_THREADS", threads.to_string());
                    let out = cmd.output().map_err(|source| BenchError::Spawn {
                        command: format!("{cmd:?}"),
                        source,
                    })?;
                    let stdout = String::from_utf8_lossy(&out.stdout);
                    let line = stdout.lines().rfind(|l| l.trim_start().starts_with('{'));
                    writeln!(
                        raw,
                        "{{\"config\": \"{}\", \"batch\": {batch}, \"side\": \"{}\", \"line\": {}}}",
                        shape.stem(),
                        side.label(),
                        line.unwrap_or("null")
                    )
                    .map_err(BenchError::io(&raw_path))?;
                    match parse_output(&stdout, false) {
                        Ok(sample) => {
                            eprintln!(
                                "bench precision: {} b{batch} {:<20} {:>10.1} ms  rss {:>7.1} MiB",
                                shape.stem(),
                                side.label(),
                                sample.median_ms,
                                sample.peak_rss_mb.unwrap_or(f64::NAN)
                            );
                            runs.samples.push((sample.median_ms, sample.peak_rss_mb));
                        }
                        Err(err) => {
                            let tail = String::from_utf8_lossy(&out.stderr);
                            let tail = tail.lines().last().unwrap_or("").to_string();
                            eprintln!("bench precision: {} failed: {err} {tail}", side.label());
                            runs.failure = Some(err.to_string());
                        }
                    }
                }
            }
            rows.push((shape.clone(), batch, runs));
        }
    }
    let table = render(&machine, threads, &rows);
    let table_path = root.join(TABLE_FILE);
    // Write the table next to the report; a temp file and a rename, so a failed run never
    // leaves half a table.
    let tmp = table_path.with_extension("md.tmp");
    fs::write(&tmp, &table).map_err(BenchError::io(&tmp))?;
    fs::rename(&tmp, &table_path).map_err(BenchError::io(&table_path))?;
    println!("{table}");
    Ok(())
}

/// The command of one side, without the case's arguments; `None` for a PyTorch side when
/// there is no reference environment.
fn command(
    side: Side,
    ours: &Path,
    torch: Option<&(PathBuf, PathBuf)>,
    warmup: usize,
) -> Option<Command> {
    match side {
        Side::Ours(precision) => {
            let mut cmd = Command::new(ours);
            cmd.args(["bench", "--json", "--precision", precision]);
            Some(cmd)
        }
        Side::Torch(variant) => {
            let (py, script) = torch?;
            let mut cmd = Command::new(py);
            cmd.arg(script)
                .args(["--variant", variant])
                .args(["--warmup", &warmup.to_string()]);
            Some(cmd)
        }
    }
}

/// The markdown report: the machine, the time table with speed ratios, the memory table.
fn render(machine: &Machine, threads: usize, rows: &[(ModelShape, usize, Vec<Runs>)]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}, {} ({} cores), {threads} threads, commit {}, {}. Sequence 512; median ms per \
         forward over processes.\n",
        machine.cpu_model, machine.simd_flags, machine.cores, machine.commit, machine.date_utc
    );
    let header: Vec<String> = SIDES.iter().map(|s| s.label()).collect();
    let _ = writeln!(
        s,
        "| config | batch | {} | our int8 vs torch qint8 | our bf16 vs autocast | our int8 vs our f32 |",
        header.join(" | ")
    );
    let _ = writeln!(
        s,
        "| --- | ---: |{} ---: | ---: | ---: |",
        " ---: |".repeat(SIDES.len())
    );
    let cell = |r: &Runs| match (r.ms(), &r.failure) {
        (Some(ms), _) => format!("{ms:.1}"),
        (None, Some(why)) => format!("failed: {why}"),
        (None, None) => "-".into(),
    };
    let ratio = |num: Option<f64>, den: Option<f64>| match (num, den) {
        (Some(n), Some(d)) if d > 0.0 => format!("{:.2}x", n / d),
        _ => "-".into(),
    };
    for (shape, batch, runs) in rows {
        let cells: Vec<String> = runs.iter().map(cell).collect();
        let _ = writeln!(
            s,
            "| h{} l{} | {batch} | {} | {} | {} | {} |",
            shape.hidden_dim,
            shape.num_layers,
            cells.join(" | "),
            ratio(runs[4].ms(), runs[2].ms()),
            ratio(runs[5].ms(), runs[1].ms()),
            ratio(runs[0].ms(), runs[2].ms()),
        );
    }
    let _ = writeln!(
        s,
        "\nPeak resident memory (MiB, whole process, median over processes):\n"
    );
    let _ = writeln!(s, "| config | batch | {} |", header.join(" | "));
    let _ = writeln!(s, "| --- | ---: |{}", " ---: |".repeat(SIDES.len()));
    for (shape, batch, runs) in rows {
        let cells: Vec<String> = runs
            .iter()
            .map(|r| r.rss().map_or("-".into(), |m| format!("{m:.0}")))
            .collect();
        let _ = writeln!(
            s,
            "| h{} l{} | {batch} | {} |",
            shape.hidden_dim,
            shape.num_layers,
            cells.join(" | ")
        );
    }
    s
}

//! `cargo xtask bench [models | longseq] [--quick] [--threads 1,2] [--only SECTIONS]
//! [--out FILE] [--no-torch] [--no-profile] [--from-raw FILE]`.

use std::path::PathBuf;

use super::error::BenchError;
use super::plan::Section;

/// The usage line printed with argument errors.
pub const USAGE: &str = "usage: cargo xtask bench [models | longseq] [--quick] [--threads 1,2] \
                         [--only headline,latency,small-batch,seq-sweep,hidden-sweep,threads,\
                         longseq,gemm,profile] [--out FILE] [--no-torch] [--no-profile] \
                         [--from-raw FILE]";

/// Where the report of a full run goes.
pub const FULL_REPORT: &str = "docs/benchmarks.md";
/// Where the report of a partial run (`--only`, `longseq`) goes unless `--out` says: never
/// over the full report, whose other sections it would leave empty.
pub const PARTIAL_REPORT: &str = "bench-out/partial/benchmarks.md";

/// Parsed arguments.
#[derive(Debug, Clone, PartialEq, Eq, clap::Parser)]
#[command(name = "cargo xtask bench", no_binary_name = true)]
pub struct Options {
    /// Fewer iterations and rounds: a smoke run.
    #[arg(long)]
    pub quick: bool,
    /// Thread counts, comma-separated; the largest is used for the headline table and the
    /// sweeps.
    #[arg(long, default_value = "1,2", value_parser = parse_threads)]
    pub threads: Threads,
    /// The markdown report (the charts go to `<dir of out>/benchmarks/`). Default:
    /// docs/benchmarks.md for a full run, bench-out/partial/benchmarks.md for a partial one.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Measure and report only these sections, comma-separated (`cargo xtask bench longseq`
    /// is `--only longseq`).
    #[arg(long, value_delimiter = ',', value_name = "SECTIONS")]
    pub only: Vec<Section>,
    /// Measure ours only, even when the PyTorch reference exists.
    #[arg(long)]
    pub no_torch: bool,
    /// Skip the perf profile.
    #[arg(long)]
    pub no_profile: bool,
    /// Render the model tables from this raw log of an earlier run (its `models-raw.jsonl`)
    /// instead of measuring them again; the GEMM table and the profile are measured.
    #[arg(long, value_name = "FILE")]
    pub from_raw: Option<PathBuf>,
}

/// Thread counts, each >= 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Threads(pub Vec<usize>);

impl std::ops::Deref for Threads {
    type Target = [usize];
    fn deref(&self) -> &[usize] {
        &self.0
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            quick: false,
            threads: Threads(vec![1, 2]),
            out: None,
            only: Vec::new(),
            no_torch: false,
            no_profile: false,
            from_raw: None,
        }
    }
}

impl Options {
    /// The sections to run: those of `--only`, or every one.
    pub fn sections(&self) -> Vec<Section> {
        if self.only.is_empty() {
            Section::ALL.to_vec()
        } else {
            self.only.clone()
        }
    }

    /// Whether only some sections run.
    pub fn partial(&self) -> bool {
        let mut only = self.only.clone();
        only.sort_unstable();
        only.dedup();
        !only.is_empty() && only.len() < Section::ALL.len()
    }

    /// The report's path: `--out`, else [`FULL_REPORT`] or [`PARTIAL_REPORT`].
    pub fn out(&self) -> PathBuf {
        match &self.out {
            Some(out) => out.clone(),
            None if self.partial() => PathBuf::from(PARTIAL_REPORT),
            None => PathBuf::from(FULL_REPORT),
        }
    }
}

/// Parses the arguments after `bench` (a leading `models` is accepted and ignored; a leading
/// `longseq` adds `longseq` to `--only`).
pub fn parse(args: &[String]) -> Result<Options, BenchError> {
    use clap::Parser;
    let (args, longseq) = match args.first().map(String::as_str) {
        Some("models") => (&args[1..], false),
        Some("longseq") => (&args[1..], true),
        _ => (args, false),
    };
    let mut opts =
        Options::try_parse_from(args).map_err(|e| BenchError::Usage(format!("{e}\n{USAGE}")))?;
    if longseq && !opts.only.contains(&Section::Longseq) {
        opts.only.push(Section::Longseq);
    }
    Ok(opts)
}

/// `"1,2"` -> `[1, 2]`; every count must be an integer >= 1.
pub fn parse_threads(text: &str) -> Result<Threads, String> {
    text.split(',')
        .map(|t| match t.trim().parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(format!(
                "--threads takes counts >= 1 separated by commas, got `{t}` in `{text}`"
            )),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Threads)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults_and_every_flag() -> Result<(), BenchError> {
        assert_eq!(parse(&[])?, Options::default());
        assert_eq!(parse(&strings(&["models"]))?, Options::default());
        let o = parse(&strings(&[
            "--quick",
            "--threads",
            "1,2,4",
            "--out=/tmp/b.md",
            "--no-torch",
            "--no-profile",
            "--from-raw",
            "bench-out/models-raw.jsonl",
        ]))?;
        assert!(o.quick && o.no_torch && o.no_profile);
        assert_eq!(
            o.from_raw,
            Some(PathBuf::from("bench-out/models-raw.jsonl"))
        );
        assert_eq!(*o.threads, [1, 2, 4]);
        assert_eq!(o.out(), PathBuf::from("/tmp/b.md"));
        assert!(!o.partial());
        assert_eq!(o.sections(), Section::ALL.to_vec());
        Ok(())
    }

    #[test]
    fn sections_and_where_a_partial_report_goes() -> Result<(), BenchError> {
        assert_eq!(parse(&[])?.out(), PathBuf::from(FULL_REPORT));
        let o = parse(&strings(&["longseq", "--quick"]))?;
        assert_eq!(o.sections(), vec![Section::Longseq]);
        assert!(o.quick && o.partial());
        assert_eq!(o.out(), PathBuf::from(PARTIAL_REPORT));
        let o = parse(&strings(&[
            "--only",
            "small-batch,longseq",
            "--out",
            "x.md",
        ]))?;
        assert_eq!(o.sections(), vec![Section::SmallBatch, Section::Longseq]);
        assert_eq!(o.out(), PathBuf::from("x.md"));
        assert!(parse(&strings(&["--only", "everything"])).is_err());
        Ok(())
    }

    #[test]
    fn rejects_bad_arguments() {
        for args in [
            &["--threads"][..],
            &["--threads", "0"],
            &["--threads", "1,x"],
            &["--fast"],
            &["fft"],
        ] {
            let err = parse(&strings(args));
            assert!(err.is_err(), "{args:?}");
        }
    }
}

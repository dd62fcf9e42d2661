//! `cargo xtask bench [models] [--quick] [--threads 1,2] [--out docs/benchmarks.md]
//! [--no-torch] [--no-profile]`.

use std::path::PathBuf;

use super::error::BenchError;

/// The usage line printed with argument errors.
pub const USAGE: &str = "usage: cargo xtask bench [models] [--quick] [--threads 1,2] \
                         [--out docs/benchmarks.md] [--no-torch] [--no-profile] [--from-raw FILE]";

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
    /// The markdown report (the chart goes to `<dir of out>/benchmarks/`).
    #[arg(long, default_value = "docs/benchmarks.md")]
    pub out: PathBuf,
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
            out: PathBuf::from("docs/benchmarks.md"),
            no_torch: false,
            no_profile: false,
            from_raw: None,
        }
    }
}

/// Parses the arguments after `bench` (a leading `models` is accepted and ignored).
pub fn parse(args: &[String]) -> Result<Options, BenchError> {
    use clap::Parser;
    let args = match args.first().map(String::as_str) {
        Some("models") => &args[1..],
        _ => args,
    };
    Options::try_parse_from(args).map_err(|e| BenchError::Usage(format!("{e}\n{USAGE}")))
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
        assert_eq!(o.out, PathBuf::from("/tmp/b.md"));
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

//! `cargo xtask bench [models] [--quick] [--threads 1,2] [--out docs/benchmarks.md]
//! [--no-torch] [--no-profile]`.

use std::path::PathBuf;

use super::error::BenchError;

/// The usage line printed with argument errors.
pub const USAGE: &str = "usage: cargo xtask bench [models] [--quick] [--threads 1,2] \
                         [--out docs/benchmarks.md] [--no-torch] [--no-profile] [--from-raw FILE]";

/// Parsed arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Fewer iterations and rounds: a smoke run.
    pub quick: bool,
    /// Thread counts; the largest is used for the headline table and the sweeps.
    pub threads: Vec<usize>,
    /// The markdown report (the chart goes to `<dir of out>/benchmarks/`).
    pub out: PathBuf,
    /// Measure ours only, even when the PyTorch reference exists.
    pub no_torch: bool,
    /// Skip the perf profile.
    pub no_profile: bool,
    /// Render the model tables from this raw log of an earlier run (its `models-raw.jsonl`)
    /// instead of measuring them again; the GEMM table and the profile are measured.
    pub from_raw: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            quick: false,
            threads: vec![1, 2],
            out: PathBuf::from("docs/benchmarks.md"),
            no_torch: false,
            no_profile: false,
            from_raw: None,
        }
    }
}

/// Parses the arguments after `bench` (a leading `models` is accepted and ignored).
pub fn parse(args: &[String]) -> Result<Options, BenchError> {
    let mut opts = Options::default();
    let mut it = args.iter().map(String::as_str).peekable();
    if it.peek() == Some(&"models") {
        it.next();
    }
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f, Some(v)),
            None => (arg, None),
        };
        let mut value = |name: &str| {
            inline
                .or_else(|| it.next())
                .ok_or_else(|| BenchError::Usage(format!("{name} needs a value; {USAGE}")))
        };
        match flag {
            "--quick" => opts.quick = true,
            "--no-torch" => opts.no_torch = true,
            "--no-profile" => opts.no_profile = true,
            "--out" => opts.out = PathBuf::from(value("--out")?),
            "--threads" => opts.threads = parse_threads(value("--threads")?)?,
            "--from-raw" => opts.from_raw = Some(PathBuf::from(value("--from-raw")?)),
            other => {
                return Err(BenchError::Usage(format!(
                    "unknown argument `{other}`; {USAGE}"
                )));
            }
        }
    }
    Ok(opts)
}

/// `"1,2"` -> `[1, 2]`; every count must be an integer >= 1.
pub fn parse_threads(text: &str) -> Result<Vec<usize>, BenchError> {
    text.split(',')
        .map(|t| match t.trim().parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(BenchError::Usage(format!(
                "--threads takes counts >= 1 separated by commas, got `{t}` in `{text}`"
            ))),
        })
        .collect()
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
        assert_eq!(o.threads, vec![1, 2, 4]);
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

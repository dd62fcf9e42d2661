//! `cargo xtask bench serve [--threads 2] [--quick] [--out docs/benchmarks.md] [--no-torch]
//! [--torch-variant rfft-compile|rfft|spectrans] [--low-load-only] [--bin PATH]`.

use std::path::PathBuf;

use crate::bench::BenchError;

/// The usage line printed with argument errors.
pub const USAGE: &str = "usage: cargo xtask bench serve [--threads 2] [--quick] \
                         [--out docs/benchmarks.md] [--no-torch] \
                         [--torch-variant rfft-compile|rfft|spectrans] [--low-load-only] \
                         [--bin PATH]";

/// The PyTorch model variants serve_torch.py can serve (its `--variant`).
pub const TORCH_VARIANTS: &[&str] = &["rfft-compile", "rfft", "spectrans"];

/// Parsed arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Worker threads of each server (the client shares the same cores).
    pub threads: usize,
    /// Short load steps and a coarse search: a smoke run, figures rough.
    pub quick: bool,
    /// The markdown report the "Serving" section is spliced into; the section alone goes to
    /// `<dir of out>/benchmarks/serving.md`.
    pub out: PathBuf,
    /// Measure `spectrans serve` only.
    pub no_torch: bool,
    /// The PyTorch server's model variant.
    pub torch_variant: String,
    /// Measure only `spectrans serve`'s single requests at low load against `spectrans bench`
    /// batch 1, over a longer run; print the figures and write the raw JSON, leave the report.
    pub low_load_only: bool,
    /// A `spectrans` binary to measure instead of building the workspace's (to compare two
    /// builds one after the other on the same machine).
    pub bin: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            threads: 2,
            quick: false,
            out: PathBuf::from("docs/benchmarks.md"),
            no_torch: false,
            torch_variant: "rfft-compile".into(),
            low_load_only: false,
            bin: None,
        }
    }
}

/// Parses the arguments after `bench serve`.
pub fn parse(args: &[String]) -> Result<Options, BenchError> {
    let mut opts = Options::default();
    let mut it = args.iter().map(String::as_str);
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
            "--low-load-only" => opts.low_load_only = true,
            "--out" => opts.out = PathBuf::from(value("--out")?),
            "--bin" => opts.bin = Some(PathBuf::from(value("--bin")?)),
            "--threads" => {
                let text = value("--threads")?;
                opts.threads = match text.parse::<usize>() {
                    Ok(n) if n >= 1 => n,
                    _ => {
                        return Err(BenchError::Usage(format!(
                            "--threads takes one count >= 1, got `{text}`"
                        )));
                    }
                };
            }
            "--torch-variant" => {
                let v = value("--torch-variant")?;
                if !TORCH_VARIANTS.contains(&v) {
                    return Err(BenchError::Usage(format!(
                        "--torch-variant takes one of {}, got `{v}`",
                        TORCH_VARIANTS.join(", ")
                    )));
                }
                opts.torch_variant = v.to_string();
            }
            other => {
                return Err(BenchError::Usage(format!(
                    "unknown argument `{other}`; {USAGE}"
                )));
            }
        }
    }
    Ok(opts)
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
        let o = parse(&strings(&[
            "--quick",
            "--threads",
            "4",
            "--out=/tmp/b.md",
            "--no-torch",
            "--torch-variant",
            "rfft",
            "--low-load-only",
            "--bin",
            "/tmp/spectrans",
        ]))?;
        assert!(o.quick && o.no_torch && o.low_load_only);
        assert_eq!(o.threads, 4);
        assert_eq!(o.out, PathBuf::from("/tmp/b.md"));
        assert_eq!(o.torch_variant, "rfft");
        assert_eq!(o.bin, Some(PathBuf::from("/tmp/spectrans")));
        Ok(())
    }

    #[test]
    fn rejects_bad_arguments() {
        for args in [
            &["--threads"][..],
            &["--threads", "0"],
            &["--threads", "1,2"],
            &["--torch-variant", "onnx"],
            &["--fast"],
            &["--bin"],
        ] {
            assert!(parse(&strings(args)).is_err(), "{args:?}");
        }
    }
}

//! One benchmark process's result: the JSON line that `spectrans bench --json` and
//! `xtask/python/bench_torch.py` print.

use serde_json::Value;

use super::error::BenchError;

/// Which implementation produced a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Impl {
    /// This workspace's `spectrans` binary.
    Ours,
    /// PyTorch through `bench_torch.py --variant`.
    Torch(Variant),
}

impl Impl {
    /// The short name used in logs.
    pub fn label(self) -> &'static str {
        match self {
            Self::Ours => "spectrans-rs",
            Self::Torch(v) => v.arg(),
        }
    }
}

/// The ways a user could run the same GFNet in PyTorch (`bench_torch.py --variant`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Variant {
    /// PyTorch spectrans 0.1.0 as shipped, eager (full complex FFT).
    Spectrans,
    /// spectrans' own model under `torch.compile` (dynamo fails on its FFT helper today).
    SpectransCompile,
    /// The same math with `torch.fft.rfft`/`irfft` and the folded filter, eager.
    Rfft,
    /// The rfft rewrite under `torch.compile` (inductor, CPU).
    RfftCompile,
    /// The rfft rewrite exported with `torch.onnx.export(dynamo=True)`, run by ONNX Runtime.
    Onnx,
    /// Not a GFNet: a standard `nn.TransformerEncoder` of the same width, depth and FFN width
    /// (scaled-dot-product attention), the long-sequence sweep's baseline. Never in
    /// [`Variant::ALL`]: it is no way to run the same model, so it is never "the fastest
    /// PyTorch".
    Transformer,
}

impl Variant {
    /// Every variant, in table order.
    pub const ALL: [Self; 5] = [
        Self::Spectrans,
        Self::SpectransCompile,
        Self::Rfft,
        Self::RfftCompile,
        Self::Onnx,
    ];

    /// Every variant the runner knows: [`Variant::ALL`] and the Transformer baseline.
    pub const KNOWN: [Self; 6] = [
        Self::Spectrans,
        Self::SpectransCompile,
        Self::Rfft,
        Self::RfftCompile,
        Self::Onnx,
        Self::Transformer,
    ];

    /// The value of `bench_torch.py --variant`.
    pub fn arg(self) -> &'static str {
        match self {
            Self::Spectrans => "spectrans",
            Self::SpectransCompile => "spectrans-compile",
            Self::Rfft => "rfft",
            Self::RfftCompile => "rfft-compile",
            Self::Onnx => "onnx",
            Self::Transformer => "transformer",
        }
    }

    /// The column heading of the report.
    pub fn title(self) -> &'static str {
        match self {
            Self::Spectrans => "spectrans eager",
            Self::SpectransCompile => "spectrans + torch.compile",
            Self::Rfft => "rfft rewrite, eager",
            Self::RfftCompile => "rfft rewrite + torch.compile",
            Self::Onnx => "ONNX Runtime",
            Self::Transformer => "Transformer encoder (SDPA)",
        }
    }

    /// Whether the variant can run a training step (ONNX Runtime and the Transformer
    /// baseline are measured as forwards only).
    pub fn trains(self) -> bool {
        !matches!(self, Self::Onnx | Self::Transformer)
    }
}

/// The figures of one process: its median time over its timed runs and its peak memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Median milliseconds per forward (or per training step) within the process.
    pub median_ms: f64,
    /// Fastest timed run of the process.
    pub min_ms: f64,
    /// Peak resident memory of the whole process in MiB, when the process could tell.
    pub peak_rss_mb: Option<f64>,
    /// Worker threads the process reports using.
    pub threads: Option<u64>,
    /// PyTorch's version (torch samples only).
    pub torch_version: Option<String>,
}

#[cfg(test)]
impl Sample {
    /// A process that took `ms` per run (median and min) at `rss` MiB, for tests.
    pub(crate) fn of(ms: f64, rss: f64) -> Self {
        Sample {
            median_ms: ms,
            min_ms: ms,
            peak_rss_mb: Some(rss),
            threads: None,
            torch_version: None,
        }
    }
}

/// Parses the last line of `stdout` that starts with `{` as a bench result.
///
/// The time is `train_step_ms` when `train`, else `forward_ms`; `min_ms` falls back to it.
pub fn parse_output(stdout: &str, train: bool) -> Result<Sample, BenchError> {
    let line = stdout
        .lines()
        .map(str::trim)
        .rfind(|l| l.starts_with('{'))
        .ok_or_else(|| BenchError::BadLine(format!("no JSON object in output {stdout:?}")))?;
    parse_line(line, train)
}

/// Parses one JSON bench line (see [`parse_output`]). A line with an `error` key is a
/// variant that could not run (it failed to compile or to export, or its output disagreed
/// with spectrans'): [`BenchError::VariantFailed`] with that text.
pub fn parse_line(line: &str, train: bool) -> Result<Sample, BenchError> {
    let value: Value = serde_json::from_str(line)
        .map_err(|e| BenchError::BadLine(format!("not JSON ({e}): {line}")))?;
    if let Some(error) = value.get("error").and_then(Value::as_str) {
        return Err(BenchError::VariantFailed(error.to_owned()));
    }
    let key = if train { "train_step_ms" } else { "forward_ms" };
    let median_ms = positive(&value, key)?
        .ok_or_else(|| BenchError::BadLine(format!("no `{key}` in {line}")))?;
    let min_ms = positive(&value, "min_ms")?.unwrap_or(median_ms);
    let peak_rss_mb = positive(&value, "peak_rss_mb")?;
    let threads = value.get("threads").and_then(Value::as_u64);
    let torch_version = value
        .get("torch_version")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(Sample {
        median_ms,
        min_ms,
        peak_rss_mb,
        threads,
        torch_version,
    })
}

/// `value[key]` as a finite positive number; `None` when absent or null.
fn positive(value: &Value, key: &str) -> Result<Option<f64>, BenchError> {
    match value.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_f64() {
            Some(x) if x.is_finite() && x > 0.0 => Ok(Some(x)),
            _ => Err(BenchError::BadLine(format!(
                "`{key}` must be a positive number, got {v}"
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = r#"{"batch":8,"forward_ms":385.08,"hidden_dim":256,"impl":"spectrans-rs","iters":5,"min_ms":356.3,"num_layers":4,"peak_rss_mb":53.7,"seq_len":512,"threads":2,"tokens_per_s":10636.5}"#;
    const TORCH: &str = r#"{"impl": "pytorch", "train_step_ms": 1280.5, "min_ms": 1201.0, "iters": 5, "threads": 2, "batch": 8, "seq_len": 512, "hidden_dim": 256, "num_layers": 4, "peak_rss_mb": 662.4, "torch_version": "2.15.0+cu132", "loss": "ce"}"#;

    #[test]
    fn parses_our_forward_line() -> Result<(), BenchError> {
        let s = parse_line(OURS, false)?;
        assert_eq!(s.median_ms, 385.08);
        assert_eq!(s.min_ms, 356.3);
        assert_eq!(s.peak_rss_mb, Some(53.7));
        assert_eq!(s.threads, Some(2));
        assert_eq!(s.torch_version, None);
        Ok(())
    }

    #[test]
    fn parses_a_torch_training_line_after_other_output() -> Result<(), BenchError> {
        let out = format!("some warning\n{TORCH}\n\n");
        let s = parse_output(&out, true)?;
        assert_eq!(s.median_ms, 1280.5);
        assert_eq!(s.torch_version.as_deref(), Some("2.15.0+cu132"));
        Ok(())
    }

    #[test]
    fn asks_for_the_key_of_the_mode() {
        let err = parse_line(OURS, true).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("train_step_ms"), "{err}");
    }

    #[test]
    fn null_rss_is_unknown_and_missing_min_is_the_median() -> Result<(), BenchError> {
        let s = parse_line(r#"{"forward_ms": 2.5, "peak_rss_mb": null}"#, false)?;
        assert_eq!((s.min_ms, s.peak_rss_mb), (2.5, None));
        Ok(())
    }

    #[test]
    fn an_error_line_is_a_failed_variant() {
        let out = r#"{"impl": "pytorch", "variant": "spectrans-compile", "error": "InternalTorchDynamoError: no _parameters"}"#;
        match parse_output(out, false) {
            Err(BenchError::VariantFailed(why)) => assert!(why.contains("Dynamo"), "{why}"),
            other => panic!("expected a failed variant, got {other:?}"),
        }
    }

    #[test]
    fn rejects_bad_lines() {
        for line in [
            "not json",
            r#"{"forward_ms": -1}"#,
            r#"{"forward_ms": "fast"}"#,
            r#"{"forward_ms": 0}"#,
            r#"{"forward_ms": 3, "min_ms": -2}"#,
        ] {
            assert!(parse_line(line, false).is_err(), "{line}");
        }
        assert!(parse_output("no json here\n", false).is_err());
    }
}

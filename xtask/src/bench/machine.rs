//! The facts about the machine and the code that a benchmark report needs to be read.

use std::path::Path;
use std::process::Command;

/// CPU, cores, toolchain and commit, each `"unknown"` when it cannot be found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    pub cpu_model: String,
    /// The vector extensions that pick our kernels and PyTorch's (from lscpu's flags).
    pub simd_flags: String,
    pub cores: usize,
    pub rustc: String,
    pub commit: String,
    pub date_utc: String,
}

impl Machine {
    /// Looks everything up (lscpu, rustc, git, date); never fails.
    pub fn detect(root: &Path) -> Self {
        let lscpu = output("lscpu", &[], root).unwrap_or_default();
        let cpu_model = lscpu_field(&lscpu, "Model name").unwrap_or_else(|| "unknown".into());
        let simd_flags = lscpu_field(&lscpu, "Flags")
            .map_or_else(|| "unknown".into(), |flags| simd_flags(&flags));
        let cores = std::thread::available_parallelism().map_or(0, usize::from);
        let rustc = output("rustc", &["--version"], root).unwrap_or_else(|| "unknown".into());
        let commit = match output("git", &["rev-parse", "--short=10", "HEAD"], root) {
            Some(hash) => {
                let dirty = output(
                    "git",
                    &["status", "--porcelain", "--untracked-files=no"],
                    root,
                )
                .is_some_and(|s| !s.is_empty());
                if dirty {
                    format!("{hash} (with uncommitted changes)")
                } else {
                    hash
                }
            }
            None => "unknown".into(),
        };
        let date_utc = output("date", &["-u", "+%Y-%m-%d %H:%M UTC"], root)
            .unwrap_or_else(|| "unknown".into());
        Self {
            cpu_model,
            simd_flags,
            cores,
            rustc,
            commit,
            date_utc,
        }
    }
}

/// The flags that matter for f32/bf16/int8 kernels, in a fixed order, e.g. `avx2 fma avx512f`.
pub fn simd_flags(flags: &str) -> String {
    const WANTED: &[&str] = &[
        "avx2",
        "fma",
        "f16c",
        "avx512f",
        "avx512bw",
        "avx512vl",
        "avx512_vnni",
        "avx512_bf16",
        "avx512_fp16",
        "avx_vnni",
        "amx_bf16",
        "amx_int8",
    ];
    let have: Vec<&str> = flags.split_whitespace().collect();
    let found: Vec<&str> = WANTED
        .iter()
        .copied()
        .filter(|f| have.contains(f))
        .collect();
    if found.is_empty() {
        "none of avx2/avx512".into()
    } else {
        found.join(" ")
    }
}

/// The 1-minute load average (Linux `/proc/loadavg`), if readable.
pub fn load_average() -> Option<f64> {
    parse_loadavg(&std::fs::read_to_string("/proc/loadavg").ok()?)
}

/// The first field of `/proc/loadavg` text.
pub fn parse_loadavg(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}

/// The value of `field:` in lscpu's output.
pub fn lscpu_field(lscpu: &str, field: &str) -> Option<String> {
    lscpu.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == field).then(|| value.trim().to_owned())
    })
}

/// A command's trimmed stdout when it succeeds.
fn output(program: &str, args: &[&str], dir: &Path) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::{lscpu_field, parse_loadavg, simd_flags};

    #[test]
    fn names_the_vector_extensions_in_order() {
        let flags = "fpu sse avx512_bf16 fma avx2 avx512f avx512_vnni lahf_lm";
        assert_eq!(
            simd_flags(flags),
            "avx2 fma avx512f avx512_vnni avx512_bf16"
        );
        assert_eq!(simd_flags("fpu sse"), "none of avx2/avx512");
    }

    #[test]
    fn reads_the_one_minute_load() {
        assert_eq!(parse_loadavg("4.08 4.19 3.84 3/512 9999\n"), Some(4.08));
        assert_eq!(parse_loadavg(""), None);
    }

    #[test]
    fn reads_lscpu_fields() {
        let text = "Architecture:   x86_64\nModel name:      AMD EPYC\nCPU(s):  2\n";
        assert_eq!(lscpu_field(text, "Model name").as_deref(), Some("AMD EPYC"));
        assert_eq!(lscpu_field(text, "CPU(s)").as_deref(), Some("2"));
        assert_eq!(lscpu_field(text, "Stepping"), None);
    }
}

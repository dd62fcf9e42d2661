//! `cargo xtask fuzz [--cases N]`: the loader fuzz properties (`tests/it/fuzz.rs` of
//! spectrans-models and spectrans-config) with `PROPTEST_CASES=N` (default 10000), in release,
//! then how many cases each property ran.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

/// Cases per property unless `--cases` says otherwise.
pub const DEFAULT_CASES: u64 = 10_000;

/// The crates with fuzz properties; each runs as `cargo test --release -p CRATE --test it fuzz::`.
const CRATES: &[&str] = &["spectrans-models", "spectrans-config"];

/// What each property prints when it passes: `fuzz property NAME: N cases passed (...)`.
const MARKER: &str = "fuzz property ";

/// Runs the subcommand.
pub fn run(root: &Path, args: &[String]) -> Result<(), String> {
    let cases = parse_args(args)?;
    // The tests run with a fixed seed (.cargo/config.toml), so CI never flakes; a fuzz run
    // explores: a new seed each time unless PROPTEST_RNG_SEED is set, printed for a replay.
    let seed = std::env::var("PROPTEST_RNG_SEED").unwrap_or_else(|_| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            .to_string()
    });
    println!("seed {seed} (replay with PROPTEST_RNG_SEED={seed} cargo xtask fuzz --cases {cases})");
    let mut summary: Vec<(String, u64)> = Vec::new();
    for krate in CRATES {
        println!("== {krate}: fuzz properties, PROPTEST_CASES={cases}");
        let mut child = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(root)
            .env("PROPTEST_CASES", cases.to_string())
            .env("PROPTEST_RNG_SEED", &seed)
            .args(["test", "--release", "-p", krate, "--test", "it", "fuzz::"])
            .args(["--", "--nocapture"])
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(|e| format!("reading cargo's output: {e}"))?;
            println!("{line}");
            if let Some(property) = parse_property_line(&line) {
                summary.push(property);
            }
        }
        let status = child
            .wait()
            .map_err(|e| format!("waiting for cargo: {e}"))?;
        if !status.success() {
            return Err(format!("{krate}: fuzz properties failed ({status})"));
        }
    }
    println!("\n== cases run per property");
    let width = summary.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    for (name, n) in &summary {
        println!("{name:<width$}  {n}");
    }
    let total: u64 = summary.iter().map(|(_, n)| n).sum();
    println!(
        "{} properties, {total} cases in all, none failed",
        summary.len()
    );
    Ok(())
}

/// `--cases N`, or nothing for [`DEFAULT_CASES`].
fn parse_args(args: &[String]) -> Result<u64, String> {
    match args {
        [] => Ok(DEFAULT_CASES),
        [flag, n] if flag == "--cases" => n
            .parse::<u64>()
            .ok()
            .filter(|&n| (1..=u64::from(u32::MAX)).contains(&n))
            .ok_or_else(|| format!("--cases takes a number from 1 to {}; got `{n}`", u32::MAX)),
        other => Err(format!(
            "usage: cargo xtask fuzz [--cases N]; got {other:?}"
        )),
    }
}

/// `("NAME", N)` from a line `fuzz property NAME: N cases passed (...)`.
fn parse_property_line(line: &str) -> Option<(String, u64)> {
    let rest = &line[line.find(MARKER)? + MARKER.len()..];
    let (name, rest) = rest.split_once(": ")?;
    let n = rest.split_whitespace().next()?.parse().ok()?;
    Some((name.to_owned(), n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments() {
        assert_eq!(parse_args(&[]), Ok(DEFAULT_CASES));
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(parse_args(&a(&["--cases", "64"])), Ok(64));
        assert!(parse_args(&a(&["--cases", "0"])).is_err());
        assert!(parse_args(&a(&["--cases", "x"])).is_err());
        assert!(parse_args(&a(&["--cases"])).is_err());
        assert!(parse_args(&a(&["--seed", "1"])).is_err());
    }

    #[test]
    fn property_lines() {
        assert_eq!(
            parse_property_line("fuzz property dataset_csv: 128 cases passed (loaded 9)"),
            Some(("dataset_csv".to_owned(), 128))
        );
        assert_eq!(
            parse_property_line("test fuzz::fuzz_dataset_csv ... ok"),
            None
        );
    }
}

//! `cargo xtask …`: fixtures from PyTorch, benches, generated docs and loader fuzzing.

use std::process::ExitCode;

mod bench;
mod bench_fft;
mod docs;
mod fixtures;
mod fuzz;
mod headline;
#[cfg(test)]
mod modgraph;
mod parity;
mod refenv;
mod roundtrip;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ref-env") => report(refenv::ensure(&refenv::workspace_root()).map(drop)),
        Some("gen-fixtures") => report(
            fixtures::parse_args(&args[1..])
                .and_then(|a| fixtures::gen_fixtures(&refenv::workspace_root(), &a)),
        ),
        Some("parity") => report(parity::parity(&refenv::workspace_root())),
        Some("roundtrip") => report(roundtrip::roundtrip(&refenv::workspace_root())),
        // `bench fft`: spectrans-fft's criterion bench and torch.fft side by side (bench_fft.rs).
        Some("bench") if args.get(1).map(String::as_str) == Some("fft") => {
            report(bench_fft::run(&refenv::workspace_root(), &args[2..]))
        }
        // `bench [models] [flags]`: the side-by-side model benchmark (bench.rs); `bench
        // precision`: f32, bf16 and int8 against PyTorch's (bench/precision.rs); `bench serve`:
        // `spectrans serve` against a PyTorch server under open-loop load (bench/serve/).
        Some("bench") => report(bench::run(&refenv::workspace_root(), &args[1..])),
        // `docs [--check]`: docs/config.md from the config schema, the README headline from the
        // benchmark report (docs.rs, headline.rs).
        Some("docs") => report(docs::run(&refenv::workspace_root(), &args[1..])),
        // `fuzz [--cases N]`: the loader fuzz properties with PROPTEST_CASES=N (fuzz.rs).
        Some("fuzz") => report(fuzz::run(&refenv::workspace_root(), &args[1..])),
        _ => {
            eprintln!(
                "usage: cargo xtask <ref-env|gen-fixtures|parity|roundtrip|bench|docs|fuzz> [args]"
            );
            ExitCode::FAILURE
        }
    }
}

/// Exit status for a subcommand's result; the error goes to stderr.
fn report<E: std::fmt::Display>(result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

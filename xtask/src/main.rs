//! `cargo xtask …`: fixtures from PyTorch, benches and generated docs.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        _ => {
            eprintln!("usage: cargo xtask <gen-fixtures|bench|docs> [args]");
            ExitCode::FAILURE
        }
    }
}

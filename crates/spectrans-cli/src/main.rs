//! `spectrans`: run, train, benchmark and inspect GFNet models from the command line.
//!
//! Every subcommand lives in its own module under `cmd/`. Errors are printed as one message
//! (with its causes) and the process exits non-zero; nothing here panics on user input.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

#[derive(Debug, Parser)]
#[command(name = "spectrans", version, about = "Spectral transformers (GFNet) in Rust")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a TOML model config; print a one-line summary when it is valid.
    Validate(cmd::validate::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // clap prints help/version to stdout with exit 0, usage errors to stderr with 2.
            let _ = err.print();
            return ExitCode::from(err.exit_code() as u8);
        }
    };
    let result = match cli.command {
        Command::Validate(args) => cmd::validate::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

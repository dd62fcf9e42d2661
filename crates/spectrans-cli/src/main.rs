//! `spectrans`: run, train, benchmark and inspect GFNet models from the command line.
//!
//! Every subcommand lives in its own module under `cmd/`. Errors are printed as one message
//! (with its causes) and the process exits non-zero; nothing here panics on user input.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod alloc;

/// The system allocator, with huge pages for large blocks (see [`alloc`]).
#[global_allocator]
static ALLOCATOR: alloc::Allocator = alloc::Allocator;
mod cmd;
mod io;

#[derive(Debug, Parser)]
#[command(
    name = "spectrans",
    version,
    about = "Spectral transformers (GFNet) in Rust"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train the embedded digits model, show predictions and the forward speed (no files needed).
    Demo(cmd::demo::Args),
    /// Run a model in eval mode on inputs from a safetensors file.
    Forward(cmd::forward::Args),
    /// One training-mode step's loss and gradients (no update).
    Grad(cmd::grad::Args),
    /// Train a model on the embedded digits or on your own data.
    Train(cmd::train::Args),
    /// Time a forward pass (or a training step) with random weights.
    Bench(cmd::bench::Args),
    /// Validate a TOML model config; print a one-line summary when it is valid.
    Validate(cmd::validate::Args),
    /// Write random initial weights for a config (loadable by PyTorch spectrans).
    Init(cmd::init::Args),
    /// List the tensors of a weights file, the parameter count and per-layer filter statistics.
    Inspect(cmd::inspect::Args),
    /// Plot each layer's learned global filter H (|H|, phase, mean |H|) to SVGs and filters.json.
    Filters(cmd::filters::Args),
    /// Serve the model over HTTP: batched, with a bounded queue, metrics and JSON errors.
    Serve(cmd::serve::Args),
    /// Run a JSON-lines file through the serving engine; one output line per input line.
    Predict(cmd::predict::Args),
}

/// Restores the default action of SIGPIPE (Rust ignores it, so `println!` to a closed pipe
/// panics): output to a reader that has gone, as in `spectrans inspect ... | head -1`, ends the
/// process quietly with the conventional status 141, as it does for `cat`. Outputs are files
/// written to a temporary name and renamed, so nothing is left half-written.
fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in `main`, before any other thread exists; SIG_DFL is a valid
    // disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    quiet_on_closed_pipe();
    alloc::tune();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // clap prints help/version to stdout with exit 0, usage errors to stderr with 2.
            let _ = err.print();
            return ExitCode::from(err.exit_code() as u8);
        }
    };
    let result = match cli.command {
        Command::Demo(args) => cmd::demo::run(args),
        Command::Forward(args) => cmd::forward::run(args),
        Command::Grad(args) => cmd::grad::run(args),
        Command::Train(args) => cmd::train::run(args),
        Command::Bench(args) => cmd::bench::run(args),
        Command::Validate(args) => cmd::validate::run(args),
        Command::Init(args) => cmd::init::run(args),
        Command::Inspect(args) => cmd::inspect::run(args),
        Command::Filters(args) => cmd::filters::run(args),
        Command::Serve(args) => cmd::serve::run(args),
        Command::Predict(args) => cmd::predict::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

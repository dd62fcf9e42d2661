//! `spectrans validate --config C`: exit 0 with a one-line model summary when the config is
//! valid; otherwise exit 1 with one line per problem, each naming the field (or the line and
//! column, for TOML syntax), the value and the rule.

use std::path::PathBuf;
use std::process::ExitCode;

use spectrans_config::{Config, ConfigError};
use spectrans_models::memory::{Workload, estimate, format_bytes};

/// Arguments of `spectrans validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The TOML model config to check.
    #[arg(long)]
    pub config: PathBuf,
}

/// Checks the config and reports every violation.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let path = args.config.display();
    match Config::load(&args.config) {
        Ok(config) => {
            let bytes = estimate(&config, Workload::Parameters).total();
            println!(
                "{path}: valid: {}; {} of f32 parameters",
                config.summary(),
                format_bytes(bytes)
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(ConfigError::Invalid(violations)) => {
            for v in &violations {
                eprintln!("error: {path}: {v}");
            }
            let n = violations.len();
            eprintln!(
                "{path}: invalid ({n} problem{})",
                if n == 1 { "" } else { "s" }
            );
            Ok(ExitCode::FAILURE)
        }
        Err(ConfigError::Io { source, .. }) => {
            eprintln!("error: {path}: {source}");
            Ok(ExitCode::FAILURE)
        }
        Err(err @ ConfigError::Syntax { .. }) => {
            eprintln!("error: {path}: {err}");
            Ok(ExitCode::FAILURE)
        }
    }
}

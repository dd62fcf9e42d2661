//! `spectrans validate --config C`.

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `spectrans validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The TOML model config to check.
    #[arg(long)]
    pub config: PathBuf,
}

/// Checks the config and reports every violation.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("validate is not built yet (config {})", args.config.display())
}

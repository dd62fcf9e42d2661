//! `cargo xtask gen-fixtures [--out DIR] [--only CASE,…]`: regenerate the PyTorch parity
//! fixtures (`fixtures/` by default) with `xtask/python/gen_fixtures.py` on the reference
//! environment, then checks them with `xtask/python/verify_fixtures.py` (an independent
//! NumPy float64 model of design.md's math, and finite differences for the gradients).
//! The Rust tests only read the committed files; Python never runs in them.

use std::path::Path;
use std::time::Instant;

use crate::refenv::{self, RefEnvError};

/// Options of `gen-fixtures`, passed through to the python script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenFixturesArgs {
    /// Output folder, relative to the workspace root unless absolute.
    pub out: String,
    /// Only these cases (comma separated), for debugging; the manifest then lists only them.
    pub only: Option<String>,
}

/// Why `gen-fixtures` could not run.
#[derive(Debug)]
pub enum FixturesError {
    /// An argument `gen-fixtures` does not know, or a flag without its value.
    Usage(String),
    /// The reference environment or the script failed.
    RefEnv(RefEnvError),
}

impl std::fmt::Display for FixturesError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Usage(msg) => write!(
                f,
                "{msg}\nusage: cargo xtask gen-fixtures [--out DIR] [--only CASE,CASE]"
            ),
            Self::RefEnv(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for FixturesError {}

impl From<RefEnvError> for FixturesError {
    fn from(err: RefEnvError) -> Self {
        Self::RefEnv(err)
    }
}

/// Parse the arguments after `gen-fixtures`.
pub fn parse_args(args: &[String]) -> Result<GenFixturesArgs, FixturesError> {
    let mut parsed = GenFixturesArgs {
        out: "fixtures".into(),
        only: None,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |flag: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| FixturesError::Usage(format!("{flag} needs a value")))
        };
        match arg.as_str() {
            "--out" => parsed.out = value("--out")?,
            "--only" => parsed.only = Some(value("--only")?),
            other => return Err(FixturesError::Usage(format!("unknown argument `{other}`"))),
        }
    }
    Ok(parsed)
}

/// Build the reference environment if needed, run the generator (reporting its time), then
/// verify what it wrote.
pub fn gen_fixtures(root: &Path, args: &GenFixturesArgs) -> Result<(), FixturesError> {
    refenv::ensure(root)?;
    let mut script_args = vec!["--out".to_string(), args.out.clone()];
    if let Some(only) = &args.only {
        script_args.extend(["--only".to_string(), only.clone()]);
    }
    let start = Instant::now();
    refenv::run_script(root, "gen_fixtures.py", &script_args)?;
    println!(
        "gen-fixtures: wrote {} in {:.1} s",
        args.out,
        start.elapsed().as_secs_f64()
    );
    refenv::run_script(
        root,
        "verify_fixtures.py",
        &["--dir".to_string(), args.out.clone()],
    )?;
    // Checkpoints we write must load into PyTorch spectrans (strict) and agree there.
    crate::roundtrip::roundtrip(root)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults_to_the_fixtures_folder() {
        let parsed = parse_args(&[]).map_err(|e| e.to_string());
        assert_eq!(
            parsed,
            Ok(GenFixturesArgs {
                out: "fixtures".into(),
                only: None
            })
        );
    }

    #[test]
    fn reads_out_and_only() {
        let parsed = parse_args(&strings(&["--only", "a,b", "--out", "/tmp/x"]));
        assert_eq!(
            parsed.map_err(|e| e.to_string()),
            Ok(GenFixturesArgs {
                out: "/tmp/x".into(),
                only: Some("a,b".into())
            })
        );
    }

    #[test]
    fn rejects_unknown_and_valueless_flags() {
        let unknown = parse_args(&strings(&["--fast"])).map_err(|e| e.to_string());
        assert!(matches!(unknown, Err(msg) if msg.contains("`--fast`")));
        let valueless = parse_args(&strings(&["--out"])).map_err(|e| e.to_string());
        assert!(matches!(valueless, Err(msg) if msg.contains("--out needs a value")));
    }

    /// Every committed fixture config is valid for the Rust config crate, and the manifest
    /// lists exactly the case folders that exist.
    #[test]
    fn committed_fixture_configs_validate() -> Result<(), Box<dyn std::error::Error>> {
        let root = crate::refenv::workspace_root().join("fixtures");
        let manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(root.join("manifest.json"))?)?;
        let entries = manifest.as_array().ok_or("manifest is not a list")?;
        assert!(entries.len() >= 50, "{} cases", entries.len());
        for entry in entries {
            let kind = entry["kind"].as_str().ok_or("kind")?;
            let case = entry["case"].as_str().ok_or("case")?;
            let dir = root.join(kind).join(case);
            for file in ["config.toml", "weights.safetensors", "inputs.safetensors"] {
                assert!(dir.join(file).is_file(), "{kind}/{case}/{file} missing");
            }
            assert!(dir.join("expected.safetensors").is_file());
            let config = spectrans_config::Config::load(dir.join("config.toml"));
            assert!(config.is_ok(), "{kind}/{case}: {:?}", config.err());
        }
        for kind in ["forward", "grad"] {
            let on_disk = std::fs::read_dir(root.join(kind))?.count();
            let listed = entries.iter().filter(|e| e["kind"] == kind).count();
            assert_eq!(on_disk, listed, "{kind}: folders vs manifest entries");
        }
        Ok(())
    }
}

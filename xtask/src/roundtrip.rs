//! `cargo xtask roundtrip`: weights written by our CLI load into PyTorch spectrans with a strict
//! `load_state_dict` and give the same outputs there.
//!
//! For several fixture configs (every positional type and head), `spectrans init` writes random
//! weights and `spectrans forward` runs the fixture's inputs; then `check_state_dict.py` loads
//! the weights into the spectrans model and compares its forward with ours. A checkpoint from
//! `spectrans train` (the digits example, one epoch) must load too.

use std::path::Path;
use std::process::Command;

use crate::refenv::{self, RefEnvError};

/// Fixture cases whose configs and inputs the round trip reuses.
const CASES: [&str; 8] = [
    "pos_sinusoidal",
    "pos_learned",
    "pos_rotary",
    "regression_attention_mask",
    "lm_vocab",
    "sequence_neither_to_hidden",
    "gfnet_encoder",
    "fft_norm_forward",
];

fn spectrans(root: &Path) -> Command {
    let mut c = Command::new(root.join("target/release/spectrans"));
    c.current_dir(root);
    c
}

/// Runs the round trip; any failure names the case.
pub fn roundtrip(root: &Path) -> Result<(), RefEnvError> {
    refenv::ensure(root)?;
    refenv::run(
        Command::new(env!("CARGO"))
            .args(["build", "--release", "-q", "-p", "spectrans-cli"])
            .current_dir(root),
    )?;
    let out = root.join("target/roundtrip");
    std::fs::create_dir_all(&out).map_err(|source| RefEnvError::Io {
        path: out.clone(),
        source,
    })?;
    let s = |p: &Path| p.display().to_string();
    for case in CASES {
        let dir = root.join("fixtures/forward").join(case);
        let config = dir.join("config.toml");
        let inputs = dir.join("inputs.safetensors");
        let weights = out.join(format!("{case}.safetensors"));
        let ours = out.join(format!("{case}.out.safetensors"));
        refenv::run(
            spectrans(root)
                .args(["init", "--seed", "7", "--config"])
                .arg(&config)
                .arg("--output")
                .arg(&weights),
        )?;
        refenv::run(
            spectrans(root)
                .args(["forward", "--config"])
                .arg(&config)
                .arg("--weights")
                .arg(&weights)
                .arg("--input")
                .arg(&inputs)
                .arg("--output")
                .arg(&ours),
        )?;
        println!("roundtrip {case}:");
        refenv::run_script(
            root,
            "check_state_dict.py",
            &[
                s(&config),
                s(&weights),
                "--inputs".into(),
                s(&inputs),
                "--expected".into(),
                s(&ours),
            ],
        )?;
    }
    let digits = root.join("examples/configs/digits.toml");
    let ckpt = out.join("digits.safetensors");
    refenv::run(
        spectrans(root)
            .args(["train", "--epochs", "1", "--config"])
            .arg(&digits)
            .arg("--output")
            .arg(&ckpt),
    )?;
    println!("roundtrip trained digits checkpoint:");
    refenv::run_script(root, "check_state_dict.py", &[s(&digits), s(&ckpt)])?;
    println!("roundtrip: every checkpoint loaded into PyTorch spectrans and matched");
    Ok(())
}

//! What the CLI tests share: the binary, and a temporary folder per test, removed when the
//! test ends.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The `spectrans` binary under test.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_spectrans"))
}

/// Runs `cmd` and asserts that it succeeded (its stderr in the message).
pub fn succeeds(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("spectrans runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A test's own folder: no test reads or writes a file another test uses.
pub struct Scratch(tempfile::TempDir);

impl Scratch {
    /// A fresh, empty folder under the system's temp dir.
    pub fn new() -> Self {
        Scratch(
            tempfile::Builder::new()
                .prefix("spectrans-cli-test-")
                .tempdir()
                .expect("create a temp dir"),
        )
    }

    /// The path of `name` inside the folder.
    pub fn file(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
}

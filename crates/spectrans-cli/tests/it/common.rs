//! What the CLI tests share: a temporary folder per test, removed when the test ends.

use std::path::PathBuf;

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

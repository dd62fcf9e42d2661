//! Test support shared by the spectrans-rs crates (not published).
//!
//! - [`parity`]: the PyTorch fixtures and the parity report rows (forward parity is tested in
//!   spectrans-models, gradient parity in spectrans-train).
//! - [`safetensors_fuzz`]: proptest strategies that mutate safetensors files.
//! - [`fuzz`], [`guarded`], [`on_file`]: the loader fuzz harness.
//! - [`http`]: a small blocking HTTP/1.1 client for tests that speak to a real server.
//!
//! This crate depends on none of the crates it tests (what a mutator needs of a model, such as
//! its weight names, is a parameter), so every crate can use it as a dev-dependency.
//!
//! [`fuzz`] runs a loader fuzz property: proptest generates inputs, and each case runs on its own
//! thread under `catch_unwind`, with a time limit and a cap on the largest single allocation, so
//! a panic, a hang or a huge allocation fails the property and proptest reports the (shrunk)
//! input. The allocation cap needs the test binary to install [`LargestRequest`]:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: spectrans_testkit::LargestRequest = spectrans_testkit::LargestRequest;
//! ```

pub mod http;
pub mod parity;
pub mod safetensors_fuzz;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use proptest::strategy::Strategy;
use proptest::test_runner::{
    Config as ProptestConfig, FileFailurePersistence, TestCaseError, TestRunner,
};
use tempfile::TempDir;

/// What a property may do, and how often it runs.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Cases when `PROPTEST_CASES` is not set.
    pub default_cases: u32,
    /// The longest one case may run (this only catches hangs).
    pub case_time: Duration,
    /// The largest single allocation one case may request, in bytes.
    pub allocation: usize,
}

/// Forwards to the system allocator, remembering per thread the largest request.
#[derive(Debug)]
pub struct LargestRequest;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: allocations during thread teardown must not touch a destroyed slot.
    let _ = LARGEST.try_with(|l| {
        if size > l.get() {
            l.set(size);
        }
    });
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the only
// addition is a thread-local `Cell` update, which neither allocates nor unwinds.
unsafe impl GlobalAlloc for LargestRequest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which `System` shares.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through this allocator, with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: as for `dealloc`; `new_size` is the caller's, per the contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// `PROPTEST_CASES` if set (and a number), else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// Writes `bytes` to a fresh file in `dir` (named `case-<n><ext>`, one name per call), runs
/// `f` on its path [`guarded`] by `limits`, and removes the file.
pub fn on_file<T: Send + 'static>(
    limits: Limits,
    dir: &Path,
    ext: &str,
    bytes: &[u8],
    f: impl FnOnce(PathBuf) -> T + Send + 'static,
) -> Result<T, String> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = dir.join(format!("case-{n}{ext}"));
    std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let result = guarded(limits, {
        let path = path.clone();
        move || f(path)
    });
    let _ = std::fs::remove_file(&path);
    result
}

/// Runs `f` on a fresh thread under `catch_unwind`; a panic, a run past `limits.case_time` or
/// an allocation over `limits.allocation` becomes an `Err` describing it.
pub fn guarded<T: Send + 'static>(
    limits: Limits,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .name("fuzz-case".into())
        .spawn(move || {
            LARGEST.with(|l| l.set(0));
            let result = std::panic::catch_unwind(AssertUnwindSafe(f));
            let largest = LARGEST.with(Cell::get);
            let _ = tx.send((result, largest));
        })
        .map_err(|e| format!("cannot start the case thread: {e}"))?;
    match rx.recv_timeout(limits.case_time) {
        Ok((result, largest)) => {
            let _ = handle.join();
            match result {
                Ok(_) if largest > limits.allocation => Err(format!(
                    "requested {largest} bytes in one allocation (limit {})",
                    limits.allocation
                )),
                Ok(v) => Ok(v),
                Err(payload) => Err(format!("panicked: {}", panic_message(payload.as_ref()))),
            }
        }
        // The thread is left running (it cannot be stopped); the property fails.
        Err(mpsc::RecvTimeoutError::Timeout) => {
            Err(format!("did not finish within {:?}", limits.case_time))
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Err("the case thread ended without a result".into())
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a non-string panic payload)".into()
    }
}

/// Runs one property: `check` gets each generated input and the property's own temp folder,
/// and returns a short outcome label (tallied and printed) or a failure. Failures are saved
/// beside `source_file` (pass `file!()`), as `<name>.proptest-regressions`.
pub fn fuzz<S>(
    name: &str,
    source_file: &'static str,
    limits: Limits,
    strategy: S,
    check: impl Fn(&S::Value, &Path) -> Result<String, String>,
) where
    S: Strategy,
    S::Value: Debug,
{
    let dir = TempDir::new().expect("a temp folder for the property");
    let config = ProptestConfig {
        cases: cases(limits.default_cases),
        source_file: Some(source_file),
        // Beside this file, as `fuzz.proptest-regressions` (the repository's convention).
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        max_shrink_iters: 512,
        ..ProptestConfig::default()
    };
    let mut runner = TestRunner::new(config);
    let tally: RefCell<BTreeMap<String, u32>> = RefCell::new(BTreeMap::new());
    let ran = Cell::new(0u32);
    let result = runner.run(&strategy, |input| {
        ran.set(ran.get() + 1);
        let outcome = check(&input, dir.path()).map_err(TestCaseError::fail)?;
        *tally.borrow_mut().entry(outcome).or_default() += 1;
        Ok(())
    });
    if let Err(e) = result {
        panic!("fuzz property {name} failed: {e}");
    }
    let tally: Vec<String> = tally
        .into_inner()
        .into_iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    println!(
        "fuzz property {name}: {} cases passed ({})",
        ran.get(),
        tally.join(", ")
    );
}

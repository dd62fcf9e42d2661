//! The PyTorch reference environment (`.venv-ref`): spectrans 0.1.0 on the local Python.
//!
//! `cargo xtask ref-env` builds it when missing, each step skipped when already done:
//! 1. `python3 -m venv .venv-ref`;
//! 2. `pip install torch numpy scipy einops PyWavelets pydantic pyyaml safetensors`;
//!    then the benchmarks' `pip install onnx onnxruntime onnxscript threadpoolctl`
//!    and the serving benchmark's `pip install fastapi uvicorn uvloop httptools aiohttp psutil
//!    tokenizers`;
//! 3. `pip install --no-deps --ignore-requires-python spectrans==0.1.0`;
//! 4. rewrite the PEP 695 aliases of the installed package (`type X = Y` becomes `X = Y`,
//!    the `sed -E 's/^(\s*)type (\w+) = /\1\2 = /'` of docs/reference-env.md), since spectrans
//!    asks for Python 3.13 and runs on 3.11 after that one edit;
//! 5. check `from spectrans.models.gfnet import GFNet`.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

/// Packages spectrans needs at run time (installed with their dependencies).
pub const RUNTIME_PACKAGES: &[&str] = &[
    "torch",
    "numpy",
    "scipy",
    "einops",
    "PyWavelets",
    "pydantic",
    "pyyaml",
    "safetensors",
];
/// Packages the side-by-side benchmarks need beyond spectrans (`cargo xtask bench`): the
/// ONNX export and ONNX Runtime variant, and threadpoolctl to see and pin numpy's BLAS.
pub const BENCH_PACKAGES: &[&str] = &["onnx", "onnxruntime", "onnxscript", "threadpoolctl"];
/// Packages the serving benchmark needs (`cargo xtask bench serve`): the PyTorch server
/// (FastAPI on uvicorn, with the event loop and HTTP parser of `uvicorn[standard]`, uvloop
/// and httptools, which uvicorn picks when present: the PyTorch side as it runs in production),
/// an asyncio HTTP client and psutil for ad-hoc checks, and Hugging Face's `tokenizers` to
/// make and check `tokenizer.json` files.
pub const SERVE_PACKAGES: &[&str] = &[
    "fastapi",
    "uvicorn",
    "uvloop",
    "httptools",
    "aiohttp",
    "psutil",
    "tokenizers",
];
/// The reference itself, installed with `--no-deps --ignore-requires-python`.
pub const SPECTRANS_PACKAGE: &str = "spectrans==0.1.0";
/// The import that proves the environment works.
pub const CHECK_IMPORT: &str = "from spectrans.models.gfnet import GFNet";

/// What went wrong while building or using the reference environment.
#[derive(Debug)]
pub enum RefEnvError {
    /// A command could not be started at all (e.g. no `python3` on PATH).
    Spawn {
        command: String,
        source: std::io::Error,
    },
    /// A command ran and failed.
    Failed { command: String, status: ExitStatus },
    /// Reading or writing a file of the installed package failed.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// pip reported success but Python cannot find the package.
    NotInstalled { package: &'static str },
    /// The environment is not there and the caller did not ask to build it.
    Missing { python: PathBuf },
}

impl fmt::Display for RefEnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Spawn { command, source } => write!(f, "could not run `{command}`: {source}"),
            Self::Failed { command, status } => write!(f, "`{command}` failed ({status})"),
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Self::NotInstalled { package } => {
                write!(f, "{package} was installed but Python cannot find it")
            }
            Self::Missing { python } => write!(
                f,
                "no reference environment ({} is missing): run `cargo xtask ref-env` first",
                python.display()
            ),
        }
    }
}

impl std::error::Error for RefEnvError {}

/// The workspace root (the parent of the xtask crate).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// `<root>/.venv-ref`.
pub fn venv_dir(root: &Path) -> PathBuf {
    root.join(".venv-ref")
}

/// The reference environment's Python interpreter.
pub fn python(root: &Path) -> PathBuf {
    venv_dir(root).join("bin").join("python")
}

/// The folder of the python scripts xtask runs (`xtask/python`).
pub fn scripts_dir(root: &Path) -> PathBuf {
    root.join("xtask").join("python")
}

/// Run `xtask/python/<script> <args>` with the reference Python, inheriting stdio.
pub fn run_script(root: &Path, script: &str, args: &[String]) -> Result<(), RefEnvError> {
    let py = python(root);
    if !py.exists() {
        return Err(RefEnvError::Missing { python: py });
    }
    let mut cmd = Command::new(&py);
    cmd.arg(scripts_dir(root).join(script))
        .args(args)
        .current_dir(root);
    run(&mut cmd)
}

/// Build `.venv-ref` where missing (every step idempotent) and check the spectrans import.
pub fn ensure(root: &Path) -> Result<PathBuf, RefEnvError> {
    let venv = venv_dir(root);
    let py = python(root);
    if py.exists() {
        println!("ref-env: {} exists", venv.display());
    } else {
        println!("ref-env: creating {}", venv.display());
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    }
    if python_ok(
        &py,
        "import torch, numpy, scipy, einops, pywt, pydantic, yaml, safetensors",
    ) {
        println!("ref-env: runtime packages present");
    } else {
        println!("ref-env: installing {}", RUNTIME_PACKAGES.join(" "));
        run(Command::new(&py)
            .args(["-m", "pip", "install"])
            .args(RUNTIME_PACKAGES))?;
    }
    if python_ok(&py, "import onnx, onnxruntime, onnxscript, threadpoolctl") {
        println!("ref-env: benchmark packages present");
    } else {
        println!("ref-env: installing {}", BENCH_PACKAGES.join(" "));
        run(Command::new(&py)
            .args(["-m", "pip", "install"])
            .args(BENCH_PACKAGES))?;
    }
    if python_ok(
        &py,
        "import fastapi, uvicorn, uvloop, httptools, aiohttp, psutil, tokenizers",
    ) {
        println!("ref-env: serving packages present");
    } else {
        println!("ref-env: installing {}", SERVE_PACKAGES.join(" "));
        run(Command::new(&py)
            .args(["-m", "pip", "install"])
            .args(SERVE_PACKAGES))?;
    }
    let package_dir = spectrans_dir(&py);
    let package_dir = match package_dir {
        Some(dir) => dir,
        None => {
            println!("ref-env: installing {SPECTRANS_PACKAGE}");
            run(Command::new(&py).args([
                "-m",
                "pip",
                "install",
                "--no-deps",
                "--ignore-requires-python",
                SPECTRANS_PACKAGE,
            ]))?;
            spectrans_dir(&py).ok_or(RefEnvError::NotInstalled {
                package: SPECTRANS_PACKAGE,
            })?
        }
    };
    let patched = patch_package(&package_dir)?;
    println!(
        "ref-env: {} file(s) rewritten for PEP 695 aliases in {}",
        patched,
        package_dir.display()
    );
    run(Command::new(&py).args(["-c", CHECK_IMPORT]))?;
    println!("ref-env: `{CHECK_IMPORT}` works");
    Ok(py)
}

/// Whether `python -c code` exits 0.
fn python_ok(py: &Path, code: &str) -> bool {
    Command::new(py)
        .args(["-c", code])
        .output()
        .map(|out| out.status.success())
        .unwrap_or(false)
}

/// The installed spectrans package folder, found without importing it (it fails to import
/// before the alias rewrite).
fn spectrans_dir(py: &Path) -> Option<PathBuf> {
    let code = "import importlib.util as u, os; s = u.find_spec('spectrans'); \
                print(os.path.dirname(s.origin) if s and s.origin else '')";
    let out = Command::new(py).args(["-c", code]).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let dir = text.trim();
    (out.status.success() && !dir.is_empty()).then(|| PathBuf::from(dir))
}

/// Rewrite the aliases of every `.py` file under `dir`; returns how many files changed.
pub fn patch_package(dir: &Path) -> Result<usize, RefEnvError> {
    let mut changed = 0;
    let entries = fs::read_dir(dir).map_err(|source| RefEnvError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let path = entry
            .map_err(|source| RefEnvError::Io {
                path: dir.to_path_buf(),
                source,
            })?
            .path();
        if path.is_dir() {
            changed += patch_package(&path)?;
        } else if path.extension().is_some_and(|ext| ext == "py") {
            let io_err = |source| RefEnvError::Io {
                path: path.clone(),
                source,
            };
            let text = fs::read_to_string(&path).map_err(io_err)?;
            if let Some(new) = rewrite_type_aliases(&text) {
                fs::write(&path, new).map_err(io_err)?;
                changed += 1;
            }
        }
    }
    Ok(changed)
}

/// `^(\s*)type (\w+) = ` becomes `\1\2 = ` on every line; `None` when no line matches.
///
/// ```text
/// "    type Tensor = torch.Tensor"  ->  "    Tensor = torch.Tensor"
/// ```
pub fn rewrite_type_aliases(src: &str) -> Option<String> {
    let mut out = String::with_capacity(src.len());
    let mut changed = false;
    for line in src.split_inclusive('\n') {
        match rewrite_line(line) {
            Some(new) => {
                out.push_str(&new);
                changed = true;
            }
            None => out.push_str(line),
        }
    }
    changed.then_some(out)
}

fn rewrite_line(line: &str) -> Option<String> {
    let body = line.trim_start_matches(|c: char| c.is_whitespace() && c != '\n');
    let indent = &line[..line.len() - body.len()];
    let rest = body.strip_prefix("type ")?;
    let name_len = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    if name_len == 0 {
        return None;
    }
    let (name, tail) = rest.split_at(name_len);
    let value = tail.strip_prefix(" = ")?;
    Some(format!("{indent}{name} = {value}"))
}

/// Runs a command with inherited stdio; a non-zero exit is an error naming the command.
pub fn run(cmd: &mut Command) -> Result<(), RefEnvError> {
    let command = format!("{cmd:?}");
    let status = cmd.status().map_err(|source| RefEnvError::Spawn {
        command: command.clone(),
        source,
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(RefEnvError::Failed { command, status })
    }
}

#[cfg(test)]
mod tests {
    use super::{patch_package, rewrite_type_aliases};
    use std::fs;

    #[test]
    fn patches_nested_python_files_once() -> Result<(), Box<dyn std::error::Error>> {
        let dir = std::env::temp_dir().join(format!("xtask-refenv-{}", std::process::id()));
        fs::create_dir_all(dir.join("core"))?;
        fs::write(dir.join("__init__.py"), "x = 1\n")?;
        fs::write(dir.join("core/types.py"), "type Tensor = torch.Tensor\n")?;
        fs::write(dir.join("core/notes.txt"), "type Tensor = torch.Tensor\n")?;
        let first = patch_package(&dir);
        let second = patch_package(&dir);
        let types = fs::read_to_string(dir.join("core/types.py"))?;
        let notes = fs::read_to_string(dir.join("core/notes.txt"))?;
        fs::remove_dir_all(&dir)?;
        assert_eq!(first?, 1);
        assert_eq!(second?, 0, "a second run finds nothing left to rewrite");
        assert_eq!(types, "Tensor = torch.Tensor\n");
        assert_eq!(
            notes, "type Tensor = torch.Tensor\n",
            "only .py files change"
        );
        Ok(())
    }

    #[test]
    fn rewrites_top_level_and_indented_aliases() {
        let src = "import torch\ntype Tensor = torch.Tensor\n    type A_1 = int | None\n";
        let want = "import torch\nTensor = torch.Tensor\n    A_1 = int | None\n";
        assert_eq!(rewrite_type_aliases(src).as_deref(), Some(want));
    }

    #[test]
    fn keeps_lines_that_are_not_aliases() {
        for src in [
            "x = type(y)\n",
            "# type X = Y\n",
            "types X = Y\n",
            "type X=Y\n",
            "type  X = Y\n",
            "typed = 1\n",
            "type = 3\n",
        ] {
            assert_eq!(rewrite_type_aliases(src), None, "{src:?}");
        }
    }

    #[test]
    fn keeps_line_endings_and_the_rest_of_the_line() {
        let src = "\ttype X = Literal[\"a\", \"b\"]  # note\r\nlast line without newline";
        let want = "\tX = Literal[\"a\", \"b\"]  # note\r\nlast line without newline";
        assert_eq!(rewrite_type_aliases(src).as_deref(), Some(want));
    }

    #[test]
    fn the_same_as_the_sed_rule_on_unicode_names() {
        // `\w` in sed -E is locale-dependent; Python identifiers may be non-ASCII.
        assert_eq!(
            rewrite_type_aliases("type Größe = int\n").as_deref(),
            Some("Größe = int\n")
        );
    }
}

//! `spectrans validate` end to end: the example configs pass with a summary, broken configs fail
//! with one line per problem naming the field (or the line, for syntax).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::Scratch;

fn validate(config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spectrans"))
        .args(["validate", "--config"])
        .arg(config)
        .output()
        .expect("run the spectrans binary")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/configs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples/configs exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

fn write_temp(dir: &Scratch, name: &str, contents: &str) -> PathBuf {
    let path = dir.file(name);
    std::fs::write(&path, contents).expect("write temp config");
    path
}

#[test]
fn every_example_config_is_valid() {
    let files = examples();
    for name in ["gfnet.toml", "tiny.toml", "text_classifier.toml"] {
        assert!(
            files.iter().any(|f| f.ends_with(name)),
            "examples/configs/{name} is missing"
        );
    }
    for f in files {
        let out = validate(&f);
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "{}: {}",
            f.display(),
            text(&out.stderr)
        );
        assert_eq!(stdout.lines().count(), 1, "one summary line: {stdout}");
        assert!(
            stdout.contains(": valid: ") && stdout.contains(" parameters; "),
            "{stdout}"
        );
    }
}

#[test]
fn summary_of_the_gfnet_port_gives_its_parameters_and_shapes() {
    let f = examples()
        .into_iter()
        .find(|f| f.ends_with("gfnet.toml"))
        .expect("gfnet.toml");
    let stdout = text(&validate(&f).stdout);
    // 19,277,800 is what PyTorch spectrans counts for the same model.
    assert!(
        stdout.contains("8 layers, hidden 512, sequence 224, ffn 2048, learned positions"),
        "{stdout}"
    );
    assert!(
        stdout.contains("19277800 parameters; inputs_embeds (B, N, 512) -> output (B, 1000)"),
        "{stdout}"
    );
}

#[test]
fn invalid_config_lists_every_problem_and_exits_non_zero() {
    let dir = Scratch::new();
    let f = write_temp(
        &dir,
        "bad.toml",
        "[model]\nhiden_dim = 8\nnum_layers = 0\nsequence_length = 4\ndropout = 1.5\n\
         [layers.mixing]\nfft_norm = \"orth\"\n",
    );
    let out = validate(&f);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = text(&out.stderr);
    for needle in [
        "model.hiden_dim: unknown field `hiden_dim` in [model]; did you mean `hidden_dim`?",
        "model.hidden_dim: missing; required (an integer > 0)",
        "model.num_layers: got 0; must be > 0",
        "model.dropout: got 1.5; must be 0 <= p <= 1",
        "layers.mixing.fft_norm: got \"orth\"; must be one of ortho, forward, backward; did you mean `ortho`?",
        "invalid (5 problems)",
    ] {
        assert!(stderr.contains(needle), "{needle:?} not in:\n{stderr}");
    }
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
}

#[test]
fn syntax_error_names_line_and_column() {
    let dir = Scratch::new();
    let f = write_temp(
        &dir,
        "syntax.toml",
        "[model]\nhidden_dim = 8\nnum_layers = = 2\n",
    );
    let out = validate(&f);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("TOML syntax error at line 3, column "),
        "{stderr}"
    );
}

#[test]
fn missing_file_is_an_error_naming_it() {
    let out = validate(Path::new("/nonexistent/dir/config.toml"));
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("error: /nonexistent/dir/config.toml: "),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

/// `spectrans demo` embeds its own copy of the digits config (a package must not include files
/// from outside itself); it must stay the example users read.
#[test]
fn the_demo_embeds_the_example_digits_config() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = std::fs::read_to_string(root.join("../../examples/configs/digits.toml"))
        .expect("examples/configs/digits.toml");
    let embedded = std::fs::read_to_string(root.join("src/cmd/digits.toml"))
        .expect("crates/spectrans-cli/src/cmd/digits.toml");
    assert_eq!(
        embedded, example,
        "copy examples/configs/digits.toml to crates/spectrans-cli/src/cmd/digits.toml"
    );
}

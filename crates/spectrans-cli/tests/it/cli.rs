//! The `spectrans` binary end to end: the design.md contract for forward, grad, init, inspect,
//! bench and train, and clean errors (non-zero exit, a message, no panic) on bad input.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ndarray::{ArrayD, IxDyn};
use spectrans_models::tensor_file::{OwnedTensor, TensorFile, write_tensors};

use crate::common::{Scratch, bin};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("spectrans runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    assert!(
        !stderr.contains("RUST_BACKTRACE"),
        "backtrace hint: {stderr}"
    );
    out
}

fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(!out.status.success(), "expected failure");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(stderr.starts_with("error:"), "{stderr}");
    stderr
}

fn max_diff(a: &ArrayD<f32>, b: &ArrayD<f32>) -> f32 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn forward_reproduces_a_pytorch_fixture() {
    let dir = Scratch::new();
    let case = fixtures().join("forward/regression_attention_mask");
    let out = dir.file("forward_out.safetensors");
    ok(bin()
        .args(["forward", "--config"])
        .arg(case.join("config.toml"))
        .arg("--weights")
        .arg(case.join("weights.safetensors"))
        .arg("--input")
        .arg(case.join("inputs.safetensors"))
        .arg("--output")
        .arg(&out));
    let ours = TensorFile::open(&out).unwrap();
    assert_eq!(ours.names(), vec!["output".to_string()]);
    let expected = TensorFile::open(case.join("expected.safetensors")).unwrap();
    let d = max_diff(
        &ours.read_f32("output").unwrap(),
        &expected.read_f32("output_f32").unwrap(),
    );
    assert!(d < 1e-4, "max diff {d}");
}

#[test]
fn forward_takes_a_precision_and_inspect_names_the_stored_one() {
    let dir = Scratch::new();
    let case = fixtures().join("forward/big_h128_s64");
    let expected = TensorFile::open(case.join("expected.safetensors"))
        .unwrap()
        .read_f32("output_f32")
        .unwrap();
    let scale = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let forward = |precision: &str| {
        let out = dir.file(&format!("forward_{precision}.safetensors"));
        let mut c = bin();
        c.args(["forward", "--config"])
            .arg(case.join("config.toml"))
            .arg("--weights")
            .arg(case.join("weights.safetensors"))
            .arg("--input")
            .arg(case.join("inputs.safetensors"))
            .arg("--output")
            .arg(&out)
            .args(["--precision", precision]);
        (c, out)
    };
    for (precision, bound) in [("f32", 1e-5), ("bf16", 2e-2), ("int8", 6e-2)] {
        let (mut c, out) = forward(precision);
        ok(&mut c);
        let d = max_diff(
            &TensorFile::open(&out).unwrap().read_f32("output").unwrap(),
            &expected,
        );
        assert!(d <= bound * scale, "{precision}: {d} vs {}", bound * scale);
        if precision != "f32" {
            assert!(d > 1e-5 * scale, "{precision} changed nothing");
        }
    }
    let e = fails(&mut forward("int4").0);
    assert!(e.contains("int4") && e.contains("f32, bf16, int8"), "{e}");
    let shown = ok(bin()
        .args(["inspect", "--weights"])
        .arg(case.join("weights.safetensors")));
    assert!(shown.contains("precision: f32"), "{shown}");
}

#[test]
fn grad_writes_the_loss_and_every_parameter_gradient() {
    let dir = Scratch::new();
    let case = fixtures().join("grad/ce_classification");
    let out = dir.file("grad_out.safetensors");
    ok(bin()
        .args(["grad", "--config"])
        .arg(case.join("config.toml"))
        .arg("--weights")
        .arg(case.join("weights.safetensors"))
        .arg("--input")
        .arg(case.join("inputs.safetensors"))
        .args(["--loss", "ce", "--output"])
        .arg(&out));
    let ours = TensorFile::open(&out).unwrap();
    let expected = TensorFile::open(case.join("expected.safetensors")).unwrap();
    let loss = ours.read_f64("loss").unwrap();
    assert_eq!(loss.shape(), &[1]);
    assert!((loss[0] - expected.read_f64("loss_f64").unwrap()[0]).abs() < 1e-5);
    let theirs: Vec<String> = expected
        .names()
        .into_iter()
        .filter(|n| n.starts_with("grad."))
        .collect();
    let mine: Vec<String> = ours
        .names()
        .into_iter()
        .filter(|n| n.starts_with("grad."))
        .collect();
    assert_eq!(mine, theirs);
    for name in &mine {
        let a = ours.read_f64(name).unwrap();
        let b = expected.read_f64(name).unwrap();
        let scale = b.iter().map(|v| v.abs()).fold(1e-12, f64::max);
        let err = a
            .iter()
            .zip(b.iter())
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max);
        assert!(err / scale < 1e-3, "{name}: {err} / {scale}");
    }
}

fn tiny_config(dir: &Scratch) -> PathBuf {
    let p = dir.file("tiny.toml");
    std::fs::write(
        &p,
        "[model]\nvocab_size = 20\nhidden_dim = 16\nnum_layers = 1\nsequence_length = 8\nnum_classes = 3\n",
    )
    .unwrap();
    p
}

fn ids_file(dir: &Scratch, name: &str, value: i64) -> PathBuf {
    let p = dir.file(name);
    let mut t = BTreeMap::new();
    t.insert(
        "input_ids".to_string(),
        OwnedTensor::I64(ArrayD::from_elem(IxDyn(&[2, 8]), value)),
    );
    write_tensors(&p, &t).unwrap();
    p
}

#[test]
fn init_then_forward_then_inspect() {
    let dir = Scratch::new();
    let cfg = tiny_config(&dir);
    let w = dir.file("init.safetensors");
    let msg = ok(bin()
        .args(["init", "--config"])
        .arg(&cfg)
        .args(["--seed", "5", "--output"])
        .arg(&w));
    assert!(msg.contains("parameters"), "{msg}");
    let out = dir.file("init_out.safetensors");
    ok(bin()
        .args(["forward", "--config"])
        .arg(&cfg)
        .arg("--weights")
        .arg(&w)
        .arg("--input")
        .arg(ids_file(&dir, "ids.safetensors", 3))
        .arg("--output")
        .arg(&out));
    let o = TensorFile::open(&out).unwrap().read_f32("output").unwrap();
    assert_eq!(o.shape(), &[2, 3]);
    let text = ok(bin().args(["inspect", "--weights"]).arg(&w));
    assert!(text.contains("blocks.0.mixing_layer.filter_real"), "{text}");
    assert!(text.contains("positional_encoding.pe"), "{text}");
    assert!(text.contains("global filters"), "{text}");
}

#[test]
fn bench_prints_one_json_object() {
    let dir = Scratch::new();
    let text = ok(bin()
        .args(["bench", "--config"])
        .arg(tiny_config(&dir))
        .args(["--batch", "2", "--iters", "2", "--threads", "1", "--json"]));
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert!(v["forward_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(v["threads"], 1);
    assert_eq!(v["idle_ms"], 0);
    // --idle-ms sleeps before each timed run: 3 runs cannot finish in under 3 x 30 ms.
    let started = std::time::Instant::now();
    let text = ok(bin()
        .args(["bench", "--config"])
        .arg(tiny_config(&dir))
        .args(["--batch", "1", "--iters", "3", "--idle-ms", "30", "--json"]));
    assert!(started.elapsed() >= std::time::Duration::from_millis(90));
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(v["idle_ms"], 30);
    let text = ok(bin()
        .args(["bench", "--config"])
        .arg(tiny_config(&dir))
        .args(["--batch", "2", "--iters", "1", "--train", "--json"]));
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert!(v["train_step_ms"].as_f64().unwrap() > 0.0);
}

#[test]
fn train_writes_checkpoint_and_metrics_and_resumes() {
    let dir = Scratch::new();
    let data = dir.file("data.csv");
    let lines: Vec<String> = (0..40)
        .map(|i| {
            let toks: Vec<String> = (0..8).map(|t| ((i * 3 + t) % 20).to_string()).collect();
            format!("{},{}", i % 3, toks.join(","))
        })
        .collect();
    std::fs::write(&data, lines.join("\n")).unwrap();
    let w = dir.file("trained.safetensors");
    let out = ok(bin()
        .args(["train", "--config"])
        .arg(tiny_config(&dir))
        .arg("--data")
        .arg(&data)
        .args(["--epochs", "2", "--output"])
        .arg(&w));
    assert!(out.contains("epoch   2/2"), "{out}");
    let metrics = std::fs::read_to_string(dir.file("trained.safetensors.metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 2);
    let first: serde_json::Value = serde_json::from_str(metrics.lines().next().unwrap()).unwrap();
    assert!(first["eval_accuracy"].is_number());
    assert!(dir.file("trained.safetensors.optim.safetensors").exists());
    let out = ok(bin()
        .args(["train", "--config"])
        .arg(tiny_config(&dir))
        .arg("--data")
        .arg(&data)
        .args(["--epochs", "3", "--output"])
        .arg(&w)
        .arg("--resume")
        .arg(&w));
    assert!(out.contains("resumed"), "{out}");
    assert!(
        out.contains("epoch   3/3") && !out.contains("epoch   1/3"),
        "{out}"
    );
    let metrics = std::fs::read_to_string(dir.file("trained.safetensors.metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 3);
}

#[test]
fn errors_are_messages_not_panics() {
    let dir = Scratch::new();
    let cfg = tiny_config(&dir);
    let w = dir.file("err_weights.safetensors");
    ok(bin()
        .args(["init", "--config"])
        .arg(&cfg)
        .arg("--output")
        .arg(&w));
    let out = dir.file("err_out.safetensors");
    let forward = |input: &Path| {
        let mut c = bin();
        c.args(["forward", "--config"])
            .arg(&cfg)
            .arg("--weights")
            .arg(&w)
            .arg("--input")
            .arg(input)
            .arg("--output")
            .arg(&out);
        c
    };
    let e = fails(&mut forward(&ids_file(&dir, "oob.safetensors", 20)));
    assert!(e.contains("token id 20"), "{e}");
    let e = fails(&mut forward(&dir.file("absent.safetensors")));
    assert!(e.contains("absent.safetensors"), "{e}");
    let junk = dir.file("junk.safetensors");
    std::fs::write(&junk, b"not a tensor file").unwrap();
    let e = fails(&mut forward(&junk));
    assert!(e.contains("not a valid safetensors"), "{e}");
    let odd = dir.file("odd.safetensors");
    let mut t = BTreeMap::new();
    t.insert(
        "input_id".to_string(),
        OwnedTensor::I64(ArrayD::zeros(IxDyn(&[1, 8]))),
    );
    write_tensors(&odd, &t).unwrap();
    let e = fails(&mut forward(&odd));
    assert!(e.contains("unexpected tensor `input_id`"), "{e}");
    assert!(!out.exists(), "no output is written on failure");

    let bad_cfg = dir.file("bad.toml");
    std::fs::write(&bad_cfg, "[model]\nhidden_dim = -3\n").unwrap();
    let e = fails(
        bin()
            .args(["init", "--config"])
            .arg(&bad_cfg)
            .arg("--output")
            .arg(dir.file("never.safetensors")),
    );
    assert!(e.contains("model.hidden_dim"), "{e}");
    let e = fails(
        bin()
            .args(["grad", "--config"])
            .arg(&cfg)
            .arg("--weights")
            .arg(&w)
            .arg("--input")
            .arg(ids_file(&dir, "no_targets.safetensors", 1))
            .arg("--output")
            .arg(&out),
    );
    assert!(e.contains("`targets` is missing"), "{e}");
}

fn digits_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/configs/digits.toml")
}

/// `spectrans train` on the embedded digits with the given extra arguments, writing `out`.
fn train_digits(out: &Path, extra: &[&str]) -> Command {
    let mut c = bin();
    c.args(["train", "--config"])
        .arg(digits_config())
        .args(["--epochs", "2", "--test-fraction", "0.5", "--output"])
        .arg(out)
        .args(extra);
    c
}

fn same_bytes(a: &Path, b: &Path) -> bool {
    std::fs::read(a).unwrap() == std::fs::read(b).unwrap()
}

fn state(weights: &Path) -> PathBuf {
    spectrans_train::optimizer_path(weights)
}

#[test]
fn two_trainings_with_one_seed_write_the_same_bytes() {
    let dir = Scratch::new();
    let (a, b) = (dir.file("a.safetensors"), dir.file("b.safetensors"));
    ok(&mut train_digits(&a, &["--seed", "3"]));
    ok(&mut train_digits(&b, &["--seed", "3"]));
    assert!(same_bytes(&a, &b), "weights differ");
    assert!(same_bytes(&state(&a), &state(&b)), "training states differ");
}

#[test]
fn a_run_killed_and_resumed_ends_with_the_same_bytes_as_one_never_stopped() {
    let dir = Scratch::new();
    let straight = dir.file("straight.safetensors");
    ok(&mut train_digits(&straight, &["--checkpoint-every", "7"]));
    // Kill -9 at three different moments: after the first checkpoint, a little later, and
    // late in the run (if the run finished first, resuming is a no-op and must still match).
    for (i, extra_ms) in [0u64, 700, 1800].into_iter().enumerate() {
        let out = dir.file(&format!("killed{i}.safetensors"));
        let mut child = train_digits(&out, &["--checkpoint-every", "7"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        while !state(&out).exists() && start.elapsed().as_secs() < 60 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::thread::sleep(std::time::Duration::from_millis(extra_ms));
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();
        // Whatever the moment, the files are whole: the state (written first, all that
        // --resume reads) and, once its first write is done, the weights.
        spectrans_models::tensor_file::TensorFile::open(state(&out)).unwrap();
        if out.exists() {
            spectrans_models::tensor_file::TensorFile::open(&out).unwrap();
        }
        let text = ok(train_digits(&out, &["--checkpoint-every", "7", "--resume"]).arg(&out));
        assert!(text.contains("resumed"), "{text}");
        assert!(same_bytes(&out, &straight), "weights differ after kill {i}");
        assert!(
            same_bytes(&state(&out), &state(&straight)),
            "training state differs after kill {i}"
        );
        let metrics =
            std::fs::read_to_string(dir.file(&format!("killed{i}.safetensors.metrics.jsonl")))
                .unwrap();
        assert_eq!(metrics.lines().count(), 2, "{metrics}");
    }
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let dir = Scratch::new();
    let cfg = tiny_config(&dir);
    let w = dir.file("w.safetensors");
    ok(bin()
        .args(["init", "--config"])
        .arg(&cfg)
        .arg("--output")
        .arg(&w));
    let commands: Vec<Vec<std::ffi::OsString>> = vec![
        vec!["inspect".into(), "--weights".into(), w.clone().into()],
        vec!["validate".into(), "--config".into(), cfg.clone().into()],
        vec!["--help".into()],
        vec![
            "bench".into(),
            "--config".into(),
            cfg.clone().into(),
            "--batch".into(),
            "1".into(),
            "--iters".into(),
            "1".into(),
        ],
    ];
    for args in commands {
        // A pipe whose reading end is closed before the command starts: every write fails.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = bin()
            .args(&args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        use std::os::unix::process::ExitStatusExt;
        let quiet = out.status.success() || out.status.signal() == Some(13);
        assert!(quiet, "{args:?}: {:?} {stderr}", out.status);
    }
}

#[test]
fn a_model_too_big_for_memory_is_an_error_within_a_second() {
    let dir = Scratch::new();
    let huge = dir.file("huge.toml");
    std::fs::write(
        &huge,
        "[model]\nhidden_dim = 1000000\nnum_layers = 1000\nsequence_length = 1000000\nvocab_size = 10\nnum_classes = 2\n",
    )
    .unwrap();
    let ids = ids_file(&dir, "ids.safetensors", 1);
    let data = dir.file("data.csv");
    std::fs::write(&data, "0,1,2\n1,2,3\n").unwrap();
    let w = dir.file("w.safetensors");
    let runs: Vec<(&str, Command)> = vec![
        ("init", {
            let mut c = bin();
            c.args(["init", "--config"])
                .arg(&huge)
                .arg("--output")
                .arg(&w);
            c
        }),
        ("forward", {
            let mut c = bin();
            c.args(["forward", "--config"])
                .arg(&huge)
                .arg("--weights")
                .arg(&w)
                .arg("--input")
                .arg(&ids)
                .arg("--output")
                .arg(dir.file("out.safetensors"));
            c
        }),
        ("bench", {
            let mut c = bin();
            c.args(["bench", "--config"])
                .arg(&huge)
                .args(["--batch", "8"]);
            c
        }),
        ("train", {
            let mut c = bin();
            c.args(["train", "--config"])
                .arg(&huge)
                .arg("--data")
                .arg(&data)
                .arg("--output")
                .arg(&w);
            c
        }),
    ];
    for (name, mut cmd) in runs {
        let start = std::time::Instant::now();
        let out = run(&mut cmd);
        assert_eq!(out.status.code(), Some(1), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with("error:") && stderr.contains("needs") && stderr.contains("GiB"),
            "{name}: {stderr}"
        );
        // A hang guard, not a speed target: the refusal comes before any allocation.
        assert!(
            start.elapsed().as_secs_f64() < 30.0,
            "{name} took {:?}",
            start.elapsed()
        );
    }
    assert!(!w.exists(), "nothing written");
    // --max-memory tightens the budget: a small model that needs more than 1 KiB is refused.
    let e = fails(
        bin()
            .args(["init", "--config"])
            .arg(tiny_config(&dir))
            .args(["--max-memory", "1K", "--output"])
            .arg(&w),
    );
    assert!(e.contains("--max-memory"), "{e}");
    let e = fails(
        bin()
            .args(["init", "--config"])
            .arg(tiny_config(&dir))
            .args(["--output"])
            .arg(&w)
            .env("SPECTRANS_MAX_MEMORY", "lots"),
    );
    assert!(e.contains("SPECTRANS_MAX_MEMORY"), "{e}");
    let text = ok(bin().args(["validate", "--config"]).arg(&huge));
    assert!(text.contains("GiB of f32 parameters"), "{text}");
}

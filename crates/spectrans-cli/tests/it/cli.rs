//! The `spectrans` binary end to end: the design.md contract for forward, grad, init, inspect,
//! bench and train, and clean errors (non-zero exit, a message, no panic) on bad input.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ndarray::{ArrayD, IxDyn};
use spectrans_models::tensor_file::{write_tensors, OwnedTensor, TensorFile};

use crate::common::Scratch;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_spectrans"))
}

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

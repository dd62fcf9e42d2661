//! `spectrans filters`: the numbers of filters.json against the weights read independently
//! (the safetensors crate, f64 math), one SVG per layer, and clean errors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use spectrans_models::tensor_file::{OwnedTensor, TensorFile, write_tensors};

use crate::common::{Scratch, bin};

const TOL: f64 = 1e-6;

fn tiny_toml() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/configs/tiny.toml")
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("spectrans runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
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

fn init(config: &Path, weights: &Path) {
    ok(bin()
        .args(["init", "--config"])
        .arg(config)
        .args(["--seed", "11", "--output"])
        .arg(weights));
}

/// A tensor of the file as (shape, f32 values), read with the safetensors crate only.
fn read_f32(path: &Path, name: &str) -> (Vec<usize>, Vec<f64>) {
    let bytes = std::fs::read(path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let t = file.tensor(name).unwrap();
    assert_eq!(t.dtype(), safetensors::Dtype::F32, "{name}");
    let values = t
        .data()
        .chunks_exact(4)
        .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
        .collect();
    (t.shape().to_vec(), values)
}

fn close(got: &serde_json::Value, want: f64, what: &str) {
    assert!(got.is_f64(), "{what}: {got} is not a JSON float");
    let got = got.as_f64().unwrap();
    assert!((got - want).abs() <= TOL, "{what}: got {got}, want {want}");
}

/// Checks every layer of filters.json against `act` applied to the file's Wr, Wi.
fn check_json(json: &serde_json::Value, weights: &Path, act: &str, layers: usize) {
    let f: fn(f64) -> f64 = match act {
        "sigmoid" => |w| 1.0 / (1.0 + (-w).exp()),
        "tanh" => f64::tanh,
        other => panic!("no test activation {other}"),
    };
    let listed = json["layers"].as_array().unwrap();
    assert_eq!(listed.len(), layers);
    for (i, layer) in listed.iter().enumerate() {
        let prefix = format!("blocks.{i}.mixing_layer");
        let (shape, wr) = read_f32(weights, &format!("{prefix}.filter_real"));
        let (_, wi) = read_f32(weights, &format!("{prefix}.filter_imag"));
        let (n, d) = (shape[0], shape[1]);
        assert_eq!(layer["layer"], i);
        assert_eq!(layer["activation"], act);
        assert_eq!(layer["shape"], serde_json::json!([n, d]));
        for key in ["magnitude", "phase", "real", "imag"] {
            let rows = layer[key].as_array().unwrap();
            assert_eq!(rows.len(), n, "{key} rows");
            assert!(
                rows.iter().all(|r| r.as_array().unwrap().len() == d),
                "{key}"
            );
        }
        assert_eq!(layer["mean_magnitude"].as_array().unwrap().len(), n);
        for k in 0..n {
            let mut sum = 0.0;
            for c in 0..d {
                let (re, im) = (f(wr[k * d + c]), f(wi[k * d + c]));
                let at = format!("layer {i} [{k}][{c}]");
                close(&layer["real"][k][c], re, &format!("real {at}"));
                close(&layer["imag"][k][c], im, &format!("imag {at}"));
                close(
                    &layer["magnitude"][k][c],
                    re.hypot(im),
                    &format!("|H| {at}"),
                );
                close(&layer["phase"][k][c], im.atan2(re), &format!("arg H {at}"));
                sum += re.hypot(im);
            }
            close(
                &layer["mean_magnitude"][k],
                sum / d as f64,
                &format!("mean |H| layer {i} [{k}]"),
            );
        }
    }
}

fn check_svgs(dir: &Path, layers: usize) {
    for i in 0..layers {
        let svg = std::fs::read_to_string(dir.join(format!("layer_{i}.svg"))).unwrap();
        assert!(svg.contains("<svg"), "layer_{i}.svg");
        for text in [
            "frequency index",
            "channel",
            "mean |H|",
            &format!("layer {i}: |H|"),
        ] {
            assert!(svg.contains(text), "layer_{i}.svg lacks {text:?}");
        }
    }
    assert!(!dir.join(format!("layer_{layers}.svg")).exists());
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.ends_with(".tmp")),
        "temporary files left: {names:?}"
    );
}

#[test]
fn filters_of_initial_weights_match_sigmoid_of_the_file() {
    let dir = Scratch::new();
    let weights = dir.file("tiny.safetensors");
    init(&tiny_toml(), &weights);
    // A folder that does not exist yet, two levels deep.
    let out = dir.file("plots/filters");
    let stdout = ok(bin()
        .args(["filters", "--config"])
        .arg(tiny_toml())
        .arg("--weights")
        .arg(&weights)
        .arg("--output")
        .arg(&out));
    for i in 0..2 {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("layer {i} ")))
            .unwrap_or_else(|| panic!("no summary of layer {i}: {stdout}"));
        assert!(line.contains("mean") && line.contains("min") && line.contains("max"));
        assert!(stdout.contains(&format!("layer_{i}.svg")), "{stdout}");
    }
    assert!(stdout.contains("filters.json"), "{stdout}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("filters.json")).unwrap()).unwrap();
    assert_eq!(json["config"], tiny_toml().display().to_string());
    assert_eq!(json["weights"], weights.display().to_string());
    check_json(&json, &weights, "sigmoid", 2);
    check_svgs(&out, 2);
}

#[test]
fn filters_follow_a_tanh_activation_over_the_whole_circle() {
    let dir = Scratch::new();
    let config = dir.file("tanh.toml");
    std::fs::write(
        &config,
        "[model]\nhidden_dim = 6\nnum_layers = 3\nsequence_length = 5\nnum_classes = 2\n\
         filter_activation = \"tanh\"\n",
    )
    .unwrap();
    let init_weights = dir.file("init.safetensors");
    init(&config, &init_weights);
    // Spread Wr, Wi over [-2, 2] so that H visits all four quadrants (phase near ±π too).
    let file = TensorFile::open(&init_weights).unwrap();
    let mut tensors = BTreeMap::new();
    for name in file.names() {
        let mut t = file.read_f32(&name).unwrap();
        if name.contains("mixing_layer.filter_") {
            // Wi in another order than Wr (7 is prime to 5 * 6), so the signs mix.
            let stride = if name.ends_with("imag") { 7 } else { 1 };
            let len = t.len();
            for (k, v) in t.iter_mut().enumerate() {
                *v = 4.0 * ((k * stride) % len) as f32 / len as f32 - 2.0 + 0.01;
            }
        }
        tensors.insert(name, OwnedTensor::F32(t));
    }
    let weights = dir.file("spread.safetensors");
    write_tensors(&weights, &tensors).unwrap();
    let out = dir.file("out");
    ok(bin()
        .args(["filters", "--config"])
        .arg(&config)
        .arg("--weights")
        .arg(&weights)
        .arg("--output")
        .arg(&out));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("filters.json")).unwrap()).unwrap();
    check_json(&json, &weights, "tanh", 3);
    let phases: Vec<f64> = json["layers"][0]["phase"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()))
        .collect();
    for quadrant in 0..4 {
        let (lo, hi) = (
            -std::f64::consts::PI + quadrant as f64 * std::f64::consts::FRAC_PI_2,
            -std::f64::consts::FRAC_PI_2 + quadrant as f64 * std::f64::consts::FRAC_PI_2,
        );
        assert!(
            phases.iter().any(|p| (lo..hi).contains(p)),
            "no phase in [{lo}, {hi}): {phases:?}"
        );
    }
    check_svgs(&out, 3);
}

#[test]
fn filters_names_a_missing_weights_file() {
    let dir = Scratch::new();
    let missing = dir.file("no-such-weights.safetensors");
    let out = dir.file("out");
    let err = fails(
        bin()
            .args(["filters", "--config"])
            .arg(tiny_toml())
            .arg("--weights")
            .arg(&missing)
            .arg("--output")
            .arg(&out),
    );
    assert!(err.contains(&missing.display().to_string()), "{err}");
    assert!(!out.exists(), "nothing is written when loading fails");
}

#[test]
fn filters_refuses_a_config_that_is_not_gfnet() {
    let dir = Scratch::new();
    let weights = dir.file("tiny.safetensors");
    init(&tiny_toml(), &weights);
    let config = dir.file("fnet.toml");
    std::fs::write(
        &config,
        "[model]\nmodel_type = \"fnet\"\nhidden_dim = 16\nnum_layers = 2\nsequence_length = 32\n",
    )
    .unwrap();
    let err = fails(
        bin()
            .args(["filters", "--config"])
            .arg(&config)
            .arg("--weights")
            .arg(&weights)
            .arg("--output")
            .arg(dir.file("out")),
    );
    assert!(err.contains(&config.display().to_string()), "{err}");
    assert!(err.contains("model_type"), "{err}");
}

#[test]
fn filters_names_an_output_path_that_is_a_file() {
    let dir = Scratch::new();
    let weights = dir.file("tiny.safetensors");
    init(&tiny_toml(), &weights);
    let out = dir.file("taken");
    std::fs::write(&out, b"not a folder").unwrap();
    let err = fails(
        bin()
            .args(["filters", "--config"])
            .arg(tiny_toml())
            .arg("--weights")
            .arg(&weights)
            .arg("--output")
            .arg(&out),
    );
    assert!(err.contains(&out.display().to_string()), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), b"not a folder");
}

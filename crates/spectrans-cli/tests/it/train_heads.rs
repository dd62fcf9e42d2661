//! `spectrans train` for every head, end to end through the binary on small synthetic tasks:
//! regression beats predicting the mean, token labelling reaches high accuracy, an encoder
//! learns hidden-state targets, and bad data are errors that name the line and the field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, IxDyn};
use spectrans_models::tensor_file::{OwnedTensor, write_tensors};

use crate::common::{Scratch, bin};

/// A deterministic stream of small integers (an LCG), so the data need no rand dependency.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn write(dir: &Scratch, name: &str, text: &str) -> PathBuf {
    let p = dir.file(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A small model config with `head`'s lines, in a file named after them.
fn config(dir: &Scratch, head: &str) -> PathBuf {
    let name: String = head
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    write(
        dir,
        &format!("model-{name}.toml"),
        &format!(
            "[model]\nvocab_size = 10\nhidden_dim = 32\nnum_layers = 2\nsequence_length = 16\ndropout = 0.0\n{head}\n"
        ),
    )
}

/// Runs `spectrans train` and returns the parsed metrics log (one object per epoch).
fn train(dir: &Scratch, config: &Path, data: &Path, extra: &[&str]) -> Vec<serde_json::Value> {
    let out = dir.file("w.safetensors");
    let run = bin()
        .args(["train", "--config"])
        .arg(config)
        .arg("--data")
        .arg(data)
        .arg("--output")
        .arg(&out)
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "train failed: {stderr}");
    let log = std::fs::read_to_string(dir.file("w.safetensors.metrics.jsonl")).unwrap();
    log.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The error message of a `spectrans train` that must fail.
fn train_error(dir: &Scratch, config: &Path, data: &Path) -> String {
    let run = bin()
        .args(["train", "--config"])
        .arg(config)
        .arg("--data")
        .arg(data)
        .arg("--output")
        .arg(dir.file("never.safetensors"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(!run.status.success(), "expected failure");
    assert!(
        stderr.starts_with("error:") && !stderr.contains("panicked"),
        "{stderr}"
    );
    assert!(!dir.file("never.safetensors").exists());
    stderr
}

#[test]
fn regression_beats_predicting_the_mean_on_held_out_examples() {
    let dir = Scratch::new();
    // target = the share of tokens >= 5, spread to [-1, 1]: a mean-pooled regressor can learn
    // it; predicting the mean gives R² = 0.
    let mut rng = Lcg(7);
    let lines: Vec<String> = (0..600)
        .map(|_| {
            let tokens: Vec<u64> = (0..16).map(|_| rng.below(10)).collect();
            let high = tokens.iter().filter(|&&t| t >= 5).count() as f64 / 16.0;
            format!(
                "{{\"tokens\": {tokens:?}, \"target\": {:.4}}}",
                2.0 * high - 1.0
            )
        })
        .collect();
    let data = write(&dir, "regression.jsonl", &lines.join("\n"));
    let cfg = config(&dir, "output_type = \"regression\"");
    let metrics = train(&dir, &cfg, &data, &["--epochs", "12", "--lr", "3e-3"]);
    let last = metrics.last().unwrap();
    let r2 = last["eval_r2"].as_f64().unwrap();
    let mse = last["eval_mse"].as_f64().unwrap();
    println!("regression, held out: R² {r2:.4}, MSE {mse:.5}");
    assert!(r2 > 0.8, "held-out R² {r2} (MSE {mse}): {last}");
    assert_eq!(last["eval_loss"], last["eval_mse"]);
}

#[test]
fn sequence_labelling_reaches_high_token_accuracy() {
    let dir = Scratch::new();
    // A token's label needs its neighbour: (this id + the previous id, circularly) mod 3,
    // which the global filter's circular convolution can express. Every fifth position is
    // -100 (ignored).
    let mut rng = Lcg(11);
    let lines: Vec<String> = (0..800)
        .map(|_| {
            let tokens: Vec<i64> = (0..16).map(|_| rng.below(10) as i64).collect();
            let labels: Vec<i64> = (0..16)
                .map(|i| {
                    if i % 5 == 4 {
                        -100
                    } else {
                        (tokens[i] + tokens[(i + 15) % 16]) % 3
                    }
                })
                .collect();
            format!("{{\"tokens\": {tokens:?}, \"labels\": {labels:?}}}")
        })
        .collect();
    let data = write(&dir, "tags.jsonl", &lines.join("\n"));
    let cfg = config(&dir, "output_type = \"sequence\"\nnum_classes = 3");
    let metrics = train(&dir, &cfg, &data, &["--epochs", "20", "--lr", "1e-2"]);
    let accuracy = metrics.last().unwrap()["eval_token_accuracy"]
        .as_f64()
        .unwrap();
    println!("sequence labelling, held out: token accuracy {accuracy:.4}");
    assert!(accuracy > 0.95, "token accuracy {accuracy}");

    // The lm head takes its labels as given too (here the same tags over a 3-word vocab).
    let cfg = config(&dir, "output_type = \"lm\"\nnum_classes = 3");
    let metrics = train(&dir, &cfg, &data, &["--epochs", "2"]);
    assert!(metrics.last().unwrap()["eval_token_accuracy"].is_number());
}

#[test]
fn an_encoder_learns_hidden_state_targets_from_safetensors() {
    let dir = Scratch::new();
    let (b, n, d) = (128, 16, 32);
    let mut rng = Lcg(3);
    let x: Vec<f32> = (0..b * n * d)
        .map(|_| rng.below(2001) as f32 / 1000.0 - 1.0)
        .collect();
    let targets: Vec<f32> = x.iter().map(|v| 0.5 * v).collect();
    let data = dir.file("embeds.safetensors");
    let tensors = BTreeMap::from([
        (
            "inputs_embeds".to_string(),
            OwnedTensor::F32(ArrayD::from_shape_vec(IxDyn(&[b, n, d]), x).unwrap()),
        ),
        (
            "targets".to_string(),
            OwnedTensor::F32(ArrayD::from_shape_vec(IxDyn(&[b, n, d]), targets).unwrap()),
        ),
    ]);
    write_tensors(&data, &tensors).unwrap();
    let cfg = write(
        &dir,
        "encoder.toml",
        "[model]\nmodel_type = \"gfnet_encoder\"\nhidden_dim = 32\nnum_layers = 1\nsequence_length = 16\ndropout = 0.0\n",
    );
    let metrics = train(
        &dir,
        &cfg,
        &data,
        &["--epochs", "10", "--batch-size", "8", "--lr", "1e-2"],
    );
    let first = metrics[0]["eval_mse"].as_f64().unwrap();
    let last = metrics.last().unwrap()["eval_mse"].as_f64().unwrap();
    println!("encoder: eval MSE {first:.4} -> {last:.4}");
    // Measured: 0.47 after the first epoch, 0.014 after the tenth.
    assert!(last < 0.25 * first, "eval MSE {first} -> {last}");

    // An encoder needs safetensors data; text files are refused with the reason.
    let text = write(&dir, "e.jsonl", "{\"tokens\": [1], \"label\": 0}\n");
    let e = train_error(&dir, &cfg, &text);
    assert!(e.contains(".safetensors"), "{e}");
}

#[test]
fn bad_data_name_the_line_and_the_field() {
    let dir = Scratch::new();
    let seq = config(&dir, "output_type = \"sequence\"\nnum_classes = 3");
    let cases = [
        (
            "count.jsonl",
            "{\"tokens\": [1, 2], \"labels\": [0, 1]}\n{\"tokens\": [1, 2], \"labels\": [0]}\n",
            &["line 2", "`labels`", "1 labels for 2 tokens"][..],
        ),
        (
            "range.jsonl",
            "{\"tokens\": [1, 2], \"labels\": [0, 7]}\n",
            &["line 1", "`labels`", "label 7"][..],
        ),
        (
            "vocab.jsonl",
            "{\"tokens\": [1, 2], \"labels\": [0, 1]}\n{\"tokens\": [1, 12], \"labels\": [0, 1]}\n",
            &["line 2", "`tokens`", "token 12", "vocab_size = 10"][..],
        ),
        (
            "ragged.jsonl",
            "{\"tokens\": [1, 2], \"labels\": [0, 1]}\n{\"tokens\": [1, 2, 3], \"labels\": [0, 1, 2]}\n",
            &["line 2", "`tokens`", "3 tokens, expected 2"][..],
        ),
    ];
    for (name, text, expected) in cases {
        let e = train_error(&dir, &seq, &write(&dir, name, text));
        for want in expected {
            assert!(e.contains(want), "{name}: `{want}` missing from {e}");
        }
    }
    let reg = config(&dir, "output_type = \"regression\"");
    let e = train_error(
        &dir,
        &reg,
        &write(&dir, "nan.csv", "0.5,1,2\n0.25,3,4\nhigh,5,6\n"),
    );
    assert!(e.contains("line 3") && e.contains("`target`"), "{e}");
    let e = train_error(
        &dir,
        &reg,
        &write(
            &dir,
            "wide.jsonl",
            "{\"tokens\": [1, 2], \"target\": [0.1, 0.2]}\n",
        ),
    );
    assert!(e.contains("line 1") && e.contains("2 values"), "{e}");
    let cls = config(&dir, "num_classes = 2");
    let e = train_error(&dir, &cls, &write(&dir, "label.csv", "0,1,2\n5,1,2\n"));
    assert!(e.contains("line 2") && e.contains("`label`"), "{e}");
    // Data for another head are refused as a whole.
    let e = train_error(&dir, &seq, &write(&dir, "cls.csv", "0,1,2\n"));
    assert!(e.contains(".jsonl"), "{e}");
}

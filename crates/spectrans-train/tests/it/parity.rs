//! Parity with PyTorch spectrans 0.1.0, over the fixtures `cargo xtask gen-fixtures` wrote.
//!
//! Forward: max |ours − torch_f64| <= max(20 · |torch_f32 − torch_f64|, 2e-5 · max(1, max|ref|)).
//! Gradients: per parameter tensor, max |ours − torch_f64| / max|torch_f64| <= 1e-3, and the
//! loss to the same relative bound.
//!
//! Set `SPECTRANS_PARITY_REPORT=path` to write the measured errors as a markdown table
//! (`cargo xtask parity` does, into docs/parity.md).

use std::path::{Path, PathBuf};

use ndarray::{ArrayD, Ix2, Ix3};
use spectrans_config::Config;
use spectrans_models::tensor_file::TensorFile;
use spectrans_models::{Gfnet, ModelInput};
use spectrans_models::{Parameters, Precision, TrainContext};
use spectrans_train::{LossKind, Targets, compute_gradients};

#[derive(serde::Deserialize)]
struct Case {
    kind: String,
    case: String,
    description: String,
    loss: Option<String>,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn manifest() -> Vec<Case> {
    let text = std::fs::read_to_string(fixtures().join("manifest.json")).expect("manifest.json");
    serde_json::from_str(&text).expect("manifest parses")
}

struct Loaded {
    model: Gfnet,
    inputs: TensorFile,
    expected: TensorFile,
}

fn load(dir: &Path) -> Loaded {
    let config = Config::load(dir.join("config.toml")).expect("fixture config validates");
    let model = Gfnet::from_weights(&config, dir.join("weights.safetensors"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    Loaded {
        model,
        inputs: TensorFile::open(dir.join("inputs.safetensors")).expect("inputs"),
        expected: TensorFile::open(dir.join("expected.safetensors")).expect("expected"),
    }
}

struct Input {
    ids: Option<ndarray::Array2<i64>>,
    embeds: Option<ndarray::Array3<f32>>,
    mask: Option<ndarray::Array2<bool>>,
}

impl Input {
    fn read(f: &TensorFile) -> Self {
        Input {
            ids: f.contains("input_ids").then(|| {
                f.read_i64("input_ids")
                    .unwrap()
                    .into_dimensionality::<Ix2>()
                    .unwrap()
            }),
            embeds: f.contains("inputs_embeds").then(|| {
                f.read_f32("inputs_embeds")
                    .unwrap()
                    .into_dimensionality::<Ix3>()
                    .unwrap()
            }),
            mask: f.contains("attention_mask").then(|| {
                f.read_mask("attention_mask")
                    .unwrap()
                    .into_dimensionality::<Ix2>()
                    .unwrap()
            }),
        }
    }
    fn model_input(&self) -> ModelInput<'_> {
        match (&self.embeds, &self.ids) {
            (Some(e), _) => ModelInput::Embeddings(e.view()),
            (None, Some(i)) => ModelInput::TokenIds(i.view()),
            _ => panic!("fixture has no input"),
        }
    }
}

fn max_abs_diff(a: &ArrayD<f32>, b: &ArrayD<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape(), "shape mismatch");
    a.iter()
        .zip(b.iter())
        .map(|(&x, &y)| (x as f64 - y).abs())
        .fold(0.0, f64::max)
}

fn max_abs(a: &ArrayD<f64>) -> f64 {
    a.iter().map(|v| v.abs()).fold(0.0, f64::max)
}

fn max_abs_diff64(a: &ArrayD<f32>, b: &ArrayD<f64>) -> f64 {
    a.iter()
        .zip(b.iter())
        .map(|(&x, &y)| (x as f64 - y).abs())
        .fold(0.0, f64::max)
}

struct Row {
    kind: &'static str,
    case: String,
    description: String,
    ours: f64,
    torch_f32: f64,
    bound: f64,
}

fn forward_rows() -> Vec<Row> {
    let mut rows = Vec::new();
    for c in manifest().into_iter().filter(|c| c.kind == "forward") {
        let dir = fixtures().join("forward").join(&c.case);
        let l = load(&dir);
        let input = Input::read(&l.inputs);
        let out = l
            .model
            .forward(input.model_input(), input.mask.as_ref().map(|m| m.view()))
            .unwrap_or_else(|e| panic!("{}: {e}", c.case))
            .into_dyn();
        let r64 = l.expected.read_f64("output_f64").unwrap();
        let r32 = l.expected.read_f32("output_f32").unwrap();
        let ours = max_abs_diff(&out, &r64);
        let torch_f32 = max_abs_diff64(&r32, &r64);
        let bound = (20.0 * torch_f32).max(2e-5 * max_abs(&r64).max(1.0));
        rows.push(Row {
            kind: "forward",
            case: c.case,
            description: c.description,
            ours,
            torch_f32,
            bound,
        });
    }
    rows
}

fn grad_rows() -> Vec<Row> {
    let mut rows = Vec::new();
    for c in manifest().into_iter().filter(|c| c.kind == "grad") {
        let dir = fixtures().join("grad").join(&c.case);
        let l = load(&dir);
        let input = Input::read(&l.inputs);
        let kind = match c.loss.as_deref() {
            Some("ce") => LossKind::CrossEntropy,
            Some("mse") => LossKind::Mse,
            other => panic!("{}: unknown loss {other:?}", c.case),
        };
        let class_t;
        let value_t;
        let targets = match kind {
            LossKind::CrossEntropy => {
                class_t = l.inputs.read_i64("targets").unwrap();
                Targets::Classes(class_t.view())
            }
            LossKind::Mse => {
                value_t = l.inputs.read_f32("targets").unwrap();
                Targets::Values(value_t.view())
            }
        };
        let mut ctx = TrainContext::new(0, true);
        let (loss, grads) = compute_gradients(
            &l.model,
            input.model_input(),
            input.mask.as_ref().map(|m| m.view()),
            targets,
            kind,
            &mut ctx,
        )
        .unwrap_or_else(|e| panic!("{}: {e}", c.case));
        let loss64 = l.expected.read_f64("loss_f64").unwrap()[0];
        let loss32 = l.expected.read_f64("loss_f32").unwrap()[0];
        // Worst relative error over the loss and every parameter tensor.
        let mut ours = ((loss as f64) - loss64).abs() / loss64.abs().max(1e-12);
        let mut torch = (loss32 - loss64).abs() / loss64.abs().max(1e-12);
        let mut names = Vec::new();
        grads.visit("", &mut |name, g| {
            names.push(name.to_string());
            let reference = l
                .expected
                .read_f64(&format!("grad.{name}"))
                .unwrap_or_else(|e| panic!("{}: {e}", c.case));
            let g = g.to_owned();
            let scale = max_abs(&reference).max(1e-12);
            let rel = max_abs_diff(&g, &reference) / scale;
            if rel > 1e-3 {
                eprintln!("{}: grad.{name} relative error {rel:e}", c.case);
            }
            ours = ours.max(rel);
            if let Ok(t32) = l.expected.read_f32(&format!("grad_f32.{name}")) {
                torch = torch.max(max_abs_diff64(&t32, &reference) / scale);
            }
        });
        // Every reference gradient must have been compared: no parameter left out.
        for name in l.expected.names() {
            if let Some(p) = name.strip_prefix("grad.") {
                assert!(
                    names.iter().any(|n| n == p),
                    "{}: torch has a gradient for `{p}` that we do not compute",
                    c.case
                );
            }
        }
        rows.push(Row {
            kind: "grad",
            case: c.case,
            description: c.description,
            ours,
            torch_f32: torch,
            bound: 1e-3,
        });
    }
    rows
}

fn report(rows: &[Row]) {
    let Ok(path) = std::env::var("SPECTRANS_PARITY_REPORT") else {
        return;
    };
    let mut md = String::new();
    md.push_str(
        "| kind | case | what it covers | ours vs torch f64 | torch f32 vs f64 | bound |\n",
    );
    md.push_str("| --- | --- | --- | ---: | ---: | ---: |\n");
    for r in rows {
        md.push_str(&format!(
            "| {} | `{}` | {} | {:.2e} | {:.2e} | {:.1e} |\n",
            r.kind, r.case, r.description, r.ours, r.torch_f32, r.bound
        ));
    }
    let mut existing = std::fs::read_to_string(&path).unwrap_or_default();
    existing.push_str(&md);
    std::fs::write(&path, existing).expect("write parity report");
}

fn check(rows: Vec<Row>) {
    assert!(!rows.is_empty(), "no fixtures found");
    for r in &rows {
        println!(
            "{:<8} {:<28} ours {:.3e}  torch_f32 {:.3e}  bound {:.1e}",
            r.kind, r.case, r.ours, r.torch_f32, r.bound
        );
    }
    report(&rows);
    let failed: Vec<String> = rows
        .iter()
        .filter(|r| r.ours.is_nan() || r.ours > r.bound)
        .map(|r| format!("{} (error {:.3e} > bound {:.1e})", r.case, r.ours, r.bound))
        .collect();
    assert!(failed.is_empty(), "parity failures: {failed:#?}");
}

#[test]
fn forward_matches_pytorch() {
    check(forward_rows());
}

#[test]
fn gradients_match_pytorch_autograd() {
    check(grad_rows());
}

/// Max relative deviation from float64 truth, `max |ours − torch_f64| / max |torch_f64|`, of
/// every forward fixture at `precision`, with the fixture's name.
fn precision_deviations(precision: Precision) -> Vec<(String, f64)> {
    let mut rows = Vec::new();
    for c in manifest().into_iter().filter(|c| c.kind == "forward") {
        let dir = fixtures().join("forward").join(&c.case);
        let mut l = load(&dir);
        l.model.set_precision(precision);
        let input = Input::read(&l.inputs);
        let out = l
            .model
            .forward(input.model_input(), input.mask.as_ref().map(|m| m.view()))
            .unwrap_or_else(|e| panic!("{}: {e}", c.case))
            .into_dyn();
        let r64 = l.expected.read_f64("output_f64").unwrap();
        rows.push((c.case, max_abs_diff(&out, &r64) / max_abs(&r64).max(1e-12)));
    }
    rows
}

/// bf16 and int8 stay within the bounds of issue 14 on every forward fixture (2e-2 and 6e-2
/// relative to the output's largest magnitude); `--nocapture` prints the table of
/// docs/precision.md.
#[test]
fn reduced_precision_deviates_within_bounds() {
    let f32_rows = precision_deviations(Precision::F32);
    let bf16 = precision_deviations(Precision::Bf16);
    let int8 = precision_deviations(Precision::Int8);
    assert!(!f32_rows.is_empty(), "no fixtures found");
    println!("| case | f32 | bf16 | int8 |\n| --- | ---: | ---: | ---: |");
    let mut failed = Vec::new();
    for ((case, f), ((_, b), (_, i))) in f32_rows.iter().zip(bf16.iter().zip(&int8)) {
        println!("| `{case}` | {f:.1e} | {b:.1e} | {i:.1e} |");
        if b.is_nan() || *b > 2e-2 {
            failed.push(format!("{case}: bf16 {b:.3e} > 2e-2"));
        }
        if i.is_nan() || *i > 6e-2 {
            failed.push(format!("{case}: int8 {i:.3e} > 6e-2"));
        }
        // The reduced formats really are used: they deviate more than f32 does.
        assert!(*b > *f && *i > *f, "{case}: {f:e} {b:e} {i:e}");
    }
    let worst = |rows: &[(String, f64)]| rows.iter().map(|r| r.1).fold(0.0, f64::max);
    println!(
        "worst: f32 {:.1e}, bf16 {:.1e}, int8 {:.1e}",
        worst(&f32_rows),
        worst(&bf16),
        worst(&int8)
    );
    assert!(failed.is_empty(), "{failed:#?}");
}

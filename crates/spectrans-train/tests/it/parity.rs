//! Gradient parity with PyTorch spectrans 0.1.0, over the fixtures `cargo xtask gen-fixtures`
//! wrote (`fixtures/grad/`); forward parity is tested in spectrans-models.
//!
//! Per parameter tensor, max |ours − torch_f64| / max|torch_f64| <= 1e-3, and the loss to the
//! same relative bound.
//!
//! Set `SPECTRANS_PARITY_REPORT=path` to write the measured errors as a markdown table
//! (`cargo xtask parity` does, into docs/parity.md).

use spectrans_models::{Config, Gfnet, ModelInput, Parameters, TrainContext};
use spectrans_testkit::parity::{FixtureInput, Row, cases, check, max_abs, max_abs_diff};
use spectrans_train::{LossKind, Targets, compute_gradients};

fn grad_rows() -> Vec<Row> {
    let mut rows = Vec::new();
    for c in cases("grad") {
        let config = Config::load(c.config_path()).expect("fixture config validates");
        let model = Gfnet::from_weights(&config, c.weights_path())
            .unwrap_or_else(|e| panic!("{}: {e}", c.case));
        let inputs = c.inputs();
        let expected = c.expected();
        let input = FixtureInput::read(&inputs);
        let model_input = match (&input.embeds, &input.ids) {
            (Some(e), _) => ModelInput::Embeddings(e.view()),
            (None, Some(i)) => ModelInput::TokenIds(i.view()),
            _ => panic!("{}: fixture has no input", c.case),
        };
        let kind = match c.loss.as_deref() {
            Some("ce") => LossKind::CrossEntropy,
            Some("mse") => LossKind::Mse,
            other => panic!("{}: unknown loss {other:?}", c.case),
        };
        let class_t;
        let value_t;
        let targets = match kind {
            LossKind::CrossEntropy => {
                class_t = inputs.i64("targets");
                Targets::Classes(class_t.view())
            }
            LossKind::Mse => {
                value_t = inputs.f32("targets");
                Targets::Values(value_t.view())
            }
        };
        let mut ctx = TrainContext::new(0, true);
        let (loss, grads) = compute_gradients(
            &model,
            model_input,
            input.mask.as_ref().map(|m| m.view()),
            targets,
            kind,
            &mut ctx,
        )
        .unwrap_or_else(|e| panic!("{}: {e}", c.case));
        let loss64 = expected.f64("loss_f64")[0];
        let loss32 = expected.f64("loss_f32")[0];
        // Worst relative error over the loss and every parameter tensor.
        let mut ours = ((loss as f64) - loss64).abs() / loss64.abs().max(1e-12);
        let mut torch = (loss32 - loss64).abs() / loss64.abs().max(1e-12);
        let mut names = Vec::new();
        grads.visit("", &mut |name, g| {
            names.push(name.to_string());
            let reference = expected.f64(&format!("grad.{name}"));
            let g = g.to_owned();
            let scale = max_abs(&reference).max(1e-12);
            let rel = max_abs_diff(&g, &reference) / scale;
            if rel > 1e-3 {
                eprintln!("{}: grad.{name} relative error {rel:e}", c.case);
            }
            ours = ours.max(rel);
            let torch_name = format!("grad_f32.{name}");
            if expected.contains(&torch_name) {
                torch = torch.max(max_abs_diff(&expected.f32(&torch_name), &reference) / scale);
            }
        });
        // Every reference gradient must have been compared: no parameter left out.
        for name in expected.names() {
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

#[test]
fn gradients_match_pytorch_autograd() {
    check(grad_rows());
}

//! Every head through the library: batches of each target kind, the loss each task uses, its
//! evaluation metrics, and a training step for each (the end-to-end learning tests run the
//! binary, in spectrans-cli's `train_heads`).

use ndarray::{Array2, ArrayD, IxDyn};
use spectrans_models::{Config, Gfnet, TrainContext};
use spectrans_train::data::{Dataset, Example, IGNORE_INDEX, Input, Target, Task};
use spectrans_train::{
    Batch, BatchTargets, LossKind, Targets, TrainOptions, Trainer, evaluate, loss_and_grad,
};

fn config(head: &str) -> Config {
    Config::from_toml_str(&format!(
        "[model]\nvocab_size = 7\nhidden_dim = 8\nnum_layers = 1\nsequence_length = 4\n{head}\n"
    ))
    .unwrap()
}

fn data(task: Task, target: impl Fn(usize, &[i64]) -> Target) -> Dataset {
    let examples = (0..10)
        .map(|i| {
            let tokens: Vec<i64> = (0..4).map(|t| ((i + 2 * t) % 7) as i64).collect();
            Example {
                target: target(i, &tokens),
                input: Input::Tokens(tokens),
                line: i + 1,
            }
        })
        .collect();
    Dataset {
        examples,
        seq_len: 4,
        task,
        source: "synthetic".into(),
    }
}

/// The head's task, its data, the metric names it reports.
fn cases() -> Vec<(Config, Dataset, Vec<&'static str>)> {
    vec![
        (
            config("num_classes = 3"),
            data(Task::Classification, |i, _| Target::Class((i % 3) as i64)),
            vec!["eval_accuracy"],
        ),
        (
            config("output_type = \"regression\""),
            data(Task::Regression, |i, _| {
                Target::Values(vec![i as f32 / 10.0])
            }),
            vec!["eval_mse", "eval_r2"],
        ),
        (
            config("output_type = \"sequence\"\nnum_classes = 3"),
            data(Task::TokenLabels, |_, t| {
                Target::Labels(t.iter().map(|v| v % 3).collect())
            }),
            vec!["eval_token_accuracy"],
        ),
        (
            config("output_type = \"lm\""),
            data(Task::TokenLabels, |_, t| {
                Target::Labels(vec![t[1], t[2], t[3], IGNORE_INDEX])
            }),
            vec!["eval_token_accuracy"],
        ),
        (
            config("output_type = \"none\""),
            data(Task::Hidden, |_, _| Target::Hidden(Array2::ones((4, 8)))),
            vec!["eval_mse"],
        ),
    ]
}

#[test]
fn every_head_fits_its_data_steps_and_reports_its_metrics() {
    for (config, data, metrics) in cases() {
        assert_eq!(Task::of(&config), data.task);
        data.check_fits(&config).unwrap();
        let mut trainer = Trainer::new(
            Gfnet::new(&config, 0).unwrap(),
            TrainOptions {
                batch_size: 4,
                ..TrainOptions::default()
            },
            3,
        );
        let m = trainer.run_epoch(&data, &data, &mut |_, _, _| {}).unwrap();
        assert!(m.train_loss.is_finite(), "{:?}", data.task);
        let names: Vec<&str> = m.eval.keys().map(String::as_str).collect();
        assert_eq!(names, metrics, "{:?}", data.task);
        assert!(m.eval.values().all(|v| v.is_finite()), "{m:?}");
        // The log line round-trips, metrics by name.
        let line = serde_json::to_string(&m).unwrap();
        for name in &metrics {
            assert!(line.contains(&format!("\"{name}\":")), "{line}");
        }
        let back: spectrans_train::EpochMetrics = serde_json::from_str(&line).unwrap();
        assert_eq!(back, m);
    }
}

#[test]
fn regression_metrics_are_mse_and_r2_of_the_outputs() {
    let (config, data, _) = cases().swap_remove(1);
    let model = Gfnet::new(&config, 3).unwrap();
    let e = evaluate(&model, &data, 3).unwrap();
    let batch = Batch::of(&data.examples.iter().collect::<Vec<_>>(), 4).unwrap();
    let out = model.forward(batch.model_input(), None).unwrap().into_dyn();
    let BatchTargets::Values(t) = &batch.targets else {
        panic!("regression targets are values")
    };
    let n = t.len() as f64;
    let sse: f64 = out
        .iter()
        .zip(t.iter())
        .map(|(&p, &y)| (p as f64 - y as f64).powi(2))
        .sum();
    let mean = t.iter().map(|&y| y as f64).sum::<f64>() / n;
    let sst: f64 = t.iter().map(|&y| (y as f64 - mean).powi(2)).sum();
    assert!((e.metrics["eval_mse"] as f64 - sse / n).abs() < 1e-5);
    assert!((e.metrics["eval_r2"] as f64 - (1.0 - sse / sst)).abs() < 1e-4);
    assert!((e.loss - e.metrics["eval_mse"]).abs() < 1e-6);
}

#[test]
fn ignored_labels_count_for_neither_loss_nor_accuracy() {
    let (config, data, _) = cases().swap_remove(2);
    let model = Gfnet::new(&config, 1).unwrap();
    let all_ignored = Dataset {
        examples: data
            .examples
            .iter()
            .map(|e| Example {
                target: Target::Labels(vec![IGNORE_INDEX; 4]),
                ..e.clone()
            })
            .collect(),
        ..data.clone()
    };
    let e = evaluate(&model, &all_ignored, 4).unwrap();
    assert!(e.metrics["eval_token_accuracy"].is_nan());
    // Per-token cross-entropy of a (B, N, C) output against (B, N) labels: the ignored
    // positions get a zero gradient, and the loss is the mean over the others.
    let batch = Batch::of(&data.examples.iter().take(2).collect::<Vec<_>>(), 4).unwrap();
    let out = model.forward(batch.model_input(), None).unwrap().into_dyn();
    let mut labels =
        ArrayD::from_shape_vec(IxDyn(&[2, 4]), vec![0i64, 1, 2, 0, 1, 1, 2, 2]).unwrap();
    let (full, _) = loss_and_grad(
        out.view(),
        Targets::Classes(labels.view()),
        LossKind::CrossEntropy,
    )
    .unwrap();
    labels[[1, 3]] = IGNORE_INDEX;
    let (partial, g) = loss_and_grad(
        out.view(),
        Targets::Classes(labels.view()),
        LossKind::CrossEntropy,
    )
    .unwrap();
    assert!(g.slice(ndarray::s![1, 3, ..]).iter().all(|&v| v == 0.0));
    assert_ne!(full, partial);
    let mut ctx = TrainContext::new(0, true);
    let mut t = Trainer::new(model, TrainOptions::default(), 1);
    assert!(t.step(&batch, &mut ctx).unwrap().is_finite());
}

#[test]
fn examples_of_mixed_kinds_do_not_form_a_batch() {
    let a = Example::classified(vec![1, 2], 0);
    let b = Example {
        target: Target::Values(vec![0.5]),
        ..a.clone()
    };
    let e = Batch::of(&[&a, &b], 2).unwrap_err();
    assert!(e.to_string().contains("different kinds"), "{e}");
    assert!(Batch::of(&[], 2).is_err());
}

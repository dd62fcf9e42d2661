//! Training: whole-model gradients against finite differences, gradient checkpointing,
//! determinism, loss going down on a small task, and checkpoints that resume exactly.

use ndarray::{Array2, ArrayD, IxDyn};
use proptest::prelude::*;
use spectrans_config::Config;
use spectrans_layers::{Parameters, TrainContext};
use spectrans_models::data::{Dataset, Example};
use spectrans_models::{
    compute_gradients, Gfnet, GfnetGrads, LossKind, ModelInput, Targets, TrainOptions, Trainer,
};

fn config(extra: &str) -> Config {
    Config::from_toml_str(&format!(
        "[model]\nvocab_size = 11\nhidden_dim = 8\nnum_layers = 2\nsequence_length = 6\nnum_classes = 3\nffn_hidden_dim = 12\n{extra}"
    ))
    .unwrap()
}

fn grads_by_name(g: &GfnetGrads) -> Vec<(String, ArrayD<f32>)> {
    let mut out = Vec::new();
    g.visit("", &mut |n, t| out.push((n.to_string(), t.to_owned())));
    out
}

fn loss_of(model: &Gfnet, ids: &Array2<i64>, labels: &ArrayD<i64>) -> f64 {
    let mut ctx = TrainContext::new(0, false);
    let (loss, _) = compute_gradients(
        model,
        ModelInput::TokenIds(ids.view()),
        None,
        Targets::Classes(labels.view()),
        LossKind::CrossEntropy,
        &mut ctx,
    )
    .unwrap();
    loss as f64
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]
    /// Every parameter's gradient against central differences of the loss (a few entries per
    /// tensor), over positional types, filter activations and input lengths (with resampling).
    #[test]
    fn whole_model_gradients_match_finite_differences(
        seed in 0u64..1000,
        pos in prop::sample::select(vec!["sinusoidal", "learned", "rotary", "none"]),
        act in prop::sample::select(vec!["sigmoid", "tanh", "identity"]),
        n in 3usize..7,
    ) {
        let c = config(&format!(
            "positional_encoding_type = \"{pos}\"\nfilter_activation = \"{act}\"\n"
        ));
        let model = Gfnet::new(&c, seed).unwrap();
        let n = if pos == "rotary" || pos == "none" { n + 2 } else { n };
        let ids = Array2::from_shape_fn((2, n), |(b, t)| ((seed as usize + 5 * b + 3 * t) % 11) as i64);
        let labels = ArrayD::from_shape_fn(IxDyn(&[2]), |i| ((seed as usize + i[0]) % 3) as i64);
        let mut ctx = TrainContext::new(0, false);
        let (_, grads) = compute_gradients(
            &model, ModelInput::TokenIds(ids.view()), None,
            Targets::Classes(labels.view()), LossKind::CrossEntropy, &mut ctx,
        ).unwrap();
        let h = 1e-2f32;
        for (name, g) in grads_by_name(&grads) {
            let len = g.len();
            for k in [0, len / 2, len - 1] {
                let mut plus = model.clone();
                let mut minus = model.clone();
                let bump = |m: &mut Gfnet, d: f32| m.visit_mut("", &mut |n2, mut t| {
                    if n2 == name { if let Some(v) = t.iter_mut().nth(k) { *v += d; } }
                });
                bump(&mut plus, h);
                bump(&mut minus, -h);
                let fd = (loss_of(&plus, &ids, &labels) - loss_of(&minus, &ids, &labels)) / (2.0 * h as f64);
                let an = g.iter().nth(k).copied().unwrap() as f64;
                prop_assert!((fd - an).abs() <= 2e-3 + 2e-2 * an.abs().max(fd.abs()),
                    "{name}[{k}]: finite difference {fd} vs analytic {an}");
            }
        }
    }
}

#[test]
fn gradient_checkpointing_recomputes_the_same_gradients_with_dropout() {
    let plain = config("dropout = 0.3\n");
    let ckpt = config("dropout = 0.3\ngradient_checkpointing = true\n");
    let a = Gfnet::new(&plain, 4).unwrap();
    let b = Gfnet::new(&ckpt, 4).unwrap();
    let ids = Array2::from_shape_fn((3, 6), |(i, t)| ((i * 7 + t) % 11) as i64);
    let labels = ArrayD::from_shape_fn(IxDyn(&[3]), |i| (i[0] % 3) as i64);
    let run = |m: &Gfnet| {
        let mut ctx = TrainContext::new(9, true);
        compute_gradients(
            m,
            ModelInput::TokenIds(ids.view()),
            None,
            Targets::Classes(labels.view()),
            LossKind::CrossEntropy,
            &mut ctx,
        )
        .unwrap()
    };
    let (la, ga) = run(&a);
    let (lb, gb) = run(&b);
    assert_eq!(la, lb);
    assert_eq!(grads_by_name(&ga), grads_by_name(&gb));
    // And dropout really acts in training mode: a different seed changes the loss.
    let mut ctx = TrainContext::new(10, true);
    let (lc, _) = compute_gradients(
        &a,
        ModelInput::TokenIds(ids.view()),
        None,
        Targets::Classes(labels.view()),
        LossKind::CrossEntropy,
        &mut ctx,
    )
    .unwrap();
    assert_ne!(la, lc);
}

/// A small separable task: the label is the first token's class (token % 3).
fn toy_data(n: usize) -> Dataset {
    Dataset {
        examples: (0..n)
            .map(|i| {
                let tokens: Vec<i64> = (0..6)
                    .map(|t| ((i * 5 + t * 3 + i / 7) % 11) as i64)
                    .collect();
                Example {
                    label: tokens[2] % 3,
                    tokens,
                }
            })
            .collect(),
        seq_len: 6,
    }
}

#[test]
fn training_reduces_the_loss_and_is_deterministic() {
    let c = config("positional_encoding_type = \"learned\"\n");
    let data = toy_data(96);
    let options = TrainOptions {
        epochs: 8,
        batch_size: 16,
        lr: 1e-2,
        ..TrainOptions::default()
    };
    let train = |seed: u64| {
        let mut t = Trainer::new(Gfnet::new(&c, seed).unwrap(), options.clone(), 6);
        let mut metrics = Vec::new();
        for _ in 0..options.epochs {
            metrics.push(t.run_epoch(&data, &data, &mut |_, _, _| {}).unwrap());
        }
        (t, metrics)
    };
    let (t1, m1) = train(1);
    let (_, m2) = train(1);
    assert!(
        m1.last().unwrap().train_loss < 0.6 * m1[0].train_loss,
        "{m1:?}"
    );
    assert_eq!(
        m1.iter().map(|m| m.train_loss).collect::<Vec<_>>(),
        m2.iter().map(|m| m.train_loss).collect::<Vec<_>>()
    );
    assert!(t1.optimizer.moments("final_norm.weight").is_some());
}

#[test]
fn checkpoints_resume_exactly() {
    let c = config("dropout = 0.1\n");
    let data = toy_data(64);
    let options = TrainOptions {
        epochs: 4,
        batch_size: 16,
        ..TrainOptions::default()
    };
    let dir = std::env::temp_dir().join(format!("spectrans-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");

    // Straight through four epochs.
    let mut straight = Trainer::new(Gfnet::new(&c, 2).unwrap(), options.clone(), 4);
    for _ in 0..4 {
        straight.run_epoch(&data, &data, &mut |_, _, _| {}).unwrap();
    }
    // Two epochs, checkpoint, a fresh trainer resumes, two more.
    let mut first = Trainer::new(Gfnet::new(&c, 2).unwrap(), options.clone(), 4);
    for _ in 0..2 {
        first.run_epoch(&data, &data, &mut |_, _, _| {}).unwrap();
    }
    first.save_checkpoint(&path).unwrap();
    let mut resumed = Trainer::new(Gfnet::new(&c, 99).unwrap(), options, 4);
    resumed.resume(&path).unwrap();
    assert_eq!(resumed.epoch, 2);
    for _ in 0..2 {
        resumed.run_epoch(&data, &data, &mut |_, _, _| {}).unwrap();
    }
    let ids = Array2::from_shape_fn((2, 6), |(b, t)| ((b + t) % 11) as i64);
    let a = straight
        .model
        .forward(ModelInput::TokenIds(ids.view()), None)
        .unwrap();
    let b = resumed
        .model
        .forward(ModelInput::TokenIds(ids.view()), None)
        .unwrap();
    assert_eq!(a, b);
    // Reloading the final checkpoint gives the same outputs again.
    resumed.save_checkpoint(&path).unwrap();
    let reloaded = Gfnet::from_weights(&c, &path).unwrap();
    let r = reloaded
        .forward(ModelInput::TokenIds(ids.view()), None)
        .unwrap();
    assert_eq!(b, r);
}

#[test]
fn frozen_filters_stay_put_while_the_rest_trains() {
    let c = config("\n[layers.mixing]\nlearnable_filters = false\n");
    let data = toy_data(32);
    let before = Gfnet::new(&c, 3).unwrap();
    assert!(!before.is_trainable("blocks.0.mixing_layer.filter_real"));
    assert!(before.is_trainable("blocks.0.norm1.weight"));
    let mut t = Trainer::new(before.clone(), TrainOptions::default(), 2);
    t.run_epoch(&data, &data, &mut |_, _, _| {}).unwrap();
    assert_eq!(
        t.model.blocks[0].mixing_layer.filter_real,
        before.blocks[0].mixing_layer.filter_real
    );
    assert_ne!(t.model.final_norm.weight, before.final_norm.weight);
}

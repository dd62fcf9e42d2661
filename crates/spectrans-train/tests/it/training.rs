//! Training: whole-model gradients against finite differences, gradient checkpointing,
//! determinism, loss going down on a small task, and checkpoints that resume exactly.

use ndarray::{Array2, ArrayD, IxDyn};
use proptest::prelude::*;
use spectrans_config::Config;
use spectrans_models::{Gfnet, GfnetGrads, ModelInput, Parameters, TrainContext};
use spectrans_train::data::{Dataset, Example, Task};
use spectrans_train::{LossKind, Targets, TrainError, TrainOptions, Trainer, compute_gradients};

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
                    if n2 == name && let Some(v) = t.iter_mut().nth(k) { *v += d; }
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
                Example::classified(tokens.clone(), tokens[2] % 3)
            })
            .collect(),
        seq_len: 6,
        task: Task::Classification,
        source: "toy".into(),
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
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");

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
        t.model.blocks()[0].mixing_layer.filter_real(),
        before.blocks()[0].mixing_layer.filter_real()
    );
    assert_ne!(t.model.final_norm().weight, before.final_norm().weight);
}

/// Every parameter's bits, by name.
fn bits(model: &Gfnet) -> Vec<(String, Vec<u32>)> {
    let mut out = Vec::new();
    model.visit("", &mut |n, t| {
        out.push((n.to_string(), t.iter().map(|v| v.to_bits()).collect()))
    });
    out
}

/// A model big enough that the parallel reductions (LayerNorm, bias and filter gradients,
/// GEMM) split work over both threads of the pool.
fn wide_config() -> Config {
    Config::from_toml_str(
        "[model]\nvocab_size = 11\nhidden_dim = 64\nnum_layers = 2\nsequence_length = 32\nnum_classes = 3\ndropout = 0.1\n",
    )
    .unwrap()
}

fn wide_data(n: usize) -> Dataset {
    Dataset {
        examples: (0..n)
            .map(|i| {
                let tokens: Vec<i64> = (0..32).map(|t| ((i * 7 + t * 3) % 11) as i64).collect();
                Example::classified(tokens, (i % 3) as i64)
            })
            .collect(),
        seq_len: 32,
        task: Task::Classification,
        source: "wide".into(),
    }
}

fn train_wide(threads: usize, epochs: usize) -> Trainer {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let data = wide_data(96);
        let options = TrainOptions {
            epochs,
            batch_size: 32,
            ..TrainOptions::default()
        };
        let mut t = Trainer::new(Gfnet::new(&wide_config(), 5).unwrap(), options, 3);
        for _ in 0..epochs {
            t.run_epoch(&data, &data, &mut |_, _, _| {}).unwrap();
        }
        t
    })
}

#[test]
#[cfg_attr(
    feature = "openblas",
    ignore = "OpenBLAS's threaded sgemm is not bitwise reproducible run to run (docs/training.md)"
)]
fn same_seed_and_thread_count_give_the_same_bits() {
    for threads in [1, 2, 3] {
        let a = train_wide(threads, 2);
        let b = train_wide(threads, 2);
        assert!(bits(&a.model) == bits(&b.model), "{threads} threads");
        assert_eq!(a.history[1].train_loss, b.history[1].train_loss);
    }
}

#[test]
fn a_checkpoint_in_the_middle_of_an_epoch_resumes_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mid.safetensors");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    pool.install(|| {
        let data = wide_data(96);
        let options = TrainOptions {
            epochs: 2,
            batch_size: 32,
            ..TrainOptions::default()
        };
        let straight = train_wide(2, 2);
        // Stop after step 2 of epoch 2 (global step 5), as a kill after that checkpoint would.
        let mut first = Trainer::new(Gfnet::new(&wide_config(), 5).unwrap(), options.clone(), 3);
        first.run_epoch(&data, &data, &mut |_, _, _| {}).unwrap();
        let stop = first.run_epoch_with(&data, &data, &mut |t, p| {
            if p.done == 2 {
                t.save_checkpoint(&path)?;
                return Err(TrainError::Checkpoint("stop".into()));
            }
            Ok(())
        });
        assert!(stop.is_err());
        let mut resumed = Trainer::new(Gfnet::new(&wide_config(), 77).unwrap(), options, 3);
        resumed.resume(&path).unwrap();
        assert_eq!((resumed.epoch, resumed.epoch_step), (1, 2));
        let m = resumed.run_epoch(&data, &data, &mut |_, _, _| {}).unwrap();
        assert!(bits(&resumed.model) == bits(&straight.model));
        assert_eq!(m.train_loss, straight.history[1].train_loss);
        assert_eq!(resumed.history.len(), 2);
        assert_eq!(resumed.history[0].eval_loss, straight.history[0].eval_loss);
    });
}

#[test]
fn a_checkpoint_of_another_seed_or_batch_size_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.safetensors");
    let c = config("");
    let t = Trainer::new(Gfnet::new(&c, 1).unwrap(), TrainOptions::default(), 2);
    t.save_checkpoint(&path).unwrap();
    let other = TrainOptions {
        seed: 9,
        ..TrainOptions::default()
    };
    let mut u = Trainer::new(Gfnet::new(&c, 1).unwrap(), other, 2);
    let err = u.resume(&path).unwrap_err().to_string();
    assert!(
        err.contains("seed 0") && err.contains("asks for 9"),
        "{err}"
    );
    // A state file with a tensor missing names it, and changes nothing.
    let state = spectrans_train::optimizer_path(&path);
    let file = spectrans_models::tensor_file::TensorFile::open(&state).unwrap();
    let mut tensors = std::collections::BTreeMap::new();
    for name in file.names() {
        if name != "model.final_norm.weight" {
            tensors.insert(
                name.clone(),
                spectrans_models::tensor_file::OwnedTensor::F32(file.read_f32(&name).unwrap()),
            );
        }
    }
    drop(file);
    spectrans_models::tensor_file::write_tensors(&state, &tensors).unwrap();
    let mut v = Trainer::new(Gfnet::new(&c, 1).unwrap(), TrainOptions::default(), 2);
    let err = v.resume(&path).unwrap_err().to_string();
    assert!(err.contains("spectrans_training_state"), "{err}");
}

#[test]
fn a_non_finite_loss_stops_training_naming_the_step() {
    let c = config("");
    let data = toy_data(32);
    let options = TrainOptions {
        batch_size: 8,
        lr: f32::INFINITY,
        clip_norm: None,
        ..TrainOptions::default()
    };
    let mut t = Trainer::new(Gfnet::new(&c, 1).unwrap(), options, 4);
    let err = t.run_epoch(&data, &data, &mut |_, _, _| {}).unwrap_err();
    assert!(
        matches!(
            err,
            TrainError::Diverged {
                step: 2,
                epoch: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("step 2"), "{err}");
    use spectrans_train::optim::Optimizer;
    assert_eq!(t.optimizer.steps(), 1, "the failing step updated nothing");
}

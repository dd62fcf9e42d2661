//! The engine alone: concurrent requests of random lengths, batched by the engine, each
//! compared bit for bit with the same sequence run alone through `Gfnet::forward`.

use std::sync::Arc;
use std::time::Duration;

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use spectrans_config::Config;
use spectrans_models::{Gfnet, ModelInput, Precision};
use spectrans_serve::{Engine, EngineConfig, EngineError, Metrics, Sequence};

fn config(extra: &str) -> Config {
    Config::from_toml_str(&format!(
        "[model]\nhidden_dim = 32\nnum_layers = 2\nsequence_length = 40\nvocab_size = 60\n{extra}"
    ))
    .expect("valid config")
}

fn alone(engine: &Engine, seq: &Sequence) -> Vec<u32> {
    let n = seq.ids.len();
    let ids = Array2::from_shape_vec((1, n), seq.ids.clone()).unwrap();
    let mask = seq
        .mask
        .as_ref()
        .map(|m| Array2::from_shape_vec((1, n), m.clone()).unwrap());
    let out = engine
        .install(move |m| {
            m.forward(
                ModelInput::TokenIds(ids.view()),
                mask.as_ref().map(|m| m.view()),
            )
        })
        .expect("the engine runs it")
        .expect("forward");
    out.view().iter().map(|v| v.to_bits()).collect()
}

fn random_sequence(rng: &mut ChaCha8Rng, max_len: usize, lengths: &[usize]) -> Sequence {
    let n = lengths[rng.gen_range(0..lengths.len())].min(max_len);
    let ids = (0..n).map(|_| rng.gen_range(0..60)).collect();
    let mask = rng.gen_bool(0.3).then(|| {
        let mut m: Vec<bool> = (0..n).map(|_| rng.gen_bool(0.7)).collect();
        m[0] = true;
        m
    });
    Sequence { ids, mask }
}

/// Many client threads submit requests of 1..=3 sequences at once; every row must equal its
/// batch-1 forward bit for bit, and batches must actually have formed.
fn check_bitwise(extra: &str, precision: Precision, budget: usize) {
    let config = config(extra);
    let model = Gfnet::with_precision(&config, 7, precision).expect("model");
    let metrics = Arc::new(Metrics::new());
    let engine = Engine::new(
        model,
        EngineConfig {
            threads: 2,
            max_batch_tokens: budget,
            max_wait: Duration::from_millis(20),
        },
        Arc::clone(&metrics),
    )
    .expect("engine");
    // One request of two equal one-token sequences, alone in the queue: the batcher takes
    // the first and waits up to max_wait for the second, so at least this batch holds two
    // rows whatever the timing of the concurrent clients below (their batches depend on how
    // their requests interleave, and a faster worker leaves less queued behind a batch).
    let pair = vec![
        Sequence {
            ids: vec![1],
            mask: None,
        };
        2
    ];
    let outs = engine
        .submit(pair.clone())
        .expect("submit")
        .blocking_recv()
        .expect("reply")
        .expect("outputs");
    let mut paired = vec![(pair, outs)];
    // Few distinct lengths so that equal lengths meet in one batch.
    let lengths = [1, 2, 3, 5, 8, 13, 31, 40];
    let clients: Vec<_> = (0..6)
        .map(|c| {
            let engine = engine.clone();
            std::thread::spawn(move || {
                let mut rng = ChaCha8Rng::seed_from_u64(c);
                let mut results = Vec::new();
                for _ in 0..8 {
                    let k = rng.gen_range(1..=3);
                    let seqs: Vec<Sequence> = (0..k)
                        .map(|_| random_sequence(&mut rng, 40, &lengths))
                        .collect();
                    let reply = engine.submit(seqs.clone()).expect("submit");
                    let outs = reply.blocking_recv().expect("reply").expect("outputs");
                    assert_eq!(outs.len(), seqs.len());
                    results.push((seqs, outs));
                }
                results
            })
        })
        .collect();
    let mut compared = 0;
    for client in clients {
        paired.extend(client.join().expect("client thread"));
    }
    for (seqs, outs) in paired {
        for (seq, out) in seqs.iter().zip(&outs) {
            let expected = alone(&engine, seq);
            let got: Vec<u32> = out.values.iter().map(|v| v.to_bits()).collect();
            assert_eq!(
                got,
                expected,
                "{extra} {precision:?}: sequence of {} tokens (mask {}) differs from its batch-1 forward",
                seq.ids.len(),
                seq.mask.is_some()
            );
            compared += 1;
        }
    }
    assert!(compared >= 50);
    let text = metrics.encode();
    // Some batch held more than one sequence (the bucket le=1 does not hold every batch).
    let count = metric_value(&text, "spectrans_batch_sequences_count");
    let ones = metric_value(&text, "spectrans_batch_sequences_bucket{le=\"1.0\"}");
    assert!(
        count > ones,
        "no batch of more than one sequence formed:\n{text}"
    );
    engine.shutdown();
}

fn metric_value(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(name)
                .and_then(|rest| rest.trim().parse().ok())
        })
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[test]
fn classification_f32_is_bitwise_batch_invariant() {
    check_bitwise("num_classes = 3\n", Precision::F32, 256);
}

#[test]
fn regression_masks_f32_is_bitwise_batch_invariant() {
    check_bitwise("output_type = \"regression\"\n", Precision::F32, 512);
}

#[test]
fn sequence_head_f32_is_bitwise_batch_invariant() {
    check_bitwise(
        "num_classes = 5\noutput_type = \"sequence\"\n",
        Precision::F32,
        4096,
    );
}

#[test]
fn hidden_states_bf16_is_bitwise_batch_invariant() {
    check_bitwise("output_type = \"none\"\n", Precision::Bf16, 256);
}

#[test]
fn classification_int8_is_bitwise_batch_invariant() {
    check_bitwise("num_classes = 3\n", Precision::Int8, 256);
}

#[test]
fn a_sequence_longer_than_the_budget_runs_alone() {
    check_bitwise("num_classes = 2\n", Precision::F32, 4);
}

/// `install` runs on the worker (the pool's thread 0) in turn with the batches: with one
/// thread it must not wait for a request to come, it answers in queue order, a panic in it
/// is an error and not a dead engine, and after shutdown it is refused.
#[test]
fn install_runs_in_turn_on_a_one_thread_pool() {
    let config = config("num_classes = 3\n");
    let model = Gfnet::new(&config, 1).unwrap();
    let engine = Engine::new(
        model,
        EngineConfig {
            threads: 1,
            ..EngineConfig::default()
        },
        Arc::new(Metrics::new()),
    )
    .unwrap();
    let threads = engine
        .install(|m| (rayon::current_num_threads(), m.config().num_classes()))
        .unwrap();
    assert_eq!(threads, (1, Some(3)));
    let reply = engine
        .submit(vec![Sequence {
            ids: vec![2; 9],
            mask: None,
        }])
        .unwrap();
    let boom = engine.install(|_| -> usize { panic!("a panic in an installed function") });
    assert!(matches!(boom, Err(EngineError::Model(_))), "{boom:?}");
    let out = reply.blocking_recv().expect("answered").expect("ok");
    assert_eq!(out[0].shape, vec![3]);
    assert_eq!(
        alone(
            &engine,
            &Sequence {
                ids: vec![2; 9],
                mask: None
            }
        ),
        out[0]
            .values
            .iter()
            .map(|v| v.to_bits())
            .collect::<Vec<_>>()
    );
    engine.shutdown();
    assert!(matches!(
        engine.install(|_| ()),
        Err(EngineError::ShuttingDown)
    ));
}

#[test]
fn shutdown_finishes_queued_work_and_refuses_new() {
    let config = config("num_classes = 3\n");
    let model = Gfnet::new(&config, 1).unwrap();
    let engine = Engine::new(model, EngineConfig::default(), Arc::new(Metrics::new())).unwrap();
    let replies: Vec<_> = (0..20)
        .map(|i| {
            engine
                .submit(vec![Sequence {
                    ids: vec![1; 1 + i % 7],
                    mask: None,
                }])
                .unwrap()
        })
        .collect();
    engine.shutdown();
    for r in replies {
        let outs = r.blocking_recv().expect("answered").expect("ok");
        assert_eq!(outs[0].shape, vec![3]);
    }
    assert!(
        engine
            .submit(vec![Sequence {
                ids: vec![1],
                mask: None
            }])
            .is_err()
    );
}

/// Wide layers and batches of many rows (GEMMs with M in the thousands, where blocking and
/// the parallel split of rows come into play): each row of one big batch equals its batch-1
/// forward, in every precision.
#[test]
fn wide_model_many_rows_is_bitwise_batch_invariant() {
    let config = Config::from_toml_str(
        "[model]\nhidden_dim = 256\nnum_layers = 2\nsequence_length = 128\nvocab_size = 1000\n\
         num_classes = 4\noutput_type = \"sequence\"\n",
    )
    .unwrap();
    for precision in [Precision::F32, Precision::Bf16, Precision::Int8] {
        let model = Gfnet::with_precision(&config, 3, precision).unwrap();
        let engine = Engine::new(
            model,
            EngineConfig {
                threads: 2,
                max_batch_tokens: 100_000,
                max_wait: Duration::ZERO,
            },
            Arc::new(Metrics::new()),
        )
        .unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(99);
        for (rows, len) in [(13, 128), (24, 77), (5, 1), (33, 16)] {
            let ids = Array2::from_shape_fn((rows, len), |_| rng.gen_range(0..1000i64));
            let batch = {
                let ids = ids.clone();
                engine
                    .install(move |m| m.forward(ModelInput::TokenIds(ids.view()), None))
                    .unwrap()
                    .unwrap()
            };
            for r in 0..rows {
                let seq = Sequence {
                    ids: ids.row(r).to_vec(),
                    mask: None,
                };
                let expected = alone(&engine, &seq);
                let got: Vec<u32> = batch
                    .view()
                    .index_axis(ndarray::Axis(0), r)
                    .iter()
                    .map(|v| v.to_bits())
                    .collect();
                assert_eq!(
                    got, expected,
                    "{precision:?}: row {r} of a ({rows}, {len}) batch"
                );
            }
        }
        engine.shutdown();
    }
}

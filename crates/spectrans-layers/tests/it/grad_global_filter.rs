//! GlobalFilter and GfnetBlock: forward against a naive f64 DFT, and finite-difference
//! gradient checks with and without resampling (N < S, N > S, odd N), each filter activation.

use crate::common::*;
use ndarray::{Array2, Array3};
use proptest::prelude::*;
use spectrans_layers::*;

fn gf(seed: u64, d: usize, s: usize, act: FilterActivation, std: f32) -> GlobalFilter {
    GlobalFilter::new(d, s, act, FftNorm::Ortho, std, 0.0, &mut rng(seed)).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn forward_matches_naive_dft(seed in any::<u64>(), act_i in 0usize..3, b in 1usize..3,
                                 n in 1usize..13, s in 1usize..13, d in 1usize..4) {
        let act = FilterActivation::ALL[act_i];
        let layer = gf(seed, d, s, act, 0.8);
        let x = random3((b, n, d), 1.0, &mut rng(seed ^ 1));
        let wr = naive_resample(layer.filter_real(), n);
        let wi = naive_resample(layer.filter_imag(), n);
        let f = |w: f64| act.apply(w as f32) as f64;
        let expected = naive_filter(&x, &wr.mapv(f), &wi.mapv(f));
        let y = layer.forward(x.view()).unwrap();
        for (a, e) in y.iter().zip(expected.iter()) {
            prop_assert!((*a as f64 - e).abs() < 1e-4 * (1.0 + e.abs()), "{a} vs {e}");
        }
        // Every fft_norm gives the same result (the scales cancel).
        for norm in [FftNorm::Forward, FftNorm::Backward] {
            let mut other = layer.clone();
            other.fft_norm = norm;
            prop_assert_eq!(other.forward(x.view()).unwrap(), y.clone());
        }
    }

    #[test]
    fn global_filter_grads(seed in any::<u64>(), act_i in 0usize..3, b in 1usize..3,
                           n in 1usize..10, s in 1usize..10, d in 1usize..4) {
        let act = FilterActivation::ALL[act_i];
        let mut layer = gf(seed, d, s, act, 0.8);
        let x = random3((b, n, d), 1.0, &mut rng(seed ^ 2));
        let ry = random3((b, n, d), 1.0, &mut rng(seed ^ 3));
        let (y, cache) = layer.forward_train(x.view(), &mut TrainContext::new(0, true)).unwrap();
        prop_assert_eq!(&y, &layer.forward(x.view()).unwrap());
        let mut grads = GlobalFilterGrads::zeros_like(&layer);
        let dx = layer.backward(&cache, ry.view(), &mut grads).unwrap();
        check_input_grad("dx", &x, &dx, SMOOTH, |xp| dot(&layer.forward(xp.view()).unwrap(), &ry))?;
        check_param_grads(&mut layer, &grads, SMOOTH, |l| dot(&l.forward(x.view()).unwrap(), &ry))?;
    }

    #[test]
    fn global_filter_dropout_grads(seed in any::<u64>(), n in 2usize..8, p in 0.1f32..0.7) {
        let mut layer = GlobalFilter::new(3, 5, FilterActivation::Sigmoid, FftNorm::Ortho, 0.5, p,
                                          &mut rng(seed)).unwrap();
        let x = random3((2, n, 3), 1.0, &mut rng(seed ^ 4));
        let ry = random3((2, n, 3), 1.0, &mut rng(seed ^ 5));
        let (_, cache) = layer.forward_train(x.view(), &mut TrainContext::new(seed, true)).unwrap();
        let mut grads = GlobalFilterGrads::zeros_like(&layer);
        let dx = layer.backward(&cache, ry.view(), &mut grads).unwrap();
        let run = |l: &GlobalFilter, xp: &Array3<f32>| {
            let (y, _) = l.forward_train(xp.view(), &mut TrainContext::new(seed, true)).unwrap();
            dot(&y, &ry)
        };
        check_input_grad("dx", &x, &dx, SMOOTH, |xp| run(&layer, xp))?;
        check_param_grads(&mut layer, &grads, SMOOTH, |l| run(l, &x))?;
    }
}

/// The block with every dropout on, the masks replayed by re-seeding.
fn check_block(
    seed: u64,
    n: usize,
    s: usize,
    act: FilterActivation,
    p: f32,
    tokens: OutputTokens,
) -> Result<(), TestCaseError> {
    let mut options = BlockOptions::new(4, s).with_dropout(p);
    options.ffn_hidden_dim = 6;
    options.filter_activation = act;
    options.filter_init_std = 0.5;
    options.norm_eps = 1e-5;
    let mut block = GfnetBlock::new(options, &mut rng(seed)).unwrap();
    let x = random3((2, n, 4), 1.0, &mut rng(seed ^ 6));
    let ry = random3((2, tokens.count(n), 4), 1.0, &mut rng(seed ^ 7));
    let (_, cache) = block
        .forward_train_tokens(x.view(), &mut TrainContext::new(seed, true), tokens)
        .unwrap();
    let mut grads = GfnetBlockGrads::zeros_like(&block);
    let dx = block.backward(&cache, ry.view(), &mut grads).unwrap();
    let run = |l: &GfnetBlock, xp: &Array3<f32>| {
        let (y, _) = l
            .forward_train_tokens(xp.view(), &mut TrainContext::new(seed, true), tokens)
            .unwrap();
        dot(&y, &ry)
    };
    let tol = Tol {
        eps: 1e-3,
        rtol: 2e-2,
        atol: 4e-3,
    };
    check_input_grad("dx", &x, &dx, tol, |xp| run(&block, xp))?;
    check_param_grads(&mut block, &grads, tol, |l| run(l, &x))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn block_grads_same_length(seed in any::<u64>(), act_i in 0usize..3, p in prop_oneof![Just(0.0f32), 0.1f32..0.5]) {
        check_block(seed, 6, 6, FilterActivation::ALL[act_i], p, OutputTokens::All)?;
    }

    #[test]
    fn block_grads_shorter(seed in any::<u64>(), act_i in 0usize..3, n in 1usize..6) {
        check_block(seed, n, 7, FilterActivation::ALL[act_i], 0.2, OutputTokens::All)?;
    }

    #[test]
    fn block_grads_longer_odd(seed in any::<u64>(), act_i in 0usize..3, half in 3usize..5) {
        check_block(seed, 2 * half + 1, 4, FilterActivation::ALL[act_i], 0.2, OutputTokens::All)?;
    }

    #[test]
    fn block_grads_first_token(seed in any::<u64>(), act_i in 0usize..3, n in 1usize..9, p in prop_oneof![Just(0.0f32), 0.1f32..0.5]) {
        check_block(seed, n, 6, FilterActivation::ALL[act_i], p, OutputTokens::First)?;
    }
}

#[test]
fn block_eval_equals_train_without_dropout() {
    let block = GfnetBlock::new(BlockOptions::new(8, 10), &mut rng(3)).unwrap();
    let x = random3((3, 7, 8), 1.0, &mut rng(4));
    let y = block.forward(x.view()).unwrap();
    let (yt, _) = block
        .forward_train(x.view(), &mut TrainContext::new(0, false))
        .unwrap();
    for (a, b) in y.iter().zip(yt.iter()) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
}

/// The first-token path is the full block's token 0, and its gradients are the full block's
/// gradients for an output gradient that is zero outside token 0.
#[test]
fn block_first_token_matches_full_block() {
    let mut options = BlockOptions::new(8, 10);
    options.filter_init_std = 0.5;
    let block = GfnetBlock::new(options, &mut rng(11)).unwrap();
    let x = random3((3, 10, 8), 1.0, &mut rng(12));
    let full = block.forward(x.view()).unwrap();
    let first = block.forward_tokens(x.view(), OutputTokens::First).unwrap();
    assert_eq!(first.dim(), (3, 1, 8));
    for (a, b) in first
        .iter()
        .zip(full.slice(ndarray::s![.., 0..1, ..]).iter())
    {
        assert!((a - b).abs() <= 1e-6 * (1.0 + b.abs()), "{a} vs {b}");
    }
    let g_first = random3((3, 1, 8), 1.0, &mut rng(13));
    let mut g_full = Array3::<f32>::zeros((3, 10, 8));
    g_full.slice_mut(ndarray::s![.., 0..1, ..]).assign(&g_first);
    let ctx = || TrainContext::new(0, false);
    let (_, c_full) = block.forward_train(x.view(), &mut ctx()).unwrap();
    let (_, c_first) = block
        .forward_train_tokens(x.view(), &mut ctx(), OutputTokens::First)
        .unwrap();
    let mut grads_full = GfnetBlockGrads::zeros_like(&block);
    let mut grads_first = GfnetBlockGrads::zeros_like(&block);
    let dx_full = block
        .backward(&c_full, g_full.view(), &mut grads_full)
        .unwrap();
    let dx_first = block
        .backward(&c_first, g_first.view(), &mut grads_first)
        .unwrap();
    let close = |a: &[f32], b: &[f32], what: &str| {
        let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-3);
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-5 * scale, "{what}: {x} vs {y}");
        }
    };
    close(
        dx_first.as_slice().unwrap(),
        dx_full.as_slice().unwrap(),
        "dx",
    );
    let mut full_grads = Vec::new();
    grads_full.visit("", &mut |name, g| {
        full_grads.push((name.to_string(), g.to_owned()))
    });
    let mut i = 0;
    grads_first.visit("", &mut |name, g| {
        assert_eq!(name, full_grads[i].0);
        close(
            g.as_slice().unwrap(),
            full_grads[i].1.as_slice().unwrap(),
            name,
        );
        i += 1;
    });
    assert_eq!(i, full_grads.len());
    let wrong = Array3::<f32>::zeros((3, 10, 8));
    assert!(
        block
            .backward(&c_first, wrong.view(), &mut grads_first)
            .is_err()
    );
}

#[test]
fn block_parameter_names_match_pytorch() {
    let mut options = BlockOptions::new(4, 6);
    options.ffn_hidden_dim = 5;
    let block = GfnetBlock::new(options, &mut rng(0)).unwrap();
    let shapes = parameter_shapes(&block, "blocks.0.");
    let expected: Vec<(String, Vec<usize>)> = [
        ("mixing_layer.filter_real", vec![6, 4]),
        ("mixing_layer.filter_imag", vec![6, 4]),
        ("norm1.weight", vec![4]),
        ("norm1.bias", vec![4]),
        ("ffn.fc1.weight", vec![5, 4]),
        ("ffn.fc1.bias", vec![5]),
        ("ffn.fc2.weight", vec![4, 5]),
        ("ffn.fc2.bias", vec![4]),
        ("norm2.weight", vec![4]),
        ("norm2.bias", vec![4]),
    ]
    .into_iter()
    .map(|(n, s)| (format!("blocks.0.{n}"), s))
    .collect();
    assert_eq!(shapes, expected);
    let grads = GfnetBlockGrads::zeros_like(&block);
    assert_eq!(parameter_shapes(&grads, "blocks.0."), expected);
}

#[test]
fn filter_init_has_the_requested_std() {
    let layer = gf(11, 64, 64, FilterActivation::Sigmoid, 0.02);
    let v: Vec<f64> = layer.filter_real().iter().map(|&x| x as f64).collect();
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
    assert!(
        mean.abs() < 2e-3 && (std - 0.02).abs() < 2e-3,
        "mean {mean} std {std}"
    );
    let _ = Array2::<f32>::zeros((1, 1));
}

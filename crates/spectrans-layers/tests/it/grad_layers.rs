//! Finite-difference gradient checks for Linear, LayerNorm, the activations, FeedForward,
//! Embedding, the positional encodings and Dropout.

use crate::common::*;
use ndarray::{Array2, Array3};
use proptest::prelude::*;
use rand::Rng;
use spectrans_layers::*;

fn eval_ctx() -> TrainContext {
    TrainContext::new(0, false)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn linear_grads(seed in any::<u64>(), rows in 1usize..5, inp in 1usize..5, out in 1usize..5) {
        let mut r = rng(seed);
        let mut lin = Linear::new(inp, out, &mut r);
        let x = random2((rows, inp), 1.0, &mut r);
        let ry = random2((rows, out), 1.0, &mut r);
        let (_, cache) = lin.forward_train(x.view(), &mut eval_ctx()).unwrap();
        let mut grads = LinearGrads::zeros_like(&lin);
        let dx = lin.backward(&cache, ry.view(), &mut grads).unwrap();
        let loss2 = |y: &Array2<f32>| -> f64 { y.iter().zip(ry.iter()).map(|(&a, &b)| a as f64 * b as f64).sum() };
        let x3 = x.clone().into_shape_with_order((1, rows, inp)).unwrap();
        let dx3 = dx.into_shape_with_order((1, rows, inp)).unwrap();
        check_input_grad("dx", &x3, &dx3, SMOOTH, |xp| {
            loss2(&lin.forward(xp.index_axis(ndarray::Axis(0), 0)).unwrap())
        })?;
        check_param_grads(&mut lin, &grads, SMOOTH, |l| loss2(&l.forward(x.view()).unwrap()))?;
    }

    #[test]
    fn layer_norm_grads(seed in any::<u64>(), b in 1usize..3, n in 1usize..4, d in 2usize..7) {
        let mut r = rng(seed);
        let mut ln = LayerNorm::new(d, 1e-5);
        ln.weight = Array2::from_shape_simple_fn((1, d), || r.gen_range(0.5f32..1.5)).remove_axis(ndarray::Axis(0));
        ln.bias = Array2::from_shape_simple_fn((1, d), || r.gen_range(-0.5f32..0.5)).remove_axis(ndarray::Axis(0));
        let x = random3((b, n, d), 2.0, &mut r);
        let ry = random3((b, n, d), 1.0, &mut r);
        let (y, cache) = ln.forward_train(x.view(), &mut eval_ctx()).unwrap();
        prop_assert!(y.iter().zip(ln.forward(x.view()).unwrap().iter()).all(|(a, b)| (a - b).abs() <= 1e-6));
        let mut grads = LayerNormGrads::zeros_like(&ln);
        let dx = ln.backward(&cache, ry.view(), &mut grads).unwrap();
        let tol = Tol { eps: 2e-3, rtol: 2e-2, atol: 3e-3 };
        check_input_grad("dx", &x, &dx, tol, |xp| dot(&ln.forward(xp.view()).unwrap(), &ry))?;
        check_param_grads(&mut ln, &grads, tol, |l| dot(&l.forward(x.view()).unwrap(), &ry))?;
    }

    #[test]
    fn activation_derivatives(x in -6.0f32..6.0) {
        for &act in Activation::ALL {
            // Away from the kink at 0 for relu, leaky relu and elu.
            prop_assume!(x.abs() > 1e-2);
            let h = 1e-3f64;
            let f = |v: f64| act.apply(v as f32) as f64;
            let numeric = (f(x as f64 + h) - f(x as f64 - h)) / (2.0 * h);
            let analytic = act.derivative(x) as f64;
            prop_assert!((numeric - analytic).abs() < 2e-3 + 1e-2 * analytic.abs(),
                "{act:?}'({x}) = {analytic}, numeric {numeric}");
        }
        for &act in FilterActivation::ALL {
            let h = 1e-3f64;
            let f = |v: f64| act.apply(v as f32) as f64;
            let numeric = (f(x as f64 + h) - f(x as f64 - h)) / (2.0 * h);
            let analytic = act.derivative(x) as f64;
            prop_assert!((numeric - analytic).abs() < 2e-3 + 1e-2 * analytic.abs(),
                "{act:?}'({x}) = {analytic}, numeric {numeric}");
        }
    }

    #[test]
    fn feed_forward_grads(seed in any::<u64>(), act_i in 0usize..7, b in 1usize..3, n in 1usize..4,
                          d in 1usize..5, f in 1usize..7) {
        let act = Activation::ALL[act_i];
        let mut r = rng(seed);
        let mut ffn = FeedForward::new(d, f, act, 0.0, &mut r).unwrap();
        let x = random3((b, n, d), 1.5, &mut r);
        let ry = random3((b, n, d), 1.0, &mut r);
        // FD crosses no kink: keep pre-activations away from 0 for the piecewise activations.
        let kinked = matches!(act, Activation::Relu | Activation::LeakyRelu | Activation::Elu);
        let (_, cache) = ffn.forward_train(x.view(), &mut eval_ctx()).unwrap();
        let tol = if kinked { Tol { eps: 1e-3, rtol: 2e-2, atol: 3e-3 } } else { SMOOTH };
        if kinked {
            let rows = x.clone().into_shape_with_order((b * n, d)).unwrap();
            let z = ffn.fc1.forward(rows.view()).unwrap();
            prop_assume!(z.iter().all(|z| z.abs() > 0.02));
        }
        let mut grads = FeedForwardGrads::zeros_like(&ffn);
        let dx = ffn.backward(&cache, ry.view(), &mut grads).unwrap();
        check_input_grad("dx", &x, &dx, tol, |xp| dot(&ffn.forward(xp.view()).unwrap(), &ry))?;
        check_param_grads(&mut ffn, &grads, tol, |l| dot(&l.forward(x.view()).unwrap(), &ry))?;
    }

    #[test]
    fn feed_forward_dropout_replays(seed in any::<u64>(), p in 0.1f32..0.9) {
        // Training mode with dropout: the loss as a function of the parameters, with the mask
        // replayed by re-seeding the same context, matches backward.
        let mut r = rng(seed);
        let mut ffn = FeedForward::new(3, 5, Activation::Gelu, p, &mut r).unwrap();
        let x = random3((2, 3, 3), 1.0, &mut r);
        let ry = random3((2, 3, 3), 1.0, &mut r);
        let (_, cache) = ffn.forward_train(x.view(), &mut TrainContext::new(seed, true)).unwrap();
        let mut grads = FeedForwardGrads::zeros_like(&ffn);
        let dx = ffn.backward(&cache, ry.view(), &mut grads).unwrap();
        let run = |l: &FeedForward, xp: &Array3<f32>| {
            let (y, _) = l.forward_train(xp.view(), &mut TrainContext::new(seed, true)).unwrap();
            dot(&y, &ry)
        };
        check_input_grad("dx", &x, &dx, SMOOTH, |xp| run(&ffn, xp))?;
        check_param_grads(&mut ffn, &grads, SMOOTH, |l| run(l, &x))?;
    }

    #[test]
    fn embedding_grads(seed in any::<u64>(), v in 1usize..6, d in 1usize..4, b in 1usize..3, n in 1usize..5) {
        let mut r = rng(seed);
        let mut emb = Embedding::new(v, d, &mut r);
        let ids = Array2::from_shape_simple_fn((b, n), || r.gen_range(0..v as i64));
        let ry = random3((b, n, d), 1.0, &mut r);
        let (y, cache) = emb.forward_train(ids.view(), &mut eval_ctx()).unwrap();
        for ((bi, t), &id) in ids.indexed_iter() {
            for c in 0..d {
                prop_assert_eq!(y[[bi, t, c]], emb.weight[[id as usize, c]]);
            }
        }
        let mut grads = EmbeddingGrads::zeros_like(&emb);
        emb.backward(&cache, ry.view(), &mut grads).unwrap();
        check_param_grads(&mut emb, &grads, SMOOTH, |l| dot(&l.forward(ids.view()).unwrap(), &ry))?;
    }

    #[test]
    fn positional_grads(seed in any::<u64>(), kind in 0usize..3, b in 1usize..3, n in 1usize..6,
                        half in 1usize..4, extra in 0usize..3, p in 0.0f32..0.8) {
        let mut r = rng(seed);
        let d = 2 * half;
        let s = n + extra;
        let mut pe = match kind {
            0 => PositionalEncoding::sinusoidal(s, d, p).unwrap(),
            1 => PositionalEncoding::learned(s, d, p, &mut r).unwrap(),
            _ => PositionalEncoding::rotary(d).unwrap(),
        };
        let x = random3((b, n, d), 1.0, &mut r);
        let ry = random3((b, n, d), 1.0, &mut r);
        let (_, cache) = pe.forward_train(x.view(), &mut TrainContext::new(seed, true)).unwrap();
        let mut grads = PositionalEncodingGrads::zeros_like(&pe);
        let dx = pe.backward(&cache, ry.view(), &mut grads).unwrap();
        let run = |l: &PositionalEncoding, xp: &Array3<f32>| {
            let (y, _) = l.forward_train(xp.view(), &mut TrainContext::new(seed, true)).unwrap();
            dot(&y, &ry)
        };
        check_input_grad("dx", &x, &dx, SMOOTH, |xp| run(&pe, xp))?;
        check_param_grads(&mut pe, &grads, SMOOTH, |l| run(l, &x))?;
        prop_assert_eq!(parameter_count(&grads), if kind == 1 { s * d } else { 0 });
    }

    #[test]
    fn dropout_fixed_mask(seed in any::<u64>(), len in 1usize..50, p in 0.0f32..=1.0) {
        let mut r = rng(seed);
        let x: Vec<f32> = (0..len).map(|_| r.gen_range(-1.0f32..1.0)).collect();
        let g: Vec<f32> = (0..len).map(|_| r.gen_range(-1.0f32..1.0)).collect();
        let mut y = x.clone();
        let mask = Dropout::new(p).unwrap().apply(&mut y, &mut TrainContext::new(seed, true));
        // y = m ⊙ x is linear: dL/dx = m ⊙ g exactly, and each m is 0 or 1/(1-p).
        let mut dx = g.clone();
        mask.backward_in_place(&mut dx, "test").unwrap();
        let keep = if p >= 1.0 { 0.0 } else { 1.0 / (1.0 - p) };
        for i in 0..len {
            let m = if p == 0.0 { 1.0 } else { mask.scales().unwrap()[i] };
            prop_assert!(m == 0.0 || m == keep, "mask {m}");
            prop_assert_eq!(y[i], x[i] * m);
            prop_assert_eq!(dx[i], g[i] * m);
        }
        // Eval: identity, whatever p.
        let mut z = x.clone();
        prop_assert!(Dropout::new(p).unwrap().apply(&mut z, &mut TrainContext::new(seed, false)).is_identity());
        prop_assert_eq!(z, x);
    }
}

#[test]
fn dropout_rate_is_close_to_p() {
    let mut x = vec![1.0f32; 20_000];
    let mask = Dropout::new(0.3)
        .unwrap()
        .apply(&mut x, &mut TrainContext::new(5, true));
    let dropped = mask.scales().unwrap().iter().filter(|&&m| m == 0.0).count();
    let rate = dropped as f64 / 20_000.0;
    assert!((rate - 0.3).abs() < 0.02, "drop rate {rate}");
    let mean: f64 = x.iter().map(|&v| v as f64).sum::<f64>() / 20_000.0;
    assert!(
        (mean - 1.0).abs() < 0.05,
        "inverted scaling keeps the mean: {mean}"
    );
}

#[test]
fn same_seed_same_mask() {
    let d = Dropout::new(0.5).unwrap();
    let (mut a, mut b) = (vec![1.0f32; 64], vec![1.0f32; 64]);
    d.apply(&mut a, &mut TrainContext::new(9, true));
    d.apply(&mut b, &mut TrainContext::new(9, true));
    assert_eq!(a, b);
    let mut c = vec![1.0f32; 64];
    d.apply(&mut c, &mut TrainContext::new(10, true));
    assert_ne!(a, c);
}

/// Many rows, so the parameter-gradient reductions split over several rayon tasks: the bias
/// and LayerNorm weight/bias gradients must equal the plain f64 sums over rows.
#[test]
fn parallel_parameter_reductions_match_row_sums() {
    let mut r = rng(11);
    let (rows, inp, out) = (20_000usize, 4usize, 3usize);
    let lin = Linear::new(inp, out, &mut r);
    let x = random2((rows, inp), 1.0, &mut r);
    let dy = random2((rows, out), 1.0, &mut r);
    let mut g = LinearGrads::zeros_like(&lin);
    g.bias.fill(0.5); // accumulates onto what is there
    lin.backward_params(x.view(), dy.view(), &mut g).unwrap();
    for o in 0..out {
        let want = 0.5 + (0..rows).map(|i| dy[[i, o]] as f64).sum::<f64>();
        assert!(
            (g.bias[o] as f64 - want).abs() < 1e-2,
            "bias[{o}] {} vs {want}",
            g.bias[o]
        );
    }

    let ln = LayerNorm::new(inp, 1e-5);
    let xs = random3((4, rows / 4, inp), 1.0, &mut r);
    let (_, cache) = ln.forward_train(xs.view(), &mut eval_ctx()).unwrap();
    let gy = random3((4, rows / 4, inp), 1.0, &mut r);
    let mut lg = LayerNormGrads::zeros_like(&ln);
    ln.backward(&cache, gy.view(), &mut lg).unwrap();
    let gy2 = gy.into_shape_with_order((rows, inp)).unwrap();
    for k in 0..inp {
        let dw: f64 = (0..rows)
            .map(|i| gy2[[i, k]] as f64 * cache.normalized[[i, k]] as f64)
            .sum();
        let db: f64 = (0..rows).map(|i| gy2[[i, k]] as f64).sum();
        assert!((lg.weight[k] as f64 - dw).abs() < 1e-2, "dw[{k}]");
        assert!((lg.bias[k] as f64 - db).abs() < 1e-2, "db[{k}]");
    }
}

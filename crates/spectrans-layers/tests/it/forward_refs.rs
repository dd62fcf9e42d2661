//! Forward passes against independent references: naive f64 loops (Linear, LayerNorm, GELU,
//! FeedForward, resampling) and values printed once by PyTorch 2 / spectrans 0.1.0.

use crate::common::*;
use ndarray::{Array1, Array2, Array3};
use proptest::prelude::*;
use spectrans_layers::*;

/// A GELU FFN (16 -> 64 -> 16), an input of `n` rows (several row blocks when n > 168) and a
/// 2-thread pool to run it on.
fn long_ffn_case(seed: u64, n: usize) -> (FeedForward, Array3<f32>, rayon::ThreadPool) {
    let mut r = rng(seed);
    let ffn = FeedForward::new(16, 64, Activation::Gelu, 0.0, &mut r).unwrap();
    let x = random3((1, n, 16), 1.0, &mut r);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    (ffn, x, pool)
}

fn assert_close(what: &str, got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!((g as f64 - w).abs() <= tol, "{what}[{i}]: {g} vs {w}");
    }
}

/// Python that printed these (torch 2, spectrans 0.1.0):
/// ```python
/// pe = PositionalEncoding(hidden_dim=8, max_sequence_length=512, dropout=0.0).pe[0]
/// for p in (1, 100, 511): print([float(v) for v in pe[p]])
/// ```
#[test]
fn sinusoidal_table_matches_torch() {
    let pe = sinusoidal_table(512, 8);
    let rows: [(usize, [f64; 8]); 3] = [
        (
            1,
            [
                0.8414709568023682,
                0.5403023362159729,
                0.0998334139585495,
                0.9950041770935059,
                0.009999833069741726,
                0.9999499917030334,
                0.0009999998146668077,
                0.9999995231628418,
            ],
        ),
        (
            100,
            [
                -0.5063656568527222,
                0.8623188734054565,
                -0.5440202951431274,
                -0.839072048664093,
                0.8414709568023682,
                0.5403023362159729,
                0.0998334139585495,
                0.9950041770935059,
            ],
        ),
        (
            511,
            [
                0.8817703723907471,
                -0.47167888283729553,
                0.740971565246582,
                0.671536386013031,
                -0.9219887852668762,
                0.3872165083885193,
                0.4890497326850891,
                0.8722559213638306,
            ],
        ),
    ];
    for (p, want) in rows {
        assert_close(&format!("pe[{p}]"), &pe.row(p).to_vec(), &want, 2e-6);
    }
    // Odd width: the cos columns get one fewer.
    let odd = sinusoidal_table(3, 5);
    assert_eq!(odd.dim(), (3, 5));
    assert!((odd[[2, 4]] - (2.0f32 * (4.0f32 * -(10000f32.ln() / 5.0)).exp()).sin()).abs() < 1e-6);
}

/// ```python
/// src = torch.tensor([[0.3, -1.2, 2.5, 0.7, -0.4]])
/// F.interpolate(src.unsqueeze(0), size=n, mode="linear", align_corners=False)[0, 0]  # n = 3, 8
/// ```
#[test]
fn resampling_matches_torch() {
    let src = Array2::from_shape_vec((5, 1), vec![0.3f32, -1.2, 2.5, 0.7, -0.4]).unwrap();
    let cases: [(usize, &[f64]); 2] = [
        (3, &[-0.19999998807907104, 2.5, -0.033333178609609604]),
        (
            8,
            &[
                0.30000001192092896,
                -0.35625001788139343,
                -0.9687500596046448,
                1.34375,
                1.9375,
                0.8125,
                0.08124998211860657,
                -0.4000000059604645,
            ],
        ),
    ];
    for (n, want) in cases {
        let got = LinearResample::new(5, n).apply(src.view()).unwrap();
        // Same f32 operations as PyTorch's kernel: equal to the last bit.
        assert_close(
            &format!("resample 5 -> {n}"),
            got.as_slice().unwrap(),
            want,
            0.0,
        );
    }
}

/// ```python
/// rot = RotaryPositionalEncoding(hidden_dim=6, max_sequence_length=16)
/// x = torch.arange(48, dtype=torch.float32).reshape(2, 4, 6) / 10 - 2
/// y = rot(x); print(y[1, 3], y[0, 2])
/// ```
#[test]
fn rotary_matches_torch() {
    let x = Array3::from_shape_fn((2, 4, 6), |(b, t, c)| {
        (b * 24 + t * 6 + c) as f32 / 10.0 - 2.0
    });
    let y = PositionalEncoding::rotary(6)
        .unwrap()
        .forward(x.view())
        .unwrap();
    let want13 = [
        -2.530783176422119,
        1.9168628454208374,
        2.3824992179870605,
        -2.164517402648926,
        2.894069194793701,
        2.7154552936553955,
    ];
    let want02 = [
        0.7875661849975586,
        -0.6599066257476807,
        -0.5987017750740051,
        -0.5193644165992737,
        -0.46316662430763245,
        -0.3025824725627899,
    ];
    assert_close(
        "rot[1, 3]",
        &y.slice(ndarray::s![1, 3, ..]).to_vec(),
        &want13,
        2e-6,
    );
    assert_close(
        "rot[0, 2]",
        &y.slice(ndarray::s![0, 2, ..]).to_vec(),
        &want02,
        2e-6,
    );
}

/// `torch.nn.functional.gelu(torch.tensor([-3.0, -0.5, 0.1, 1.7, 4.0]))`
#[test]
fn gelu_matches_torch() {
    let xs = [-3.0f32, -0.5, 0.1, 1.7, 4.0];
    let want = [
        -0.004050225019454956,
        -0.1542687714099884,
        0.05398278310894966,
        1.6242387294769287,
        3.999873638153076,
    ];
    let got: Vec<f32> = xs.iter().map(|&x| Activation::Gelu.apply(x)).collect();
    assert_close("gelu", &got, &want, 1e-6);
}

fn erf64(x: f64) -> f64 {
    // Abramowitz-Stegun 7.1.26 is too coarse; integrate exp(-t²) with Simpson's rule instead.
    let steps = 2000;
    let h = x / steps as f64;
    let f = |t: f64| (-t * t).exp();
    let mut s = f(0.0) + f(x);
    for i in 1..steps {
        s += f(i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
    }
    s * h / 3.0 * 2.0 / std::f64::consts::PI.sqrt()
}

fn act64(act: Activation, x: f64) -> f64 {
    let sig = 1.0 / (1.0 + (-x).exp());
    match act {
        Activation::Gelu => 0.5 * x * (1.0 + erf64(x / 2f64.sqrt())),
        Activation::Relu => x.max(0.0),
        Activation::Silu => x * sig,
        Activation::Tanh => x.tanh(),
        Activation::Sigmoid => sig,
        Activation::Elu => {
            if x > 0.0 {
                x
            } else {
                x.exp() - 1.0
            }
        }
        Activation::LeakyRelu => {
            if x > 0.0 {
                x
            } else {
                0.01 * x
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn activations_match_f64(x in -8.0f32..8.0) {
        for &act in Activation::ALL {
            let want = act64(act, x as f64);
            let got = act.apply(x) as f64;
            prop_assert!((got - want).abs() <= 1e-6 * (1.0 + want.abs()), "{act:?}({x}) = {got}, want {want}");
        }
    }

    #[test]
    fn linear_matches_naive(seed in any::<u64>(), rows in 0usize..40, inp in 1usize..70, out in 1usize..70) {
        let mut r = rng(seed);
        let lin = Linear::new(inp, out, &mut r);
        let x = random2((rows, inp), 1.0, &mut r);
        let y = lin.forward(x.view()).unwrap();
        for i in 0..rows {
            for o in 0..out {
                let want: f64 = lin.bias[o] as f64
                    + (0..inp).map(|k| x[[i, k]] as f64 * lin.weight()[[o, k]] as f64).sum::<f64>();
                prop_assert!((y[[i, o]] as f64 - want).abs() < 1e-5 * (1.0 + inp as f64).sqrt());
            }
        }
    }

    #[test]
    fn layer_norm_matches_naive(seed in any::<u64>(), b in 1usize..3, n in 1usize..5, d in 1usize..40,
                                offset in -100.0f32..100.0) {
        let mut r = rng(seed);
        let mut ln = LayerNorm::new(d, 1e-5);
        ln.weight = Array1::from_iter(random2((1, d), 1.0, &mut r));
        ln.bias = Array1::from_iter(random2((1, d), 1.0, &mut r));
        let x = random3((b, n, d), 2.0, &mut r).mapv(|v| v + offset);
        let y = ln.forward(x.view()).unwrap();
        for bi in 0..b {
            for t in 0..n {
                let row: Vec<f64> = (0..d).map(|c| x[[bi, t, c]] as f64).collect();
                let mean = row.iter().sum::<f64>() / d as f64;
                let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / d as f64;
                for c in 0..d {
                    let want = (row[c] - mean) / (var + 1e-5).sqrt() * ln.weight[c] as f64 + ln.bias[c] as f64;
                    // f32 input rounding at |offset| ~ 100 limits the agreement.
                    let tol = 2e-5 * (1.0 + offset.abs() as f64) / var.sqrt().max(0.1);
                    prop_assert!((y[[bi, t, c]] as f64 - want).abs() < tol, "{} vs {want}", y[[bi, t, c]]);
                }
            }
        }
    }

    #[test]
    fn feed_forward_matches_naive(seed in any::<u64>(), act_i in 0usize..7, n in 1usize..6, d in 1usize..9,
                                  f in 1usize..17) {
        let act = Activation::ALL[act_i];
        let mut r = rng(seed);
        let ffn = FeedForward::new(d, f, act, 0.5, &mut r).unwrap();
        let x = random3((2, n, d), 1.0, &mut r);
        let y = ffn.forward(x.view()).unwrap(); // eval: no dropout
        for bi in 0..2 {
            for t in 0..n {
                let h: Vec<f64> = (0..f).map(|j| {
                    act64(act, ffn.fc1.bias[j] as f64
                        + (0..d).map(|k| x[[bi, t, k]] as f64 * ffn.fc1.weight()[[j, k]] as f64).sum::<f64>())
                }).collect();
                for o in 0..d {
                    let want = ffn.fc2.bias[o] as f64
                        + (0..f).map(|j| h[j] * ffn.fc2.weight()[[o, j]] as f64).sum::<f64>();
                    prop_assert!((y[[bi, t, o]] as f64 - want).abs() < 1e-5, "{} vs {want}", y[[bi, t, o]]);
                }
            }
        }
        // The fused residual form: acc += FFN(x).
        let acc0 = random3((2, n, d), 1.0, &mut r);
        let mut acc = acc0.clone();
        ffn.forward_add_into(x.view(), &mut acc).unwrap();
        for ((a, a0), y) in acc.iter().zip(acc0.iter()).zip(y.iter()) {
            prop_assert!((a - (a0 + y)).abs() < 1e-5, "{a} vs {} + {y}", a0);
        }
        let mut wrong = Array3::<f32>::zeros((2, n, d + 1));
        prop_assert!(ffn.forward_add_into(x.view(), &mut wrong).is_err());
    }

    /// A long input runs the eval FFN block by block of rows, in parallel (its hidden layer
    /// kept in cache); every row gets the bits it gets alone.
    #[test]
    fn blocked_eval_ffn_gives_each_rows_bits(seed in any::<u64>(), n in 170usize..700) {
        let (ffn, x, pool) = long_ffn_case(seed, n);
        let d = ffn.dim();
        let all = pool.install(|| ffn.forward(x.view())).unwrap();
        for t in [0, n / 3, n - 1] {
            let one = ffn.forward(x.slice(ndarray::s![.., t..t + 1, ..])).unwrap();
            for o in 0..d {
                prop_assert_eq!(all[[0, t, o]].to_bits(), one[[0, 0, o]].to_bits(), "row {} col {}", t, o);
            }
        }
    }

    /// The training forward without dropout runs block by block of rows too: its output, and
    /// the input gradient its cache gives, hold for each row the bits that row gets alone.
    #[test]
    fn blocked_train_ffn_gives_each_rows_bits(seed in any::<u64>(), n in 170usize..700) {
        let (ffn, x, pool) = long_ffn_case(seed, n);
        let d = ffn.dim();
        let mut ctx = TrainContext::new(seed, true);
        let (all, cache) = pool.install(|| ffn.forward_train(x.view(), &mut ctx)).unwrap();
        for t in [0, n / 3, n - 1] {
            let row = x.slice(ndarray::s![.., t..t + 1, ..]);
            let (one, one_cache) = ffn.forward_train(row, &mut TrainContext::new(seed, true)).unwrap();
            for o in 0..d {
                prop_assert_eq!(all[[0, t, o]].to_bits(), one[[0, 0, o]].to_bits(), "row {} col {}", t, o);
            }
            // The backward of the row alone and of the row within the whole input agree too.
            let mut g_all = Array3::<f32>::zeros((1, n, d));
            g_all[[0, t, 0]] = 1.0;
            let mut grads_all = FeedForwardGrads::zeros_like(&ffn);
            let dx_all = ffn.backward(&cache, g_all.view(), &mut grads_all).unwrap();
            let mut g_one = Array3::<f32>::zeros((1, 1, d));
            g_one[[0, 0, 0]] = 1.0;
            let mut grads_one = FeedForwardGrads::zeros_like(&ffn);
            let dx_one = ffn.backward(&one_cache, g_one.view(), &mut grads_one).unwrap();
            for c in 0..d {
                prop_assert_eq!(dx_all[[0, t, c]].to_bits(), dx_one[[0, 0, c]].to_bits(), "dx row {} col {}", t, c);
            }
        }
    }

    #[test]
    fn resampling_matches_f64_formula(seed in any::<u64>(), s in 1usize..30, n in 1usize..30) {
        let src = random2((s, 3), 1.0, &mut rng(seed));
        let got = LinearResample::new(s, n).apply(src.view()).unwrap();
        let want = naive_resample(&src, n);
        for (g, w) in got.iter().zip(want.iter()) {
            prop_assert!((*g as f64 - w).abs() < 1e-5, "{g} vs {w}");
        }
        // The transpose is the adjoint: <R a, b> = <a, Rᵀ b>.
        let b = random2((n, 3), 1.0, &mut rng(seed ^ 9));
        let mut rt = Array2::<f32>::zeros((s, 3));
        LinearResample::new(s, n).transpose_add(b.view(), &mut rt).unwrap();
        let lhs: f64 = got.iter().zip(b.iter()).map(|(x, y)| *x as f64 * *y as f64).sum();
        let rhs: f64 = src.iter().zip(rt.iter()).map(|(x, y)| *x as f64 * *y as f64).sum();
        prop_assert!((lhs - rhs).abs() < 1e-4 * (1.0 + lhs.abs()));
    }

    #[test]
    fn matmul_handles_any_strides(seed in any::<u64>(), m in 1usize..90, k in 0usize..90, n in 1usize..90,
                                  accumulate in any::<bool>()) {
        let mut r = rng(seed);
        let a = random2((k, m), 1.0, &mut r); // used transposed
        let b = random2((k, n), 1.0, &mut r);
        let mut c = random2((m, n), 1.0, &mut r);
        let c0 = c.clone();
        use spectrans_layers::linalg::{gemm, Epilogue, Parallelism, Rhs};
        let epilogue = Epilogue { accumulate, ..Epilogue::default() };
        gemm(c.view_mut(), a.t(), Rhs::Plain(b.view()), epilogue, Parallelism::Rayon).unwrap();
        for i in 0..m {
            for j in 0..n {
                let base = if accumulate { c0[[i, j]] as f64 } else { 0.0 };
                let want = base + (0..k).map(|q| a[[q, i]] as f64 * b[[q, j]] as f64).sum::<f64>();
                prop_assert!((c[[i, j]] as f64 - want).abs() < 1e-4, "{} vs {want}", c[[i, j]]);
            }
        }
    }
}

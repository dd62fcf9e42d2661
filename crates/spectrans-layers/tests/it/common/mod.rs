//! Shared test helpers: central-difference gradient checks (f64 accumulation) and naive
//! f64 references.
#![allow(dead_code)]

use ndarray::{Array2, Array3};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use spectrans_layers::Parameters;

/// A deterministic RNG for a proptest-drawn seed.
pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Uniform values in [-scale, scale].
pub fn random3(shape: (usize, usize, usize), scale: f32, rng: &mut impl Rng) -> Array3<f32> {
    Array3::from_shape_simple_fn(shape, || rng.gen_range(-scale..=scale))
}

pub fn random2(shape: (usize, usize), scale: f32, rng: &mut impl Rng) -> Array2<f32> {
    Array2::from_shape_simple_fn(shape, || rng.gen_range(-scale..=scale))
}

/// `L(y) = Σ y ⊙ r`, accumulated in f64.
pub fn dot(y: &Array3<f32>, r: &Array3<f32>) -> f64 {
    assert_eq!(y.dim(), r.dim());
    y.iter()
        .zip(r.iter())
        .map(|(&a, &b)| a as f64 * b as f64)
        .sum()
}

/// Tolerances of one check.
#[derive(Clone, Copy, Debug)]
pub struct Tol {
    pub eps: f32,
    pub rtol: f64,
    pub atol: f64,
}

pub const SMOOTH: Tol = Tol {
    eps: 1e-2,
    rtol: 1e-2,
    atol: 2e-3,
};

fn compare(
    what: &str,
    idx: usize,
    analytic: f64,
    numeric: f64,
    tol: Tol,
) -> Result<(), TestCaseError> {
    let bound = tol.atol + tol.rtol * analytic.abs().max(numeric.abs());
    if (analytic - numeric).abs() > bound {
        return Err(TestCaseError::fail(format!(
            "{what}[{idx}]: analytic {analytic} vs numeric {numeric} (bound {bound})"
        )));
    }
    Ok(())
}

/// The five-point central difference `(8 (f(h) - f(-h)) - (f(2h) - f(-2h))) / 12h`
/// (truncation error O(h⁴)) of `f(delta)`, a loss at the point moved by `delta`.
fn five_point(h: f32, mut f: impl FnMut(f32) -> f64) -> f64 {
    let (p1, m1, p2, m2) = (f(h), f(-h), f(2.0 * h), f(-2.0 * h));
    (8.0 * (p1 - m1) - (p2 - m2)) / (12.0 * h as f64)
}

/// Central differences of `loss` w.r.t. every element of `x`, against `analytic`.
pub fn check_input_grad(
    what: &str,
    x: &Array3<f32>,
    analytic: &Array3<f32>,
    tol: Tol,
    mut loss: impl FnMut(&Array3<f32>) -> f64,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(x.dim(), analytic.dim());
    let mut xp = x.as_standard_layout().into_owned();
    let orig_values: Vec<f32> = xp.iter().copied().collect();
    for (i, (a, &orig)) in analytic.iter().zip(&orig_values).enumerate() {
        let numeric = five_point(tol.eps, |delta| {
            xp.as_slice_mut().unwrap()[i] = orig + delta;
            let l = loss(&xp);
            xp.as_slice_mut().unwrap()[i] = orig;
            l
        });
        compare(what, i, *a as f64, numeric, tol)?;
    }
    Ok(())
}

fn set_element<L: Parameters>(layer: &mut L, name: &str, idx: usize, value: f32) {
    layer.visit_mut("", &mut |n, mut t| {
        if n == name
            && let Some(v) = t.iter_mut().nth(idx)
        {
            *v = value;
        }
    });
}

/// Central differences of `loss` w.r.t. every parameter element of `layer`, against the
/// same-named tensors of `grads`. Checks that every parameter has a gradient.
pub fn check_param_grads<L: Parameters, G: Parameters>(
    layer: &mut L,
    grads: &G,
    tol: Tol,
    mut loss: impl FnMut(&L) -> f64,
) -> Result<(), TestCaseError> {
    let mut params: Vec<(String, Vec<f32>)> = Vec::new();
    layer.visit("", &mut |n, t| {
        params.push((n.to_string(), t.iter().copied().collect()))
    });
    let mut grad_map: Vec<(String, Vec<f32>)> = Vec::new();
    grads.visit("", &mut |n, t| {
        grad_map.push((n.to_string(), t.iter().copied().collect()))
    });
    prop_assert_eq!(
        params.iter().map(|p| &p.0).collect::<Vec<_>>(),
        grad_map.iter().map(|g| &g.0).collect::<Vec<_>>()
    );
    for ((name, values), (_, g)) in params.iter().zip(&grad_map) {
        prop_assert_eq!(values.len(), g.len());
        for (i, (&orig, &a)) in values.iter().zip(g).enumerate() {
            let numeric = five_point(tol.eps, |delta| {
                set_element(layer, name, i, orig + delta);
                let l = loss(layer);
                set_element(layer, name, i, orig);
                l
            });
            compare(name, i, a as f64, numeric, tol)?;
        }
    }
    Ok(())
}

/// Naive f64 `Re(IDFT(H ⊙ DFT(x)))` along axis 1 with a full complex filter (n, d).
pub fn naive_filter(x: &Array3<f32>, h_re: &Array2<f64>, h_im: &Array2<f64>) -> Array3<f64> {
    let (b, n, d) = x.dim();
    let mut out = Array3::<f64>::zeros((b, n, d));
    let tau = std::f64::consts::TAU;
    for bi in 0..b {
        for c in 0..d {
            // X[k] = Σ_t x[t] e^{-2πi kt/n}
            let mut xr = vec![0.0; n];
            let mut xi = vec![0.0; n];
            for k in 0..n {
                for t in 0..n {
                    let ang = -tau * (k * t) as f64 / n as f64;
                    let v = x[[bi, t, c]] as f64;
                    xr[k] += v * ang.cos();
                    xi[k] += v * ang.sin();
                }
            }
            for t in 0..n {
                let mut acc = 0.0;
                for k in 0..n {
                    let (hr, hi) = (h_re[[k, c]], h_im[[k, c]]);
                    let (yr, yi) = (hr * xr[k] - hi * xi[k], hr * xi[k] + hi * xr[k]);
                    let ang = tau * (k * t) as f64 / n as f64;
                    acc += yr * ang.cos() - yi * ang.sin();
                }
                out[[bi, t, c]] = acc / n as f64;
            }
        }
    }
    out
}

/// Naive f64 linear resampling (PyTorch align_corners=False), from the formula in f64.
pub fn naive_resample(src: &Array2<f32>, n: usize) -> Array2<f64> {
    let (s, d) = src.dim();
    let mut out = Array2::<f64>::zeros((n, d));
    let scale = s as f64 / n as f64;
    for i in 0..n {
        let pos = (scale * (i as f64 + 0.5) - 0.5).max(0.0);
        let i0 = (pos.floor() as usize).min(s - 1);
        let i1 = (i0 + 1).min(s - 1);
        let l = (pos - i0 as f64).clamp(0.0, 1.0);
        for c in 0..d {
            out[[i, c]] = (1.0 - l) * src[[i0, c]] as f64 + l * src[[i1, c]] as f64;
        }
    }
    out
}

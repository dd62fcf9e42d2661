//! Independent references for the tests: naive O(n²) DFTs in f64, and array strategies.
#![allow(dead_code)] // each test binary uses a different subset

use std::f64::consts::PI;

use ndarray::{Array2, Array3, ArrayView3, Axis};
use num_complex::{Complex32, Complex64};
use proptest::prelude::*;
use spectrans_fft::FftNorm;

/// `Σ_t x[t] e^{∓2πi k t / n}` (minus sign forward), unnormalised, in f64.
pub fn naive_dft(x: &[Complex64], inverse: bool) -> Vec<Complex64> {
    let n = x.len();
    let sign = if inverse { 1.0 } else { -1.0 };
    // Twiddles by (k t mod n), so every angle is computed once and stays accurate.
    let twiddles: Vec<Complex64> = (0..n)
        .map(|m| {
            let angle = sign * 2.0 * PI * m as f64 / n as f64;
            Complex64::new(angle.cos(), angle.sin())
        })
        .collect();
    (0..n)
        .map(|k| {
            x.iter()
                .enumerate()
                .map(|(t, &v)| v * twiddles[(k * t) % n])
                .sum()
        })
        .collect()
}

/// numpy's scale for a forward (`inverse = false`) or inverse transform.
pub fn norm_scale(norm: FftNorm, n: usize, inverse: bool) -> f64 {
    let n = n as f64;
    match (norm, inverse) {
        (FftNorm::Backward, false) | (FftNorm::Forward, true) => 1.0,
        (FftNorm::Backward, true) | (FftNorm::Forward, false) => 1.0 / n,
        (FftNorm::Ortho, _) => 1.0 / n.sqrt(),
    }
}

/// Applies `f` to every length-n signal along axis 1 of a `(B, n, D)` complex f64 array.
pub fn along_axis1(
    x: &Array3<Complex64>,
    out_len: usize,
    f: impl Fn(&[Complex64]) -> Vec<Complex64>,
) -> Array3<Complex64> {
    let (b, _, d) = x.dim();
    let mut out = Array3::zeros((b, out_len, d));
    for bi in 0..b {
        for di in 0..d {
            let signal: Vec<Complex64> = x.slice(ndarray::s![bi, .., di]).to_vec();
            let result = f(&signal);
            for (k, v) in result.into_iter().take(out_len).enumerate() {
                out[[bi, k, di]] = v;
            }
        }
    }
    out
}

/// Reference rfft along axis 1 (first n/2+1 bins of the naive DFT, scaled).
pub fn ref_rfft(x: ArrayView3<'_, f32>, norm: FftNorm) -> Array3<Complex64> {
    let n = x.len_of(Axis(1));
    let s = norm_scale(norm, n, false);
    along_axis1(&to_c64(x), n / 2 + 1, |v| {
        naive_dft(v, false).into_iter().map(|c| c * s).collect()
    })
}

/// Reference irfft with output length n: Hermitian extension of bins 0..=n/2, imaginary
/// parts of bin 0 and (even n) bin n/2 dropped, naive inverse DFT, real part.
pub fn ref_irfft(x: ArrayView3<'_, Complex32>, n: usize, norm: FftNorm) -> Array3<f64> {
    let s = norm_scale(norm, n, true);
    let half = x.mapv(|c| Complex64::new(c.re.into(), c.im.into()));
    let full = along_axis1(&half, n, |bins| {
        let mut spectrum = vec![Complex64::new(0.0, 0.0); n];
        for k in 0..=n / 2 {
            let mut v = bins[k];
            if k == 0 || 2 * k == n {
                v.im = 0.0;
            }
            spectrum[k] = v;
            if k != 0 {
                spectrum[n - k] = v.conj();
            }
        }
        naive_dft(&spectrum, true)
            .into_iter()
            .map(|c| c * s)
            .collect()
    });
    full.mapv(|c| c.re)
}

pub fn to_c64(x: ArrayView3<'_, f32>) -> Array3<Complex64> {
    x.mapv(|v| Complex64::new(v.into(), 0.0))
}

pub fn c32_to_c64<D: ndarray::Dimension>(
    x: ndarray::ArrayView<'_, Complex32, D>,
) -> ndarray::Array<Complex64, D> {
    x.mapv(|c| Complex64::new(c.re.into(), c.im.into()))
}

/// Largest |a - b| over two complex arrays of the same shape.
pub fn max_diff_c<D: ndarray::Dimension>(
    a: ndarray::ArrayView<'_, Complex32, D>,
    b: ndarray::ArrayView<'_, Complex64, D>,
) -> f64 {
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (Complex64::new(x.re.into(), x.im.into()) - y).norm())
        .fold(0.0, f64::max)
}

/// Largest |a - b| over two real arrays of the same shape.
pub fn max_diff_r<D: ndarray::Dimension>(
    a: ndarray::ArrayView<'_, f32, D>,
    b: ndarray::ArrayView<'_, f64, D>,
) -> f64 {
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (f64::from(*x) - y).abs())
        .fold(0.0, f64::max)
}

pub fn max_abs_c<D: ndarray::Dimension>(a: ndarray::ArrayView<'_, Complex64, D>) -> f64 {
    a.iter().map(|c| c.norm()).fold(0.0, f64::max)
}

pub fn max_abs_r<D: ndarray::Dimension>(a: ndarray::ArrayView<'_, f64, D>) -> f64 {
    a.iter().map(|c| c.abs()).fold(0.0, f64::max)
}

/// f32 tolerance for a length-n transform of values of size `magnitude`.
pub fn tol(n: usize, magnitude: f64) -> f64 {
    2e-6 * (1.0 + (n as f64).log2()) * (1.0 + magnitude) * 4.0
}

pub fn norms() -> impl Strategy<Value = FftNorm> {
    prop_oneof![
        Just(FftNorm::Backward),
        Just(FftNorm::Forward),
        Just(FftNorm::Ortho)
    ]
}

/// A `(B, n, D)` real array with entries in [-1, 1].
pub fn real3(
    batch: std::ops::RangeInclusive<usize>,
    n: std::ops::RangeInclusive<usize>,
    cols: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = Array3<f32>> {
    (batch, n, cols).prop_flat_map(|(b, n, d)| {
        prop::collection::vec(-1.0f32..1.0, b * n * d)
            .prop_map(move |v| Array3::from_shape_vec((b, n, d), v).expect("length matches"))
    })
}

/// A `(B, n, D)` complex array with entries in the unit square.
pub fn complex3(b: usize, n: usize, d: usize) -> impl Strategy<Value = Array3<Complex32>> {
    prop::collection::vec((-1.0f32..1.0, -1.0f32..1.0), b * n * d).prop_map(move |v| {
        let v = v
            .into_iter()
            .map(|(re, im)| Complex32::new(re, im))
            .collect();
        Array3::from_shape_vec((b, n, d), v).expect("length matches")
    })
}

/// A `(rows, cols)` complex array with entries in the unit square.
pub fn complex2(rows: usize, cols: usize) -> impl Strategy<Value = Array2<Complex32>> {
    prop::collection::vec((-1.0f32..1.0, -1.0f32..1.0), rows * cols).prop_map(move |v| {
        let v = v
            .into_iter()
            .map(|(re, im)| Complex32::new(re, im))
            .collect();
        Array2::from_shape_vec((rows, cols), v).expect("length matches")
    })
}

/// Σ a·b over two real arrays.
pub fn dot(a: ArrayView3<'_, f32>, b: ArrayView3<'_, f32>) -> f64 {
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum()
}

/// Lengths 1..=257, with primes, powers of two and their neighbours drawn often.
pub fn lengths() -> impl Strategy<Value = usize> {
    prop_oneof![
        1usize..=257,
        prop::sample::select(vec![
            1usize, 2, 3, 5, 7, 16, 31, 97, 127, 128, 251, 256, 257
        ]),
    ]
}

/// Thread counts of the pinned pools the parallel FFT paths are tested on, whatever the
/// machine's core count. A transform takes the slice path when its batch is at least the pool's
/// thread count and the column-tile path otherwise, so batches of 1..=3 on these pools run
/// both paths on every machine.
pub const POOL_THREADS: [usize; 4] = [1, 2, 4, 16];

/// Runs `job` on each pinned pool of [`POOL_THREADS`] (built once per test binary); returns
/// `(threads, result)` per pool.
pub fn on_every_pool<T: Send>(job: impl Fn() -> T + Sync) -> Vec<(usize, T)> {
    static POOLS: std::sync::OnceLock<Vec<rayon::ThreadPool>> = std::sync::OnceLock::new();
    let pools = POOLS.get_or_init(|| {
        POOL_THREADS
            .iter()
            .map(|&t| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(t)
                    .build()
                    .expect("a test thread pool")
            })
            .collect()
    });
    pools
        .iter()
        .map(|pool| (pool.current_num_threads(), pool.install(&job)))
        .collect()
}

/// Runs `job` on every pinned pool, checks that every pool's result is within `tol` of the
/// one-thread result under `diff`, and returns the one-thread result.
pub fn same_on_every_pool<T: Send>(
    job: impl Fn() -> T + Sync,
    diff: impl Fn(&T, &T) -> f64,
    tol: f64,
) -> T {
    let mut results = on_every_pool(job).into_iter();
    let (_, first) = results.next().expect("at least one pool");
    for (threads, other) in results {
        let d = diff(&first, &other);
        assert!(
            d <= tol,
            "{threads} threads differ from 1 thread by {d} (> {tol})"
        );
    }
    first
}

//! `filter`, `filter_adjoint` and `fold_filter` against naive f64 references.

use crate::common::*;
use ndarray::{Array2, Array3, ArrayView2, ArrayView3, Axis, s};
use num_complex::{Complex32, Complex64};
use proptest::prelude::*;
use spectrans_fft::{FftNorm, FilterWorkspace, SeqRealFft, fold_filter};

/// spectrans' path in f64: Re(ifft(H ⊙ fft(x))) along axis 1 with a full filter H (n, D).
fn ref_full_filter(x: ArrayView3<'_, f32>, full: ArrayView2<'_, Complex64>) -> Array3<f64> {
    let (b, n, d) = x.dim();
    let mut out = Array3::zeros((b, n, d));
    for bi in 0..b {
        for di in 0..d {
            let signal: Vec<Complex64> = x
                .slice(s![bi, .., di])
                .iter()
                .map(|&v| Complex64::new(v.into(), 0.0))
                .collect();
            let spectrum: Vec<Complex64> = naive_dft(&signal, false)
                .into_iter()
                .enumerate()
                .map(|(k, c)| c * full[[k, di]])
                .collect();
            for (t, v) in naive_dft(&spectrum, true).into_iter().enumerate() {
                out[[bi, t, di]] = v.re / n as f64;
            }
        }
    }
    out
}

struct Filtered {
    output: Array3<f32>,
    spectrum: Array3<Complex32>,
}

/// The filter on the calling thread's pool, with `ws` as its workspace.
fn run_filter_here(x: &Array3<f32>, hf: &Array2<Complex32>, ws: &mut FilterWorkspace) -> Filtered {
    let (b, n, d) = x.dim();
    let plan = SeqRealFft::new(n).expect("n >= 1");
    let mut output = Array3::zeros((b, n, d));
    let mut spectrum = Array3::zeros((b, n / 2 + 1, d));
    plan.filter(
        x.view(),
        hf.view(),
        output.view_mut(),
        Some(spectrum.view_mut()),
        ws,
    )
    .expect("shapes match");
    Filtered { output, spectrum }
}

/// The filter run on every pinned pool (fresh workspaces there, `ws` on the one-thread
/// pool's result); every pool must agree with one thread (see [`same_on_every_pool`]).
fn run_filter(x: &Array3<f32>, hf: &Array2<Complex32>, ws: &mut FilterWorkspace) -> Filtered {
    let scale = 1.0 + x.iter().map(|v| v.abs() as f64).sum::<f64>();
    let everywhere = same_on_every_pool(
        || run_filter_here(x, hf, &mut FilterWorkspace::new()),
        |a, b| {
            max_diff_r(a.output.view(), b.output.mapv(f64::from).view()).max(max_diff_c(
                a.spectrum.view(),
                c32_to_c64(b.spectrum.view()).view(),
            ))
        },
        1e-5 * scale,
    );
    let here = run_filter_here(x, hf, ws);
    assert_eq!(
        here.output, everywhere.output,
        "a reused workspace changes nothing"
    );
    everywhere
}

struct Adjoint {
    input_cotangent: Array3<f32>,
    cross_spectrum: Array2<Complex32>,
}

/// The adjoint run on every pinned pool; every pool must agree with one thread.
fn run_adjoint(
    dy: &Array3<f32>,
    spectrum: &Array3<Complex32>,
    hf: &Array2<Complex32>,
    cross_start: Array2<Complex32>,
    ws: &mut FilterWorkspace,
) -> Adjoint {
    let scale = 1.0
        + dy.iter().map(|v| v.abs() as f64).sum::<f64>()
            * (1.0 + spectrum.iter().map(|v| v.norm() as f64).sum::<f64>());
    let everywhere = same_on_every_pool(
        || {
            run_adjoint_here(
                dy,
                spectrum,
                hf,
                cross_start.clone(),
                &mut FilterWorkspace::new(),
            )
        },
        |a, b| {
            max_diff_r(
                a.input_cotangent.view(),
                b.input_cotangent.mapv(f64::from).view(),
            )
            .max(max_diff_c(
                a.cross_spectrum.view(),
                c32_to_c64(b.cross_spectrum.view()).view(),
            ))
        },
        1e-5 * scale,
    );
    let here = run_adjoint_here(dy, spectrum, hf, cross_start, ws);
    assert_eq!(
        here.input_cotangent, everywhere.input_cotangent,
        "a reused workspace changes nothing"
    );
    everywhere
}

/// The adjoint on the calling thread's pool, with `ws` as its workspace.
fn run_adjoint_here(
    dy: &Array3<f32>,
    spectrum: &Array3<Complex32>,
    hf: &Array2<Complex32>,
    cross_start: Array2<Complex32>,
    ws: &mut FilterWorkspace,
) -> Adjoint {
    let (b, n, d) = dy.dim();
    let plan = SeqRealFft::new(n).expect("n >= 1");
    let mut input_cotangent = Array3::from_elem((b, n, d), f32::NAN); // must be overwritten
    let mut cross_spectrum = cross_start;
    plan.filter_adjoint(
        dy.view(),
        spectrum.view(),
        hf.view(),
        input_cotangent.view_mut(),
        cross_spectrum.view_mut(),
        ws,
    )
    .expect("shapes match");
    Adjoint {
        input_cotangent,
        cross_spectrum,
    }
}

/// (x, dy, H full (n, D), Hf arbitrary (n/2+1, D)) of one random shape.
type Case = (
    Array3<f32>,
    Array3<f32>,
    Array2<Complex32>,
    Array2<Complex32>,
);

fn cases(
    batch: std::ops::RangeInclusive<usize>,
    n: impl Strategy<Value = usize>,
    cols: impl Strategy<Value = usize>,
) -> impl Strategy<Value = Case> {
    (batch, n, cols).prop_flat_map(|(b, n, d)| {
        (
            real3(b..=b, n..=n, d..=d),
            real3(b..=b, n..=n, d..=d),
            complex2(n, d),
            complex2(n / 2 + 1, d),
        )
    })
}

fn any_cols() -> impl Strategy<Value = usize> {
    prop_oneof![1usize..=5, 15usize..=40]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn filter_of_folded_h_is_the_real_part_of_the_full_filter(
        (x, _, full, _) in cases(1..=3, lengths(), any_cols()),
    ) {
        let n = x.len_of(Axis(1));
        let expected = ref_full_filter(x.view(), c32_to_c64(full.view()).view());
        let hf = fold_filter(full.view()).expect("n >= 1");
        let got = run_filter(&x, &hf, &mut FilterWorkspace::new());
        let err = max_diff_r(got.output.view(), expected.view());
        prop_assert!(err <= 2.0 * tol(n, max_abs_r(expected.view())), "n={n} err={err}");
        // The spectrum it keeps is rfft_ortho(x).
        let spectrum = ref_rfft(x.view(), FftNorm::Ortho);
        let err = max_diff_c(got.spectrum.view(), spectrum.view());
        prop_assert!(err <= tol(n, max_abs_c(spectrum.view())), "spectrum err={err}");
    }

    #[test]
    fn filter_is_irfft_of_the_product_for_any_half_filter(
        (x, _, _, hf) in cases(1..=3, lengths(), any_cols()),
        norm in norms(),
    ) {
        let (b, n, d) = x.dim();
        let plan = SeqRealFft::new(n).expect("n >= 1");
        let mut spectrum = Array3::zeros((b, n / 2 + 1, d));
        plan.forward(x.view(), spectrum.view_mut(), norm).expect("shapes match");
        spectrum *= &hf.view().insert_axis(Axis(0));
        let expected = ref_irfft(spectrum.view(), n, norm);
        let mut got = Array3::zeros((b, n, d));
        plan.filter(x.view(), hf.view(), got.view_mut(), None, &mut FilterWorkspace::new())
            .expect("shapes match");
        let err = max_diff_r(got.view(), expected.view());
        prop_assert!(err <= 2.0 * tol(n, max_abs_r(expected.view())), "n={n} err={err}");
    }

    #[test]
    fn adjoint_satisfies_the_inner_product_identity(
        (x, dy, _, hf) in cases(1..=3, lengths(), any_cols()),
    ) {
        // <filter(x), dy> = <x, filter_adjoint(dy)>
        let n = x.len_of(Axis(1));
        let mut ws = FilterWorkspace::new();
        let forward = run_filter(&x, &hf, &mut ws);
        let zero = Array2::zeros(hf.dim());
        let adjoint = run_adjoint(&dy, &forward.spectrum, &hf, zero, &mut ws);
        let lhs = dot(forward.output.view(), dy.view());
        let rhs = dot(x.view(), adjoint.input_cotangent.view());
        let scale = (x.len() as f64).sqrt() * 4.0;
        prop_assert!((lhs - rhs).abs() <= tol(n, scale), "lhs={lhs} rhs={rhs}");
        // And directly: the input cotangent is the filter with conj(Hf).
        let conj = run_filter(&dy, &hf.mapv(|c| c.conj()), &mut ws).output;
        let err = max_diff_r(adjoint.input_cotangent.view(), conj.mapv(f64::from).view());
        prop_assert!(err <= 1e-5, "err={err}");
    }

    #[test]
    fn cross_spectrum_is_the_gradient_of_the_full_filter(
        (x, dy, full, _) in cases(1..=3, 1usize..=24, 1usize..=3),
        start in complex2(1, 1),
    ) {
        // L(H) = Σ dy · Re(ifft(H ⊙ fft x)) is linear in H, so the central difference with
        // step 1 is its exact derivative: dL/dRe H[k,d] and dL/dIm H[k,d], in f64.
        let (_, n, d) = x.dim();
        let h64 = c32_to_c64(full.view());
        let loss = |h: &Array2<Complex64>| -> f64 {
            let y = ref_full_filter(x.view(), h.view());
            y.iter().zip(dy.iter()).map(|(a, &b)| a * f64::from(b)).sum()
        };
        let hf = fold_filter(full.view()).expect("n >= 1");
        let mut ws = FilterWorkspace::new();
        let forward = run_filter(&x, &hf, &mut ws);
        let offset = start[[0, 0]];
        let adjoint = run_adjoint(&dy, &forward.spectrum, &hf, Array2::from_elem((n / 2 + 1, d), offset), &mut ws);
        let cross = adjoint.cross_spectrum.mapv(|c| c - offset); // it accumulates
        for k in 0..n {
            for di in 0..d {
                let derivative = |step: Complex64| {
                    let (mut up, mut down) = (h64.clone(), h64.clone());
                    up[[k, di]] += step;
                    down[[k, di]] -= step;
                    (loss(&up) - loss(&down)) / 2.0
                };
                let expected = Complex64::new(
                    derivative(Complex64::new(1.0, 0.0)),
                    derivative(Complex64::new(0.0, 1.0)),
                );
                let c = if k <= n / 2 { cross[[k, di]] } else { cross[[n - k, di]].conj() };
                let got = Complex64::new(c.re.into(), c.im.into());
                prop_assert!((got - expected).norm() <= 1e-4 * (1.0 + expected.norm()),
                    "n={n} k={k} d={di} got={got} expected={expected}");
            }
        }
    }

    #[test]
    fn fold_keeps_the_first_half_of_a_hermitian_filter(
        (full, n) in (1usize..=64, 1usize..=4).prop_flat_map(|(n, d)| (complex2(n, d), Just(n))),
    ) {
        // Make H Hermitian: H[k] = conj(H[n-k]); folding then changes nothing.
        let hermitian = Array2::from_shape_fn(full.dim(), |(k, d)| {
            (full[[k, d]] + full[[(n - k) % n, d]].conj()) * 0.5
        });
        let half = fold_filter(hermitian.view()).expect("n >= 1");
        prop_assert_eq!(half.dim(), (n / 2 + 1, full.ncols()));
        for ((k, d), v) in half.indexed_iter() {
            prop_assert!((v - hermitian[[k, d]]).norm() <= 1e-6);
        }
    }
}

/// A signal and an output cotangent of shape `(b, n, d)`, small exact values.
fn signal_and_cotangent((b, n, d): (usize, usize, usize)) -> (Array3<f32>, Array3<f32>) {
    let x = Array3::from_shape_fn((b, n, d), |(i, t, j)| {
        ((i * 13 + t * 7 + j * 3) % 17) as f32 / 8.0 - 1.0
    });
    let dy = Array3::from_shape_fn((b, n, d), |(i, t, j)| {
        ((i * 5 + t * 11 + j) % 13) as f32 / 6.0 - 1.0
    });
    (x, dy)
}

/// A `(rows, d)` complex filter of small exact values.
fn filter_values(rows: usize, d: usize) -> Array2<Complex32> {
    Array2::from_shape_fn((rows, d), |(k, j)| {
        Complex32::new(
            ((k + j) % 5) as f32 * 0.3 - 0.5,
            ((k * j) % 7) as f32 * 0.2 - 0.6,
        )
    })
}

/// The filter of `x` (keeping its spectrum), then the adjoint of `dy` against that spectrum,
/// each on every pinned pool (see [`run_filter`], [`run_adjoint`]).
fn filter_and_adjoint(
    x: &Array3<f32>,
    dy: &Array3<f32>,
    hf: &Array2<Complex32>,
    ws: &mut FilterWorkspace,
) -> (Filtered, Adjoint) {
    let forward = run_filter(x, hf, ws);
    let cross_start = Array2::zeros(hf.raw_dim());
    let adjoint = run_adjoint(dy, &forward.spectrum, hf, cross_start, ws);
    (forward, adjoint)
}

/// Shapes large enough for several tasks; with 4 threads and 3 column tiles the adjoint
/// splits the batch into groups whose partial cross spectra are summed.
#[test]
fn parallel_split_with_batch_groups_matches_the_references() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .unwrap();
    let (b, n, d) = (8, 64, 40);
    let (x, dy) = signal_and_cotangent((b, n, d));
    let full = filter_values(n, d);
    let hf = fold_filter(full.view()).unwrap();
    let (forward, adjoint) =
        pool.install(|| filter_and_adjoint(&x, &dy, &hf, &mut FilterWorkspace::new()));
    let expected = ref_full_filter(x.view(), c32_to_c64(full.view()).view());
    let err = max_diff_r(forward.output.view(), expected.view());
    assert!(
        err <= tol(n, max_abs_r(expected.view())),
        "filter err={err}"
    );

    // Cross spectrum reference: Σ_b rfft_ortho(dy) ⊙ conj(rfft_ortho(x)), in f64.
    let dys = ref_rfft(dy.view(), FftNorm::Ortho);
    let xs = ref_rfft(x.view(), FftNorm::Ortho);
    let cross = (&dys * &xs.mapv(|c| c.conj())).sum_axis(Axis(0));
    let err = max_diff_c(adjoint.cross_spectrum.view(), cross.view());
    assert!(
        err <= 1e-5 * (1.0 + max_abs_c(cross.view())) * 10.0,
        "cross err={err}"
    );

    let expected_dx = ref_full_filter(dy.view(), c32_to_c64(full.view()).mapv(|c| c.conj()).view());
    let err = max_diff_r(adjoint.input_cotangent.view(), expected_dx.view());
    assert!(
        err <= tol(n, max_abs_r(expected_dx.view())),
        "input cotangent err={err}"
    );
}

#[test]
fn one_workspace_serves_many_shapes() {
    let mut shared = FilterWorkspace::new();
    for (b, n, d) in [(2, 300, 40), (1, 5, 3), (3, 128, 17), (2, 300, 40)] {
        let x = Array3::from_shape_fn((b, n, d), |(i, t, j)| {
            ((i + 3 * t + 5 * j) % 9) as f32 - 4.0
        });
        let hf = Array2::from_shape_fn((n / 2 + 1, d), |(k, j)| {
            Complex32::new(1.0 / (1 + k + j) as f32, 0.25)
        });
        let with_shared = run_filter(&x, &hf, &mut shared);
        let with_fresh = run_filter(&x, &hf, &mut FilterWorkspace::new());
        assert_eq!(with_shared.output, with_fresh.output);
        assert_eq!(with_shared.spectrum, with_fresh.spectrum);
    }
}

/// `irfft(G ⊙ rfft(x))` (backward norm) through the plain transforms, in f32.
fn filtered_by_transforms(x: &Array3<f32>, g: &Array2<Complex32>) -> Array3<f32> {
    let (b, n, d) = x.dim();
    let plan = SeqRealFft::new(n).expect("n >= 1");
    let mut spectrum = Array3::zeros((b, n / 2 + 1, d));
    plan.forward(x.view(), spectrum.view_mut(), FftNorm::Backward)
        .expect("shapes match");
    spectrum *= &g.view().insert_axis(Axis(0));
    let mut y = Array3::zeros((b, n, d));
    plan.inverse(spectrum.view(), y.view_mut(), FftNorm::Backward)
        .expect("shapes match");
    y
}

/// From n = 4096 the lane transforms filter a matrix wider than 16 columns in gathered
/// tiles (whole tiles and a partial last one here); on every pool (the slice path and the
/// view path) the filter, its kept spectrum and its adjoint agree with the plain
/// transforms.
#[test]
fn long_signals_in_gathered_tiles_agree_with_the_plain_transforms() {
    let (b, n, d) = (2, 4096, 37);
    let (x, dy) = signal_and_cotangent((b, n, d));
    let hf = filter_values(n / 2 + 1, d);
    let (forward, adjoint) = filter_and_adjoint(&x, &dy, &hf, &mut FilterWorkspace::new());
    let expected = filtered_by_transforms(&x, &hf);
    let close = |a: &Array3<f32>, e: &Array3<f32>| {
        let e64 = e.mapv(f64::from);
        (
            max_diff_r(a.view(), e64.view()),
            tol(n, max_abs_r(e64.view())),
        )
    };
    let (err, bound) = close(&forward.output, &expected);
    assert!(err <= bound, "filter err={err} > {bound}");

    let plan = SeqRealFft::new(n).expect("n >= 1");
    let mut ortho = Array3::zeros((b, n / 2 + 1, d));
    plan.forward(x.view(), ortho.view_mut(), FftNorm::Ortho)
        .expect("shapes match");
    let ortho64 = c32_to_c64(ortho.view());
    let err = max_diff_c(forward.spectrum.view(), ortho64.view());
    assert!(
        err <= 1e-5 * (1.0 + max_abs_c(ortho64.view())) * 10.0,
        "kept spectrum err={err}"
    );

    let (err, bound) = close(
        &adjoint.input_cotangent,
        &filtered_by_transforms(&dy, &hf.mapv(|c| c.conj())),
    );
    assert!(err <= bound, "input cotangent err={err} > {bound}");
    let mut dys = Array3::zeros((b, n / 2 + 1, d));
    plan.forward(dy.view(), dys.view_mut(), FftNorm::Ortho)
        .expect("shapes match");
    let cross = (c32_to_c64(dys.view()) * ortho64.mapv(|c| c.conj())).sum_axis(Axis(0));
    let err = max_diff_c(adjoint.cross_spectrum.view(), cross.view());
    assert!(
        err <= 1e-5 * (1.0 + max_abs_c(cross.view())) * 10.0,
        "cross spectrum err={err}"
    );
}

//! `SeqRealFft::forward` / `inverse` against naive f64 DFTs and the classic DFT identities.

use crate::common::*;
use ndarray::{Array3, Axis, s};
use num_complex::{Complex32, Complex64};
use proptest::prelude::*;
use spectrans_fft::{FftNorm, SeqComplexFft, SeqRealFft};

/// `rfft` along axis 1, run on every pinned pool (see [`same_on_every_pool`]).
fn rfft(x: &Array3<f32>, norm: FftNorm) -> Array3<Complex32> {
    let (b, n, d) = x.dim();
    let plan = SeqRealFft::new(n).expect("n >= 1");
    let scale = 1.0 + x.iter().map(|v| v.abs() as f64).sum::<f64>();
    same_on_every_pool(
        || {
            let mut out = Array3::zeros((b, n / 2 + 1, d));
            plan.forward(x.view(), out.view_mut(), norm)
                .expect("shapes match");
            out
        },
        |a, b| max_diff_c(a.view(), c32_to_c64(b.view()).view()),
        1e-6 * scale,
    )
}

/// `irfft` along axis 1, run on every pinned pool (see [`same_on_every_pool`]).
fn irfft(x: &Array3<Complex32>, n: usize, norm: FftNorm) -> Array3<f32> {
    let (b, _, d) = x.dim();
    let plan = SeqRealFft::new(n).expect("n >= 1");
    let scale = 1.0 + x.iter().map(|v| v.norm() as f64).sum::<f64>();
    same_on_every_pool(
        || {
            let mut out = Array3::zeros((b, n, d));
            plan.inverse(x.view(), out.view_mut(), norm)
                .expect("shapes match");
            out
        },
        |a, b| max_diff_r(a.view(), b.mapv(f64::from).view()),
        1e-6 * scale,
    )
}

/// Arrays from tiny up to ones that are split into several column tiles and tasks.
fn signals() -> impl Strategy<Value = Array3<f32>> {
    (1usize..=3, lengths(), prop_oneof![1usize..=5, 15usize..=40]).prop_flat_map(|(b, n, d)| {
        prop::collection::vec(-1.0f32..1.0, b * n * d)
            .prop_map(move |v| Array3::from_shape_vec((b, n, d), v).expect("length matches"))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn rfft_matches_naive_dft(x in signals(), norm in norms()) {
        let n = x.len_of(Axis(1));
        let expected = ref_rfft(x.view(), norm);
        let got = rfft(&x, norm);
        let err = max_diff_c(got.view(), expected.view());
        prop_assert!(err <= tol(n, max_abs_c(expected.view())), "n={n} err={err}");
    }

    #[test]
    fn irfft_matches_naive_dft(
        (spectrum, n) in (1usize..=3, lengths(), prop_oneof![1usize..=5, 15usize..=40])
            .prop_flat_map(|(b, n, d)| (complex3(b, n / 2 + 1, d), Just(n))),
        norm in norms(),
    ) {
        let expected = ref_irfft(spectrum.view(), n, norm);
        let got = irfft(&spectrum, n, norm);
        let err = max_diff_r(got.view(), expected.view());
        let magnitude = (n as f64) * norm_scale(norm, n, true);
        prop_assert!(err <= tol(n, magnitude), "n={n} err={err}");
    }

    #[test]
    fn irfft_inverts_rfft(x in signals(), norm in norms()) {
        let n = x.len_of(Axis(1));
        let back = irfft(&rfft(&x, norm), n, norm);
        let err = max_diff_r(back.view(), x.mapv(f64::from).view());
        prop_assert!(err <= tol(n, 1.0), "n={n} err={err}");
    }

    #[test]
    fn ortho_rfft_keeps_energy(x in signals()) {
        // Parseval: Σ x² = |X0|² + 2 Σ_{0<k<n/2} |Xk|² + |X_{n/2}|² (even n).
        let n = x.len_of(Axis(1));
        let spectrum = rfft(&x, FftNorm::Ortho);
        let time: f64 = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
        let freq: f64 = spectrum
            .indexed_iter()
            .map(|((_, k, _), c)| {
                let weight = if k == 0 || 2 * k == n { 1.0 } else { 2.0 };
                weight * f64::from(c.norm_sqr())
            })
            .sum();
        prop_assert!((time - freq).abs() <= 1e-4 * (1.0 + time), "time={time} freq={freq}");
    }

    #[test]
    fn rfft_is_linear(
        (x, y) in (1usize..=3, lengths(), 1usize..=6).prop_flat_map(|(b, n, d)| {
            (real3(b..=b, n..=n, d..=d), real3(b..=b, n..=n, d..=d))
        }),
        a in -2.0f32..2.0,
        c in -2.0f32..2.0,
        norm in norms(),
    ) {
        let n = x.len_of(Axis(1));
        let combined = rfft(&(&x * a + &y * c), norm);
        let expected = c32_to_c64(rfft(&x, norm).view()) * f64::from(a)
            + c32_to_c64(rfft(&y, norm).view()) * f64::from(c);
        let err = max_diff_c(combined.view(), expected.view());
        prop_assert!(err <= 4.0 * tol(n, max_abs_c(expected.view())), "err={err}");
    }

    #[test]
    fn shift_multiplies_by_a_phase(x in signals(), shift in 0usize..300) {
        // rfft(roll(x, s))[k] = rfft(x)[k] e^{-2πi k s / n}
        let n = x.len_of(Axis(1));
        let shift = shift % n;
        let mut rolled = x.clone();
        for t in 0..n {
            rolled.slice_mut(s![.., (t + shift) % n, ..]).assign(&x.slice(s![.., t, ..]));
        }
        let base = c32_to_c64(rfft(&x, FftNorm::Backward).view());
        let expected = Array3::from_shape_fn(base.dim(), |(b, k, d)| {
            let angle = -2.0 * std::f64::consts::PI * ((k * shift) % n) as f64 / n as f64;
            base[[b, k, d]] * Complex64::new(angle.cos(), angle.sin())
        });
        let got = rfft(&rolled, FftNorm::Backward);
        let err = max_diff_c(got.view(), expected.view());
        prop_assert!(err <= 2.0 * tol(n, max_abs_c(expected.view())), "n={n} err={err}");
    }

    #[test]
    fn rfft_is_the_first_half_of_the_complex_fft(x in signals(), norm in norms()) {
        let (b, n, d) = x.dim();
        let plan = SeqComplexFft::new(n).expect("n >= 1");
        let mut full = Array3::zeros((b, n, d));
        plan.forward(x.mapv(|v| Complex32::new(v, 0.0)).view(), full.view_mut(), norm)
            .expect("shapes match");
        let half = c32_to_c64(full.slice(s![.., ..=n / 2, ..]));
        let err = max_diff_c(rfft(&x, norm).view(), half.view());
        prop_assert!(err <= tol(n, max_abs_c(half.view())), "n={n} err={err}");
    }

    #[test]
    fn strided_and_permuted_views_give_the_same_result(
        x in (1usize..=3, lengths(), 1usize..=40).prop_flat_map(|(b, n, d)| real3(b..=b, n..=n, d..=d)),
        norm in norms(),
    ) {
        let (b, n, d) = x.dim();
        let plan = SeqRealFft::new(n).expect("n >= 1");
        let expected = rfft(&x, norm);
        // Input stored as (D, B, n), seen as (B, n, D); output every other column of a wider array.
        let stored = x.view().permuted_axes([2, 0, 1]).to_owned();
        let input = stored.view().permuted_axes([1, 2, 0]);
        let mut wide = Array3::<Complex32>::zeros((b, n / 2 + 1, 2 * d));
        plan.forward(input, wide.slice_mut(s![.., .., ..;2]), norm).expect("shapes match");
        prop_assert_eq!(wide.slice(s![.., .., ..;2]), expected.view());

        // And back, into a reversed-axis output view.
        let mut back_store = Array3::<f32>::zeros((b, n, d));
        let spectrum_t = expected.view().permuted_axes([2, 1, 0]).to_owned();
        plan.inverse(spectrum_t.view().permuted_axes([2, 1, 0]), back_store.slice_mut(s![.., ..;-1, ..]), norm)
            .expect("shapes match");
        let mut back_plain = Array3::<f32>::zeros((b, n, d));
        plan.inverse(expected.view(), back_plain.view_mut(), norm).expect("shapes match");
        prop_assert_eq!(back_store.slice(s![.., ..;-1, ..]), back_plain.view());
    }
}

#[test]
fn length_one_is_the_identity_up_to_scale() {
    let x = Array3::from_shape_vec((2, 1, 3), vec![1.0, -2.0, 3.0, 0.5, 0.0, -1.5]).unwrap();
    for norm in [FftNorm::Backward, FftNorm::Forward, FftNorm::Ortho] {
        let spectrum = rfft(&x, norm);
        assert_eq!(spectrum.dim(), (2, 1, 3));
        for (c, &v) in spectrum.iter().zip(x.iter()) {
            assert_eq!(*c, Complex32::new(v, 0.0));
        }
        assert_eq!(irfft(&spectrum, 1, norm), x);
    }
}

#[test]
fn empty_batch_and_columns_are_accepted() {
    let plan = SeqRealFft::new(8).unwrap();
    let x = Array3::<f32>::zeros((0, 8, 4));
    let mut y = Array3::<Complex32>::zeros((0, 5, 4));
    plan.forward(x.view(), y.view_mut(), FftNorm::Ortho)
        .unwrap();
    let x = Array3::<f32>::zeros((2, 8, 0));
    let mut y = Array3::<Complex32>::zeros((2, 5, 0));
    plan.forward(x.view(), y.view_mut(), FftNorm::Ortho)
        .unwrap();
}

#[test]
fn large_batches_use_every_tile() {
    // 4 x 96 x 100 = 38400 elements: several batch tasks and 7 column tiles (last one partial).
    let x = Array3::from_shape_fn((4, 96, 100), |(b, t, d)| {
        ((b * 7 + t * 3 + d * 5) % 11) as f32 - 5.0
    });
    let expected = ref_rfft(x.view(), FftNorm::Ortho);
    let got = rfft(&x, FftNorm::Ortho);
    let err = max_diff_c(got.view(), expected.view());
    assert!(err <= tol(96, max_abs_c(expected.view())), "err={err}");
}

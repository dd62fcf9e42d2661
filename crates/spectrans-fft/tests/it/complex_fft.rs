//! `SeqComplexFft` against the naive f64 DFT.

use crate::common::*;
use ndarray::Array3;
use num_complex::Complex32;
use proptest::prelude::*;
use spectrans_fft::SeqComplexFft;

fn inputs() -> impl Strategy<Value = Array3<Complex32>> {
    (1usize..=3, lengths(), prop_oneof![1usize..=5, 15usize..=40])
        .prop_flat_map(|(b, n, d)| complex3(b, n, d))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn forward_and_inverse_match_naive_dft(x in inputs(), norm in norms(), inverse in any::<bool>()) {
        let (b, n, d) = x.dim();
        let plan = SeqComplexFft::new(n).expect("n >= 1");
        let mut got = Array3::zeros((b, n, d));
        if inverse {
            plan.inverse(x.view(), got.view_mut(), norm).expect("shapes match");
        } else {
            plan.forward(x.view(), got.view_mut(), norm).expect("shapes match");
        }
        let scale = norm_scale(norm, n, inverse);
        let expected = along_axis1(&c32_to_c64(x.view()), n, |v| {
            naive_dft(v, inverse).into_iter().map(|c| c * scale).collect()
        });
        let err = max_diff_c(got.view(), expected.view());
        prop_assert!(err <= tol(n, max_abs_c(expected.view())), "n={n} err={err}");
    }

    #[test]
    fn inverse_undoes_forward(x in inputs(), norm in norms()) {
        let (b, n, d) = x.dim();
        let plan = SeqComplexFft::new(n).expect("n >= 1");
        let mut spectrum = Array3::zeros((b, n, d));
        plan.forward(x.view(), spectrum.view_mut(), norm).expect("shapes match");
        let mut back = Array3::zeros((b, n, d));
        plan.inverse(spectrum.view(), back.view_mut(), norm).expect("shapes match");
        let err = max_diff_c(back.view(), c32_to_c64(x.view()).view());
        prop_assert!(err <= tol(n, 1.5), "n={n} err={err}");
    }
}

#[test]
fn plan_reports_its_length() {
    assert_eq!(SeqComplexFft::new(7).unwrap().len(), 7);
}

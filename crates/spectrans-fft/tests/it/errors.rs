//! Every caller error returns the right `FftError` variant, naming the argument.

use ndarray::{Array2, Array3};
use num_complex::Complex32;
use spectrans_fft::{
    FftError, FftNorm, FilterWorkspace, SeqComplexFft, SeqRealFft, fold_filter, real_plan,
};

fn assert_mismatch<T: std::fmt::Debug>(
    result: Result<T, FftError>,
    argument: &str,
    expected: &[usize],
    found: &[usize],
) {
    match result {
        Err(FftError::ShapeMismatch {
            argument: a,
            expected: e,
            found: f,
        }) => {
            assert_eq!((a, e.as_slice(), f.as_slice()), (argument, expected, found));
        }
        other => panic!("expected a shape mismatch on {argument}, got {other:?}"),
    }
}

#[test]
fn zero_length_is_rejected_everywhere() {
    assert!(matches!(SeqRealFft::new(0), Err(FftError::ZeroLength)));
    assert!(matches!(SeqComplexFft::new(0), Err(FftError::ZeroLength)));
    assert!(matches!(real_plan(0), Err(FftError::ZeroLength)));
    let empty = Array2::<Complex32>::zeros((0, 3));
    assert!(matches!(
        fold_filter(empty.view()),
        Err(FftError::ZeroLength)
    ));
}

#[test]
fn real_forward_and_inverse_check_both_shapes() {
    let plan = SeqRealFft::new(8).unwrap();
    let mut spectrum = Array3::<Complex32>::zeros((2, 5, 3));
    let wrong_len = Array3::<f32>::zeros((2, 7, 3));
    assert_mismatch(
        plan.forward(wrong_len.view(), spectrum.view_mut(), FftNorm::Ortho),
        "input",
        &[2, 8, 3],
        &[2, 7, 3],
    );
    let x = Array3::<f32>::zeros((2, 8, 3));
    let mut wrong_out = Array3::<Complex32>::zeros((2, 8, 3));
    assert_mismatch(
        plan.forward(x.view(), wrong_out.view_mut(), FftNorm::Ortho),
        "output",
        &[2, 5, 3],
        &[2, 8, 3],
    );

    let mut y = Array3::<f32>::zeros((2, 8, 3));
    assert_mismatch(
        plan.inverse(wrong_out.view(), y.view_mut(), FftNorm::Ortho),
        "input",
        &[2, 5, 3],
        &[2, 8, 3],
    );
    let mut wrong_y = Array3::<f32>::zeros((2, 8, 4));
    assert_mismatch(
        plan.inverse(spectrum.view(), wrong_y.view_mut(), FftNorm::Ortho),
        "output",
        &[2, 8, 3],
        &[2, 8, 4],
    );
}

#[test]
fn complex_transforms_check_both_shapes() {
    let plan = SeqComplexFft::new(6).unwrap();
    let x = Array3::<Complex32>::zeros((1, 5, 2));
    let mut y = Array3::<Complex32>::zeros((1, 6, 2));
    assert_mismatch(
        plan.forward(x.view(), y.view_mut(), FftNorm::Backward),
        "input",
        &[1, 6, 2],
        &[1, 5, 2],
    );
    let x = Array3::<Complex32>::zeros((1, 6, 2));
    let mut y = Array3::<Complex32>::zeros((2, 6, 2));
    assert_mismatch(
        plan.inverse(x.view(), y.view_mut(), FftNorm::Backward),
        "output",
        &[1, 6, 2],
        &[2, 6, 2],
    );
}

#[test]
fn filter_checks_every_argument() {
    let plan = SeqRealFft::new(6).unwrap();
    let mut ws = FilterWorkspace::new();
    let x = Array3::<f32>::zeros((2, 6, 3));
    let hf = Array2::<Complex32>::zeros((4, 3));
    let mut y = Array3::<f32>::zeros((2, 6, 3));

    let bad_x = Array3::<f32>::zeros((2, 5, 3));
    assert_mismatch(
        plan.filter(bad_x.view(), hf.view(), y.view_mut(), None, &mut ws),
        "input",
        &[2, 6, 3],
        &[2, 5, 3],
    );
    let bad_hf = Array2::<Complex32>::zeros((6, 3));
    assert_mismatch(
        plan.filter(x.view(), bad_hf.view(), y.view_mut(), None, &mut ws),
        "filter_half",
        &[4, 3],
        &[6, 3],
    );
    let mut bad_y = Array3::<f32>::zeros((1, 6, 3));
    assert_mismatch(
        plan.filter(x.view(), hf.view(), bad_y.view_mut(), None, &mut ws),
        "output",
        &[2, 6, 3],
        &[1, 6, 3],
    );
    let mut bad_spectrum = Array3::<Complex32>::zeros((2, 6, 3));
    assert_mismatch(
        plan.filter(
            x.view(),
            hf.view(),
            y.view_mut(),
            Some(bad_spectrum.view_mut()),
            &mut ws,
        ),
        "spectrum",
        &[2, 4, 3],
        &[2, 6, 3],
    );
}

#[test]
fn filter_adjoint_checks_every_argument() {
    let plan = SeqRealFft::new(6).unwrap();
    let mut ws = FilterWorkspace::new();
    let dy = Array3::<f32>::zeros((2, 6, 3));
    let spectrum = Array3::<Complex32>::zeros((2, 4, 3));
    let hf = Array2::<Complex32>::zeros((4, 3));
    let mut dx = Array3::<f32>::zeros((2, 6, 3));
    let mut cross = Array2::<Complex32>::zeros((4, 3));

    let bad_dy = Array3::<f32>::zeros((2, 4, 3));
    assert_mismatch(
        plan.filter_adjoint(
            bad_dy.view(),
            spectrum.view(),
            hf.view(),
            dx.view_mut(),
            cross.view_mut(),
            &mut ws,
        ),
        "output_cotangent",
        &[2, 6, 3],
        &[2, 4, 3],
    );
    let bad_spectrum = Array3::<Complex32>::zeros((1, 4, 3));
    assert_mismatch(
        plan.filter_adjoint(
            dy.view(),
            bad_spectrum.view(),
            hf.view(),
            dx.view_mut(),
            cross.view_mut(),
            &mut ws,
        ),
        "spectrum",
        &[2, 4, 3],
        &[1, 4, 3],
    );
    let bad_hf = Array2::<Complex32>::zeros((4, 2));
    assert_mismatch(
        plan.filter_adjoint(
            dy.view(),
            spectrum.view(),
            bad_hf.view(),
            dx.view_mut(),
            cross.view_mut(),
            &mut ws,
        ),
        "filter_half",
        &[4, 3],
        &[4, 2],
    );
    let mut bad_dx = Array3::<f32>::zeros((2, 6, 2));
    assert_mismatch(
        plan.filter_adjoint(
            dy.view(),
            spectrum.view(),
            hf.view(),
            bad_dx.view_mut(),
            cross.view_mut(),
            &mut ws,
        ),
        "input_cotangent",
        &[2, 6, 3],
        &[2, 6, 2],
    );
    let mut bad_cross = Array2::<Complex32>::zeros((6, 3));
    assert_mismatch(
        plan.filter_adjoint(
            dy.view(),
            spectrum.view(),
            hf.view(),
            dx.view_mut(),
            bad_cross.view_mut(),
            &mut ws,
        ),
        "cross_spectrum",
        &[4, 3],
        &[6, 3],
    );
}

#[test]
fn norms_parse_and_print_their_lower_case_names() {
    for norm in [FftNorm::Backward, FftNorm::Forward, FftNorm::Ortho] {
        assert_eq!(norm.to_string().parse::<FftNorm>().unwrap(), norm);
    }
    assert_eq!(FftNorm::Ortho.to_string(), "ortho");
    match "Ortho".parse::<FftNorm>() {
        Err(spectrans_fft::UnknownVariant { value, what, .. }) => {
            assert_eq!((value.as_str(), what), ("Ortho", "fft_norm"))
        }
        other => panic!("expected UnknownVariant, got {other:?}"),
    }
    let message = "none".parse::<FftNorm>().unwrap_err().to_string();
    assert!(
        message.contains("`none`") && message.contains("ortho"),
        "{message}"
    );
}

#[test]
fn shape_mismatch_message_names_argument_and_shapes() {
    let plan = SeqRealFft::new(4).unwrap();
    let x = Array3::<f32>::zeros((1, 3, 2));
    let mut y = Array3::<Complex32>::zeros((1, 3, 2));
    let message = plan
        .forward(x.view(), y.view_mut(), FftNorm::Ortho)
        .unwrap_err()
        .to_string();
    assert_eq!(message, "input: expected shape [1, 4, 2], found [1, 3, 2]");
}

#[test]
fn plans_report_lengths_and_are_shared() {
    let plan = real_plan(9).unwrap();
    assert_eq!((plan.len(), plan.spectrum_len()), (9, 5));
    assert!(std::sync::Arc::ptr_eq(&plan, &real_plan(9).unwrap()));
    assert_eq!(SeqRealFft::new(10).unwrap().spectrum_len(), 6);
    fn shareable<T: Send + Sync>() {}
    shareable::<SeqRealFft>();
    shareable::<SeqComplexFft>();
}

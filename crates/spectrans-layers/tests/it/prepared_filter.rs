//! The eval forward keeps the folded filter per input length ([`GlobalFilter`]): a kept filter
//! gives the same bits as a fresh one, and every way of changing the filter drops it.

use ndarray::{Array2, Array3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use spectrans_fft::FftNorm;
use spectrans_layers::{FilterActivation, GlobalFilter, Parameters};

fn layer(act: FilterActivation) -> GlobalFilter {
    GlobalFilter::new(
        8,
        16,
        act,
        FftNorm::Ortho,
        0.5,
        0.0,
        &mut ChaCha8Rng::seed_from_u64(3),
    )
    .unwrap()
}

fn input(n: usize) -> Array3<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(n as u64);
    Array3::from_shape_simple_fn((2, n, 8), || rng.gen_range(-1.0f32..1.0))
}

fn bits(a: &Array3<f32>) -> Vec<u32> {
    a.iter().map(|v| v.to_bits()).collect()
}

/// The answer of a clone: a clone keeps no filter, so it computes its own.
fn fresh(gf: &GlobalFilter, x: &Array3<f32>) -> Vec<u32> {
    bits(&gf.clone().forward(x.view()).unwrap())
}

#[test]
fn a_kept_filter_gives_the_bits_of_a_fresh_one() {
    let gf = layer(FilterActivation::Sigmoid);
    assert!(gf.prepared_lengths().is_empty());
    for n in [16, 7, 16, 7] {
        let x = input(n);
        assert_eq!(
            bits(&gf.forward(x.view()).unwrap()),
            fresh(&gf, &x),
            "n = {n}"
        );
    }
    assert_eq!(gf.prepared_lengths(), vec![16, 7]);
    assert!(gf.clone().prepared_lengths().is_empty());
}

#[test]
fn the_last_four_lengths_are_kept() {
    let gf = layer(FilterActivation::Identity);
    for n in [3, 5, 9, 16, 20, 5] {
        gf.forward(input(n).view()).unwrap();
    }
    assert_eq!(gf.prepared_lengths(), vec![9, 16, 20, 5]);
}

#[test]
fn every_change_of_the_filter_drops_what_was_kept() {
    let x = input(12);
    let mut gf = layer(FilterActivation::Sigmoid);
    let before = bits(&gf.forward(x.view()).unwrap());

    gf.filter_real_mut()[[0, 0]] += 1.0;
    assert!(gf.prepared_lengths().is_empty());
    let after = bits(&gf.forward(x.view()).unwrap());
    assert_ne!(after, before);
    assert_eq!(after, fresh(&gf, &x));

    *gf.filter_imag_mut() = Array2::from_elem((16, 8), 0.25);
    assert_eq!(bits(&gf.forward(x.view()).unwrap()), fresh(&gf, &x));

    gf.visit_mut("", &mut |_, mut t| t.mapv_inplace(|v| v * 0.5));
    assert!(gf.prepared_lengths().is_empty());
    assert_eq!(bits(&gf.forward(x.view()).unwrap()), fresh(&gf, &x));

    // The activation is a public field: a filter kept for another activation is not used.
    gf.activation = FilterActivation::Tanh;
    let tanh = bits(&gf.forward(x.view()).unwrap());
    assert_eq!(tanh, fresh(&gf, &x));
    gf.activation = FilterActivation::Sigmoid;
    assert_eq!(bits(&gf.forward(x.view()).unwrap()), fresh(&gf, &x));
    assert_ne!(tanh, fresh(&gf, &x));
}

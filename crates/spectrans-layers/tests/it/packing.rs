//! A packed Linear ([`Linear::pack`]) computes what the plain one does, and no way of changing
//! its weight leaves a stale packed copy behind.

use ndarray::{Array2, Array3};
use rand::SeedableRng;
use spectrans_layers::{Activation, FeedForward, Linear, Parameters, linalg, set_parameter};

fn rng() -> rand_chacha::ChaCha8Rng {
    rand_chacha::ChaCha8Rng::seed_from_u64(7)
}

fn input(rows: usize, cols: usize) -> Array2<f32> {
    Array2::from_shape_fn((rows, cols), |(i, j)| {
        ((i * 31 + j * 7) as f32 * 0.013).sin()
    })
}

#[test]
fn packing_changes_no_bits_of_the_forward() {
    let mut lin = Linear::new(300, 37, &mut rng());
    let x = input(45, 300);
    let plain = lin.forward(x.view()).unwrap();
    lin.pack();
    assert_eq!(lin.is_packed(), linalg::packs_f32());
    assert_eq!(lin.forward(x.view()).unwrap(), plain);
    assert_eq!((lin.out_features(), lin.in_features()), (37, 300));
}

#[test]
fn a_packed_weight_reads_back_unchanged() {
    let mut lin = Linear::new(20, 9, &mut rng());
    let weight = lin.weight().into_owned();
    lin.pack();
    assert_eq!(*lin.weight(), weight);
    let mut names = Vec::new();
    lin.visit("fc.", &mut |name, t| {
        names.push(name.to_string());
        if name == "fc.weight" {
            assert_eq!(t, weight.view().into_dyn());
        }
    });
    assert_eq!(names, ["fc.weight", "fc.bias"]);
}

#[test]
fn every_edit_of_a_packed_weight_is_seen_by_the_next_forward() {
    let x = input(8, 16);
    let fresh = || {
        let mut lin = Linear::new(16, 4, &mut rng());
        lin.pack();
        lin
    };
    let doubled = |lin: &Linear| {
        Linear::from_parts(lin.weight().into_owned() * 2.0, lin.bias.clone())
            .forward(x.view())
            .unwrap()
    };

    let mut lin = fresh();
    let want = doubled(&lin);
    *lin.weight_mut() *= 2.0;
    assert!(!lin.is_packed());
    assert_eq!(lin.forward(x.view()).unwrap(), want);

    let mut lin = fresh();
    let want = doubled(&lin);
    lin.visit_mut("", &mut |name, mut t| {
        if name == "weight" {
            t *= 2.0;
        }
    });
    assert_eq!(lin.forward(x.view()).unwrap(), want);

    let mut lin = fresh();
    let want = doubled(&lin);
    let w2 = lin.weight().into_owned() * 2.0;
    set_parameter(&mut lin, "", "weight", w2.view().into_dyn()).unwrap();
    assert_eq!(lin.forward(x.view()).unwrap(), want);
}

#[test]
fn a_packed_feed_forward_gives_the_bits_of_the_plain_one() {
    let mut ffn = FeedForward::new(24, 96, Activation::Gelu, 0.0, &mut rng()).unwrap();
    let x = Array3::from_shape_fn((2, 13, 24), |(b, t, d)| {
        ((b * 5 + t * 3 + d) as f32 * 0.1).cos()
    });
    let plain = ffn.forward(x.view()).unwrap();
    ffn.fc1.pack();
    ffn.fc2.pack();
    assert_eq!(ffn.forward(x.view()).unwrap(), plain);
}

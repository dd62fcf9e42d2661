//! Training arrays handed from one step to the next ([`spectrans_layers::reuse`]): the forward
//! overwrites every element of the arrays it takes, so arrays full of NaN give the same bits
//! as fresh zeroed ones.

use ndarray::Array3;
use rand::SeedableRng;
use spectrans_layers::{
    Activation, BlockOptions, GfnetBlock, GfnetBlockGrads, Parameters, TrainContext, reuse,
};

/// The block's output, input gradient and every parameter gradient, as bits.
fn step_bits(block: &GfnetBlock, x: &Array3<f32>) -> Vec<u32> {
    let (y, cache) = block
        .forward_train(x.view(), &mut TrainContext::new(5, true))
        .unwrap();
    let dy = y.mapv(|v| (v * 3.0).sin());
    let mut grads = GfnetBlockGrads::zeros_like(block);
    let dx = block.backward(&cache, dy.view(), &mut grads).unwrap();
    let mut arrays = Vec::new();
    cache.into_arrays(&mut arrays);
    assert!(!arrays.is_empty(), "the cache gives its arrays back");
    let mut bits: Vec<u32> = y.iter().chain(dx.iter()).map(|v| v.to_bits()).collect();
    grads.visit("", &mut |_, g| bits.extend(g.iter().map(|v| v.to_bits())));
    bits
}

/// Blocked FFN (no dropout, 400 rows: several row blocks) and unblocked (dropout), GELU and
/// ReLU (their act' sweeps differ).
#[test]
fn nan_filled_arrays_from_the_step_before_give_the_same_bits() {
    let (b, n, d) = (4, 100, 16);
    for (activation, dropout) in [
        (Activation::Gelu, 0.0),
        (Activation::Relu, 0.0),
        (Activation::Gelu, 0.2),
    ] {
        let mut options = BlockOptions::new(d, n);
        options.ffn_activation = activation;
        options.dropout = dropout;
        options.mixing_dropout = dropout;
        options.ffn_dropout = dropout;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let block = GfnetBlock::new(options.clone(), &mut rng).unwrap();
        let x = Array3::from_shape_fn((b, n, d), |(i, t, c)| {
            ((i * 31 + t * 7 + c) as f32 * 0.013).sin()
        });
        reuse::release();
        let fresh = step_bits(&block, &x);
        let (rows, f) = (b * n, options.ffn_hidden_dim);
        let nan = |len: usize| vec![f32::NAN; len];
        reuse::hand_over(
            [
                rows * f,
                rows * f,
                rows * d,
                rows * d,
                rows * d,
                rows * d,
                rows * d,
            ]
            .map(nan)
            .to_vec(),
        );
        assert_eq!(
            step_bits(&block, &x),
            fresh,
            "{activation:?}, dropout {dropout}"
        );
    }
    reuse::release();
}

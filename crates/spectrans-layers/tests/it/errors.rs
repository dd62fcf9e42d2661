//! Caller mistakes give the right LayerError variant, never a panic.

use crate::common::rng;
use ndarray::{Array1, Array2, Array3, array};
use spectrans_layers::*;

fn is_shape<T: std::fmt::Debug>(r: Result<T, LayerError>) -> bool {
    matches!(r, Err(LayerError::Shape { .. }))
}

#[test]
fn wrong_hidden_width_is_a_shape_error() {
    let mut r = rng(0);
    let x = Array3::<f32>::zeros((2, 4, 5));
    let gf = GlobalFilter::new(
        4,
        4,
        FilterActivation::Sigmoid,
        FftNorm::Ortho,
        0.02,
        0.0,
        &mut r,
    )
    .unwrap();
    assert!(is_shape(gf.forward(x.view())));
    assert!(is_shape(LayerNorm::new(4, 1e-5).forward(x.view())));
    assert!(is_shape(
        FeedForward::new(4, 8, Activation::Gelu, 0.0, &mut r)
            .unwrap()
            .forward(x.view())
    ));
    assert!(is_shape(
        Linear::new(4, 3, &mut r).forward(Array2::zeros((3, 5)).view())
    ));
    assert!(is_shape(
        PositionalEncoding::sinusoidal(8, 4, 0.0)
            .unwrap()
            .forward(x.view())
    ));
    assert!(is_shape(
        PositionalEncoding::rotary(4).unwrap().forward(x.view())
    ));
    let block = GfnetBlock::new(BlockOptions::new(4, 4), &mut r).unwrap();
    assert!(is_shape(block.forward(x.view())));
    // Empty sequence for the filter.
    assert!(is_shape(gf.forward(Array3::zeros((1, 0, 4)).view())));
}

#[test]
fn wrong_gradient_shapes_are_shape_errors() {
    let mut r = rng(1);
    let mut ctx = TrainContext::new(0, false);
    let x = Array3::<f32>::zeros((2, 3, 4));
    let bad = Array3::<f32>::zeros((2, 4, 4));
    let block = GfnetBlock::new(BlockOptions::new(4, 3), &mut r).unwrap();
    let (_, cache) = block.forward_train(x.view(), &mut ctx).unwrap();
    assert!(is_shape(block.backward(
        &cache,
        bad.view(),
        &mut GfnetBlockGrads::zeros_like(&block)
    )));
    let ln = LayerNorm::new(4, 1e-5);
    let (_, c) = ln.forward_train(x.view(), &mut ctx).unwrap();
    assert!(is_shape(ln.backward(
        &c,
        bad.view(),
        &mut LayerNormGrads::zeros_like(&ln)
    )));
    // A FeedForward cache from a layer of another inner width.
    let ffn8 = FeedForward::new(4, 8, Activation::Gelu, 0.0, &mut r).unwrap();
    let ffn6 = FeedForward::new(4, 6, Activation::Gelu, 0.0, &mut r).unwrap();
    let (_, c8) = ffn8.forward_train(x.view(), &mut ctx).unwrap();
    let err = ffn6
        .backward(&c8, x.view(), &mut FeedForwardGrads::zeros_like(&ffn6))
        .unwrap_err();
    assert!(err.to_string().contains("FeedForward cache"), "{err}");
    // Gradient buffers of the wrong layer.
    let small = LayerNorm::new(3, 1e-5);
    assert!(is_shape(ln.backward(
        &c,
        x.view(),
        &mut LayerNormGrads::zeros_like(&small)
    )));
    let lin = Linear::new(4, 2, &mut r);
    let (_, lc) = lin
        .forward_train(Array2::zeros((3, 4)).view(), &mut ctx)
        .unwrap();
    assert!(is_shape(lin.backward(
        &lc,
        Array2::zeros((3, 3)).view(),
        &mut LinearGrads::zeros_like(&lin)
    )));
    let other = Linear::new(5, 2, &mut r);
    assert!(is_shape(lin.backward(
        &lc,
        Array2::zeros((3, 2)).view(),
        &mut LinearGrads::zeros_like(&other)
    )));
    let emb = Embedding::new(5, 4, &mut r);
    let (_, ec) = emb
        .forward_train(array![[1i64, 2, 3]].view(), &mut ctx)
        .unwrap();
    assert!(is_shape(emb.backward(
        &ec,
        bad.view(),
        &mut EmbeddingGrads::zeros_like(&emb)
    )));
    // A dropout mask replayed on the wrong length.
    let mask = DropoutMask::from_scales(vec![1.0; 3]);
    assert!(matches!(
        mask.backward_in_place(&mut [1.0; 4], "x"),
        Err(LayerError::Shape { .. })
    ));
}

#[test]
fn token_ids_out_of_range() {
    let emb = Embedding::new(5, 2, &mut rng(2));
    match emb.forward(array![[0i64, 1], [5, 2]].view()) {
        Err(LayerError::TokenOutOfRange {
            id: 5,
            position: (1, 0),
            vocab_size: 5,
        }) => {}
        other => panic!("expected TokenOutOfRange for 5, got {other:?}"),
    }
    match emb.forward(array![[0i64, -1]].view()) {
        Err(LayerError::TokenOutOfRange {
            id: -1,
            position: (0, 1),
            ..
        }) => {}
        other => panic!("expected TokenOutOfRange for -1, got {other:?}"),
    }
    assert!(emb.forward(array![[4usize, 0]].view()).is_ok());
    assert!(matches!(
        emb.forward(array![[7u32]].view()),
        Err(LayerError::TokenOutOfRange { id: 7, .. })
    ));
    let msg = emb.forward(array![[9i32]].view()).unwrap_err().to_string();
    assert!(msg.contains('9') && msg.contains('5'), "{msg}");
}

#[test]
fn sequence_longer_than_table() {
    let x = Array3::<f32>::zeros((1, 9, 4));
    for pe in [
        PositionalEncoding::sinusoidal(8, 4, 0.0).unwrap(),
        PositionalEncoding::learned(8, 4, 0.0, &mut rng(3)).unwrap(),
    ] {
        match pe.forward(x.view()) {
            Err(LayerError::SequenceTooLong {
                seq_len: 9,
                max_len: 8,
                ..
            }) => {}
            other => panic!("expected SequenceTooLong, got {other:?}"),
        }
        assert!(
            pe.forward_train(x.view(), &mut TrainContext::new(0, true))
                .is_err()
        );
    }
    // Rotary has no table: any length works.
    assert!(
        PositionalEncoding::rotary(4)
            .unwrap()
            .forward(Array3::zeros((1, 100, 4)).view())
            .is_ok()
    );
}

#[test]
fn odd_rotary_width() {
    assert!(matches!(
        PositionalEncoding::rotary(5),
        Err(LayerError::OddRotaryDim { hidden_dim: 5 })
    ));
}

#[test]
fn invalid_constructor_arguments() {
    let mut r = rng(4);
    for p in [-0.1f32, 1.5, f32::NAN] {
        assert!(matches!(
            Dropout::new(p),
            Err(LayerError::InvalidArgument {
                what: "dropout",
                ..
            })
        ));
        assert!(FeedForward::new(4, 4, Activation::Relu, p, &mut r).is_err());
        assert!(PositionalEncoding::sinusoidal(4, 4, p).is_err());
    }
    assert!(
        GlobalFilter::new(
            4,
            0,
            FilterActivation::Tanh,
            FftNorm::Ortho,
            0.02,
            0.0,
            &mut r
        )
        .is_err()
    );
    assert!(
        GlobalFilter::new(
            4,
            4,
            FilterActivation::Tanh,
            FftNorm::Ortho,
            -1.0,
            0.0,
            &mut r
        )
        .is_err()
    );
    assert!(GfnetBlock::new(BlockOptions::new(4, 4).with_dropout(2.0), &mut r).is_err());
}

#[test]
fn set_parameter_checks_name_and_shape() {
    let mut block = GfnetBlock::new(BlockOptions::new(4, 3), &mut rng(5)).unwrap();
    let w = Array2::<f32>::from_elem((3, 4), 0.5);
    set_parameter(
        &mut block,
        "blocks.1.",
        "blocks.1.mixing_layer.filter_imag",
        w.view().into_dyn(),
    )
    .unwrap();
    assert_eq!(*block.mixing_layer.filter_imag(), w);
    let wrong = Array1::<f32>::zeros(3);
    assert!(is_shape(set_parameter(
        &mut block,
        "",
        "norm1.weight",
        wrong.view().into_dyn()
    )));
    assert!(matches!(
        set_parameter(&mut block, "", "norm3.weight", wrong.view().into_dyn()),
        Err(LayerError::UnknownParameter { .. })
    ));
    // A mismatched filter (set directly on the pub field) is reported, not a panic.
    *block.mixing_layer.filter_imag_mut() = Array2::zeros((2, 4));
    assert!(is_shape(block.forward(Array3::zeros((1, 3, 4)).view())));
}

/// The layers' parameters are public fields; one set to a shape that disagrees with the rest
/// is a typed error naming it on the next use, not a panic or a silently shortened row.
#[test]
fn public_fields_of_the_wrong_shape_are_shape_errors() {
    let mut r = rng(3);
    let x = Array3::<f32>::ones((2, 3, 4));
    let mut lin = Linear::new(4, 3, &mut r);
    lin.bias = Array1::zeros(2);
    let err = lin.forward(Array2::ones((5, 4)).view()).unwrap_err();
    assert!(err.to_string().contains("Linear bias"), "{err}");
    let mut ctx = TrainContext::new(0, true);
    assert!(is_shape(
        lin.forward_train(Array2::ones((5, 4)).view(), &mut ctx)
    ));

    let mut ln = LayerNorm::new(4, 1e-5);
    ln.bias = Array1::zeros(3);
    let err = ln.forward(x.view()).unwrap_err();
    assert!(err.to_string().contains("LayerNorm bias"), "{err}");
    assert!(is_shape(ln.forward_train(x.view(), &mut ctx)));

    let mut ffn = FeedForward::new(4, 8, Activation::Gelu, 0.0, &mut r).unwrap();
    ffn.fc1.bias = Array1::zeros(7);
    assert!(is_shape(ffn.forward(x.view())));
    let mut ffn = FeedForward::new(4, 8, Activation::Gelu, 0.0, &mut r).unwrap();
    ffn.fc2.bias = Array1::zeros(5);
    assert!(is_shape(ffn.forward(x.view())));
    assert!(is_shape(ffn.forward_train(x.view(), &mut ctx)));
    let mut ffn = FeedForward::new(4, 8, Activation::Gelu, 0.0, &mut r).unwrap();
    ffn.fc2 = Linear::new(6, 4, &mut r);
    let err = ffn.forward(x.view()).unwrap_err();
    assert!(err.to_string().contains("fc2"), "{err}");

    let mut block = GfnetBlock::new(BlockOptions::new(4, 3), &mut r).unwrap();
    block.norm2.weight = Array1::ones(5);
    assert!(is_shape(block.forward(x.view())));
}

//! `Gfnet::forward` puts the rank in the type: one variant per kind of head, holding
//! exactly what `forward` returns.

use ndarray::{Array2, Array3};
use spectrans_config::Config;
use spectrans_models::{Gfnet, ModelInput, ModelOutput};

fn model(extra: &str) -> Gfnet {
    let text = format!(
        "[model]\nhidden_dim = 8\nnum_layers = 2\nsequence_length = 6\nvocab_size = 11\n{extra}"
    );
    let config = Config::from_toml_str(&text).expect("a valid test config");
    Gfnet::new(&config, 7).expect("a small model")
}

#[test]
fn each_head_kind_has_its_variant_and_the_same_numbers() {
    let ids = Array2::from_shape_fn((2, 6), |(b, t)| ((b * 5 + t * 3) % 11) as i64);
    let cases = [
        ("num_classes = 3\n", "per sequence", vec![2, 3]),
        ("output_type = \"regression\"\n", "per sequence", vec![2, 1]),
        (
            "output_type = \"sequence\"\nnum_classes = 4\n",
            "per token",
            vec![2, 6, 4],
        ),
        ("output_type = \"lm\"\n", "per token", vec![2, 6, 11]),
        ("output_type = \"none\"\n", "hidden", vec![2, 6, 8]),
    ];
    for (extra, kind, shape) in cases {
        let m = model(extra);
        let input = ModelInput::TokenIds(ids.view());
        let typed = m.forward(input, None).expect("forward");
        let got_kind = match &typed {
            ModelOutput::PerSequence(_) => "per sequence",
            ModelOutput::PerToken(_) => "per token",
            ModelOutput::Hidden(_) => "hidden",
        };
        assert_eq!(got_kind, kind, "{extra}");
        assert_eq!(typed.shape(), shape.as_slice(), "{extra}");
        assert_eq!(typed.batch(), 2, "{extra}");
        let first = typed.sequence(0).expect("row 0");
        assert_eq!(first.shape(), &shape[1..], "{extra}");
        assert_eq!(
            typed.view().index_axis(ndarray::Axis(0), 0),
            first,
            "{extra}"
        );
        assert!(typed.sequence(2).is_none(), "{extra}");
    }
    let encoder = {
        let config = Config::from_toml_str(
            "[model]\nmodel_type = \"gfnet_encoder\"\nhidden_dim = 8\nnum_layers = 1\nsequence_length = 6\n",
        )
        .expect("an encoder config");
        Gfnet::new(&config, 1).expect("an encoder")
    };
    let x = Array3::<f32>::ones((1, 6, 8));
    let out = encoder
        .forward(ModelInput::Embeddings(x.view()), None)
        .expect("encoder forward");
    assert!(matches!(out, ModelOutput::Hidden(ref h) if h.dim() == (1, 6, 8)));
}

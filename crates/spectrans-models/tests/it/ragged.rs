//! `Gfnet::forward_ragged`: every sequence of a ragged batch gets, bit for bit, the answer it
//! gets alone, whatever it was batched with and wherever it sits; `pad_sequences` pads.

use ndarray::Array2;
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use spectrans_config::Config;
use spectrans_layers::LayerError;
use spectrans_models::ragged::{PadTo, pad_sequences};
use spectrans_models::{Gfnet, ModelError, ModelInput, Precision};

const VOCAB: usize = 50;

/// Wide enough that the FFN's products have partial tiles and panels (h 40, ffn 160), and a
/// filter resampled to every length below 32.
fn model(head: &str, precision: Precision) -> Gfnet {
    let text = format!(
        "[model]\nhidden_dim = 40\nnum_layers = 2\nsequence_length = 32\nvocab_size = {VOCAB}\n{head}"
    );
    let config = Config::from_toml_str(&text).expect("a valid test config");
    Gfnet::with_precision(&config, 3, precision).expect("a small model")
}

const HEADS: [&str; 4] = [
    "num_classes = 3\n",
    "output_type = \"regression\"\n",
    "output_type = \"sequence\"\nnum_classes = 5\n",
    "output_type = \"none\"\n",
];

fn alone(model: &Gfnet, seq: &[i64], mask: Option<&[bool]>) -> spectrans_models::ModelOutput {
    let ids = Array2::from_shape_vec((1, seq.len()), seq.to_vec()).unwrap();
    let mask = mask.map(|m| Array2::from_shape_vec((1, m.len()), m.to_vec()).unwrap());
    model
        .forward(
            ModelInput::TokenIds(ids.view()),
            mask.as_ref().map(|m| m.view()),
        )
        .unwrap()
}

fn bits(out: &spectrans_models::ModelOutput) -> Vec<u32> {
    out.view().iter().map(|v| v.to_bits()).collect()
}

fn sequences() -> impl Strategy<Value = Vec<Vec<i64>>> {
    // Many sequences of a few lengths, so groups of up to dozens of rows form (hundreds of
    // tokens: several row blocks of the FFN), and lone lengths too.
    prop::collection::vec(
        prop::sample::select(vec![1usize, 2, 7, 16, 23, 32])
            .prop_flat_map(|len| prop::collection::vec(0..VOCAB as i64, len)),
        1..40,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn each_sequence_gets_its_answer_alone_bit_for_bit(seqs in sequences(), head in 0..HEADS.len()) {
        for precision in [Precision::F32, Precision::Bf16, Precision::Int8] {
            let m = model(HEADS[head], precision);
            let refs: Vec<&[i64]> = seqs.iter().map(Vec::as_slice).collect();
            let outputs = m.forward_ragged(&refs, None).unwrap();
            prop_assert_eq!(outputs.len(), seqs.len());
            for (i, (seq, out)) in seqs.iter().zip(&outputs).enumerate() {
                let want = alone(&m, seq, None);
                prop_assert_eq!(out.shape(), want.shape());
                prop_assert!(bits(out) == bits(&want),
                    "sequence {} (length {}) of {} differs from its run alone ({:?}, head {})",
                    i, seq.len(), seqs.len(), precision, HEADS[head]);
            }
        }
    }
}

#[test]
fn masks_pool_each_sequence_as_alone() {
    let m = model("output_type = \"regression\"\n", Precision::F32);
    let seqs: Vec<Vec<i64>> = (0..9)
        .map(|i| {
            (0..(3 + i % 3))
                .map(|t| ((i * 7 + t * 3) % VOCAB) as i64)
                .collect()
        })
        .collect();
    let masks: Vec<Vec<bool>> = seqs
        .iter()
        .enumerate()
        .map(|(i, s)| (0..s.len()).map(|t| t == 0 || (t + i) % 2 == 0).collect())
        .collect();
    let refs: Vec<&[i64]> = seqs.iter().map(Vec::as_slice).collect();
    let mask_refs: Vec<&[bool]> = masks.iter().map(Vec::as_slice).collect();
    let outputs = m.forward_ragged(&refs, Some(&mask_refs)).unwrap();
    for ((seq, mask), out) in seqs.iter().zip(&masks).zip(&outputs) {
        assert_eq!(bits(out), bits(&alone(&m, seq, Some(mask))));
    }
    // The mask changes the pooled answer, so the comparison above means something.
    let unmasked = m.forward_ragged(&refs, None).unwrap();
    assert!(outputs.iter().zip(&unmasked).any(|(a, b)| a != b));
}

#[test]
fn errors_name_the_callers_sequence() {
    let m = model("num_classes = 3\n", Precision::F32);
    let err = m
        .forward_ragged(&[&[1, 2, 3], &[4, 5], &[6, 7, VOCAB as i64]], None)
        .unwrap_err();
    assert!(
        matches!(
            err,
            ModelError::Layer(LayerError::TokenOutOfRange {
                position: (2, 2),
                ..
            })
        ),
        "{err}"
    );
    let err = m.forward_ragged(&[&[1], &[]], None).unwrap_err();
    assert!(err.to_string().contains("sequence 1 is empty"), "{err}");
    let err = m
        .forward_ragged(&[&[1, 2], &[3, 4]], Some(&[&[true, true], &[false, false]]))
        .unwrap_err();
    assert!(matches!(err, ModelError::EmptyMaskRow { row: 1 }), "{err}");
    let err = m
        .forward_ragged(&[&[1, 2], &[3, 4]], Some(&[&[true, true]]))
        .unwrap_err();
    assert!(err.to_string().contains("one per sequence"), "{err}");
    let err = m
        .forward_ragged(&[&[1, 2], &[3, 4]], Some(&[&[true, true], &[true]]))
        .unwrap_err();
    assert!(err.to_string().contains("sequence 1's length"), "{err}");
    assert!(m.forward_ragged(&[], None).unwrap().is_empty());
}

#[test]
fn padding_is_opt_in_and_changes_the_answer() {
    let m = model("output_type = \"regression\"\n", Precision::F32);
    let seqs: [&[i64]; 2] = [&[5, 6, 7, 8], &[9, 10]];
    let (ids, mask) = pad_sequences(&seqs, 0, PadTo::Length(6)).unwrap();
    assert_eq!(ids.row(1).to_vec(), vec![9, 10, 0, 0, 0, 0]);
    assert_eq!(
        mask.row(0).to_vec(),
        vec![true, true, true, true, false, false]
    );
    let padded = m
        .forward(ModelInput::TokenIds(ids.view()), Some(mask.view()))
        .unwrap();
    let ragged = m.forward_ragged(&seqs, None).unwrap();
    assert_ne!(padded.sequence(1).unwrap(), ragged[1].sequence(0).unwrap());
    let err = pad_sequences(&seqs, 0, PadTo::Length(3)).unwrap_err();
    assert!(
        err.to_string().contains("at most 3 tokens (sequence 0)"),
        "{err}"
    );
    let (ids, _) = pad_sequences(&seqs, -1, PadTo::Longest).unwrap();
    assert_eq!(ids.dim(), (2, 4));
}

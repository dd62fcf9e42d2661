//! Bad input gives a typed error naming the thing, never a panic: weights files with missing,
//! extra, misshapen or non-finite tensors, corrupt files, bad token ids, bad shapes and masks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ndarray::{Array2, Array3, ArrayD, IxDyn};
use spectrans_config::Config;
use spectrans_models::tensor_file::{OwnedTensor, TensorFileError, write_tensors};
use spectrans_models::{Gfnet, ModelError, ModelInput, WeightProblem};

fn config(extra: &str) -> Config {
    Config::from_toml_str(&format!(
        "[model]\nvocab_size = 20\nhidden_dim = 8\nnum_layers = 2\nsequence_length = 6\nnum_classes = 3\n{extra}"
    ))
    .unwrap()
}

fn saved(dir: &Path, model: &Gfnet, name: &str) -> (PathBuf, BTreeMap<String, OwnedTensor>) {
    let path = dir.join(name);
    model.save_weights(&path).unwrap();
    (path, model.state_dict())
}

fn weights_error(
    dir: &Path,
    config: &Config,
    tensors: &BTreeMap<String, OwnedTensor>,
    name: &str,
) -> String {
    let path = dir.join(name);
    write_tensors(&path, tensors).unwrap();
    match Gfnet::from_weights(config, &path) {
        Err(ModelError::Weights { problems, .. }) => problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
        other => panic!("expected a weights error, got {other:?}"),
    }
}

#[test]
fn saved_weights_load_back_identically() {
    let dir = tempfile::tempdir().unwrap();
    let c = config("");
    let model = Gfnet::new(&c, 3).unwrap();
    let (path, _) = saved(dir.path(), &model, "roundtrip.safetensors");
    let loaded = Gfnet::from_weights(&c, &path).unwrap();
    let ids = Array2::from_shape_fn((2, 6), |(b, n)| ((b + 3 * n) % 20) as i64);
    let a = model
        .forward(ModelInput::TokenIds(ids.view()), None)
        .unwrap();
    let b = loaded
        .forward(ModelInput::TokenIds(ids.view()), None)
        .unwrap();
    assert_eq!(a, b);
    // Both come out packed where our GEMM runs (new packs; the loader packs once, after
    // loading), and the loaded weights read back as saved.
    let fastest = spectrans_layers::linalg::packs_f32();
    for m in [&model, &loaded] {
        let ffn = &m.blocks()[0].ffn;
        assert_eq!(
            (ffn.fc1.is_packed(), ffn.fc2.is_packed()),
            (fastest, fastest)
        );
    }
    assert_eq!(
        *loaded.blocks()[0].ffn.fc1.weight(),
        *model.blocks()[0].ffn.fc1.weight()
    );
}

#[test]
fn missing_extra_and_misshapen_tensors_are_all_named() {
    let dir = tempfile::tempdir().unwrap();
    let c = config("");
    let model = Gfnet::new(&c, 0).unwrap();
    let mut t = model.state_dict();
    t.remove("blocks.1.norm2.bias");
    t.insert(
        "blocks.7.extra".into(),
        OwnedTensor::F32(ArrayD::zeros(IxDyn(&[2]))),
    );
    t.insert(
        "final_norm.weight".into(),
        OwnedTensor::F32(ArrayD::zeros(IxDyn(&[9]))),
    );
    let problems = weights_error(dir.path(), &c, &t, "bad.safetensors");
    assert!(
        problems.contains("missing tensor `blocks.1.norm2.bias`"),
        "{problems}"
    );
    assert!(
        problems.contains("unexpected tensor `blocks.7.extra`"),
        "{problems}"
    );
    assert!(
        problems.contains("tensor `final_norm.weight`: expected shape [8], found [9]"),
        "{problems}"
    );
    // The same problems, typed.
    let path = dir.path().join("bad.safetensors");
    match Gfnet::from_weights(&c, &path) {
        Err(ModelError::Weights { problems, .. }) => {
            assert!(problems.contains(&WeightProblem::Missing {
                name: "blocks.1.norm2.bias".into(),
                shape: vec![8],
            }));
            assert!(problems.contains(&WeightProblem::Unexpected {
                name: "blocks.7.extra".into(),
            }));
            assert!(problems.contains(&WeightProblem::Shape {
                name: "final_norm.weight".into(),
                buffer: false,
                expected: vec![8],
                found: vec![9],
            }));
        }
        other => panic!("expected a weights error, got {other:?}"),
    }
}

#[test]
fn non_finite_weights_and_wrong_buffers_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let c = config("");
    let model = Gfnet::new(&c, 0).unwrap();
    let mut t = model.state_dict();
    let mut w = ArrayD::<f32>::zeros(IxDyn(&[3]));
    w[1] = f32::NAN;
    t.insert("output_head.classifier.bias".into(), OwnedTensor::F32(w));
    let problems = weights_error(dir.path(), &c, &t, "nan.safetensors");
    assert!(problems.contains("non-finite"), "{problems}");

    let mut t = model.state_dict();
    t.insert(
        "positional_encoding.pe".into(),
        OwnedTensor::F32(ArrayD::ones(IxDyn(&[1, 6, 8]))),
    );
    let problems = weights_error(dir.path(), &c, &t, "pe.safetensors");
    assert!(problems.contains("positional_encoding.pe"), "{problems}");
}

#[test]
fn weights_in_an_integer_dtype_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let c = config("");
    let model = Gfnet::new(&c, 0).unwrap();
    let mut t = model.state_dict();
    t.insert(
        "final_norm.bias".into(),
        OwnedTensor::I64(ArrayD::zeros(IxDyn(&[8]))),
    );
    let problems = weights_error(dir.path(), &c, &t, "dtype.safetensors");
    assert!(problems.contains("final_norm.bias"), "{problems}");
}

#[test]
fn corrupt_and_truncated_files_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let c = config("");
    let model = Gfnet::new(&c, 0).unwrap();
    let (path, _) = saved(dir.path(), &model, "whole.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let cut = dir.path().join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    assert!(matches!(
        Gfnet::from_weights(&c, &cut),
        Err(ModelError::File(TensorFileError::Corrupt { .. }))
    ));
    let garbage = dir.path().join("garbage.safetensors");
    std::fs::write(&garbage, [0xffu8; 64]).unwrap();
    assert!(matches!(
        Gfnet::from_weights(&c, &garbage),
        Err(ModelError::File(TensorFileError::Corrupt { .. }))
    ));
}

#[test]
fn bad_inputs_are_typed_errors() {
    let c = config("");
    let model = Gfnet::new(&c, 0).unwrap();
    let ids = Array2::from_elem((2, 6), 20i64);
    let err = model
        .forward(ModelInput::TokenIds(ids.view()), None)
        .unwrap_err();
    assert!(err.to_string().contains("token id 20"), "{err}");
    let ids = Array2::from_elem((1, 6), -1i64);
    assert!(
        model
            .forward(ModelInput::TokenIds(ids.view()), None)
            .is_err()
    );

    let long = Array2::from_elem((1, 7), 1i64);
    let err = model
        .forward(ModelInput::TokenIds(long.view()), None)
        .unwrap_err();
    assert!(err.to_string().contains("sequence length 7"), "{err}");

    let embeds = Array3::<f32>::zeros((1, 6, 5));
    let err = model
        .forward(ModelInput::Embeddings(embeds.view()), None)
        .unwrap_err();
    assert!(err.to_string().contains("inputs_embeds"), "{err}");

    let mut embeds = Array3::<f32>::zeros((1, 6, 8));
    embeds[[0, 2, 3]] = f32::NAN;
    assert!(matches!(
        model.forward(ModelInput::Embeddings(embeds.view()), None),
        Err(ModelError::NonFinite { .. })
    ));

    let ids = Array2::from_elem((2, 6), 1i64);
    let mask = Array2::from_elem((2, 5), true);
    assert!(matches!(
        model.forward(ModelInput::TokenIds(ids.view()), Some(mask.view())),
        Err(ModelError::Shape { .. })
    ));
    let mut mask = Array2::from_elem((2, 6), true);
    mask.row_mut(1).fill(false);
    assert!(matches!(
        model.forward(ModelInput::TokenIds(ids.view()), Some(mask.view())),
        Err(ModelError::EmptyMaskRow { row: 1 })
    ));

    let empty = Array2::<i64>::zeros((0, 6));
    assert!(
        model
            .forward(ModelInput::TokenIds(empty.view()), None)
            .is_err()
    );
}

#[test]
fn ids_without_an_embedding_are_refused() {
    let c = Config::from_toml_str(
        "[model]\nmodel_type = \"gfnet_encoder\"\nhidden_dim = 8\nnum_layers = 1\nsequence_length = 4\n",
    )
    .unwrap();
    let model = Gfnet::new(&c, 0).unwrap();
    let ids = Array2::from_elem((1, 4), 0i64);
    assert!(matches!(
        model.forward(ModelInput::TokenIds(ids.view()), None),
        Err(ModelError::NoEmbedding { hidden_dim: 8 })
    ));
}

#[test]
fn a_model_too_big_for_memory_is_an_error_not_an_abort() {
    use spectrans_models::memory::{MemoryBudget, Workload};
    let huge = Config::from_toml_str(
        "[model]\nhidden_dim = 1000000\nnum_layers = 1000\nsequence_length = 1000000\nvocab_size = 10\n",
    )
    .unwrap();
    // The budget a program passes: refused before anything is allocated.
    let budget = MemoryBudget::from_env(Some(24 << 30)).unwrap();
    let msg = budget
        .check_fits(&huge, Workload::Parameters, "the model")
        .unwrap_err()
        .to_string();
    assert!(msg.starts_with("the model needs "), "{msg}");
    assert!(msg.contains("24.0 GiB available"), "{msg}");
    // The library constructor reads no environment, but refuses what no allocation can hold.
    let absurd = Config::from_toml_str(
        "[model]\nhidden_dim = 1000000\nnum_layers = 300000\nsequence_length = 1000000\nvocab_size = 10\n",
    )
    .unwrap();
    match Gfnet::new(&absurd, 0) {
        Err(ModelError::Memory(e)) => {
            let msg = e.to_string();
            assert!(msg.starts_with("the model needs "), "{msg}");
            assert!(msg.contains("the largest possible allocation"), "{msg}");
        }
        other => panic!("expected a memory error, got {:?}", other.map(|_| ())),
    }
}

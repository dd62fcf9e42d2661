//! Fuzz properties: every loader of user input in this crate ends in `Ok` or a typed error on
//! arbitrary and mutated input, never in a panic, an abort, a hang or a huge allocation.
//!
//! Loaders: safetensors files ([`TensorFile::open`] and its readers, [`Gfnet::load_weights`],
//! [`Gfnet::from_weights`], the input files the CLI reads with `TensorFile`); the data set
//! loaders are fuzzed in spectrans-train. Inputs start from valid files (a tiny model's
//! weights, `write_tensors` output, an inputs file, every dtype) and are mutated at the byte
//! level (flips, truncations, insertions, the 8-byte header length) and in the header JSON
//! (dtypes, shapes, offsets, duplicate keys, non-UTF-8, deep nesting); fully random files too.
//! The mutators are [`spectrans_testkit::safetensors_fuzz`]'s, given the tiny models' weight
//! names.
//!
//! Each case runs on its own thread under `catch_unwind`, with a time limit
//! (`LIMITS.case_time`) and a cap on the largest single allocation (`LIMITS.allocation`,
//! watched by the counting global allocator below), so a panic, hang or huge allocation fails
//! the property and proptest reports the (shrunk) input.
//!
//! Cases per property: `LIMITS.default_cases`, or `PROPTEST_CASES` from the environment
//! (`cargo xtask fuzz --cases N` sets it). Each property prints how many cases it ran and
//! what became of them (visible with `--nocapture`).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use ndarray::{ArrayD, Ix2, Ix3, IxDyn};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence};
use safetensors::Dtype;
use spectrans_config::{Config, ModelType, OutputType, PositionalEncodingType};
use spectrans_models::tensor_file::{OwnedTensor, TensorFile, TensorFileError, write_tensors};
use spectrans_models::{Gfnet, ModelError, ModelInput, ModelOutput};
use spectrans_testkit::safetensors_fuzz::{
    every_dtype_file, join_file, mutated, mutation, random_bytes, random_header, tensor_name,
};
use spectrans_testkit::{LargestRequest, Limits, fuzz};
use tempfile::TempDir;

// ---------------------------------------------------------------------------------------------
// Harness: case count, panic / time / allocation guard, outcome tally.
// ---------------------------------------------------------------------------------------------

/// Cases, time and allocation limits of every property here (the harness is
/// [`spectrans_testkit::fuzz`]).
const LIMITS: Limits = Limits {
    default_cases: 128,
    case_time: Duration::from_secs(20),
    allocation: 64 << 20,
};

#[global_allocator]
static ALLOCATOR: LargestRequest = LargestRequest;

// ---------------------------------------------------------------------------------------------
// Valid starting points: tiny models, their weights, an inputs file, every dtype.
// ---------------------------------------------------------------------------------------------

/// Tiny configs covering each positional table (sinusoidal `pe` buffer, rotary `inv_freq`
/// buffer, learned parameters, none) and both model types.
fn model_configs() -> &'static [Config] {
    static CONFIGS: OnceLock<Vec<Config>> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        let base = || {
            Config::builder()
                .hidden_dim(8)
                .num_layers(2)
                .sequence_length(6)
                .dropout(0.0)
                .vocab_size(20)
                .num_classes(3)
        };
        vec![
            base().build().expect("sinusoidal config"),
            base()
                .positional_encoding_type(PositionalEncodingType::Rotary)
                .output_type(OutputType::Sequence)
                .build()
                .expect("rotary config"),
            base()
                .positional_encoding_type(PositionalEncodingType::Learned)
                .learnable_filters(false)
                .build()
                .expect("learned config"),
            Config::builder()
                .model_type(ModelType::GfnetEncoder)
                .hidden_dim(8)
                .num_layers(1)
                .sequence_length(6)
                .use_positional_encoding(false)
                .output_type(OutputType::None)
                .build()
                .expect("encoder config"),
        ]
    })
}

/// What `write_tensors` writes (it syncs the file, too slow to do for every case).
fn bytes_of(tensors: &BTreeMap<String, OwnedTensor>) -> Vec<u8> {
    let encoded: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, t)| match t {
            OwnedTensor::F32(a) => (
                name.as_str(),
                Dtype::F32,
                a.shape().to_vec(),
                a.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
            OwnedTensor::I64(a) => (
                name.as_str(),
                Dtype::I64,
                a.shape().to_vec(),
                a.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
        })
        .collect();
    let views = encoded.iter().map(|(name, dtype, shape, bytes)| {
        let view = safetensors::tensor::TensorView::new(*dtype, shape.clone(), bytes)
            .expect("consistent view");
        (*name, view)
    });
    safetensors::serialize(views, &None).expect("serialise valid tensors")
}

fn written_by_write_tensors(tensors: &BTreeMap<String, OwnedTensor>) -> Vec<u8> {
    let dir = TempDir::new().expect("temp folder");
    let path = dir.path().join("base.safetensors");
    write_tensors(&path, tensors).expect("write_tensors on valid tensors");
    std::fs::read(&path).expect("read back")
}

/// Every name any tiny model saves.
fn weight_names() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names: Vec<String> = model_configs()
            .iter()
            .flat_map(|c| {
                Gfnet::new(c, 0)
                    .expect("tiny model")
                    .state_dict()
                    .into_keys()
            })
            .collect();
        names.sort();
        names.dedup();
        names
    })
}

/// A tensor name ([`spectrans_testkit::safetensors_fuzz::tensor_name`]) but the header's key:
/// `write_tensors` does not refuse `__metadata__`, but the file it writes then cannot be read.
fn written_name() -> impl Strategy<Value = String> {
    tensor_name(weight_names()).prop_filter("not the metadata key", |n| n != "__metadata__")
}

/// Each tiny model's weights file (`save_weights`), one per config.
fn weight_files() -> &'static [Vec<u8>] {
    static FILES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = TempDir::new().expect("temp folder");
        model_configs()
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let path = dir.path().join(format!("weights-{i}.safetensors"));
                Gfnet::new(c, 1 + i as u64)
                    .expect("tiny model")
                    .save_weights(&path)
                    .expect("save_weights");
                std::fs::read(&path).expect("read back")
            })
            .collect()
    })
}

/// An inputs file as the CLI reads it, and a file with one tensor of every dtype.
fn other_files() -> &'static [Vec<u8>] {
    static FILES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    FILES.get_or_init(|| {
        let mut inputs = BTreeMap::new();
        let ids = ArrayD::from_shape_fn(IxDyn(&[2, 6]), |i| ((i[0] * 7 + i[1] * 3) % 20) as i64);
        let mask = ArrayD::from_shape_fn(IxDyn(&[2, 6]), |i| i64::from(i[1] < 4 + i[0]));
        let embeds = ArrayD::from_shape_fn(IxDyn(&[2, 6, 8]), |i| {
            (i[0] as f32 - i[1] as f32 * 0.5 + i[2] as f32 * 0.25).sin()
        });
        inputs.insert("input_ids".to_string(), OwnedTensor::I64(ids));
        inputs.insert("attention_mask".to_string(), OwnedTensor::I64(mask));
        inputs.insert("inputs_embeds".to_string(), OwnedTensor::F32(embeds));
        inputs.insert(
            "targets".to_string(),
            OwnedTensor::I64(ArrayD::from_shape_vec(IxDyn(&[2]), vec![0, 2]).expect("shape")),
        );
        vec![written_by_write_tensors(&inputs), every_dtype_file()]
    })
}

// ---------------------------------------------------------------------------------------------
// The check run on every safetensors case.
// ---------------------------------------------------------------------------------------------

/// Opens `path`; if it opens, reads every tensor with every reader, loads it into each tiny
/// model (three ways), and runs a model on `input_ids` / `inputs_embeds` / `attention_mask` if
/// present. Panics (caught by [`guarded`]) when a typed-error contract is broken.
fn exercise_tensor_file(path: PathBuf) -> String {
    let file = match TensorFile::open(&path) {
        Ok(f) => f,
        Err(e) => {
            let shown = e.to_string();
            assert!(
                shown.contains(&*path.to_string_lossy()),
                "open error does not name the file: {shown}"
            );
            return match e {
                TensorFileError::Corrupt { .. } => "rejected".into(),
                other => panic!("open gave {other:?}, expected Corrupt"),
            };
        }
    };
    let mut read_ok = 0usize;
    for name in file.names() {
        let (_, shape) = file.info(&name).expect("a listed tensor has info");
        assert!(file.contains(&name));
        let check_shape = |s: &[usize]| assert_eq!(s, shape.as_slice(), "`{name}` read shape");
        match file.read_f32(&name) {
            Ok(a) => {
                check_shape(a.shape());
                read_ok += 1;
            }
            Err(e) => typed_read_error(&e),
        }
        match file.read_f64(&name) {
            Ok(a) => check_shape(a.shape()),
            Err(e) => typed_read_error(&e),
        }
        match file.read_i64(&name) {
            Ok(a) => {
                check_shape(a.shape());
                read_ok += 1;
            }
            Err(e) => typed_read_error(&e),
        }
        match file.read_mask(&name) {
            Ok(a) => check_shape(a.shape()),
            Err(e) => typed_read_error(&e),
        }
    }
    assert!(matches!(
        file.read_f32("no such tensor \u{0}"),
        Err(TensorFileError::Missing { .. })
    ));

    let mut loaded = 0usize;
    for config in model_configs() {
        let mut model = Gfnet::new(config, 0).expect("tiny model");
        let before = model.state_dict();
        match model.load_weights(&path) {
            Ok(()) => loaded += 1,
            Err(e) => {
                let _ = e.to_string();
                assert!(
                    model.state_dict() == before,
                    "a failed load_weights changed the model"
                );
            }
        }
        let mut model = Gfnet::new(config, 0).expect("tiny model");
        if let Err(e) = model.load_tensor_file(&file) {
            let _ = e.to_string();
        }
        if let Err(e) = Gfnet::from_weights(config, &path) {
            let _ = e.to_string();
        }
    }
    run_inputs(&file);
    match (read_ok > 0, loaded > 0) {
        (_, true) => "loaded as weights".into(),
        (true, false) => "opened, tensors read".into(),
        (false, false) => "opened, nothing readable".into(),
    }
}

fn typed_read_error(e: &TensorFileError) {
    let _ = e.to_string();
    assert!(
        matches!(
            e,
            TensorFileError::Dtype { .. } | TensorFileError::Corrupt { .. }
        ),
        "read of a listed tensor gave {e:?}"
    );
}

/// What the CLI does with an inputs file: ids (B, N) or embeddings (B, N, D), optional mask.
fn run_inputs(file: &TensorFile) {
    let model = Gfnet::new(&model_configs()[0], 0).expect("tiny model");
    let mask = file
        .read_mask("attention_mask")
        .ok()
        .and_then(|m| m.into_dimensionality::<Ix2>().ok());
    let shown = |r: Result<ModelOutput, ModelError>| {
        if let Err(e) = r {
            let _ = e.to_string();
        }
    };
    if let Some(ids) = file
        .read_i64("input_ids")
        .ok()
        .and_then(|a| a.into_dimensionality::<Ix2>().ok())
    {
        shown(model.forward(ModelInput::TokenIds(ids.view()), None));
        if let Some(m) = &mask {
            shown(model.forward(ModelInput::TokenIds(ids.view()), Some(m.view())));
        }
    }
    if let Some(x) = file
        .read_f32("inputs_embeds")
        .ok()
        .and_then(|a| a.into_dimensionality::<Ix3>().ok())
    {
        shown(model.forward(
            ModelInput::Embeddings(x.view()),
            mask.as_ref().map(|m| m.view()),
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// Starting files and properties (the mutators are spectrans_testkit::safetensors_fuzz).
// ---------------------------------------------------------------------------------------------

/// Tensors for `write_tensors`: shapes of rank 0..=3, sizes 0..=4, any f32 (NaN and infinity
/// included) or i64.
fn owned_tensor() -> impl Strategy<Value = OwnedTensor> {
    vec(0usize..5, 0..4).prop_flat_map(|shape| {
        let n: usize = shape.iter().product();
        let s1 = shape.clone();
        prop_oneof![
            vec(any::<f32>(), n).prop_map(move |v| OwnedTensor::F32(
                ArrayD::from_shape_vec(IxDyn(&s1), v).expect("shape")
            )),
            vec(any::<i64>(), n).prop_map(move |v| OwnedTensor::I64(
                ArrayD::from_shape_vec(IxDyn(&shape), v).expect("shape")
            )),
        ]
    })
}

/// A starting file: a generated `write_tensors` file, the inputs file or the every-dtype file.
#[derive(Debug, Clone)]
enum Base {
    Written(BTreeMap<String, OwnedTensor>),
    Fixed(usize),
}

fn base_bytes(base: &Base) -> Vec<u8> {
    match base {
        Base::Written(t) => bytes_of(t),
        Base::Fixed(i) => other_files()[*i].clone(),
    }
}

fn check_safetensors(bytes: Vec<u8>, dir: &Path) -> Result<String, String> {
    spectrans_testkit::on_file(LIMITS, dir, ".safetensors", &bytes, exercise_tensor_file)
}

#[test]
fn fuzz_safetensors_model_weights_mutated() {
    let n = weight_files().len();
    fuzz(
        "safetensors_model_weights_mutated",
        file!(),
        LIMITS,
        (0..n, vec(mutation(weight_names()), 1..4)),
        |(base, mutations), dir| {
            check_safetensors(mutated(weight_files()[*base].clone(), mutations), dir)
        },
    );
}

#[test]
fn fuzz_safetensors_tensor_files_mutated() {
    let base = prop_oneof![
        2 => btree_map(written_name(), owned_tensor(), 0..6).prop_map(Base::Written),
        1 => (0..other_files().len()).prop_map(Base::Fixed),
    ];
    fuzz(
        "safetensors_tensor_files_mutated",
        file!(),
        LIMITS,
        (base, vec(mutation(weight_names()), 0..5)),
        |(base, mutations), dir| {
            let outcome = check_safetensors(mutated(base_bytes(base), mutations), dir)?;
            if mutations.is_empty() && outcome == "rejected" {
                return Err("an unmutated valid file was rejected".into());
            }
            Ok(outcome)
        },
    );
}

proptest! {
    // A fixed count: each case syncs a file (`write_tensors`), and this checks the test's own
    // generator rather than a loader.
    #![proptest_config(ProptestConfig {
        cases: 16,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    })]

    /// The in-memory serialisation the tensor-file property starts from is what
    /// `write_tensors` writes.
    #[test]
    fn fuzz_bases_match_write_tensors(
        tensors in btree_map(written_name(), owned_tensor(), 0..6)
    ) {
        prop_assert!(bytes_of(&tensors) == written_by_write_tensors(&tensors));
    }
}

#[test]
fn fuzz_safetensors_random_headers() {
    fuzz(
        "safetensors_random_headers",
        file!(),
        LIMITS,
        random_header(weight_names()),
        |header, dir| check_safetensors(header.to_bytes(), dir),
    );
}

#[test]
fn fuzz_safetensors_random_bytes() {
    fuzz(
        "safetensors_random_bytes",
        file!(),
        LIMITS,
        random_bytes(),
        |bytes, dir| check_safetensors(bytes.clone(), dir),
    );
}

/// Known bad files, kept as plain tests: each must be rejected with a typed error.
#[test]
fn fuzz_regressions_safetensors() {
    let dir = TempDir::new().expect("temp folder");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("header length only", 0u64.to_le_bytes().to_vec()),
        ("header length u64::MAX", u64::MAX.to_le_bytes().to_vec()),
        (
            "data_offsets end near usize::MAX",
            join_file(
                br#"{"a":{"dtype":"U8","shape":[18446744073709551612],"data_offsets":[0,18446744073709551612]}}"#,
                &[0; 4],
            ),
        ),
        (
            "zero-sized axis beside a huge one",
            join_file(
                br#"{"a":{"dtype":"F32","shape":[0,18446744073709551615],"data_offsets":[0,0]}}"#,
                &[],
            ),
        ),
        (
            "shape overflow",
            join_file(
                br#"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}"#,
                &[0; 4],
            ),
        ),
    ];
    for (what, bytes) in cases {
        let outcome =
            check_safetensors(bytes, dir.path()).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_ne!(outcome, "loaded as weights", "{what}");
    }
}

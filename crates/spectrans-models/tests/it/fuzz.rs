//! Fuzz properties: every loader of user input in this crate ends in `Ok` or a typed error on
//! arbitrary and mutated input, never in a panic, an abort, a hang or a huge allocation.
//!
//! Loaders: safetensors files ([`TensorFile::open`] and its readers, [`Gfnet::load_weights`],
//! [`Gfnet::from_weights`], the input files the CLI reads with `TensorFile`); the data set
//! loaders are fuzzed in spectrans-train. Inputs start from valid files (a tiny model's
//! weights, `write_tensors` output, an inputs file, every dtype) and are mutated at the byte
//! level (flips, truncations, insertions, the 8-byte header length) and in the header JSON
//! (dtypes, shapes, offsets, duplicate keys, non-UTF-8, deep nesting); fully random files too.
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
use serde_json::{Map, Value, json};
use spectrans_config::{Config, ModelType, OutputType, PositionalEncodingType};
use spectrans_models::tensor_file::{OwnedTensor, TensorFile, TensorFileError, write_tensors};
use spectrans_models::{Gfnet, ModelError, ModelInput, ModelOutput};
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

/// Writes `bytes` to a fresh file, runs `f` on it guarded by [`LIMITS`], removes the file.
fn on_file<T: Send + 'static>(
    dir: &Path,
    ext: &str,
    bytes: &[u8],
    f: impl FnOnce(PathBuf) -> T + Send + 'static,
) -> Result<T, String> {
    spectrans_testkit::on_file(LIMITS, dir, ext, bytes, f)
}

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

const ALL_DTYPES: &[Dtype] = &[
    Dtype::BOOL,
    Dtype::U8,
    Dtype::I8,
    Dtype::F8_E5M2,
    Dtype::F8_E4M3,
    Dtype::I16,
    Dtype::U16,
    Dtype::F16,
    Dtype::BF16,
    Dtype::I32,
    Dtype::U32,
    Dtype::F32,
    Dtype::F64,
    Dtype::I64,
    Dtype::U64,
];

/// One (2, 3) tensor of each dtype safetensors knows, bytes counting up.
fn every_dtype_file() -> Vec<u8> {
    let data: Vec<(String, Dtype, Vec<u8>)> = ALL_DTYPES
        .iter()
        .map(|&d| {
            let bytes = (0..6 * d.size()).map(|i| (i * 37 % 251) as u8).collect();
            (format!("{d:?}"), d, bytes)
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = data
        .iter()
        .map(|(name, d, bytes)| {
            let view = safetensors::tensor::TensorView::new(*d, vec![2, 3], bytes)
                .expect("consistent view");
            (name.clone(), view)
        })
        .collect();
    safetensors::serialize(views, &None).expect("serialise every dtype")
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
// Safetensors mutations.
// ---------------------------------------------------------------------------------------------

/// An edit of a whole file.
#[derive(Debug, Clone)]
enum Mutation {
    /// XOR one byte (position modulo the length) with a nonzero mask.
    Flip { at: usize, xor: u8 },
    /// Keep only the first `keep` bytes (modulo length + 1).
    Truncate { keep: usize },
    /// Insert bytes at a position.
    Insert { at: usize, bytes: Vec<u8> },
    /// Remove up to `len` bytes from a position.
    Remove { at: usize, len: usize },
    /// Set the 8-byte header length.
    HeaderLen(u64),
    /// Add to the 8-byte header length.
    HeaderLenDelta(i64),
    /// Edit the header JSON (a no-op when the header does not parse).
    Header(HeaderEdit),
    /// Lay every tensor out again consistently for the header's dtypes and shapes, repairing
    /// the offsets after other edits (a no-op when that is impossible).
    Relayout(Fill),
}

/// An edit of the header JSON; `tensor` picks an entry modulo their number.
#[derive(Debug, Clone)]
enum HeaderEdit {
    Dtype {
        tensor: usize,
        dtype: String,
    },
    ShapeEntry {
        tensor: usize,
        dim: usize,
        value: u64,
    },
    PushDim {
        tensor: usize,
        value: u64,
    },
    PopDim {
        tensor: usize,
    },
    Offsets {
        tensor: usize,
        start: u64,
        end: u64,
    },
    ShiftOffsets {
        tensor: usize,
        delta: i64,
    },
    Drop {
        tensor: usize,
    },
    Rename {
        tensor: usize,
        name: String,
    },
    /// Replace a field of an entry (`dtype`, `shape`, `data_offsets`, or a new one) by junk.
    Field {
        tensor: usize,
        field: String,
        value: Value,
    },
    /// Replace a whole entry, or add one under a new name.
    Entry {
        name: String,
        value: Value,
    },
    Metadata(Value),
    /// Repeat an entry's key in the text (`{"a": .., "a": .., ...}`).
    Duplicate {
        tensor: usize,
    },
    /// Put a non-UTF-8 byte into the header text.
    NonUtf8 {
        at: usize,
        byte: u8,
    },
    /// An extra entry nested `depth` arrays deep.
    Deep {
        depth: usize,
    },
    /// Give an entry a new dtype and shape and lay every tensor out again consistently
    /// (offsets contiguous, data of the right length), so the file passes validation.
    Reshape {
        tensor: usize,
        dtype: Dtype,
        shape: Vec<u64>,
        fill: Fill,
    },
    /// Give an entry (the last in the data, or any) a new dtype and shape and make its
    /// `data_offsets` span exactly that many bytes from its start, leaving the data alone: a
    /// header that claims far more data than the file holds, consistently.
    Claim {
        last: bool,
        tensor: usize,
        dtype: Dtype,
        shape: Vec<u64>,
    },
    /// As `Claim`, with the one-dimensional shape that makes the entry end `gap` bytes short
    /// of `u64::MAX` (rounded down to whole elements).
    ClaimNearMax {
        last: bool,
        tensor: usize,
        dtype: Dtype,
        gap: u64,
    },
}

/// How re-laid-out data is filled.
#[derive(Debug, Clone, Copy)]
enum Fill {
    Zero,
    Ones,
    Random(u64),
}

fn dtype_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(ALL_DTYPES).prop_map(|d| format!("{d:?}")),
        1 => prop::sample::select(vec!["f32", "F32 ", "", "FLOAT", "F4", "I128", "bool", "U1"])
            .prop_map(String::from),
        1 => "[A-Z0-9_]{0,6}",
    ]
}

/// Dimension sizes: small, zero, and the edges of u32, i64, u64.
fn dim_value() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0u64..6,
        1 => Just(u64::MAX),
        1 => Just(u64::MAX / 2),
        1 => Just(i64::MAX as u64 + 1),
        1 => Just(1u64 << 32),
        1 => Just((1u64 << 31) - 1),
        1 => any::<u64>(),
    ]
}

fn tensor_name() -> impl Strategy<Value = String> {
    let model_names: Vec<String> = weight_names();
    prop_oneof![
        2 => prop::sample::select(model_names),
        1 => prop::sample::select(vec![
            "input_ids", "attention_mask", "inputs_embeds", "targets", "__metadata__", "",
            "é", "a\u{0}b", "positional_encoding.pe", "positional_encoding.inv_freq",
        ])
        .prop_map(String::from),
        1 => any::<String>(),
    ]
}

/// Every name any tiny model saves.
fn weight_names() -> Vec<String> {
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
}

fn junk_json() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(json!(true)),
        Just(json!(-1)),
        Just(json!(1.5)),
        Just(json!(1e300)),
        Just(json!("F32")),
        Just(json!([])),
        Just(json!([-1])),
        Just(json!([1.5, 2])),
        Just(json!(["a"])),
        Just(json!([0])),
        Just(json!([0, 0, 0])),
        Just(json!([u64::MAX, 0])),
        Just(json!({})),
        Just(json!({"dtype": "F32"})),
        Just(json!({"dtype": "F32", "shape": [], "data_offsets": [0, 4]})),
        any::<String>().prop_map(Value::String),
        any::<i64>().prop_map(|v| json!(v)),
        vec(any::<u64>(), 0..4).prop_map(|v| json!(v)),
    ]
}

fn header_edit() -> impl Strategy<Value = HeaderEdit> {
    let t = any::<usize>;
    prop_oneof![
        (t(), dtype_name()).prop_map(|(tensor, dtype)| HeaderEdit::Dtype { tensor, dtype }),
        (t(), 0usize..4, dim_value()).prop_map(|(tensor, dim, value)| HeaderEdit::ShapeEntry {
            tensor,
            dim,
            value
        }),
        (t(), dim_value()).prop_map(|(tensor, value)| HeaderEdit::PushDim { tensor, value }),
        t().prop_map(|tensor| HeaderEdit::PopDim { tensor }),
        (t(), dim_value(), dim_value()).prop_map(|(tensor, start, end)| HeaderEdit::Offsets {
            tensor,
            start,
            end
        }),
        (t(), prop_oneof![-64i64..64, any::<i64>()])
            .prop_map(|(tensor, delta)| HeaderEdit::ShiftOffsets { tensor, delta }),
        t().prop_map(|tensor| HeaderEdit::Drop { tensor }),
        (t(), tensor_name()).prop_map(|(tensor, name)| HeaderEdit::Rename { tensor, name }),
        (
            t(),
            prop::sample::select(vec!["dtype", "shape", "data_offsets", "extra"]),
            junk_json()
        )
            .prop_map(|(tensor, field, value)| HeaderEdit::Field {
                tensor,
                field: field.into(),
                value
            }),
        (tensor_name(), junk_json()).prop_map(|(name, value)| HeaderEdit::Entry { name, value }),
        prop_oneof![
            Just(json!({"format": "pt"})),
            Just(json!({"k": 1})),
            Just(json!("pt")),
            junk_json()
        ]
        .prop_map(HeaderEdit::Metadata),
        t().prop_map(|tensor| HeaderEdit::Duplicate { tensor }),
        (
            t(),
            prop_oneof![Just(0xffu8), Just(0xc3), Just(0x80), 0x80u8..]
        )
            .prop_map(|(at, byte)| HeaderEdit::NonUtf8 { at, byte }),
        prop_oneof![1usize..200, Just(10_000), Just(200_000)]
            .prop_map(|depth| HeaderEdit::Deep { depth }),
        (
            t(),
            prop::sample::select(ALL_DTYPES),
            vec(prop_oneof![4 => 0u64..5, 1 => dim_value()], 0..5),
            fill()
        )
            .prop_map(|(tensor, dtype, shape, fill)| HeaderEdit::Reshape {
                tensor,
                dtype,
                shape,
                fill
            }),
        (
            any::<bool>(),
            t(),
            prop::sample::select(ALL_DTYPES),
            prop_oneof![
                Just(vec![u64::MAX]),
                Just(vec![u64::MAX / 2]),
                Just(vec![u64::MAX / 8]),
                Just(vec![3, u64::MAX / 3]),
                Just(vec![0, u64::MAX]),
                vec(dim_value(), 0..4),
            ]
        )
            .prop_map(|(last, tensor, dtype, shape)| HeaderEdit::Claim {
                last,
                tensor,
                dtype,
                shape
            }),
        (
            any::<bool>(),
            t(),
            prop::sample::select(ALL_DTYPES),
            prop_oneof![0u64..64, any::<u64>()]
        )
            .prop_map(|(last, tensor, dtype, gap)| HeaderEdit::ClaimNearMax {
                last,
                tensor,
                dtype,
                gap
            }),
    ]
}

fn fill() -> impl Strategy<Value = Fill> {
    prop_oneof![
        Just(Fill::Zero),
        Just(Fill::Ones),
        any::<u64>().prop_map(Fill::Random)
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        2 => (any::<usize>(), 1u8..).prop_map(|(at, xor)| Mutation::Flip { at, xor }),
        1 => any::<usize>().prop_map(|keep| Mutation::Truncate { keep }),
        1 => (any::<usize>(), vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        1 => (any::<usize>(), 1usize..64).prop_map(|(at, len)| Mutation::Remove { at, len }),
        1 => prop_oneof![
            any::<u64>(),
            Just(u64::MAX),
            0u64..16,
            Just(100_000_000),
            Just(100_000_001),
            Just(1u64 << 32),
            Just(1u64 << 63),
        ]
        .prop_map(Mutation::HeaderLen),
        1 => prop_oneof![-16i64..16, any::<i64>()].prop_map(Mutation::HeaderLenDelta),
        5 => header_edit().prop_map(Mutation::Header),
        2 => fill().prop_map(Mutation::Relayout),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let len = bytes.len();
    match m {
        Mutation::Flip { at, xor } => {
            if len > 0 {
                bytes[at % len] ^= xor;
            }
        }
        Mutation::Truncate { keep } => bytes.truncate(keep % (len + 1)),
        Mutation::Insert { at, bytes: more } => {
            let at = at % (len + 1);
            bytes.splice(at..at, more.iter().copied());
        }
        Mutation::Remove { at, len: n } => {
            if len > 0 {
                let at = at % len;
                bytes.drain(at..(at + n).min(len));
            }
        }
        Mutation::HeaderLen(v) => set_header_len(bytes, *v),
        Mutation::HeaderLenDelta(d) => {
            if let Some(n) = header_len(bytes) {
                set_header_len(bytes, n.wrapping_add(*d as u64));
            }
        }
        Mutation::Header(edit) => edit_header(bytes, edit),
        Mutation::Relayout(fill) => {
            if let Some((mut header, _)) = split_file(bytes)
                && let Some(data) = relayout(&mut header, *fill)
            {
                let text = serde_json::to_vec(&header).expect("JSON object");
                *bytes = join_file(&text, &data);
            }
        }
    }
}

fn header_len(bytes: &[u8]) -> Option<u64> {
    let prefix: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    Some(u64::from_le_bytes(prefix))
}

fn set_header_len(bytes: &mut Vec<u8>, v: u64) {
    if bytes.len() < 8 {
        bytes.resize(8, 0);
    }
    bytes[..8].copy_from_slice(&v.to_le_bytes());
}

/// The header as a JSON object and the data after it, when the file is well-formed that far.
fn split_file(bytes: &[u8]) -> Option<(Map<String, Value>, Vec<u8>)> {
    let n = usize::try_from(header_len(bytes)?).ok()?;
    let end = n.checked_add(8).filter(|&e| e <= bytes.len())?;
    let header: Map<String, Value> = serde_json::from_slice(&bytes[8..end]).ok()?;
    Some((header, bytes[end..].to_vec()))
}

fn join_file(header_text: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = (header_text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header_text);
    out.extend_from_slice(data);
    out
}

/// The tensor entries' names in the header, sorted (`__metadata__` excluded).
fn entry_names(header: &Map<String, Value>) -> Vec<String> {
    header
        .keys()
        .filter(|k| *k != "__metadata__")
        .cloned()
        .collect()
}

fn pick(names: &[String], i: usize) -> Option<&String> {
    (!names.is_empty()).then(|| &names[i % names.len()])
}

fn edit_header(bytes: &mut Vec<u8>, edit: &HeaderEdit) {
    let Some((mut header, mut data)) = split_file(bytes) else {
        return;
    };
    let names = entry_names(&header);
    let entry = |header: &mut Map<String, Value>, i: usize| -> Option<Map<String, Value>> {
        let name = pick(&names, i)?;
        header.get(name)?.as_object().cloned()
    };
    let put = |header: &mut Map<String, Value>, i: usize, e: Map<String, Value>| {
        if let Some(name) = pick(&names, i) {
            header.insert(name.clone(), Value::Object(e));
        }
    };
    // Edits of the text itself.
    let mut text = None;
    match edit {
        HeaderEdit::Dtype { tensor, dtype } => {
            if let Some(mut e) = entry(&mut header, *tensor) {
                e.insert("dtype".into(), json!(dtype));
                put(&mut header, *tensor, e);
            }
        }
        HeaderEdit::ShapeEntry { tensor, dim, value } => {
            if let Some(mut e) = entry(&mut header, *tensor) {
                if let Some(Value::Array(shape)) = e.get_mut("shape") {
                    if shape.is_empty() {
                        shape.push(json!(value));
                    } else {
                        let k = dim % shape.len();
                        shape[k] = json!(value);
                    }
                }
                put(&mut header, *tensor, e);
            }
        }
        HeaderEdit::PushDim { tensor, value } => {
            if let Some(mut e) = entry(&mut header, *tensor) {
                if let Some(Value::Array(shape)) = e.get_mut("shape") {
                    shape.push(json!(value));
                }
                put(&mut header, *tensor, e);
            }
        }
        HeaderEdit::PopDim { tensor } => {
            if let Some(mut e) = entry(&mut header, *tensor) {
                if let Some(Value::Array(shape)) = e.get_mut("shape") {
                    shape.pop();
                }
                put(&mut header, *tensor, e);
            }
        }
        HeaderEdit::Offsets { tensor, start, end } => {
            if let Some(mut e) = entry(&mut header, *tensor) {
                e.insert("data_offsets".into(), json!([start, end]));
                put(&mut header, *tensor, e);
            }
        }
        HeaderEdit::ShiftOffsets { tensor, delta } => {
            if let Some(mut e) = entry(&mut header, *tensor) {
                if let Some(Value::Array(offsets)) = e.get_mut("data_offsets") {
                    for o in offsets.iter_mut() {
                        if let Some(v) = o.as_u64() {
                            *o = json!(v.wrapping_add(*delta as u64));
                        }
                    }
                }
                put(&mut header, *tensor, e);
            }
        }
        HeaderEdit::Drop { tensor } => {
            if let Some(name) = pick(&names, *tensor) {
                header.remove(name);
            }
        }
        HeaderEdit::Rename { tensor, name } => {
            if let Some(old) = pick(&names, *tensor)
                && let Some(v) = header.remove(old)
            {
                header.insert(name.clone(), v);
            }
        }
        HeaderEdit::Field {
            tensor,
            field,
            value,
        } => {
            if let Some(mut e) = entry(&mut header, *tensor) {
                e.insert(field.clone(), value.clone());
                put(&mut header, *tensor, e);
            }
        }
        HeaderEdit::Entry { name, value } => {
            header.insert(name.clone(), value.clone());
        }
        HeaderEdit::Metadata(value) => {
            header.insert("__metadata__".into(), value.clone());
        }
        HeaderEdit::Duplicate { tensor } => {
            if let Some(name) = pick(&names, *tensor) {
                let repeated = format!(
                    "{}:{}",
                    json!(name),
                    header.get(name).cloned().unwrap_or(Value::Null)
                );
                let rest = serde_json::to_string(&header).expect("JSON object");
                // `rest` starts with `{` and has at least this entry after it.
                text = Some(format!("{{{repeated},{}", &rest[1..]).into_bytes());
            }
        }
        HeaderEdit::NonUtf8 { at, byte } => {
            let mut t = serde_json::to_vec(&header).expect("JSON object");
            let at = at % (t.len() + 1);
            t.insert(at, *byte);
            text = Some(t);
        }
        HeaderEdit::Deep { depth } => {
            let rest = serde_json::to_string(&header).expect("JSON object");
            let nested = format!("{}{}", "[".repeat(*depth), "]".repeat(*depth));
            let sep = if rest.len() > 2 { "," } else { "" };
            text = Some(format!("{{\"deep\":{nested}{sep}{}", &rest[1..]).into_bytes());
        }
        HeaderEdit::Reshape {
            tensor,
            dtype,
            shape,
            fill,
        } => {
            let Some(mut e) = entry(&mut header, *tensor) else {
                return;
            };
            e.insert("dtype".into(), json!(format!("{dtype:?}")));
            e.insert("shape".into(), json!(shape));
            put(&mut header, *tensor, e);
            match relayout(&mut header, *fill) {
                Some(d) => data = d,
                None => return,
            }
        }
        HeaderEdit::Claim {
            last,
            tensor,
            dtype,
            shape,
        } => {
            if !claim(&mut header, &names, *last, *tensor, *dtype, |_| {
                Some(shape.clone())
            }) {
                return;
            }
        }
        HeaderEdit::ClaimNearMax {
            last,
            tensor,
            dtype,
            gap,
        } => {
            let size = dtype.size() as u64;
            let near_max = |start: u64| Some(vec![(u64::MAX - gap).checked_sub(start)? / size]);
            if !claim(&mut header, &names, *last, *tensor, *dtype, near_max) {
                return;
            }
        }
    }
    let text = text.unwrap_or_else(|| serde_json::to_vec(&header).expect("JSON object"));
    *bytes = join_file(&text, &data);
}

/// Gives an entry (the one whose data starts last, or the picked one) `dtype` and the shape
/// `shape_for(its start)`, and offsets spanning exactly that from its start; false when there
/// is no entry or the end overflows u64.
fn claim(
    header: &mut Map<String, Value>,
    names: &[String],
    last: bool,
    tensor: usize,
    dtype: Dtype,
    shape_for: impl Fn(u64) -> Option<Vec<u64>>,
) -> bool {
    let start_of = |v: &Value| v.get("data_offsets")?.get(0)?.as_u64();
    let name = if last {
        names
            .iter()
            .max_by_key(|n| header.get(*n).and_then(start_of))
            .cloned()
    } else {
        pick(names, tensor).cloned()
    };
    let Some(Value::Object(e)) = name.and_then(|n| header.get_mut(&n)) else {
        return false;
    };
    let start = e
        .get("data_offsets")
        .and_then(|o| o.get(0)?.as_u64())
        .unwrap_or(0);
    let Some(shape) = shape_for(start) else {
        return false;
    };
    let Some(end) = shape
        .iter()
        .try_fold(dtype.size() as u64, |a, &d| a.checked_mul(d))
        .and_then(|n| n.checked_add(start))
    else {
        return false;
    };
    e.insert("dtype".into(), json!(format!("{dtype:?}")));
    e.insert("shape".into(), json!(shape));
    e.insert("data_offsets".into(), json!([start, end]));
    true
}

/// Lays every entry out contiguously (in name order) for its dtype and shape, returning the
/// new data section; None when an entry is not a valid tensor description or the data would
/// exceed 1 MiB.
fn relayout(header: &mut Map<String, Value>, fill: Fill) -> Option<Vec<u8>> {
    let mut offset = 0usize;
    for name in entry_names(header) {
        let e = header.get_mut(&name)?.as_object_mut()?;
        let dtype: Dtype = serde_json::from_value(e.get("dtype")?.clone()).ok()?;
        let shape: Vec<usize> = serde_json::from_value(e.get("shape")?.clone()).ok()?;
        let elements = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))?;
        let end = offset.checked_add(elements.checked_mul(dtype.size())?)?;
        if end > 1 << 20 {
            return None;
        }
        e.insert("data_offsets".into(), json!([offset, end]));
        offset = end;
    }
    let mut state = match fill {
        Fill::Random(seed) => seed,
        _ => 0,
    };
    Some(
        (0..offset)
            .map(|i| match fill {
                Fill::Zero => 0,
                Fill::Ones => [0x00, 0x00, 0x80, 0x3f][i % 4],
                Fill::Random(_) => {
                    // splitmix64
                    state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                    let mut z = state;
                    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                    (z ^ (z >> 31)) as u8
                }
            })
            .collect(),
    )
}

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
    on_file(dir, ".safetensors", &bytes, exercise_tensor_file)
}

#[test]
fn fuzz_safetensors_model_weights_mutated() {
    let n = weight_files().len();
    fuzz(
        "safetensors_model_weights_mutated",
        file!(),
        LIMITS,
        (0..n, vec(mutation(), 1..4)),
        |(base, mutations), dir| {
            let mut bytes = weight_files()[*base].clone();
            for m in mutations {
                apply(&mut bytes, m);
            }
            check_safetensors(bytes, dir)
        },
    );
}

#[test]
fn fuzz_safetensors_tensor_files_mutated() {
    let base = prop_oneof![
        // `__metadata__` is the header's own key: `write_tensors` does not refuse it as a
        // tensor name, but the file it writes then cannot be read back.
        2 => btree_map(
            tensor_name().prop_filter("not the metadata key", |n| n != "__metadata__"),
            owned_tensor(),
            0..6
        )
        .prop_map(Base::Written),
        1 => (0..other_files().len()).prop_map(Base::Fixed),
    ];
    fuzz(
        "safetensors_tensor_files_mutated",
        file!(),
        LIMITS,
        (base, vec(mutation(), 0..5)),
        |(base, mutations), dir| {
            let mut bytes = base_bytes(base);
            for m in mutations {
                apply(&mut bytes, m);
            }
            let outcome = check_safetensors(bytes, dir)?;
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
        tensors in btree_map(
            tensor_name().prop_filter("not the metadata key", |n| n != "__metadata__"),
            owned_tensor(),
            0..6,
        )
    ) {
        prop_assert!(bytes_of(&tensors) == written_by_write_tensors(&tensors));
    }
}

/// A header entry as the generator writes it: any dtype name, any shape, offsets either laid
/// out consistently or given.
#[derive(Debug, Clone)]
struct RandomEntry {
    name: String,
    dtype: String,
    shape: Vec<u64>,
    offsets: Option<(u64, u64)>,
}

#[test]
fn fuzz_safetensors_random_headers() {
    let entry = (
        tensor_name(),
        dtype_name(),
        vec(prop_oneof![4 => 0u64..5, 1 => dim_value()], 0..4),
        prop_oneof![3 => Just(None), 1 => (dim_value(), dim_value()).prop_map(Some)],
    )
        .prop_map(|(name, dtype, shape, offsets)| RandomEntry {
            name,
            dtype,
            shape,
            offsets,
        });
    let data_len = prop_oneof![3 => Just(None), 1 => (0usize..256).prop_map(Some)];
    fuzz(
        "safetensors_random_headers",
        file!(),
        LIMITS,
        (vec(entry, 0..6), prop::option::of(junk_json()), data_len),
        |(entries, metadata, data_len), dir| {
            let mut header = Map::new();
            let mut offset = 0u64;
            for e in entries {
                let dtype: Option<Dtype> = serde_json::from_value(json!(e.dtype)).ok();
                let offsets = e.offsets.unwrap_or_else(|| {
                    let elements = e
                        .shape
                        .iter()
                        .try_fold(1u64, |a, &d| a.checked_mul(d))
                        .unwrap_or(u64::MAX);
                    let size = dtype.map_or(4, |d| d.size() as u64);
                    let end = offset.saturating_add(elements.saturating_mul(size));
                    (offset, end)
                });
                offset = offsets.1;
                header.insert(
                    e.name.clone(),
                    json!({"dtype": e.dtype, "shape": e.shape, "data_offsets": [offsets.0, offsets.1]}),
                );
            }
            if let Some(m) = metadata {
                header.insert("__metadata__".into(), m.clone());
            }
            // Consistent data length when it is small, else what the generator says.
            let len = data_len.unwrap_or_else(|| usize::try_from(offset).unwrap_or(0).min(4096));
            let data: Vec<u8> = (0..len).map(|i| (i * 131 % 256) as u8).collect();
            let text = serde_json::to_vec(&header).expect("JSON object");
            check_safetensors(join_file(&text, &data), dir)
        },
    );
}

#[test]
fn fuzz_safetensors_random_bytes() {
    let plausible = (
        prop_oneof![0u64..64, any::<u64>()],
        "\\{[\"a-zA-Z0-9_:,\\[\\] {}.\\-]{0,60}\\}?",
        vec(any::<u8>(), 0..64),
    )
        .prop_map(|(n, text, data)| {
            let mut out = n.to_le_bytes().to_vec();
            out.extend_from_slice(text.as_bytes());
            out.extend_from_slice(&data);
            out
        });
    fuzz(
        "safetensors_random_bytes",
        file!(),
        LIMITS,
        prop_oneof![vec(any::<u8>(), 0..2048), plausible],
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

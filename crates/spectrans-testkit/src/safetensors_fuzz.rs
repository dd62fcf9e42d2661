//! Proptest strategies that mutate safetensors files, for fuzzing their loaders.
//!
//! A file is edited at the byte level (flips, truncations, insertions, removals, the 8-byte
//! header length) and in its header JSON (dtypes, shapes, offsets, duplicate keys, non-UTF-8,
//! deep nesting, entries that claim more data than the file holds); [`random_header`] and
//! [`random_bytes`] make files from nothing. What a mutator needs of a model, the tensor names
//! it saves, is a parameter (`names`), so this module knows no model.
//!
//! ```ignore
//! use proptest::collection::vec;
//! use spectrans_testkit::safetensors_fuzz::{mutated, mutation};
//! let strategy = vec(mutation(&names), 1..4);
//! // for each generated `mutations`: `let bytes = mutated(base.clone(), &mutations);`
//! ```

use proptest::collection::vec;
use proptest::prelude::*;
use safetensors::Dtype;
use serde_json::{Map, Value, json};

/// Every dtype safetensors knows.
pub const ALL_DTYPES: &[Dtype] = &[
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

/// A file of one (2, 3) tensor of each dtype safetensors knows, bytes counting up.
pub fn every_dtype_file() -> Vec<u8> {
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

/// An edit of a whole file.
#[derive(Debug, Clone)]
pub enum Mutation {
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
#[allow(missing_docs)] // the fields are named for what they set
pub enum HeaderEdit {
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
pub enum Fill {
    Zero,
    Ones,
    Random(u64),
}

/// Dtype names: mostly real ones, some near misses, some junk.
pub fn dtype_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(ALL_DTYPES).prop_map(|d| format!("{d:?}")),
        1 => prop::sample::select(vec!["f32", "F32 ", "", "FLOAT", "F4", "I128", "bool", "U1"])
            .prop_map(String::from),
        1 => "[A-Z0-9_]{0,6}",
    ]
}

/// Dimension sizes: small, zero, and the edges of u32, i64, u64.
pub fn dim_value() -> impl Strategy<Value = u64> {
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

/// Tensor names: one of `names` (a model's weight names; must not be empty), names the CLI's
/// files use, odd ones (empty, NUL, `__metadata__`), and any string.
pub fn tensor_name(names: &[String]) -> impl Strategy<Value = String> + use<> {
    assert!(!names.is_empty(), "tensor_name needs at least one name");
    prop_oneof![
        2 => prop::sample::select(names.to_vec()),
        1 => prop::sample::select(vec![
            "input_ids", "attention_mask", "inputs_embeds", "targets", "__metadata__", "",
            "é", "a\u{0}b", "positional_encoding.pe", "positional_encoding.inv_freq",
        ])
        .prop_map(String::from),
        1 => any::<String>(),
    ]
}

/// JSON values of every kind, for fields and entries that should not hold them.
pub fn junk_json() -> impl Strategy<Value = Value> {
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

/// An edit of the header JSON; renamed and added entries take names from
/// [`tensor_name`]`(names)`.
pub fn header_edit(names: &[String]) -> impl Strategy<Value = HeaderEdit> + use<> {
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
        (t(), tensor_name(names)).prop_map(|(tensor, name)| HeaderEdit::Rename { tensor, name }),
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
        (tensor_name(names), junk_json())
            .prop_map(|(name, value)| HeaderEdit::Entry { name, value }),
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

/// How re-laid-out data is filled.
pub fn fill() -> impl Strategy<Value = Fill> {
    prop_oneof![
        Just(Fill::Zero),
        Just(Fill::Ones),
        any::<u64>().prop_map(Fill::Random)
    ]
}

/// An edit of a whole file, header edits (see [`header_edit`]) among them.
pub fn mutation(names: &[String]) -> impl Strategy<Value = Mutation> + use<> {
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
        5 => header_edit(names).prop_map(Mutation::Header),
        2 => fill().prop_map(Mutation::Relayout),
    ]
}

/// `base` with every mutation applied in order.
pub fn mutated(mut base: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        apply(&mut base, m);
    }
    base
}

/// Applies one mutation to `bytes` (header edits are no-ops on a header that does not parse).
pub fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
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

/// A safetensors file: the 8-byte length of `header_text`, the text, then `data`.
pub fn join_file(header_text: &[u8], data: &[u8]) -> Vec<u8> {
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

/// A header entry as [`random_header`] writes it: any dtype name, any shape, offsets either
/// laid out consistently (`None`) or given.
#[derive(Debug, Clone)]
pub struct RandomEntry {
    /// The entry's key.
    pub name: String,
    /// Its `dtype` (any string).
    pub dtype: String,
    /// Its `shape`.
    pub shape: Vec<u64>,
    /// Its `data_offsets`; `None`: right after the previous entry, sized for dtype and shape.
    pub offsets: Option<(u64, u64)>,
}

/// A file made from nothing: header entries, optional `__metadata__`, and a data section.
#[derive(Debug, Clone)]
pub struct RandomHeader {
    /// The entries, in order (a repeated name keeps the last).
    pub entries: Vec<RandomEntry>,
    /// The `__metadata__` value, when there is one.
    pub metadata: Option<Value>,
    /// The data length; `None`: what the entries span, capped at 4 KiB.
    pub data_len: Option<usize>,
}

impl RandomHeader {
    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut header = Map::new();
        let mut offset = 0u64;
        for e in &self.entries {
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
        if let Some(m) = &self.metadata {
            header.insert("__metadata__".into(), m.clone());
        }
        // Consistent data length when it is small, else what the generator says.
        let len = self
            .data_len
            .unwrap_or_else(|| usize::try_from(offset).unwrap_or(0).min(4096));
        let data: Vec<u8> = (0..len).map(|i| (i * 131 % 256) as u8).collect();
        let text = serde_json::to_vec(&header).expect("JSON object");
        join_file(&text, &data)
    }
}

/// Files whose header is generated whole: up to five entries named by
/// [`tensor_name`]`(names)`, with any dtype name and shape.
pub fn random_header(names: &[String]) -> impl Strategy<Value = RandomHeader> + use<> {
    let entry = (
        tensor_name(names),
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
    (vec(entry, 0..6), prop::option::of(junk_json()), data_len).prop_map(
        |(entries, metadata, data_len)| RandomHeader {
            entries,
            metadata,
            data_len,
        },
    )
}

/// Random bytes, and files that start plausibly: a header length (small or any), text of
/// JSON-ish characters, then random data.
pub fn random_bytes() -> impl Strategy<Value = Vec<u8>> {
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
    prop_oneof![vec(any::<u8>(), 0..2048), plausible]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::ValueTree;

    fn names() -> Vec<String> {
        vec!["a".into(), "b.weight".into()]
    }

    /// A valid two-tensor file.
    fn base() -> Vec<u8> {
        join_file(
            br#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b.weight":{"dtype":"U8","shape":[3],"data_offsets":[8,11]}}"#,
            &[0; 11],
        )
    }

    #[test]
    fn the_base_and_every_dtype_file_are_valid() {
        assert!(safetensors::SafeTensors::deserialize(&base()).is_ok());
        let all = every_dtype_file();
        let parsed = safetensors::SafeTensors::deserialize(&all).expect("valid");
        assert_eq!(parsed.names().len(), ALL_DTYPES.len());
    }

    #[test]
    fn no_mutations_leave_the_file_unchanged() {
        assert_eq!(mutated(base(), &[]), base());
    }

    #[test]
    fn a_relayout_repairs_a_reshaped_entry() {
        let reshape = Mutation::Header(HeaderEdit::Reshape {
            tensor: 0,
            dtype: Dtype::I64,
            shape: vec![3, 2],
            fill: Fill::Ones,
        });
        let bytes = mutated(base(), &[reshape]);
        let parsed = safetensors::SafeTensors::deserialize(&bytes).expect("still valid");
        let a = parsed.tensor("a").expect("a kept");
        assert_eq!((a.dtype(), a.shape()), (Dtype::I64, &[3usize, 2][..]));
    }

    #[test]
    fn a_claim_near_max_makes_the_header_overrun_the_file() {
        let claim = Mutation::Header(HeaderEdit::ClaimNearMax {
            last: true,
            tensor: 0,
            dtype: Dtype::F32,
            gap: 0,
        });
        let bytes = mutated(base(), &[claim]);
        assert_ne!(bytes, base());
        assert!(safetensors::SafeTensors::deserialize(&bytes).is_err());
    }

    #[test]
    fn the_strategies_generate() {
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        for _ in 0..32 {
            let m = vec(mutation(&names()), 1..4)
                .new_tree(&mut runner)
                .expect("a value")
                .current();
            let _ = mutated(base(), &m);
            let h = random_header(&names())
                .new_tree(&mut runner)
                .expect("a value")
                .current();
            assert!(h.to_bytes().len() >= 8);
        }
    }
}

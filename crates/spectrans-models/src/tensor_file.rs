//! Safetensors files: memory-mapped reading with dtype conversion, and atomic writing.
//!
//! Weights are addressed by their PyTorch `state_dict` names. Floating tensors stored as F32, F64,
//! F16 or BF16 are converted to what the caller asks for; integer tensors (token ids, targets,
//! masks) are read as `i64`. Every failure names the file and the tensor.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use ndarray::{ArrayD, ArrayViewD, IxDyn};
use safetensors::tensor::{Metadata, TensorInfo};
use safetensors::{Dtype, SafeTensors};

/// Errors reading or writing a safetensors file.
#[derive(Debug, thiserror::Error)]
pub enum TensorFileError {
    /// The file could not be opened, mapped, written or renamed. Displays the path; the OS
    /// error is the [`source`](std::error::Error::source), so a `{:#}` chain prints it once.
    #[error("{}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The header or the data layout is not valid safetensors (truncated, corrupt, overlapping).
    #[error("{path}: not a valid safetensors file ({reason})")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the parser found wrong.
        reason: String,
    },
    /// A tensor the caller needs is absent.
    #[error("{path}: tensor `{name}` is missing")]
    Missing {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        name: String,
    },
    /// A tensor has a dtype that cannot be converted to what is needed.
    #[error("{path}: tensor `{name}` has dtype {found}, expected {expected}")]
    Dtype {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        name: String,
        /// The dtypes accepted.
        expected: &'static str,
        /// The dtype in the file.
        found: String,
    },
    /// The tensors could not be serialised.
    #[error("{path}: cannot serialise tensors ({reason})")]
    Serialise {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// The page size [`TensorFile::read_f32_chunks`] assumes when it lets pages go (4 KiB).
const PAGE: usize = 4096;

/// A safetensors file, memory-mapped, with its header parsed and validated once.
#[derive(Debug)]
pub struct TensorFile {
    path: PathBuf,
    map: Mmap,
    header_len: usize,
    metadata: Metadata,
}

impl TensorFile {
    /// Opens and validates a file: the header must parse and the data section must match it
    /// exactly (a truncated or padded file is rejected).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, TensorFileError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| TensorFileError::Io {
            path: path.clone(),
            source,
        };
        let file = File::open(&path).map_err(io)?;
        // SAFETY: the map is read-only and private to this process; a file truncated by another
        // process while mapped is outside what this library guards against (as for any mmap user).
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        if let Some(reason) = offsets_beyond_file(&map) {
            return Err(TensorFileError::Corrupt { path, reason });
        }
        let (header_len, metadata) =
            SafeTensors::read_metadata(&map).map_err(|e| TensorFileError::Corrupt {
                path: path.clone(),
                reason: format!("{e:?}"),
            })?;
        Ok(Self {
            path,
            map,
            header_len,
            metadata,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The names of all tensors, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.metadata.tensors().into_keys().collect();
        names.sort();
        names
    }

    /// Whether the file holds a tensor of this name.
    pub fn contains(&self, name: &str) -> bool {
        self.metadata.info(name).is_some()
    }

    /// A value of the file's `__metadata__` header, if it has one under `key`.
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata
            .metadata()
            .as_ref()
            .and_then(|m| m.get(key))
            .map(String::as_str)
    }

    /// The dtype and shape of a tensor.
    pub fn info(&self, name: &str) -> Option<(Dtype, Vec<usize>)> {
        self.metadata
            .info(name)
            .map(|info| (info.dtype, info.shape.clone()))
    }

    fn raw(&self, name: &str) -> Result<(&TensorInfo, &[u8]), TensorFileError> {
        let info = self
            .metadata
            .info(name)
            .ok_or_else(|| TensorFileError::Missing {
                path: self.path.clone(),
                name: name.to_string(),
            })?;
        let start = 8 + self.header_len + info.data_offsets.0;
        let end = 8 + self.header_len + info.data_offsets.1;
        let bytes = self
            .map
            .get(start..end)
            .ok_or_else(|| TensorFileError::Corrupt {
                path: self.path.clone(),
                reason: format!("tensor `{name}` lies outside the file"),
            })?;
        Ok((info, bytes))
    }

    /// The values of a floating tensor as f32 (the conversions of [`TensorFile::read_f32`]),
    /// handed to `f` in row-major order a chunk at a time, without a copy of the whole
    /// tensor; the file's pages behind each chunk are let go from this process's memory
    /// (`madvise(DONTNEED)`: reading the tensor again reads the file again), so a loader
    /// that copies the values where they belong holds each of them once.
    pub fn read_f32_chunks(
        &self,
        name: &str,
        f: &mut dyn FnMut(&[f32]),
    ) -> Result<(), TensorFileError> {
        const CHUNK: usize = 1 << 14;
        let (info, bytes) = self.raw(name)?;
        let size = match info.dtype {
            Dtype::F32 => 4,
            Dtype::F64 => 8,
            Dtype::F16 | Dtype::BF16 => 2,
            other => return Err(self.dtype_error(name, "F32, F64, F16 or BF16", other)),
        };
        let count = info.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if count.and_then(|n| n.checked_mul(size)) != Some(bytes.len()) {
            return Err(TensorFileError::Corrupt {
                path: self.path.clone(),
                reason: format!(
                    "tensor `{name}` data does not fill shape {:?}: {} bytes",
                    info.shape,
                    bytes.len()
                ),
            });
        }
        let mut values = Vec::with_capacity(CHUNK.min(bytes.len() / size));
        // The map offset up to which pages were let go (page-aligned).
        let mut released = self.offset_of(bytes) / PAGE * PAGE;
        for chunk in bytes.chunks(CHUNK * size) {
            values.clear();
            match info.dtype {
                Dtype::F32 => values.extend(le_chunks::<4>(chunk).map(f32::from_le_bytes)),
                Dtype::F64 => {
                    values.extend(le_chunks::<8>(chunk).map(|b| f64::from_le_bytes(b) as f32))
                }
                Dtype::F16 => values.extend(
                    le_chunks::<2>(chunk).map(|b| half::f16::from_le_bytes(b).to_f64() as f32),
                ),
                _ => values.extend(
                    le_chunks::<2>(chunk).map(|b| half::bf16::from_le_bytes(b).to_f64() as f32),
                ),
            }
            f(&values);
            let end = (self.offset_of(chunk) + chunk.len()) / PAGE * PAGE;
            self.release(released, end);
            released = released.max(end);
        }
        Ok(())
    }

    /// Where `bytes` (a slice of the map) starts in it.
    fn offset_of(&self, bytes: &[u8]) -> usize {
        bytes.as_ptr() as usize - self.map.as_ptr() as usize
    }

    /// Lets the map's pages from `start` to `end` (page-aligned offsets) go from this
    /// process's memory. A page shared with a neighbouring tensor may go too: it is read from
    /// the file again when needed. Advice only: where the system has no `madvise`, or
    /// refuses it (pages larger than [`PAGE`]), nothing changes.
    fn release(&self, start: usize, end: usize) {
        #[cfg(unix)]
        if end > start {
            // SAFETY: the map is a read-only mapping of the file that this process never
            // writes, so a dropped page reads back the file's bytes at its next access (as
            // any page of a file mapping may be dropped and read again by the kernel); the
            // range is whole pages inside the map, which starts page-aligned.
            let _ = unsafe {
                self.map.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    start,
                    end - start,
                )
            };
        }
        #[cfg(not(unix))]
        let _ = (start, end);
    }

    fn dtype_error(&self, name: &str, expected: &'static str, found: Dtype) -> TensorFileError {
        TensorFileError::Dtype {
            path: self.path.clone(),
            name: name.to_string(),
            expected,
            found: format!("{found:?}"),
        }
    }

    /// Reads a floating tensor as f64 (F32, F64, F16 or BF16 in the file).
    pub fn read_f64(&self, name: &str) -> Result<ArrayD<f64>, TensorFileError> {
        let (info, bytes) = self.raw(name)?;
        let values: Vec<f64> = match info.dtype {
            Dtype::F32 => le_chunks::<4>(bytes)
                .map(|b| f32::from_le_bytes(b) as f64)
                .collect(),
            Dtype::F64 => le_chunks::<8>(bytes).map(f64::from_le_bytes).collect(),
            Dtype::F16 => le_chunks::<2>(bytes)
                .map(|b| half::f16::from_le_bytes(b).to_f64())
                .collect(),
            Dtype::BF16 => le_chunks::<2>(bytes)
                .map(|b| half::bf16::from_le_bytes(b).to_f64())
                .collect(),
            other => return Err(self.dtype_error(name, "F32, F64, F16 or BF16", other)),
        };
        self.shaped(name, &info.shape, values)
    }

    /// Reads a floating tensor as f32 (F32, F64, F16 or BF16 in the file).
    pub fn read_f32(&self, name: &str) -> Result<ArrayD<f32>, TensorFileError> {
        let (info, bytes) = self.raw(name)?;
        if info.dtype == Dtype::F32 {
            let values = le_chunks::<4>(bytes).map(f32::from_le_bytes).collect();
            return self.shaped(name, &info.shape, values);
        }
        Ok(self.read_f64(name)?.mapv(|v| v as f32))
    }

    /// Reads an integer tensor as i64 (I64, I32, I16, I8, U8, U16, U32 or BOOL in the file).
    pub fn read_i64(&self, name: &str) -> Result<ArrayD<i64>, TensorFileError> {
        let (info, bytes) = self.raw(name)?;
        let values: Vec<i64> = match info.dtype {
            Dtype::I64 => le_chunks::<8>(bytes).map(i64::from_le_bytes).collect(),
            Dtype::I32 => le_chunks::<4>(bytes)
                .map(|b| i32::from_le_bytes(b) as i64)
                .collect(),
            Dtype::U32 => le_chunks::<4>(bytes)
                .map(|b| u32::from_le_bytes(b) as i64)
                .collect(),
            Dtype::I16 => le_chunks::<2>(bytes)
                .map(|b| i16::from_le_bytes(b) as i64)
                .collect(),
            Dtype::U16 => le_chunks::<2>(bytes)
                .map(|b| u16::from_le_bytes(b) as i64)
                .collect(),
            Dtype::I8 => bytes.iter().map(|&b| b as i8 as i64).collect(),
            Dtype::U8 | Dtype::BOOL => bytes.iter().map(|&b| b as i64).collect(),
            other => return Err(self.dtype_error(name, "an integer dtype", other)),
        };
        self.shaped(name, &info.shape, values)
    }

    /// Reads a mask of any integer, boolean or floating dtype as 0/1 (nonzero = 1).
    pub fn read_mask(&self, name: &str) -> Result<ArrayD<bool>, TensorFileError> {
        let (info, _) = self.raw(name)?;
        match info.dtype {
            Dtype::F32 | Dtype::F64 | Dtype::F16 | Dtype::BF16 => {
                Ok(self.read_f64(name)?.mapv(|v| v != 0.0))
            }
            _ => Ok(self.read_i64(name)?.mapv(|v| v != 0)),
        }
    }

    fn shaped<T>(
        &self,
        name: &str,
        shape: &[usize],
        values: Vec<T>,
    ) -> Result<ArrayD<T>, TensorFileError> {
        ArrayD::from_shape_vec(IxDyn(shape), values).map_err(|e| TensorFileError::Corrupt {
            path: self.path.clone(),
            reason: format!("tensor `{name}` data does not fill shape {shape:?}: {e}"),
        })
    }
}

/// The first tensor whose `data_offsets` point past the end of the file, described; None when
/// all lie inside it or when the header does not parse (`read_metadata` then says why).
///
/// safetensors 0.4 adds the last offset to the header size unchecked, which panics in builds
/// with overflow checks when a header claims an offset near `usize::MAX`; such a file is
/// corrupt in any case, so it is rejected here first.
fn offsets_beyond_file(bytes: &[u8]) -> Option<String> {
    let prefix: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    let header_len = usize::try_from(u64::from_le_bytes(prefix)).ok()?;
    let header = bytes.get(8..header_len.checked_add(8)?)?;
    let metadata: Metadata = serde_json::from_slice(header).ok()?;
    let data_len = bytes.len() - 8 - header_len;
    let mut tensors: Vec<(String, &TensorInfo)> = metadata.tensors().into_iter().collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    tensors
        .into_iter()
        .find(|(_, info)| info.data_offsets.0.max(info.data_offsets.1) > data_len)
        .map(|(name, info)| {
            format!(
                "tensor `{name}` has data_offsets [{}, {}], beyond the {data_len} data bytes",
                info.data_offsets.0, info.data_offsets.1
            )
        })
}

fn le_chunks<const N: usize>(bytes: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
    bytes.chunks_exact(N).map(|c| {
        let mut a = [0u8; N];
        a.copy_from_slice(c);
        a
    })
}

/// A tensor to write: f32 data, or i64 data (token ids, class targets).
#[derive(Debug, Clone, PartialEq)]
pub enum OwnedTensor {
    /// Floating data, written as F32.
    F32(ArrayD<f32>),
    /// Integer data, written as I64.
    I64(ArrayD<i64>),
}

impl From<ArrayD<f32>> for OwnedTensor {
    fn from(a: ArrayD<f32>) -> Self {
        OwnedTensor::F32(a)
    }
}

impl From<ArrayD<i64>> for OwnedTensor {
    fn from(a: ArrayD<i64>) -> Self {
        OwnedTensor::I64(a)
    }
}

fn f32_bytes(a: ArrayViewD<'_, f32>) -> Vec<u8> {
    a.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The header entry safetensors reserves for string metadata.
const METADATA_KEY: &str = "__metadata__";

/// Writes tensors to `path` atomically: to a temporary file beside it, then a rename, so a
/// failure never leaves a half-written file under the final name.
pub fn write_tensors(
    path: impl AsRef<Path>,
    tensors: &BTreeMap<String, OwnedTensor>,
) -> Result<(), TensorFileError> {
    write_tensors_with_metadata(path, tensors, &BTreeMap::new())
}

/// [`write_tensors`] with string `__metadata__` (none is written when `metadata` is empty).
pub fn write_tensors_with_metadata(
    path: impl AsRef<Path>,
    tensors: &BTreeMap<String, OwnedTensor>,
    metadata: &BTreeMap<String, String>,
) -> Result<(), TensorFileError> {
    let path = path.as_ref();
    let serialise_err = |reason: String| TensorFileError::Serialise {
        path: path.to_path_buf(),
        reason,
    };
    if tensors.contains_key(METADATA_KEY) {
        return Err(serialise_err(format!(
            "`{METADATA_KEY}` is the header's metadata entry, not a tensor name"
        )));
    }
    let encoded: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, t)| match t {
            OwnedTensor::F32(a) => (
                name.clone(),
                Dtype::F32,
                a.shape().to_vec(),
                f32_bytes(a.view()),
            ),
            OwnedTensor::I64(a) => (
                name.clone(),
                Dtype::I64,
                a.shape().to_vec(),
                a.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
        })
        .collect();
    let views = encoded
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            safetensors::tensor::TensorView::new(*dtype, shape.clone(), bytes)
                .map(|v| (name.as_str(), v))
                .map_err(|e| serialise_err(format!("{name}: {e:?}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let metadata = (!metadata.is_empty()).then(|| {
        metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<std::collections::HashMap<_, _>>()
    });
    let bytes =
        safetensors::serialize(views, &metadata).map_err(|e| serialise_err(format!("{e:?}")))?;
    write_atomically(path, &bytes)
}

/// Writes bytes with [`spectrans_config::write_atomically`] (synced temporary file, rename,
/// synced folder), naming `path` in the error.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), TensorFileError> {
    spectrans_config::write_atomically(path, bytes).map_err(|source| TensorFileError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::arr2;

    fn tmp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "spectrans-tensor-file-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn round_trip_f32_and_i64() {
        let path = tmp_dir().join("rt.safetensors");
        let mut tensors = BTreeMap::new();
        tensors.insert(
            "a.weight".to_string(),
            OwnedTensor::F32(arr2(&[[1.0f32, -2.5], [3.0, 4.25]]).into_dyn()),
        );
        tensors.insert(
            "ids".to_string(),
            OwnedTensor::I64(arr2(&[[1i64, 7, 9]]).into_dyn()),
        );
        write_tensors(&path, &tensors).unwrap();
        let f = TensorFile::open(&path).unwrap();
        assert_eq!(f.names(), vec!["a.weight".to_string(), "ids".to_string()]);
        assert_eq!(
            OwnedTensor::F32(f.read_f32("a.weight").unwrap()),
            tensors["a.weight"]
        );
        assert_eq!(OwnedTensor::I64(f.read_i64("ids").unwrap()), tensors["ids"]);
        assert_eq!(f.read_f64("a.weight").unwrap()[[1, 1]], 4.25);
        assert!(matches!(
            f.read_i64("a.weight"),
            Err(TensorFileError::Dtype { .. })
        ));
        assert!(matches!(
            f.read_f32("nope"),
            Err(TensorFileError::Missing { .. })
        ));
        let mask = f.read_mask("ids").unwrap();
        assert!(mask.iter().all(|&m| m));
    }

    #[test]
    fn truncated_and_garbage_files_are_rejected() {
        let dir = tmp_dir();
        let path = dir.join("ok.safetensors");
        let mut tensors = BTreeMap::new();
        tensors.insert(
            "w".to_string(),
            OwnedTensor::F32(ArrayD::zeros(IxDyn(&[4, 4]))),
        );
        write_tensors(&path, &tensors).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let cut = dir.join("cut.safetensors");
        std::fs::write(&cut, &bytes[..bytes.len() - 3]).unwrap();
        assert!(matches!(
            TensorFile::open(&cut),
            Err(TensorFileError::Corrupt { .. })
        ));
        let junk = dir.join("junk.safetensors");
        std::fs::write(&junk, b"this is not a safetensors file at all").unwrap();
        assert!(matches!(
            TensorFile::open(&junk),
            Err(TensorFileError::Corrupt { .. })
        ));
        assert!(matches!(
            TensorFile::open(dir.join("absent.safetensors")),
            Err(TensorFileError::Io { .. })
        ));
    }

    #[test]
    fn offsets_beyond_the_file_are_corrupt_not_an_overflow() {
        // Found by the loader fuzz tests: safetensors 0.4 computes `end + 8 + header_len`
        // unchecked, which panicked (debug builds) for an end offset near usize::MAX.
        let header =
            br#"{"a":{"dtype":"U8","shape":[18446744073709551612],"data_offsets":[0,18446744073709551612]}}"#;
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header);
        bytes.extend_from_slice(&[0; 4]);
        let path = tmp_dir().join("far.safetensors");
        std::fs::write(&path, bytes).unwrap();
        let err = TensorFile::open(&path).unwrap_err();
        assert!(matches!(err, TensorFileError::Corrupt { .. }), "{err:?}");
        let shown = err.to_string();
        assert!(shown.contains("far.safetensors"), "{shown}");
        assert!(
            shown.contains("tensor `a` has data_offsets [0, 18446744073709551612]"),
            "{shown}"
        );
    }

    #[test]
    fn a_tensor_named_like_the_metadata_entry_is_refused() {
        let path = tmp_dir().join("meta.safetensors");
        let mut tensors = BTreeMap::new();
        tensors.insert(
            "__metadata__".to_string(),
            OwnedTensor::F32(ArrayD::zeros(IxDyn(&[1]))),
        );
        let err = write_tensors(&path, &tensors).unwrap_err();
        assert!(matches!(err, TensorFileError::Serialise { .. }), "{err:?}");
        assert!(!path.exists());
    }

    #[test]
    fn half_precision_is_converted() {
        let path = tmp_dir().join("half.safetensors");
        let vals = [half::f16::from_f32(1.5), half::f16::from_f32(-0.25)];
        let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        let view = safetensors::tensor::TensorView::new(Dtype::F16, vec![2], &bytes).unwrap();
        let data = safetensors::serialize(vec![("h", view)], &None).unwrap();
        std::fs::write(&path, data).unwrap();
        let f = TensorFile::open(&path).unwrap();
        assert_eq!(f.read_f32("h").unwrap().as_slice().unwrap(), &[1.5, -0.25]);
    }

    /// Chunks of a tensor longer than several chunks (and not a multiple of one), in every
    /// floating dtype, put together: the values of `read_f32`, also when read again after
    /// the pages behind each chunk were let go.
    #[test]
    fn chunks_hold_the_values_of_read_f32_in_every_dtype() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chunks.safetensors");
        let values: Vec<f64> = (0..39_003).map(|i| (i as f64 * 0.37).sin() * 3.0).collect();
        let bytes: Vec<(Dtype, Vec<u8>)> = vec![
            (
                Dtype::F32,
                values
                    .iter()
                    .flat_map(|&v| (v as f32).to_le_bytes())
                    .collect(),
            ),
            (
                Dtype::F64,
                values.iter().flat_map(|&v| v.to_le_bytes()).collect(),
            ),
            (
                Dtype::F16,
                values
                    .iter()
                    .flat_map(|&v| half::f16::from_f64(v).to_le_bytes())
                    .collect(),
            ),
            (
                Dtype::BF16,
                values
                    .iter()
                    .flat_map(|&v| half::bf16::from_f64(v).to_le_bytes())
                    .collect(),
            ),
        ];
        let names: Vec<String> = bytes.iter().map(|(d, _)| format!("{d:?}")).collect();
        let views: Vec<(&str, safetensors::tensor::TensorView<'_>)> = bytes
            .iter()
            .zip(&names)
            .map(|((dtype, b), name)| {
                let view = safetensors::tensor::TensorView::new(*dtype, vec![3, 13_001], b);
                (name.as_str(), view.unwrap())
            })
            .collect();
        std::fs::write(&path, safetensors::serialize(views, &None).unwrap()).unwrap();
        let f = TensorFile::open(&path).unwrap();
        for name in &names {
            for _ in 0..2 {
                let mut got = Vec::new();
                let mut chunks = 0;
                f.read_f32_chunks(name, &mut |c| {
                    got.extend_from_slice(c);
                    chunks += 1;
                })
                .unwrap();
                assert!(chunks > 2, "{name}: {chunks} chunks");
                let whole = f.read_f32(name).unwrap();
                assert_eq!(got.as_slice(), whole.as_slice().unwrap(), "{name}");
            }
        }
        assert!(matches!(
            f.read_f32_chunks("missing", &mut |_| {}),
            Err(TensorFileError::Missing { .. })
        ));
    }
}

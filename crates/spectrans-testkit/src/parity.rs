//! Parity with PyTorch spectrans 0.1.0: the committed fixtures (`fixtures/`, written by
//! `cargo xtask gen-fixtures`) and the measured-error rows the parity tests check and report.
//!
//! The fixtures are read here with the `safetensors` crate alone, not with the crates under
//! test, so spectrans-models (forward parity) and spectrans-train (gradient parity) share one
//! reader and this crate depends on neither. Each test loads its model from
//! [`Case::config_path`] and [`Case::weights_path`] itself.
//!
//! Set `SPECTRANS_PARITY_REPORT=path` to have [`check`] append the rows as a markdown table
//! (`cargo xtask parity` does, and merges the tables into docs/parity.md).

use std::path::{Path, PathBuf};

use ndarray::{Array2, Array3, ArrayD, IxDyn};
use safetensors::{Dtype, SafeTensors};

/// One entry of `fixtures/manifest.json`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Case {
    /// `forward` or `grad`: the folder under `fixtures/`.
    pub kind: String,
    /// The fixture's folder name.
    pub case: String,
    /// What the fixture covers (the report's third column).
    pub description: String,
    /// The loss of a `grad` fixture: `ce` or `mse`.
    pub loss: Option<String>,
}

/// The repository's `fixtures/` folder.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// The manifest's cases of `kind` (`forward` or `grad`), in manifest order.
pub fn cases(kind: &str) -> Vec<Case> {
    let path = fixtures_dir().join("manifest.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let all: Vec<Case> = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{}: does not parse: {e}", path.display()));
    all.into_iter().filter(|c| c.kind == kind).collect()
}

impl Case {
    /// The fixture's folder.
    pub fn dir(&self) -> PathBuf {
        fixtures_dir().join(&self.kind).join(&self.case)
    }

    /// The model config (`config.toml`).
    pub fn config_path(&self) -> PathBuf {
        self.dir().join("config.toml")
    }

    /// The PyTorch model's weights (`weights.safetensors`).
    pub fn weights_path(&self) -> PathBuf {
        self.dir().join("weights.safetensors")
    }

    /// The inputs (`inputs.safetensors`: `input_ids` or `inputs_embeds`, optionally
    /// `attention_mask` and `targets`).
    pub fn inputs(&self) -> Tensors {
        Tensors::open(self.dir().join("inputs.safetensors"))
    }

    /// PyTorch's results (`expected.safetensors`: `output_f64`/`output_f32`, or `loss_f64`,
    /// `loss_f32`, `grad.<name>` and `grad_f32.<name>`).
    pub fn expected(&self) -> Tensors {
        Tensors::open(self.dir().join("expected.safetensors"))
    }
}

/// A fixture's safetensors file, held in memory. The readers panic with the file and tensor
/// named when a tensor is missing or of a type the fixtures never use: a broken fixture is a
/// failed test.
#[derive(Debug)]
pub struct Tensors {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl Tensors {
    /// Reads the file at `path`.
    pub fn open(path: PathBuf) -> Self {
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let tensors = Tensors { path, bytes };
        tensors.parsed();
        tensors
    }

    fn parsed(&self) -> SafeTensors<'_> {
        SafeTensors::deserialize(&self.bytes)
            .unwrap_or_else(|e| panic!("{}: not safetensors: {e}", self.path.display()))
    }

    /// The tensor names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.parsed().names().into_iter().cloned().collect();
        names.sort();
        names
    }

    /// Whether the file holds a tensor called `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.parsed().tensor(name).is_ok()
    }

    /// `name`'s shape and its elements, little-endian chunks of `size` bytes each converted
    /// by the `convert` that `dtype` picks (`None`: a type this reader refuses).
    fn read<T>(&self, name: &str, convert: impl Fn(Dtype, &[u8]) -> Option<T>) -> ArrayD<T> {
        let parsed = self.parsed();
        let view = parsed
            .tensor(name)
            .unwrap_or_else(|e| panic!("{}: {name}: {e}", self.path.display()));
        let dtype = view.dtype();
        let values: Vec<T> = view
            .data()
            .chunks_exact(dtype.size())
            .map(|b| {
                convert(dtype, b).unwrap_or_else(|| {
                    panic!(
                        "{}: {name}: unexpected dtype {dtype:?}",
                        self.path.display()
                    )
                })
            })
            .collect();
        ArrayD::from_shape_vec(IxDyn(view.shape()), values)
            .unwrap_or_else(|e| panic!("{}: {name}: {e}", self.path.display()))
    }

    /// An F32 tensor.
    pub fn f32(&self, name: &str) -> ArrayD<f32> {
        self.read(name, |dtype, b| match dtype {
            Dtype::F32 => Some(f32::from_le_bytes(b.try_into().ok()?)),
            _ => None,
        })
    }

    /// An F64 tensor, or an F32 one widened.
    pub fn f64(&self, name: &str) -> ArrayD<f64> {
        self.read(name, |dtype, b| match dtype {
            Dtype::F64 => Some(f64::from_le_bytes(b.try_into().ok()?)),
            Dtype::F32 => Some(f64::from(f32::from_le_bytes(b.try_into().ok()?))),
            _ => None,
        })
    }

    /// An I64 or I32 tensor.
    pub fn i64(&self, name: &str) -> ArrayD<i64> {
        self.read(name, |dtype, b| match dtype {
            Dtype::I64 => Some(i64::from_le_bytes(b.try_into().ok()?)),
            Dtype::I32 => Some(i64::from(i32::from_le_bytes(b.try_into().ok()?))),
            _ => None,
        })
    }

    /// A mask: nonzero elements of an integer, float or bool tensor are `true`.
    pub fn mask(&self, name: &str) -> ArrayD<bool> {
        self.read(name, |dtype, b| match dtype {
            Dtype::F32 => Some(f32::from_le_bytes(b.try_into().ok()?) != 0.0),
            Dtype::F64 => Some(f64::from_le_bytes(b.try_into().ok()?) != 0.0),
            Dtype::BOOL | Dtype::U8 | Dtype::I8 | Dtype::I16 | Dtype::I32 | Dtype::I64 => {
                Some(b.iter().any(|&x| x != 0))
            }
            _ => None,
        })
    }
}

/// A fixture's model input: token ids (B, N) or embeddings (B, N, D), and an optional
/// attention mask (B, N).
#[derive(Debug)]
pub struct FixtureInput {
    /// `input_ids`, when the fixture has them.
    pub ids: Option<Array2<i64>>,
    /// `inputs_embeds`, when the fixture has them (they win over ids).
    pub embeds: Option<Array3<f32>>,
    /// `attention_mask`, when the fixture has one.
    pub mask: Option<Array2<bool>>,
}

impl FixtureInput {
    /// Reads the input tensors of `inputs` (see [`Case::inputs`]).
    pub fn read(inputs: &Tensors) -> Self {
        fn rank<T, D: ndarray::Dimension>(name: &str, a: ArrayD<T>) -> ndarray::Array<T, D> {
            a.into_dimensionality()
                .unwrap_or_else(|e| panic!("{name}: not of rank {:?}: {e}", D::NDIM))
        }
        FixtureInput {
            ids: inputs
                .contains("input_ids")
                .then(|| rank("input_ids", inputs.i64("input_ids"))),
            embeds: inputs
                .contains("inputs_embeds")
                .then(|| rank("inputs_embeds", inputs.f32("inputs_embeds"))),
            mask: inputs
                .contains("attention_mask")
                .then(|| rank("attention_mask", inputs.mask("attention_mask"))),
        }
    }
}

/// `max |a − b|` over equal shapes (panics on a shape mismatch).
pub fn max_abs_diff(a: &ArrayD<f32>, b: &ArrayD<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape(), "shape mismatch");
    a.iter()
        .zip(b.iter())
        .map(|(&x, &y)| (f64::from(x) - y).abs())
        .fold(0.0, f64::max)
}

/// `max |a|` (0 for an empty array).
pub fn max_abs(a: &ArrayD<f64>) -> f64 {
    a.iter().map(|v| v.abs()).fold(0.0, f64::max)
}

/// One fixture's measured error against PyTorch float64, and the bound the test enforces.
#[derive(Debug, Clone)]
pub struct Row {
    /// `forward` or `grad`.
    pub kind: &'static str,
    /// The fixture's name.
    pub case: String,
    /// What it covers.
    pub description: String,
    /// Our error against torch float64.
    pub ours: f64,
    /// PyTorch float32's own error against float64, the same measure.
    pub torch_f32: f64,
    /// The largest error the test accepts.
    pub bound: f64,
}

/// Appends `rows` as a markdown table (with its own header) to the file
/// `SPECTRANS_PARITY_REPORT` names, if set.
fn report(rows: &[Row]) {
    let Ok(path) = std::env::var("SPECTRANS_PARITY_REPORT") else {
        return;
    };
    let mut md = String::new();
    md.push_str(
        "| kind | case | what it covers | ours vs torch f64 | torch f32 vs f64 | bound |\n",
    );
    md.push_str("| --- | --- | --- | ---: | ---: | ---: |\n");
    for r in rows {
        md.push_str(&format!(
            "| {} | `{}` | {} | {:.2e} | {:.2e} | {:.1e} |\n",
            r.kind, r.case, r.description, r.ours, r.torch_f32, r.bound
        ));
    }
    let mut existing = std::fs::read_to_string(&path).unwrap_or_default();
    existing.push_str(&md);
    std::fs::write(&path, existing).unwrap_or_else(|e| panic!("{path}: {e}"));
}

/// Prints `rows`, appends them to the `SPECTRANS_PARITY_REPORT` file if that is set, and fails
/// when there are none or when any error is NaN or above its bound.
pub fn check(rows: Vec<Row>) {
    assert!(!rows.is_empty(), "no fixtures found");
    for r in &rows {
        println!(
            "{:<8} {:<28} ours {:.3e}  torch_f32 {:.3e}  bound {:.1e}",
            r.kind, r.case, r.ours, r.torch_f32, r.bound
        );
    }
    report(&rows);
    let failed: Vec<String> = rows
        .iter()
        .filter(|r| r.ours.is_nan() || r.ours > r.bound)
        .map(|r| format!("{} (error {:.3e} > bound {:.1e})", r.case, r.ours, r.bound))
        .collect();
    assert!(failed.is_empty(), "parity failures: {failed:#?}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_lists_existing_fixtures_of_both_kinds() {
        for kind in ["forward", "grad"] {
            let cases = cases(kind);
            assert!(!cases.is_empty(), "no {kind} fixtures");
            for c in &cases {
                assert!(c.config_path().is_file(), "{}", c.config_path().display());
                assert!(c.weights_path().is_file(), "{}", c.weights_path().display());
                let input = FixtureInput::read(&c.inputs());
                assert!(input.ids.is_some() || input.embeds.is_some(), "{}", c.case);
            }
        }
    }

    #[test]
    fn max_abs_diff_is_the_largest_elementwise_gap() {
        let a = ArrayD::from_shape_vec(IxDyn(&[3]), vec![1.0f32, -2.0, 3.0]).unwrap();
        let b = ArrayD::from_shape_vec(IxDyn(&[3]), vec![1.5f64, -2.5, 0.0]).unwrap();
        assert_eq!(max_abs_diff(&a, &b), 3.0);
        assert_eq!(max_abs(&b), 2.5);
    }
}

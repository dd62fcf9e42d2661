//! Loading and saving a model's weights as safetensors, by PyTorch `state_dict` names.
//!
//! Loading is strict: every missing, unexpected, misshapen or non-finite tensor is named in one
//! error. The buffers spectrans keeps in its `state_dict` (`positional_encoding.pe` for
//! sinusoidal positions, `positional_encoding.inv_freq` for rotary) are optional on load and
//! checked against the values we compute; saving writes them, so that PyTorch's
//! `load_state_dict(strict=True)` accepts our files.

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::{Array1, ArrayD, ArrayViewD, IxDyn};
use spectrans_layers::{Parameters, PositionalEncoding};

use crate::error::{ModelError, WeightProblem};
use crate::gfnet::Gfnet;
use crate::tensor_file::{OwnedTensor, TensorFile, write_tensors};

/// Name of the sinusoidal table buffer.
pub const PE_BUFFER: &str = "positional_encoding.pe";
/// Name of the rotary inverse-frequency buffer.
pub const INV_FREQ_BUFFER: &str = "positional_encoding.inv_freq";

/// Largest difference accepted between a stored buffer and the one we compute (torch and we
/// both compute them in f32; they agree far below this).
const BUFFER_TOLERANCE: f32 = 1e-4;

impl Gfnet {
    /// The buffers spectrans stores beside the parameters, computed for this model.
    pub fn buffers(&self) -> BTreeMap<String, ArrayD<f32>> {
        let mut out = BTreeMap::new();
        match &self.positional_encoding {
            Some(PositionalEncoding::Sinusoidal(e)) => {
                let (s, d) = e.pe.dim();
                if let Ok(pe) = e.pe.clone().into_shape_with_order(IxDyn(&[1, s, d])) {
                    out.insert(PE_BUFFER.to_string(), pe);
                }
            }
            Some(PositionalEncoding::Rotary(_)) => {
                let inv = spectrans_layers::rotary_inv_freq(self.config().hidden_dim());
                out.insert(INV_FREQ_BUFFER.to_string(), Array1::from(inv).into_dyn());
            }
            _ => {}
        }
        out
    }

    /// Every parameter and buffer, as PyTorch's `state_dict()` would hold them.
    pub fn state_dict(&self) -> BTreeMap<String, OwnedTensor> {
        let mut out: BTreeMap<String, OwnedTensor> = BTreeMap::new();
        self.visit("", &mut |name, t| {
            out.insert(name.to_string(), OwnedTensor::F32(t.to_owned()));
        });
        for (name, b) in self.buffers() {
            out.insert(name, OwnedTensor::F32(b));
        }
        out
    }

    /// Saves the `state_dict` to a safetensors file (atomically: temp file, then rename).
    pub fn save_weights(&self, path: impl AsRef<Path>) -> Result<(), ModelError> {
        Ok(write_tensors(path, &self.state_dict())?)
    }

    /// Builds a model from `config` and loads `path` into it (strict). The weights are
    /// packed once, after loading ([`Gfnet::pack_weights`]).
    pub fn from_weights(
        config: &spectrans_config::Config,
        path: impl AsRef<Path>,
    ) -> Result<Self, ModelError> {
        let file = TensorFile::open(path)?;
        Self::from_source(config, &file)
    }

    /// Builds a model from `config` and loads every parameter from `source` (strict, as
    /// [`Gfnet::load_from`]); the weights are packed once, after loading.
    pub fn from_source(
        config: &spectrans_config::Config,
        source: &dyn TensorSource,
    ) -> Result<Self, ModelError> {
        let mut model = Gfnet::new_unpacked(config, 0)?;
        model.load_from(source)?;
        Ok(model)
    }

    /// Loads every parameter from a safetensors file (strict).
    pub fn load_weights(&mut self, path: impl AsRef<Path>) -> Result<(), ModelError> {
        let file = TensorFile::open(path)?;
        self.load_tensor_file(&file)
    }

    /// Loads every parameter from an open file. Nothing is changed unless the whole file fits.
    pub fn load_tensor_file(&mut self, file: &TensorFile) -> Result<(), ModelError> {
        self.load_from(file)
    }

    /// Loads every parameter from tensors in memory, by PyTorch `state_dict` name, as strictly
    /// as [`Gfnet::load_weights`]: every missing, unexpected, misshapen or non-finite tensor is
    /// named in one [`ModelError::Weights`] whose `path` is `source`. Nothing is changed unless
    /// every tensor fits.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use spectrans_config::Config;
    /// use spectrans_models::Gfnet;
    ///
    /// let config = Config::from_toml_str(
    ///     "[model]\nhidden_dim = 8\nnum_layers = 1\nsequence_length = 4\nvocab_size = 10\n",
    /// )?;
    /// let trained = Gfnet::new(&config, 1)?;
    /// let tensors: BTreeMap<_, _> = trained
    ///     .state_dict()
    ///     .into_iter()
    ///     .filter_map(|(name, t)| match t {
    ///         spectrans_models::tensor_file::OwnedTensor::F32(a) => Some((name, a)),
    ///         _ => None,
    ///     })
    ///     .collect();
    /// let mut model = Gfnet::new(&config, 0)?;
    /// model.load_state_dict("state_dict", &tensors)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load_state_dict(
        &mut self,
        source: &str,
        tensors: &BTreeMap<String, ArrayD<f32>>,
    ) -> Result<(), ModelError> {
        self.load_from(&NamedTensors { source, tensors })
    }

    /// Loads every parameter from any [`TensorSource`] (strict, all or nothing).
    pub fn load_from(&mut self, source: &dyn TensorSource) -> Result<(), ModelError> {
        let mut problems: Vec<WeightProblem> = Vec::new();
        let mut loaded: BTreeMap<String, ArrayD<f32>> = BTreeMap::new();
        let mut expected: Vec<(String, Vec<usize>)> = Vec::new();
        self.visit("", &mut |name, t| {
            expected.push((name.to_string(), t.shape().to_vec()))
        });
        let names = source.names();
        for (name, shape) in &expected {
            if !names.contains(name) {
                problems.push(WeightProblem::Missing {
                    name: name.clone(),
                    shape: shape.clone(),
                });
                continue;
            }
            match source.read_f32(name) {
                Ok(t) if t.shape() != shape.as_slice() => problems.push(WeightProblem::Shape {
                    name: name.clone(),
                    buffer: false,
                    expected: shape.clone(),
                    found: t.shape().to_vec(),
                }),
                Ok(t) => {
                    if let Some(index) = t.iter().position(|v| !v.is_finite()) {
                        problems.push(WeightProblem::NonFinite {
                            name: name.clone(),
                            index,
                        });
                    } else {
                        loaded.insert(name.clone(), t);
                    }
                }
                Err(e) => problems.push(WeightProblem::Unreadable(e)),
            }
        }
        let buffers = self.buffers();
        for name in names {
            if expected.iter().any(|(n, _)| n == &name) {
                continue;
            }
            match buffers.get(&name) {
                Some(ours) => {
                    if let Err(p) = check_buffer(source, &name, ours.view()) {
                        problems.push(p);
                    }
                }
                None => problems.push(WeightProblem::Unexpected { name }),
            }
        }
        if !problems.is_empty() {
            return Err(ModelError::Weights {
                path: source.label(),
                problems,
            });
        }
        self.visit_mut("", &mut |name, mut t| {
            if let Some(v) = loaded.get(name) {
                t.assign(v);
            }
        });
        self.pack_weights();
        Ok(())
    }
}

/// Named f32 tensors a model can be loaded from: a safetensors file, a map in memory, or a
/// caller's own (the Python bindings read NumPy arrays through it).
pub trait TensorSource {
    /// What to call the source in errors (a file's path, `state_dict`).
    fn label(&self) -> String;
    /// The names of every tensor the source holds.
    fn names(&self) -> Vec<String>;
    /// One tensor as f32; the error says why it cannot be (its dtype, its bytes) and names it.
    fn read_f32(&self, name: &str) -> Result<ArrayD<f32>, String>;
}

impl TensorSource for TensorFile {
    fn label(&self) -> String {
        self.path().display().to_string()
    }
    fn names(&self) -> Vec<String> {
        TensorFile::names(self)
    }
    fn read_f32(&self, name: &str) -> Result<ArrayD<f32>, String> {
        TensorFile::read_f32(self, name).map_err(|e| e.to_string())
    }
}

/// A map of tensors in memory, under a label.
struct NamedTensors<'a> {
    source: &'a str,
    tensors: &'a BTreeMap<String, ArrayD<f32>>,
}

impl TensorSource for NamedTensors<'_> {
    fn label(&self) -> String {
        self.source.to_string()
    }
    fn names(&self) -> Vec<String> {
        self.tensors.keys().cloned().collect()
    }
    fn read_f32(&self, name: &str) -> Result<ArrayD<f32>, String> {
        self.tensors
            .get(name)
            .cloned()
            .ok_or_else(|| format!("{}: tensor `{name}` is missing", self.source))
    }
}

fn check_buffer(
    source: &dyn TensorSource,
    name: &str,
    ours: ArrayViewD<'_, f32>,
) -> Result<(), WeightProblem> {
    let theirs = source.read_f32(name).map_err(WeightProblem::Unreadable)?;
    if theirs.shape() != ours.shape() {
        return Err(WeightProblem::Shape {
            name: name.to_owned(),
            buffer: true,
            expected: ours.shape().to_vec(),
            found: theirs.shape().to_vec(),
        });
    }
    let diff = theirs
        .iter()
        .zip(ours.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(
            0.0f32,
            |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) },
        );
    if diff > BUFFER_TOLERANCE {
        return Err(WeightProblem::BufferDiffers {
            name: name.to_owned(),
            max_diff: diff,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use spectrans_config::Config;

    fn f32_state_dict(model: &Gfnet) -> BTreeMap<String, ArrayD<f32>> {
        model
            .state_dict()
            .into_iter()
            .filter_map(|(name, t)| match t {
                OwnedTensor::F32(a) => Some((name, a)),
                OwnedTensor::I64(_) => None,
            })
            .collect()
    }

    #[test]
    fn load_state_dict_names_every_problem_and_changes_nothing() {
        let config = Config::from_toml_str(
            "[model]\nhidden_dim = 8\nnum_layers = 1\nsequence_length = 4\nvocab_size = 10\n",
        )
        .unwrap();
        let trained = Gfnet::new(&config, 1).unwrap();
        let mut tensors = f32_state_dict(&trained);
        tensors.remove("final_norm.weight");
        tensors.insert("extra".into(), ArrayD::zeros(IxDyn(&[2])));
        tensors.insert("final_norm.bias".into(), ArrayD::zeros(IxDyn(&[3])));
        tensors.get_mut("embedding.weight").unwrap()[[0, 0]] = f32::NAN;
        let mut model = Gfnet::new(&config, 0).unwrap();
        let before = f32_state_dict(&model);
        let err = model.load_state_dict("state_dict", &tensors).unwrap_err();
        let text = err.to_string();
        for needle in [
            "weights state_dict:",
            "missing tensor `final_norm.weight`",
            "unexpected tensor `extra`",
            "tensor `final_norm.bias`: expected shape [8], found [3]",
            "tensor `embedding.weight` holds a non-finite value at flat index 0",
        ] {
            assert!(text.contains(needle), "{needle:?} not in {text}");
        }
        assert_eq!(f32_state_dict(&model), before);
        model
            .load_state_dict("state_dict", &f32_state_dict(&trained))
            .unwrap();
        assert_eq!(f32_state_dict(&model), f32_state_dict(&trained));
    }
}

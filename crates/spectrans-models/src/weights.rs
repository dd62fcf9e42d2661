//! Loading and saving a model's weights as safetensors, by PyTorch `state_dict` names.
//!
//! Loading is strict: every missing, unexpected, misshapen or non-finite tensor is named in one
//! error. The buffers spectrans keeps in its `state_dict` (`positional_encoding.pe` for
//! sinusoidal positions, `positional_encoding.inv_freq` for rotary) are optional on load and
//! checked against the values we compute; saving writes them, so that PyTorch's
//! `load_state_dict(strict=True)` accepts our files.

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::{Array1, ArrayD, ArrayViewD, ArrayViewMutD, IxDyn};
use spectrans_layers::{Parameters, PositionalEncoding, Precision};

use safetensors::Dtype;

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
        Self::from_weights_with_precision(config, path, Precision::F32)
    }

    /// [`Gfnet::from_weights`] with every Linear held in `precision` (see
    /// [`Gfnet::from_source_with_precision`]).
    pub fn from_weights_with_precision(
        config: &spectrans_config::Config,
        path: impl AsRef<Path>,
        precision: Precision,
    ) -> Result<Self, ModelError> {
        let file = TensorFile::open(path)?;
        Self::from_source_with_precision(config, &file, precision)
    }

    /// Builds a model from `config` and loads every parameter from `source` (strict, as
    /// [`Gfnet::load_from`]); the weights are packed once, after loading.
    pub fn from_source(
        config: &spectrans_config::Config,
        source: &dyn TensorSource,
    ) -> Result<Self, ModelError> {
        Self::from_source_with_precision(config, source, Precision::F32)
    }

    /// [`Gfnet::from_source`] with every Linear held in `precision`: the same values as
    /// loading in f32 and then [`Gfnet::set_precision`], in less memory. The source is checked
    /// whole first (every problem named in one error, nothing kept), then read again part by
    /// part: each block is loaded, then its Linears are packed (and converted) before the
    /// next block is read, and each tensor is copied a chunk at a time
    /// ([`TensorSource::read_chunks`]; a file lets its pages go behind each chunk). The peak
    /// is about the loaded model, not the model plus a copy of every tensor.
    ///
    /// ```
    /// use spectrans_models::{Gfnet, Precision};
    /// let config = spectrans_config::Config::builder()
    ///     .vocab_size(50).hidden_dim(16).num_layers(2).sequence_length(8).num_classes(3)
    ///     .build()?;
    /// let dir = std::env::temp_dir().join(format!("spectrans-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("weights.safetensors");
    /// Gfnet::new(&config, 1)?.save_weights(&path)?;
    /// let model = Gfnet::from_weights_with_precision(&config, &path, Precision::Int8)?;
    /// assert_eq!(model.precision(), Precision::Int8);
    /// std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_source_with_precision(
        config: &spectrans_config::Config,
        source: &dyn TensorSource,
        precision: Precision,
    ) -> Result<Self, ModelError> {
        let mut model = Gfnet::new_unpacked(config, 0, precision)?;
        model.check_source(source, false)?;
        model.load_part_by_part(source)?;
        model.pack_weights();
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

    /// Loads every parameter from any [`TensorSource`] (strict, all or nothing: every tensor
    /// is read and checked before the first is assigned, so the model holds a copy of each
    /// meanwhile).
    pub fn load_from(&mut self, source: &dyn TensorSource) -> Result<(), ModelError> {
        let loaded = self.check_source(source, true)?;
        self.visit_mut("", &mut |name, mut t| {
            if let Some(v) = loaded.get(name) {
                t.assign(v);
            }
        });
        self.pack_weights();
        Ok(())
    }

    /// Reads and checks every tensor of `source` against this model's parameters and
    /// buffers; names every problem in one [`ModelError::Weights`]. Returns the parameters
    /// read when `keep`; otherwise keeps nothing (each tensor is scanned a chunk at a time).
    fn check_source(
        &self,
        source: &dyn TensorSource,
        keep: bool,
    ) -> Result<BTreeMap<String, ArrayD<f32>>, ModelError> {
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
            match source.shape(name) {
                Ok(found) if found != *shape => problems.push(WeightProblem::Shape {
                    name: name.clone(),
                    buffer: false,
                    expected: shape.clone(),
                    found,
                }),
                Ok(_) => {
                    let mut values = Vec::new();
                    let (mut seen, mut non_finite) = (0, None);
                    let read = source.read_chunks(name, &mut |chunk| {
                        if non_finite.is_none() {
                            non_finite =
                                chunk.iter().position(|v| !v.is_finite()).map(|i| seen + i);
                        }
                        seen += chunk.len();
                        if keep {
                            values.extend_from_slice(chunk);
                        }
                    });
                    match (read, non_finite) {
                        (Err(e), _) => problems.push(WeightProblem::Unreadable(e)),
                        (Ok(()), Some(index)) => problems.push(WeightProblem::NonFinite {
                            name: name.clone(),
                            index,
                        }),
                        (Ok(()), None) => {
                            if keep {
                                match ArrayD::from_shape_vec(IxDyn(shape), values) {
                                    Ok(t) => {
                                        loaded.insert(name.clone(), t);
                                    }
                                    Err(_) => problems.push(WeightProblem::Unreadable(format!(
                                        "{}: tensor `{name}` does not hold {shape:?} values",
                                        source.label()
                                    ))),
                                }
                            }
                        }
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
        Ok(loaded)
    }

    /// Assigns every parameter from a source that [`Gfnet::check_source`] accepted, one part
    /// of the model at a time (by the `state_dict` prefixes of [`Parameters`] for `Gfnet`):
    /// each block's Linears are packed, in the model's precision, before the next block is
    /// read. A tensor that has changed since the check is an error (the model is then
    /// partly loaded: only constructors call this, and they drop it).
    fn load_part_by_part(&mut self, source: &dyn TensorSource) -> Result<(), ModelError> {
        let mut problems = Vec::new();
        let mut assign = |name: &str, mut ours: ArrayViewMutD<'_, f32>| {
            let changed = || {
                WeightProblem::Unreadable(format!(
                    "{}: tensor `{name}` changed while it was loaded",
                    source.label()
                ))
            };
            match source.shape(name) {
                Ok(found) if found != ours.shape() => problems.push(changed()),
                Ok(_) => {
                    let mut at = 0;
                    let mut dst = ours.iter_mut();
                    let read = source.read_chunks(name, &mut |chunk| {
                        // The chunk first: `zip` stops at its end without taking a
                        // destination value it would then drop.
                        for (&v, d) in chunk.iter().zip(dst.by_ref()) {
                            *d = v;
                        }
                        at += chunk.len();
                    });
                    match read {
                        Err(e) => problems.push(WeightProblem::Unreadable(e)),
                        Ok(()) if at != ours.len() => problems.push(changed()),
                        Ok(()) => {}
                    }
                }
                Err(e) => problems.push(WeightProblem::Unreadable(e)),
            }
        };
        if let Some(embedding) = &mut self.embedding {
            embedding.visit_mut("embedding.", &mut assign);
        }
        if let Some(positions) = &mut self.positional_encoding {
            positions.visit_mut("positional_encoding.", &mut assign);
        }
        for (i, block) in self.blocks.iter_mut().enumerate() {
            block.visit_mut(&format!("blocks.{i}."), &mut assign);
            block.ffn.fc1.pack();
            block.ffn.fc2.pack();
        }
        self.final_norm.visit_mut("final_norm.", &mut assign);
        if let Some(head) = &mut self.output_head {
            head.visit_mut("output_head.", &mut assign);
            head.linear.pack();
        }
        if !problems.is_empty() {
            return Err(ModelError::Weights {
                path: source.label(),
                problems,
            });
        }
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
    /// The shape of one tensor, with the same errors as [`TensorSource::read_f32`]. By
    /// default the tensor is read to learn it.
    fn shape(&self, name: &str) -> Result<Vec<usize>, String> {
        self.read_f32(name).map(|t| t.shape().to_vec())
    }
    /// The values of one tensor as f32, in row-major order, handed to `f` a chunk at a time
    /// (a file converts them chunk by chunk, so no copy of the whole tensor is made). By
    /// default the tensor is read whole and handed over as one chunk.
    fn read_chunks(&self, name: &str, f: &mut dyn FnMut(&[f32])) -> Result<(), String> {
        hand_over(&self.read_f32(name)?, f);
        Ok(())
    }
}

/// A tensor's values to `f` as one chunk, in row-major order.
fn hand_over(t: &ArrayD<f32>, f: &mut dyn FnMut(&[f32])) {
    match t.as_slice() {
        Some(values) => f(values),
        None => f(&t.iter().copied().collect::<Vec<_>>()),
    }
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
    fn shape(&self, name: &str) -> Result<Vec<usize>, String> {
        match self.info(name) {
            Some((Dtype::F32 | Dtype::F64 | Dtype::F16 | Dtype::BF16, shape)) => Ok(shape),
            // The dtype's error (or the missing tensor's) is read_f32's.
            _ => TensorSource::read_f32(self, name).map(|t| t.shape().to_vec()),
        }
    }
    fn read_chunks(&self, name: &str, f: &mut dyn FnMut(&[f32])) -> Result<(), String> {
        self.read_f32_chunks(name, f).map_err(|e| e.to_string())
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
        self.get(name).cloned()
    }
    fn shape(&self, name: &str) -> Result<Vec<usize>, String> {
        self.get(name).map(|t| t.shape().to_vec())
    }
    fn read_chunks(&self, name: &str, f: &mut dyn FnMut(&[f32])) -> Result<(), String> {
        hand_over(self.get(name)?, f);
        Ok(())
    }
}

impl NamedTensors<'_> {
    fn get(&self, name: &str) -> Result<&ArrayD<f32>, String> {
        self.tensors
            .get(name)
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

    /// Loading part by part, chunk by chunk (tensors of several chunks), in each precision:
    /// the weights and the forward of loading whole in f32 and then setting the precision;
    /// building in a precision gives those of building in f32 and then setting it.
    #[test]
    fn loading_and_building_in_a_precision_match_converting_afterwards() {
        use crate::ModelInput;
        use ndarray::Array2;
        let dir = tempfile::tempdir().unwrap();
        for toml in [
            "[model]\nhidden_dim = 128\nnum_layers = 2\nsequence_length = 8\nvocab_size = 300\n\
             num_classes = 3\npositional_encoding_type = \"learned\"\n",
            "[model]\nmodel_type = \"gfnet_encoder\"\nhidden_dim = 64\nnum_layers = 1\n\
             sequence_length = 8\n",
        ] {
            let config = Config::from_toml_str(toml).unwrap();
            let path = dir.path().join("weights.safetensors");
            Gfnet::new(&config, 7).unwrap().save_weights(&path).unwrap();
            let embeds =
                ndarray::Array3::from_shape_fn((2, 8, config.hidden_dim()), |(b, n, d)| {
                    ((b * 31 + n * 7 + d) as f32 * 0.1).sin()
                });
            let ids = Array2::from_shape_fn((2, 8), |(b, n)| (b * 8 + n) as i64);
            let input = match config.vocab_size() {
                Some(_) => ModelInput::TokenIds(ids.view()),
                None => ModelInput::Embeddings(embeds.view()),
            };
            for precision in [Precision::F32, Precision::Bf16, Precision::Int8] {
                let mut expected = Gfnet::new(&config, 7).unwrap();
                let mut whole = Gfnet::new(&config, 0).unwrap();
                whole.load_weights(&path).unwrap();
                expected.set_precision(precision);
                whole.set_precision(precision);
                let loaded = Gfnet::from_weights_with_precision(&config, &path, precision).unwrap();
                let built = Gfnet::with_precision(&config, 7, precision).unwrap();
                let want = f32_state_dict(&expected);
                for (what, model) in [("whole", &whole), ("loaded", &loaded), ("built", &built)] {
                    assert_eq!(model.precision(), precision, "{what}");
                    assert_eq!(f32_state_dict(model), want, "{what} {precision:?}");
                    assert_eq!(
                        model.forward(input, None).unwrap(),
                        expected.forward(input, None).unwrap(),
                        "{what} {precision:?}"
                    );
                }
            }
        }
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

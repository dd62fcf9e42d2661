//! `spectrans_rs`: the GFNet models of spectrans-rs from Python, NumPy in and NumPy out.
//!
//! ```python
//! import numpy as np
//! import spectrans_rs
//!
//! model = spectrans_rs.GFNet.from_files("config.toml", "weights.safetensors")
//! logits = model(input_ids=np.zeros((8, 512), dtype=np.int64))  # (8, num_classes), float32
//! ```
//!
//! Every Rust error becomes a Python exception ([`errors`] says which); no panic crosses into
//! Python. The GIL is released during forward passes and loading, which run on a rayon pool
//! ([`pool`]). Built with maturin: `pip install ./crates/spectrans-py`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use ndarray::{Array2, Array3, ArrayD};
use numpy::{IntoPyArray, PyArrayDyn};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rayon::ThreadPool;
use spectrans_config::Config;
use spectrans_models::memory::{MemoryBudget, Workload};
use spectrans_models::weights::TensorSource;
use spectrans_models::{Gfnet, ModelError, ModelInput, Precision, parameter_count};

pub mod convert;
pub mod errors;
pub mod pool;

use errors::{catch_panic, config_error, model_error, no_panic};

/// A GFNet (or GFNetEncoder) model of spectrans-rs, run from NumPy arrays.
///
/// Build one with ``GFNet.from_files(config, weights)``, ``GFNet.from_state_dict(config,
/// state_dict)``, or ``GFNet(config, seed=0)`` (initialised as spectrans does). ``config`` is
/// a path to a TOML config, or a dict of the TOML's structure (``{"model": {...}}``) or of the
/// ``[model]`` fields alone.
///
/// Call it like spectrans' ``forward``: ``model(input_ids=None, inputs_embeds=None,
/// attention_mask=None)`` returns float32 NumPy arrays: (B, C) for classification and
/// regression heads, (B, N, C) for sequence and lm heads, (B, N, D) hidden states without a
/// head. The GIL is released while it runs, so several Python threads can share one model.
#[pyclass(name = "GFNet", module = "spectrans_rs", frozen)]
#[derive(Debug)]
pub struct PyGfnet {
    model: Gfnet,
    /// The pool of `threads=`, when given.
    pool: Option<Arc<ThreadPool>>,
}

/// `precision=`: "f32", "bf16" or "int8" (see `Gfnet::set_precision`).
fn parse_precision(name: &str) -> PyResult<Precision> {
    name.parse::<Precision>()
        .map_err(|e| PyValueError::new_err(format!("precision: {e}")))
}

/// A config from a path (str or os.PathLike) or a dict.
/// Refuses a model whose parameters do not fit the process's budget
/// (`SPECTRANS_MAX_MEMORY`, else MemAvailable) before anything is allocated.
fn check_model_fits(config: &Config) -> PyResult<()> {
    MemoryBudget::from_env(None)
        .and_then(|budget| budget.check_fits(config, Workload::Parameters, "the model"))
        .map_err(|e| model_error(e.into()))
}

fn load_config(config: &Bound<'_, PyAny>) -> PyResult<Config> {
    if let Ok(dict) = config.cast::<PyDict>() {
        let text = convert::config_dict_to_toml(dict)?;
        return Config::from_toml_str(&text).map_err(config_error);
    }
    let path: PathBuf = config.extract().map_err(|_| {
        PyTypeError::new_err(format!(
            "config: expected a path (str or os.PathLike) or a dict, found {}",
            type_name(config)
        ))
    })?;
    let py = config.py();
    py.detach(|| catch_panic("loading the config", || Config::load(&path)))
        .map_err(PyRuntimeError::new_err)?
        .map_err(config_error)
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_string())
}

fn pool_for(threads: Option<usize>) -> PyResult<Option<Arc<ThreadPool>>> {
    threads.map(pool::build).transpose()
}

/// Tensors read from a Python mapping: each converted to float32, or why it could not be.
struct PyTensors(BTreeMap<String, Result<ArrayD<f32>, String>>);

impl TensorSource for PyTensors {
    fn label(&self) -> String {
        "state_dict".to_string()
    }
    fn names(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }
    fn read_f32(&self, name: &str) -> Result<ArrayD<f32>, String> {
        match self.0.get(name) {
            Some(Ok(a)) => Ok(a.clone()),
            Some(Err(e)) => Err(e.clone()),
            None => Err(format!("state_dict: tensor `{name}` is missing")),
        }
    }
}

fn read_state_dict(state_dict: &Bound<'_, PyAny>) -> PyResult<PyTensors> {
    let items = state_dict.call_method0("items").map_err(|_| {
        PyTypeError::new_err(format!(
            "state_dict: expected a mapping of names to arrays (a dict), found {}",
            type_name(state_dict)
        ))
    })?;
    let mut tensors = BTreeMap::new();
    for item in items.try_iter()? {
        let (key, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract()?;
        let name: String = key.extract().map_err(|_| {
            PyValueError::new_err(format!(
                "state_dict: keys must be str (PyTorch parameter names), found {}",
                type_name(&key)
            ))
        })?;
        let array =
            convert::to_array::<f32>(&value, &format!("tensor `{name}`"), convert::Want::Float32)?;
        tensors.insert(name, array);
    }
    Ok(PyTensors(tensors))
}

/// The model input, embeddings first (as spectrans: `inputs_embeds` wins when both are given).
enum Input {
    Ids(Array2<i64>),
    Embeds(Array3<f32>),
}

impl Input {
    fn view(&self) -> ModelInput<'_> {
        match self {
            Input::Ids(a) => ModelInput::TokenIds(a.view()),
            Input::Embeds(a) => ModelInput::Embeddings(a.view()),
        }
    }

    fn batch_and_len(&self) -> (usize, usize) {
        match self {
            Input::Ids(a) => a.dim(),
            Input::Embeds(a) => (a.dim().0, a.dim().1),
        }
    }
}

impl PyGfnet {
    fn forward_arrays(
        &self,
        input: &Input,
        mask: Option<&Array2<bool>>,
    ) -> Result<ArrayD<f32>, ModelError> {
        let (batch, seq_len) = input.batch_and_len();
        MemoryBudget::from_env(None)?.check_fits(
            self.model.config(),
            Workload::Inference { batch, seq_len },
            &format!("a forward pass of {batch} x {seq_len} tokens"),
        )?;
        pool::run(self.pool.as_ref(), || {
            self.model
                .forward(input.view(), mask.map(|m| m.view()))
                .map(spectrans_models::ModelOutput::into_dyn)
        })
    }
}

#[pymethods]
impl PyGfnet {
    /// A new model, initialised as spectrans initialises one (seeded): ``GFNet(config,
    /// seed=0, threads=None)``. ``config`` is a TOML path or a dict.
    #[new]
    #[pyo3(signature = (config, *, seed = 0, threads = None, precision = "f32"))]
    fn new(
        config: &Bound<'_, PyAny>,
        seed: u64,
        threads: Option<usize>,
        precision: &str,
    ) -> PyResult<Self> {
        no_panic("GFNet()", || {
            let precision = parse_precision(precision)?;
            let config = load_config(config)?;
            check_model_fits(&config)?;
            let pool = pool_for(threads)?;
            let model = Gfnet::with_precision(&config, seed, precision).map_err(model_error)?;
            Ok(Self { model, pool })
        })
    }

    /// Loads a model from a TOML config and a safetensors weights file (PyTorch
    /// ``state_dict`` names). Loading is strict: every missing, unexpected, misshapen or
    /// non-finite tensor is named in one ``ValueError``; a file that cannot be read raises
    /// ``OSError`` naming it. ``threads=n`` gives the model its own pool of n threads.
    #[staticmethod]
    #[pyo3(signature = (config, weights, *, threads = None, precision = "f32"))]
    fn from_files(
        py: Python<'_>,
        config: &Bound<'_, PyAny>,
        weights: PathBuf,
        threads: Option<usize>,
        precision: &str,
    ) -> PyResult<Self> {
        no_panic("GFNet.from_files", || {
            let precision = parse_precision(precision)?;
            let config = load_config(config)?;
            check_model_fits(&config)?;
            let pool = pool_for(threads)?;
            let model = py
                .detach(|| {
                    catch_panic("loading weights", || {
                        Gfnet::from_weights_with_precision(&config, &weights, precision)
                    })
                })
                .map_err(PyRuntimeError::new_err)?
                .map_err(model_error)?;
            Ok(Self { model, pool })
        })
    }

    /// Builds a model from a config (TOML path or dict) and a ``state_dict``: a mapping of
    /// PyTorch parameter names to NumPy arrays, or anything with ``__array__``, e.g.
    /// ``{k: v.numpy() for k, v in torch_model.state_dict().items()}``. Floating arrays are
    /// converted to float32. As strict as ``from_files``: every problem is named in one
    /// ``ValueError``.
    #[staticmethod]
    #[pyo3(signature = (config, state_dict, *, threads = None, precision = "f32"))]
    fn from_state_dict(
        config: &Bound<'_, PyAny>,
        state_dict: &Bound<'_, PyAny>,
        threads: Option<usize>,
        precision: &str,
    ) -> PyResult<Self> {
        no_panic("GFNet.from_state_dict", || {
            let precision = parse_precision(precision)?;
            let config = load_config(config)?;
            check_model_fits(&config)?;
            let pool = pool_for(threads)?;
            let tensors = read_state_dict(state_dict)?;
            let model = Gfnet::from_source_with_precision(&config, &tensors, precision)
                .map_err(model_error)?;
            Ok(Self { model, pool })
        })
    }

    /// The forward pass, in eval mode: ``model(input_ids=None, inputs_embeds=None,
    /// attention_mask=None)``.
    ///
    /// ``input_ids``: (B, N) integers (int32 or int64), each below ``vocab_size``.
    /// ``inputs_embeds``: (B, N, D) floats (converted to float32); used instead of
    /// ``input_ids`` when both are given, as in spectrans. ``attention_mask``: (B, N) of
    /// bool, int or float, nonzero = keep; it shapes the pooling of regression heads.
    ///
    /// Returns a float32 array: (B, C) for classification and regression, (B, N, C) for
    /// sequence and lm heads, (B, N, D) hidden states without a head. Bad input raises
    /// ``ValueError`` naming it; a batch that would not fit in memory, ``MemoryError``.
    #[pyo3(signature = (input_ids = None, inputs_embeds = None, attention_mask = None))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        input_ids: Option<&Bound<'py, PyAny>>,
        inputs_embeds: Option<&Bound<'py, PyAny>>,
        attention_mask: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        no_panic("forward", || {
            let input = match (
                inputs_embeds.filter(|e| !e.is_none()),
                input_ids.filter(|i| !i.is_none()),
            ) {
                (Some(e), _) => Input::Embeds(convert::embeds(e)?),
                (None, Some(i)) => Input::Ids(convert::ids(i)?),
                (None, None) => return Err(model_error(ModelError::NoInput)),
            };
            let mask = attention_mask
                .filter(|m| !m.is_none())
                .map(convert::mask)
                .transpose()?;
            let output = py
                .detach(|| catch_panic("forward", || self.forward_arrays(&input, mask.as_ref())))
                .map_err(PyRuntimeError::new_err)?
                .map_err(model_error)?;
            Ok(output.into_pyarray(py))
        })
    }

    /// Same as calling the model: ``model.forward(input_ids=None, inputs_embeds=None,
    /// attention_mask=None)``.
    #[pyo3(signature = (input_ids = None, inputs_embeds = None, attention_mask = None))]
    fn forward<'py>(
        &self,
        py: Python<'py>,
        input_ids: Option<&Bound<'py, PyAny>>,
        inputs_embeds: Option<&Bound<'py, PyAny>>,
        attention_mask: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        self.__call__(py, input_ids, inputs_embeds, attention_mask)
    }

    /// Writes the weights to a safetensors file by PyTorch ``state_dict`` names (with the
    /// buffers spectrans keeps, so ``load_state_dict(strict=True)`` accepts it). The write is
    /// atomic: a temporary file beside ``path``, then a rename. ``OSError`` when it fails.
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        no_panic("GFNet.save", || {
            py.detach(|| catch_panic("saving weights", || self.model.save_weights(&path)))
                .map_err(PyRuntimeError::new_err)?
                .map_err(model_error)
        })
    }

    /// The parameters as a dict of PyTorch ``state_dict`` names to float32 arrays (buffers
    /// included), what ``save`` writes.
    fn state_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        no_panic("GFNet.state_dict", || {
            let dict = PyDict::new(py);
            for (name, tensor) in self.model.state_dict() {
                match tensor {
                    spectrans_models::tensor_file::OwnedTensor::F32(a) => {
                        dict.set_item(name, a.into_pyarray(py))?
                    }
                    spectrans_models::tensor_file::OwnedTensor::I64(a) => {
                        dict.set_item(name, a.into_pyarray(py))?
                    }
                }
            }
            Ok(dict)
        })
    }

    /// The config, every value written out (defaults resolved), as a dict of the TOML's
    /// structure: ``{"model": {...}, "layers": {...}}``. ``GFNet(model.config)`` builds the
    /// same architecture.
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        no_panic("GFNet.config", || {
            let text = self.model.config().to_toml_string();
            let value: toml::Table = toml::from_str(&text).map_err(|e| {
                PyRuntimeError::new_err(format!("internal error: config TOML does not parse: {e}"))
            })?;
            convert::toml_to_py(py, &toml::Value::Table(value))
        })
    }

    /// The number of scalar parameters (buffers excluded), as PyTorch's
    /// ``sum(p.numel() for p in model.parameters())``.
    #[getter]
    fn num_parameters(&self) -> usize {
        parameter_count(&self.model)
    }

    /// The number format of the Linear layers' products in a forward: ``"f32"`` (the parity
    /// path), ``"bf16"`` or ``"int8"``, as given to ``precision=`` when the model was built.
    /// The embedding, the LayerNorms and the global filters always run in float32.
    #[getter]
    fn precision(&self) -> String {
        self.model.precision().to_string()
    }

    /// The number of threads a forward pass runs on.
    #[getter]
    fn threads(&self) -> usize {
        pool::threads_of(self.pool.as_deref())
    }

    fn __repr__(&self) -> String {
        format!(
            "GFNet({}; {} threads)",
            self.model.config().summary(),
            pool::threads_of(self.pool.as_deref())
        )
    }
}

/// Checks a config (a TOML path, or a dict) and returns every problem as a string, each
/// naming its field (or the line and column of a TOML syntax error); an empty list when the
/// config is valid. A file that cannot be read raises ``OSError``.
#[pyfunction]
fn validate(config: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    no_panic("validate", || match load_config(config) {
        Ok(_) => Ok(Vec::new()),
        Err(e) if e.is_instance_of::<PyValueError>(config.py()) => {
            // Our ValueError: `invalid config: ` then one violation per line.
            let text = e.value(config.py()).to_string();
            let text = text.strip_prefix("invalid config: ").unwrap_or(&text);
            Ok(text.lines().map(str::to_string).collect())
        }
        Err(e) => Err(e),
    })
}

/// Sets the number of threads of models built without ``threads=`` (a pool shared by all of
/// them); ``None`` goes back to rayon's default (one per core, or ``RAYON_NUM_THREADS``).
#[pyfunction]
#[pyo3(signature = (threads))]
fn set_threads(threads: Option<usize>) -> PyResult<()> {
    no_panic("set_threads", || {
        pool::set_module_pool(pool_for(threads)?);
        Ok(())
    })
}

/// The number of threads of models built without ``threads=``.
#[pyfunction]
fn get_threads() -> usize {
    pool::threads_of(None)
}

/// For the tests of the panic guard: panics in Rust, with the GIL (``released=False``) or
/// without it, as a bug would; the caller must see ``RuntimeError``, never a Rust panic.
#[pyfunction]
#[pyo3(signature = (released = false))]
fn _panic_for_tests(py: Python<'_>, released: bool) -> PyResult<()> {
    no_panic("_panic_for_tests", || {
        if released {
            py.detach(|| catch_panic("_panic_for_tests", || panic!("deliberate")))
                .map_err(PyRuntimeError::new_err)
        } else {
            panic!("deliberate")
        }
    })
}

/// GFNet inference from spectrans-rs, NumPy in and NumPy out. See ``help(spectrans_rs.GFNet)``.
#[pymodule]
fn spectrans_rs(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyGfnet>()?;
    m.add_function(wrap_pyfunction!(validate, m)?)?;
    m.add_function(wrap_pyfunction!(set_threads, m)?)?;
    m.add_function(wrap_pyfunction!(get_threads, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_for_tests, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

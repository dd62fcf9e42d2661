//! Python values to ours and back: NumPy arrays (or anything with `__array__`) to ndarray
//! arrays, config dicts to TOML and back.

use ndarray::{Array2, Array3, ArrayD, Dimension};
use numpy::{Element, PyArrayDyn, PyArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString};

/// The NumPy dtype kinds an argument accepts, and the dtype it is converted to.
#[derive(Debug, Clone, Copy)]
pub enum Want {
    /// Signed or unsigned integers, to int64 (token ids).
    Int64,
    /// Floats of any width, to float32 (embeddings, weights).
    Float32,
    /// Booleans, integers or floats, to bool: nonzero keeps the token (attention masks).
    Mask,
}

impl Want {
    fn accepts(self, kind: char) -> bool {
        match self {
            Want::Int64 => matches!(kind, 'i' | 'u'),
            Want::Float32 => kind == 'f',
            Want::Mask => matches!(kind, 'b' | 'i' | 'u' | 'f'),
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Want::Int64 => "an integer dtype (int32 or int64)",
            Want::Float32 => "a floating dtype (float32 or float64)",
            Want::Mask => "a bool, integer or floating dtype (nonzero = keep)",
        }
    }
}

/// What a NumPy conversion found wrong, before it becomes a `ValueError` (or, for a
/// state_dict entry, one problem among others).
pub type ArrayProblem = String;

/// `numpy.asarray(obj)` converted as `want` says, copied into an owned array (so that no
/// Python buffer is read once the GIL is released). `Ok(Err(..))` is a problem with the value
/// (its dtype, a NaN mask), named by `what`; `Err` is a Python error.
pub fn to_array<T: Element + Clone>(
    obj: &Bound<'_, PyAny>,
    what: &str,
    want: Want,
) -> PyResult<Result<ArrayD<T>, ArrayProblem>> {
    let py = obj.py();
    let numpy = py.import("numpy")?;
    let array = match numpy.call_method1("asarray", (obj,)) {
        Ok(a) => a,
        Err(e) => {
            return Ok(Err(format!(
                "{what}: cannot be read as a NumPy array ({})",
                e.value(py)
            )));
        }
    };
    let (mut array, mut kind, mut name) = dtype_of(array)?;
    if kind == 'O' {
        // An object array (a pandas or Ray column of Python numbers or of equal-length rows):
        // through NumPy's own inference, as `np.array(arr.tolist())` would.
        let Ok(inferred) = array
            .call_method0("tolist")
            .and_then(|list| numpy.call_method1("array", (list,)))
        else {
            return Ok(Err(format!(
                "{what}: dtype object holds values that are not numbers (or rows of unequal length); expected {}",
                want.expected()
            )));
        };
        (array, kind, name) = dtype_of(inferred)?;
        name = format!("object (holding {name})");
    }
    if !want.accepts(kind) {
        return Ok(Err(format!(
            "{what}: dtype {name} is not accepted; expected {}",
            want.expected()
        )));
    }
    let converted = match want {
        Want::Int64 => array.call_method1("astype", ("int64",))?,
        Want::Float32 => array.call_method1("astype", ("float32",))?,
        Want::Mask => {
            if kind == 'f'
                && numpy
                    .call_method1("isnan", (&array,))?
                    .call_method0("any")?
                    .is_truthy()?
            {
                return Ok(Err(format!(
                    "{what}: contains NaN; a mask holds 0 (pad) or nonzero (keep)"
                )));
            }
            numpy.call_method1("asarray", (numpy.call_method1("not_equal", (&array, 0))?,))?
        }
    };
    let typed = converted.cast_into::<PyArrayDyn<T>>().map_err(|e| {
        PyValueError::new_err(format!(
            "{what}: conversion to {} failed: {e}",
            want.expected()
        ))
    })?;
    Ok(Ok(typed.to_owned_array()))
}

/// An array with its dtype's kind (`i`, `u`, `f`, `b`, `O`...) and name.
fn dtype_of(array: Bound<'_, PyAny>) -> PyResult<(Bound<'_, PyAny>, char, String)> {
    let dtype = array.getattr("dtype")?;
    let kind: String = dtype.getattr("kind")?.extract()?;
    let name: String = dtype.getattr("name")?.extract()?;
    Ok((array, kind.chars().next().unwrap_or('?'), name))
}

/// [`to_array`] of a fixed rank, `expected` being the shape in words (`(B, N)`); every
/// problem is a `ValueError`.
pub fn to_array_rank<T: Element + Clone, D: Dimension>(
    obj: &Bound<'_, PyAny>,
    what: &str,
    want: Want,
    expected: &str,
) -> PyResult<ndarray::Array<T, D>> {
    let array = to_array::<T>(obj, what, want)?.map_err(PyValueError::new_err)?;
    let shape = array.shape().to_vec();
    array.into_dimensionality::<D>().map_err(|_| {
        PyValueError::new_err(format!(
            "{what}: expected shape {expected}, found {shape:?}"
        ))
    })
}

/// `input_ids` (B, N) as int64.
pub fn ids(obj: &Bound<'_, PyAny>) -> PyResult<Array2<i64>> {
    to_array_rank(obj, "input_ids", Want::Int64, "(B, N)")
}

/// `inputs_embeds` (B, N, D) as float32.
pub fn embeds(obj: &Bound<'_, PyAny>) -> PyResult<Array3<f32>> {
    to_array_rank(obj, "inputs_embeds", Want::Float32, "(B, N, D)")
}

/// `attention_mask` (B, N) as bool, nonzero = keep.
pub fn mask(obj: &Bound<'_, PyAny>) -> PyResult<Array2<bool>> {
    to_array_rank(obj, "attention_mask", Want::Mask, "(B, N)")
}

/// A config dict as TOML text. A dict with a `model` table is the TOML's structure
/// (`{"model": {...}, "layers": {...}}`); any other dict is taken as the `[model]` fields.
/// `None` values are left out (an unset optional field, as in spectrans' config classes).
pub fn config_dict_to_toml(dict: &Bound<'_, PyDict>) -> PyResult<String> {
    let structured = dict.contains("model")?
        && dict
            .get_item("model")?
            .is_some_and(|m| m.is_instance_of::<PyDict>());
    let table = dict_to_table(dict, "")?;
    let root = if structured {
        table
    } else {
        let mut root = toml::Table::new();
        root.insert("model".to_string(), toml::Value::Table(table));
        root
    };
    toml::to_string(&root)
        .map_err(|e| PyValueError::new_err(format!("config: cannot be written as TOML: {e}")))
}

fn dict_to_table(dict: &Bound<'_, PyDict>, prefix: &str) -> PyResult<toml::Table> {
    let mut table = toml::Table::new();
    for (key, value) in dict.iter() {
        let key: String = key.extract().map_err(|_| {
            PyValueError::new_err(format!(
                "config{}: keys must be strings, found {}",
                if prefix.is_empty() {
                    String::new()
                } else {
                    format!(" {prefix}")
                },
                key.repr().map(|r| r.to_string()).unwrap_or_default()
            ))
        })?;
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        if let Some(v) = py_to_toml(&value, &path)? {
            table.insert(key, v);
        }
    }
    Ok(table)
}

fn py_to_toml(value: &Bound<'_, PyAny>, path: &str) -> PyResult<Option<toml::Value>> {
    if value.is_none() {
        return Ok(None);
    }
    if value.is_instance_of::<PyBool>() {
        return Ok(Some(toml::Value::Boolean(value.extract()?)));
    }
    if value.is_instance_of::<PyInt>() {
        let v: i64 = value.extract().map_err(|_| {
            PyValueError::new_err(format!("{path}: integer {value} does not fit in 64 bits"))
        })?;
        return Ok(Some(toml::Value::Integer(v)));
    }
    if value.is_instance_of::<PyFloat>() {
        return Ok(Some(toml::Value::Float(value.extract()?)));
    }
    if value.is_instance_of::<PyString>() {
        return Ok(Some(toml::Value::String(value.extract()?)));
    }
    if let Ok(d) = value.cast::<PyDict>() {
        return Ok(Some(toml::Value::Table(dict_to_table(d, path)?)));
    }
    if let Ok(list) = value.cast::<PyList>() {
        let items = list
            .iter()
            .enumerate()
            .filter_map(|(i, v)| py_to_toml(&v, &format!("{path}[{i}]")).transpose())
            .collect::<PyResult<Vec<_>>>()?;
        return Ok(Some(toml::Value::Array(items)));
    }
    // NumPy scalars and other numbers: through Python's int or float.
    let type_name = value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_string());
    if let Ok(index) = value.call_method0("__index__") {
        return py_to_toml(&index, path);
    }
    if let Ok(f) = value.call_method0("__float__") {
        return py_to_toml(&f, path);
    }
    Err(PyValueError::new_err(format!(
        "{path}: a {type_name} cannot be a config value (use a bool, int, float, str or dict)"
    )))
}

/// TOML (our config written out) as nested Python dicts.
pub fn toml_to_py<'py>(py: Python<'py>, value: &toml::Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        toml::Value::String(s) => s.into_pyobject(py)?.into_any(),
        toml::Value::Integer(i) => i.into_pyobject(py)?.into_any(),
        toml::Value::Float(f) => f.into_pyobject(py)?.into_any(),
        toml::Value::Boolean(b) => PyBool::new(py, *b).to_owned().into_any(),
        toml::Value::Datetime(d) => d.to_string().into_pyobject(py)?.into_any(),
        toml::Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(toml_to_py(py, item)?)?;
            }
            list.into_any()
        }
        toml::Value::Table(table) => {
            let dict = PyDict::new(py);
            for (k, v) in table {
                dict.set_item(k, toml_to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}

//! Visiting parameters by their PyTorch `state_dict` names.

use ndarray::{ArrayViewD, ArrayViewMutD};

use crate::error::{LayerError, shape_error};

/// Visiting parameters (and same-shaped gradient structs) by their PyTorch `state_dict` names.
pub trait Parameters {
    /// Calls `f(name, tensor)` for each parameter, `name = prefix + local name`
    /// (`"blocks.0."` + `"norm1.weight"`).
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, ArrayViewD<'_, f32>));
    /// Mutable twin of [`Parameters::visit`], same order and names.
    fn visit_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, ArrayViewMutD<'_, f32>));
}

/// The names and shapes of every parameter, in visiting order.
pub fn parameter_shapes<P: Parameters + ?Sized>(p: &P, prefix: &str) -> Vec<(String, Vec<usize>)> {
    let mut out = Vec::new();
    p.visit(prefix, &mut |name, t| {
        out.push((name.to_string(), t.shape().to_vec()))
    });
    out
}

/// Total number of scalars over all parameters.
pub fn parameter_count<P: Parameters + ?Sized>(p: &P) -> usize {
    let mut n = 0;
    p.visit("", &mut |_, t| n += t.len());
    n
}

/// Sets every parameter (or gradient) to zero.
pub fn fill_zero<P: Parameters + ?Sized>(p: &mut P) {
    p.visit_mut("", &mut |_, mut t| t.fill(0.0));
}

/// Copies `value` into the parameter called `name` (full name, prefix included).
///
/// Errors: [`LayerError::UnknownParameter`] when no parameter has that name,
/// [`LayerError::Shape`] when the shapes differ.
///
/// ```
/// use ndarray::Array1;
/// use spectrans_layers::{set_parameter, LayerNorm};
/// let mut ln = LayerNorm::new(3, 1e-5);
/// let w = Array1::from(vec![1.0f32, 2.0, 3.0]);
/// set_parameter(&mut ln, "norm.", "norm.weight", w.view().into_dyn()).unwrap();
/// assert_eq!(ln.weight[2], 3.0);
/// assert!(set_parameter(&mut ln, "norm.", "norm.nope", w.view().into_dyn()).is_err());
/// ```
pub fn set_parameter<P: Parameters + ?Sized>(
    p: &mut P,
    prefix: &str,
    name: &str,
    value: ArrayViewD<'_, f32>,
) -> Result<(), LayerError> {
    let mut result = Err(LayerError::UnknownParameter {
        name: name.to_string(),
    });
    p.visit_mut(prefix, &mut |n, mut t| {
        if n == name {
            result = if t.shape() == value.shape() {
                t.assign(&value);
                Ok(())
            } else {
                Err(shape_error(name, format!("{:?}", t.shape()), value.shape()))
            };
        }
    });
    result
}

/// Joins a prefix and a local name (`"ffn."` + `"fc1."` = `"ffn.fc1."`).
pub(crate) fn join(prefix: &str, local: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + local.len());
    s.push_str(prefix);
    s.push_str(local);
    s
}

/// `Parameters` for a struct with `weight` and `bias` arrays (Linear, LayerNorm and their
/// gradient twins), named as PyTorch names them.
macro_rules! weight_bias_params {
    ($t:ty) => {
        impl Parameters for $t {
            fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, ArrayViewD<'_, f32>)) {
                f(&join(prefix, "weight"), self.weight.view().into_dyn());
                f(&join(prefix, "bias"), self.bias.view().into_dyn());
            }
            fn visit_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, ArrayViewMutD<'_, f32>)) {
                f(&join(prefix, "weight"), self.weight.view_mut().into_dyn());
                f(&join(prefix, "bias"), self.bias.view_mut().into_dyn());
            }
        }
    };
}
pub(crate) use weight_bias_params;

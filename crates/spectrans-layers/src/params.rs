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
#[doc(hidden)]
pub fn join(prefix: &str, local: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + local.len());
    s.push_str(prefix);
    s.push_str(local);
    s
}

/// Implements [`Parameters`] for structs whose parameters are fields named as PyTorch names
/// them, in `state_dict` order. One line per field:
///
/// - `tensor name`: an ndarray array, visited as `prefix + "name"`;
/// - `module name`: a field that implements [`Parameters`], visited under `prefix + "name."`;
/// - `optional name`: an `Option` of such a field, visited when present;
/// - `list name`: a `Vec` of such fields, item `i` under `prefix + "name.i."`.
///
/// A layer and its gradient struct have the same field names, so one invocation serves both.
/// (A `macro_rules!`, not a derive: the six hand-written impls it replaces were all of this
/// shape, and a proc-macro crate would add a build step for no more than this.)
///
/// ```
/// use ndarray::{Array1, Array2};
/// use spectrans_layers::{Linear, Parameters, parameter_shapes};
///
/// struct Probe {
///     scale: Array1<f32>,
///     proj: Linear,
///     extra: Option<Linear>,
///     layers: Vec<Linear>,
/// }
/// spectrans_layers::parameters!(Probe => [tensor scale, module proj, optional extra, list layers]);
///
/// let mut rng = rand::thread_rng();
/// let p = Probe {
///     scale: Array1::ones(2),
///     proj: Linear::new(2, 3, &mut rng),
///     extra: None,
///     layers: vec![Linear::new(3, 1, &mut rng)],
/// };
/// let names: Vec<String> = parameter_shapes(&p, "m.").into_iter().map(|(n, _)| n).collect();
/// assert_eq!(
///     names,
///     ["m.scale", "m.proj.weight", "m.proj.bias", "m.layers.0.weight", "m.layers.0.bias"]
/// );
/// ```
#[macro_export]
macro_rules! parameters {
    ($t:ty, $($rest:ty),+ => [$($body:tt)*]) => {
        $crate::parameters!($t => [$($body)*]);
        $crate::parameters!($($rest),+ => [$($body)*]);
    };
    ($t:ty => [$($kind:ident $field:ident),* $(,)?]) => {
            impl $crate::Parameters for $t {
                #[allow(unused_variables)]
                fn visit(
                    &self,
                    prefix: &str,
                    f: &mut dyn FnMut(&str, $crate::__macro_support::ArrayViewD<'_, f32>),
                ) {
                    $( $crate::parameters!(@visit $kind, self.$field, prefix, stringify!($field), f); )*
                }
                #[allow(unused_variables)]
                fn visit_mut(
                    &mut self,
                    prefix: &str,
                    f: &mut dyn FnMut(&str, $crate::__macro_support::ArrayViewMutD<'_, f32>),
                ) {
                    $( $crate::parameters!(@visit_mut $kind, self.$field, prefix, stringify!($field), f); )*
                }
            }
    };
    (@visit tensor, $e:expr, $prefix:ident, $name:expr, $f:ident) => {
        $f(&$crate::__macro_support::join($prefix, $name), $e.view().into_dyn())
    };
    (@visit_mut tensor, $e:expr, $prefix:ident, $name:expr, $f:ident) => {
        $f(&$crate::__macro_support::join($prefix, $name), $e.view_mut().into_dyn())
    };
    (@visit module, $e:expr, $prefix:ident, $name:expr, $f:ident) => {
        $crate::Parameters::visit(&$e, &format!("{}{}.", $prefix, $name), $f)
    };
    (@visit_mut module, $e:expr, $prefix:ident, $name:expr, $f:ident) => {
        $crate::Parameters::visit_mut(&mut $e, &format!("{}{}.", $prefix, $name), $f)
    };
    (@visit optional, $e:expr, $prefix:ident, $name:expr, $f:ident) => {
        if let Some(m) = &$e {
            $crate::Parameters::visit(m, &format!("{}{}.", $prefix, $name), $f)
        }
    };
    (@visit_mut optional, $e:expr, $prefix:ident, $name:expr, $f:ident) => {
        if let Some(m) = &mut $e {
            $crate::Parameters::visit_mut(m, &format!("{}{}.", $prefix, $name), $f)
        }
    };
    (@visit list, $e:expr, $prefix:ident, $name:expr, $f:ident) => {
        for (i, m) in $e.iter().enumerate() {
            $crate::Parameters::visit(m, &format!("{}{}.{i}.", $prefix, $name), $f)
        }
    };
    (@visit_mut list, $e:expr, $prefix:ident, $name:expr, $f:ident) => {
        for (i, m) in $e.iter_mut().enumerate() {
            $crate::Parameters::visit_mut(m, &format!("{}{}.{i}.", $prefix, $name), $f)
        }
    };
}

//! Cache arrays handed from one training step to the next.
//!
//! Every training step allocates the same large arrays for its caches: per block, the FFN's
//! hidden activations and their derivative (two (tokens, 4·D) arrays, 32 MiB at hidden 256 and
//! 4096 tokens) and the LayerNorms' outputs. A fresh array is zeroed, one pass over memory
//! before its first real write. An array from the step before, whose values the new step
//! overwrites whole, needs no such pass.
//!
//! So after backward a model hands its caches' arrays over ([`hand_over`]), and the next
//! forward takes them where it writes every element before reading any. Each hand-over replaces what was held: the pool never holds more than one step's
//! arrays, and arrays of a shape no longer asked for (a last, smaller batch) are freed at the
//! next hand-over. [`release`] frees them at once. Arrays are matched by length only; their
//! old values never show, since takers overwrite them.

use std::sync::{Mutex, PoisonError};

use ndarray::{Array2, ArrayBase, Dimension, OwnedRepr};

/// Arrays of one hand-over not yet taken.
#[derive(Debug, Default)]
struct Pool(Mutex<Vec<Vec<f32>>>);

impl Pool {
    const fn new() -> Self {
        Self(Mutex::new(Vec::new()))
    }

    fn take(&self, rows: usize, cols: usize) -> Array2<f32> {
        let len = rows * cols;
        let found = {
            let mut held = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            held.iter()
                .position(|v| v.len() == len)
                .map(|i| held.swap_remove(i))
        };
        match found {
            Some(values) => Array2::from_shape_vec((rows, cols), values)
                .expect("a held array of rows x cols values"),
            None => Array2::zeros((rows, cols)),
        }
    }

    fn replace(&self, arrays: Vec<Vec<f32>>) {
        let old = std::mem::replace(
            &mut *self.0.lock().unwrap_or_else(PoisonError::into_inner),
            arrays,
        );
        drop(old); // freed outside the lock
    }
}

/// The process's pool.
static HELD: Pool = Pool::new();

/// A (rows, cols) array for a caller that writes every element before it reads any: a held
/// array of that length if there is one (holding an earlier step's values), else zeros.
pub(crate) fn take_overwritten(rows: usize, cols: usize) -> Array2<f32> {
    HELD.take(rows, cols)
}

/// Makes `arrays` the ones the next training forward draws from, freeing any held
/// before.
///
/// ```
/// use spectrans_layers::reuse;
/// reuse::hand_over(vec![vec![0.0f32; 1024]]);
/// reuse::release();
/// ```
pub fn hand_over(arrays: Vec<Vec<f32>>) {
    HELD.replace(arrays);
}

/// Frees every held array.
pub fn release() {
    HELD.replace(Vec::new());
}

/// Adds `array`'s storage to `out` when it is exactly the array's values (standard layout,
/// from the start of its buffer); an array that is a view into a larger buffer is dropped.
pub(crate) fn push_storage<D: Dimension>(
    array: ArrayBase<OwnedRepr<f32>, D>,
    out: &mut Vec<Vec<f32>>,
) {
    let len = array.len();
    if !array.is_standard_layout() || len == 0 {
        return;
    }
    let (values, offset) = array.into_raw_vec_and_offset();
    if offset.unwrap_or(0) == 0 && values.len() == len {
        out.push(values);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A taken array has the requested shape whatever it held; a length nobody handed over
    /// gives zeros; a hand-over replaces what was held.
    #[test]
    fn takes_by_length_and_replaces_on_hand_over() {
        let pool = Pool::new();
        pool.replace(vec![vec![f32::NAN; 7 * 13], vec![1.0; 7 * 17]]);
        let a = pool.take(13, 7);
        assert_eq!(a.dim(), (13, 7));
        assert!(a.iter().all(|v| v.is_nan()), "the held array, values kept");
        let b = pool.take(7, 13);
        assert!(b.iter().all(|&v| v == 0.0), "taken once: a fresh one next");
        pool.replace(vec![vec![2.0; 7 * 19]]);
        assert!(pool.take(7, 17).iter().all(|&v| v == 0.0), "replaced");
        assert!(pool.take(7, 19).iter().all(|&v| v == 2.0));
    }

    #[test]
    fn only_whole_standard_arrays_are_handed_over() {
        let mut out = Vec::new();
        push_storage(Array2::<f32>::zeros((3, 5)), &mut out);
        push_storage(Array2::<f32>::zeros((3, 5)).reversed_axes(), &mut out);
        let mut sliced = Array2::<f32>::zeros((4, 5));
        sliced.slice_collapse(ndarray::s![1.., ..]);
        push_storage(sliced, &mut out);
        push_storage(Array2::<f32>::zeros((0, 5)), &mut out);
        assert_eq!(out.iter().map(Vec::len).collect::<Vec<_>>(), [15]);
    }
}

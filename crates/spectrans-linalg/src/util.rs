//! Small layout helpers of the kernels.

use crate::error::{LinalgError, shape_error};

/// Elements of work below which a row loop stays on one thread.
const PARALLEL_MIN_ELEMS: usize = 1 << 15;

/// Minimum rows per rayon task so each task has about `PARALLEL_MIN_ELEMS / 4` elements.
pub(crate) fn min_rows(dim: usize) -> usize {
    (PARALLEL_MIN_ELEMS / 4 / dim.max(1)).max(1)
}

/// The contiguous data of a standard-layout array, or a [`LinalgError::Shape`] naming it
/// (`what`) when the array is not in standard (row-major) layout.
///
/// ```
/// use ndarray::array;
/// let a = array![[1.0f32, 2.0], [3.0, 4.0]];
/// assert_eq!(spectrans_linalg::contiguous("a", &a).unwrap(), &[1.0, 2.0, 3.0, 4.0]);
/// assert!(spectrans_linalg::contiguous("a transposed", &a.t()).is_err());
/// ```
pub fn contiguous<'a, A, S, D>(
    what: &str,
    a: &'a ndarray::ArrayBase<S, D>,
) -> Result<&'a [A], LinalgError>
where
    S: ndarray::Data<Elem = A>,
    D: ndarray::Dimension,
{
    a.as_slice().ok_or_else(|| {
        shape_error(
            what,
            "a standard-layout (row-major) array".into(),
            a.shape(),
        )
    })
}

/// Mutable twin of [`contiguous`].
pub fn contiguous_mut<'a, A, S, D>(
    what: &str,
    a: &'a mut ndarray::ArrayBase<S, D>,
) -> Result<&'a mut [A], LinalgError>
where
    S: ndarray::DataMut<Elem = A>,
    D: ndarray::Dimension,
{
    let shape = a.shape().to_vec();
    a.as_slice_mut()
        .ok_or_else(|| shape_error(what, "a standard-layout (row-major) array".into(), &shape))
}

/// A property test's case count: `default`, or fewer when `PROPTEST_CASES` says so (the
/// valgrind run of CI lowers it; an explicit `with_cases` would otherwise ignore it).
#[cfg(test)]
pub(crate) fn proptest_cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .map_or(default, |cases| cases.min(default))
}

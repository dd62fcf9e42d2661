//! The one safe door to `gemm`: strided f32 matrix products with checked shapes.

use gemm::Parallelism;
use ndarray::{ArrayView2, ArrayViewMut2};

use crate::error::LayerError;

/// Products with at least this many multiply-adds run on the rayon pool.
const PARALLEL_MIN_FLOPS: usize = 48 * 48 * 48;

/// `dst = lhs · rhs` (or `dst += lhs · rhs` when `accumulate`), for any strides, so transposed
/// views (`w.t()`) cost nothing. Shapes: lhs (m, k), rhs (k, n), dst (m, n).
///
/// ```
/// use ndarray::array;
/// use spectrans_layers::matmul::matmul_into;
/// let a = array![[1.0f32, 2.0], [3.0, 4.0]];
/// let mut c = ndarray::Array2::<f32>::zeros((2, 2));
/// matmul_into(c.view_mut(), a.view(), a.t(), false).unwrap();
/// assert_eq!(c, array![[5.0, 11.0], [11.0, 25.0]]);
/// ```
pub fn matmul_into(
    mut dst: ArrayViewMut2<'_, f32>,
    lhs: ArrayView2<'_, f32>,
    rhs: ArrayView2<'_, f32>,
    accumulate: bool,
) -> Result<(), LayerError> {
    let (m, k) = lhs.dim();
    let (k2, n) = rhs.dim();
    if k2 != k {
        return Err(LayerError::Shape {
            what: "matmul right operand".into(),
            expected: format!("({k}, n) to match the left operand's {k} columns"),
            found: vec![k2, n],
        });
    }
    if dst.dim() != (m, n) {
        return Err(LayerError::Shape {
            what: "matmul destination".into(),
            expected: format!("({m}, {n})"),
            found: dst.shape().to_vec(),
        });
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        if !accumulate {
            dst.fill(0.0);
        }
        return Ok(());
    }
    let flops = m.saturating_mul(n).saturating_mul(k);
    let threads = rayon::current_num_threads();
    let parallelism = if flops >= PARALLEL_MIN_FLOPS && threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    let (dst_rs, dst_cs) = (dst.strides()[0], dst.strides()[1]);
    let (lhs_rs, lhs_cs) = (lhs.strides()[0], lhs.strides()[1]);
    let (rhs_rs, rhs_cs) = (rhs.strides()[0], rhs.strides()[1]);
    // SAFETY: the shapes were checked above, so every index gemm touches, (i, j) with
    // i < m, j < n for dst, i < m, j < k for lhs and i < k, j < n for rhs, lies inside the
    // corresponding ndarray view, whose strides (in elements) we pass unchanged. `dst` is a
    // unique mutable borrow, so it cannot overlap `lhs` or `rhs` (shared borrows). With
    // `read_dst = false` gemm overwrites dst without reading it; alpha = 1 keeps it otherwise.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_cs,
            dst_rs,
            accumulate,
            lhs.as_ptr(),
            lhs_cs,
            lhs_rs,
            rhs.as_ptr(),
            rhs_cs,
            rhs_rs,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            parallelism,
        );
    }
    Ok(())
}

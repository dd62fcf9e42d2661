//! The one safe door to the GEMM: strided f32 matrix products with checked shapes.
//!
//! By default our own blocked GEMM ([`crate::sgemm`]) on CPUs with AVX2 and FMA, where it is
//! the fastest ([`crate::sgemm::is_fastest`]); elsewhere the `gemm` crate (pure Rust, run-time
//! dispatch). With the
//! `openblas` feature, products whose operands BLAS can address (one unit stride each) go to
//! the system OpenBLAS (`cblas_sgemm`; Debian's libopenblas-dev), which is 10–30 % faster per
//! core at the FFN shapes on an AVX2 EPYC (docs/benchmarks.md); the rest still use `gemm`.

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
    #[cfg(feature = "openblas")]
    if openblas::sgemm(&mut dst, &lhs, &rhs, accumulate) {
        return Ok(());
    }
    if crate::sgemm::is_fastest() {
        let epilogue = crate::sgemm::Epilogue {
            accumulate,
            ..Default::default()
        };
        return crate::sgemm::gemm_unpacked(dst, lhs, rhs, epilogue);
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

/// `cblas_sgemm` of the system OpenBLAS, for row-major products with unit strides.
#[cfg(feature = "openblas")]
mod openblas {
    use std::ffi::c_int;

    use ndarray::{ArrayView2, ArrayViewMut2};

    const ROW_MAJOR: c_int = 101;
    const NO_TRANS: c_int = 111;
    const TRANS: c_int = 112;

    #[link(name = "openblas")]
    unsafe extern "C" {
        fn cblas_sgemm(
            order: c_int,
            trans_a: c_int,
            trans_b: c_int,
            m: c_int,
            n: c_int,
            k: c_int,
            alpha: f32,
            a: *const f32,
            lda: c_int,
            b: *const f32,
            ldb: c_int,
            beta: f32,
            c: *mut f32,
            ldc: c_int,
        );
        fn openblas_set_num_threads(threads: c_int);
    }

    /// How BLAS reads an operand of `rows x cols` with these strides: (transpose flag,
    /// leading dimension), or None when neither stride is 1 or a stride is negative.
    fn layout(rows: usize, cols: usize, rs: isize, cs: isize) -> Option<(c_int, c_int)> {
        // The leading dimension: the stride between rows (or columns, transposed), at least
        // the row length; a single row (column) may have any stride.
        let lead = |stride: isize, single: bool, len: usize| {
            let len = len.max(1);
            let ld = if single {
                len
            } else {
                usize::try_from(stride).ok().filter(|&s| s >= len)?
            };
            c_int::try_from(ld).ok()
        };
        if cs == 1 {
            Some((NO_TRANS, lead(rs, rows <= 1, cols)?))
        } else if rs == 1 {
            Some((TRANS, lead(cs, cols <= 1, rows)?))
        } else {
            None
        }
    }

    /// `dst (+)= lhs · rhs` through OpenBLAS when every operand fits its layout; `false`
    /// (nothing touched) otherwise. Shapes were checked by the caller.
    pub(super) fn sgemm(
        dst: &mut ArrayViewMut2<'_, f32>,
        lhs: &ArrayView2<'_, f32>,
        rhs: &ArrayView2<'_, f32>,
        accumulate: bool,
    ) -> bool {
        let (m, k) = lhs.dim();
        let n = rhs.ncols();
        let (Ok(mi), Ok(ni), Ok(ki)) = (c_int::try_from(m), c_int::try_from(n), c_int::try_from(k))
        else {
            return false;
        };
        let Some((NO_TRANS, ldc)) = layout(m, n, dst.strides()[0], dst.strides()[1]) else {
            return false;
        };
        let (Some((ta, lda)), Some((tb, ldb))) = (
            layout(m, k, lhs.strides()[0], lhs.strides()[1]),
            layout(k, n, rhs.strides()[0], rhs.strides()[1]),
        ) else {
            return false;
        };
        let threads = c_int::try_from(rayon::current_num_threads()).unwrap_or(1);
        // SAFETY: the shapes were checked by `matmul_into`; each operand's pointer, transpose
        // flag and leading dimension describe exactly the ndarray view it came from (unit
        // stride in one dimension, the other stride as the leading dimension, at least the
        // row length), so BLAS reads and writes only elements of those views. `dst` is a
        // unique borrow, disjoint from the shared `lhs` and `rhs`.
        unsafe {
            openblas_set_num_threads(threads.max(1));
            cblas_sgemm(
                ROW_MAJOR,
                ta,
                tb,
                mi,
                ni,
                ki,
                1.0,
                lhs.as_ptr(),
                lda,
                rhs.as_ptr(),
                ldb,
                if accumulate { 1.0 } else { 0.0 },
                dst.as_mut_ptr(),
                ldc,
            );
        }
        true
    }
}

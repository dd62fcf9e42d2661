//! The one door to the products: `dst = epilogue(lhs · rhs)` with checked shapes, whichever
//! backend runs it.
//!
//! By default our own blocked GEMM ([`crate::sgemm`]) on x86-64 CPUs with AVX2 and FMA, where
//! it is the fastest; elsewhere the `gemm` crate (pure Rust, run-time dispatch) with the
//! epilogue applied after it. With the `openblas` feature, products on a plain right operand
//! whose operands BLAS can address (one unit stride each) go to the system OpenBLAS
//! (`cblas_sgemm`; Debian's libopenblas-dev), which is 10–30 % faster per core at the FFN
//! shapes on an AVX2 EPYC (docs/benchmarks.md); the rest still use the `gemm` crate. A packed
//! right operand ([`PackedRhs`]) always runs on our kernels, in its own number format.

use ndarray::{ArrayView2, ArrayViewMut2};

use crate::Epilogue;
use crate::epilogue::{apply_epilogue, check_epilogue};
use crate::error::{LinalgError, shape_error};
use crate::sgemm::{self, PackedRhs};

/// Products with at least this many multiply-adds run on the rayon pool.
const PARALLEL_MIN_FLOPS: usize = 48 * 48 * 48;

/// The right operand B (k, n) of a product.
#[derive(Debug, Clone, Copy)]
pub enum Rhs<'a> {
    /// A plain f32 matrix, any strides (a transposed view `w.t()` costs nothing).
    Plain(ArrayView2<'a, f32>),
    /// Packed once for our kernels, in f32, bf16 or int8 ([`PackedRhs`]).
    Packed(&'a PackedRhs),
}

impl Rhs<'_> {
    /// (k, n).
    fn dim(&self) -> (usize, usize) {
        match self {
            Rhs::Plain(b) => b.dim(),
            Rhs::Packed(p) => (p.rows(), p.cols()),
        }
    }
}

/// Which threads a product may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Parallelism {
    /// The current rayon pool, for products large enough to gain from it.
    #[default]
    Rayon,
    /// The calling thread only: for a caller that already runs one block of rows per thread
    /// and wants each product to stream B once for its whole block. The bits are the same
    /// either way.
    None,
}

/// Which code runs the products of [`gemm()`] on a plain f32 right operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Our blocked GEMM ([`f32_kernel_name`](crate::f32_kernel_name) says which kernel).
    Sgemm,
    /// The `gemm` crate.
    GemmCrate,
    /// The system OpenBLAS (feature `openblas`), the `gemm` crate where BLAS cannot address
    /// an operand.
    OpenBlas,
}

/// The backend of this build on this CPU. Measured side by side with the `gemm` crate at the
/// model's shapes, 2 threads: on Zen 3 (AVX2) ours is faster at every shape; on Zen 4
/// (AVX-512, where the `gemm` crate runs 512-bit kernels and ours its AVX-512 tiles)
/// ours is faster at every model shape (docs/benchmarks.md).
pub fn backend() -> Backend {
    if cfg!(feature = "openblas") {
        Backend::OpenBlas
    } else if sgemm::has_vector_kernel() {
        Backend::Sgemm
    } else {
        Backend::GemmCrate
    }
}

/// Whether products on an f32 matrix are faster with it packed once ([`PackedRhs`]): true
/// where our kernels run them ([`Backend::Sgemm`]); elsewhere the backend reads the plain
/// matrix, and a packed one would run on our portable kernel.
pub fn packs_f32() -> bool {
    backend() == Backend::Sgemm
}

/// `dst = epilogue(lhs · rhs)`: lhs (m, k), rhs (k, n), dst (m, n), any strides.
///
/// The epilogue's bias has n values and its scale m · n (row-major); with `accumulate` the
/// product is added to what `dst` holds. Each element of C is summed in the same order
/// whatever the thread count, so the bits do not depend on `parallelism`.
///
/// ```
/// use ndarray::{array, Array2};
/// use spectrans_linalg::{gemm, Epilogue, PackedRhs, Parallelism, Rhs};
/// let a = array![[1.0f32, 2.0], [3.0, 4.0]];
/// let mut c = Array2::<f32>::zeros((2, 2));
/// gemm(c.view_mut(), a.view(), Rhs::Plain(a.t()), Epilogue::default(), Parallelism::Rayon)?;
/// assert_eq!(c, array![[5.0, 11.0], [11.0, 25.0]]);
///
/// // A Linear(2 -> 3) layer: y = x Wᵀ + b with W packed once.
/// let w = array![[1.0f32, 0.0], [1.0, 1.0], [0.0, -2.0]];
/// let packed = PackedRhs::from_weight(w.view());
/// let bias = [0.5f32, 0.0, 0.0];
/// let epilogue = Epilogue { bias: Some(&bias), ..Epilogue::default() };
/// let mut y = Array2::zeros((1, 3));
/// gemm(y.view_mut(), array![[1.0f32, 2.0]].view(), Rhs::Packed(&packed), epilogue, Parallelism::None)?;
/// assert_eq!(y, array![[1.5, 3.0, -4.0]]);
/// # Ok::<(), spectrans_linalg::LinalgError>(())
/// ```
pub fn gemm(
    mut dst: ArrayViewMut2<'_, f32>,
    lhs: ArrayView2<'_, f32>,
    rhs: Rhs<'_>,
    epilogue: Epilogue<'_>,
    parallelism: Parallelism,
) -> Result<(), LinalgError> {
    let b = match rhs {
        Rhs::Packed(p) => return sgemm::gemm_packed(dst, lhs, p, epilogue, parallelism),
        Rhs::Plain(b) => b,
    };
    let (m, k) = lhs.dim();
    let (k2, n) = rhs.dim();
    if k2 != k {
        return Err(shape_error(
            "matmul right operand",
            format!("({k}, n) to match the left operand's {k} columns"),
            &[k2, n],
        ));
    }
    if dst.dim() != (m, n) {
        return Err(shape_error(
            "matmul destination",
            format!("({m}, {n})"),
            dst.shape(),
        ));
    }
    check_epilogue(&epilogue, m, n)?;
    if m == 0 || n == 0 {
        return Ok(());
    }
    if backend() == Backend::Sgemm {
        return sgemm::gemm_unpacked(dst, lhs, b, epilogue, parallelism);
    }
    plain_product(dst.view_mut(), lhs, b, epilogue.accumulate, parallelism);
    apply_epilogue(dst, epilogue);
    Ok(())
}

/// `dst (+)= lhs · rhs` on OpenBLAS (feature `openblas`, where it can address the operands)
/// or the `gemm` crate. Shapes were checked, m, n > 0.
fn plain_product(
    mut dst: ArrayViewMut2<'_, f32>,
    lhs: ArrayView2<'_, f32>,
    rhs: ArrayView2<'_, f32>,
    accumulate: bool,
    parallelism: Parallelism,
) {
    let (m, k) = lhs.dim();
    let n = rhs.ncols();
    if k == 0 {
        if !accumulate {
            dst.fill(0.0);
        }
        return;
    }
    #[cfg(feature = "openblas")]
    if openblas::sgemm(&mut dst, &lhs, &rhs, accumulate, parallelism) {
        return;
    }
    let flops = m.saturating_mul(n).saturating_mul(k);
    let threads = rayon::current_num_threads();
    let parallelism =
        if flops >= PARALLEL_MIN_FLOPS && threads > 1 && parallelism == Parallelism::Rayon {
            gemm::Parallelism::Rayon(threads)
        } else {
            gemm::Parallelism::None
        };
    let (dst_rs, dst_cs) = (dst.strides()[0], dst.strides()[1]);
    let (lhs_rs, lhs_cs) = (lhs.strides()[0], lhs.strides()[1]);
    let (rhs_rs, rhs_cs) = (rhs.strides()[0], rhs.strides()[1]);
    // SAFETY: the shapes were checked by `gemm`, so every index the gemm crate touches, (i, j)
    // with i < m, j < n for dst, i < m, j < k for lhs and i < k, j < n for rhs, lies inside
    // the corresponding ndarray view, whose strides (in elements) we pass unchanged. `dst` is
    // a unique mutable borrow, so it cannot overlap `lhs` or `rhs` (shared borrows). With
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
}

/// `cblas_sgemm` of the system OpenBLAS, for row-major products with unit strides.
#[cfg(feature = "openblas")]
mod openblas {
    use std::ffi::c_int;

    use ndarray::{ArrayView2, ArrayViewMut2};

    use crate::Parallelism;

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
        parallelism: Parallelism,
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
        let threads = match parallelism {
            Parallelism::Rayon => c_int::try_from(rayon::current_num_threads()).unwrap_or(1),
            Parallelism::None => 1,
        };
        // SAFETY: the shapes were checked by `gemm`; each operand's pointer, transpose
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

//! The kernels under the spectrans-rs layers, with no machine-learning vocabulary: matrices,
//! rows, functions on rows.
//!
//! * [`gemm()`]: the one door to the products, `dst = epilogue(lhs · rhs)` with checked shapes,
//!   the right operand plain ([`Rhs::Plain`]) or packed once ([`Rhs::Packed`], [`PackedRhs`]
//!   in f32, bf16 or int8), an [`Epilogue`] (bias, a [`RowMap`], accumulate, elementwise
//!   scale) and explicit [`Parallelism`]. Which code runs it ([`backend`]) is this crate's
//!   business: our blocked GEMM ([`sgemm`]; micro-kernels for AVX-512, AVX2 + FMA and
//!   portable Rust, one folder each), the `gemm` crate, or the system OpenBLAS (feature
//!   `openblas`).
//! * [`precision`]: bfloat16 rounding and the int8 quantizers whose values the reduced
//!   products multiply.
//! * [`fast_math`]: branch-free `exp`, `erf` and the row loops built on them, compiled per
//!   instruction set.
//! * [`with_thread_local`]: the workspace's one scratch strategy.
//!
//! Every error is a [`LinalgError`] naming the operand; no input makes a function panic.
//!
//! ```
//! use ndarray::{array, Array2};
//! use spectrans_linalg::{gemm, Epilogue, Parallelism, Rhs};
//! let a = array![[1.0f32, 2.0], [3.0, 4.0]];
//! let bias = [1.0f32, -1.0];
//! let relu = |row: &mut [f32], bias: &[f32]| {
//!     row.iter_mut().zip(bias).for_each(|(v, b)| *v = (*v + b).max(0.0));
//! };
//! let epilogue = Epilogue { bias: Some(&bias), map: Some(&relu), ..Epilogue::default() };
//! let mut c = Array2::<f32>::zeros((2, 2));
//! gemm(c.view_mut(), a.view(), Rhs::Plain(a.view()), epilogue, Parallelism::Rayon)?;
//! assert_eq!(c, array![[8.0, 9.0], [16.0, 21.0]]);
//! # Ok::<(), spectrans_linalg::LinalgError>(())
//! ```

#![deny(missing_docs)]

mod epilogue;
mod error;
pub mod fast_math;
mod matmul;
pub mod precision;
mod scratch;
pub mod sgemm;
pub mod simd;

mod util;

pub use epilogue::{Epilogue, RowMap};
pub use error::LinalgError;
pub use matmul::{Backend, Parallelism, Rhs, backend, gemm, packs_f32};
pub use precision::Precision;
pub use scratch::with_thread_local;
pub use sgemm::{
    PackedRhs, f32_kernel_name, has_bf16_kernel, has_int8_kernel, int8_kernel_name, row_blocks,
};
pub use util::{contiguous, contiguous_mut};

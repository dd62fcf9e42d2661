//! Batched FFTs along the sequence axis (axis 1) of `(batch, seq, hidden)` arrays.
//!
//! * [`SeqRealFft`]: real FFT and inverse (`rfft` / `irfft` with numpy and torch
//!   semantics), a fused spectral filter `irfft(Hf ⊙ rfft(x))` and its adjoint.
//! * [`SeqComplexFft`]: the full complex FFT and inverse.
//! * [`fold_filter`]: turns a full-spectrum filter `H` into the half spectrum `Hf` with
//!   `Re(ifft(H ⊙ fft(x))) = irfft(Hf ⊙ rfft(x))` for real `x`.
//! * [`real_plan`]: a process-wide plan cache.
//!
//! Plans are made once per length. Calls transform tiles of neighbouring columns at a time
//! (copied into contiguous scratch, transformed, copied back) and run in parallel on the
//! current rayon pool. Any memory layout is accepted; standard (row-major) layout is fastest.
//!
//! ```
//! use ndarray::Array3;
//! use spectrans_fft::{Complex32, FftNorm, SeqRealFft};
//!
//! let plan = SeqRealFft::new(5)?;
//! let x = Array3::from_shape_fn((2, 5, 3), |(b, t, d)| (b * 15 + t * 3 + d) as f32);
//! let mut spectrum = Array3::<Complex32>::zeros((2, 3, 3));
//! plan.forward(x.view(), spectrum.view_mut(), FftNorm::Ortho)?;
//! let mut back = Array3::<f32>::zeros((2, 5, 3));
//! plan.inverse(spectrum.view(), back.view_mut(), FftNorm::Ortho)?;
//! assert!(x.iter().zip(back.iter()).all(|(a, b)| (a - b).abs() < 1e-4));
//! # Ok::<(), spectrans_fft::FftError>(())
//! ```

#![deny(missing_docs)]

mod cache;
mod complex;
mod error;
mod filter;
mod filter_slices;
mod fold;
mod lanes;
mod norm;
mod real;
mod scratch;
mod shape;
mod split;
mod strided;
mod tile;

pub use cache::real_plan;
pub use complex::SeqComplexFft;
pub use error::FftError;
pub use fold::fold_filter;
pub use norm::{FftNorm, UnknownVariant};
pub use num_complex::Complex32;
pub use real::SeqRealFft;
pub use scratch::{FilterWorkspace, with_thread_local};

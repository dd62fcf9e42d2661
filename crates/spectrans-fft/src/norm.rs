//! Normalisation modes, with numpy / torch semantics: [`FftNorm`] of spectrans-types, the one
//! definition the config and the layers use too.
//!
//! | mode | forward scale | inverse scale |
//! | --- | --- | --- |
//! | `Backward` | 1 | 1/n |
//! | `Forward` | 1/n | 1 |
//! | `Ortho` | 1/√n | 1/√n |
//!
//! ```
//! use spectrans_fft::FftNorm;
//! let norm: FftNorm = "ortho".parse().unwrap();
//! assert_eq!(norm, FftNorm::Ortho);
//! assert_eq!(norm.to_string(), "ortho");
//! assert!("unitary".parse::<FftNorm>().is_err());
//! ```

pub use spectrans_types::{FftNorm, UnknownVariant};

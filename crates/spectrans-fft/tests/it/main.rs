//! spectrans-fft's integration tests, one module per area, in one test binary (one link, not one per file).

mod common;
mod complex_fft;
mod errors;
mod filter;
mod real_fft;

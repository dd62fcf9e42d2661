//! spectrans-train's integration tests, one module per area, in one test binary.
//!
//! `parity` checks the gradients of every grad fixture against PyTorch spectrans (it needs the
//! losses, so it lives here); forward parity is in spectrans-models' tests.

mod fuzz;
mod heads;
mod parity;
mod precision;
mod training;

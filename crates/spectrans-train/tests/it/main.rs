//! spectrans-train's integration tests, one module per area, in one test binary.
//!
//! `parity` lives here, not in spectrans-models, because its gradient half needs the losses:
//! it checks the forward of every fixture and the gradients of every grad fixture against
//! PyTorch spectrans.

mod fuzz;
mod heads;
mod parity;
mod precision;
mod training;

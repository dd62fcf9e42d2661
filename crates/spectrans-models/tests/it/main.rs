//! spectrans-models's integration tests, one module per area, in one test binary (one link, not one per file).

mod defaults;
mod errors;
mod fuzz;
mod output;
mod parity;
mod ragged;

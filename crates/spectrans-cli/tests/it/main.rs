//! spectrans-cli's integration tests, one module per area, in one test binary (one link, not one per file).

mod cli;
mod common;
mod filters;
mod serve;
mod train_heads;
mod validate;

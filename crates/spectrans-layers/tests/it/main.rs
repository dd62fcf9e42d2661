//! spectrans-layers's integration tests, one module per area, in one test binary (one link, not one per file).

mod common;
mod errors;
mod forward_refs;
mod grad_global_filter;
mod grad_layers;
mod packing;
mod prepared_filter;
mod reuse;

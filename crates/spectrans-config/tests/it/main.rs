//! spectrans-config's integration tests, one module per area, in one test binary (one link, not one per file).

mod cross_field;
mod defaults;
mod field_rules;
mod fuzz;
mod parameters;
mod round_trip;

//! spectrans-models

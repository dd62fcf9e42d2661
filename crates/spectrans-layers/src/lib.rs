//! spectrans-layers

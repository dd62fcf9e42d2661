//! spectrans-config

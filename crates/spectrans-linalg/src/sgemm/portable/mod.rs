//! The portable micro-kernels: plain Rust for any CPU, the reference the vector ones are
//! tested against.

pub(super) mod f32;
pub(super) mod int8;

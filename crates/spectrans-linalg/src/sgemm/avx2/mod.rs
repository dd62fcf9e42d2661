//! The micro-kernels in AVX2 (x86-64): f32 (with FMA) and int8. Each takes the capability
//! token of its features ([`crate::simd`]).

pub(super) mod f32;
pub(super) mod int8;

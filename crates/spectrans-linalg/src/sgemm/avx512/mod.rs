//! The micro-kernels in AVX-512 (x86-64): the f32 pair tile (F), int8 (VNNI) and bf16
//! (BF16). Each takes the capability token of its features ([`crate::simd`]).

pub(super) mod bf16;
pub(super) mod f32;
pub(super) mod int8;

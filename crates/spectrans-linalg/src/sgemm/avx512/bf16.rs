//! The bf16 micro-kernel in AVX-512 BF16 (256-bit forms): `vdpbf16ps`.

use std::arch::x86_64::*;

use crate::sgemm::bf16::PAIR_VALUES;
use crate::sgemm::kernel::MR;
use crate::simd;

/// A full tile in 12 accumulators (row r's columns 0..8 in `2 r`, 8..16 in `2 r + 1`):
/// per pair of k, each row's two values broadcast, `vdpbf16ps` against the pair's 16
/// values of 8 columns; then stored (or added) at `c`.
///
/// # Safety
/// Needs AVX2, AVX-512 BF16 and AVX-512 VL, vouched for by `_cpu`; the caller promises
/// the rest: every row of `a` holds `2 · pairs` values and `b` `pairs` pairs (checked in
/// debug builds); `MR` rows of 16 values from `c`, `ldc` apart, are writable.
#[target_feature(enable = "avx2,avx512bf16,avx512vl")]
pub(in crate::sgemm) unsafe fn tile(
    _cpu: simd::Avx512Bf16,
    pairs: usize,
    a: [&[u16]; MR],
    b: &[u16],
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    debug_assert!(b.len() >= pairs * PAIR_VALUES && a.iter().all(|r| r.len() >= 2 * pairs));
    let mut acc = [_mm256_setzero_ps(); 2 * MR];
    let bp = b.as_ptr();
    for g in 0..pairs {
        // SAFETY: pair g < pairs lies inside `b`, and 2 g + 2 <= each row's length; a
        // 256-bit vector of bf16 pairs has the layout of `__m256bh`.
        unsafe {
            let b0: __m256bh =
                std::mem::transmute(_mm256_loadu_si256(bp.add(g * PAIR_VALUES).cast()));
            let b1: __m256bh =
                std::mem::transmute(_mm256_loadu_si256(bp.add(g * PAIR_VALUES + 16).cast()));
            for r in 0..MR {
                let pair = std::ptr::read_unaligned(a[r].as_ptr().add(2 * g).cast::<i32>());
                let x: __m256bh = std::mem::transmute(_mm256_set1_epi32(pair));
                acc[2 * r] = _mm256_dpbf16_ps(acc[2 * r], x, b0);
                acc[2 * r + 1] = _mm256_dpbf16_ps(acc[2 * r + 1], x, b1);
            }
        }
    }
    for (r, pair) in acc.chunks_exact(2).enumerate() {
        for (h, &v) in pair.iter().enumerate() {
            // SAFETY: row r < MR of the tile holds 16 writable values.
            unsafe {
                let dst = c.add(r * ldc + 8 * h);
                let v = if accumulate {
                    _mm256_add_ps(_mm256_loadu_ps(dst), v)
                } else {
                    v
                };
                _mm256_storeu_ps(dst, v);
            }
        }
    }
}

//! The int8 micro-kernel in AVX2: `vpmaddubsw` + `vpmaddwd`, and the vector dequantization
//! that the AVX-512 VNNI kernel shares.

use std::arch::x86_64::*;

use crate::sgemm::int8::{GROUP_BYTES, Panel, RowQuant};
use crate::sgemm::kernel::MR;
use crate::simd;

/// A full tile: the sums of [`sums`], then per row
/// `c (+)= ((acc − z · sum) · s_x) · s_w` in vectors, the same operations in the same
/// order as [`dequantize_row`](crate::sgemm::int8::dequantize_row) (so the same bits).
///
/// # Safety
/// Needs AVX2, vouched for by `cpu`; the caller promises the rest: as [`sums`], and `MR`
/// rows of `NR` values from `c`, `ldc` apart, are writable.
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
pub(in crate::sgemm) unsafe fn tile(
    cpu: simd::Avx2,
    groups: usize,
    a: [&[u8]; MR],
    quant: &[RowQuant; MR],
    panel: Panel<'_>,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    // SAFETY: the caller's contract.
    unsafe {
        let acc = accumulators(cpu, groups, a, panel.b);
        store(cpu, acc, quant, panel, c, ldc, accumulate);
    }
}

/// The dequantization of a tile's sums, stored (or added) at `c` (inlined into each
/// kernel's `tile`, which has AVX2).
///
/// # Safety
/// Needs AVX2, vouched for by `_cpu`; the caller promises the rest: the panel holds NR
/// sums and NR scales (checked in debug builds); `MR` rows of `NR` values from `c`, `ldc`
/// apart, are writable.
#[inline(always)]
pub(in crate::sgemm) unsafe fn store(
    _cpu: simd::Avx2,
    acc: [__m256i; 2 * MR],
    quant: &[RowQuant; MR],
    panel: Panel<'_>,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    debug_assert!(
        panel.sums.len() >= crate::sgemm::kernel::NR
            && panel.scales.len() >= crate::sgemm::kernel::NR
    );
    // SAFETY: the caller's contract.
    unsafe {
        let sums = [
            _mm256_loadu_si256(panel.sums.as_ptr().cast()),
            _mm256_loadu_si256(panel.sums.as_ptr().add(8).cast()),
        ];
        let scales = [
            _mm256_loadu_ps(panel.scales.as_ptr()),
            _mm256_loadu_ps(panel.scales.as_ptr().add(8)),
        ];
        for (r, q) in quant.iter().enumerate() {
            let zero = _mm256_set1_epi32(q.zero);
            let scale = _mm256_set1_ps(q.scale);
            for h in 0..2 {
                let centred = _mm256_sub_epi32(acc[2 * r + h], _mm256_mullo_epi32(zero, sums[h]));
                let v = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(centred), scale), scales[h]);
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

/// The integer sums `Σ_k a[r][k] · b[k, c]`, as an array (for the tests).
///
/// # Safety
/// Needs AVX2, vouched for by `cpu`; every row of `a` holds `4 · groups` codes and `b`
/// `groups` groups.
#[cfg(test)]
#[target_feature(enable = "avx2")]
pub(in crate::sgemm) unsafe fn sums(
    cpu: simd::Avx2,
    groups: usize,
    a: [&[u8]; MR],
    b: &[i8],
) -> [[i32; crate::sgemm::kernel::NR]; MR] {
    // SAFETY: the caller's contract.
    unsafe { to_array(cpu, accumulators(cpu, groups, a, b)) }
}

/// The 12 accumulators as MR rows of NR sums (for the tests).
///
/// # Safety
/// Needs AVX2, vouched for by `_cpu`.
#[cfg(test)]
#[inline(always)]
pub(in crate::sgemm) unsafe fn to_array(
    _cpu: simd::Avx2,
    acc: [__m256i; 2 * MR],
) -> [[i32; crate::sgemm::kernel::NR]; MR] {
    let mut out = [[0i32; crate::sgemm::kernel::NR]; MR];
    for (r, row) in out.iter_mut().enumerate() {
        // SAFETY: each row holds NR = 16 i32; the CPU has AVX2 (the caller's contract).
        unsafe {
            _mm256_storeu_si256(row.as_mut_ptr().cast(), acc[2 * r]);
            _mm256_storeu_si256(row.as_mut_ptr().add(8).cast(), acc[2 * r + 1]);
        }
    }
    out
}

/// The integer sums in 12 accumulators (row r's columns 0..8 in `2 r`, 8..16 in
/// `2 r + 1`): per group of 4 k, each row's 4 codes broadcast, `vpmaddubsw` against the
/// 32 bytes of 8 columns (pairs of products in i16), `vpmaddwd` with ones (sums of 4 in
/// i32), added. (The compiler spills one accumulator to the stack in this loop; pinning
/// the registers in assembly was measured and gained nothing: the two multiply pipes are
/// the bound.)
///
/// # Safety
/// Needs AVX2, vouched for by `_cpu`; every row of `a` holds `4 · groups` codes and `b`
/// `groups` groups (checked in debug builds).
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn accumulators(
    _cpu: simd::Avx2,
    groups: usize,
    a: [&[u8]; MR],
    b: &[i8],
) -> [__m256i; 2 * MR] {
    debug_assert!(b.len() >= groups * GROUP_BYTES && a.iter().all(|r| r.len() >= 4 * groups));
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_si256(); 2 * MR];
    let bp = b.as_ptr();
    for g in 0..groups {
        // SAFETY: group g < groups lies inside `b`, and 4 g + 4 <= each row's length.
        unsafe {
            let b0 = _mm256_loadu_si256(bp.add(g * GROUP_BYTES).cast());
            let b1 = _mm256_loadu_si256(bp.add(g * GROUP_BYTES + 32).cast());
            for r in 0..MR {
                let word = std::ptr::read_unaligned(a[r].as_ptr().add(4 * g).cast::<i32>());
                let x = _mm256_set1_epi32(word);
                let p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(x, b0), ones);
                let p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(x, b1), ones);
                acc[2 * r] = _mm256_add_epi32(acc[2 * r], p0);
                acc[2 * r + 1] = _mm256_add_epi32(acc[2 * r + 1], p1);
            }
        }
    }
    acc
}

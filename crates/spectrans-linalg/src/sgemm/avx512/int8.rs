//! The int8 micro-kernel in AVX-512 VNNI (256-bit forms): `vpdpbusd`.

use std::arch::x86_64::*;

use crate::sgemm::avx2::int8::store;
#[cfg(test)]
use crate::sgemm::avx2::int8::to_array;
use crate::sgemm::int8::{GROUP_BYTES, Panel, RowQuant};
use crate::sgemm::kernel::MR;
use crate::simd;

/// [`tile`](crate::sgemm::avx2::int8::tile) with the sums of [`accumulators`] (the same integers, so the same bits).
///
/// # Safety
/// Needs AVX2, AVX-512 VNNI and AVX-512 VL, vouched for by `cpu`; the caller promises
/// the rest, as for [`tile`](crate::sgemm::avx2::int8::tile).
#[target_feature(enable = "avx2,avx512vnni,avx512vl")]
#[allow(clippy::too_many_arguments)]
pub(in crate::sgemm) unsafe fn tile(
    cpu: simd::Avx512Vnni,
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
        store(cpu.into(), acc, quant, panel, c, ldc, accumulate);
    }
}

/// [`sums`](crate::sgemm::avx2::int8::sums) by [`accumulators`] (for the tests).
///
/// # Safety
/// As [`sums`](crate::sgemm::avx2::int8::sums); needs AVX2, AVX-512 VNNI and AVX-512 VL, vouched for by `cpu`.
#[cfg(test)]
#[target_feature(enable = "avx2,avx512vnni,avx512vl")]
pub(in crate::sgemm) unsafe fn sums(
    cpu: simd::Avx512Vnni,
    groups: usize,
    a: [&[u8]; MR],
    b: &[i8],
) -> [[i32; crate::sgemm::kernel::NR]; MR] {
    // SAFETY: the caller's contract.
    unsafe { to_array(cpu.into(), accumulators(cpu, groups, a, b)) }
}

/// The integer sums of [`accumulators`](crate::sgemm::avx2::int8), by `vpdpbusd`: per group of 4 k, each row's 4
/// codes broadcast, and each 32-bit lane of the accumulator gains the sum of its four
/// u8 x i8 products in one instruction. The sums are exact (no i16 stage to saturate),
/// so they equal the AVX2 and portable ones.
///
/// # Safety
/// Needs AVX2, AVX-512 VNNI and AVX-512 VL, vouched for by `_cpu`; every row of `a`
/// holds `4 · groups` codes and `b` `groups` groups (checked in debug builds).
#[inline]
#[target_feature(enable = "avx2,avx512vnni,avx512vl")]
unsafe fn accumulators(
    _cpu: simd::Avx512Vnni,
    groups: usize,
    a: [&[u8]; MR],
    b: &[i8],
) -> [__m256i; 2 * MR] {
    debug_assert!(b.len() >= groups * GROUP_BYTES && a.iter().all(|r| r.len() >= 4 * groups));
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
                acc[2 * r] = _mm256_dpbusd_epi32(acc[2 * r], x, b0);
                acc[2 * r + 1] = _mm256_dpbusd_epi32(acc[2 * r + 1], x, b1);
            }
        }
    }
    acc
}

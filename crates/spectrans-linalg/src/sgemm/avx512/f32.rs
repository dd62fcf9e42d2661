//! The f32 micro-kernels in AVX-512 F: [`tile`], 12 x 32 (two 512-bit registers per row)
//! for the bulk of C and 12 x 16 for a last odd panel of columns, and the single panel
//! (6 x 16) of [`Kernel::run`](crate::sgemm::kernel::Kernel::run).

use std::arch::x86_64::*;

use crate::sgemm::kernel::{MR, NR, PanelValue, Tile};
use crate::simd;

/// Steps ahead that [`tile`] prefetches its B panels.
const AHEAD: usize = 8;

/// Rows of [`tile`]'s tiles.
const ROWS: usize = 2 * MR;

/// `C (+)= A · B` over `kc` steps for a 12 x (16 · PANELS) tile: the 12 x 32 tile (two B
/// panels) for the bulk of C, the 12 x 16 one for an odd last panel. `b` holds the `kc * NR`
/// values of each panel, one panel after the other; 12 · PANELS accumulators of 16 lanes,
/// and each broadcast of A feeds PANELS fused multiply-adds: at two panels, 24 FMAs against
/// 14 loads per step (one panel: 12 against 13), so both FMA ports stay fed rather than
/// waiting on the loads. Each step also asks for B's line `AHEAD` steps on: the tile streams
/// its B panels from L2 (the pair of A panels is what stays in L1), and the hardware's
/// prefetcher alone left the FMAs waiting.
///
/// With `IN_PLACE` A's element (r, p) is at `a + r * stride + p` (12 rows of a row-major
/// A); else at `a + r + p * MR` for r < MR and `a + stride + (r - MR) + p * MR` after (two
/// packed panels, `stride` apart). Each sum is the same chain of fused multiply-adds as in
/// every other kernel, so the bits are the same.
///
/// # Safety
/// Needs AVX-512 F, vouched for by the `_cpu` token; the caller promises the rest: A's
/// two panels and `b` (`PANELS * kc * NR` values, checked) are readable; the tile's 12 rows
/// of 16 · PANELS floats are as [`Kernel::run`](crate::sgemm::kernel::Kernel::run) asks.
#[target_feature(enable = "avx512f")]
pub(in crate::sgemm) unsafe fn tile<const IN_PLACE: bool, T: PanelValue, const PANELS: usize>(
    _cpu: simd::Avx512,
    kc: usize,
    a: *const f32,
    stride: usize,
    b: &[T],
    tile: Tile,
) {
    // Where row r of A starts, and how far apart its steps are.
    let (second, rs, cs) = if IN_PLACE {
        (MR * stride, stride, 1)
    } else {
        (stride, 1, MR)
    };
    assert!(
        b.len() >= PANELS * kc * NR,
        "{PANELS} B panels of {} values for kc = {kc}",
        b.len()
    );
    let mut acc = [[_mm512_setzero_ps(); ROWS]; PANELS];
    let b = b.as_ptr();
    for p in 0..kc {
        // SAFETY: p < kc: step p of every B panel (checked above) and of both panels of A
        // (the caller's contract); a prefetch reads nothing and never faults.
        unsafe {
            let mut v = [_mm512_setzero_ps(); PANELS];
            for (q, v) in v.iter_mut().enumerate() {
                let panel = b.add(q * kc * NR);
                _mm_prefetch::<_MM_HINT_T0>(panel.wrapping_add((p + AHEAD) * NR).cast());
                *v = PanelValue::load16(panel.add(p * NR));
            }
            let a0 = a.add(p * cs);
            let a1 = a0.add(second);
            for r in 0..ROWS {
                let x = if r < MR {
                    *a0.add(r * rs)
                } else {
                    *a1.add((r - MR) * rs)
                };
                let x = _mm512_set1_ps(x);
                for (acc, &v) in acc.iter_mut().zip(&v) {
                    acc[r] = _mm512_fmadd_ps(x, v, acc[r]);
                }
            }
        }
    }
    for (q, acc) in acc.iter().enumerate() {
        // SAFETY: the tile's 12 rows of 16 · PANELS floats (the caller's contract).
        unsafe {
            let c = tile.c.add(q * NR);
            store(acc, Tile { c, ..tile });
        }
    }
}

/// `C (+)= A · B` over `kc` steps for one 6 x 16 tile: 6 accumulators of 16 lanes (half the
/// work of [`tile`] per step, half the latency hidden, still 1.5x the AVX2 kernel's rate).
/// Each sum is the same chain of fused multiply-adds as in every other kernel, so the bits
/// do not depend on which kernel a row meets. A's element (r, p) is at `a + r * rs + p * cs`
/// with `(rs, cs) = (lda, 1)` when `IN_PLACE`, else `(1, MR)` (one packed panel).
///
/// # Safety
/// Needs AVX-512 F, vouched for by the `_cpu` token; the caller promises the rest: A's
/// panel and `b` (`kc * NR` values, checked) are readable; the tile's 6 rows are as
/// [`Kernel::run`](crate::sgemm::kernel::Kernel::run) asks.
#[target_feature(enable = "avx512f")]
pub(in crate::sgemm) unsafe fn single<const IN_PLACE: bool, T: PanelValue>(
    _cpu: simd::Avx512,
    kc: usize,
    a: *const f32,
    lda: usize,
    b: &[T],
    tile: Tile,
) {
    let (rs, cs) = if IN_PLACE { (lda, 1) } else { (1, MR) };
    debug_assert!(
        b.len() >= kc * NR,
        "B panel of {} values for kc = {kc}",
        b.len()
    );
    let mut acc = [_mm512_setzero_ps(); MR];
    let b = b.as_ptr();
    for p in 0..kc {
        // SAFETY: p < kc: step p of B's panel and of A's panel (the caller's contract).
        unsafe {
            let bv = PanelValue::load16(b.add(p * NR));
            let a0 = a.add(p * cs);
            for (r, acc) in acc.iter_mut().enumerate() {
                *acc = _mm512_fmadd_ps(_mm512_set1_ps(*a0.add(r * rs)), bv, *acc);
            }
        }
    }
    // SAFETY: the tile's 6 rows of NR floats (the caller's contract).
    unsafe { store(&acc, tile) };
}

/// Stores (or, with `tile.accumulate`, adds) one accumulator per row of the tile.
///
/// # Safety
/// Needs AVX-512 F (the callers' token); rows `0..acc.len()` of the tile hold NR = 16
/// writable floats each, at `c + r * ldc`.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn store(acc: &[__m512], tile: Tile) {
    for (r, &sum) in acc.iter().enumerate() {
        // SAFETY: row r of the tile holds NR = 16 floats at c + r * ldc (the contract).
        unsafe {
            let row = tile.c.add(r * tile.ldc);
            let v = if tile.accumulate {
                _mm512_add_ps(sum, _mm512_loadu_ps(row))
            } else {
                sum
            };
            _mm512_storeu_ps(row, v);
        }
    }
}

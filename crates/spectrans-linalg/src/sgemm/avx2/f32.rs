//! The f32 micro-kernel in AVX2 + FMA: a 6 x 16 tile in 12 registers.

use std::arch::x86_64::*;

use crate::sgemm::kernel::{MR, NR, PanelValue, Tile};
use crate::simd;

/// One step: broadcast each of the MR values of A (`rs` apart) and multiply-add it into
/// the two vectors of B.
macro_rules! step {
    ($acc:ident, $a:expr, $rs:expr, $b:expr) => {{
        // SAFETY (caller): `$a + r * $rs` is readable for r < MR, `$b` holds NR values.
        let (a, b) = ($a, $b);
        let b0 = unsafe { PanelValue::load8(b) };
        let b1 = unsafe { PanelValue::load8(b.add(8)) };
        for r in 0..MR {
            // SAFETY: as above, r < MR.
            let av = unsafe { _mm256_broadcast_ss(&*a.add(r * $rs)) };
            $acc[2 * r] = _mm256_fmadd_ps(av, b0, $acc[2 * r]);
            $acc[2 * r + 1] = _mm256_fmadd_ps(av, b1, $acc[2 * r + 1]);
        }
    }};
}

/// `C (+)= A · B` over `kc` steps with 12 accumulators (6 rows x 2 vectors). A's element
/// (r, p) is at `a + r * lda + p` when `ROWS`, else at `a + r + p * MR` (packed).
///
/// # Safety
/// Needs AVX2 and FMA, vouched for by the `_cpu` token; the caller promises the rest:
/// A's block and `b` (`kc * NR` values) are readable; the tile is as
/// [`Kernel::run`](crate::sgemm::kernel::Kernel::run) asks.
#[target_feature(enable = "avx2,fma")]
pub(in crate::sgemm) unsafe fn kernel<const ROWS: bool, T: PanelValue>(
    _cpu: simd::Avx2Fma,
    kc: usize,
    a: *const f32,
    lda: usize,
    b: *const T,
    tile: Tile,
) {
    let (rs, cs) = if ROWS { (lda, 1) } else { (1, MR) };
    let mut acc = [_mm256_setzero_ps(); 2 * MR];
    let mut p = 0;
    // SAFETY (every step): p + u < kc, so each step reads inside A's block and B's panel.
    while p + 4 <= kc {
        step!(acc, unsafe { a.add(p * cs) }, rs, unsafe { b.add(p * NR) });
        step!(acc, unsafe { a.add((p + 1) * cs) }, rs, unsafe {
            b.add((p + 1) * NR)
        });
        step!(acc, unsafe { a.add((p + 2) * cs) }, rs, unsafe {
            b.add((p + 2) * NR)
        });
        step!(acc, unsafe { a.add((p + 3) * cs) }, rs, unsafe {
            b.add((p + 3) * NR)
        });
        p += 4;
    }
    while p < kc {
        step!(acc, unsafe { a.add(p * cs) }, rs, unsafe { b.add(p * NR) });
        p += 1;
    }
    for r in 0..MR {
        // SAFETY: row r of the tile holds NR = 16 floats at c + r * ldc.
        unsafe {
            let row = tile.c.add(r * tile.ldc);
            let (mut v0, mut v1) = (acc[2 * r], acc[2 * r + 1]);
            if tile.accumulate {
                v0 = _mm256_add_ps(v0, _mm256_loadu_ps(row));
                v1 = _mm256_add_ps(v1, _mm256_loadu_ps(row.add(8)));
            }
            _mm256_storeu_ps(row, v0);
            _mm256_storeu_ps(row.add(8), v1);
        }
    }
}

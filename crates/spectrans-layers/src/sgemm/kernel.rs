//! The micro-kernels: `C[0..MR, 0..NR] (+)= A_panel · B_panel` over `kc` steps. The B panel
//! holds `NR` values per step ([`super::pack`]); the A panel is either packed (`MR` values
//! per step) or read in place from `MR` rows of a row-major A. One portable kernel, and one
//! in AVX2 + FMA chosen at run time.

/// Rows of a micro-tile.
pub(crate) const MR: usize = 6;
/// Columns of a micro-tile (two 8-lane vectors).
pub(crate) const NR: usize = 16;

/// Where a kernel reads its MR x kc block of A: element (r, p) at `ptr + r * rs + p * cs`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum APanel {
    /// A packed panel: `rs = 1`, `cs = MR`.
    Packed(*const f32),
    /// MR rows of a row-major A, `lda` floats apart: `rs = lda`, `cs = 1`.
    Rows(*const f32, usize),
}

/// Which micro-kernel runs, detected once per product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// Plain Rust, any CPU.
    Portable,
    /// AVX2 with fused multiply-adds.
    #[cfg(target_arch = "x86_64")]
    Avx2Fma,
}

impl Kernel {
    /// The fastest kernel this CPU runs.
    pub(crate) fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return Kernel::Avx2Fma;
            }
        }
        Kernel::Portable
    }

    /// `C (+)= A · B_panel` over `kc` steps, for the MR x NR tile of C at `c` whose rows are
    /// `ldc` floats apart (added to C when `accumulate`, else overwriting it).
    ///
    /// # Safety
    /// `a` addresses MR x kc readable floats as its variant says; `b` holds at least
    /// `kc * NR` values; `c + r * ldc + j` is valid for writes (and reads) for every `r < MR`,
    /// `j < NR`, and no other reference aliases it.
    #[inline]
    pub(crate) unsafe fn run(
        self,
        kc: usize,
        a: APanel,
        b: &[f32],
        c: *mut f32,
        ldc: usize,
        accumulate: bool,
    ) {
        let b = &b[..kc * NR];
        match (self, a) {
            // SAFETY (every arm): the caller's contract; `detect` chose the AVX2 kernel only
            // when the CPU has AVX2 and FMA.
            (Kernel::Portable, APanel::Packed(p)) => unsafe {
                portable(kc, p, 1, MR, b, c, ldc, accumulate)
            },
            (Kernel::Portable, APanel::Rows(p, lda)) => unsafe {
                portable(kc, p, lda, 1, b, c, ldc, accumulate)
            },
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx2Fma, APanel::Packed(p)) => unsafe {
                avx2::kernel::<false>(kc, p, 1, b.as_ptr(), c, ldc, accumulate)
            },
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx2Fma, APanel::Rows(p, lda)) => unsafe {
                avx2::kernel::<true>(kc, p, lda, b.as_ptr(), c, ldc, accumulate)
            },
        }
    }
}

/// The portable kernel: the same sums in the same order as the vector kernel (which fuses
/// each multiply-add, so the two are compared with a tolerance, not bit for bit).
///
/// # Safety
/// As [`Kernel::run`], with A's element (r, p) at `a + r * rs + p * cs`.
#[allow(clippy::too_many_arguments)]
unsafe fn portable(
    kc: usize,
    a: *const f32,
    rs: usize,
    cs: usize,
    b: &[f32],
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    let mut acc = [[0.0f32; NR]; MR];
    for (p, bp) in b.chunks_exact(NR).take(kc).enumerate() {
        for (r, row) in acc.iter_mut().enumerate() {
            // SAFETY: r < MR, p < kc: inside A's block (the caller's contract).
            let av = unsafe { *a.add(r * rs + p * cs) };
            for (s, &bv) in row.iter_mut().zip(bp) {
                *s += av * bv;
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        // SAFETY: the caller's contract: row r of the tile is NR writable floats.
        let dst = unsafe { std::slice::from_raw_parts_mut(c.add(r * ldc), NR) };
        if accumulate {
            dst.iter_mut().zip(row).for_each(|(d, s)| *d += s);
        } else {
            dst.copy_from_slice(row);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{MR, NR};

    /// One step: broadcast each of the MR values of A (`rs` apart) and multiply-add it into
    /// the two vectors of B.
    macro_rules! step {
        ($acc:ident, $a:expr, $rs:expr, $b:expr) => {{
            // SAFETY (caller): `$a + r * $rs` is readable for r < MR, `$b` holds NR floats.
            let (a, b) = ($a, $b);
            let b0 = unsafe { _mm256_loadu_ps(b) };
            let b1 = unsafe { _mm256_loadu_ps(b.add(8)) };
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
    /// The CPU has AVX2 and FMA; A's block and `b` (`kc * NR` floats) are readable; the
    /// tile at `c` (rows `ldc` apart) is as [`super::Kernel::run`] asks.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn kernel<const ROWS: bool>(
        kc: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        accumulate: bool,
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
                let row = c.add(r * ldc);
                let (mut v0, mut v1) = (acc[2 * r], acc[2 * r + 1]);
                if accumulate {
                    v0 = _mm256_add_ps(v0, _mm256_loadu_ps(row));
                    v1 = _mm256_add_ps(v1, _mm256_loadu_ps(row.add(8)));
                }
                _mm256_storeu_ps(row, v0);
                _mm256_storeu_ps(row.add(8), v1);
            }
        }
    }
}

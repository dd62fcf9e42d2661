//! The micro-kernels: `C[0..MR, 0..NR] (+)= A_panel · B_panel` over `kc` steps, where the A
//! panel holds `MR` values per step and the B panel `NR` (the packed layouts of
//! [`super::pack`]). One portable kernel, and one in AVX2 + FMA chosen at run time.

/// Rows of a micro-tile.
pub(crate) const MR: usize = 6;
/// Columns of a micro-tile (two 8-lane vectors).
pub(crate) const NR: usize = 16;

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

    /// `C (+)= A_panel · B_panel` over `kc` steps, for the MR x NR tile of C at `c` whose
    /// rows are `ldc` floats apart (added to C when `accumulate`, else overwriting it).
    ///
    /// # Safety
    /// `a` holds at least `kc * MR` values and `b` `kc * NR`; `c + r * ldc + j` is valid for
    /// writes (and reads) for every `r < MR`, `j < NR`, and no other reference aliases it.
    #[inline]
    pub(crate) unsafe fn run(
        self,
        kc: usize,
        a: &[f32],
        b: &[f32],
        c: *mut f32,
        ldc: usize,
        accumulate: bool,
    ) {
        let (a, b) = (&a[..kc * MR], &b[..kc * NR]);
        match self {
            // SAFETY: the caller's contract.
            Kernel::Portable => unsafe { portable(kc, a, b, c, ldc, accumulate) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `detect` chose this kernel only when the CPU has AVX2 and FMA; the
            // slices were cut to the lengths the kernel reads; C is the caller's contract.
            Kernel::Avx2Fma => unsafe {
                avx2::kernel(kc, a.as_ptr(), b.as_ptr(), c, ldc, accumulate)
            },
        }
    }
}

/// The portable kernel: the same sums in the same order as the vector kernel (which fuses
/// each multiply-add, so the two are compared with a tolerance, not bit for bit).
///
/// # Safety
/// As [`Kernel::run`].
unsafe fn portable(kc: usize, a: &[f32], b: &[f32], c: *mut f32, ldc: usize, accumulate: bool) {
    let mut acc = [[0.0f32; NR]; MR];
    for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(NR)).take(kc) {
        for (row, &av) in acc.iter_mut().zip(ap) {
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

    /// One step: broadcast each of the MR values of A and multiply-add it into the two
    /// vectors of B.
    macro_rules! step {
        ($acc:ident, $a:expr, $b:expr) => {{
            // SAFETY (caller): `$a` points at MR readable floats and `$b` at NR.
            let (a, b) = unsafe { ($a, $b) };
            let b0 = unsafe { _mm256_loadu_ps(b) };
            let b1 = unsafe { _mm256_loadu_ps(b.add(8)) };
            for r in 0..MR {
                // SAFETY: as above, r < MR.
                let av = unsafe { _mm256_broadcast_ss(&*a.add(r)) };
                $acc[2 * r] = _mm256_fmadd_ps(av, b0, $acc[2 * r]);
                $acc[2 * r + 1] = _mm256_fmadd_ps(av, b1, $acc[2 * r + 1]);
            }
        }};
    }

    /// `C (+)= A · B` over `kc` steps with 12 accumulators (6 rows x 2 vectors).
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA; `a` points at `kc * MR` floats and `b` at `kc * NR`; the
    /// tile at `c` (rows `ldc` apart) is as [`super::Kernel::run`] asks.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn kernel(
        kc: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        accumulate: bool,
    ) {
        let mut acc = [_mm256_setzero_ps(); 2 * MR];
        let mut p = 0;
        while p + 4 <= kc {
            // p + 3 < kc, so each step reads inside the panels.
            step!(acc, a.add(p * MR), b.add(p * NR));
            step!(acc, a.add((p + 1) * MR), b.add((p + 1) * NR));
            step!(acc, a.add((p + 2) * MR), b.add((p + 2) * NR));
            step!(acc, a.add((p + 3) * MR), b.add((p + 3) * NR));
            p += 4;
        }
        while p < kc {
            // p < kc.
            step!(acc, a.add(p * MR), b.add(p * NR));
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

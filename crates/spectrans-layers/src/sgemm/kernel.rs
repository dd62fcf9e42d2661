//! The micro-kernels: `C[0..MR, 0..NR] (+)= A_panel · B_panel` over `kc` steps. The B panel
//! holds `NR` values per step ([`super::pack`]): f32, or bf16 widened to f32 as it is loaded
//! (int8 weights have their own integer kernel, [`super::int8`]). The A panel is either packed (`MR` values per step) or read in place from `MR` rows of a
//! row-major A. One portable kernel, and one in AVX2 + FMA chosen at run time.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

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

/// A value of a packed B panel: f32 or bf16 (its 16 high bits).
pub(crate) trait PanelValue: Copy {
    /// The value as f32 (exact for both).
    fn to_f32(self) -> f32;

    /// Eight consecutive values at `p` as f32 lanes.
    ///
    /// # Safety
    /// The CPU has AVX2; `p` addresses eight readable values.
    #[cfg(target_arch = "x86_64")]
    unsafe fn load8(p: *const Self) -> __m256;
}

impl PanelValue for f32 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load8(p: *const Self) -> __m256 {
        // SAFETY: the caller's contract.
        unsafe { _mm256_loadu_ps(p) }
    }
}

/// bfloat16 bits: the high half of an f32.
impl PanelValue for u16 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        f32::from_bits(u32::from(self) << 16)
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load8(p: *const Self) -> __m256 {
        // SAFETY: the caller's contract (8 u16 = 16 bytes).
        unsafe {
            let wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(p.cast()));
            _mm256_castsi256_ps(_mm256_slli_epi32::<16>(wide))
        }
    }
}

/// One step-run of a B panel as the kernels read it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum BPanel<'a> {
    /// f32 values.
    F32(&'a [f32]),
    /// bfloat16 values.
    Bf16(&'a [u16]),
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
        b: BPanel<'_>,
        c: *mut f32,
        ldc: usize,
        accumulate: bool,
    ) {
        // SAFETY: the caller's contract, passed on.
        unsafe {
            match b {
                BPanel::F32(b) => self.run_typed(kc, a, &b[..kc * NR], c, ldc, accumulate),
                BPanel::Bf16(b) => self.run_typed(kc, a, &b[..kc * NR], c, ldc, accumulate),
            }
        }
    }

    /// [`Kernel::run`] on one panel type.
    ///
    /// # Safety
    /// As [`Kernel::run`], with `b` holding `kc * NR` values.
    #[inline(always)]
    unsafe fn run_typed<T: PanelValue>(
        self,
        kc: usize,
        a: APanel,
        b: &[T],
        c: *mut f32,
        ldc: usize,
        accumulate: bool,
    ) {
        let tile = Tile { c, ldc, accumulate };
        match (self, a) {
            // SAFETY (every arm): the caller's contract; `detect` chose the AVX2 kernel only
            // when the CPU has AVX2 and FMA.
            (Kernel::Portable, APanel::Packed(p)) => unsafe { portable(kc, p, 1, MR, b, tile) },
            (Kernel::Portable, APanel::Rows(p, lda)) => unsafe { portable(kc, p, lda, 1, b, tile) },
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx2Fma, APanel::Packed(p)) => unsafe {
                avx2::kernel::<false, T>(kc, p, 1, b.as_ptr(), tile)
            },
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx2Fma, APanel::Rows(p, lda)) => unsafe {
                avx2::kernel::<true, T>(kc, p, lda, b.as_ptr(), tile)
            },
        }
    }
}

/// Where a kernel's MR x NR sums go: `C[r, j] (+)= sum[r, j]`, rows `ldc` floats apart.
#[derive(Debug, Clone, Copy)]
struct Tile {
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
}

/// The portable kernel: the same sums in the same order as the vector kernel (which fuses
/// each multiply-add, so the two are compared with a tolerance, not bit for bit).
///
/// # Safety
/// As [`Kernel::run`], with A's element (r, p) at `a + r * rs + p * cs`.
unsafe fn portable<T: PanelValue>(
    kc: usize,
    a: *const f32,
    rs: usize,
    cs: usize,
    b: &[T],
    tile: Tile,
) {
    let mut acc = [[0.0f32; NR]; MR];
    for (p, bp) in b.chunks_exact(NR).take(kc).enumerate() {
        for (r, row) in acc.iter_mut().enumerate() {
            // SAFETY: r < MR, p < kc: inside A's block (the caller's contract).
            let av = unsafe { *a.add(r * rs + p * cs) };
            for (s, &bv) in row.iter_mut().zip(bp) {
                *s += av * bv.to_f32();
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        // SAFETY: the caller's contract: row r of the tile is NR writable floats.
        let dst = unsafe { std::slice::from_raw_parts_mut(tile.c.add(r * tile.ldc), NR) };
        if tile.accumulate {
            dst.iter_mut().zip(row.iter()).for_each(|(d, s)| *d += s);
        } else {
            dst.copy_from_slice(row);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{MR, NR, PanelValue, Tile};

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
    /// The CPU has AVX2 and FMA; A's block and `b` (`kc * NR` values) are readable; the
    /// tile is as [`super::Kernel::run`] asks.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn kernel<const ROWS: bool, T: PanelValue>(
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
}

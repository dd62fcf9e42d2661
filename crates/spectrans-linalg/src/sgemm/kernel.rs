//! The micro-kernels: `C[0..MR, 0..NR] (+)= A_panel · B_panel` over `kc` steps. The B panel
//! holds `NR` values per step ([`super::pack`]): f32, or bf16 widened to f32 as it is loaded
//! (int8 weights have their own integer kernel, [`super::int8`]). The A panel is either packed (`MR` values per step) or read in place from `MR` rows of a
//! row-major A. One portable kernel, and one in AVX2 + FMA chosen at run time; on CPUs with
//! AVX-512, [`Kernel::run_tile`] sums two panels of A (12 rows) against two B panels in one
//! pass (each row of 32 columns in two 512-bit registers), or against one. Every kernel sums each element of C
//! over k in the same order with one fused multiply-add per step, so the vector kernels give
//! the same bits.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

#[cfg(target_arch = "x86_64")]
use crate::simd;

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

    /// Sixteen consecutive values at `p` as f32 lanes.
    ///
    /// # Safety
    /// The CPU has AVX-512 F; `p` addresses sixteen readable values.
    #[cfg(target_arch = "x86_64")]
    unsafe fn load16(p: *const Self) -> __m512;

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

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load16(p: *const Self) -> __m512 {
        // SAFETY: the caller's contract.
        unsafe { _mm512_loadu_ps(p) }
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

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load16(p: *const Self) -> __m512 {
        // SAFETY: the caller's contract (16 u16 = 32 bytes).
        unsafe {
            let wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(p.cast()));
            _mm512_castsi512_ps(_mm512_slli_epi32::<16>(wide))
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

#[cfg(target_arch = "x86_64")]
use super::avx2::f32 as avx2;
#[cfg(target_arch = "x86_64")]
use super::avx512::f32 as avx512;
use super::portable::f32::kernel as portable;

/// Which micro-kernel runs, detected once per product. The vector variants hold the
/// capability token of their instruction set ([`crate::simd`]), so a `Kernel` that runs
/// AVX2 or AVX-512 code can only be made on a CPU that has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// Plain Rust, any CPU.
    Portable,
    /// AVX2 with fused multiply-adds.
    #[cfg(target_arch = "x86_64")]
    Avx2Fma(simd::Avx2Fma),
    /// AVX-512 F: 12 x 32 and 12 x 16 tiles for [`Kernel::run_tile`], 6 x 16 for single
    /// panels.
    #[cfg(target_arch = "x86_64")]
    Avx512(simd::Avx512),
}

impl Kernel {
    /// The fastest kernel this CPU runs.
    pub(crate) fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if let Some(cpu) = simd::Avx512::try_new() {
                return Kernel::Avx512(cpu);
            }
            if let Some(cpu) = simd::Avx2Fma::try_new() {
                return Kernel::Avx2Fma(cpu);
            }
        }
        Kernel::Portable
    }

    /// Every kernel this CPU runs, the portable one first (for tests that compare them).
    #[cfg(test)]
    pub(crate) fn available() -> Vec<Self> {
        #[allow(unused_mut)]
        let mut kernels = vec![Kernel::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            kernels.extend(simd::Avx2Fma::try_new().map(Kernel::Avx2Fma));
            kernels.extend(simd::Avx512::try_new().map(Kernel::Avx512));
        }
        kernels
    }

    /// Whether this is the AVX-512 kernel (whose pair tile reads A best packed).
    pub(crate) fn is_avx512(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        if let Kernel::Avx512(_) = self {
            return true;
        }
        false
    }

    /// The kernel in words.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kernel::Portable => "portable 6x16 kernel",
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2Fma(_) => "AVX2+FMA 6x16 kernel",
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512(_) => "AVX-512 12x32 kernel (12x16 for an odd last panel)",
        }
    }

    /// `C (+)= A · B_panel` over `kc` steps, for the MR x NR tile of C at `c` whose rows are
    /// `ldc` floats apart (added to C when `accumulate`, else overwriting it).
    ///
    /// # Safety
    /// `a` addresses MR x kc readable floats as its variant says; `b` holds at least
    /// `kc * NR` values (checked: a shorter panel panics); `c + r * ldc + j` is valid for
    /// writes (and reads) for every `r < MR`, `j < NR`, and no other reference aliases it.
    /// (The CPU features of a vector kernel, AVX2 + FMA or AVX-512 F, are vouched for by the
    /// token its variant holds: nothing for the caller to promise.)
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

    /// [`Kernel::run`] on two panels of A by `PANELS` panels of B at once: the tile is 2·MR x
    /// PANELS·NR. A's second panel of rows follows the first (`Rows(p, lda)`: rows MR..2·MR
    /// at `p + r * lda`; `Packed(p)`: the second packed panel at `p + kc * MR`), and `b`
    /// holds the `kc * NR` values of each B panel, one after the other (as in a packed B
    /// block). The same bits as [`Kernel::run`] on each MR x NR part; one pass where the CPU
    /// has AVX-512 (the 12 x 16 and 12 x 32 tiles).
    ///
    /// # Safety
    /// As [`Kernel::run`], for both panels of A and all 2·MR rows and PANELS·NR columns of
    /// the tile (`b` holding fewer than `PANELS * kc * NR` values panics).
    #[inline]
    pub(crate) unsafe fn run_tile<const PANELS: usize>(
        self,
        kc: usize,
        a: APanel,
        b: BPanel<'_>,
        c: *mut f32,
        ldc: usize,
        accumulate: bool,
    ) {
        #[cfg(target_arch = "x86_64")]
        if let Kernel::Avx512(cpu) = self {
            // SAFETY: the caller's contract, passed on.
            unsafe { avx512_tile::<PANELS>(cpu, kc, a, b, Tile { c, ldc, accumulate }) };
            return;
        }
        let second = match a {
            // SAFETY (both): the second panel of A, inside its block (the caller's contract).
            APanel::Packed(p) => APanel::Packed(unsafe { p.add(kc * MR) }),
            APanel::Rows(p, lda) => APanel::Rows(unsafe { p.add(MR * lda) }, lda),
        };
        for q in 0..PANELS {
            let panel = match b {
                BPanel::F32(b) => BPanel::F32(&b[q * kc * NR..][..kc * NR]),
                BPanel::Bf16(b) => BPanel::Bf16(&b[q * kc * NR..][..kc * NR]),
            };
            // SAFETY: the caller's contract, one MR x NR part at a time.
            unsafe {
                let c = c.add(q * NR);
                self.run(kc, a, panel, c, ldc, accumulate);
                self.run(kc, second, panel, c.add(MR * ldc), ldc, accumulate);
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
        debug_assert!(
            b.len() >= kc * NR,
            "B panel of {} values for kc = {kc}",
            b.len()
        );
        #[cfg(target_arch = "x86_64")]
        if let Kernel::Avx512(cpu) = self {
            // SAFETY (both arms): AVX-512 F is vouched for by `cpu`; the pointers are the
            // caller's contract, passed on.
            match a {
                APanel::Packed(p) => unsafe { avx512::single::<false, T>(cpu, kc, p, 1, b, tile) },
                APanel::Rows(p, lda) => unsafe {
                    avx512::single::<true, T>(cpu, kc, p, lda, b, tile)
                },
            }
            return;
        }
        #[cfg(target_arch = "x86_64")]
        let vector: Option<simd::Avx2Fma> = match self {
            Kernel::Portable => None,
            Kernel::Avx2Fma(cpu) => Some(cpu),
            Kernel::Avx512(_) => unreachable!("the AVX-512 kernel returned above"),
        };
        #[cfg(target_arch = "x86_64")]
        if let Some(cpu) = vector {
            // SAFETY (both arms): AVX2 + FMA are vouched for by `cpu`; the pointers are the
            // caller's contract, passed on.
            match a {
                APanel::Packed(p) => unsafe {
                    avx2::kernel::<false, T>(cpu, kc, p, 1, b.as_ptr(), tile)
                },
                APanel::Rows(p, lda) => unsafe {
                    avx2::kernel::<true, T>(cpu, kc, p, lda, b.as_ptr(), tile)
                },
            }
            return;
        }
        match a {
            // SAFETY (both arms): the caller's contract, passed on.
            APanel::Packed(p) => unsafe { portable(kc, p, 1, MR, b, tile) },
            APanel::Rows(p, lda) => unsafe { portable(kc, p, lda, 1, b, tile) },
        }
    }
}

/// The AVX-512 tile of 2·MR rows by `PANELS` B panels, for each layout of A and type of B.
///
/// # Safety
/// As [`Kernel::run_tile`]: A's two panels as `a` says, `b` holding `PANELS * kc * NR` values (checked), the tile's rows and columns
/// writable.
#[cfg(target_arch = "x86_64")]
#[inline]
unsafe fn avx512_tile<const PANELS: usize>(
    cpu: simd::Avx512,
    kc: usize,
    a: APanel,
    b: BPanel<'_>,
    tile: Tile,
) {
    // SAFETY: AVX-512 F is vouched for by `cpu`; the pointers are the caller's contract,
    // passed on (`tile` checks that `b` holds every panel).
    unsafe {
        match (a, b) {
            (APanel::Packed(p), BPanel::F32(b)) => {
                avx512::tile::<false, f32, PANELS>(cpu, kc, p, kc * MR, b, tile)
            }
            (APanel::Packed(p), BPanel::Bf16(b)) => {
                avx512::tile::<false, u16, PANELS>(cpu, kc, p, kc * MR, b, tile)
            }
            (APanel::Rows(p, lda), BPanel::F32(b)) => {
                avx512::tile::<true, f32, PANELS>(cpu, kc, p, lda, b, tile)
            }
            (APanel::Rows(p, lda), BPanel::Bf16(b)) => {
                avx512::tile::<true, u16, PANELS>(cpu, kc, p, lda, b, tile)
            }
        }
    }
}

/// Where a kernel's MR x NR sums go: `C[r, j] (+)= sum[r, j]`, rows `ldc` floats apart.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tile {
    pub(super) c: *mut f32,
    pub(super) ldc: usize,
    pub(super) accumulate: bool,
}

//! The SIMD trait of the lane transforms: eight f32 lanes, one per column, as a plain array
//! ([`Portable`]) or one AVX register made only with a capability token ([`avx::Avx`]); the
//! split complex values and the work-buffer slots built on them.

use num_complex::Complex32;

/// Columns transformed together: one 256-bit vector of f32.
pub(crate) const LANES: usize = 8;

/// Eight f32 values, one per column, and the few operations the transforms need. Two
/// implementations: [`Portable`] (plain arrays) and, on x86_64, [`avx::Avx`] (one 256-bit
/// register). Both round every operation the same way, so they give the same bits.
///
/// A value is made only from a [`Lanes::Cpu`] token (`splat`, `load`, `load_complex`), the
/// proof that this CPU runs the type's instructions (for AVX, a
/// [`spectrans_linalg::simd::Avx`], which exists only after the run-time check); every other
/// operation starts from values, so it runs only where one could be made.
pub(crate) trait Lanes: Copy {
    /// The capability token that vouches for this type's instructions.
    type Cpu: Copy;
    /// The token a value was made with.
    fn cpu(self) -> Self::Cpu;
    fn splat(cpu: Self::Cpu, v: f32) -> Self;
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    /// `−self`, by flipping the sign bit.
    fn neg(self) -> Self;
    fn load(cpu: Self::Cpu, src: &[f32; LANES]) -> Self;
    fn store(self, dst: &mut [f32; LANES]);
    /// Real and imaginary parts of eight interleaved complex values.
    fn load_complex(cpu: Self::Cpu, src: &[Complex32; LANES]) -> (Self, Self);
    /// Interleaves `re` and `im` into eight complex values.
    fn store_complex(re: Self, im: Self, dst: &mut [Complex32; LANES]);
}

/// [`Lanes`] as a plain array, for any CPU.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Portable([f32; LANES]);

impl Portable {
    #[inline(always)]
    fn zip(self, o: Self, f: impl Fn(f32, f32) -> f32) -> Self {
        Self(std::array::from_fn(|l| f(self.0[l], o.0[l])))
    }
}

impl Lanes for Portable {
    /// Any CPU runs plain Rust.
    type Cpu = ();
    #[inline(always)]
    fn cpu(self) {}
    #[inline(always)]
    fn splat((): (), v: f32) -> Self {
        Self([v; LANES])
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        self.zip(o, |a, b| a + b)
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        self.zip(o, |a, b| a - b)
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        self.zip(o, |a, b| a * b)
    }
    #[inline(always)]
    fn neg(self) -> Self {
        Self(self.0.map(|v| -v))
    }
    #[inline(always)]
    fn load((): (), src: &[f32; LANES]) -> Self {
        Self(*src)
    }
    #[inline(always)]
    fn store(self, dst: &mut [f32; LANES]) {
        *dst = self.0;
    }
    #[inline(always)]
    fn load_complex((): (), src: &[Complex32; LANES]) -> (Self, Self) {
        (Self(src.map(|c| c.re)), Self(src.map(|c| c.im)))
    }
    #[inline(always)]
    fn store_complex(re: Self, im: Self, dst: &mut [Complex32; LANES]) {
        *dst = std::array::from_fn(|l| Complex32::new(re.0[l], im.0[l]));
    }
}

#[cfg(target_arch = "x86_64")]
pub(super) mod avx {
    use std::arch::x86_64::*;

    use num_complex::Complex32;
    use spectrans_linalg::simd;

    use super::{LANES, Lanes};

    /// [`Lanes`] in one AVX register, with the [`simd::Avx`] token it was made with.
    ///
    /// The fields are private to this module, and the only constructors (`splat`, `load`,
    /// `load_complex`) take the token, which exists only once the CPU has been checked for
    /// AVX: so a value of this type exists only on a CPU with AVX, and every method below
    /// runs its intrinsics on such a CPU. (They are also inlined into functions compiled with
    /// `#[target_feature(enable = "avx")]`, so that each is one instruction.)
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct Avx {
        v: __m256,
        cpu: simd::Avx,
    }

    impl Avx {
        #[inline(always)]
        fn with(self, v: __m256) -> Self {
            Self { v, cpu: self.cpu }
        }
    }

    // SAFETY (every block below): the CPU has AVX, as the token `cpu` (an argument, or the
    // field of a value, made from one) proves; the array references give in-bounds pointers
    // to 8 f32 (or 8 Complex32, which are two f32 each, `repr(C)`).
    impl Lanes for Avx {
        type Cpu = simd::Avx;
        #[inline(always)]
        fn cpu(self) -> simd::Avx {
            self.cpu
        }
        #[inline(always)]
        fn splat(cpu: simd::Avx, v: f32) -> Self {
            Self {
                v: unsafe { _mm256_set1_ps(v) },
                cpu,
            }
        }
        #[inline(always)]
        fn add(self, o: Self) -> Self {
            self.with(unsafe { _mm256_add_ps(self.v, o.v) })
        }
        #[inline(always)]
        fn sub(self, o: Self) -> Self {
            self.with(unsafe { _mm256_sub_ps(self.v, o.v) })
        }
        #[inline(always)]
        fn mul(self, o: Self) -> Self {
            self.with(unsafe { _mm256_mul_ps(self.v, o.v) })
        }
        #[inline(always)]
        fn neg(self) -> Self {
            self.with(unsafe { _mm256_xor_ps(self.v, _mm256_set1_ps(-0.0)) })
        }
        #[inline(always)]
        fn load(cpu: simd::Avx, src: &[f32; LANES]) -> Self {
            Self {
                v: unsafe { _mm256_loadu_ps(src.as_ptr()) },
                cpu,
            }
        }
        #[inline(always)]
        fn store(self, dst: &mut [f32; LANES]) {
            unsafe { _mm256_storeu_ps(dst.as_mut_ptr(), self.v) }
        }
        #[inline(always)]
        fn load_complex(cpu: simd::Avx, src: &[Complex32; LANES]) -> (Self, Self) {
            let (re, im) = unsafe {
                let p = src.as_ptr().cast::<f32>();
                // v0 = r0 i0 r1 i1 | r2 i2 r3 i3, v1 = r4 i4 r5 i5 | r6 i6 r7 i7.
                let (v0, v1) = (_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(LANES)));
                // a = r0 i0 r1 i1 | r4 i4 r5 i5, b = r2 i2 r3 i3 | r6 i6 r7 i7.
                let a = _mm256_permute2f128_ps::<0x20>(v0, v1);
                let b = _mm256_permute2f128_ps::<0x31>(v0, v1);
                (
                    _mm256_shuffle_ps::<0b10_00_10_00>(a, b),
                    _mm256_shuffle_ps::<0b11_01_11_01>(a, b),
                )
            };
            (Self { v: re, cpu }, Self { v: im, cpu })
        }
        #[inline(always)]
        fn store_complex(re: Self, im: Self, dst: &mut [Complex32; LANES]) {
            unsafe {
                // lo = r0 i0 r1 i1 | r4 i4 r5 i5, hi = r2 i2 r3 i3 | r6 i6 r7 i7.
                let lo = _mm256_unpacklo_ps(re.v, im.v);
                let hi = _mm256_unpackhi_ps(re.v, im.v);
                let p = dst.as_mut_ptr().cast::<f32>();
                _mm256_storeu_ps(p, _mm256_permute2f128_ps::<0x20>(lo, hi));
                _mm256_storeu_ps(p.add(LANES), _mm256_permute2f128_ps::<0x31>(lo, hi));
            }
        }
    }
}

/// Row `start..start + width` of a row-major slice as lanes (missing lanes zero).
#[inline(always)]
pub(super) fn load_row<V: Lanes>(cpu: V::Cpu, src: &[f32], start: usize, width: usize) -> V {
    if width == LANES {
        V::load(
            cpu,
            src[start..start + LANES].try_into().expect("LANES values"),
        )
    } else {
        let mut row = [0.0; LANES];
        for (r, &v) in row.iter_mut().zip(&src[start..start + width]) {
            *r = v;
        }
        V::load(cpu, &row)
    }
}

/// `dst[start + l] = v[l]` for `l < width`.
#[inline(always)]
pub(super) fn store_row<V: Lanes>(v: V, dst: &mut [f32], start: usize, width: usize) {
    if width == LANES {
        v.store(
            (&mut dst[start..start + LANES])
                .try_into()
                .expect("LANES values"),
        );
    } else {
        let mut row = [0.0; LANES];
        v.store(&mut row);
        for (d, &r) in dst[start..start + width].iter_mut().zip(&row) {
            *d = r;
        }
    }
}

/// Eight complex values in registers, real and imaginary parts apart.
#[derive(Clone, Copy, Debug)]
pub(super) struct SplitComplex<V> {
    pub(super) re: V,
    pub(super) im: V,
}

impl<V: Lanes> SplitComplex<V> {
    #[inline(always)]
    pub(super) fn new(re: V, im: V) -> Self {
        Self { re, im }
    }

    /// Reads a slot of a work buffer.
    #[inline(always)]
    pub(super) fn get(cpu: V::Cpu, slot: &Slot) -> Self {
        Self::new(V::load(cpu, &slot.re), V::load(cpu, &slot.im))
    }

    /// Writes a slot of a work buffer.
    #[inline(always)]
    pub(super) fn put(self, slot: &mut Slot) {
        self.re.store(&mut slot.re);
        self.im.store(&mut slot.im);
    }

    #[inline(always)]
    pub(super) fn add(self, o: Self) -> Self {
        Self::new(self.re.add(o.re), self.im.add(o.im))
    }

    #[inline(always)]
    pub(super) fn sub(self, o: Self) -> Self {
        Self::new(self.re.sub(o.re), self.im.sub(o.im))
    }

    #[inline(always)]
    pub(super) fn conj(self) -> Self {
        Self::new(self.re, self.im.neg())
    }

    /// `self · o`.
    #[inline(always)]
    pub(super) fn mul(self, o: Self) -> Self {
        Self::new(
            self.re.mul(o.re).sub(self.im.mul(o.im)),
            self.re.mul(o.im).add(self.im.mul(o.re)),
        )
    }

    /// `self · s` for a real `s`.
    #[inline(always)]
    pub(super) fn scale(self, s: V) -> Self {
        Self::new(self.re.mul(s), self.im.mul(s))
    }

    /// `i · self`.
    #[inline(always)]
    pub(super) fn times_i(self) -> Self {
        Self::new(self.im.neg(), self.re)
    }

    /// `self · w`, or `self · conj(w)` when `CONJ`.
    #[inline(always)]
    pub(super) fn times<const CONJ: bool>(self, w: Complex32) -> Self {
        let cpu = self.re.cpu();
        let wr = V::splat(cpu, w.re);
        let wi = V::splat(cpu, if CONJ { -w.im } else { w.im });
        Self::new(
            self.re.mul(wr).sub(self.im.mul(wi)),
            self.re.mul(wi).add(self.im.mul(wr)),
        )
    }

    /// Row `start..start + width` of a row-major complex slice (missing lanes zero).
    #[inline(always)]
    pub(super) fn load(cpu: V::Cpu, src: &[Complex32], start: usize, width: usize) -> Self {
        let (re, im) = if width == LANES {
            V::load_complex(
                cpu,
                src[start..start + LANES].try_into().expect("LANES values"),
            )
        } else {
            let mut row = [Complex32::new(0.0, 0.0); LANES];
            for (r, &v) in row.iter_mut().zip(&src[start..start + width]) {
                *r = v;
            }
            V::load_complex(cpu, &row)
        };
        Self::new(re, im)
    }

    /// `dst[start + l] = self[l] · s` for `l < width`.
    #[inline(always)]
    pub(super) fn store_scaled(self, dst: &mut [Complex32], start: usize, width: usize, s: f32) {
        let s = V::splat(self.re.cpu(), s);
        let (re, im) = (self.re.mul(s), self.im.mul(s));
        if width == LANES {
            V::store_complex(
                re,
                im,
                (&mut dst[start..start + LANES])
                    .try_into()
                    .expect("LANES values"),
            );
        } else {
            let mut row = [Complex32::new(0.0, 0.0); LANES];
            V::store_complex(re, im, &mut row);
            for (d, &r) in dst[start..start + width].iter_mut().zip(&row) {
                *d = r;
            }
        }
    }
}

/// Eight complex values in memory, real and imaginary parts apart: one element of a
/// transform's work buffers.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(64))]
pub(crate) struct Slot {
    pub(super) re: [f32; LANES],
    pub(super) im: [f32; LANES],
}

/// Rows a streaming loop over a matrix's rows asks for ahead of the one it reads. A long
/// sequence's (n, D) matrix is read eight columns (32 bytes) per row, rows `4 D` bytes
/// apart: a stride across pages that the hardware prefetchers do not follow, so without a
/// hint each row waits for its line from L3 or memory.
pub(super) const PREFETCH_ROWS: usize = 32;

/// Asks the CPU to bring `data[index]`'s cache line into L1 (a hint: an index past the end
/// is allowed and ignored, nothing is read).
#[inline(always)]
pub(super) fn prefetch<T>(data: &[T], index: usize) {
    if index < data.len() {
        crate::tile::prefetch_run(data.as_ptr().wrapping_add(index), 1);
    }
}

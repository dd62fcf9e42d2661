//! Real FFTs of eight neighbouring columns at once, one SIMD lane per column, for
//! power-of-two lengths.
//!
//! A row-major `(n, D)` matrix holds column `d` of row `t` at `t·D + d`, so eight
//! neighbouring columns of one row are one 256-bit load. Transforming them together, lane by
//! lane, needs no transpose: rows are read and written where they lie, and every operation is
//! a full-width vector operation.
//!
//! The real transform of length `n` is a complex one of length `m = n/2` on
//! `z[j] = x[2j] + i·x[2j+1]`, followed by the split
//! `X[k] = ½(Z[k] + conj Z[m−k]) − ½i·Wᵏ(Z[k] − conj Z[m−k])`, `W = e^{−2πi/n}`
//! (the inverse undoes it first). The complex transform is a Stockham autosort FFT of
//! radix-4 stages and, for odd `log₂ m`, one radix-2 stage.
//!
//! Lanes never mix, so a column's result does not depend on its lane or its neighbours: the
//! same bits whether a column is read in place or from a gathered copy. Multiplies and adds
//! stay separate (no fused multiply-add), so the AVX build gives the same bits as the
//! portable one.

use std::cell::RefCell;

use num_complex::Complex32;
#[cfg(target_arch = "x86_64")]
use spectrans_linalg::simd;

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
mod avx {
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
fn load_row<V: Lanes>(cpu: V::Cpu, src: &[f32], start: usize, width: usize) -> V {
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
fn store_row<V: Lanes>(v: V, dst: &mut [f32], start: usize, width: usize) {
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
struct SplitComplex<V> {
    re: V,
    im: V,
}

impl<V: Lanes> SplitComplex<V> {
    #[inline(always)]
    fn new(re: V, im: V) -> Self {
        Self { re, im }
    }

    /// Reads a slot of a work buffer.
    #[inline(always)]
    fn get(cpu: V::Cpu, slot: &Slot) -> Self {
        Self::new(V::load(cpu, &slot.re), V::load(cpu, &slot.im))
    }

    /// Writes a slot of a work buffer.
    #[inline(always)]
    fn put(self, slot: &mut Slot) {
        self.re.store(&mut slot.re);
        self.im.store(&mut slot.im);
    }

    #[inline(always)]
    fn add(self, o: Self) -> Self {
        Self::new(self.re.add(o.re), self.im.add(o.im))
    }

    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        Self::new(self.re.sub(o.re), self.im.sub(o.im))
    }

    #[inline(always)]
    fn conj(self) -> Self {
        Self::new(self.re, self.im.neg())
    }

    /// `self · o`.
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        Self::new(
            self.re.mul(o.re).sub(self.im.mul(o.im)),
            self.re.mul(o.im).add(self.im.mul(o.re)),
        )
    }

    /// `self · s` for a real `s`.
    #[inline(always)]
    fn scale(self, s: V) -> Self {
        Self::new(self.re.mul(s), self.im.mul(s))
    }

    /// `i · self`.
    #[inline(always)]
    fn times_i(self) -> Self {
        Self::new(self.im.neg(), self.re)
    }

    /// `self · w`, or `self · conj(w)` when `CONJ`.
    #[inline(always)]
    fn times<const CONJ: bool>(self, w: Complex32) -> Self {
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
    fn load(cpu: V::Cpu, src: &[Complex32], start: usize, width: usize) -> Self {
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
    fn store_scaled(self, dst: &mut [Complex32], start: usize, width: usize, s: f32) {
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
    re: [f32; LANES],
    im: [f32; LANES],
}

/// `width <= 8` neighbouring columns of a row-major matrix: element `(t, l)` is
/// `data[t · stride + col0 + l]`.
#[derive(Debug)]
struct Columns<S> {
    data: S,
    stride: usize,
    col0: usize,
    width: usize,
}

impl<S> Columns<S> {
    /// The group `(col0, width)` of a row-major matrix with `stride` columns.
    #[inline(always)]
    fn new(data: S, stride: usize, (col0, width): (usize, usize)) -> Self {
        Self {
            data,
            stride,
            col0,
            width,
        }
    }

    #[inline(always)]
    fn row(&self, t: usize) -> usize {
        t * self.stride + self.col0
    }
}

/// `(col0, width)` of each group of up to eight neighbouring columns among `cols`.
#[inline(always)]
fn groups(cols: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..cols)
        .step_by(LANES)
        .map(move |col0| (col0, LANES.min(cols - col0)))
}

/// Twiddles and sizes of the lane transforms of one power-of-two length `n >= 8`.
#[derive(Debug)]
pub(crate) struct LanePlan {
    /// `m = n/2`, the length of the complex transform.
    half: usize,
    /// `(w, w², w³)` with `w = e^{−2πi p / l}`, `p < l/4`, for each radix-4 stage of length
    /// `l` (`l = m, m/4, …`), stage after stage.
    stage_twiddles: Vec<[Complex32; 3]>,
    /// `Wᵏ = e^{−2πi k / n}` for `k <= m/2`.
    split_twiddles: Vec<Complex32>,
}

/// `e^{−2πi · num / den}`, computed in f64 and rounded once.
fn unit_root(num: usize, den: usize) -> Complex32 {
    let angle = -2.0 * std::f64::consts::PI * num as f64 / den as f64;
    Complex32::new(angle.cos() as f32, angle.sin() as f32)
}

thread_local! {
    static WORK: RefCell<(Vec<Slot>, Vec<Slot>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

impl LanePlan {
    /// The plan for length `n`, or `None` when `n` is not a power of two of at least 8.
    pub(crate) fn new(n: usize) -> Option<Self> {
        if n < 8 || !n.is_power_of_two() {
            return None;
        }
        let half = n / 2;
        let mut stage_twiddles = Vec::new();
        let mut l = half;
        while l >= 4 {
            stage_twiddles.extend(
                (0..l / 4).map(|p| [unit_root(p, l), unit_root(2 * p, l), unit_root(3 * p, l)]),
            );
            l /= 4;
        }
        let split_twiddles = (0..=half / 2).map(|k| unit_root(k, n)).collect();
        Some(Self {
            half,
            stage_twiddles,
            split_twiddles,
        })
    }

    /// `y = scale · rfft(x)` along the rows of one row-major matrix: `x` is `(n, cols)`,
    /// `y` `(n/2+1, cols)`, eight columns at a time.
    pub(crate) fn forward_matrix(&self, x: &[f32], y: &mut [Complex32], cols: usize, scale: f32) {
        self.with_work(|work| {
            #[cfg(target_arch = "x86_64")]
            if let Some(cpu) = simd::Avx::try_new() {
                // SAFETY: the function's one requirement, AVX, is vouched for by `cpu`.
                return unsafe { self.forward_matrix_avx(cpu, x, y, cols, scale, work) };
            }
            self.forward_matrix_with::<Portable>((), x, y, cols, scale, work)
        });
    }

    /// `y = scale · irfft(x)` along the rows of one row-major matrix: `x` is
    /// `(n/2+1, cols)`, `y` `(n, cols)`, eight columns at a time. The imaginary parts of
    /// bins 0 and `n/2` are ignored.
    pub(crate) fn inverse_matrix(&self, x: &[Complex32], y: &mut [f32], cols: usize, scale: f32) {
        self.with_work(|work| {
            #[cfg(target_arch = "x86_64")]
            if let Some(cpu) = simd::Avx::try_new() {
                // SAFETY: the function's one requirement, AVX, is vouched for by `cpu`.
                return unsafe { self.inverse_matrix_avx(cpu, x, y, cols, scale, work) };
            }
            self.inverse_matrix_with::<Portable>((), x, y, cols, scale, work)
        });
    }

    /// Runs `job` with this thread's two work buffers of `m` slots each.
    fn with_work<R>(&self, job: impl FnOnce([&mut [Slot]; 2]) -> R) -> R {
        crate::scratch::with_thread_local(&WORK, |(a, b)| {
            for buffer in [&mut *a, &mut *b] {
                if buffer.len() < self.half {
                    buffer.resize(self.half, Slot::default());
                }
            }
            job([&mut a[..self.half], &mut b[..self.half]])
        })
    }

    /// [`forward_matrix`](Self::forward_matrix) compiled for AVX: each lane operation is one
    /// 256-bit instruction. Callable only with the [`simd::Avx`] token (the CPU has AVX).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx")]
    fn forward_matrix_avx(
        &self,
        cpu: simd::Avx,
        x: &[f32],
        y: &mut [Complex32],
        cols: usize,
        scale: f32,
        work: [&mut [Slot]; 2],
    ) {
        self.forward_matrix_with::<avx::Avx>(cpu, x, y, cols, scale, work)
    }

    /// [`inverse_matrix`](Self::inverse_matrix) compiled for AVX (the token: the CPU has it).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx")]
    fn inverse_matrix_avx(
        &self,
        cpu: simd::Avx,
        x: &[Complex32],
        y: &mut [f32],
        cols: usize,
        scale: f32,
        work: [&mut [Slot]; 2],
    ) {
        self.inverse_matrix_with::<avx::Avx>(cpu, x, y, cols, scale, work)
    }

    #[inline(always)]
    fn forward_matrix_with<V: Lanes>(
        &self,
        cpu: V::Cpu,
        x: &[f32],
        y: &mut [Complex32],
        cols: usize,
        scale: f32,
        [a, b]: [&mut [Slot]; 2],
    ) {
        for group in groups(cols) {
            let src = Columns::new(x, cols, group);
            let mut dst = Columns::new(&mut *y, cols, group);
            self.forward::<V>(cpu, &src, &mut dst, scale, a, b);
        }
    }

    #[inline(always)]
    fn inverse_matrix_with<V: Lanes>(
        &self,
        cpu: V::Cpu,
        x: &[Complex32],
        y: &mut [f32],
        cols: usize,
        scale: f32,
        [a, b]: [&mut [Slot]; 2],
    ) {
        for group in groups(cols) {
            let src = Columns::new(x, cols, group);
            let mut dst = Columns::new(&mut *y, cols, group);
            self.inverse::<V>(cpu, &src, &mut dst, scale, a, b);
        }
    }

    /// `dst = scale · rfft(src)` for up to eight columns: `src` has `n` rows, `dst`
    /// `n/2 + 1`. `a` and `b` are work buffers of `m` slots.
    #[inline(always)]
    fn forward<V: Lanes>(
        &self,
        cpu: V::Cpu,
        src: &Columns<&[f32]>,
        dst: &mut Columns<&mut [Complex32]>,
        scale: f32,
        a: &mut [Slot],
        b: &mut [Slot],
    ) {
        let (m, width) = (self.half, src.width);
        for (j, slot) in a.iter_mut().enumerate() {
            SplitComplex::<V>::new(
                load_row(cpu, src.data, src.row(2 * j), width),
                load_row(cpu, src.data, src.row(2 * j + 1), width),
            )
            .put(slot);
        }
        let z: &[Slot] = if self.complex_fft::<V, false>(cpu, a, b) {
            b
        } else {
            a
        };
        // Bins 0 and m: the even part's mean plus and minus the odd part's.
        let z0 = SplitComplex::<V>::get(cpu, &z[0]);
        let zero = V::splat(cpu, 0.0);
        SplitComplex::new(z0.re.add(z0.im), zero).store_scaled(dst.data, dst.row(0), width, scale);
        SplitComplex::new(z0.re.sub(z0.im), zero).store_scaled(dst.data, dst.row(m), width, scale);
        let half_scale = 0.5 * scale;
        for k in 1..=m / 2 {
            let zk = SplitComplex::<V>::get(cpu, &z[k]);
            let zc = SplitComplex::<V>::get(cpu, &z[m - k]).conj();
            // even = 2·E[k], odd = 2·Wᵏ·O[k]: X[k] = ½(even − i·odd),
            // X[m−k] = ½(conj even − i·conj odd).
            let even = zk.add(zc);
            let odd = zk.sub(zc).times::<false>(self.split_twiddles[k]);
            SplitComplex::new(even.re.add(odd.im), even.im.sub(odd.re)).store_scaled(
                dst.data,
                dst.row(k),
                width,
                half_scale,
            );
            if k != m - k {
                SplitComplex::new(even.re.sub(odd.im), even.im.neg().sub(odd.re)).store_scaled(
                    dst.data,
                    dst.row(m - k),
                    width,
                    half_scale,
                );
            }
        }
    }

    /// `dst = scale · n · irfft(src)` (the unnormalised inverse, scaled) for up to eight
    /// columns: `src` has `n/2 + 1` rows, `dst` `n`. The imaginary parts of bins 0 and `m`
    /// are ignored.
    #[inline(always)]
    fn inverse<V: Lanes>(
        &self,
        cpu: V::Cpu,
        src: &Columns<&[Complex32]>,
        dst: &mut Columns<&mut [f32]>,
        scale: f32,
        a: &mut [Slot],
        b: &mut [Slot],
    ) {
        let (m, width) = (self.half, src.width);
        // Z[k] = E + i·O with E = X[k] + conj X[m−k] (twice the even samples' spectrum) and
        // O = (X[k] − conj X[m−k])·W^{−k} (twice the odd samples').
        let first = SplitComplex::<V>::load(cpu, src.data, src.row(0), width).re;
        let last = SplitComplex::<V>::load(cpu, src.data, src.row(m), width).re;
        SplitComplex::new(first.add(last), first.sub(last)).put(&mut a[0]);
        for k in 1..=m / 2 {
            let xk = SplitComplex::<V>::load(cpu, src.data, src.row(k), width);
            let xc = SplitComplex::<V>::load(cpu, src.data, src.row(m - k), width).conj();
            let even = xk.add(xc);
            let odd = xk.sub(xc).times::<true>(self.split_twiddles[k]);
            SplitComplex::new(even.re.sub(odd.im), even.im.add(odd.re)).put(&mut a[k]);
            if k != m - k {
                // Z[m−k] = conj E + i·conj O.
                SplitComplex::new(even.re.add(odd.im), odd.re.sub(even.im)).put(&mut a[m - k]);
            }
        }
        let z: &[Slot] = if self.complex_fft::<V, true>(cpu, a, b) {
            b
        } else {
            a
        };
        let s = V::splat(cpu, scale);
        for (j, slot) in z.iter().enumerate() {
            let v = SplitComplex::<V>::get(cpu, slot);
            store_row(v.re.mul(s), dst.data, dst.row(2 * j), width);
            store_row(v.im.mul(s), dst.data, dst.row(2 * j + 1), width);
        }
    }

    /// Unnormalised complex FFT (inverse: conjugate twiddles) of the `m` slots of `a`; `b` is
    /// work space. Returns whether the result ended in `b` (else it is in `a`).
    #[inline(always)]
    fn complex_fft<V: Lanes, const INVERSE: bool>(
        &self,
        cpu: V::Cpu,
        a: &mut [Slot],
        b: &mut [Slot],
    ) -> bool {
        let (mut x, mut y) = (a, b);
        let mut in_b = false;
        let mut twiddles = &self.stage_twiddles[..];
        let (mut l, mut s) = (self.half, 1);
        while l >= 4 {
            let quarter = l / 4;
            let (stage, rest) = twiddles.split_at(quarter);
            twiddles = rest;
            radix4_stage::<V, INVERSE>(cpu, x, y, s, stage);
            std::mem::swap(&mut x, &mut y);
            in_b = !in_b;
            l = quarter;
            s *= 4;
        }
        if l == 2 {
            radix2_stage::<V>(cpu, x, y, s);
            in_b = !in_b;
        }
        in_b
    }
}

/// What a filter pass does with its input's spectrum `X = rfft(x)` (unnormalised) besides
/// filtering it. Matrices are `(n/2+1, cols)` row-major, like the filter.
#[derive(Debug)]
pub(crate) enum SpectrumSink<'a> {
    /// Nothing.
    Discard,
    /// `out[k, c] = scale · X[k, c]`.
    Store {
        out: &'a mut [Complex32],
        scale: f32,
    },
    /// `acc[k, c] += (scale · X[k, c]) · conj(forward[k, c])`.
    Correlate {
        forward: &'a [Complex32],
        acc: &'a mut [Complex32],
        scale: f32,
    },
}

impl SpectrumSink<'_> {
    /// Hands bin `k` (`x`, eight columns from `col0`, `width` of them valid) to the sink.
    #[inline(always)]
    fn take<V: Lanes>(&mut self, x: SplitComplex<V>, start: usize, width: usize, scale: f32) {
        let cpu = x.re.cpu();
        match self {
            Self::Discard => {}
            Self::Store { out, scale: s } => x.store_scaled(out, start, width, scale * *s),
            Self::Correlate {
                forward,
                acc,
                scale: s,
            } => {
                let f = SplitComplex::<V>::load(cpu, forward, start, width).conj();
                let sum = SplitComplex::<V>::load(cpu, acc, start, width)
                    .add(x.scale(V::splat(cpu, scale * *s)).mul(f));
                sum.store_scaled(acc, start, width, 1.0);
            }
        }
    }
}

impl LanePlan {
    /// `y = irfft(G ⊙ rfft(x)) / n` along the rows of one row-major matrix (`x`, `y`
    /// `(n, cols)`), with `G` the `(n/2+1, cols)` row-major `filter`, conjugated if asked;
    /// the imaginary parts of its bins 0 and `n/2` do not count. `sink` gets `rfft(x)`.
    pub(crate) fn filter_matrix(
        &self,
        x: &[f32],
        filter: &[Complex32],
        conjugate: bool,
        y: &mut [f32],
        cols: usize,
        sink: &mut SpectrumSink<'_>,
    ) {
        let job = FilterJob {
            x,
            filter,
            conjugate,
            y,
            cols,
            sink,
        };
        self.with_work(|work| {
            #[cfg(target_arch = "x86_64")]
            if let Some(cpu) = simd::Avx::try_new() {
                // SAFETY: the function's one requirement, AVX, is vouched for by `cpu`.
                return unsafe { self.filter_matrix_avx(cpu, job, work) };
            }
            self.filter_matrix_with::<Portable>((), job, work)
        });
    }

    /// [`filter_matrix`](Self::filter_matrix) compiled for AVX (the token: the CPU has it).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx")]
    fn filter_matrix_avx(&self, cpu: simd::Avx, job: FilterJob<'_, '_>, work: [&mut [Slot]; 2]) {
        self.filter_matrix_with::<avx::Avx>(cpu, job, work)
    }

    #[inline(always)]
    fn filter_matrix_with<V: Lanes>(
        &self,
        cpu: V::Cpu,
        job: FilterJob<'_, '_>,
        [a, b]: [&mut [Slot]; 2],
    ) {
        let FilterJob {
            x,
            filter,
            conjugate,
            y,
            cols,
            sink,
        } = job;
        for group in groups(cols) {
            let src = Columns::new(x, cols, group);
            let g = Columns::new(filter, cols, group);
            let mut dst = Columns::new(&mut *y, cols, group);
            if conjugate {
                self.filter_block::<V, true>(cpu, &src, &g, &mut dst, sink, a, b);
            } else {
                self.filter_block::<V, false>(cpu, &src, &g, &mut dst, sink, a, b);
            }
        }
    }

    /// [`filter_matrix`](Self::filter_matrix) for up to eight columns: the forward
    /// transform, the split, the product with `G`, the inverse split and the inverse
    /// transform, bin pair by bin pair in the work buffers.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn filter_block<V: Lanes, const CONJ: bool>(
        &self,
        cpu: V::Cpu,
        src: &Columns<&[f32]>,
        g: &Columns<&[Complex32]>,
        dst: &mut Columns<&mut [f32]>,
        sink: &mut SpectrumSink<'_>,
        a: &mut [Slot],
        b: &mut [Slot],
    ) {
        let (m, width) = (self.half, src.width);
        for (j, slot) in a.iter_mut().enumerate() {
            SplitComplex::<V>::new(
                load_row(cpu, src.data, src.row(2 * j), width),
                load_row(cpu, src.data, src.row(2 * j + 1), width),
            )
            .put(slot);
        }
        let in_b = self.complex_fft::<V, false>(cpu, a, b);
        let (z, work) = if in_b { (b, a) } else { (a, b) };
        // 1/n for bins 0 and m (X itself), 1/(2n) for the others (2X below); powers of two,
        // so these products are exact.
        let inv_n = (1.0 / (2 * m) as f64) as f32;
        let half_inv_n = V::splat(cpu, 0.5 * inv_n);
        let filter_row = |k: usize| {
            let v = SplitComplex::<V>::load(cpu, g.data, g.row(k), width);
            if CONJ { v.conj() } else { v }
        };

        let z0 = SplitComplex::<V>::get(cpu, &z[0]);
        let zero = V::splat(cpu, 0.0);
        let (first, last) = (z0.re.add(z0.im), z0.re.sub(z0.im));
        sink.take(SplitComplex::new(first, zero), g.row(0), width, 1.0);
        sink.take(SplitComplex::new(last, zero), g.row(m), width, 1.0);
        let inv_n_lanes = V::splat(cpu, inv_n);
        let first = first.mul(filter_row(0).re).mul(inv_n_lanes);
        let last = last.mul(filter_row(m).re).mul(inv_n_lanes);
        SplitComplex::new(first.add(last), first.sub(last)).put(&mut z[0]);

        for k in 1..=m / 2 {
            let zk = SplitComplex::<V>::get(cpu, &z[k]);
            let zc = SplitComplex::<V>::get(cpu, &z[m - k]).conj();
            let even = zk.add(zc);
            let odd = zk.sub(zc).times::<false>(self.split_twiddles[k]);
            // 2X[k] and 2X[m−k], as in `forward`.
            let xk = SplitComplex::new(even.re.add(odd.im), even.im.sub(odd.re));
            let xc = SplitComplex::new(even.re.sub(odd.im), even.im.neg().sub(odd.re));
            sink.take(xk, g.row(k), width, 0.5);
            if k != m - k {
                sink.take(xc, g.row(m - k), width, 0.5);
            }
            let yk = xk.mul(filter_row(k)).scale(half_inv_n);
            let yc = xc.mul(filter_row(m - k)).scale(half_inv_n).conj();
            // The inverse split of `inverse`, on Y = G ⊙ X.
            let even = yk.add(yc);
            let odd = yk.sub(yc).times::<true>(self.split_twiddles[k]);
            SplitComplex::new(even.re.sub(odd.im), even.im.add(odd.re)).put(&mut z[k]);
            if k != m - k {
                SplitComplex::new(even.re.add(odd.im), odd.re.sub(even.im)).put(&mut z[m - k]);
            }
        }

        let out: &[Slot] = if self.complex_fft::<V, true>(cpu, z, work) {
            work
        } else {
            z
        };
        for (j, slot) in out.iter().enumerate() {
            let v = SplitComplex::<V>::get(cpu, slot);
            store_row(v.re, dst.data, dst.row(2 * j), width);
            store_row(v.im, dst.data, dst.row(2 * j + 1), width);
        }
    }
}

/// The arguments of one [`LanePlan::filter_matrix`] call.
struct FilterJob<'s, 'a> {
    x: &'s [f32],
    filter: &'s [Complex32],
    conjugate: bool,
    y: &'s mut [f32],
    cols: usize,
    sink: &'s mut SpectrumSink<'a>,
}

/// One Stockham radix-4 step of a length-`l` transform over `s` interleaved sub-sequences:
/// `x[q + s(p + j·l/4)]` (`j < 4`) → `y[q + s(4p + r)]`, twiddled by `w^{pr}`,
/// `w = e^{∓2πi/l}`.
#[inline(always)]
fn radix4_stage<V: Lanes, const INVERSE: bool>(
    cpu: V::Cpu,
    x: &[Slot],
    y: &mut [Slot],
    s: usize,
    twiddles: &[[Complex32; 3]],
) {
    let quarter_len = twiddles.len() * s;
    let (x0, rest) = x.split_at(quarter_len);
    let (x1, rest) = rest.split_at(quarter_len);
    let (x2, x3) = rest.split_at(quarter_len);
    for (p, (w, out)) in twiddles.iter().zip(y.chunks_exact_mut(4 * s)).enumerate() {
        let range = p * s..(p + 1) * s;
        let (a, b) = (&x0[range.clone()], &x1[range.clone()]);
        let (c, d) = (&x2[range.clone()], &x3[range]);
        let (y0, rest) = out.split_at_mut(s);
        let (y1, rest) = rest.split_at_mut(s);
        let (y2, y3) = rest.split_at_mut(s);
        for q in 0..s {
            let a = SplitComplex::<V>::get(cpu, &a[q]);
            let b = SplitComplex::<V>::get(cpu, &b[q]);
            let c = SplitComplex::<V>::get(cpu, &c[q]);
            let d = SplitComplex::<V>::get(cpu, &d[q]);
            let apc = a.add(c);
            let amc = a.sub(c);
            let bpd = b.add(d);
            let jbmd = b.sub(d).times_i();
            // Forward: X1 = a − ib − c + id, X3 = a + ib − c − id; the inverse swaps them.
            let (r1, r3) = if INVERSE {
                (amc.add(jbmd), amc.sub(jbmd))
            } else {
                (amc.sub(jbmd), amc.add(jbmd))
            };
            let r2 = apc.sub(bpd);
            apc.add(bpd).put(&mut y0[q]);
            if p == 0 {
                r1.put(&mut y1[q]);
                r2.put(&mut y2[q]);
                r3.put(&mut y3[q]);
            } else {
                r1.times::<INVERSE>(w[0]).put(&mut y1[q]);
                r2.times::<INVERSE>(w[1]).put(&mut y2[q]);
                r3.times::<INVERSE>(w[2]).put(&mut y3[q]);
            }
        }
    }
}

/// The last radix-2 step (`l = 2`, twiddles 1): `y[q] = x[q] + x[q+s]`,
/// `y[q+s] = x[q] − x[q+s]`.
#[inline(always)]
fn radix2_stage<V: Lanes>(cpu: V::Cpu, x: &[Slot], y: &mut [Slot], s: usize) {
    let (x0, x1) = x.split_at(s);
    let (y0, y1) = y.split_at_mut(s);
    for q in 0..s {
        let (a, b) = (
            SplitComplex::<V>::get(cpu, &x0[q]),
            SplitComplex::<V>::get(cpu, &x1[q]),
        );
        a.add(b).put(&mut y0[q]);
        a.sub(b).put(&mut y1[q]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in [-1, 1).
    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut state = seed | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    fn forward_with<V: Lanes>(
        cpu: V::Cpu,
        plan: &LanePlan,
        x: &[f32],
        cols: usize,
    ) -> Vec<Complex32> {
        let mut y = vec![Complex32::new(0.0, 0.0); (plan.half + 1) * cols];
        let mut a = vec![Slot::default(); plan.half];
        let mut b = a.clone();
        plan.forward_matrix_with::<V>(cpu, x, &mut y, cols, 0.5, [&mut a, &mut b]);
        y
    }

    fn inverse_with<V: Lanes>(
        cpu: V::Cpu,
        plan: &LanePlan,
        x: &[Complex32],
        cols: usize,
    ) -> Vec<f32> {
        let mut y = vec![0.0; 2 * plan.half * cols];
        let mut a = vec![Slot::default(); plan.half];
        let mut b = a.clone();
        plan.inverse_matrix_with::<V>(cpu, x, &mut y, cols, 0.25, [&mut a, &mut b]);
        y
    }

    #[test]
    fn only_powers_of_two_from_eight_get_a_plan() {
        for n in [0, 1, 2, 4, 6, 12, 96, 196, 257] {
            assert!(LanePlan::new(n).is_none(), "n = {n}");
        }
        for n in [8, 16, 32, 64, 128, 256, 512, 1024, 2048] {
            assert!(LanePlan::new(n).is_some(), "n = {n}");
        }
    }

    #[test]
    fn forward_matches_the_dft_in_every_lane() {
        for n in [8, 16, 32, 64, 128, 512] {
            let plan = LanePlan::new(n).expect("power of two");
            let cols = 11; // one full block of eight, one of three
            let x = values(n * cols, n as u64);
            let y = forward_with::<Portable>((), &plan, &x, cols);
            for k in 0..=n / 2 {
                for c in 0..cols {
                    let (mut re, mut im) = (0.0f64, 0.0f64);
                    for t in 0..n {
                        let angle = -2.0 * std::f64::consts::PI * ((k * t) % n) as f64 / n as f64;
                        re += f64::from(x[t * cols + c]) * angle.cos();
                        im += f64::from(x[t * cols + c]) * angle.sin();
                    }
                    let got = y[k * cols + c];
                    let tol = 1e-5 * (n as f64).sqrt();
                    assert!(
                        (f64::from(got.re) - 0.5 * re).abs() < tol,
                        "n {n} k {k} c {c}"
                    );
                    assert!(
                        (f64::from(got.im) - 0.5 * im).abs() < tol,
                        "n {n} k {k} c {c}"
                    );
                }
            }
        }
    }

    #[test]
    fn inverse_undoes_forward_ignoring_the_edge_bins_imaginary_parts() {
        for n in [8, 32, 256, 1024] {
            let plan = LanePlan::new(n).expect("power of two");
            let cols = 13;
            let x = values(n * cols, 7 + n as u64);
            let mut spectrum = forward_with::<Portable>((), &plan, &x, cols);
            for c in 0..cols {
                spectrum[c].im = 3.0;
                spectrum[n / 2 * cols + c].im = -2.0;
            }
            // forward scale 0.5, inverse 0.25, unnormalised pair n: 0.125 · n.
            let back = inverse_with::<Portable>((), &plan, &spectrum, cols);
            let s = 0.125 * n as f32;
            for (a, b) in x.iter().zip(&back) {
                assert!((a * s - b).abs() < 1e-5 * s, "n {n}: {a} vs {b}");
            }
        }
    }

    /// `filter_matrix` on lanes `V`: the output, the stored spectrum and a correlation
    /// added to `acc`.
    fn filter_with<V: Lanes>(
        cpu: V::Cpu,
        plan: &LanePlan,
        x: &[f32],
        g: &[Complex32],
        conjugate: bool,
        cols: usize,
    ) -> (Vec<f32>, Vec<Complex32>, Vec<Complex32>) {
        let h = plan.half + 1;
        let mut y = vec![0.0; x.len()];
        let mut stored = vec![Complex32::new(0.0, 0.0); h * cols];
        let mut acc: Vec<Complex32> = g.iter().map(|c| c * 0.5).collect();
        let forward: Vec<Complex32> = g.iter().rev().copied().collect();
        let mut a = vec![Slot::default(); plan.half];
        let mut b = a.clone();
        for sink in [
            SpectrumSink::Store {
                out: &mut stored,
                scale: 0.25,
            },
            SpectrumSink::Correlate {
                forward: &forward,
                acc: &mut acc,
                scale: 0.5,
            },
        ] {
            let job = FilterJob {
                x,
                filter: g,
                conjugate,
                y: &mut y,
                cols,
                sink: &mut { sink },
            };
            plan.filter_matrix_with::<V>(cpu, job, [&mut a, &mut b]);
        }
        (y, stored, acc)
    }

    #[test]
    fn filter_is_the_inverse_of_the_filtered_forward() {
        for n in [8, 16, 128, 512] {
            let plan = LanePlan::new(n).expect("power of two");
            let (h, cols) = (n / 2 + 1, 10);
            let x = values(n * cols, 11 * n as u64);
            let g: Vec<Complex32> = values(2 * h * cols, 5)
                .chunks_exact(2)
                .map(|p| Complex32::new(p[0], p[1]))
                .collect();
            for conjugate in [false, true] {
                let (y, stored, acc) = filter_with::<Portable>((), &plan, &x, &g, conjugate, cols);
                let mut spectrum = forward_with::<Portable>((), &plan, &x, cols);
                for (i, (s, gv)) in spectrum.iter_mut().zip(&g).enumerate() {
                    // The stored spectrum is 0.25 · X; forward_with gives 0.5 · X.
                    let expected = *s * 0.5;
                    assert!(
                        (stored[i] - expected).norm() < 1e-5 * n as f32,
                        "stored {i}"
                    );
                    let forward = g[g.len() - 1 - i];
                    let correlated = gv * 0.5 + *s * forward.conj();
                    assert!((acc[i] - correlated).norm() < 1e-5 * n as f32, "acc {i}");
                    *s *= if conjugate { gv.conj() } else { *gv };
                }
                // inverse_with: 0.25 · n · irfft; the filter: irfft(G ⊙ X) with X = 2 · 0.5 X.
                let expected = inverse_with::<Portable>((), &plan, &spectrum, cols);
                let s = 2.0 / (0.25 * n as f32);
                for (i, (a, e)) in y.iter().zip(&expected).enumerate() {
                    assert!(
                        (a - e * s).abs() < 1e-5 * n as f32,
                        "n {n} y {i}: {a} vs {}",
                        e * s
                    );
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx_gives_the_portable_bits() {
        let Some(cpu) = simd::Avx::try_new() else {
            return;
        };
        #[target_feature(enable = "avx")]
        fn forward_avx(cpu: simd::Avx, plan: &LanePlan, x: &[f32], cols: usize) -> Vec<Complex32> {
            forward_with::<avx::Avx>(cpu, plan, x, cols)
        }
        #[target_feature(enable = "avx")]
        fn filter_avx(
            cpu: simd::Avx,
            plan: &LanePlan,
            x: &[f32],
            g: &[Complex32],
            conjugate: bool,
            cols: usize,
        ) -> (Vec<f32>, Vec<Complex32>, Vec<Complex32>) {
            filter_with::<avx::Avx>(cpu, plan, x, g, conjugate, cols)
        }
        #[target_feature(enable = "avx")]
        fn inverse_avx(cpu: simd::Avx, plan: &LanePlan, x: &[Complex32], cols: usize) -> Vec<f32> {
            inverse_with::<avx::Avx>(cpu, plan, x, cols)
        }
        for n in [8, 16, 64, 128, 512, 2048] {
            let plan = LanePlan::new(n).expect("power of two");
            for cols in [1, 5, 8, 21] {
                let x = values(n * cols, 3 * n as u64 + cols as u64);
                let portable = forward_with::<Portable>((), &plan, &x, cols);
                // SAFETY: AVX, the functions' one requirement, is vouched for by `cpu`.
                let fast = unsafe { forward_avx(cpu, &plan, &x, cols) };
                let bits = |v: &[Complex32]| -> Vec<(u32, u32)> {
                    v.iter().map(|c| (c.re.to_bits(), c.im.to_bits())).collect()
                };
                assert_eq!(bits(&portable), bits(&fast), "forward n {n} cols {cols}");
                let portable = inverse_with::<Portable>((), &plan, &portable, cols);
                // SAFETY: as above.
                let fast = unsafe { inverse_avx(cpu, &plan, &fast, cols) };
                let bits = |v: &[f32]| -> Vec<u32> { v.iter().map(|x| x.to_bits()).collect() };
                assert_eq!(bits(&portable), bits(&fast), "inverse n {n} cols {cols}");
                let g: Vec<Complex32> = values(2 * (n / 2 + 1) * cols, 9)
                    .chunks_exact(2)
                    .map(|p| Complex32::new(p[0], p[1]))
                    .collect();
                let portable = filter_with::<Portable>((), &plan, &x, &g, cols % 2 == 0, cols);
                // SAFETY: as above.
                let fast = unsafe { filter_avx(cpu, &plan, &x, &g, cols % 2 == 0, cols) };
                assert_eq!(bits(&portable.0), bits(&fast.0), "filter n {n} cols {cols}");
                let cbits = |v: &[Complex32]| -> Vec<(u32, u32)> {
                    v.iter().map(|c| (c.re.to_bits(), c.im.to_bits())).collect()
                };
                assert_eq!(
                    cbits(&portable.1),
                    cbits(&fast.1),
                    "stored n {n} cols {cols}"
                );
                assert_eq!(cbits(&portable.2), cbits(&fast.2), "acc n {n} cols {cols}");
            }
        }
    }
}

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

mod filter;
mod radix;
mod vector;

#[cfg(test)]
use filter::FilterJob;
pub(crate) use filter::SpectrumSink;
use radix::{radix2_stage, radix4_stage};
#[cfg(target_arch = "x86_64")]
use vector::avx;
pub(crate) use vector::{LANES, Slot};
use vector::{Lanes, Portable, SplitComplex, load_row, store_row};

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
    /// How the complex transform of length `m` runs.
    complex: ComplexTransform,
    /// `Wᵏ = e^{−2πi k / n}` for `k <= m/2`.
    split_twiddles: Vec<Complex32>,
}

/// The complex transform of length `m` of a [`LanePlan`].
#[derive(Debug)]
enum ComplexTransform {
    /// Radix-4 stages over the whole length, each a pass over both work buffers: for
    /// lengths whose buffers stay in L1 and L2.
    Stages(Stages),
    /// The four-step transform, for longer lengths.
    FourStep(FourStep),
}

/// The Stockham stages of a complex FFT of one power-of-two length `len >= 1`.
#[derive(Debug)]
struct Stages {
    len: usize,
    /// `(w, w², w³)` with `w = e^{−2πi p / l}`, `p < l/4`, for each radix-4 stage of length
    /// `l` (`l = len, len/4, …`), stage after stage.
    twiddles: Vec<[Complex32; 3]>,
}

/// The four-step (Bailey) FFT of length `m = m1 · m2`: with `z[j1·m2 + j2]`,
/// `X[k1 + m1·k2] = Σ_{j2} W_{m2}^{j2·k2} · W_m^{j2·k1} · Σ_{j1} W_{m1}^{j1·k1} z[j1·m2 + j2]`:
/// transforms of length `m1` down the `m2` columns, a twiddle, transforms of length `m2` along
/// the `m1` rows. Each short transform runs in L1 on [`FOUR_STEP_BATCH`] columns or rows
/// gathered together, so a long transform makes two passes over its work buffers rather
/// than one per radix-4 stage (which at n = 65,536 spill out of L2).
#[derive(Debug)]
struct FourStep {
    /// Length `m1`, down the columns.
    columns: Stages,
    /// Length `m2`, along the rows.
    rows: Stages,
    /// `W_m^{j2·k1}` at `j2·m1 + k1`.
    twiddles: Vec<Complex32>,
}

/// Complex lengths `m` above this run as a [`FourStep`] transform: a work buffer of 256
/// slots (16 KiB) and its partner stay in L1.
const FOUR_STEP_ABOVE: usize = 4096;

/// Columns (or rows) a [`FourStep`] transform gathers and transforms together: their slots
/// lie side by side in the work buffers, so they are read and written four lines at a time.
const FOUR_STEP_BATCH: usize = 4;

/// `e^{−2πi · num / den}`, computed in f64 and rounded once.
fn unit_root(num: usize, den: usize) -> Complex32 {
    let angle = -2.0 * std::f64::consts::PI * num as f64 / den as f64;
    Complex32::new(angle.cos() as f32, angle.sin() as f32)
}

thread_local! {
    static WORK: RefCell<[Vec<Slot>; 3]> = const { RefCell::new([Vec::new(), Vec::new(), Vec::new()]) };
}

impl LanePlan {
    /// The plan for length `n`, or `None` when `n` is not a power of two of at least 8.
    pub(crate) fn new(n: usize) -> Option<Self> {
        Self::with_four_step_above(n, FOUR_STEP_ABOVE)
    }

    /// [`Self::new`] with the four-step transform for complex lengths above `four_step_above`
    /// (tests use it at short lengths).
    fn with_four_step_above(n: usize, four_step_above: usize) -> Option<Self> {
        if n < 8 || !n.is_power_of_two() {
            return None;
        }
        let half = n / 2;
        let complex = if half > four_step_above.max(8) {
            let bits = half.trailing_zeros();
            let (m1, m2) = (1 << (bits / 2), 1 << (bits - bits / 2));
            let twiddles = (0..m2)
                .flat_map(|j2| (0..m1).map(move |k1| unit_root(j2 * k1 % half, half)))
                .collect();
            ComplexTransform::FourStep(FourStep {
                columns: Stages::new(m1),
                rows: Stages::new(m2),
                twiddles,
            })
        } else {
            ComplexTransform::Stages(Stages::new(half))
        };
        let split_twiddles = (0..=half / 2).map(|k| unit_root(k, n)).collect();
        Some(Self {
            half,
            complex,
            split_twiddles,
        })
    }

    /// Slots of the small work buffer: two per gathered column or row of a [`FourStep`].
    fn small_len(&self) -> usize {
        match &self.complex {
            ComplexTransform::Stages(_) => 0,
            ComplexTransform::FourStep(f) => 2 * FOUR_STEP_BATCH * f.columns.len.max(f.rows.len),
        }
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

    /// Runs `job` with this thread's work buffers: two of `m` slots, and the four-step
    /// transform's small one ([`Self::small_len`] slots).
    fn with_work<R>(&self, job: impl FnOnce([&mut [Slot]; 3]) -> R) -> R {
        crate::scratch::with_thread_local(&WORK, |[a, b, small]| {
            for (buffer, len) in [
                (&mut *a, self.half),
                (&mut *b, self.half),
                (&mut *small, self.small_len()),
            ] {
                if buffer.len() < len {
                    buffer.resize(len, Slot::default());
                }
            }
            job([
                &mut a[..self.half],
                &mut b[..self.half],
                &mut small[..self.small_len()],
            ])
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
        work: [&mut [Slot]; 3],
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
        work: [&mut [Slot]; 3],
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
        [a, b, small]: [&mut [Slot]; 3],
    ) {
        for group in groups(cols) {
            let src = Columns::new(x, cols, group);
            let mut dst = Columns::new(&mut *y, cols, group);
            self.forward::<V>(cpu, &src, &mut dst, scale, [a, b, small]);
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
        [a, b, small]: [&mut [Slot]; 3],
    ) {
        for group in groups(cols) {
            let src = Columns::new(x, cols, group);
            let mut dst = Columns::new(&mut *y, cols, group);
            self.inverse::<V>(cpu, &src, &mut dst, scale, [a, b, small]);
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
        [a, b, small]: [&mut [Slot]; 3],
    ) {
        let (m, width) = (self.half, src.width);
        for (j, slot) in a.iter_mut().enumerate() {
            SplitComplex::<V>::new(
                load_row(cpu, src.data, src.row(2 * j), width),
                load_row(cpu, src.data, src.row(2 * j + 1), width),
            )
            .put(slot);
        }
        let z: &[Slot] = if self.complex_fft::<V, false>(cpu, a, b, small) {
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
        [a, b, small]: [&mut [Slot]; 3],
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
        let z: &[Slot] = if self.complex_fft::<V, true>(cpu, a, b, small) {
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

    /// Unnormalised complex FFT (inverse: conjugate twiddles) of the `m` slots of `a`; `b`
    /// and `small` ([`Self::small_len`] slots) are work space. Returns whether the result
    /// ended in `b` (else it is in `a`).
    #[inline(always)]
    fn complex_fft<V: Lanes, const INVERSE: bool>(
        &self,
        cpu: V::Cpu,
        a: &mut [Slot],
        b: &mut [Slot],
        small: &mut [Slot],
    ) -> bool {
        match &self.complex {
            ComplexTransform::Stages(stages) => stages.run::<V, INVERSE>(cpu, a, b),
            ComplexTransform::FourStep(four) => {
                four.run::<V, INVERSE>(cpu, a, b, small);
                false
            }
        }
    }
}

impl Stages {
    fn new(len: usize) -> Self {
        let mut twiddles = Vec::new();
        let mut l = len;
        while l >= 4 {
            twiddles.extend(
                (0..l / 4).map(|p| [unit_root(p, l), unit_root(2 * p, l), unit_root(3 * p, l)]),
            );
            l /= 4;
        }
        Self { len, twiddles }
    }

    /// The transform of the `len` slots of `a`, `b` (`len` slots) the other buffer of the
    /// Stockham stages. Returns whether the result ended in `b` (else it is in `a`).
    #[inline(always)]
    fn run<V: Lanes, const INVERSE: bool>(
        &self,
        cpu: V::Cpu,
        a: &mut [Slot],
        b: &mut [Slot],
    ) -> bool {
        let (mut x, mut y) = (a, b);
        let mut in_b = false;
        let mut twiddles = &self.twiddles[..];
        let (mut l, mut s) = (self.len, 1);
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

impl FourStep {
    /// The transform of the `m` slots of `a`, result in `a`; `b` (`m` slots) holds the
    /// twiddled column transforms in between, `small` the gathered columns and rows.
    #[inline(always)]
    fn run<V: Lanes, const INVERSE: bool>(
        &self,
        cpu: V::Cpu,
        a: &mut [Slot],
        b: &mut [Slot],
        small: &mut [Slot],
    ) {
        const C: usize = FOUR_STEP_BATCH;
        let (m1, m2) = (self.columns.len, self.rows.len);
        let (gathered, work) = small.split_at_mut(C * m1.max(m2));
        // Down the columns: C neighbouring columns j2.. gathered (C slots side by side per
        // row), transformed, twiddled and written to b as rows k1 (b[k1·m2 + j2]).
        for j2 in (0..m2).step_by(C) {
            for j1 in 0..m1 {
                for c in 0..C {
                    gathered[c * m1 + j1] = a[j1 * m2 + j2 + c];
                }
            }
            let mut in_work = false;
            for (col, w) in gathered
                .chunks_exact_mut(m1)
                .zip(work.chunks_exact_mut(m1))
                .take(C)
            {
                in_work = self.columns.run::<V, INVERSE>(cpu, col, w);
            }
            let results: &[Slot] = if in_work { work } else { gathered };
            for k1 in 0..m1 {
                for c in 0..C {
                    let w = self.twiddles[(j2 + c) * m1 + k1];
                    SplitComplex::<V>::get(cpu, &results[c * m1 + k1])
                        .times::<INVERSE>(w)
                        .put(&mut b[k1 * m2 + j2 + c]);
                }
            }
        }
        // Along the rows: C rows k1.. transformed in place in b, written to a in order
        // (a[k1 + m1·k2], C slots side by side).
        for k1 in (0..m1).step_by(C) {
            let rows = &mut b[k1 * m2..(k1 + C) * m2];
            let mut in_work = false;
            for (row, w) in rows.chunks_exact_mut(m2).zip(work.chunks_exact_mut(m2)) {
                in_work = self.rows.run::<V, INVERSE>(cpu, row, w);
            }
            let results: &[Slot] = if in_work { work } else { rows };
            for k2 in 0..m2 {
                for c in 0..C {
                    a[k1 + c + m1 * k2] = results[c * m2 + k2];
                }
            }
        }
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
        let mut small = vec![Slot::default(); plan.small_len()];
        plan.forward_matrix_with::<V>(cpu, x, &mut y, cols, 0.5, [&mut a, &mut b, &mut small]);
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
        let mut small = vec![Slot::default(); plan.small_len()];
        plan.inverse_matrix_with::<V>(cpu, x, &mut y, cols, 0.25, [&mut a, &mut b, &mut small]);
        y
    }

    /// The plan of length `n` as it runs, and one with the four-step transform (from
    /// complex lengths of 16), so that the tests cover both at short lengths.
    fn plans(n: usize) -> [LanePlan; 2] {
        [
            LanePlan::new(n).expect("power of two"),
            LanePlan::with_four_step_above(n, 8).expect("power of two"),
        ]
    }

    #[test]
    fn four_step_plans_split_the_length_evenly() {
        let plan = LanePlan::with_four_step_above(1 << 16, 8).expect("power of two");
        let ComplexTransform::FourStep(four) = &plan.complex else {
            panic!("a four-step plan");
        };
        assert_eq!((four.columns.len, four.rows.len), (128, 256));
        assert!(matches!(
            LanePlan::new(1024).expect("power of two").complex,
            ComplexTransform::Stages(_)
        ));
        assert!(matches!(
            LanePlan::new(1 << 14).expect("power of two").complex,
            ComplexTransform::FourStep(_)
        ));
    }

    /// `0.5 · rfft(x)` of column `c` of a row-major `(n, cols)` matrix, in f64 by the
    /// definition (what `forward_with` computes, scale 0.5).
    fn dft_half(x: &[f32], n: usize, cols: usize, c: usize) -> Vec<(f64, f64)> {
        (0..=n / 2)
            .map(|k| {
                let (mut re, mut im) = (0.0f64, 0.0f64);
                for t in 0..n {
                    let angle = -2.0 * std::f64::consts::PI * ((k * t) % n) as f64 / n as f64;
                    re += f64::from(x[t * cols + c]) * angle.cos();
                    im += f64::from(x[t * cols + c]) * angle.sin();
                }
                (0.5 * re, 0.5 * im)
            })
            .collect()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

        /// The four-step transform at any split of a power-of-two length matches the DFT in
        /// every lane, and the inverse brings the signal back.
        #[test]
        fn four_step_matches_the_dft_and_inverts(
            log_n in 5u32..=11,
            cols in 1usize..=12,
            seed in 0u64..1000,
        ) {
            let n = 1usize << log_n;
            let plan = LanePlan::with_four_step_above(n, 8).expect("power of two");
            proptest::prop_assert!(matches!(plan.complex, ComplexTransform::FourStep(_)));
            let x = values(n * cols, seed);
            let y = forward_with::<Portable>((), &plan, &x, cols);
            let tol = 1e-5 * (n as f64).sqrt() * 4.0;
            for c in [0, cols - 1] {
                for (k, (re, im)) in dft_half(&x, n, cols, c).into_iter().enumerate() {
                    let got = y[k * cols + c];
                    proptest::prop_assert!((f64::from(got.re) - re).abs() < tol, "n {n} k {k}");
                    proptest::prop_assert!((f64::from(got.im) - im).abs() < tol, "n {n} k {k}");
                }
            }
            // forward scale 0.5, inverse 0.25: the pair gives 0.125 · n · x.
            let back = inverse_with::<Portable>((), &plan, &y, cols);
            let s = 0.125 * n as f32;
            for (a, b) in x.iter().zip(&back) {
                proptest::prop_assert!((a * s - b).abs() < 1e-5 * s, "n {n}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn the_default_plan_above_the_threshold_agrees_with_the_radix_4_stages() {
        // n = 16384: the first length that runs four-step by default.
        let n = 2 * (FOUR_STEP_ABOVE + 1).next_power_of_two();
        let four = LanePlan::new(n).expect("power of two");
        let stages = LanePlan::with_four_step_above(n, usize::MAX).expect("power of two");
        assert!(matches!(four.complex, ComplexTransform::FourStep(_)));
        assert!(matches!(stages.complex, ComplexTransform::Stages(_)));
        let cols = 9;
        let x = values(n * cols, 17);
        let a = forward_with::<Portable>((), &four, &x, cols);
        let b = forward_with::<Portable>((), &stages, &x, cols);
        let scale = b.iter().map(|v| v.norm()).fold(0.0f32, f32::max);
        for (i, (p, q)) in a.iter().zip(&b).enumerate() {
            assert!(
                (p - q).norm() < 1e-5 * scale,
                "bin {}: {p} vs {q}",
                i / cols
            );
        }
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
        for plan in [8, 16, 32, 64, 128, 512].into_iter().flat_map(plans) {
            let n = 2 * plan.half;
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
        for plan in [8, 32, 256, 1024].into_iter().flat_map(plans) {
            let n = 2 * plan.half;
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
        gather: bool,
    ) -> (Vec<f32>, Vec<Complex32>, Vec<Complex32>) {
        let h = plan.half + 1;
        let mut tiles = filter::GatheredTiles::default();
        let mut y = vec![0.0; x.len()];
        let mut stored = vec![Complex32::new(0.0, 0.0); h * cols];
        let mut acc: Vec<Complex32> = g.iter().map(|c| c * 0.5).collect();
        let forward: Vec<Complex32> = g.iter().rev().copied().collect();
        let mut a = vec![Slot::default(); plan.half];
        let mut b = a.clone();
        let mut small = vec![Slot::default(); plan.small_len()];
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
            let tiles = gather.then(|| tiles.reserve(plan.half));
            plan.filter_matrix_with::<V>(cpu, job, [&mut a, &mut b, &mut small], tiles);
        }
        (y, stored, acc)
    }

    #[test]
    fn filter_is_the_inverse_of_the_filtered_forward() {
        for plan in [8, 16, 128, 512].into_iter().flat_map(plans) {
            let n = 2 * plan.half;
            let (h, cols) = (n / 2 + 1, 10);
            let x = values(n * cols, 11 * n as u64);
            let g: Vec<Complex32> = values(2 * h * cols, 5)
                .chunks_exact(2)
                .map(|p| Complex32::new(p[0], p[1]))
                .collect();
            for conjugate in [false, true] {
                let (y, stored, acc) =
                    filter_with::<Portable>((), &plan, &x, &g, conjugate, cols, false);
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

    #[test]
    fn gathered_tiles_give_the_in_place_bits() {
        let bits = |v: &[f32]| -> Vec<u32> { v.iter().map(|x| x.to_bits()).collect() };
        let cbits = |v: &[Complex32]| -> Vec<(u32, u32)> {
            v.iter().map(|c| (c.re.to_bits(), c.im.to_bits())).collect()
        };
        // Whole tiles, a partial last tile of one group and of part of a group, and the
        // four-step plans (whose threshold the unit plans lower).
        for plan in [8, 64, 512].into_iter().flat_map(plans) {
            let n = 2 * plan.half;
            for cols in [17, 20, 32, 40] {
                let x = values(n * cols, 7 * n as u64 + cols as u64);
                let g: Vec<Complex32> = values(2 * (n / 2 + 1) * cols, 13)
                    .chunks_exact(2)
                    .map(|p| Complex32::new(p[0], p[1]))
                    .collect();
                for conjugate in [false, true] {
                    let in_place =
                        filter_with::<Portable>((), &plan, &x, &g, conjugate, cols, false);
                    let gathered =
                        filter_with::<Portable>((), &plan, &x, &g, conjugate, cols, true);
                    let case = format!("n {n} cols {cols} conjugate {conjugate}");
                    assert_eq!(bits(&in_place.0), bits(&gathered.0), "output, {case}");
                    assert_eq!(cbits(&in_place.1), cbits(&gathered.1), "stored, {case}");
                    assert_eq!(cbits(&in_place.2), cbits(&gathered.2), "acc, {case}");
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
            gather: bool,
        ) -> (Vec<f32>, Vec<Complex32>, Vec<Complex32>) {
            filter_with::<avx::Avx>(cpu, plan, x, g, conjugate, cols, gather)
        }
        #[target_feature(enable = "avx")]
        fn inverse_avx(cpu: simd::Avx, plan: &LanePlan, x: &[Complex32], cols: usize) -> Vec<f32> {
            inverse_with::<avx::Avx>(cpu, plan, x, cols)
        }
        for plan in [8, 16, 64, 128, 512, 2048].into_iter().flat_map(plans) {
            let n = 2 * plan.half;
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
                let portable =
                    filter_with::<Portable>((), &plan, &x, &g, cols % 2 == 0, cols, false);
                // SAFETY: as above; the AVX side in gathered tiles where it has more than one.
                let fast =
                    unsafe { filter_avx(cpu, &plan, &x, &g, cols % 2 == 0, cols, cols > 16) };
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

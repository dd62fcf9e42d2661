//! The fused filter of the lane transforms: `irfft(G ⊙ rfft(x))` for eight columns at a
//! time, bin pair by bin pair in the work buffers, and what it hands its sink.

use num_complex::Complex32;
#[cfg(target_arch = "x86_64")]
use spectrans_linalg::simd;

#[cfg(target_arch = "x86_64")]
use super::vector::avx;
use super::vector::{
    Lanes, PREFETCH_ROWS, Portable, Slot, SplitComplex, load_row, prefetch, store_row,
};
use super::{Columns, LanePlan, groups};

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
    fn filter_matrix_avx(&self, cpu: simd::Avx, job: FilterJob<'_, '_>, work: [&mut [Slot]; 3]) {
        self.filter_matrix_with::<avx::Avx>(cpu, job, work)
    }

    #[inline(always)]
    pub(super) fn filter_matrix_with<V: Lanes>(
        &self,
        cpu: V::Cpu,
        job: FilterJob<'_, '_>,
        [a, b, small]: [&mut [Slot]; 3],
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
                self.filter_block::<V, true>(cpu, &src, &g, &mut dst, sink, [a, b, small]);
            } else {
                self.filter_block::<V, false>(cpu, &src, &g, &mut dst, sink, [a, b, small]);
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
        [a, b, small]: [&mut [Slot]; 3],
    ) {
        let (m, width) = (self.half, src.width);
        const AHEAD: usize = PREFETCH_ROWS / 2;
        for (j, slot) in a.iter_mut().enumerate() {
            prefetch(src.data, src.row(2 * (j + AHEAD)));
            prefetch(src.data, src.row(2 * (j + AHEAD) + 1));
            SplitComplex::<V>::new(
                load_row(cpu, src.data, src.row(2 * j), width),
                load_row(cpu, src.data, src.row(2 * j + 1), width),
            )
            .put(slot);
        }
        let in_b = self.complex_fft::<V, false>(cpu, a, b, small);
        let (z, work) = if in_b { (b, a) } else { (a, b) };
        // 1/n for bins 0 and m (X itself), 1/(2n) for the others (2X below); powers of two,
        // so these products are exact.
        let inv_n = (1.0 / (2 * m) as f64) as f32;
        let half_inv_n = V::splat(cpu, 0.5 * inv_n);
        // `filter_row` is a function, not a closure: a closure would not inherit the AVX
        // entry's target features, and an AVX intrinsic left inside a call that is not
        // inlined runs as a call per instruction (measured: +40 % on a tiny model's forward).

        let z0 = SplitComplex::<V>::get(cpu, &z[0]);
        let zero = V::splat(cpu, 0.0);
        let (first, last) = (z0.re.add(z0.im), z0.re.sub(z0.im));
        sink.take(SplitComplex::new(first, zero), g.row(0), width, 1.0);
        sink.take(SplitComplex::new(last, zero), g.row(m), width, 1.0);
        let inv_n_lanes = V::splat(cpu, inv_n);
        let first = first
            .mul(filter_row::<V, CONJ>(cpu, (g, 0), width).re)
            .mul(inv_n_lanes);
        let last = last
            .mul(filter_row::<V, CONJ>(cpu, (g, m), width).re)
            .mul(inv_n_lanes);
        SplitComplex::new(first.add(last), first.sub(last)).put(&mut z[0]);

        for k in 1..=m / 2 {
            prefetch(g.data, g.row(k + PREFETCH_ROWS));
            if let Some(row) = (m - k).checked_sub(PREFETCH_ROWS) {
                prefetch(g.data, g.row(row));
            }
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
            let yk = xk
                .mul(filter_row::<V, CONJ>(cpu, (g, k), width))
                .scale(half_inv_n);
            let yc = xc
                .mul(filter_row::<V, CONJ>(cpu, (g, m - k), width))
                .scale(half_inv_n)
                .conj();
            // The inverse split of `inverse`, on Y = G ⊙ X.
            let even = yk.add(yc);
            let odd = yk.sub(yc).times::<true>(self.split_twiddles[k]);
            SplitComplex::new(even.re.sub(odd.im), even.im.add(odd.re)).put(&mut z[k]);
            if k != m - k {
                SplitComplex::new(even.re.add(odd.im), odd.re.sub(even.im)).put(&mut z[m - k]);
            }
        }

        let out: &[Slot] = if self.complex_fft::<V, true>(cpu, z, work, small) {
            work
        } else {
            z
        };
        for (j, slot) in out.iter().enumerate() {
            prefetch(dst.data, dst.row(2 * (j + AHEAD)));
            prefetch(dst.data, dst.row(2 * (j + AHEAD) + 1));
            let v = SplitComplex::<V>::get(cpu, slot);
            store_row(v.re, dst.data, dst.row(2 * j), width);
            store_row(v.im, dst.data, dst.row(2 * j + 1), width);
        }
    }
}

/// Row `k` of the filter `g` (conjugated when `CONJ`), as lanes.
#[inline(always)]
fn filter_row<V: Lanes, const CONJ: bool>(
    cpu: V::Cpu,
    (g, k): (&Columns<&[Complex32]>, usize),
    width: usize,
) -> SplitComplex<V> {
    let v = SplitComplex::<V>::load(cpu, g.data, g.row(k), width);
    if CONJ { v.conj() } else { v }
}

/// The arguments of one [`LanePlan::filter_matrix`] call.
pub(super) struct FilterJob<'s, 'a> {
    pub(super) x: &'s [f32],
    pub(super) filter: &'s [Complex32],
    pub(super) conjugate: bool,
    pub(super) y: &'s mut [f32],
    pub(super) cols: usize,
    pub(super) sink: &'s mut SpectrumSink<'a>,
}

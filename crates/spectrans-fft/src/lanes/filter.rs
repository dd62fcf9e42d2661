//! The fused filter of the lane transforms: `irfft(G ⊙ rfft(x))` for eight columns at a
//! time, bin pair by bin pair in the work buffers, and what it hands its sink.

use std::cell::RefCell;

use num_complex::Complex32;
#[cfg(target_arch = "x86_64")]
use spectrans_linalg::simd;

#[cfg(target_arch = "x86_64")]
use super::vector::avx;
use super::vector::{
    Lanes, PREFETCH_ROWS, Portable, Slot, SplitComplex, load_row, prefetch, store_row,
};
use super::{Columns, LANES, LanePlan, groups};

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
        let gather = 2 * self.half >= GATHER_FROM && cols > TILE;
        self.with_work(|work| {
            crate::scratch::with_thread_local(&GATHERED, |tiles| {
                let tiles = gather.then(|| tiles.reserve(self.half));
                #[cfg(target_arch = "x86_64")]
                if let Some(cpu) = simd::Avx::try_new() {
                    // SAFETY: the function's one requirement, AVX, is vouched for by `cpu`.
                    return unsafe { self.filter_matrix_avx(cpu, job, work, tiles) };
                }
                self.filter_matrix_with::<Portable>((), job, work, tiles)
            })
        });
    }

    /// [`filter_matrix`](Self::filter_matrix) compiled for AVX (the token: the CPU has it).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx")]
    fn filter_matrix_avx(
        &self,
        cpu: simd::Avx,
        job: FilterJob<'_, '_>,
        work: [&mut [Slot]; 3],
        tiles: Option<&mut GatheredTiles>,
    ) {
        self.filter_matrix_with::<avx::Avx>(cpu, job, work, tiles)
    }

    /// [`filter_matrix`](Self::filter_matrix) on lanes `V`; with `tiles`, tile by tile
    /// through them (see [`GATHER_FROM`]), else in place.
    #[inline(always)]
    pub(super) fn filter_matrix_with<V: Lanes>(
        &self,
        cpu: V::Cpu,
        job: FilterJob<'_, '_>,
        [a, b, small]: [&mut [Slot]; 3],
        tiles: Option<&mut GatheredTiles>,
    ) {
        let FilterJob {
            x,
            filter,
            conjugate,
            y,
            cols,
            sink,
        } = job;
        let (n, h) = (2 * self.half, self.half + 1);
        if let Some(GatheredTiles {
            input,
            output,
            filter: filter_tile,
        }) = tiles
        {
            for col0 in (0..cols).step_by(TILE) {
                let width = TILE.min(cols - col0);
                let (input, output) = (&mut input[..n * width], &mut output[..n * width]);
                let filter_tile = &mut filter_tile[..h * width];
                copy_tile(x, cols, col0, input, width, Direction::Gather);
                copy_tile(filter, cols, col0, filter_tile, width, Direction::Gather);
                for (group0, group_width) in groups(width) {
                    let tile_group = (group0, group_width);
                    self.filter_block_conj::<V>(
                        cpu,
                        (
                            &Columns::new(&*input, width, tile_group),
                            &Columns::new(&*filter_tile, width, tile_group),
                            &mut Columns::new(&mut *output, width, tile_group),
                            conjugate,
                        ),
                        (sink, &Columns::new((), cols, (col0 + group0, group_width))),
                        [&mut *a, &mut *b, &mut *small],
                    );
                }
                copy_tile(output, cols, col0, y, width, Direction::Scatter);
            }
            return;
        }
        for group in groups(cols) {
            self.filter_block_conj::<V>(
                cpu,
                (
                    &Columns::new(x, cols, group),
                    &Columns::new(filter, cols, group),
                    &mut Columns::new(&mut *y, cols, group),
                    conjugate,
                ),
                (sink, &Columns::new((), cols, group)),
                [&mut *a, &mut *b, &mut *small],
            );
        }
    }

    /// [`filter_block`](Self::filter_block) with `G` conjugated or not.
    #[inline(always)]
    #[allow(clippy::type_complexity)]
    fn filter_block_conj<V: Lanes>(
        &self,
        cpu: V::Cpu,
        (src, g, dst, conjugate): (
            &Columns<&[f32]>,
            &Columns<&[Complex32]>,
            &mut Columns<&mut [f32]>,
            bool,
        ),
        sink: (&mut SpectrumSink<'_>, &Columns<()>),
        work: [&mut [Slot]; 3],
    ) {
        if conjugate {
            self.filter_block::<V, true>(cpu, src, g, dst, sink, work);
        } else {
            self.filter_block::<V, false>(cpu, src, g, dst, sink, work);
        }
    }

    /// [`filter_matrix`](Self::filter_matrix) for up to eight columns: the forward
    /// transform, the split, the product with `G`, the inverse split and the inverse
    /// transform, bin pair by bin pair in the work buffers. The sink's bin `k` is row `k` of
    /// `at` in its matrices (the same columns as `g`, which may be a gathered copy).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn filter_block<V: Lanes, const CONJ: bool>(
        &self,
        cpu: V::Cpu,
        src: &Columns<&[f32]>,
        g: &Columns<&[Complex32]>,
        dst: &mut Columns<&mut [f32]>,
        (sink, at): (&mut SpectrumSink<'_>, &Columns<()>),
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
        sink.take(SplitComplex::new(first, zero), at.row(0), width, 1.0);
        sink.take(SplitComplex::new(last, zero), at.row(m), width, 1.0);
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
            sink.take(xk, at.row(k), width, 0.5);
            if k != m - k {
                sink.take(xc, at.row(m - k), width, 0.5);
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

/// Lengths from which a matrix wider than [`TILE`] columns is filtered tile by tile: the
/// tile's rows of the input and of the filter are first copied into contiguous scratch, and
/// the output's copied back. Read in place, a group's rows are 32 bytes of input (64 of
/// filter) at a stride of `4 · cols` (`8 · cols`) bytes, on a new page every few rows: once
/// they no longer stay in cache from one pass of the group to the next, every pass waits on
/// memory and the TLB. Measured (`examples/filter_bench`, hidden 256, 1 thread): n = 65,536
/// 163 -> 138 ms, 16,384 24 -> 22 ms, even at 8192, slower in tiles below 4096.
const GATHER_FROM: usize = 4096;

/// Columns of one gathered tile: two groups, a whole 64-byte line of each row.
const TILE: usize = 2 * LANES;
// Each row of a whole tile is one inlined copy (`tile::copy_row`).
const _: () = assert!(TILE == crate::tile::FIXED_WIDTH);

/// A thread's copies of one tile (`TILE` columns) of a filter call's input, output and
/// filter, each row-major with `TILE` columns.
#[derive(Debug, Default)]
pub(super) struct GatheredTiles {
    input: Vec<f32>,
    output: Vec<f32>,
    filter: Vec<Complex32>,
}

impl GatheredTiles {
    /// Grows the tiles to a length `2 m` (never shrinks: a warm thread allocates nothing).
    pub(super) fn reserve(&mut self, m: usize) -> &mut Self {
        for (buffer, len) in [(&mut self.input, 2 * m), (&mut self.output, 2 * m)] {
            if buffer.len() < len * TILE {
                buffer.resize(len * TILE, 0.0);
            }
        }
        if self.filter.len() < (m + 1) * TILE {
            self.filter.resize((m + 1) * TILE, Complex32::new(0.0, 0.0));
        }
        self
    }
}

thread_local! {
    static GATHERED: RefCell<GatheredTiles> = RefCell::new(GatheredTiles::default());
}

/// Which way [`copy_tile`] copies.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// From the matrix into the tile.
    Gather,
    /// From the tile into the matrix.
    Scatter,
}

/// Copies columns `col0..col0 + width` of a row-major matrix of `cols` columns to or from
/// a row-major tile of `width` columns, prefetching the matrix's rows ahead.
#[inline(always)]
fn copy_tile<T: Copy>(
    from: &[T],
    cols: usize,
    col0: usize,
    to: &mut [T],
    width: usize,
    direction: Direction,
) {
    let rows = match direction {
        Direction::Gather => to.len() / width,
        Direction::Scatter => from.len() / width,
    };
    for t in 0..rows {
        let (ahead, row, tile_row) = (
            (t + PREFETCH_ROWS) * cols + col0,
            t * cols + col0,
            t * width,
        );
        let (src, dst) = match direction {
            Direction::Gather => {
                prefetch(from, ahead);
                prefetch(from, ahead + width - 1);
                (&from[row..row + width], &mut to[tile_row..tile_row + width])
            }
            Direction::Scatter => {
                prefetch(to, ahead);
                prefetch(to, ahead + width - 1);
                (&from[tile_row..tile_row + width], &mut to[row..row + width])
            }
        };
        crate::tile::copy_row(dst, src);
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

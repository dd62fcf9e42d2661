//! The int8 product `C = epilogue(dequant(Q_x · Q_w))`: activations quantized per row to 7-bit
//! codes (`q_x` in [0, 127], scale `s_x`, zero point `z`), the weight held as int8 per output
//! channel (`q_w` in [-127, 127], scale `s_w`), integer sums, then
//! `C[i, j] = ((Σ_k q_x[i,k] q_w[k,j] − z[i] Σ_k q_w[k,j]) · s_x[i]) · s_w[j]`.
//!
//! The sums are exact (i32), so the AVX2 kernel (`vpmaddubsw` + `vpmaddwd`: 32 multiply-adds
//! per instruction pair, twice an f32 FMA's) and the portable one give the same bits, at any
//! thread count. Codes of 7 bits keep each `vpmaddubsw` pair sum (at most 2 · 127 · 127) below
//! the 16-bit saturation.
//!
//! Layout of the weight ([`Int8Rhs`]): k padded to a multiple of 4; panel `j` (columns
//! `16j..16j+16`) holds, for each group of 4 k, 64 bytes: columns 0..8 then 8..16, each as
//! its 4 consecutive k values. Activations: row-major codes, rows `kp` bytes apart.

use std::cell::RefCell;

use crate::scratch::with_thread_local;
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use super::kernel::{MR, NR};
use super::pack::panels;
use super::{C_BLOCK_FLOATS, Out, Task, finish, plan};
use crate::precision::{activation_code, activation_params};
#[cfg(target_arch = "x86_64")]
use crate::simd;
use crate::{Epilogue, Parallelism};

/// Bytes of one group of 4 k values for the NR columns of a panel.
pub(super) const GROUP_BYTES: usize = 4 * NR;

/// A weight W (n, k) held as int8 codes per output channel, packed for the int8 kernel.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Int8Rhs {
    pub(crate) k: usize,
    pub(crate) n: usize,
    /// k rounded up to a multiple of 4.
    kp: usize,
    /// `panels(n) · kp · NR` codes (zero past n and past k).
    q: Vec<i8>,
    /// `s_w` per column of B (output channel), zero past n.
    scales: Vec<f32>,
    /// `Σ_k q_w[k, j]` per column, zero past n.
    sums: Vec<i32>,
}

impl Int8Rhs {
    /// Quantizes W (n, k) per row: `s = max|w| / 127`, `q = round(w / s)` in [-127, 127]
    /// (a row of zeros keeps `s = 0`, and a row that is not finite gets `s = NaN`, so its
    /// outputs are NaN rather than wrong).
    pub(crate) fn from_weight(w: ArrayView2<'_, f32>) -> Self {
        let (n, k) = w.dim();
        let kp = k.div_ceil(4) * 4;
        let np = panels(n);
        let mut q = vec![0i8; np * kp * NR];
        let mut scales = vec![0.0f32; np * NR];
        let mut sums = vec![0i32; np * NR];
        for (j, row) in w.outer_iter().enumerate() {
            let max = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let scale = if max.is_finite() {
                max / 127.0
            } else {
                f32::NAN
            };
            scales[j] = scale;
            let (panel, col) = (j / NR, j % NR);
            let mut sum = 0i32;
            for (p, &v) in row.iter().enumerate() {
                let code = if scale > 0.0 {
                    (v / scale).round().clamp(-127.0, 127.0) as i8
                } else {
                    0
                };
                sum += i32::from(code);
                q[Self::offset(kp, panel, col, p)] = code;
            }
            sums[j] = sum;
        }
        Self {
            k,
            n,
            kp,
            q,
            scales,
            sums,
        }
    }

    /// Where code (k = p, column `col` of panel `panel`) lives.
    fn offset(kp: usize, panel: usize, col: usize, p: usize) -> usize {
        panel * kp * NR + (p / 4) * GROUP_BYTES + (col / 8) * 32 + (col % 8) * 4 + p % 4
    }

    /// The weight's values `s · q`, (n, k).
    pub(crate) fn to_weight(&self) -> Array2<f32> {
        Array2::from_shape_fn((self.n, self.k), |(j, p)| {
            self.scales[j] * f32::from(self.q[Self::offset(self.kp, j / NR, j % NR, p)])
        })
    }

    fn panel(&self, j: usize) -> &[i8] {
        &self.q[j * self.kp * NR..(j + 1) * self.kp * NR]
    }
}

/// One row's quantized activations.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct RowQuant {
    pub(super) scale: f32,
    pub(super) zero: i32,
}

thread_local! {
    /// The activation codes (m rows of kp bytes) and per-row parameters of the product running
    /// on this thread, and a row of zero codes for the missing rows of a last panel.
    static CODES: RefCell<(Vec<u8>, Vec<RowQuant>, Vec<u8>)> =
        const { RefCell::new((Vec::new(), Vec::new(), Vec::new())) };
}

/// `dst = epilogue(x · Bᵀ)` with B held in int8 (shapes checked by the caller: x (m, k) with a
/// standard layout, C at `out` (m, n), m, n > 0).
pub(crate) fn run(
    out: Out<'_>,
    x: ArrayView2<'_, f32>,
    rhs: &Int8Rhs,
    epilogue: Epilogue<'_>,
    parallelism: Parallelism,
) {
    let (m, k) = x.dim();
    let kp = rhs.kp;
    let x = x.as_standard_layout();
    with_thread_local(&CODES, |(codes, rows, zeros)| {
        if codes.len() < m * kp {
            codes.resize(m * kp, 0);
        }
        if rows.len() < m {
            rows.resize(m, RowQuant::default());
        }
        if zeros.len() < kp {
            zeros.resize(kp, 0);
        }
        let (codes, rows, zeros) = (&mut codes[..m * kp], &mut rows[..m], &zeros[..kp]);
        let values = x.as_slice().expect("a standard layout");
        codes
            .par_chunks_mut(kp)
            .zip(rows.par_iter_mut())
            .zip(values.par_chunks(k))
            .with_min_len(crate::util::min_rows(k))
            .for_each(|((code, row_quant), row)| quantize_row(row, code, row_quant));
        let (codes, rows) = (&*codes, &*rows);
        let threads = super::threads_for(m, rhs.n, k, parallelism);
        let tasks = plan(m, rhs.n, threads);
        let kernel = Kernel::detect();
        // SAFETY: `plan`'s tasks are disjoint blocks of C that cover it once, so no two
        // running tasks write the same element.
        let job = |task: &Task| unsafe {
            run_task(kernel, out, codes, rows, zeros, rhs, *task, epilogue)
        };
        if threads > 1 && tasks.len() > 1 {
            tasks.par_iter().with_max_len(1).for_each(job);
        } else {
            tasks.iter().for_each(job);
        }
    });
}

/// Codes of one row (its first k bytes; the padding stays zero) and its scale and zero point,
/// compiled for AVX2 where the CPU has it (the same results, eight values per instruction).
fn quantize_row(row: &[f32], codes: &mut [u8], quant: &mut RowQuant) {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        fn with_avx2(_cpu: simd::Avx2, row: &[f32], codes: &mut [u8], quant: &mut RowQuant) {
            quantize_row_with(row, codes, quant);
        }
        if let Some(cpu) = simd::Avx2::try_new() {
            // SAFETY: AVX2, the function's one requirement, is vouched for by `cpu`.
            return unsafe { with_avx2(cpu, row, codes, quant) };
        }
    }
    quantize_row_with(row, codes, quant);
}

#[inline(always)]
fn quantize_row_with(row: &[f32], codes: &mut [u8], quant: &mut RowQuant) {
    let Some((scale, inv_scale, zero)) = activation_params(row) else {
        codes.fill(0);
        let finite = row.iter().all(|v| v.is_finite());
        *quant = RowQuant {
            scale: if finite { 0.0 } else { f32::NAN },
            zero: 0,
        };
        return;
    };
    for (c, &v) in codes.iter_mut().zip(row) {
        // The code is a whole number in [0, 127], so code + 2^23 is exact and its low mantissa
        // byte is the code: a conversion that vectorises (the saturating `as` casts do not).
        *c = (activation_code(v, inv_scale, zero) + 8_388_608.0).to_bits() as u8;
    }
    codes[row.len()..].fill(0);
    *quant = RowQuant {
        scale,
        zero: zero as i32,
    };
}

/// One task's block of C, a stripe of panels at a time (so that the stripe's block of C
/// stays in L2 for its epilogue): for each panel of columns, each panel of MR rows, the
/// integer sums over all of k, dequantized into C (added to it when the epilogue
/// accumulates); then the stripe's bias and activation.
#[allow(clippy::too_many_arguments)]
///
/// # Safety
/// No other code reads or writes the task's block of C meanwhile. (It lies inside C, and
/// the codes cover C's rows: asserted.)
unsafe fn run_task(
    kernel: Kernel,
    out: Out<'_>,
    codes: &[u8],
    rows: &[RowQuant],
    zeros: &[u8],
    rhs: &Int8Rhs,
    task: Task,
    epilogue: Epilogue<'_>,
) {
    let Task { i0, mc, .. } = task;
    let kp = rhs.kp;
    assert!(i0 + mc <= out.m && task.j1 <= panels(out.n) && out.n == rhs.n);
    assert!(codes.len() >= out.m * kp && rows.len() >= out.m && zeros.len() >= kp);
    let stripe = (C_BLOCK_FLOATS / (mc * NR)).max(1);
    for part in task.stripes(stripe) {
        for j in part.j0..part.j1 {
            let panel = Panel {
                b: rhs.panel(j),
                sums: &rhs.sums[j * NR..(j + 1) * NR],
                scales: &rhs.scales[j * NR..(j + 1) * NR],
            };
            let cols = NR.min(rhs.n - j * NR);
            for r0 in (i0..i0 + mc).step_by(MR) {
                let here = MR.min(i0 + mc - r0);
                let a: [&[u8]; MR] = std::array::from_fn(|r| {
                    if r < here {
                        &codes[(r0 + r) * kp..(r0 + r + 1) * kp]
                    } else {
                        zeros
                    }
                });
                let quant: [RowQuant; MR] = std::array::from_fn(|r| {
                    if r < here {
                        rows[r0 + r]
                    } else {
                        RowQuant::default()
                    }
                });
                // SAFETY: rows r0..r0 + here (< m) and columns 16 j..16 j + cols (<= n) lie
                // inside C and inside this task's block (rows i0..i0 + mc, panels j0..j1): no
                // other task writes them.
                let c = unsafe { out.at(r0, j * NR) };
                let tile = Tile {
                    c,
                    ldc: out.ldc,
                    rows: here,
                    cols,
                    accumulate: epilogue.accumulate,
                };
                // SAFETY: as above, the tile's rows x cols lie inside C.
                unsafe { kernel.tile(kp / 4, a, &quant, panel, tile) };
            }
        }
        // SAFETY: the stripe is part of this task's block (the caller's contract).
        unsafe { finish(out, part, epilogue) };
    }
}

/// One panel of the weight: its codes and, per column, `Σ_k q_w` and `s_w`.
#[derive(Clone, Copy)]
pub(super) struct Panel<'a> {
    pub(super) b: &'a [i8],
    pub(super) sums: &'a [i32],
    pub(super) scales: &'a [f32],
}

/// Where a tile of C lands: `rows x cols` values from `c`, rows `ldc` apart.
#[derive(Clone, Copy)]
struct Tile {
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    accumulate: bool,
}

/// `c (+)= ((acc − z · sum) · s_x) · s_w` for one row's NR columns (the portable
/// dequantization; the AVX2 kernel does the same operations in the same order).
pub(super) fn dequantize_row(
    dst: &mut [f32],
    acc: &[i32; NR],
    quant: RowQuant,
    panel: Panel<'_>,
    add: bool,
) {
    for (((d, &a), &sum), &scale) in dst.iter_mut().zip(acc).zip(panel.sums).zip(panel.scales) {
        let v = ((a - quant.zero * sum) as f32 * quant.scale) * scale;
        *d = if add { *d + v } else { v };
    }
}

/// Whether [`Kernel::detect`] picks a vector kernel.
pub(crate) fn has_vector_kernel() -> bool {
    Kernel::detect() != Kernel::Portable
}

/// The kernel [`Kernel::detect`] picks, in words.
pub(crate) fn kernel_name() -> &'static str {
    match Kernel::detect() {
        Kernel::Portable => "portable integer kernel",
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2(_) => "AVX2 vpmaddubsw 6x16 kernel",
        #[cfg(target_arch = "x86_64")]
        Kernel::Vnni(_) => "AVX-512 VNNI vpdpbusd 6x16 kernel",
    }
}

#[cfg(target_arch = "x86_64")]
use super::avx2::int8 as avx2;
#[cfg(target_arch = "x86_64")]
use super::avx512::int8 as vnni;
use super::portable::int8::sums as portable;

/// Which int8 kernel runs. The vector variants hold the capability token of their
/// instruction set ([`crate::simd`]): a `Kernel` that runs them exists only on a CPU that has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    Portable,
    /// `vpmaddubsw` + `vpmaddwd` (AVX2).
    #[cfg(target_arch = "x86_64")]
    Avx2(simd::Avx2),
    /// `vpdpbusd` (AVX-512 VNNI on 256-bit vectors): the four products and their sum in one
    /// instruction, where AVX2 needs two multiplies and an add.
    #[cfg(target_arch = "x86_64")]
    Vnni(simd::Avx512Vnni),
}

impl Kernel {
    /// The fastest kernel this CPU runs.
    fn detect() -> Self {
        *Self::available()
            .last()
            .expect("the portable kernel is always there")
    }

    /// Every kernel this CPU runs, slowest first (the tests compare them all).
    fn available() -> Vec<Self> {
        #[allow(unused_mut)]
        let mut kernels = vec![Kernel::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            kernels.extend(simd::Avx2::try_new().map(Kernel::Avx2));
            kernels.extend(simd::Avx512Vnni::try_new().map(Kernel::Vnni));
        }
        kernels
    }

    /// One tile of C: the sums of [`Kernel::sums`], dequantized with the rows' `quant` and
    /// the panel's column sums and scales, stored (or added) at `tile`.
    ///
    /// # Safety
    /// `tile.rows x tile.cols` values from `tile.c`, rows `tile.ldc` apart, lie inside one
    /// allocation that nothing else touches meanwhile.
    unsafe fn tile(
        self,
        groups: usize,
        a: [&[u8]; MR],
        quant: &[RowQuant; MR],
        panel: Panel<'_>,
        tile: Tile,
    ) {
        assert!(
            a.iter().all(|row| row.len() >= groups * 4) && panel.b.len() >= groups * GROUP_BYTES
        );
        assert!(panel.sums.len() >= NR && panel.scales.len() >= NR);
        assert!(tile.rows <= MR && tile.cols <= NR);
        #[cfg(target_arch = "x86_64")]
        if self != Kernel::Portable {
            // SAFETY (both calls): the CPU features are vouched for by the variant's token;
            // lengths checked above; `c` holds MR rows of NR writable values, `ldc` apart.
            let vector = |c: *mut f32, ldc: usize, accumulate: bool| unsafe {
                match self {
                    Kernel::Vnni(cpu) => {
                        vnni::tile(cpu, groups, a, quant, panel, c, ldc, accumulate)
                    }
                    Kernel::Avx2(cpu) => {
                        avx2::tile(cpu, groups, a, quant, panel, c, ldc, accumulate)
                    }
                    Kernel::Portable => unreachable!("a vector kernel"),
                }
            };
            if tile.rows == MR && tile.cols == NR {
                // The caller vouches for the full MR x NR tile at `tile.c`.
                return vector(tile.c, tile.ldc, tile.accumulate);
            }
            // An edge tile: dequantized into a local tile, then its inside part is stored.
            let mut local = [0.0f32; MR * NR];
            vector(local.as_mut_ptr(), NR, false);
            let corner = (tile.rows, tile.cols);
            // SAFETY: the caller vouches for tile.rows x tile.cols values at `tile.c`.
            unsafe { super::store_edge(&local, NR, tile.c, tile.ldc, corner, tile.accumulate) };
            return;
        }
        let acc = portable(groups, a, panel.b);
        for (r, acc_row) in acc.iter().enumerate().take(tile.rows) {
            // SAFETY: row r < tile.rows of the tile, tile.cols values: inside C.
            let dst =
                unsafe { std::slice::from_raw_parts_mut(tile.c.add(r * tile.ldc), tile.cols) };
            dequantize_row(dst, acc_row, quant[r], panel, tile.accumulate);
        }
    }

    /// `Σ_k a[r][k] · b[k, c]` for the MR rows and the NR columns of panel `b`, over `groups`
    /// groups of 4 k.
    #[cfg(test)]
    fn sums(self, groups: usize, a: [&[u8]; MR], b: &[i8]) -> [[i32; NR]; MR] {
        assert!(a.iter().all(|row| row.len() >= groups * 4) && b.len() >= groups * GROUP_BYTES);
        match self {
            Kernel::Portable => portable(groups, a, b),
            // SAFETY: the CPU features are vouched for by the variant's token; the lengths
            // were checked above.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2(cpu) => unsafe { avx2::sums(cpu, groups, a, b) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Vnni(cpu) => unsafe { vnni::sums(cpu, groups, a, b) },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kernel's sums (AVX2, VNNI where the CPU has them) are the portable (exact
    /// integer) sums, extreme codes included.
    #[test]
    fn every_kernel_gives_the_exact_sums() {
        let groups = 70;
        let rows: Vec<Vec<u8>> = (0..MR)
            .map(|r| {
                (0..4 * groups)
                    .map(|i| ((i * 31 + r * 7) % 128) as u8)
                    .collect()
            })
            .collect();
        let mut b: Vec<i8> = (0..groups * GROUP_BYTES)
            .map(|i| (((i * 53) % 255) as i32 - 127) as i8)
            .collect();
        b[..GROUP_BYTES].fill(-127); // the largest pair sums: 2 · 127 · 127 < 2^15
        let mut first = rows.clone();
        first[0][..4].fill(127);
        for rows in [rows, first] {
            let a: [&[u8]; MR] = std::array::from_fn(|r| rows[r].as_slice());
            let want = portable(groups, a, &b);
            // The portable sums against a direct count.
            for (r, row) in want.iter().enumerate() {
                for (c, &sum) in row.iter().enumerate() {
                    let direct: i32 = (0..4 * groups)
                        .map(|p| {
                            let w = b[(p / 4) * GROUP_BYTES + (c / 8) * 32 + (c % 8) * 4 + p % 4];
                            i32::from(rows[r][p]) * i32::from(w)
                        })
                        .sum();
                    assert_eq!(sum, direct, "row {r} column {c}");
                }
            }
            for kernel in Kernel::available() {
                assert_eq!(kernel.sums(groups, a, &b), want, "{kernel:?}");
            }
        }
    }

    /// A tile dequantized by each kernel: the same bits, for a full tile and an edge tile,
    /// stored or added to what C holds.
    #[test]
    fn every_kernel_dequantizes_a_tile_to_the_same_bits() {
        let groups = 9;
        let rows: Vec<Vec<u8>> = (0..MR)
            .map(|r| {
                (0..4 * groups)
                    .map(|i| ((i * 29 + r * 11) % 128) as u8)
                    .collect()
            })
            .collect();
        let a: [&[u8]; MR] = std::array::from_fn(|r| rows[r].as_slice());
        let b: Vec<i8> = (0..groups * GROUP_BYTES)
            .map(|i| (((i * 37) % 255) as i32 - 127) as i8)
            .collect();
        let sums: Vec<i32> = (0..NR as i32).map(|c| 17 * c - 90).collect();
        let scales: Vec<f32> = (0..NR).map(|c| 1e-3 * (c as f32 + 0.3)).collect();
        let panel = Panel {
            b: &b,
            sums: &sums,
            scales: &scales,
        };
        let quant: [RowQuant; MR] = std::array::from_fn(|r| RowQuant {
            scale: 0.01 + 0.003 * r as f32,
            zero: 40 + 9 * r as i32,
        });
        let ldc = NR + 3;
        let start: Vec<f32> = (0..MR * ldc).map(|i| (i as f32 * 0.7).sin()).collect();
        for (rows, cols) in [(MR, NR), (4, 11)] {
            for accumulate in [false, true] {
                let run = |kernel: Kernel| {
                    let mut c = start.clone();
                    let tile = Tile {
                        c: c.as_mut_ptr(),
                        ldc,
                        rows,
                        cols,
                        accumulate,
                    };
                    // SAFETY: MR rows of ldc >= NR values.
                    unsafe { kernel.tile(groups, a, &quant, panel, tile) };
                    c
                };
                let want = run(Kernel::Portable);
                for kernel in Kernel::available() {
                    assert_eq!(
                        want.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        run(kernel).iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        "{kernel:?} {rows}x{cols}, accumulate {accumulate}"
                    );
                }
                // Outside the tile, C is untouched; inside, it changed.
                for r in 0..MR {
                    for c in 0..ldc {
                        let i = r * ldc + c;
                        if r >= rows || c >= cols {
                            assert_eq!(want[i].to_bits(), start[i].to_bits(), "({r}, {c})");
                        }
                    }
                }
                let acc = portable(groups, a, &b);
                let v = ((acc[1][2] - quant[1].zero * sums[2]) as f32 * quant[1].scale) * scales[2];
                let expect = if accumulate { start[ldc + 2] + v } else { v };
                assert_eq!(want[ldc + 2], expect);
            }
        }
    }

    #[test]
    fn weights_round_trip_through_the_layout() {
        let w = Array2::from_shape_fn((21, 13), |(j, p)| ((j * 13 + p) as f32 * 0.37).sin());
        let packed = Int8Rhs::from_weight(w.view());
        let back = packed.to_weight();
        for (j, (row, back)) in w.outer_iter().zip(back.outer_iter()).enumerate() {
            let step = packed.scales[j];
            for (&v, &q) in row.iter().zip(back.iter()) {
                assert!((v - q).abs() <= 0.5 * step + 1e-7, "{v} vs {q}");
            }
            let sum: i32 = (0..13)
                .map(|p| i32::from(packed.q[Int8Rhs::offset(packed.kp, j / NR, j % NR, p)]))
                .sum();
            assert_eq!(packed.sums[j], sum);
        }
    }
}

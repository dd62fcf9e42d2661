//! The bf16 product on CPUs with AVX-512 BF16: `C = epilogue(A · Bᵀ)` with both operands
//! rounded to bfloat16 and the products summed in f32 by `vdpbf16ps`, which adds two
//! products per 32-bit lane in one instruction (twice an f32 FMA's multiply-adds).
//!
//! - The weight W (n, k) is held as bf16 bits in panels of [`NR`] columns; a panel holds
//!   `kp / 2` pairs of k (k rounded up to even, zero-padded), each pair as 16 columns x 2
//!   values, so that each 32-bit lane of a vector is one column's two consecutive k.
//! - The activations are rounded to bf16 per call (round to nearest even, as
//!   [`round_bf16`](crate::precision::round_bf16)), row by row; the kernel broadcasts each
//!   row's pair of values to all lanes.
//! - A tile of MR x NR f32 sums covers all of k in one order, so the result depends neither
//!   on the thread count nor on the tile's place. The bias and activation run per stripe of
//!   panels, as in the f32 product.
//!
//! CPUs without AVX-512 BF16 keep the bf16 weights in the f32 kernel's layout and widen them
//! as they are loaded ([`super::kernel`]): the same rounded operands, summed in another order.

use std::cell::RefCell;

use crate::scratch::with_thread_local;
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use super::kernel::{MR, NR};
use super::pack::panels;
use super::{C_BLOCK_FLOATS, Out, Task, bf16_bits, finish, plan};
use crate::simd;
use crate::{Epilogue, Parallelism};

/// bf16 values in one pair of k for the NR columns of a panel.
pub(super) const PAIR_VALUES: usize = 2 * NR;

/// A weight W (n, k) held as bf16 bits, in the layout of the `vdpbf16ps` kernel, with the
/// token that says this CPU runs that kernel (so a product on it needs no other check).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Bf16Rhs {
    cpu: simd::Avx512Bf16,
    pub(crate) k: usize,
    pub(crate) n: usize,
    /// k rounded up to even.
    kp: usize,
    /// `panels(n) · kp · NR` values (zero past n and past k).
    b: Vec<u16>,
}

impl Bf16Rhs {
    /// Rounds W (n, k) to bf16 (round to nearest even) and packs it, for the kernel that
    /// `cpu` vouches for.
    pub(crate) fn from_weight(cpu: simd::Avx512Bf16, w: ArrayView2<'_, f32>) -> Self {
        let (n, k) = w.dim();
        let kp = k.next_multiple_of(2);
        let mut b = vec![0u16; panels(n) * kp * NR];
        for (j, row) in w.outer_iter().enumerate() {
            for (p, &v) in row.iter().enumerate() {
                b[Self::offset(kp, j / NR, j % NR, p)] = bf16_bits(v);
            }
        }
        Self { cpu, k, n, kp, b }
    }

    /// Where value (k = p, column `col` of panel `panel`) lives.
    fn offset(kp: usize, panel: usize, col: usize, p: usize) -> usize {
        panel * kp * NR + (p / 2) * PAIR_VALUES + (col / 8) * 16 + (col % 8) * 2 + p % 2
    }

    /// The weight's values, (n, k).
    pub(crate) fn to_weight(&self) -> Array2<f32> {
        Array2::from_shape_fn((self.n, self.k), |(j, p)| {
            let bits = self.b[Self::offset(self.kp, j / NR, j % NR, p)];
            f32::from_bits(u32::from(bits) << 16)
        })
    }

    fn panel(&self, j: usize) -> &[u16] {
        &self.b[j * self.kp * NR..(j + 1) * self.kp * NR]
    }
}

/// The token of the `vdpbf16ps` kernel (AVX-512 BF16 with AVX-512 VL), where this CPU runs it.
pub(crate) fn supported() -> Option<simd::Avx512Bf16> {
    simd::Avx512Bf16::try_new()
}

#[cfg(target_arch = "x86_64")]
use super::avx512::bf16 as avx512;

thread_local! {
    /// The activations' bf16 bits (m rows of kp values) of the product running on this
    /// thread, and a row of zeros for the missing rows of a last panel.
    static BITS: RefCell<(Vec<u16>, Vec<u16>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// `dst = epilogue(x · Bᵀ)` with B held by [`Bf16Rhs`] (shapes checked by the caller: x
/// (m, k), C at `out` (m, n), m, n > 0); the kernel runs on the CPU `rhs` holds the token of.
pub(crate) fn run(
    out: Out<'_>,
    x: ArrayView2<'_, f32>,
    rhs: &Bf16Rhs,
    epilogue: Epilogue<'_>,
    parallelism: Parallelism,
) {
    let (m, k) = x.dim();
    let kp = rhs.kp;
    let x = x.as_standard_layout();
    with_thread_local(&BITS, |(bits, zeros)| {
        if bits.len() < m * kp {
            bits.resize(m * kp, 0);
        }
        if zeros.len() < kp {
            zeros.resize(kp, 0);
        }
        let (bits, zeros) = (&mut bits[..m * kp], &zeros[..kp]);
        let values = x.as_slice().expect("a standard layout");
        bits.par_chunks_mut(kp)
            .zip(values.par_chunks(k))
            .with_min_len(crate::util::min_rows(k))
            .for_each(|(dst, row)| {
                for (d, &v) in dst.iter_mut().zip(row) {
                    *d = bf16_bits(v);
                }
                dst[k..].fill(0);
            });
        let bits = &*bits;
        let threads = super::threads_for(m, rhs.n, k, parallelism);
        let tasks = plan(m, rhs.n, threads);
        // SAFETY: `plan`'s tasks are disjoint blocks of C that cover it once, so no two
        // running tasks write the same element.
        let job = |task: &Task| unsafe { run_task(out, bits, zeros, rhs, *task, epilogue) };
        if threads > 1 && tasks.len() > 1 {
            tasks.par_iter().with_max_len(1).for_each(job);
        } else {
            tasks.iter().for_each(job);
        }
    });
}

/// One task's block of C, a stripe of panels at a time (so that the stripe's block of C
/// stays in L2 for its epilogue): for each panel of columns, each panel of MR rows, the
/// sums over all of k stored into C (added to it when the epilogue accumulates); then the
/// stripe's bias and activation.
///
/// # Safety
/// No other code reads or writes the task's block of C meanwhile. (It lies inside C, and
/// the bits cover C's rows: asserted.)
unsafe fn run_task(
    out: Out<'_>,
    bits: &[u16],
    zeros: &[u16],
    rhs: &Bf16Rhs,
    task: Task,
    epilogue: Epilogue<'_>,
) {
    let Task { i0, mc, .. } = task;
    let kp = rhs.kp;
    assert!(i0 + mc <= out.m && task.j1 <= panels(out.n) && out.n == rhs.n);
    assert!(bits.len() >= out.m * kp && zeros.len() >= kp);
    let stripe = (C_BLOCK_FLOATS / (mc * NR)).max(1);
    for part in task.stripes(stripe) {
        for j in part.j0..part.j1 {
            let b = rhs.panel(j);
            let cols = NR.min(rhs.n - j * NR);
            for r0 in (i0..i0 + mc).step_by(MR) {
                let here = MR.min(i0 + mc - r0);
                let a: [&[u16]; MR] = std::array::from_fn(|r| {
                    if r < here {
                        &bits[(r0 + r) * kp..(r0 + r + 1) * kp]
                    } else {
                        zeros
                    }
                });
                // SAFETY: rows r0..r0 + here (< m) and columns 16 j..16 j + cols (<= n) lie
                // inside C and inside this task's block: no other task writes them.
                unsafe {
                    tile(
                        rhs.cpu,
                        kp / 2,
                        a,
                        b,
                        out.at(r0, j * NR),
                        out.ldc,
                        (here, cols),
                        epilogue.accumulate,
                    )
                };
            }
        }
        // SAFETY: the stripe is part of this task's block (the caller's contract).
        unsafe { finish(out, part, epilogue) };
    }
}

/// One tile of C: `rows x cols` sums from `c`, rows `ldc` apart, stored (or added).
///
/// # Safety
/// Those values lie inside one allocation that nothing else touches meanwhile. (The CPU
/// features, AVX2 + AVX-512 BF16 + AVX-512 VL, are vouched for by `cpu`.)
#[allow(clippy::too_many_arguments)]
unsafe fn tile(
    cpu: simd::Avx512Bf16,
    pairs: usize,
    a: [&[u16]; MR],
    b: &[u16],
    c: *mut f32,
    ldc: usize,
    (rows, cols): (usize, usize),
    accumulate: bool,
) {
    assert!(a.iter().all(|row| row.len() >= 2 * pairs) && b.len() >= pairs * PAIR_VALUES);
    assert!(rows <= MR && cols <= NR);
    #[cfg(target_arch = "x86_64")]
    {
        if rows == MR && cols == NR {
            // SAFETY: lengths checked above; `cpu` vouches for the CPU, the caller for the tile.
            return unsafe { avx512::tile(cpu, pairs, a, b, c, ldc, accumulate) };
        }
        // An edge tile: summed into a local tile, then its inside part is stored.
        let mut local = [0.0f32; MR * NR];
        // SAFETY: as above, into the local MR x NR buffer, rows NR apart; then the caller's
        // rows x cols values at `c`.
        unsafe {
            avx512::tile(cpu, pairs, a, b, local.as_mut_ptr(), NR, false);
            super::store_edge(&local, NR, c, ldc, (rows, cols), accumulate);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (cpu, c, ldc, accumulate);
        unreachable!("no token of AVX-512 BF16 exists off x86-64");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout round trip: the held values are W rounded to bf16, value by value.
    #[test]
    fn weights_round_trip_through_the_layout() {
        let Some(cpu) = supported() else {
            return; // the layout exists only for the kernel
        };
        let w = Array2::from_shape_fn((37, 11), |(j, p)| ((j * 13 + p * 7) as f32 * 0.37).sin());
        let held = Bf16Rhs::from_weight(cpu, w.view()).to_weight();
        for (a, b) in held.iter().zip(&w) {
            assert_eq!(a.to_bits(), crate::precision::round_bf16(*b).to_bits());
        }
    }
}

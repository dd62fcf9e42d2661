//! Packing: the operands rearranged into the panels the micro-kernels read, so that each
//! step of a kernel loads consecutive memory.
//!
//! - B (k, n) is cut into blocks of `KC` rows; within a block of `kc` rows, panel `j` holds
//!   columns `16j..16j+16` as `kc` runs of [`NR`] values (zero past column n).
//! - A (m, k) is packed per task and block: panel `i` holds rows `6i..6i+6` as `kc` runs of
//!   [`MR`] values (zero past the last row).

use std::marker::PhantomData;

use ndarray::ArrayView2;
use rayon::prelude::*;

use super::kernel::{MR, NR};

/// B matrices with at least this many elements are packed on the rayon pool.
const PARALLEL_PACK_MIN: usize = 1 << 16;

/// Steps of A a transposed pack reads before it writes them to the panels.
const TRANSPOSED_STEPS: usize = 8;

/// Rows of B in one block: a B panel (KC x NR) and an A panel (KC x MR) stay in L1.
pub(crate) const KC: usize = 256;

/// A strided read-only matrix borrowed from an ndarray view for `'a`: element (r, c) at
/// `ptr + r * rs + c * cs`. The fields are private: one is only made by [`Strided::of`], so
/// its pointer, shape and strides always describe a live view.
#[derive(Clone, Copy)]
pub(crate) struct Strided<'a> {
    ptr: *const f32,
    rows: usize,
    cols: usize,
    rs: isize,
    cs: isize,
    _view: PhantomData<&'a [f32]>,
}

// SAFETY: a `Strided` is built from a shared ndarray view that it borrows for `'a`, and it is
// only read through, so sharing it across threads is sharing `&[f32]`.
unsafe impl Send for Strided<'_> {}
// SAFETY: as for Send.
unsafe impl Sync for Strided<'_> {}

impl<'a> Strided<'a> {
    /// The view's pointer, shape and strides (in elements), borrowed for as long as the view.
    pub(crate) fn of(view: &ArrayView2<'a, f32>) -> Self {
        let (rows, cols) = view.dim();
        Self {
            ptr: view.as_ptr(),
            rows,
            cols,
            rs: view.strides()[0],
            cs: view.strides()[1],
            _view: PhantomData,
        }
    }

    /// Rows.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Columns.
    pub(crate) fn cols(&self) -> usize {
        self.cols
    }

    /// The row stride when rows are contiguous and laid out forwards (`cs = 1`, `rs >= 0`).
    pub(crate) fn row_major_stride(&self) -> Option<usize> {
        usize::try_from(self.rs).ok().filter(|_| self.cs == 1)
    }

    /// Element (r, c).
    ///
    /// # Safety
    /// `r < rows` and `c < cols` (checked in debug builds), or `c == cols` for a pointer one
    /// past a row's end that is not read through.
    #[inline(always)]
    pub(crate) unsafe fn at(&self, r: usize, c: usize) -> *const f32 {
        debug_assert!(
            r < self.rows && c <= self.cols,
            "({r}, {c}) of {} x {}",
            self.rows,
            self.cols
        );
        // SAFETY: the caller's contract: an element of the view.
        unsafe { self.ptr.offset(r as isize * self.rs + c as isize * self.cs) }
    }
}

/// Number of NR-wide panels covering `n` columns.
pub(crate) fn panels(n: usize) -> usize {
    n.div_ceil(NR)
}

/// One step of a B panel: NR floats on a 64-byte cache line of their own, so that each
/// step of a kernel loads one line, never two (the per-call scratch; a kept [`super::PackedRhs`]
/// is a plain `Vec<f32>` the size of the weight, so that packing a model's weights one by one
/// reuses each freed weight's memory instead of leaving it as a hole in the heap).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[repr(C, align(64))]
pub(crate) struct Line(pub(crate) [f32; NR]);

/// The floats of `lines`, in order.
fn floats_mut(lines: &mut [Line]) -> &mut [f32] {
    // SAFETY: `Line` is `repr(C)` around `[f32; NR]` with size NR * 4 = 64 = its alignment
    // (no padding), so `len` lines are `len * NR` consecutive, initialised floats; the
    // borrow is unique.
    unsafe { std::slice::from_raw_parts_mut(lines.as_mut_ptr().cast::<f32>(), lines.len() * NR) }
}

/// The number of floats B (k, n) takes packed: k steps of every NR-wide panel.
pub(crate) fn packed_len(k: usize, n: usize) -> usize {
    k * panels(n) * NR
}

/// Lines enough for B (k, n) packed, in `lines` (grown, never shrunk), as floats.
pub(crate) fn lines_for(k: usize, n: usize, lines: &mut Vec<Line>) -> &mut [f32] {
    let need = k * panels(n);
    if lines.len() < need {
        lines.resize(need, Line::default());
    }
    &mut floats_mut(lines)[..packed_len(k, n)]
}

/// Packs all of B (k, n) into `out` ([`packed_len`] floats; every value is written, so it
/// need not be cleared first).
pub(crate) fn pack_rhs(b: Strided<'_>, out: &mut [f32]) {
    let (k, n) = (b.rows, b.cols);
    let width = panels(n) * NR;
    assert!(
        out.len() >= k * width,
        "{} floats for a packed {k} x {n}",
        out.len()
    );
    let parallel = k * n >= PARALLEL_PACK_MIN && rayon::current_num_threads() > 1;
    for p0 in (0..k).step_by(KC) {
        let kc = KC.min(k - p0);
        let block = &mut out[p0 * width..(p0 + kc) * width];
        let job = |(j, panel): (usize, &mut [f32])| pack_rhs_panel(b, p0, kc, j, panel);
        if parallel {
            block.par_chunks_mut(kc * NR).enumerate().for_each(job);
        } else {
            block.chunks_exact_mut(kc * NR).enumerate().for_each(job);
        }
    }
}

/// Panel `j` (columns `16 j..`) of the block of B rows `p0..p0 + kc` (`kc * NR` values,
/// zero past column n), reading along B's unit stride.
fn pack_rhs_panel(b: Strided<'_>, p0: usize, kc: usize, j: usize, panel: &mut [f32]) {
    assert!(p0 + kc <= b.rows && j * NR < b.cols && panel.len() >= kc * NR);
    let cols = NR.min(b.cols - j * NR);
    if b.cs == 1 {
        for (kk, dst) in panel.chunks_exact_mut(NR).take(kc).enumerate() {
            // SAFETY: row p0 + kk < k of B (asserted above), columns 16 j .. 16 j + cols <= n,
            // contiguous.
            let src = unsafe { std::slice::from_raw_parts(b.at(p0 + kk, j * NR), cols) };
            copy_padded::<NR>(dst, src);
        }
    } else {
        for jj in 0..NR {
            if jj >= cols {
                panel.iter_mut().skip(jj).step_by(NR).for_each(|v| *v = 0.0);
                continue;
            }
            for (kk, v) in panel.iter_mut().skip(jj).step_by(NR).take(kc).enumerate() {
                // SAFETY: row p0 + kk < k (asserted above), column 16 j + jj < n.
                *v = unsafe { *b.at(p0 + kk, j * NR + jj) };
            }
        }
    }
}

/// Packs rows `i0..i0 + mc` and columns `p0..p0 + kc` of A into `out` (MR-row panels, the
/// last one zero-padded). `out` must hold `mc.div_ceil(MR) * MR * kc` values.
pub(crate) fn pack_lhs(
    a: Strided<'_>,
    i0: usize,
    mc: usize,
    p0: usize,
    kc: usize,
    out: &mut [f32],
) {
    let panels_here = mc.div_ceil(MR);
    assert!(
        i0 + mc <= a.rows && p0 + kc <= a.cols && out.len() >= panels_here * MR * kc,
        "rows {i0}..{} and columns {p0}..{} of a {} x {} A into {} floats",
        i0 + mc,
        p0 + kc,
        a.rows,
        a.cols,
        out.len()
    );
    if a.rs == 1 && a.cs != 1 {
        // A transposed view (the usual dW = dYᵀ X): step kk of every panel is a piece of
        // one contiguous run of mc values. Read TRANSPOSED_STEPS such runs, then write each
        // panel's steps for them together: writing every panel at each step would touch
        // mc / MR places `kc * MR` floats apart, which share L1 sets (a panel of 256 steps is
        // 6 KiB) and evict each other.
        for k0 in (0..kc).step_by(TRANSPOSED_STEPS) {
            let steps = TRANSPOSED_STEPS.min(kc - k0);
            let runs: [&[f32]; TRANSPOSED_STEPS] = std::array::from_fn(|s| {
                if s < steps {
                    // SAFETY: column p0 + k0 + s < k of A, rows i0 .. i0 + mc <= m
                    // (asserted above), contiguous (rs = 1).
                    unsafe { std::slice::from_raw_parts(a.at(i0, p0 + k0 + s), mc) }
                } else {
                    &[]
                }
            });
            for (i, panel) in out.chunks_exact_mut(kc * MR).take(panels_here).enumerate() {
                let dst = &mut panel[k0 * MR..(k0 + steps) * MR];
                for (step, run) in dst.chunks_exact_mut(MR).zip(&runs) {
                    copy_padded::<MR>(step, &run[i * MR..(i * MR + MR).min(mc)]);
                }
            }
        }
        return;
    }
    if a.cs == 1 {
        // Row-major A: each step of a panel takes one value from each of its MR rows.
        for (i, panel) in out.chunks_exact_mut(kc * MR).take(panels_here).enumerate() {
            let rows = MR.min(mc - i * MR);
            let row0 = i0 + i * MR;
            let src: [&[f32]; MR] = std::array::from_fn(|r| {
                if r < rows {
                    // SAFETY: row row0 + r < m of A, columns p0..p0 + kc <= k (asserted
                    // above), contiguous.
                    unsafe { std::slice::from_raw_parts(a.at(row0 + r, p0), kc) }
                } else {
                    &[]
                }
            });
            if rows == MR {
                for (kk, step) in panel.chunks_exact_mut(MR).enumerate() {
                    for (v, row) in step.iter_mut().zip(&src) {
                        *v = row[kk];
                    }
                }
            } else {
                for (kk, step) in panel.chunks_exact_mut(MR).enumerate() {
                    for (r, v) in step.iter_mut().enumerate() {
                        *v = if r < rows { src[r][kk] } else { 0.0 };
                    }
                }
            }
        }
        return;
    }
    for (i, panel) in out.chunks_exact_mut(kc * MR).take(panels_here).enumerate() {
        let rows = MR.min(mc - i * MR);
        let row0 = i0 + i * MR;
        for r in 0..MR {
            if r >= rows {
                panel.iter_mut().skip(r).step_by(MR).for_each(|v| *v = 0.0);
                continue;
            }
            for (kk, v) in panel.iter_mut().skip(r).step_by(MR).take(kc).enumerate() {
                // SAFETY: row row0 + r < m and column p0 + kk < k of A (asserted above).
                *v = unsafe { *a.at(row0 + r, p0 + kk) };
            }
        }
    }
}

/// `dst = src` followed by zeros, for `dst` of `L` values; the full-length case is a
/// fixed-size copy (a few vector moves, no call to memcpy for a handful of floats).
#[inline(always)]
fn copy_padded<const L: usize>(dst: &mut [f32], src: &[f32]) {
    if let (Ok(d), Ok(s)) = (
        <&mut [f32; L]>::try_from(&mut *dst),
        <&[f32; L]>::try_from(src),
    ) {
        *d = *s;
    } else {
        dst[..src.len()].copy_from_slice(src);
        dst[src.len()..].fill(0.0);
    }
}

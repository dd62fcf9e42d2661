//! Our single-precision GEMM, the driver (the packed formats are in `packed.rs`, the planner
//! in `plan.rs`, the packing in `pack.rs`, the micro-kernels in `kernel.rs`, `int8.rs` and
//! `bf16.rs`): `C = epilogue(A · B)` with B packed once.
//!
//! A BLIS-style blocked product: B (k, n) is packed into [`PackedRhs`] (once per weight when
//! the caller keeps it), A is packed per task into MR-row panels of KC columns (or read in
//! place), and a micro-kernel chosen at run time multiplies pairs of A panels by pairs of B
//! panels straight into C: 12 x 32 tiles in AVX-512 (12 x 16 for an odd last B panel), 6 x 16
//! in AVX2 + FMA, else portable Rust. The epilogue (bias, a row function, and adding
//! to what C held) runs on each task's block of C while it is still in cache, so a bias and
//! a function of each row cost no extra sweep over memory.
//!
//! Each element of C is summed in the same order whatever the thread count (the k blocks in
//! order, each block's steps in order), so results do not depend on how many threads ran.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod bf16;
mod int8;
mod kernel;
mod pack;
mod packed;
mod plan;
mod portable;

use std::cell::RefCell;
use std::marker::PhantomData;

use ndarray::{ArrayView2, ArrayViewMut2};
use rayon::prelude::*;

use crate::epilogue::{finish_row, scale_row};
use crate::error::{LinalgError, shape_error};
use crate::precision::Precision;
use crate::scratch::with_thread_local;
use crate::{Epilogue, Parallelism};
use kernel::{APanel, Kernel, MR, NR};
use pack::{KC, Line, Strided, lines_for, pack_lhs, pack_rhs, panels};
pub use packed::PackedRhs;
use packed::{PackedView, PanelsRef, Rhs, bf16_bits};
pub use plan::row_blocks;
use plan::{Task, plan, threads_for};

/// The most floats of C one task sums over all of k before moving on (256 KiB, in L2).
const C_BLOCK_FLOATS: usize = 64 * 1024;
/// The AVX-512 kernel packs a row-major A (rather than reading it in place) for tasks of at
/// least this many B panels: a product with a narrow B (a classifier head) reads each value
/// of A once or twice, and packing would double that.
const PACK_ALL_MIN_PANELS: usize = 4;
thread_local! {
    /// The packed A block of the task running on this thread (the one scratch strategy,
    /// [`crate::with_thread_local`]).
    static LHS_PANELS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// B packed per call by products whose B is not kept packed.
    static RHS_PANELS: RefCell<Vec<Line>> = const { RefCell::new(Vec::new()) };
    /// A rounded to bf16 for the f32 kernel's bf16 products.
    static ROUNDED_LHS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// A row-major stand-in for a C whose rows are not contiguous (a transposed C).
    static C_ROWS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Whether this CPU runs a vector f32 kernel (x86-64 with AVX2 and FMA, or AVX-512).
pub(crate) fn has_vector_kernel() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        Kernel::detect() != Kernel::Portable
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The f32 micro-kernel this CPU runs, in words (for reports): every kernel sums each element
/// in the same order, and the vector ones give the same bits.
pub fn f32_kernel_name() -> &'static str {
    Kernel::detect().name()
}

/// Whether int8 products run a vector integer kernel on this CPU (AVX-512 VNNI's
/// `vpdpbusd`, else AVX2's `vpmaddubsw`); otherwise a portable one gives the same bits, more
/// slowly.
pub fn has_int8_kernel() -> bool {
    int8::has_vector_kernel()
}

/// The int8 kernel this CPU runs, in words (for reports): every kernel gives the same bits.
pub fn int8_kernel_name() -> &'static str {
    int8::kernel_name()
}

/// Whether bf16 products run the `vdpbf16ps` kernel on this CPU (AVX-512 BF16); otherwise
/// the f32 kernel widens the bf16 weights (the same operands, at f32 speed).
pub fn has_bf16_kernel() -> bool {
    bf16::supported().is_some()
}

/// `dst = lhs · rhs` (or `dst += lhs · rhs`), any strides, B packed on the fly into this
/// thread's scratch. Shapes were checked by the caller (lhs (m, k), rhs (k, n), dst (m, n),
/// all non-empty).
///
/// When B is at least twice as wide as A is tall (a weight gradient `dW += dYᵀ X` of a layer
/// that narrows, fc2), `Cᵀ = Bᵀ Aᵀ` is computed instead, so that the smaller operand is the
/// one packed into B's panels (fc2's dW at the small config, 2 threads: 13.8 -> 12.0 ms).
/// The bits are the same: each element is the same sum in the same order, and a fused
/// multiply-add does not depend on the order of its two factors.
pub(crate) fn gemm_unpacked(
    dst: ArrayViewMut2<'_, f32>,
    lhs: ArrayView2<'_, f32>,
    rhs: ArrayView2<'_, f32>,
    epilogue: Epilogue<'_>,
    parallelism: Parallelism,
) -> Result<(), LinalgError> {
    let (k, n) = rhs.dim();
    let m = lhs.nrows();
    if n >= 2 * m && epilogue.sums_only() {
        return gemm_unpacked(dst.reversed_axes(), rhs.t(), lhs.t(), epilogue, parallelism);
    }
    with_thread_local(&RHS_PANELS, |lines| {
        let data = lines_for(k, n, lines);
        pack_rhs(Strided::of(&rhs), data);
        let packed = PackedView {
            k,
            n,
            data: PanelsRef::F32(data),
        };
        product(
            dst,
            lhs,
            Rhs::Panels(packed),
            epilogue,
            parallelism,
            Kernel::detect(),
        )
    })
}

/// C (m rows of n values, rows `ldc` apart), exclusively borrowed for `'c` and shared by the
/// tasks that write disjoint blocks of it.
#[derive(Clone, Copy)]
struct Out<'c> {
    ptr: *mut f32,
    ldc: usize,
    m: usize,
    n: usize,
    _c: PhantomData<&'c mut [f32]>,
}
// SAFETY: tasks write disjoint (row block x panel range) blocks of one exclusive borrow of C.
unsafe impl Send for Out<'_> {}
// SAFETY: as for Send.
unsafe impl Sync for Out<'_> {}

impl<'c> Out<'c> {
    /// C of a row-major (m, n) slice (rows n apart).
    fn of_rows(rows: &'c mut [f32], m: usize, n: usize) -> Self {
        assert!(
            rows.len() >= m * n,
            "{} values for a {m} x {n} C",
            rows.len()
        );
        Self {
            ptr: rows.as_mut_ptr(),
            ldc: n,
            m,
            n,
            _c: PhantomData,
        }
    }

    /// C of a view whose rows are contiguous, `ldc` apart (`ldc >= n`, or m = 1).
    fn of_view(view: &'c mut ArrayViewMut2<'_, f32>, ldc: usize) -> Self {
        let (m, n) = view.dim();
        assert!(
            m <= 1 || (ldc >= n && view.strides()[0] as usize == ldc),
            "rows of {n} values {ldc} apart"
        );
        assert!(n <= 1 || view.strides()[1] == 1, "contiguous rows");
        Self {
            ptr: view.as_mut_ptr(),
            ldc,
            m,
            n,
            _c: PhantomData,
        }
    }

    /// Element (r, j) of C.
    ///
    /// # Safety
    /// `r < m` and `j < n` (checked in debug builds), or `j == n` for a pointer one past a
    /// row's end that is not read through.
    #[inline(always)]
    unsafe fn at(self, r: usize, j: usize) -> *mut f32 {
        debug_assert!(
            r < self.m && j <= self.n,
            "({r}, {j}) of {} x {}",
            self.m,
            self.n
        );
        // SAFETY: the caller's contract: inside C's allocation.
        unsafe { self.ptr.add(r * self.ldc + j) }
    }
}

/// `dst = epilogue(lhs · rhs)`: lhs (m, k) with any strides, rhs packed (k, n), dst (m, n).
pub(crate) fn gemm_packed(
    dst: ArrayViewMut2<'_, f32>,
    lhs: ArrayView2<'_, f32>,
    rhs: &PackedRhs,
    epilogue: Epilogue<'_>,
    parallelism: Parallelism,
) -> Result<(), LinalgError> {
    product(
        dst,
        lhs,
        rhs.view(),
        epilogue,
        parallelism,
        Kernel::detect(),
    )
}

/// [`gemm_packed`] on a borrowed packing.
/// (The f32 panels are summed by `kernel`: [`Kernel::detect`]'s, or any the CPU runs, in tests.)
fn product(
    mut dst: ArrayViewMut2<'_, f32>,
    lhs: ArrayView2<'_, f32>,
    rhs: Rhs<'_>,
    epilogue: Epilogue<'_>,
    parallelism: Parallelism,
    kernel: Kernel,
) -> Result<(), LinalgError> {
    let (m, k) = lhs.dim();
    let n = rhs.n();
    if k != rhs.k() {
        return Err(shape_error(
            "matmul left operand",
            format!(
                "(m, {}) to match the packed right operand's {} rows",
                rhs.k(),
                rhs.k()
            ),
            lhs.shape(),
        ));
    }
    if dst.dim() != (m, n) {
        return Err(shape_error(
            "matmul destination",
            format!("({m}, {n})"),
            dst.shape(),
        ));
    }
    crate::epilogue::check_epilogue(&epilogue, m, n)?;
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        // An empty sum: C = act(bias) (or act(C + bias)), for every kernel alike.
        if !epilogue.accumulate {
            dst.fill(0.0);
        }
        let zeros = vec![0.0f32; n];
        let bias = epilogue.bias.unwrap_or(&zeros);
        let mut row_values = vec![0.0f32; n];
        for (r, mut row) in dst.rows_mut().into_iter().enumerate() {
            row_values.iter_mut().zip(&row).for_each(|(v, &c)| *v = c);
            if epilogue.bias.is_some() || epilogue.map.is_some() {
                finish_row(&mut row_values, bias, epilogue.map);
            }
            if let Some(scale) = epilogue.scale {
                scale_row(&mut row_values, &scale[r * n..(r + 1) * n]);
            }
            row.iter_mut().zip(&row_values).for_each(|(c, &v)| *c = v);
        }
        return Ok(());
    }
    let unit_rows = dst.strides()[1] == 1 || n == 1;
    let ldc = usize::try_from(dst.strides()[0])
        .ok()
        .filter(|&s| s >= n || m == 1);
    match (unit_rows, ldc) {
        (true, Some(ldc)) => {
            let out = Out::of_view(&mut dst, if m == 1 { n } else { ldc });
            run(out, m, lhs, rhs, epilogue, parallelism, kernel);
        }
        _ => with_thread_local(&C_ROWS, |buf| {
            // C's rows are not contiguous (a transposed C, as for the dW of a wide product):
            // compute into a row-major scratch, copied in and out block by block (an
            // element-wise copy between the two layouts misses the cache at every step).
            if buf.len() < m * n {
                buf.resize(m * n, 0.0);
            }
            let mut rows = ArrayViewMut2::from_shape((m, n), &mut buf[..m * n])
                .expect("the scratch holds m x n values");
            if epilogue.accumulate {
                assign_blocked(rows.view_mut(), dst.view());
            }
            // Without `accumulate` the kernels overwrite every element of C, so stale values
            // in the scratch never show.
            let values = rows.as_slice_mut().expect("a standard-layout scratch view");
            let out = Out::of_rows(values, m, n);
            run(out, m, lhs, rhs, epilogue, parallelism, kernel);
            assign_blocked(dst, rows.view());
        }),
    }
    Ok(())
}

/// `dst = src` in square blocks, so that when one of them is transposed both stay in cache;
/// a transposed standard layout on one side (the usual case) is copied slice to slice.
fn assign_blocked(mut dst: ArrayViewMut2<'_, f32>, src: ArrayView2<'_, f32>) {
    const BLOCK: usize = 32;
    let (m, n) = dst.dim();
    let transposed_copy = |to: &mut [f32], from: &[f32], (m, n): (usize, usize)| {
        // to (m, n) row-major = from (n, m) row-major, transposed; blocks of rows on the pool.
        to.par_chunks_mut(BLOCK * n)
            .enumerate()
            .for_each(|(block, rows)| {
                let i0 = block * BLOCK;
                for j0 in (0..n).step_by(BLOCK) {
                    for (r, row) in rows.chunks_exact_mut(n).enumerate() {
                        let i = i0 + r;
                        for j in j0..(j0 + BLOCK).min(n) {
                            row[j] = from[j * m + i];
                        }
                    }
                }
            });
    };
    if let (Some(to), Some(from)) = (dst.as_slice_mut(), src.t().to_slice()) {
        return transposed_copy(to, from, (m, n));
    }
    if let (Some(to), Some(from)) = (
        dst.view_mut().reversed_axes().as_slice_mut(),
        src.as_slice(),
    ) {
        return transposed_copy(to, from, (n, m));
    }
    for i0 in (0..m).step_by(BLOCK) {
        let i1 = (i0 + BLOCK).min(m);
        for j0 in (0..n).step_by(BLOCK) {
            let j1 = (j0 + BLOCK).min(n);
            dst.slice_mut(ndarray::s![i0..i1, j0..j1])
                .assign(&src.slice(ndarray::s![i0..i1, j0..j1]));
        }
    }
}

/// The product into C at `out` (shapes checked, m, n > 0).
fn run(
    out: Out,
    m: usize,
    lhs: ArrayView2<'_, f32>,
    rhs: Rhs<'_>,
    epilogue: Epilogue<'_>,
    parallelism: Parallelism,
    kernel: Kernel,
) {
    match rhs {
        Rhs::Panels(
            panels @ PackedView {
                data: PanelsRef::Bf16(_),
                ..
            },
        ) => {
            // The f32 kernel widens the bf16 weight; the input is rounded to bf16 here, so
            // that both operands are, as in the `vdpbf16ps` product.
            let k = lhs.ncols();
            with_thread_local(&ROUNDED_LHS, |buf| {
                if buf.len() < m * k {
                    buf.resize(m * k, 0.0);
                }
                let mut rounded = ArrayViewMut2::from_shape((m, k), &mut buf[..m * k])
                    .expect("the buffer holds m x k values");
                crate::precision::quantize_rows_into(
                    lhs,
                    rounded.view_mut(),
                    Precision::Bf16,
                    false,
                )
                .expect("a standard-layout buffer of lhs's shape");
                run_panels(
                    out,
                    m,
                    rounded.view(),
                    panels,
                    epilogue,
                    parallelism,
                    kernel,
                );
            });
        }
        Rhs::Panels(panels) => run_panels(out, m, lhs, panels, epilogue, parallelism, kernel),
        Rhs::Int8(q) => int8::run(out, lhs, q, epilogue, parallelism),
        Rhs::Bf16Dot(q) => bf16::run(out, lhs, q, epilogue, parallelism),
    }
}

/// The blocked f32 product into C at `out` (shapes checked, m, n > 0).
fn run_panels(
    out: Out,
    m: usize,
    lhs: ArrayView2<'_, f32>,
    rhs: PackedView<'_>,
    epilogue: Epilogue<'_>,
    parallelism: Parallelism,
    kernel: Kernel,
) {
    let a = Strided::of(&lhs);
    let threads = threads_for(m, rhs.n, rhs.k, parallelism);
    let tasks = plan(m, rhs.n, threads);
    // SAFETY: `plan`'s tasks are disjoint blocks of C (rows i0..i0 + mc x panels j0..j1) that
    // together cover it once (tested), so no two running tasks write the same element.
    let job = |task: &Task| unsafe { run_task(kernel, out, a, &rhs, epilogue, *task) };
    if threads > 1 && tasks.len() > 1 {
        tasks.par_iter().with_max_len(1).for_each(job);
    } else {
        tasks.iter().for_each(job);
    }
}

/// One task: A's rows are read in place when A is row-major (only the rows past the last
/// whole pair of MR-row panels are packed, zero-padded to a pair), else packed for every
/// block of KC columns; then, a few panels of C's columns at a time (a stripe, so that the
/// C block being summed stays in L2), each block of A is multiplied with every B panel, and
/// the epilogue runs over the stripe.
///
/// Every tile is 2·MR rows (a pair of row panels) by two B panels ([`Kernel::run_tile`]),
/// or by one for an odd last panel. A tile that reaches past C's last row or column is
/// summed into a local buffer, from which its part inside C is stored: the zero rows that
/// pad A cost a little work, and no row is ever summed by a narrower, slower kernel.
///
/// # Safety
/// No other code reads or writes the task's block of C (rows `i0..i0 + mc`, panels
/// `j0..j1`) while this runs. (The block lies inside C: asserted; A's and B's shapes match
/// C's: asserted.)
unsafe fn run_task(
    kernel: Kernel,
    out: Out<'_>,
    a: Strided<'_>,
    rhs: &PackedView<'_>,
    epilogue: Epilogue<'_>,
    task: Task,
) {
    const PAIR: usize = 2 * MR;
    let Task { i0, mc, .. } = task;
    let (k, n) = (rhs.k, rhs.n);
    assert!(i0 + mc <= out.m && task.j1 <= panels(out.n) && out.n == n && a.rows() == out.m);
    assert!(a.cols() == k);
    let stripe = (C_BLOCK_FLOATS / (mc * NR)).max(1);
    // Rows read in place: unit column stride, non-negative row stride; but not for the
    // AVX-512 kernels when each A block meets several B panels: twelve rows read in place
    // are twelve streams (which share an L1 set when rows are 4 KiB apart), and one packed
    // panel pair costs less than that (seed fc2, 1 thread: 99 -> 107 GFLOP/s). (Copying the
    // rows to a stride that spreads them over the L1 sets instead was no faster: packing a
    // block costs what reading it from memory costs.)
    let pack_all = kernel.is_avx512() && task.j1 - task.j0 >= PACK_ALL_MIN_PANELS;
    let lda = a.row_major_stride().filter(|_| !pack_all);
    // The pairs of row panels read in place, and the rows packed after them.
    let in_place_pairs = if lda.is_some() { mc / PAIR } else { 0 };
    let packed_rows = mc - in_place_pairs * PAIR;
    let pairs = in_place_pairs + packed_rows.div_ceil(PAIR);
    // The packed rows padded to whole pairs: `pack_lhs` zero-pads a partial last panel, and
    // the panel past it (when the rows fill an odd number of panels) is zeroed here.
    let padded_rows = packed_rows.div_ceil(PAIR) * PAIR;
    // With one stripe each block of A is used once: pack it just before, so that it goes
    // from the pack to the kernel through L2 (the dW products, k = tokens: 2.7 MB of
    // packed A per task would otherwise be written out to memory and read back).
    let one_stripe = task.stripes(stripe).nth(1).is_none();
    let block_len = padded_rows * KC.min(k);
    let blocks = if one_stripe { 1 } else { k.div_ceil(KC) };
    with_thread_local(&LHS_PANELS, |buf| {
        let need = block_len * blocks;
        if buf.len() < need {
            buf.resize(need, 0.0);
        }
        let packed = &mut buf[..need];
        let pack_block = |p0: usize, packed: &mut [f32]| {
            let kc = KC.min(k - p0);
            let at = if one_stripe { 0 } else { block_len * (p0 / KC) };
            let block = &mut packed[at..][..padded_rows * kc];
            pack_lhs(a, i0 + in_place_pairs * PAIR, packed_rows, p0, kc, block);
            block[packed_rows.div_ceil(MR) * MR * kc..].fill(0.0);
        };
        if padded_rows > 0 && !one_stripe {
            (0..k).step_by(KC).for_each(|p0| pack_block(p0, packed));
        }
        for part in task.stripes(stripe) {
            for p0 in (0..k).step_by(KC) {
                let kc = KC.min(k - p0);
                if padded_rows > 0 && one_stripe {
                    pack_block(p0, packed);
                }
                let at = if one_stripe { 0 } else { block_len * (p0 / KC) };
                let block = &packed[at..][..padded_rows * kc];
                let add = epilogue.accumulate || p0 > 0;
                for pair in 0..pairs {
                    let row0 = i0 + pair * PAIR;
                    let rows = PAIR.min(i0 + mc - row0);
                    let a_panel = match lda.filter(|_| pair < in_place_pairs) {
                        // SAFETY: rows row0..row0 + 2 MR (< i0 + mc <= m, a whole pair) and
                        // columns p0..p0 + kc of A: inside the view.
                        Some(lda) => APanel::Rows(unsafe { a.at(row0, p0) }, lda),
                        None => {
                            APanel::Packed(block[(pair - in_place_pairs) * PAIR * kc..].as_ptr())
                        }
                    };
                    let mut j = part.j0;
                    while j < part.j1 {
                        // Two panels of B when there are two left in the stripe, else one.
                        let count = if j + 1 < part.j1 { 2 } else { 1 };
                        let b_panels = rhs.panels(p0, kc, j, count);
                        let cols = (count * NR).min(n - j * NR);
                        let run = |c: *mut f32, ldc: usize, add: bool| {
                            // SAFETY: the caller's promise for a 2 MR x count NR tile at `c`,
                            // rows ldc apart; A's two panels follow each other (the next MR
                            // rows in place, or the next packed panel of the block, zero
                            // rows included), and B's panels are consecutive.
                            unsafe {
                                if count == 2 {
                                    kernel.run_tile::<2>(kc, a_panel, b_panels, c, ldc, add)
                                } else {
                                    kernel.run_tile::<1>(kc, a_panel, b_panels, c, ldc, add)
                                }
                            }
                        };
                        // SAFETY: row row0 < m, column 16 j < n: inside C; the task owns
                        // rows i0..i0 + mc and panels j0..j1, so no other task touches
                        // this tile.
                        let c = unsafe { out.at(row0, j * NR) };
                        if rows == PAIR && cols == count * NR {
                            // The whole tile lies inside C (rows and columns checked).
                            run(c, out.ldc, add);
                        } else {
                            let mut local = [0.0f32; 2 * MR * 2 * NR];
                            run(local.as_mut_ptr(), count * NR, false);
                            // SAFETY: the tile's rows x cols corner lies inside C and
                            // inside this task's block (both clipped above).
                            unsafe {
                                store_edge(&local, count * NR, c, out.ldc, (rows, cols), add)
                            };
                        }
                        j += count;
                    }
                }
            }
            // The stripe is summed: its epilogue while its block of C is still in L2.
            // SAFETY: the stripe is part of this task's block (the caller's contract).
            unsafe { finish(out, part, epilogue) };
        }
    });
}

/// Stores (or adds) the `rows x cols` corner of a local tile (rows `width` floats apart)
/// at `c`, rows `ldc` apart: how every kernel finishes a tile at C's bottom or right edge.
///
/// # Safety
/// `rows x cols` fits in the tile (checked), and those values from `c` lie inside one
/// allocation that nothing else touches meanwhile.
unsafe fn store_edge(
    tile: &[f32],
    width: usize,
    c: *mut f32,
    ldc: usize,
    (rows, cols): (usize, usize),
    add: bool,
) {
    assert!(
        cols <= width && rows * width <= tile.len(),
        "a {rows} x {cols} corner of a tile of {} values, rows {width} apart",
        tile.len()
    );
    for (r, src) in tile.chunks_exact(width).take(rows).enumerate() {
        // SAFETY: row r < rows of the corner, cols values: the caller's contract.
        let dst = unsafe { std::slice::from_raw_parts_mut(c.add(r * ldc), cols) };
        if add {
            dst.iter_mut().zip(src).for_each(|(d, s)| *d += s);
        } else {
            dst.copy_from_slice(&src[..cols]);
        }
    }
}

/// The epilogue's bias and row function over a block of C (rows `i0..i0 + mc`, panels
/// `j0..j1`), row by row.
///
/// # Safety
/// No other code reads or writes the block meanwhile. (It lies inside C: asserted.)
unsafe fn finish(out: Out<'_>, task: Task, epilogue: Epilogue<'_>) {
    let n = out.n;
    assert!(task.i0 + task.mc <= out.m && task.j1 <= panels(n));
    let Epilogue {
        bias, map, scale, ..
    } = epilogue;
    if epilogue.sums_only() {
        return;
    }
    let row_work = bias.is_some() || map.is_some();
    let c0 = task.j0 * NR;
    let c1 = (task.j1 * NR).min(n);
    let zeros;
    let bias = match bias {
        Some(b) => &b[c0..c1],
        None if row_work => {
            zeros = vec![0.0f32; c1 - c0];
            &zeros[..]
        }
        None => &[],
    };
    for r in task.i0..task.i0 + task.mc {
        // SAFETY: row r < m and columns c0..c1 <= n lie inside C (asserted above), in this
        // task's block (the caller's contract).
        let row = unsafe { std::slice::from_raw_parts_mut(out.at(r, c0), c1 - c0) };
        if row_work {
            finish_row(row, bias, map);
        }
        if let Some(scale) = scale {
            scale_row(row, &scale[r * n + c0..r * n + c1]);
        }
    }
}

#[cfg(test)]
mod tests;

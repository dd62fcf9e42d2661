//! The planner: how many threads a product gets, and how C is cut into tasks for them.

use std::ops::Range;

use super::kernel::MR;
use super::pack::panels;
use crate::Parallelism;

/// The most rows of A one task packs (an A block of MC x KC floats stays in L2).
pub(super) const MC: usize = 168;
/// Products with fewer multiply-adds than this run on the calling thread.
const PARALLEL_MIN_FLOPS: usize = 48 * 48 * 48;

/// The threads a product of (m, k) x (k, n) is split over: one for a small product or
/// with [`Parallelism::None`], else the rayon pool's.
pub(crate) fn threads_for(m: usize, n: usize, k: usize, parallelism: Parallelism) -> usize {
    let flops = m.saturating_mul(n).saturating_mul(k);
    if flops < PARALLEL_MIN_FLOPS || parallelism == Parallelism::None {
        1
    } else {
        rayon::current_num_threads()
    }
}

/// Rows `0..m` cut into blocks of at most about `max_rows` rows for `threads` threads: a
/// multiple of `threads` blocks (when there are rows enough), dealt out in whole units of two
/// MR panels (so the AVX-512 kernel's 12-row tiles cover every block but the last) as evenly
/// as units allow, sizes differing by one unit at most, so no thread is left with an extra
/// block at the end.
pub fn row_blocks(m: usize, max_rows: usize, threads: usize) -> Vec<Range<usize>> {
    const UNIT: usize = 2 * MR;
    let units = m.div_ceil(UNIT);
    let blocks = m
        .div_ceil(max_rows)
        .max(1)
        .next_multiple_of(threads.max(1))
        .min(units);
    (0..blocks)
        .map(|b| (b * units / blocks * UNIT)..((b + 1) * units / blocks * UNIT).min(m))
        .collect()
}

/// A C block one task owns: rows `i0..i0 + mc`, panels `j0..j1` (columns `16 j0..`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Task {
    pub(super) i0: usize,
    pub(super) mc: usize,
    pub(super) j0: usize,
    pub(super) j1: usize,
}

impl Task {
    /// The task's block cut into stripes of at most `panels` panels of columns, in order:
    /// each summed, then given its epilogue while its block of C is still in L2.
    pub(super) fn stripes(self, panels: usize) -> impl Iterator<Item = Task> {
        (self.j0..self.j1).step_by(panels).map(move |j0| Task {
            j0,
            j1: (j0 + panels).min(self.j1),
            ..self
        })
    }
}

/// Cuts C into tasks: the row blocks of [`row_blocks`] (about MC rows), and when that gives
/// fewer than two tasks per thread, column ranges too (one per thread for a single block). A C of at most MC rows (a batch of
/// short sequences, a server's usual product) is cut by columns alone: each thread then
/// reads its own part of B, the weight, which is the large operand there, rather than all
/// of it, and every task has the same rows, so the same tiles and the same time.
pub(super) fn plan(m: usize, n: usize, threads: usize) -> Vec<Task> {
    #[allow(clippy::single_range_in_vec_init)]
    let blocks = if m <= MC {
        vec![0..m]
    } else {
        row_blocks(m, MC, threads)
    };
    let np = panels(n);
    // Two tasks per thread balance unequal row blocks; one row block (all tasks the same
    // rows, the same work) needs only one per thread, and each extra column range would
    // pack all of A once more (at batch 1, n = 128, fc2's A is 512 KiB).
    let want = if blocks.len() == 1 {
        threads
    } else {
        2 * threads
    };
    let col_chunks = if threads > 1 && blocks.len() < want {
        want.div_ceil(blocks.len()).min(np)
    } else {
        1
    };
    // An even number of panels per range where it can be, so that the 12 x 32 tile covers
    // them all (an odd last panel takes the narrower 12 x 16 one).
    let per_chunk = np.div_ceil(col_chunks);
    let per_chunk = if per_chunk % 2 == 1 && per_chunk < np {
        per_chunk + 1
    } else {
        per_chunk
    };
    let mut tasks = Vec::new();
    for rows in blocks {
        for j0 in (0..np).step_by(per_chunk) {
            tasks.push(Task {
                i0: rows.start,
                mc: rows.len(),
                j0,
                j1: (j0 + per_chunk).min(np),
            });
        }
    }
    tasks
}

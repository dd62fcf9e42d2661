//! How a `(B, n, D)` problem is cut into parallel tasks.
//!
//! A task owns `batch_chunk` consecutive batch entries and `tile` consecutive columns (the
//! last chunk and tile may be shorter) and loops over its batch entries.

/// Columns transformed together. 16 f32 columns fill one 64-byte cache line per row.
pub(crate) const TILE_COLUMNS: usize = 16;

/// Problems with at most this many elements run as a single task (no thread hand-off).
const SMALL_PROBLEM: usize = 1 << 14;

/// Column tile of the row-major fast path for length-`n` signals: wide, so each row of
/// the tile spans several cache lines (the hardware prefetcher can follow), yet the tile's
/// scratch (`n · tile` reals plus `(n/2+1) · tile` complex) stays within about 512 KiB.
pub(crate) fn slice_tile(n: usize) -> usize {
    (1usize << 16).div_ceil(n.max(1)).clamp(TILE_COLUMNS, 128)
}

/// Whether one task per batch entry keeps every thread of the current pool busy. Then the
/// transforms work on each entry's row-major slice directly (the fast path).
pub(crate) fn entry_tasks_fill_threads(batch: usize) -> bool {
    batch >= rayon::current_num_threads()
}

/// Batch chunk and column tile of a split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Split {
    pub(crate) batch_chunk: usize,
    pub(crate) tile: usize,
}

impl Split {
    /// One task per (batch entry, column tile), or a single task for a small problem.
    pub(crate) fn per_entry(batch: usize, n: usize, cols: usize) -> Self {
        if batch.saturating_mul(n).saturating_mul(cols) <= SMALL_PROBLEM {
            return Self::whole(batch, cols);
        }
        Self {
            batch_chunk: 1,
            tile: cols.clamp(1, TILE_COLUMNS),
        }
    }

    /// For reductions over the batch: few batch groups, only as many as needed to give every
    /// thread about two tasks, since each group needs its own partial sum.
    pub(crate) fn reducing(batch: usize, n: usize, cols: usize, threads: usize) -> Self {
        if batch.saturating_mul(n).saturating_mul(cols) <= SMALL_PROBLEM {
            return Self::whole(batch, cols);
        }
        let tile = cols.clamp(1, TILE_COLUMNS);
        let tiles = cols.div_ceil(tile);
        let wanted_groups = (2 * threads.max(1)).div_ceil(tiles).clamp(1, batch.max(1));
        Self {
            batch_chunk: batch.div_ceil(wanted_groups).max(1),
            tile,
        }
    }

    /// Number of batch groups this split makes.
    pub(crate) fn groups(self, batch: usize) -> usize {
        batch.div_ceil(self.batch_chunk)
    }

    fn whole(batch: usize, cols: usize) -> Self {
        Self {
            batch_chunk: batch.max(1),
            tile: cols.max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_problems_are_one_task() {
        assert_eq!(
            Split::per_entry(2, 8, 4),
            Split {
                batch_chunk: 2,
                tile: 4
            }
        );
    }

    #[test]
    fn large_problems_split_per_entry_and_tile() {
        let split = Split::per_entry(8, 512, 768);
        assert_eq!(
            split,
            Split {
                batch_chunk: 1,
                tile: TILE_COLUMNS
            }
        );
    }

    #[test]
    fn reductions_make_enough_groups_for_the_threads() {
        // 2 column tiles, 4 threads: 4 groups of 2 batch entries.
        let split = Split::reducing(8, 512, 32, 4);
        assert_eq!(split.tile, 16);
        assert_eq!(split.groups(8), 4);
        // Plenty of tiles: one group.
        assert_eq!(Split::reducing(8, 512, 768, 2).groups(8), 1);
    }
}

//! The portable f32 micro-kernel (any CPU).

use crate::sgemm::kernel::{MR, NR, PanelValue, Tile};

/// The portable kernel: the same sums in the same order as the vector kernel (which fuses
/// each multiply-add, so the two are compared with a tolerance, not bit for bit).
///
/// # Safety
/// As [`Kernel::run`](crate::sgemm::kernel::Kernel::run), with A's element (r, p) at `a + r * rs + p * cs`.
pub(in crate::sgemm) unsafe fn kernel<T: PanelValue>(
    kc: usize,
    a: *const f32,
    rs: usize,
    cs: usize,
    b: &[T],
    tile: Tile,
) {
    let mut acc = [[0.0f32; NR]; MR];
    for (p, bp) in b.chunks_exact(NR).take(kc).enumerate() {
        for (r, row) in acc.iter_mut().enumerate() {
            // SAFETY: r < MR, p < kc: inside A's block (the caller's contract).
            let av = unsafe { *a.add(r * rs + p * cs) };
            for (s, &bv) in row.iter_mut().zip(bp) {
                *s += av * bv.to_f32();
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        // SAFETY: the caller's contract: row r of the tile is NR writable floats.
        let dst = unsafe { std::slice::from_raw_parts_mut(tile.c.add(r * tile.ldc), NR) };
        if tile.accumulate {
            dst.iter_mut().zip(row.iter()).for_each(|(d, s)| *d += s);
        } else {
            dst.copy_from_slice(row);
        }
    }
}

//! Column-block copies between row-major slices and column-major scratch.
//!
//! The fast path of the transforms works on whole `(rows, D)` matrices stored row-major in
//! plain slices. These copies move a block of `width` columns starting at `col0` into
//! `width` contiguous columns of length `rows` and back, in 8 x 8 sub-blocks so that every
//! read and every write touches 8 consecutive elements. For `f32` on x86_64 with AVX, each
//! sub-block is transposed in eight 256-bit registers ([`gather_f32`], [`scatter_f32`]).

#[cfg(target_arch = "x86_64")]
use spectrans_linalg::simd;

/// Side of the square sub-blocks.
const BLOCK: usize = 8;

/// Calls `block(r0, c)` with the top-left corner of every full 8 x 8 block of a `rows` x
/// `width` region, column blocks outside and rows inside: the column-major side is then
/// walked front to back, each cache line of it filled (or read) while it is still in L1.
fn for_each_full_block(rows: usize, width: usize, mut block: impl FnMut(usize, usize)) {
    for c in (0..width / BLOCK * BLOCK).step_by(BLOCK) {
        for r0 in (0..rows / BLOCK * BLOCK).step_by(BLOCK) {
            block(r0, c);
        }
    }
}

/// `dst[j * rows + r] = src[r * stride + col0 + j]` for `r < rows`, `j < width`.
pub(crate) fn gather<T: Copy + Default>(
    src: &[T],
    stride: usize,
    col0: usize,
    rows: usize,
    width: usize,
    dst: &mut [T],
) {
    for_each_full_block(rows, width, |r0, c| {
        let mut block = [[T::default(); BLOCK]; BLOCK];
        for (i, row) in block.iter_mut().enumerate() {
            let start = (r0 + i) * stride + col0 + c;
            row.copy_from_slice(&src[start..start + BLOCK]);
        }
        for j in 0..BLOCK {
            let start = (c + j) * rows + r0;
            for (out, row) in dst[start..start + BLOCK].iter_mut().zip(block.iter()) {
                *out = row[j];
            }
        }
    });
    gather_edges(src, stride, col0, rows, width, dst);
}

/// The part of [`gather`] outside the full 8 x 8 blocks: the last `width % 8` columns and
/// the last `rows % 8` rows.
fn gather_edges<T: Copy>(
    src: &[T],
    stride: usize,
    col0: usize,
    rows: usize,
    width: usize,
    dst: &mut [T],
) {
    let (full_rows, full_cols) = (rows / BLOCK * BLOCK, width / BLOCK * BLOCK);
    for r in 0..full_rows {
        for j in full_cols..width {
            dst[j * rows + r] = src[r * stride + col0 + j];
        }
    }
    for r in full_rows..rows {
        let row = &src[r * stride + col0..r * stride + col0 + width];
        for (j, &v) in row.iter().enumerate() {
            dst[j * rows + r] = v;
        }
    }
}

/// `dst[r * stride + col0 + j] = map(src[j * rows + r])` for `r < rows`, `j < width`.
pub(crate) fn scatter<T: Copy + Default, U: Copy>(
    src: &[T],
    rows: usize,
    width: usize,
    dst: &mut [U],
    stride: usize,
    col0: usize,
    map: impl Fn(T) -> U,
) {
    for_each_full_block(rows, width, |r0, c| {
        let mut block = [[T::default(); BLOCK]; BLOCK];
        for (j, column) in block.iter_mut().enumerate() {
            let start = (c + j) * rows + r0;
            column.copy_from_slice(&src[start..start + BLOCK]);
        }
        for i in 0..BLOCK {
            let start = (r0 + i) * stride + col0 + c;
            for (out, column) in dst[start..start + BLOCK].iter_mut().zip(block.iter()) {
                *out = map(column[i]);
            }
        }
    });
    scatter_edges(src, rows, width, dst, stride, col0, map);
}

/// The part of [`scatter`] outside the full 8 x 8 blocks.
fn scatter_edges<T: Copy, U: Copy>(
    src: &[T],
    rows: usize,
    width: usize,
    dst: &mut [U],
    stride: usize,
    col0: usize,
    map: impl Fn(T) -> U,
) {
    let (full_rows, full_cols) = (rows / BLOCK * BLOCK, width / BLOCK * BLOCK);
    for r in 0..full_rows {
        for j in full_cols..width {
            dst[r * stride + col0 + j] = map(src[j * rows + r]);
        }
    }
    for r in full_rows..rows {
        let row = &mut dst[r * stride + col0..r * stride + col0 + width];
        for (j, out) in row.iter_mut().enumerate() {
            *out = map(src[j * rows + r]);
        }
    }
}

/// Whether every index [`gather`] / [`scatter`] touches lies inside the two slices:
/// the row-major side needs `(rows - 1) * stride + col0 + width` elements, the columns
/// `width * rows`. The AVX paths check this once and then use raw pointers.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn in_bounds(
    row_major_len: usize,
    columns_len: usize,
    stride: usize,
    col0: usize,
    rows: usize,
    width: usize,
) -> bool {
    if rows == 0 || width == 0 {
        return true;
    }
    let row_major = (rows - 1)
        .checked_mul(stride)
        .and_then(|v| v.checked_add(col0))
        .and_then(|v| v.checked_add(width));
    let columns = width.checked_mul(rows);
    matches!((row_major, columns), (Some(a), Some(b)) if a <= row_major_len && b <= columns_len)
}

/// [`gather`] for `f32`, with AVX 8 x 8 transposes where the CPU has AVX.
pub(crate) fn gather_f32(
    src: &[f32],
    stride: usize,
    col0: usize,
    rows: usize,
    width: usize,
    dst: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if let Some(cpu) = simd::Avx::try_new()
        && in_bounds(src.len(), dst.len(), stride, col0, rows, width)
    {
        for_each_full_block(rows, width, |r0, c| {
            debug_assert!(r0 + 8 <= rows && c + 8 <= width);
            debug_assert!((r0 + 7) * stride + col0 + c + 8 <= src.len());
            debug_assert!((c + 7) * rows + r0 + 8 <= dst.len());
            // SAFETY: AVX is vouched for by `cpu`. Source row r0 + i, columns
            // col0 + c .. col0 + c + 8, and destination column c + j, entries r0 .. r0 + 8,
            // lie inside the slices: `in_bounds` checked the largest index of each, and
            // r0 + 8 <= rows, c + 8 <= width.
            unsafe {
                avx::transpose8(
                    cpu,
                    src.as_ptr().add(r0 * stride + col0 + c),
                    stride,
                    dst.as_mut_ptr().add(c * rows + r0),
                    rows,
                );
            }
        });
        gather_edges(src, stride, col0, rows, width, dst);
        return;
    }
    gather(src, stride, col0, rows, width, dst);
}

/// [`scatter`] for `f32` without a map, with AVX 8 x 8 transposes where the CPU has AVX.
pub(crate) fn scatter_f32(
    src: &[f32],
    rows: usize,
    width: usize,
    dst: &mut [f32],
    stride: usize,
    col0: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if let Some(cpu) = simd::Avx::try_new()
        && in_bounds(dst.len(), src.len(), stride, col0, rows, width)
    {
        for_each_full_block(rows, width, |r0, c| {
            debug_assert!(r0 + 8 <= rows && c + 8 <= width);
            debug_assert!((c + 7) * rows + r0 + 8 <= src.len());
            debug_assert!((r0 + 7) * stride + col0 + c + 8 <= dst.len());
            // SAFETY: AVX is vouched for by `cpu`; the indices are those of `gather_f32`
            // with the two sides swapped, inside the slices by `in_bounds`.
            unsafe {
                avx::transpose8(
                    cpu,
                    src.as_ptr().add(c * rows + r0),
                    rows,
                    dst.as_mut_ptr().add(r0 * stride + col0 + c),
                    stride,
                );
            }
        });
        scatter_edges(src, rows, width, dst, stride, col0, |v| v);
        return;
    }
    scatter(src, rows, width, dst, stride, col0, |v| v);
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use std::arch::x86_64::{
        _mm256_loadu_ps, _mm256_permute2f128_ps, _mm256_shuffle_ps, _mm256_storeu_ps,
        _mm256_unpackhi_ps, _mm256_unpacklo_ps,
    };

    /// Writes the transpose of the 8 x 8 block whose row `i` is `src[i * src_step ..][..8]`
    /// to `dst`, row `j` at `dst[j * dst_step ..][..8]`: unpack pairs of rows, shuffle
    /// pairs of pairs, then swap 128-bit halves.
    ///
    /// # Safety
    /// Needs AVX, vouched for by `_cpu`; the caller promises that each of the eight
    /// 8-element rows read and written lies inside one allocation, and that the two blocks
    /// do not overlap.
    #[target_feature(enable = "avx")]
    pub(super) unsafe fn transpose8(
        _cpu: spectrans_linalg::simd::Avx,
        src: *const f32,
        src_step: usize,
        dst: *mut f32,
        dst_step: usize,
    ) {
        // SAFETY: the caller guarantees that rows i * src_step .. + 8 are readable.
        let r = unsafe {
            [
                _mm256_loadu_ps(src),
                _mm256_loadu_ps(src.add(src_step)),
                _mm256_loadu_ps(src.add(2 * src_step)),
                _mm256_loadu_ps(src.add(3 * src_step)),
                _mm256_loadu_ps(src.add(4 * src_step)),
                _mm256_loadu_ps(src.add(5 * src_step)),
                _mm256_loadu_ps(src.add(6 * src_step)),
                _mm256_loadu_ps(src.add(7 * src_step)),
            ]
        };
        let t = [
            _mm256_unpacklo_ps(r[0], r[1]),
            _mm256_unpackhi_ps(r[0], r[1]),
            _mm256_unpacklo_ps(r[2], r[3]),
            _mm256_unpackhi_ps(r[2], r[3]),
            _mm256_unpacklo_ps(r[4], r[5]),
            _mm256_unpackhi_ps(r[4], r[5]),
            _mm256_unpacklo_ps(r[6], r[7]),
            _mm256_unpackhi_ps(r[6], r[7]),
        ];
        // 0x44 picks elements (0, 1) of each operand's 128-bit lane, 0xEE elements (2, 3).
        let s = [
            _mm256_shuffle_ps::<0x44>(t[0], t[2]),
            _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
            _mm256_shuffle_ps::<0x44>(t[1], t[3]),
            _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
            _mm256_shuffle_ps::<0x44>(t[4], t[6]),
            _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
            _mm256_shuffle_ps::<0x44>(t[5], t[7]),
            _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
        ];
        // 0x20: low halves of both operands (output rows 0-3); 0x31: high halves (rows 4-7).
        let out = [
            _mm256_permute2f128_ps::<0x20>(s[0], s[4]),
            _mm256_permute2f128_ps::<0x20>(s[1], s[5]),
            _mm256_permute2f128_ps::<0x20>(s[2], s[6]),
            _mm256_permute2f128_ps::<0x20>(s[3], s[7]),
            _mm256_permute2f128_ps::<0x31>(s[0], s[4]),
            _mm256_permute2f128_ps::<0x31>(s[1], s[5]),
            _mm256_permute2f128_ps::<0x31>(s[2], s[6]),
            _mm256_permute2f128_ps::<0x31>(s[3], s[7]),
        ];
        for (j, v) in out.into_iter().enumerate() {
            // SAFETY: the caller guarantees that rows j * dst_step .. + 8 are writable.
            unsafe { _mm256_storeu_ps(dst.add(j * dst_step), v) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHAPES: [(usize, usize, usize, usize); 6] = [
        (19, 23, 3, 17),
        (16, 16, 0, 16),
        (1, 5, 4, 1),
        (9, 40, 8, 24),
        (64, 48, 8, 40),
        (0, 4, 0, 4),
    ];

    #[test]
    fn gather_then_scatter_round_trips_every_block_shape() {
        for (rows, cols, col0, width) in SHAPES {
            let src: Vec<u32> = (0..rows * cols).map(|v| v as u32 + 1).collect();
            let mut columns = vec![0; rows * width];
            gather(&src, cols, col0, rows, width, &mut columns);
            for r in 0..rows {
                for j in 0..width {
                    assert_eq!(columns[j * rows + r], src[r * cols + col0 + j]);
                }
            }
            let mut back = vec![0; rows * cols];
            scatter(&columns, rows, width, &mut back, cols, col0, |v| v * 2);
            for r in 0..rows {
                for c in 0..cols {
                    let inside = (col0..col0 + width).contains(&c);
                    let expected = if inside { 2 * src[r * cols + c] } else { 0 };
                    assert_eq!(back[r * cols + c], expected, "r={r} c={c}");
                }
            }
        }
    }

    #[test]
    fn f32_paths_equal_the_generic_copies() {
        for (rows, cols, col0, width) in SHAPES {
            let src: Vec<f32> = (0..rows * cols).map(|v| v as f32 + 0.5).collect();
            let (mut fast, mut plain) = (vec![0.0; rows * width], vec![0.0; rows * width]);
            gather_f32(&src, cols, col0, rows, width, &mut fast);
            gather(&src, cols, col0, rows, width, &mut plain);
            assert_eq!(fast, plain, "gather {rows}x{cols} at {col0}+{width}");
            let (mut back_fast, mut back_plain) =
                (vec![-1.0; rows * cols], vec![-1.0; rows * cols]);
            scatter_f32(&fast, rows, width, &mut back_fast, cols, col0);
            scatter(&plain, rows, width, &mut back_plain, cols, col0, |v| v);
            assert_eq!(
                back_fast, back_plain,
                "scatter {rows}x{cols} at {col0}+{width}"
            );
        }
    }

    #[test]
    fn bounds_check_rejects_short_slices() {
        assert!(!in_bounds(4 * 10 + 3, 8 * 5, 10, 3, 5, 8));
        assert!(in_bounds(4 * 10 + 3 + 8, 8 * 5, 10, 3, 5, 8));
        assert!(!in_bounds(100, 39, 10, 0, 5, 8));
        assert!(in_bounds(0, 0, 10, 3, 0, 8));
    }
}

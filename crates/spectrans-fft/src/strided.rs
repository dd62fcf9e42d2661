//! Column-block copies between row-major slices and column-major scratch.
//!
//! The fast path of the transforms works on whole `(rows, D)` matrices stored row-major in
//! plain slices. These copies move a block of `width` columns starting at `col0` into
//! `width` contiguous columns of length `rows` and back, in 4 x 4 sub-blocks (which stay in
//! registers) so that every read and every write touches 4 consecutive elements.

/// Side of the square sub-blocks.
const BLOCK: usize = 8;

/// `dst[j * rows + r] = src[r * stride + col0 + j]` for `r < rows`, `j < width`.
pub(crate) fn gather<T: Copy + Default>(
    src: &[T],
    stride: usize,
    col0: usize,
    rows: usize,
    width: usize,
    dst: &mut [T],
) {
    let full_rows = rows / BLOCK * BLOCK;
    let full_cols = width / BLOCK * BLOCK;
    for r0 in (0..full_rows).step_by(BLOCK) {
        for c in (0..full_cols).step_by(BLOCK) {
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
        }
        for j in full_cols..width {
            for i in 0..BLOCK {
                dst[j * rows + r0 + i] = src[(r0 + i) * stride + col0 + j];
            }
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
    let full_rows = rows / BLOCK * BLOCK;
    let full_cols = width / BLOCK * BLOCK;
    for r0 in (0..full_rows).step_by(BLOCK) {
        for c in (0..full_cols).step_by(BLOCK) {
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
        }
        for j in full_cols..width {
            for i in 0..BLOCK {
                dst[(r0 + i) * stride + col0 + j] = map(src[j * rows + r0 + i]);
            }
        }
    }
    for r in full_rows..rows {
        let row = &mut dst[r * stride + col0..r * stride + col0 + width];
        for (j, out) in row.iter_mut().enumerate() {
            *out = map(src[j * rows + r]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_then_scatter_round_trips_every_block_shape() {
        for (rows, cols, col0, width) in [
            (19, 23, 3, 17),
            (16, 16, 0, 16),
            (1, 5, 4, 1),
            (9, 40, 8, 24),
        ] {
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
}

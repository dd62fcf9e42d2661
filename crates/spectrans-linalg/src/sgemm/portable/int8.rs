//! The portable int8 kernel (any CPU): the same integer sums as the vector ones.

use crate::sgemm::int8::GROUP_BYTES;
use crate::sgemm::kernel::{MR, NR};

/// `Σ_k a[r][k] · b[k, c]` for MR rows and the NR columns of panel `b`, over `groups` groups
/// of 4 k.
pub(in crate::sgemm) fn sums(groups: usize, a: [&[u8]; MR], b: &[i8]) -> [[i32; NR]; MR] {
    let mut acc = [[0i32; NR]; MR];
    for g in 0..groups {
        let block = &b[g * GROUP_BYTES..(g + 1) * GROUP_BYTES];
        for (row, codes) in acc.iter_mut().zip(&a) {
            let codes = &codes[4 * g..4 * g + 4];
            for (c, sum) in row.iter_mut().enumerate() {
                let w = &block[(c / 8) * 32 + (c % 8) * 4..][..4];
                *sum += codes
                    .iter()
                    .zip(w)
                    .map(|(&x, &w)| i32::from(x) * i32::from(w))
                    .sum::<i32>();
            }
        }
    }
    acc
}

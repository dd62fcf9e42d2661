//! The embedded 8x8 digits (UCI optdigits, as in scikit-learn).

use std::path::Path;

use super::{Dataset, Example, Input, Target, Task};

/// The digits as shipped in scikit-learn (UCI optdigits test set, CC BY 4.0): 64 pixel counts
/// (0..=16) then the label, per line. Attribution in `data/README.md`.
const DIGITS_CSV: &str = include_str!("../../data/optdigits.csv");

/// The token that [`digits`] puts in front of every image, for the classification head's
/// first-token (cls) pooling to read.
pub const DIGITS_CLS_TOKEN: i64 = 17;

/// The 1,797 8x8 digits as 65-token sequences: the cls token ([`DIGITS_CLS_TOKEN`]) then the
/// 64 pixel counts (0..=16) row by row; labels 0..=9. Vocabulary 18, 10 classes.
pub fn digits() -> Dataset {
    let path = Path::new("<embedded optdigits.csv>");
    let mut examples = Vec::with_capacity(1797);
    for (i, line) in DIGITS_CSV.lines().enumerate() {
        let fields: Vec<i64> = line
            .split(',')
            .filter_map(|f| f.trim().parse().ok())
            .collect();
        let Some((&label, pixels)) = fields.split_last() else {
            continue;
        };
        let mut tokens = Vec::with_capacity(65);
        tokens.push(DIGITS_CLS_TOKEN);
        tokens.extend_from_slice(pixels);
        examples.push(Example {
            input: Input::Tokens(tokens),
            target: Target::Class(label),
            line: i + 1,
        });
    }
    Dataset {
        examples,
        seq_len: 65,
        task: Task::Classification,
        source: path.to_path_buf(),
    }
}

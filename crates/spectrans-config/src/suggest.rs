//! "Did you mean" suggestions by edit distance.

/// Optimal-string-alignment distance: insertions, deletions, substitutions and adjacent
/// transpositions each cost 1.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // rows[i][j] = distance between a[..i] and b[..j]; three rolling rows suffice.
    let mut prev2 = vec![0usize; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0usize; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(prev2[j - 2] + 1);
            }
            cur[j] = d;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The candidate nearest to `given`, if it is near enough to be a likely typo: at most 2 edits,
/// or a third of the longer name.
pub(crate) fn nearest<'a>(given: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(given, c), *c))
        .filter(|(d, c)| *d <= 2.max(given.chars().count().max(c.chars().count()) / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `"; did you mean `x`?"` when a candidate is near, else empty.
pub(crate) fn did_you_mean(given: &str, candidates: &[&str]) -> String {
    nearest(given, candidates)
        .map(|c| format!("; did you mean `{c}`?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Plain dynamic-programming Levenshtein (no transpositions), the textbook recurrence.
    fn levenshtein(a: &str, b: &str) -> usize {
        let a: Vec<char> = a.chars().collect();
        let b: Vec<char> = b.chars().collect();
        let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
        for (i, row) in d.iter_mut().enumerate() {
            row[0] = i;
        }
        d[0] = (0..=b.len()).collect();
        for i in 1..=a.len() {
            for j in 1..=b.len() {
                let c = usize::from(a[i - 1] != b[j - 1]);
                d[i][j] = (d[i - 1][j] + 1)
                    .min(d[i][j - 1] + 1)
                    .min(d[i - 1][j - 1] + c);
            }
        }
        d[a.len()][b.len()]
    }

    #[test]
    fn known_distances() {
        assert_eq!(edit_distance("hiden_dim", "hidden_dim"), 1);
        assert_eq!(edit_distance("hdiden_dim", "hidden_dim"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggests_the_nearest_known_key() {
        let keys = ["hidden_dim", "num_layers", "dropout"];
        assert_eq!(nearest("hiden_dim", &keys), Some("hidden_dim"));
        assert_eq!(nearest("dropuot", &keys), Some("dropout"));
        assert_eq!(nearest("learning_rate", &keys), None);
        assert_eq!(did_you_mean("xyz", &keys), "");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn distance_is_a_bounded_symmetric_measure(a in "[a-d_]{0,8}", b in "[a-d_]{0,8}") {
            let d = edit_distance(&a, &b);
            prop_assert_eq!(d, edit_distance(&b, &a));
            prop_assert_eq!(d == 0, a == b);
            // transpositions can only shorten Levenshtein, by at most half
            let lev = levenshtein(&a, &b);
            prop_assert!(d <= lev && 2 * d >= lev);
            prop_assert!(d >= a.chars().count().abs_diff(b.chars().count()));
        }
    }
}

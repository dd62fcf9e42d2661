//! Medians and the ratios the report prints.

/// The median of `values` (mean of the two middle values for an even count); `None` when
/// empty or when a value is not finite.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if !v.len().is_multiple_of(2) {
        v.get(mid).copied()
    } else {
        Some((v.get(mid - 1)? + v.get(mid)?) / 2.0)
    }
}

/// How many times faster ours is: `torch_ms / ours_ms` (> 1 means ours is faster).
pub fn speedup(ours_ms: f64, torch_ms: f64) -> Option<f64> {
    ratio(torch_ms, ours_ms)
}

/// Our peak memory as a fraction of PyTorch's: `ours_rss / torch_rss` (< 1 means ours uses less).
pub fn memory_ratio(ours_rss: f64, torch_rss: f64) -> Option<f64> {
    ratio(ours_rss, torch_rss)
}

/// Tokens per second of a batch: `batch * seq_len / (ms / 1000)`.
pub fn tokens_per_s(batch: usize, seq_len: usize, ms: f64) -> Option<f64> {
    ratio((batch * seq_len) as f64 * 1e3, ms)
}

/// `num / den` when both are finite and positive.
pub fn ratio(num: f64, den: f64) -> Option<f64> {
    (num.is_finite() && den.is_finite() && num > 0.0 && den > 0.0).then(|| num / den)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[7.0]), Some(7.0));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[1.0, f64::NAN]), None);
    }

    #[test]
    fn ratios_have_the_documented_direction() {
        assert_eq!(speedup(100.0, 250.0), Some(2.5));
        assert_eq!(memory_ratio(50.0, 200.0), Some(0.25));
        assert_eq!(tokens_per_s(8, 512, 1000.0), Some(4096.0));
        assert_eq!(speedup(0.0, 1.0), None);
        assert_eq!(memory_ratio(1.0, f64::INFINITY), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Against a counting definition: at least half the values are <= the median and
        /// at least half are >= it.
        #[test]
        fn median_splits_the_values_in_half(v in proptest::collection::vec(-1e6f64..1e6, 1..40)) {
            let m = median(&v).ok_or_else(|| TestCaseError::fail("no median"))?;
            let below = v.iter().filter(|&&x| x <= m).count();
            let above = v.iter().filter(|&&x| x >= m).count();
            prop_assert!(2 * below >= v.len() && 2 * above >= v.len());
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            prop_assert!(lo <= m && m <= hi);
        }

        #[test]
        fn median_ignores_order(mut v in proptest::collection::vec(-1e3f64..1e3, 1..20)) {
            let m = median(&v);
            v.reverse();
            prop_assert_eq!(m, median(&v));
        }

        #[test]
        fn speedup_times_ours_is_torch(ours in 1e-3f64..1e5, torch in 1e-3f64..1e5) {
            let s = speedup(ours, torch).ok_or_else(|| TestCaseError::fail("no ratio"))?;
            prop_assert!((s * ours - torch).abs() <= 1e-9 * torch);
        }
    }
}

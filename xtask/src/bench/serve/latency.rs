//! Percentiles of latencies and the pass rule of the rate search.

/// The `p`-th percentile (0 < p <= 100) by the nearest-rank rule: the smallest value with at
/// least `p` % of the values at or below it, i.e. the `ceil(p / 100 * n)`-th smallest.
/// Infinite values (requests not answered 200) sort last and count; `None` when empty, when a
/// value is NaN or when `p` is outside (0, 100].
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() || values.iter().any(|v| v.is_nan()) || !(p > 0.0 && p <= 100.0) {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v.get(rank.clamp(1, v.len()) - 1).copied()
}

/// p50, p90, p99 and the largest of a set of latencies (ms).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    /// The percentiles of `values`; `None` when there are none (or a NaN).
    pub fn of(values: &[f64]) -> Option<Self> {
        Some(Self {
            p50: percentile(values, 50.0)?,
            p90: percentile(values, 90.0)?,
            p99: percentile(values, 99.0)?,
            max: percentile(values, 100.0)?,
        })
    }
}

/// Whether a run sustained its rate: at least one request, and the p99 over EVERY request
/// (an answer other than 200, a timeout or a connection error counted as infinitely late)
/// under `bound_ms`. With more than 1 % of requests failed the p99 is infinite and the run
/// fails; below that, the failed requests still push the p99 up the ranks.
pub fn sustains(latencies_ok_or_inf: &[f64], bound_ms: f64) -> bool {
    percentile(latencies_ok_or_inf, 99.0).is_some_and(|p99| p99 < bound_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn nearest_rank_on_small_sets() {
        let v = [15.0, 20.0, 35.0, 40.0, 50.0];
        assert_eq!(percentile(&v, 5.0), Some(15.0));
        assert_eq!(percentile(&v, 30.0), Some(20.0));
        assert_eq!(percentile(&v, 40.0), Some(20.0));
        assert_eq!(percentile(&v, 50.0), Some(35.0));
        assert_eq!(percentile(&v, 100.0), Some(50.0));
        assert_eq!(
            percentile(&[3.0, 1.0, 2.0], 50.0),
            Some(2.0),
            "order does not matter"
        );
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&v, 0.0), None);
        assert_eq!(percentile(&v, 101.0), None);
        assert_eq!(percentile(&[1.0, f64::NAN], 50.0), None);
    }

    #[test]
    fn p99_of_a_hundred_is_the_99th_value() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        let v: Vec<f64> = (1..=1000).map(f64::from).collect();
        assert_eq!(percentile(&v, 99.0), Some(990.0));
    }

    #[test]
    fn failed_requests_fail_the_bound_beyond_one_percent() {
        let mut v = vec![10.0; 99];
        v.push(f64::INFINITY);
        assert!(sustains(&v, 50.0), "1 failure in 100 leaves p99 at 10 ms");
        v.push(f64::INFINITY);
        assert!(
            !sustains(&v, 50.0),
            "2 failures in 101 make the p99 infinite"
        );
        assert!(!sustains(&[49.0, 50.0], 50.0), "the bound is strict");
        assert!(!sustains(&[], 50.0), "no requests sustain nothing");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Against the definition: at least p % of the values are <= the percentile, and
        /// fewer than p % are strictly below it.
        #[test]
        fn percentile_is_the_nearest_rank(
            v in proptest::collection::vec(0.0f64..1e4, 1..200),
            p in 1.0f64..=100.0,
        ) {
            let x = percentile(&v, p).ok_or_else(|| TestCaseError::fail("no percentile"))?;
            let n = v.len() as f64;
            let at_or_below = v.iter().filter(|&&y| y <= x).count() as f64;
            let below = v.iter().filter(|&&y| y < x).count() as f64;
            prop_assert!(at_or_below >= p / 100.0 * n - 1e-9);
            prop_assert!(below < p / 100.0 * n);
            prop_assert!(v.contains(&x));
        }
    }
}

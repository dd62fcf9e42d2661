//! The search for the highest request rate a server sustains: doubling from a start rate
//! until a rate fails (or halving until one passes), then bisection between the highest rate
//! that passed and the lowest that failed.

/// The limits of a search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchParams {
    /// The first rate tried (req/s).
    pub start: f64,
    /// Doubling stops above this rate (the result is then at least `max`, reported as `max`).
    pub max: f64,
    /// Halving stops below this rate (the server sustains nothing).
    pub min: f64,
    /// At most this many bisection steps.
    pub bisect_steps: usize,
    /// Bisection stops once `failed / passed <= 1 + rel_tol`.
    pub rel_tol: f64,
}

/// One probed rate and whether the server sustained it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    pub rate: f64,
    pub passed: bool,
}

/// The result: the highest rate that passed (`None` when even `min` failed), the lowest that
/// failed above it (`None` when `max` passed), and every step in order.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchOutcome {
    pub best: Option<f64>,
    pub first_failed: Option<f64>,
    pub steps: Vec<Step>,
}

/// Runs the search; `probe(rate)` measures one rate and says whether it passed (or fails the
/// whole search with its error).
pub fn search<E>(
    params: SearchParams,
    mut probe: impl FnMut(f64) -> Result<bool, E>,
) -> Result<SearchOutcome, E> {
    let mut steps = Vec::new();
    let mut try_rate = |rate: f64, steps: &mut Vec<Step>| -> Result<bool, E> {
        let passed = probe(rate)?;
        steps.push(Step { rate, passed });
        Ok(passed)
    };
    let start = params.start.clamp(params.min, params.max);
    let (mut lo, mut hi);
    if try_rate(start, &mut steps)? {
        lo = start;
        hi = None;
        while lo < params.max {
            let next = (lo * 2.0).min(params.max);
            if try_rate(next, &mut steps)? {
                lo = next;
            } else {
                hi = Some(next);
                break;
            }
        }
    } else {
        hi = Some(start);
        let mut found = None;
        let mut rate = start / 2.0;
        while rate >= params.min {
            if try_rate(rate, &mut steps)? {
                found = Some(rate);
                break;
            }
            hi = Some(rate);
            rate /= 2.0;
        }
        match found {
            Some(r) => lo = r,
            None => {
                return Ok(SearchOutcome {
                    best: None,
                    first_failed: hi,
                    steps,
                });
            }
        }
    }
    if let Some(mut failed) = hi {
        for _ in 0..params.bisect_steps {
            if failed / lo <= 1.0 + params.rel_tol {
                break;
            }
            let mid = (lo + failed) / 2.0;
            if try_rate(mid, &mut steps)? {
                lo = mid;
            } else {
                failed = mid;
            }
        }
        hi = Some(failed);
    }
    Ok(SearchOutcome {
        best: Some(lo),
        first_failed: hi,
        steps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PARAMS: SearchParams = SearchParams {
        start: 16.0,
        max: 4096.0,
        min: 1.0,
        bisect_steps: 6,
        rel_tol: 0.05,
    };

    fn run(limit: f64, params: SearchParams) -> SearchOutcome {
        let out: Result<_, ()> = search(params, |r| Ok(r <= limit));
        out.unwrap_or_else(|()| SearchOutcome {
            best: None,
            first_failed: None,
            steps: vec![],
        })
    }

    #[test]
    fn doubles_then_bisects() {
        let out = run(100.0, PARAMS);
        let rates: Vec<f64> = out.steps.iter().map(|s| s.rate).collect();
        assert_eq!(&rates[..5], &[16.0, 32.0, 64.0, 128.0, 96.0]);
        let best = out.best.unwrap_or(0.0);
        assert!((100.0 / 1.05 - 1e-9..=100.0).contains(&best), "{best}");
        assert!(out.first_failed.is_some_and(|f| f > 100.0));
    }

    #[test]
    fn halves_when_the_start_fails() {
        let out = run(5.0, PARAMS);
        let rates: Vec<f64> = out.steps.iter().map(|s| s.rate).collect();
        assert_eq!(&rates[..4], &[16.0, 8.0, 4.0, 6.0]);
        assert!(out.best.is_some_and(|b| b <= 5.0 && b > 4.0));
    }

    #[test]
    fn reports_nothing_sustained_and_the_cap() {
        let none = run(0.5, PARAMS);
        assert_eq!(none.best, None);
        assert_eq!(none.first_failed, Some(1.0));
        assert!(none.steps.iter().all(|s| !s.passed));
        let capped = run(1e9, PARAMS);
        assert_eq!(capped.best, Some(4096.0));
        assert_eq!(capped.first_failed, None);
    }

    #[test]
    fn a_probe_error_stops_the_search() {
        let mut calls = 0;
        let out = search(PARAMS, |r| {
            calls += 1;
            if r > 40.0 {
                Err("server died")
            } else {
                Ok(true)
            }
        });
        assert_eq!(out, Err("server died"));
        assert_eq!(calls, 3);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// For a server that passes exactly the rates up to `limit`: the best rate passed, the
        /// first failure is above `limit`, they are within the tolerance, and every step's
        /// verdict is the probe's.
        #[test]
        fn brackets_the_limit(limit in 1.0f64..5000.0) {
            let out = run(limit, PARAMS);
            let best = out.best.ok_or_else(|| TestCaseError::fail("no best"))?;
            prop_assert!(best <= limit);
            match out.first_failed {
                Some(failed) => {
                    prop_assert!(failed > limit);
                    // Six halvings of a doubling's gap always reach the 5 % tolerance.
                    prop_assert!(failed / best <= 1.0 + PARAMS.rel_tol + 1e-12);
                }
                None => prop_assert_eq!(best, PARAMS.max),
            }
            for s in &out.steps {
                prop_assert_eq!(s.passed, s.rate <= limit);
            }
        }
    }
}

//! Per-case medians over processes, and the targets judged on them.

use super::plan::{Mode, ModelShape, Plan};
use super::runner::CaseResult;
use super::sample::{Impl, Sample};
use super::stats;

/// The medians of one case over its processes, per side.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    pub ours_ms: Option<f64>,
    pub torch_ms: Option<f64>,
    pub ours_rss: Option<f64>,
    pub torch_rss: Option<f64>,
    pub ours_runs: usize,
    pub torch_runs: usize,
}

impl Summary {
    /// Median over processes of each process's median time, and of their peak RSS.
    pub fn of(result: &CaseResult) -> Self {
        let times =
            |s: &[Sample]| stats::median(&s.iter().map(|x| x.median_ms).collect::<Vec<_>>());
        let rss = |s: &[Sample]| {
            let v: Vec<f64> = s.iter().filter_map(|x| x.peak_rss_mb).collect();
            stats::median(&v)
        };
        let ours = result.samples(Impl::Ours);
        let torch = result.samples(Impl::Torch);
        Self {
            ours_ms: times(ours),
            torch_ms: times(torch),
            ours_rss: rss(ours),
            torch_rss: rss(torch),
            ours_runs: ours.len(),
            torch_runs: torch.len(),
        }
    }

    /// `torch_ms / ours_ms`.
    pub fn speedup(&self) -> Option<f64> {
        stats::speedup(self.ours_ms?, self.torch_ms?)
    }

    /// `ours_rss / torch_rss`.
    pub fn memory_ratio(&self) -> Option<f64> {
        stats::memory_ratio(self.ours_rss?, self.torch_rss?)
    }
}

/// Which way a target's figure must go.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Goal {
    AtLeast(f64),
    AtMost(f64),
}

impl Goal {
    /// Whether `value` meets the goal.
    pub fn met(self, value: f64) -> bool {
        match self {
            Self::AtLeast(g) => value >= g,
            Self::AtMost(g) => value <= g,
        }
    }

    /// E.g. `>= 2.00x`.
    pub fn text(self) -> String {
        match self {
            Self::AtLeast(g) => format!(">= {g:.2}x"),
            Self::AtMost(g) => format!("<= {g:.2}x"),
        }
    }
}

/// One of the targets with its measured ratio.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub name: &'static str,
    pub goal: Goal,
    pub measured: Option<f64>,
}

impl Target {
    /// `None` when not measured.
    pub fn met(&self) -> Option<bool> {
        self.measured.map(|v| self.goal.met(v))
    }
}

/// The targets at the plan's main thread count.
pub fn targets(plan: &Plan, summaries: &[Summary]) -> Vec<Target> {
    let t = plan.main_threads;
    let get = |shape: &ModelShape, mode: Mode| {
        plan.find(shape, 8, t, mode)
            .and_then(|i| summaries.get(i))
            .copied()
            .unwrap_or_default()
    };
    let small = get(&ModelShape::SMALL, Mode::Forward);
    let seed = get(&ModelShape::SEED, Mode::Forward);
    let train = get(&ModelShape::SMALL, Mode::Train);
    vec![
        Target {
            name: "forward speed, small (h256, 4 layers, n512, b8)",
            goal: Goal::AtLeast(2.0),
            measured: small.speedup(),
        },
        Target {
            name: "forward speed, seed (h768, 12 layers, n512, b8)",
            goal: Goal::AtLeast(1.3),
            measured: seed.speedup(),
        },
        Target {
            name: "training step speed (CE + AdamW), small",
            goal: Goal::AtLeast(1.5),
            measured: train.speedup(),
        },
        Target {
            name: "peak RSS of a forward process, small (ours / torch)",
            goal: Goal::AtMost(0.5),
            measured: small.memory_ratio(),
        },
        Target {
            name: "peak RSS of a forward process, seed (ours / torch)",
            goal: Goal::AtMost(0.5),
            measured: seed.memory_ratio(),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::plan::Effort;

    fn sample(ms: f64, rss: f64) -> Sample {
        Sample {
            median_ms: ms,
            min_ms: ms,
            peak_rss_mb: Some(rss),
            threads: None,
            torch_version: None,
        }
    }

    #[test]
    fn median_over_processes_and_ratios() {
        let r = CaseResult {
            ours: vec![sample(100.0, 50.0), sample(120.0, 52.0), sample(90.0, 51.0)],
            torch: vec![sample(300.0, 600.0), sample(250.0, 620.0)],
            failures: vec![],
        };
        let s = Summary::of(&r);
        assert_eq!(s.ours_ms, Some(100.0));
        assert_eq!(s.torch_ms, Some(275.0));
        assert_eq!(s.speedup(), Some(2.75));
        assert_eq!(s.memory_ratio(), Some(51.0 / 610.0));
        assert_eq!((s.ours_runs, s.torch_runs), (3, 2));
    }

    #[test]
    fn no_torch_means_no_ratio_and_unmeasured_targets() -> Result<(), Box<dyn std::error::Error>> {
        let plan = Plan::new(&[2], Effort { quick: true })?;
        let r = CaseResult {
            ours: vec![sample(100.0, 50.0)],
            ..CaseResult::default()
        };
        let summaries = vec![Summary::of(&r); plan.cases.len()];
        assert_eq!(summaries[0].speedup(), None);
        assert!(targets(&plan, &summaries).iter().all(|t| t.met().is_none()));
        Ok(())
    }

    #[test]
    fn targets_are_judged_in_their_direction() -> Result<(), Box<dyn std::error::Error>> {
        let plan = Plan::new(&[1, 2], Effort { quick: true })?;
        let mut summaries = vec![Summary::default(); plan.cases.len()];
        let small = plan
            .find(&ModelShape::SMALL, 8, 2, Mode::Forward)
            .ok_or("no small case")?;
        summaries[small] = Summary::of(&CaseResult {
            ours: vec![sample(100.0, 400.0)],
            torch: vec![sample(210.0, 600.0)],
            failures: vec![],
        });
        let t = targets(&plan, &summaries);
        assert_eq!(t[0].met(), Some(true), "2.1x >= 2.0x");
        assert_eq!(t[3].met(), Some(false), "0.67 > 0.5");
        assert_eq!(t[1].met(), None);
        assert!(Goal::AtMost(0.5).met(0.5) && Goal::AtLeast(1.3).met(1.3));
        Ok(())
    }
}

//! Per-case medians over processes, and the targets judged on them.

use super::plan::{LATENCY_SEQ_LENS, Mode, ModelShape, Plan};
use super::runner::CaseResult;
use super::sample::{Impl, Sample, Variant};
use super::stats;

/// The medians of one case over its processes, per side; `torch_*` is spectrans eager.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    pub ours_ms: Option<f64>,
    pub torch_ms: Option<f64>,
    pub ours_rss: Option<f64>,
    pub torch_rss: Option<f64>,
    pub ours_runs: usize,
    pub torch_runs: usize,
    /// The median time of every PyTorch variant, in [`Variant::ALL`] order.
    pub variant_ms: [Option<f64>; Variant::ALL.len()],
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
        let torch = result.samples(Impl::Torch(Variant::Spectrans));
        Self {
            ours_ms: times(ours),
            torch_ms: times(torch),
            ours_rss: rss(ours),
            torch_rss: rss(torch),
            ours_runs: ours.len(),
            torch_runs: torch.len(),
            variant_ms: Variant::ALL.map(|v| times(result.samples(Impl::Torch(v)))),
        }
    }

    /// The median time of one PyTorch variant.
    pub fn variant(&self, variant: Variant) -> Option<f64> {
        let i = Variant::ALL.iter().position(|&v| v == variant)?;
        self.variant_ms.get(i).copied().flatten()
    }

    /// The fastest PyTorch variant measured and its time.
    pub fn fastest(&self) -> Option<(Variant, f64)> {
        Variant::ALL
            .iter()
            .filter_map(|&v| Some((v, self.variant(v)?)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// `torch_ms / ours_ms` against spectrans eager.
    pub fn speedup(&self) -> Option<f64> {
        stats::speedup(self.ours_ms?, self.torch_ms?)
    }

    /// `fastest torch ms / ours_ms`.
    pub fn speedup_vs_fastest(&self) -> Option<f64> {
        stats::speedup(self.ours_ms?, self.fastest()?.1)
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
    pub name: String,
    pub goal: Goal,
    pub measured: Option<f64>,
}

impl Target {
    /// `None` when not measured.
    pub fn met(&self) -> Option<bool> {
        self.measured.map(|v| self.goal.met(v))
    }
}

/// Issue 11's speed goal: PyTorch's fastest time over ours.
pub const SPEED_GOAL: f64 = 1.5;

/// The issues' targets at the plan's main thread count: speed against the fastest PyTorch
/// variant (issue 11), memory against spectrans eager (issue 6).
pub fn targets(plan: &Plan, summaries: &[Summary]) -> Vec<Target> {
    let t = plan.main_threads;
    let get = |shape: &ModelShape, batch: usize, mode: Mode| {
        plan.find(shape, batch, t, mode)
            .and_then(|i| summaries.get(i))
            .copied()
            .unwrap_or_default()
    };
    let small = get(&ModelShape::SMALL, 8, Mode::Forward);
    let seed = get(&ModelShape::SEED, 8, Mode::Forward);
    let train = get(&ModelShape::SMALL, 8, Mode::Train);
    let mut targets = vec![
        Target {
            name: "forward, small (h256, 4 layers, n512, b8), vs fastest PyTorch".into(),
            goal: Goal::AtLeast(SPEED_GOAL),
            measured: small.speedup_vs_fastest(),
        },
        Target {
            name: "forward, seed (h768, 12 layers, n512, b8), vs fastest PyTorch".into(),
            goal: Goal::AtLeast(SPEED_GOAL),
            measured: seed.speedup_vs_fastest(),
        },
        Target {
            name: "training step (CE + AdamW), small, vs fastest PyTorch".into(),
            goal: Goal::AtLeast(SPEED_GOAL),
            measured: train.speedup_vs_fastest(),
        },
    ];
    for (name, base) in [("small", ModelShape::SMALL), ("seed", ModelShape::SEED)] {
        for &n in LATENCY_SEQ_LENS {
            let shape = ModelShape {
                sequence_length: n,
                ..base.clone()
            };
            targets.push(Target {
                name: format!("batch-1 forward, {name}, n{n}, vs fastest PyTorch"),
                goal: Goal::AtLeast(SPEED_GOAL),
                measured: get(&shape, 1, Mode::Forward).speedup_vs_fastest(),
            });
        }
    }
    targets.extend([
        Target {
            name: "peak RSS of a forward process, small (ours / spectrans eager)".into(),
            goal: Goal::AtMost(0.5),
            measured: small.memory_ratio(),
        },
        Target {
            name: "peak RSS of a forward process, seed (ours / spectrans eager)".into(),
            goal: Goal::AtMost(0.5),
            measured: seed.memory_ratio(),
        },
    ]);
    targets
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
        let r = result(
            vec![sample(100.0, 50.0), sample(120.0, 52.0), sample(90.0, 51.0)],
            vec![sample(300.0, 600.0), sample(250.0, 620.0)],
        );
        let s = Summary::of(&r);
        assert_eq!(s.ours_ms, Some(100.0));
        assert_eq!(s.torch_ms, Some(275.0));
        assert_eq!(s.speedup(), Some(2.75));
        assert_eq!(s.memory_ratio(), Some(51.0 / 610.0));
        assert_eq!((s.ours_runs, s.torch_runs), (3, 2));
        assert_eq!(s.fastest(), Some((Variant::Spectrans, 275.0)));
    }

    #[test]
    fn the_fastest_variant_sets_the_headline_ratio() {
        let mut r = result(vec![sample(100.0, 50.0)], vec![sample(300.0, 600.0)]);
        r.torch
            .insert(Variant::RfftCompile, vec![sample(150.0, 700.0)]);
        r.torch.insert(Variant::Onnx, vec![sample(500.0, 400.0)]);
        let s = Summary::of(&r);
        assert_eq!(s.fastest(), Some((Variant::RfftCompile, 150.0)));
        assert_eq!(s.speedup_vs_fastest(), Some(1.5));
        assert_eq!(s.speedup(), Some(3.0));
        assert_eq!(s.variant(Variant::Rfft), None);
    }

    fn result(ours: Vec<Sample>, eager: Vec<Sample>) -> CaseResult {
        let mut r = CaseResult {
            ours,
            ..CaseResult::default()
        };
        if !eager.is_empty() {
            r.torch.insert(Variant::Spectrans, eager);
        }
        r
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
        summaries[small] = Summary::of(&result(
            vec![sample(100.0, 400.0)],
            vec![sample(210.0, 600.0)],
        ));
        let t = targets(&plan, &summaries);
        assert_eq!(t[0].met(), Some(true), "2.1x >= 1.5x");
        let rss = t
            .iter()
            .find(|t| t.name.contains("RSS") && t.name.contains("small"))
            .ok_or("no RSS target")?;
        assert_eq!(rss.met(), Some(false), "0.67 > 0.5");
        assert_eq!(t[1].met(), None);
        assert!(Goal::AtMost(0.5).met(0.5) && Goal::AtLeast(1.3).met(1.3));
        Ok(())
    }
}

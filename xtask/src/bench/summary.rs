//! Per-case medians over processes, and the issue's targets judged on them.

use super::longseq;
use super::plan::{
    Case, LONG_SEQ_LENS, LONG_SEQ_SHORT, Mode, ModelShape, Plan, SMALL_BATCH_SEQ_LEN,
    SMALL_BATCHES, Section,
};
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

/// How a target's figure reads: a ratio (`1.75x`) or a share (`80 %`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Ratio,
    Percent,
}

impl Unit {
    /// `value` in this unit, e.g. `1.75x` or `80 %`.
    pub fn show(self, value: f64) -> String {
        match self {
            Self::Ratio => format!("{value:.2}x"),
            Self::Percent => format!("{:.0} %", 100.0 * value),
        }
    }
}

impl Goal {
    /// Whether `value` meets the goal.
    pub fn met(self, value: f64) -> bool {
        match self {
            Self::AtLeast(g) => value >= g,
            Self::AtMost(g) => value <= g,
        }
    }

    /// E.g. `>= 2.00x` or `>= 80 %`.
    pub fn text(self, unit: Unit) -> String {
        match self {
            Self::AtLeast(g) => format!(">= {}", unit.show(g)),
            Self::AtMost(g) => format!("<= {}", unit.show(g)),
        }
    }
}

/// One of the issues' targets with its measured figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub name: String,
    pub goal: Goal,
    pub unit: Unit,
    pub measured: Option<f64>,
}

impl Target {
    /// `None` when not measured.
    pub fn met(&self) -> Option<bool> {
        self.measured.map(|v| self.goal.met(v))
    }
}

/// FLOPs of the FFN products of one forward of a classifier: fc1 and fc2 (2 · tokens · D ·
/// 4D each) for every token in all but the last block, and in the last block only the cls
/// token of each sequence (all its head reads).
pub fn ffn_flops(shape: &ModelShape, batch: usize) -> f64 {
    let d = shape.hidden_dim as f64;
    let per_token = 2.0 * 2.0 * d * (4.0 * d);
    let full_blocks = shape.num_layers.saturating_sub(1) as f64;
    let tokens = (batch * shape.sequence_length) as f64;
    let last = if shape.num_layers > 0 {
        batch as f64
    } else {
        0.0
    };
    per_token * (full_blocks * tokens + last)
}

/// The FFN FLOPs of a case: a forward's, or three times that for a training step (forward,
/// input gradient, weight gradient).
pub fn case_flops(case: &Case) -> f64 {
    let passes = if case.mode == Mode::Train { 3.0 } else { 1.0 };
    passes * ffn_flops(&case.shape, case.batch)
}

/// The floor of a case: its FFN FLOPs at the FMA peak (`peak_gflops`, all its threads), ms.
pub fn floor_ms(case: &Case, peak_gflops: f64) -> Option<f64> {
    stats::ratio(case_flops(case), peak_gflops * 1e9).map(|s| s * 1e3)
}

/// Issue 28's roofline target of a case, as the least `floor / our time`, if it has one:
/// training step 80 %; small forward b1 at n128 70 %, b4-b32 at n128 80 %; small and seed
/// forward at b8 (n512) 88 %.
pub fn floor_goal(case: &Case, main_threads: usize) -> Option<f64> {
    if case.threads != main_threads {
        return None;
    }
    let small = case.shape == ModelShape::SMALL;
    let seed = case.shape == ModelShape::SEED;
    let small_at = |n| {
        case.shape
            == ModelShape {
                sequence_length: n,
                ..ModelShape::SMALL
            }
    };
    match (case.mode, case.batch) {
        (Mode::Train, 8) if small => Some(0.80),
        (Mode::Forward, 8) if small || seed => Some(0.88),
        (Mode::Forward, 1) if small_at(SMALL_BATCH_SEQ_LEN) => Some(0.70),
        (Mode::Forward, b) if small_at(SMALL_BATCH_SEQ_LEN) && SMALL_BATCHES.contains(&b) => {
            Some(0.80)
        }
        _ => None,
    }
}

/// The least tokens/s of one sequence of 65,536 against 128 sequences of 512 (issue 28).
pub const LONG_SEQ_GOAL: f64 = 0.90;
/// "Our peak RSS grows linearly in n" (issue 28), with a tenth of slack for the allocator.
pub const RSS_GROWTH_GOAL: f64 = 1.10;

/// The issues' targets at the plan's main thread count: issue 28's floors (our FFN products'
/// floor at the FMA peak `peak_gflops(threads)` over our time) and the long-sequence ratio,
/// issue 6's memory against spectrans eager.
pub fn targets(
    plan: &Plan,
    summaries: &[Summary],
    results: &[CaseResult],
    peak_gflops: impl Fn(usize) -> Option<f64>,
) -> Vec<Target> {
    let t = plan.main_threads;
    let get = |shape: &ModelShape, batch: usize, mode: Mode| {
        plan.find(shape, batch, t, mode)
            .and_then(|i| summaries.get(i))
            .copied()
            .unwrap_or_default()
    };
    let mut targets = Vec::new();
    for (i, case) in plan.cases.iter().enumerate() {
        let Some(goal) = floor_goal(case, t) else {
            continue;
        };
        let measured = summaries
            .get(i)
            .and_then(|s| s.ours_ms)
            .zip(peak_gflops(case.threads))
            .and_then(|(ms, peak)| stats::ratio(floor_ms(case, peak)?, ms));
        targets.push(Target {
            name: format!(
                "{}: FFN floor at the FMA peak / our time",
                target_case_name(case)
            ),
            goal: Goal::AtLeast(goal),
            unit: Unit::Percent,
            measured,
        });
    }
    if plan.has(Section::Longseq) {
        targets.push(Target {
            name: format!(
                "tokens/s, one sequence of {} / {} sequences of {LONG_SEQ_SHORT} (ours, h256, 4 \
                 layers)",
                LONG_SEQ_LENS.last().copied().unwrap_or(0),
                LONG_SEQ_LENS.last().copied().unwrap_or(0) / LONG_SEQ_SHORT
            ),
            goal: Goal::AtLeast(LONG_SEQ_GOAL),
            unit: Unit::Percent,
            measured: longseq::long_vs_short(plan, results).map(|(r, ..)| r),
        });
        targets.push(Target {
            name: "our peak RSS grows linearly in n: MiB per token added from 32768 to 65536 / \
                   from 8192 to 32768 (batch 1)"
                .into(),
            goal: Goal::AtMost(RSS_GROWTH_GOAL),
            unit: Unit::Ratio,
            measured: longseq::rss_growth(plan, results),
        });
    }
    if plan.has(Section::Headline) {
        let small = get(&ModelShape::SMALL, 8, Mode::Forward);
        let seed = get(&ModelShape::SEED, 8, Mode::Forward);
        targets.extend([
            Target {
                name: "peak RSS of a forward process, small (ours / spectrans eager)".into(),
                goal: Goal::AtMost(0.5),
                unit: Unit::Ratio,
                measured: small.memory_ratio(),
            },
            Target {
                name: "peak RSS of a forward process, seed (ours / spectrans eager)".into(),
                goal: Goal::AtMost(0.5),
                unit: Unit::Ratio,
                measured: seed.memory_ratio(),
            },
        ]);
    }
    targets
}

/// E.g. `training step, small (h256, 4 layers, n512, b8)`.
fn target_case_name(case: &Case) -> String {
    let what = match case.mode {
        Mode::Train => "training step",
        Mode::Forward => "forward",
    };
    let size = if case.shape.hidden_dim == ModelShape::SEED.hidden_dim {
        "seed"
    } else {
        "small"
    };
    format!(
        "{what}, {size} (h{}, {} layers, n{}, b{})",
        case.shape.hidden_dim, case.shape.num_layers, case.shape.sequence_length, case.batch
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::plan::Effort;

    fn sample(ms: f64, rss: f64) -> Sample {
        Sample::of(ms, rss)
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
    fn no_peak_and_no_torch_mean_unmeasured_targets() -> Result<(), Box<dyn std::error::Error>> {
        let plan = Plan::new(&[2], Effort { quick: true })?;
        let r = CaseResult {
            ours: vec![sample(100.0, 50.0)],
            ..CaseResult::default()
        };
        let summaries = vec![Summary::of(&r); plan.cases.len()];
        let results = vec![r; plan.cases.len()];
        assert_eq!(summaries[0].speedup(), None);
        let t = targets(&plan, &summaries, &results, |_| None);
        // Only the long-sequence ratio needs neither: ours against ours.
        let judged: Vec<&str> = t
            .iter()
            .filter(|t| t.met().is_some())
            .map(|t| t.name.as_str())
            .collect();
        assert_eq!(judged.len(), 1, "{judged:?}");
        assert!(judged[0].starts_with("tokens/s, one sequence"));
        // With the peak, the floors are judged without PyTorch; the memory ratios are not.
        let t = targets(&plan, &summaries, &results, |_| Some(200.0));
        assert!(
            t.iter()
                .filter(|t| t.unit == Unit::Percent)
                .all(|t| t.met().is_some())
        );
        assert!(
            t.iter()
                .filter(|t| t.name.contains("RSS"))
                .all(|t| t.met().is_none())
        );
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
            vec![sample(60.0, 400.0)],
            vec![sample(210.0, 600.0)],
        ));
        let results = vec![CaseResult::default(); plan.cases.len()];
        let t = targets(&plan, &summaries, &results, |threads| {
            Some(100.0 * threads as f64)
        });
        // 12.9 GFLOP at 200 GFLOP/s is 64.5 ms: 107 % of 60 ms >= 88 %.
        let fwd = t
            .iter()
            .find(|t| {
                t.name
                    .starts_with("forward, small (h256, 4 layers, n512, b8)")
            })
            .ok_or("no small forward target")?;
        assert_eq!(fwd.met(), Some(true), "{fwd:?}");
        assert_eq!(fwd.goal.text(fwd.unit), ">= 88 %");
        let rss = t
            .iter()
            .find(|t| t.name.contains("RSS") && t.name.contains("small"))
            .ok_or("no RSS target")?;
        assert_eq!(rss.met(), Some(false), "0.67 > 0.5");
        let names: Vec<&str> = t.iter().map(|t| t.name.as_str()).collect();
        for needle in [
            "training step, small (h256, 4 layers, n512, b8)",
            "forward, seed (h768, 12 layers, n512, b8)",
            "forward, small (h256, 4 layers, n128, b1)",
            "forward, small (h256, 4 layers, n128, b4)",
            "forward, small (h256, 4 layers, n128, b16)",
            "forward, small (h256, 4 layers, n128, b32)",
            "one sequence of 65536 / 128 sequences of 512",
        ] {
            assert!(
                names.iter().any(|n| n.contains(needle)),
                "{needle} in {names:?}"
            );
        }
        // The 1-thread small forward and the seed batch-1 rows have no floor target.
        assert_eq!(t.iter().filter(|t| t.name.contains("FFN floor")).count(), 7);
        assert!(Goal::AtMost(0.5).met(0.5) && Goal::AtLeast(1.3).met(1.3));
        Ok(())
    }

    #[test]
    fn floor_goals_follow_issue_28() -> Result<(), Box<dyn std::error::Error>> {
        let plan = Plan::new(&[2], Effort { quick: true })?;
        let goal = |shape: &ModelShape, batch, mode| {
            plan.find(shape, batch, 2, mode)
                .and_then(|i| floor_goal(&plan.cases[i], 2))
        };
        let n128 = ModelShape {
            sequence_length: 128,
            ..ModelShape::SMALL
        };
        assert_eq!(goal(&ModelShape::SMALL, 8, Mode::Train), Some(0.80));
        assert_eq!(goal(&ModelShape::SEED, 8, Mode::Forward), Some(0.88));
        assert_eq!(goal(&n128, 1, Mode::Forward), Some(0.70));
        assert_eq!(goal(&n128, 32, Mode::Forward), Some(0.80));
        assert_eq!(goal(&ModelShape::SMALL, 1, Mode::Forward), None);
        Ok(())
    }
}

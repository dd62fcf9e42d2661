//! The long-sequence sweep (issue 28, item 4): batch 1, hidden 256, 4 layers, n from 512 to
//! 65,536, ours against PyTorch spectrans (eager and the rfft rewrite) and a standard
//! Transformer encoder of the same width and depth; the points a side cannot afford are
//! estimated first and skipped.
//!
//! A point is skipped when its estimate, scaled from the same side's nearest shorter point
//! measured in this run, needs more than [`TIME_LIMIT_S`] for its process (warm-up and timed
//! forwards) or more than [`MEMORY_LIMIT_MIB`] of peak memory. Time scales as `n log n` for
//! the GFNets and as `n²` for the Transformer (its attention; an over-estimate for its linear
//! parts), memory linearly for all (the Transformer runs flash attention, which keeps no
//! `n x n` scores; the whole RSS, runtime included, is scaled, an over-estimate).

use super::plan::{Case, LONG_SEQ_LENS, LONG_SEQ_SHORT, Mode, Plan, Section, long_seq_shape};
use super::runner::CaseResult;
use super::sample::{Impl, Sample, Variant};
use super::stats;

/// The most a point's process may take, estimated, before it is skipped (seconds).
pub const TIME_LIMIT_S: f64 = 120.0;
/// The most peak memory a point may need, estimated, before it is skipped (MiB: 16 GiB).
pub const MEMORY_LIMIT_MIB: f64 = 16.0 * 1024.0;

/// The sides of the sweep, in table order.
pub const SIDES: [Impl; 4] = [
    Impl::Ours,
    Impl::Torch(Variant::Spectrans),
    Impl::Torch(Variant::Rfft),
    Impl::Torch(Variant::Transformer),
];

/// What one process of a point is estimated to need.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// One forward, ms.
    pub forward_ms: f64,
    /// The whole process: warm-up, parity pass and timed forwards, s.
    pub process_s: f64,
    /// Peak resident memory, MiB.
    pub peak_rss_mb: f64,
    /// The shorter point it was scaled from.
    pub from_n: usize,
}

/// Whether `case` is a point of the long-sequence sweep: its sequence length, if so.
pub fn point_of(plan: &Plan, case: &Case) -> Option<usize> {
    let n = case.shape.sequence_length;
    (plan.has(Section::Longseq)
        && case.batch == 1
        && case.mode == Mode::Forward
        && case.threads == plan.main_threads
        && LONG_SEQ_LENS.contains(&n)
        && case.shape == long_seq_shape(n))
    .then_some(n)
}

/// Forwards a process of `side` runs for `case`: warm-up (ours at least 2, PyTorch at least
/// `--warmup` and 1), the parity pass of the rewritten variants (their own forward and the
/// reference's), and the timed ones.
pub fn forwards_per_process(case: &Case, side: Impl) -> usize {
    let warmup = match side {
        Impl::Ours => 2,
        Impl::Torch(_) => case.warmup.max(1),
    };
    let parity = match side {
        Impl::Torch(Variant::Spectrans | Variant::Transformer) | Impl::Ours => 0,
        Impl::Torch(_) => 2,
    };
    warmup + parity + case.iters
}

/// Scales a measured point (`from_n`, its median ms and peak RSS) to `n` for `side`.
pub fn scale(
    side: Impl,
    from_n: usize,
    ms: f64,
    rss_mb: f64,
    n: usize,
    forwards: usize,
) -> Estimate {
    let r = n as f64 / from_n.max(1) as f64;
    let time_factor = match side {
        Impl::Torch(Variant::Transformer) => r * r,
        _ => {
            let log = |x: usize| (x.max(2) as f64).log2();
            r * log(n) / log(from_n)
        }
    };
    let forward_ms = ms * time_factor;
    Estimate {
        forward_ms,
        process_s: forward_ms * forwards as f64 / 1e3,
        peak_rss_mb: rss_mb * r.max(1.0),
        from_n,
    }
}

/// Why `side` should not run `case`, when `case` is a long-sequence point whose estimate
/// (from the nearest shorter point of the same side measured so far, `done[i]` being case
/// `i`'s result) is over a limit, or whose shorter point was itself skipped or failed.
pub fn skip_reason(plan: &Plan, done: &[CaseResult], case: &Case, side: Impl) -> Option<String> {
    let n = point_of(plan, case)?;
    let shorter = LONG_SEQ_LENS
        .iter()
        .rev()
        .filter(|&&m| m < n)
        .find_map(|&m| {
            let i = plan.find(&long_seq_shape(m), 1, case.threads, Mode::Forward)?;
            Some((m, done.get(i)?))
        });
    let (from_n, result) = shorter?;
    if result.skip(side).is_some() {
        return Some(format!("n = {from_n} was skipped already"));
    }
    let samples: &[Sample] = result.samples(side);
    let ms = stats::median(&samples.iter().map(|s| s.median_ms).collect::<Vec<_>>());
    let rss = stats::median(
        &samples
            .iter()
            .filter_map(|s| s.peak_rss_mb)
            .collect::<Vec<_>>(),
    );
    let Some(ms) = ms else {
        return result.failure(side).map(|_| format!("n = {from_n} failed"));
    };
    let e = scale(
        side,
        from_n,
        ms,
        rss.unwrap_or(0.0),
        n,
        forwards_per_process(case, side),
    );
    if e.process_s > TIME_LIMIT_S {
        Some(format!(
            "estimated {:.0} s per forward, {:.0} s for the {} forwards of a process \
             (from {:.0} ms at n = {from_n}, {}), over the {TIME_LIMIT_S:.0} s limit",
            e.forward_ms / 1e3,
            e.process_s,
            forwards_per_process(case, side),
            ms,
            growth(side)
        ))
    } else if e.peak_rss_mb > MEMORY_LIMIT_MIB {
        Some(format!(
            "estimated {:.1} GiB peak (from {:.0} MiB at n = {from_n}, linear), over the \
             {:.0} GiB limit",
            e.peak_rss_mb / 1024.0,
            rss.unwrap_or(0.0),
            MEMORY_LIMIT_MIB / 1024.0
        ))
    } else {
        None
    }
}

fn growth(side: Impl) -> &'static str {
    match side {
        Impl::Torch(Variant::Transformer) => "growing as n²",
        _ => "growing as n log n",
    }
}

/// One side's figures at one point: its median time and RSS, or why there are none.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Median ms per forward and median peak RSS (MiB) over processes.
    Measured { ms: f64, rss_mb: Option<f64> },
    /// Not run: the estimate was over a limit.
    Skipped(String),
    /// Ran and failed.
    Failed(String),
    /// Not measured in this run (no PyTorch, say).
    Missing,
}

impl Cell {
    /// The cell of `side` in `result`.
    pub fn of(result: &CaseResult, side: Impl) -> Self {
        let samples = result.samples(side);
        let ms = stats::median(&samples.iter().map(|s| s.median_ms).collect::<Vec<_>>());
        let rss = stats::median(
            &samples
                .iter()
                .filter_map(|s| s.peak_rss_mb)
                .collect::<Vec<_>>(),
        );
        match (ms, result.skip(side), result.failure(side)) {
            (Some(ms), _, _) => Self::Measured { ms, rss_mb: rss },
            (None, Some(why), _) => Self::Skipped(why.to_owned()),
            (None, None, Some(why)) => Self::Failed(why.to_owned()),
            (None, None, None) => Self::Missing,
        }
    }

    /// Tokens per second of one sequence of `n`, when measured.
    pub fn tokens_per_s(&self, n: usize) -> Option<f64> {
        match self {
            Self::Measured { ms, .. } => stats::tokens_per_s(1, n, *ms),
            _ => None,
        }
    }
}

/// The sweep: per point, its sequence length and each side's cell (in [`SIDES`] order).
pub fn rows(plan: &Plan, results: &[CaseResult]) -> Vec<(usize, Vec<Cell>)> {
    LONG_SEQ_LENS
        .iter()
        .filter_map(|&n| {
            let i = plan.find(&long_seq_shape(n), 1, plan.main_threads, Mode::Forward)?;
            let result = results.get(i)?;
            Some((n, SIDES.iter().map(|&s| Cell::of(result, s)).collect()))
        })
        .collect()
}

/// Our tokens/s on one sequence of the longest length over ours on sequences of
/// [`LONG_SEQ_SHORT`] with the same tokens: `(ratio, long tokens/s, short tokens/s, batch)`.
pub fn long_vs_short(plan: &Plan, results: &[CaseResult]) -> Option<(f64, f64, f64, usize)> {
    let longest = *LONG_SEQ_LENS.last()?;
    let batch = (longest / LONG_SEQ_SHORT).max(1);
    let t = plan.main_threads;
    let ours_ms = |shape, batch| {
        let i = plan.find(&shape, batch, t, Mode::Forward)?;
        let s = results.get(i)?.samples(Impl::Ours);
        stats::median(&s.iter().map(|s| s.median_ms).collect::<Vec<_>>())
    };
    let long = stats::tokens_per_s(1, longest, ours_ms(long_seq_shape(longest), 1)?)?;
    let short = stats::tokens_per_s(
        batch,
        LONG_SEQ_SHORT,
        ours_ms(long_seq_shape(LONG_SEQ_SHORT), batch)?,
    )?;
    Some((stats::ratio(long, short)?, long, short, batch))
}

/// How far our peak RSS is from growing linearly in n: MiB per token added over the last
/// step of the sweep (its two longest points) over MiB per token added over the step before
/// (1.0 when the growth is linear; the runtime's fixed share cancels out).
pub fn rss_growth(plan: &Plan, results: &[CaseResult]) -> Option<f64> {
    let k = LONG_SEQ_LENS.len();
    let [a, b, c] = [
        *LONG_SEQ_LENS.get(k.checked_sub(3)?)?,
        LONG_SEQ_LENS[k - 2],
        LONG_SEQ_LENS[k - 1],
    ];
    let rss = |n: usize| {
        let i = plan.find(&long_seq_shape(n), 1, plan.main_threads, Mode::Forward)?;
        let s = results.get(i)?.samples(Impl::Ours);
        stats::median(&s.iter().filter_map(|s| s.peak_rss_mb).collect::<Vec<_>>())
    };
    let (ra, rb, rc) = (rss(a)?, rss(b)?, rss(c)?);
    let last = (rc - rb) / (c - b) as f64;
    let before = (rb - ra) / (b - a) as f64;
    stats::ratio(last, before)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::plan::Effort;

    fn sample(ms: f64, rss: f64) -> Sample {
        Sample::of(ms, rss)
    }

    fn longseq_plan() -> Result<Plan, crate::bench::BenchError> {
        Plan::with_sections(&[2], Effort { quick: true }, &[Section::Longseq])
    }

    #[test]
    fn the_sweep_is_its_points_and_the_same_tokens_in_short_sequences()
    -> Result<(), Box<dyn std::error::Error>> {
        let plan = longseq_plan()?;
        assert_eq!(plan.cases.len(), LONG_SEQ_LENS.len() + 1);
        let points: Vec<usize> = plan
            .cases
            .iter()
            .filter_map(|c| point_of(&plan, c))
            .collect();
        assert_eq!(points, LONG_SEQ_LENS);
        let last = plan
            .cases
            .last()
            .map(|c| (c.batch, c.shape.sequence_length));
        assert_eq!(last, Some((128, 512)));
        assert!(plan.cases.last().is_some_and(|c| c.variants.is_empty()));
        assert!(
            plan.cases[0].variants.contains(&Variant::Transformer)
                && !plan.cases[0].has_every_variant()
        );
        Ok(())
    }

    #[test]
    fn time_scales_as_n_log_n_or_n_squared() {
        let gf = scale(Impl::Ours, 1024, 10.0, 100.0, 4096, 5);
        // 4x the tokens, log 12 / log 10 = 1.2: 48 ms.
        assert!((gf.forward_ms - 48.0).abs() < 1e-9, "{gf:?}");
        assert!((gf.process_s - 0.24).abs() < 1e-9);
        assert_eq!(gf.peak_rss_mb, 400.0);
        let tf = scale(
            Impl::Torch(Variant::Transformer),
            1024,
            10.0,
            100.0,
            4096,
            5,
        );
        assert_eq!(tf.forward_ms, 160.0);
    }

    #[test]
    fn a_point_over_the_time_limit_is_skipped_and_so_are_the_longer_ones()
    -> Result<(), Box<dyn std::error::Error>> {
        let plan = longseq_plan()?;
        let tf = Impl::Torch(Variant::Transformer);
        let mut done = vec![CaseResult::default(); 2];
        // n = 512 took 100 ms, n = 2048 8 s: n = 8192 would take 128 s per forward.
        done[0].push(tf, sample(100.0, 600.0));
        done[0].push(Impl::Ours, sample(2.0, 20.0));
        done[1].push(tf, sample(8000.0, 650.0));
        done[1].push(Impl::Ours, sample(10.0, 25.0));
        assert_eq!(skip_reason(&plan, &done, &plan.cases[0], tf), None);
        let why = skip_reason(&plan, &done, &plan.cases[2], tf).ok_or("not skipped")?;
        assert!(
            why.contains("128 s per forward") && why.contains("n²"),
            "{why}"
        );
        assert_eq!(skip_reason(&plan, &done, &plan.cases[2], Impl::Ours), None);
        done.push(CaseResult::default());
        done[2].skipped.push((tf, why));
        let next = skip_reason(&plan, &done, &plan.cases[3], tf).ok_or("not skipped")?;
        assert!(next.contains("8192 was skipped"), "{next}");
        // The comparison case is not a point of the sweep.
        let last = plan.cases.last().ok_or("no cases")?;
        assert_eq!(skip_reason(&plan, &done, last, Impl::Ours), None);
        Ok(())
    }

    #[test]
    fn memory_over_the_limit_is_skipped() -> Result<(), Box<dyn std::error::Error>> {
        let plan = longseq_plan()?;
        let mut done = vec![CaseResult::default(); 2];
        done[1].push(Impl::Ours, sample(1.0, 5000.0));
        // 4x of 5000 MiB is 19.5 GiB.
        let why = skip_reason(&plan, &done, &plan.cases[2], Impl::Ours).ok_or("not skipped")?;
        assert!(why.contains("19.5 GiB"), "{why}");
        Ok(())
    }

    #[test]
    fn cells_and_the_long_against_short_ratio() -> Result<(), Box<dyn std::error::Error>> {
        let plan = longseq_plan()?;
        let mut results = vec![CaseResult::default(); plan.cases.len()];
        let last = LONG_SEQ_LENS.len() - 1;
        results[last].push(Impl::Ours, sample(2000.0, 300.0));
        results[last]
            .skipped
            .push((Impl::Torch(Variant::Transformer), "too long".into()));
        results[last + 1].push(Impl::Ours, sample(1600.0, 200.0));
        let (ratio, long, short, batch) = long_vs_short(&plan, &results).ok_or("no comparison")?;
        assert_eq!(batch, 128);
        assert!((long - 32768.0).abs() < 1e-6 && (short - 40960.0).abs() < 1e-6);
        assert!((ratio - 0.8).abs() < 1e-12);
        let rows = rows(&plan, &results);
        assert_eq!(rows.len(), LONG_SEQ_LENS.len());
        assert_eq!(
            rows[last].1[3],
            Cell::Skipped("too long".into()),
            "{:?}",
            rows[last]
        );
        assert_eq!(rows[0].1[0], Cell::Missing);
        Ok(())
    }

    #[test]
    fn linear_memory_growth_is_one() -> Result<(), Box<dyn std::error::Error>> {
        let plan = longseq_plan()?;
        let mut results = vec![CaseResult::default(); plan.cases.len()];
        // 20 MiB of runtime and 10 KiB per token: 8192, 32768, 65536 tokens.
        for (i, &n) in LONG_SEQ_LENS.iter().enumerate() {
            results[i].push(Impl::Ours, sample(1.0, 20.0 + n as f64 / 100.0));
        }
        let g = rss_growth(&plan, &results).ok_or("no growth")?;
        assert!((g - 1.0).abs() < 1e-9, "{g}");
        // Twice the memory per token over the last step: 2.
        results[LONG_SEQ_LENS.len() - 1].ours[0].peak_rss_mb =
            Some(20.0 + 32768.0 / 100.0 + 2.0 * 32768.0 / 100.0);
        let g = rss_growth(&plan, &results).ok_or("no growth")?;
        assert!((g - 2.0).abs() < 1e-9, "{g}");
        Ok(())
    }
}

//! What `cargo xtask bench` measures: the headline configs, the sweeps over sequence
//! length and hidden size, and the thread-scaling runs, as a list of unique [`Case`]s.

use std::fs;
use std::path::{Path, PathBuf};

use super::error::BenchError;
use super::sample::Variant;

/// Tokens per batch in the sequence-length sweep: `batch = TOKENS_PER_BATCH / seq_len`.
pub const TOKENS_PER_BATCH: usize = 4096;
/// Sequence lengths of the sweep (hidden 256, 4 layers).
pub const SWEEP_SEQ_LENS: &[usize] = &[128, 256, 512, 1024, 2048, 4096];
/// Hidden sizes of the sweep (sequence 512, batch 8, 4 layers).
pub const SWEEP_HIDDEN: &[usize] = &[128, 256, 512, 768];
/// Sequence lengths of the batch-1 (serving latency) rows, at the small and seed widths.
pub const LATENCY_SEQ_LENS: &[usize] = &[128, 512];
/// Batches of the small-batch serving rows (small config at n = 128), besides batch 1.
pub const SMALL_BATCHES: &[usize] = &[4, 16, 32];
/// Sequence length of the small-batch rows.
pub const SMALL_BATCH_SEQ_LEN: usize = 128;
/// Sequence lengths of the long-sequence sweep (batch 1, hidden 256, 4 layers).
pub const LONG_SEQ_LENS: &[usize] = &[512, 2048, 8192, 32768, 65536];
/// The long-sequence comparison: the longest point against this many sequences of
/// [`LONG_SEQ_SHORT`] tokens, the same token count.
pub const LONG_SEQ_SHORT: usize = 512;

/// The parts of the model benchmark, selectable with `--only` (every part by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Section {
    /// The headline configs: small and seed forward at b8, the small training step.
    Headline,
    /// Batch-1 forwards at n = 128 and 512, small and seed.
    Latency,
    /// Small config at n = 128, batches 4, 16 and 32.
    SmallBatch,
    /// Sequence-length sweep at 4096 tokens per batch.
    SeqSweep,
    /// Hidden-size sweep.
    HiddenSweep,
    /// Thread scaling of the small forward.
    Threads,
    /// The long-sequence sweep (batch 1 up to n = 65,536) with the Transformer baseline.
    Longseq,
    /// The GEMM table (the FMA peak is measured in every run: the floors need it).
    Gemm,
    /// The perf profiles of the forward and the training step.
    Profile,
}

impl Section {
    /// Every section: the full run.
    pub const ALL: [Self; 9] = [
        Self::Headline,
        Self::Latency,
        Self::SmallBatch,
        Self::SeqSweep,
        Self::HiddenSweep,
        Self::Threads,
        Self::Longseq,
        Self::Gemm,
        Self::Profile,
    ];
}

/// A model shape that the benchmark writes as a TOML config.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelShape {
    pub hidden_dim: usize,
    pub num_layers: usize,
    pub sequence_length: usize,
    pub vocab_size: usize,
    pub num_classes: usize,
}

impl ModelShape {
    /// The "small" config: hidden 256, 4 layers, sequence 512, vocab 1000, 2 classes.
    pub const SMALL: Self = Self {
        hidden_dim: 256,
        num_layers: 4,
        sequence_length: 512,
        vocab_size: 1000,
        num_classes: 2,
    };
    /// The "seed" config: hidden 768, 12 layers, sequence 512, vocab 30000, 2 classes.
    pub const SEED: Self = Self {
        hidden_dim: 768,
        num_layers: 12,
        sequence_length: 512,
        vocab_size: 30000,
        num_classes: 2,
    };

    /// A stable file stem, e.g. `h256-l4-n512-v1000-c2`.
    pub fn stem(&self) -> String {
        format!(
            "h{}-l{}-n{}-v{}-c{}",
            self.hidden_dim,
            self.num_layers,
            self.sequence_length,
            self.vocab_size,
            self.num_classes
        )
    }

    /// The `[model]` TOML that both implementations read.
    pub fn to_toml(&self) -> String {
        format!(
            "# Written by `cargo xtask bench`.\n[model]\nmodel_type = \"gfnet\"\n\
             hidden_dim = {}\nnum_layers = {}\nsequence_length = {}\nvocab_size = {}\n\
             num_classes = {}\ndropout = 0.0\noutput_type = \"classification\"\n",
            self.hidden_dim,
            self.num_layers,
            self.sequence_length,
            self.vocab_size,
            self.num_classes
        )
    }
}

/// Forward (eval mode) or one training step (cross-entropy, AdamW).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    Forward,
    Train,
}

/// One measurement: a config, a batch, a thread count and a mode, run `rounds` times per side.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub shape: ModelShape,
    pub batch: usize,
    pub threads: usize,
    pub mode: Mode,
    /// Timed runs inside each process.
    pub iters: usize,
    /// Untimed runs before them (PyTorch side; ours always warms up twice).
    pub warmup: usize,
    /// Fresh processes per side, alternated ours, torch, ours, torch, ...
    pub rounds: usize,
    /// The PyTorch variants measured next to ours (spectrans eager always; every variant
    /// on the headline and batch-1 cases).
    pub variants: Vec<Variant>,
}

impl Case {
    /// What identifies the work measured (not how often): equal keys are the same measurement.
    pub fn key(&self) -> (ModelShape, usize, usize, Mode) {
        (self.shape.clone(), self.batch, self.threads, self.mode)
    }

    /// Processes of `variant` per case: every round for the eager variants, at most two for
    /// those that compile or export first (tens of seconds per process before any timing).
    /// The Transformer baseline runs once per case: at long sequences one process is minutes.
    pub fn rounds_of(&self, variant: Variant) -> usize {
        match variant {
            Variant::Spectrans | Variant::Rfft => self.rounds,
            Variant::SpectransCompile | Variant::RfftCompile | Variant::Onnx => self.rounds.min(2),
            Variant::Transformer => self.rounds.min(1),
        }
    }

    /// Whether the case runs every way of running the model in PyTorch that can do its work
    /// (the rows of the side-by-side and floor tables).
    pub fn has_every_variant(&self) -> bool {
        Variant::ALL
            .iter()
            .all(|v| self.variants.contains(v) || (self.mode == Mode::Train && !v.trains()))
    }

    /// A short human label, e.g. `h256 l4 n512 b8 t2 forward`.
    pub fn label(&self) -> String {
        format!(
            "h{} l{} n{} b{} t{} {}",
            self.shape.hidden_dim,
            self.shape.num_layers,
            self.shape.sequence_length,
            self.batch,
            self.threads,
            match self.mode {
                Mode::Forward => "forward",
                Mode::Train => "train",
            }
        )
    }
}

/// How hard to measure: the full run, or a smoke run with fewer iterations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effort {
    pub quick: bool,
}

impl Effort {
    /// (iters, warmup, rounds) for a case whose PyTorch forward takes about `torch_ms_guess`.
    pub fn repetitions(self, torch_ms_guess: f64) -> (usize, usize, usize) {
        match (self.quick, torch_ms_guess) {
            (true, t) if t > 2000.0 => (1, 1, 1),
            (true, _) => (3, 1, 1),
            (false, t) if t > 2000.0 => (3, 1, 2),
            // Five processes, as for the fast cases: the training step (a guess near 1 s)
            // varied 279-320 ms across three processes on a shared 2-core VM, so a median of
            // three moved the headline ratio by a tenth.
            (false, t) if t > 600.0 => (5, 1, 5),
            (false, _) => (10, 2, 5),
        }
    }
}

/// A rough PyTorch time in ms (2 threads, this machine class) that picks the repetitions:
/// proportional to layers * tokens * (hidden^2 * 8 + hidden * log2(seq) * 10), calibrated on
/// the small config (~350 ms), times 3 for a training step, times 1.8 at one thread.
pub fn torch_ms_guess(shape: &ModelShape, batch: usize, threads: usize, mode: Mode) -> f64 {
    let work = |s: &ModelShape, b: usize| {
        let d = s.hidden_dim as f64;
        let n = s.sequence_length as f64;
        s.num_layers as f64 * b as f64 * n * (8.0 * d * d + 10.0 * d * n.log2())
    };
    let base = 350.0 * work(shape, batch) / work(&ModelShape::SMALL, 8);
    let mode_factor = if mode == Mode::Train { 3.0 } else { 1.0 };
    let thread_factor = if threads <= 1 {
        1.8
    } else {
        2.0 / threads as f64
    };
    base * mode_factor * thread_factor
}

/// The model of the long-sequence sweep at `n`: the small config with its filter at length
/// `n` (so no resampling).
pub fn long_seq_shape(n: usize) -> ModelShape {
    ModelShape {
        sequence_length: n,
        ..ModelShape::SMALL
    }
}

/// The batch of the sequence sweep at `seq_len`: `max(1, TOKENS_PER_BATCH / seq_len)`.
pub fn sweep_batch(seq_len: usize) -> usize {
    (TOKENS_PER_BATCH / seq_len.max(1)).max(1)
}

/// Every benchmark of one run and the tables that use them.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Unique cases in the order they run.
    pub cases: Vec<Case>,
    /// The thread count of the headline table and the sweeps (the largest asked for).
    pub main_threads: usize,
    /// All thread counts asked for, ascending.
    pub thread_counts: Vec<usize>,
    /// The sections this run measures and reports, sorted.
    pub sections: Vec<Section>,
}

impl Plan {
    /// Builds the plan of every section for `threads` (at least one count, each >= 1).
    #[cfg(test)]
    pub fn new(threads: &[usize], effort: Effort) -> Result<Self, BenchError> {
        Self::with_sections(threads, effort, &Section::ALL)
    }

    /// Builds the plan of `sections` only (cases shared with a section left out are still
    /// measured when a chosen section needs them).
    pub fn with_sections(
        threads: &[usize],
        effort: Effort,
        sections: &[Section],
    ) -> Result<Self, BenchError> {
        let mut thread_counts: Vec<usize> = threads.to_vec();
        thread_counts.sort_unstable();
        thread_counts.dedup();
        let main_threads = *thread_counts
            .last()
            .ok_or_else(|| BenchError::Usage("--threads needs at least one count".into()))?;
        if thread_counts.first() == Some(&0) {
            return Err(BenchError::Usage("--threads counts must be >= 1".into()));
        }
        let mut plan = Self {
            cases: Vec::new(),
            main_threads,
            thread_counts: thread_counts.clone(),
            sections: sections.to_vec(),
        };
        plan.sections.sort_unstable();
        plan.sections.dedup();
        let t = main_threads;
        let every = Variant::ALL.as_slice();
        let has = |s: Section| sections.contains(&s);
        if has(Section::Headline) {
            plan.add_with(ModelShape::SMALL, 8, t, Mode::Forward, effort, every);
            plan.add_with(ModelShape::SEED, 8, t, Mode::Forward, effort, every);
            plan.add_with(ModelShape::SMALL, 8, t, Mode::Train, effort, every);
        }
        if has(Section::Latency) {
            for base in [ModelShape::SMALL, ModelShape::SEED] {
                for &n in LATENCY_SEQ_LENS {
                    let shape = ModelShape {
                        sequence_length: n,
                        ..base.clone()
                    };
                    plan.add_with(shape, 1, t, Mode::Forward, effort, every);
                }
            }
        }
        if has(Section::SmallBatch) {
            for &b in SMALL_BATCHES {
                let shape = ModelShape {
                    sequence_length: SMALL_BATCH_SEQ_LEN,
                    ..ModelShape::SMALL
                };
                plan.add_with(shape, b, t, Mode::Forward, effort, every);
            }
        }
        if has(Section::SeqSweep) {
            for &n in SWEEP_SEQ_LENS {
                let shape = ModelShape {
                    sequence_length: n,
                    ..ModelShape::SMALL
                };
                plan.add(shape, sweep_batch(n), t, Mode::Forward, effort);
            }
        }
        if has(Section::HiddenSweep) {
            for &d in SWEEP_HIDDEN {
                let shape = ModelShape {
                    hidden_dim: d,
                    ..ModelShape::SMALL
                };
                plan.add(shape, 8, t, Mode::Forward, effort);
            }
        }
        if has(Section::Threads) {
            for &threads in &thread_counts {
                plan.add_with(ModelShape::SMALL, 8, threads, Mode::Forward, effort, every);
            }
        }
        if has(Section::Longseq) {
            let baselines = [Variant::Spectrans, Variant::Rfft, Variant::Transformer];
            for &n in LONG_SEQ_LENS {
                plan.add_with(long_seq_shape(n), 1, t, Mode::Forward, effort, &baselines);
            }
            // The same tokens as the longest point in sequences of 512: ours only.
            let longest = LONG_SEQ_LENS.last().copied().unwrap_or(LONG_SEQ_SHORT);
            let batch = (longest / LONG_SEQ_SHORT).max(1);
            plan.add_with(
                long_seq_shape(LONG_SEQ_SHORT),
                batch,
                t,
                Mode::Forward,
                effort,
                &[],
            );
        }
        Ok(plan)
    }

    /// Whether `section` was asked for.
    pub fn has(&self, section: Section) -> bool {
        self.sections.contains(&section)
    }

    /// Adds a case measured against spectrans eager only.
    fn add(&mut self, shape: ModelShape, batch: usize, threads: usize, mode: Mode, e: Effort) {
        self.add_with(shape, batch, threads, mode, e, &[Variant::Spectrans]);
    }

    /// Adds a case against `variants` (those that can do `mode`), or adds the variants to the
    /// case already planned for the same work.
    fn add_with(
        &mut self,
        shape: ModelShape,
        batch: usize,
        threads: usize,
        mode: Mode,
        e: Effort,
        variants: &[Variant],
    ) {
        let (iters, warmup, rounds) = e.repetitions(torch_ms_guess(&shape, batch, threads, mode));
        let variants: Vec<Variant> = variants
            .iter()
            .copied()
            .filter(|v| mode == Mode::Forward || v.trains())
            .collect();
        let case = Case {
            shape,
            batch,
            threads,
            mode,
            iters,
            warmup,
            rounds,
            variants,
        };
        match self.cases.iter_mut().find(|c| c.key() == case.key()) {
            Some(planned) => {
                for v in case.variants {
                    if !planned.variants.contains(&v) {
                        planned.variants.push(v);
                    }
                }
                planned.variants.sort();
            }
            None => self.cases.push(case),
        }
    }

    /// The planned case for this work, if any.
    pub fn find(
        &self,
        shape: &ModelShape,
        batch: usize,
        threads: usize,
        mode: Mode,
    ) -> Option<usize> {
        let key = (shape.clone(), batch, threads, mode);
        self.cases.iter().position(|c| c.key() == key)
    }
}

/// Writes the TOML of every shape of `plan` under `dir`; returns the path per case.
pub fn write_configs(plan: &Plan, dir: &Path) -> Result<Vec<PathBuf>, BenchError> {
    fs::create_dir_all(dir).map_err(BenchError::io(dir))?;
    plan.cases
        .iter()
        .map(|case| {
            let path = dir.join(format!("{}.toml", case.shape.stem()));
            fs::write(&path, case.shape.to_toml()).map_err(BenchError::io(&path))?;
            Ok(path)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_work_is_measured_once() -> Result<(), BenchError> {
        let plan = Plan::new(&[2, 1], Effort { quick: true })?;
        // small fwd t2, seed, small train, 4 batch-1 rows, b4 and b16 at n128 (b32 is the
        // sweep's n128), 6 seq points (512 = small), 4 hidden (256 = small), small fwd t1
        // (t2 = small), long sequences 2048 to 65536 at b1 (512 b1 is a batch-1 row) and
        // 128 x 512.
        assert_eq!(plan.cases.len(), 3 + 4 + 2 + 5 + 3 + 1 + 4 + 1);
        assert_eq!(plan.main_threads, 2);
        assert_eq!(plan.thread_counts, vec![1, 2]);
        assert_eq!(
            plan.find(&ModelShape::SMALL, sweep_batch(512), 2, Mode::Forward),
            Some(0)
        );
        Ok(())
    }

    #[test]
    fn headline_cases_run_every_variant_that_can_do_their_work() -> Result<(), BenchError> {
        let plan = Plan::new(&[1, 2], Effort { quick: true })?;
        let case = |shape: &ModelShape, batch, threads, mode| {
            plan.find(shape, batch, threads, mode)
                .map(|i| plan.cases[i].variants.clone())
        };
        let every = Variant::ALL.to_vec();
        assert_eq!(
            case(&ModelShape::SMALL, 8, 2, Mode::Forward),
            Some(every.clone())
        );
        assert_eq!(
            case(&ModelShape::SEED, 8, 2, Mode::Forward),
            Some(every.clone())
        );
        let seed_128 = ModelShape {
            sequence_length: 128,
            ..ModelShape::SEED
        };
        assert_eq!(case(&seed_128, 1, 2, Mode::Forward), Some(every));
        let train = case(&ModelShape::SMALL, 8, 2, Mode::Train)
            .ok_or(BenchError::Usage("no training case".into()))?;
        assert!(!train.contains(&Variant::Onnx) && train.contains(&Variant::RfftCompile));
        let hidden_512 = ModelShape {
            hidden_dim: 512,
            ..ModelShape::SMALL
        };
        assert_eq!(
            case(&hidden_512, 8, 2, Mode::Forward),
            Some(vec![Variant::Spectrans])
        );
        Ok(())
    }

    #[test]
    fn sweep_batches_keep_the_token_count() {
        for &n in SWEEP_SEQ_LENS {
            assert_eq!(sweep_batch(n) * n, TOKENS_PER_BATCH, "{n}");
        }
        assert_eq!(sweep_batch(8192), 1);
    }

    #[test]
    fn rejects_missing_or_zero_threads() {
        assert!(Plan::new(&[], Effort { quick: false }).is_err());
        assert!(Plan::new(&[0, 2], Effort { quick: false }).is_err());
    }

    #[test]
    fn heavy_cases_get_fewer_iterations() {
        let full = Effort { quick: false };
        let small = torch_ms_guess(&ModelShape::SMALL, 8, 2, Mode::Forward);
        let seed = torch_ms_guess(&ModelShape::SEED, 8, 2, Mode::Forward);
        assert!((300.0..400.0).contains(&small), "{small}");
        assert!(seed > 2000.0, "{seed}");
        assert_eq!(full.repetitions(seed), (3, 1, 2));
        assert_eq!(full.repetitions(small), (10, 2, 5));
    }

    #[test]
    fn config_toml_is_a_valid_model_config() -> Result<(), Box<dyn std::error::Error>> {
        let config = spectrans_config::Config::from_toml_str(&ModelShape::SEED.to_toml())?;
        assert_eq!(config.hidden_dim(), 768);
        assert_eq!(config.num_layers(), 12);
        Ok(())
    }
}

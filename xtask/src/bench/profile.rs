//! "Where the time goes": samples a forward of our binary with `perf record` (cpu-clock,
//! DWARF call stacks), then attributes every sample to a part of the model by its stack.
//!
//! A sample belongs to the first frame, leaf first, that names a known part: GEMM kernels,
//! the FFT global filter, LayerNorm, GELU (erf), the embedding, Linear/FFN glue (bias adds,
//! copies), the block's residual adds. Samples under model construction (random weights,
//! random inputs) are setup and left out of the shares. Inlined functions count as frames
//! (`perf script --inline`), so a closure inlined into a rayon job is still attributed.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use super::error::BenchError;
use super::runner::run_checked;

/// The parts a forward's time is split into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Part {
    /// Matrix products of the Linear layers (spectrans-linalg: our sgemm kernels, packing,
    /// the `gemm` door and its epilogue; the `gemm` crate).
    Gemm,
    /// The global filter: rfft, spectral product, irfft, filter preparation.
    FftFilter,
    /// LayerNorm moments and affine map.
    LayerNorm,
    /// GELU (erf) activation.
    Gelu,
    /// Token embedding gather and positional encoding.
    Embedding,
    /// Bias adds, copies and buffers of Linear and the feed-forward network.
    LinearGlue,
    /// Residual adds and other work of the block itself.
    Residual,
    /// Rayon's pool: waiting, stealing, waking threads.
    ThreadPool,
    /// Kernel-only stacks (page faults, scheduling) that no frame of ours explains.
    Kernel,
    /// Anything else (the head, the process's own bookkeeping, unknown frames).
    Other,
    /// Building the model and its inputs: not part of a forward, left out of the shares.
    Setup,
}

impl Part {
    /// The row label in the report.
    pub fn label(self) -> &'static str {
        match self {
            Self::Gemm => "GEMM (Linear fc1/fc2, head)",
            Self::FftFilter => "FFT global filter (rfft, filter, irfft)",
            Self::LayerNorm => "LayerNorm",
            Self::Gelu => "GELU (erf)",
            Self::Embedding => "embedding + positional encoding",
            Self::LinearGlue => "Linear/FFN glue (bias, copies, buffers)",
            Self::Residual => "residual adds (block)",
            Self::ThreadPool => "thread pool (rayon wait/steal)",
            Self::Kernel => "kernel only (page faults, scheduling)",
            Self::Other => "other",
            Self::Setup => "setup (random weights and inputs; excluded)",
        }
    }
}

/// One frame of a call stack: a function name and, where perf knows it, `file.rs:line`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub symbol: String,
    pub source: Option<String>,
}

/// One sample: its weight (cpu-clock period, ns) and its frames, leaf first.
#[derive(Debug, Clone, PartialEq)]
pub struct StackSample {
    pub period: u64,
    pub frames: Vec<Frame>,
}

/// Parses `perf script -F tid,period,ip,sym,srcline --inline` output.
///
/// A sample starts with a header line `<tid> <period>`, then one line per frame
/// (`\t<addr> <symbol>`), each optionally followed by its source line (`  file.rs:12` with
/// ` (inlined)` for an inlined frame). perf prints a physical frame's symbol first with the
/// innermost source line, then its inlined callees' chain from the innermost outwards; this
/// reorders each physical frame to leaf-first: its source line, its inlined frames, its symbol.
pub fn parse_perf_script(text: &str) -> Vec<StackSample> {
    let mut samples = Vec::new();
    let mut current: Option<(u64, Vec<RawFrame>)> = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('\t') {
            if let Some((_, frames)) = current.as_mut() {
                let rest = rest.trim_start();
                let symbol = rest.split_once(' ').map_or("", |(_, s)| s).trim();
                frames.push(RawFrame {
                    symbol: symbol.to_owned(),
                    source: None,
                    inlined: false,
                });
            }
        } else if let Some(period) = header_period(line) {
            if let Some((p, frames)) = current.take() {
                samples.push(finish(p, frames));
            }
            current = Some((period, Vec::new()));
        } else if let Some((_, frames)) = current.as_mut()
            && let Some(last) = frames.last_mut()
        {
            let src = line.trim();
            let (src, inlined) = match src.strip_suffix("(inlined)") {
                Some(s) => (s.trim(), true),
                None => (src, false),
            };
            last.source = Some(src.to_owned());
            last.inlined = inlined;
        }
    }
    if let Some((p, frames)) = current {
        samples.push(finish(p, frames));
    }
    samples
}

#[derive(Debug)]
struct RawFrame {
    symbol: String,
    source: Option<String>,
    inlined: bool,
}

/// `Some(period)` for a header line of only integers (`tid period`).
fn header_period(line: &str) -> Option<u64> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() < 2 || !fields.iter().all(|f| f.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    fields.last()?.parse().ok()
}

/// Orders the frames leaf first (see [`parse_perf_script`]).
fn finish(period: u64, raw: Vec<RawFrame>) -> StackSample {
    let mut frames = Vec::with_capacity(raw.len() + 4);
    let mut group: Vec<RawFrame> = Vec::new();
    let flush = |group: &mut Vec<RawFrame>, frames: &mut Vec<Frame>| {
        let mut it = group.drain(..);
        if let Some(physical) = it.next() {
            frames.push(Frame {
                symbol: String::new(),
                source: physical.source,
            });
            frames.extend(it.map(|f| Frame {
                symbol: f.symbol,
                source: f.source,
            }));
            frames.push(Frame {
                symbol: physical.symbol,
                source: None,
            });
        }
    };
    for f in raw {
        if !f.inlined {
            flush(&mut group, &mut frames);
        }
        group.push(f);
    }
    flush(&mut group, &mut frames);
    StackSample { period, frames }
}

/// The part a stack belongs to (see the module docs).
pub fn classify(frames: &[Frame]) -> Part {
    let setup = [
        "Gfnet::new",
        "bench::random_input",
        "GfnetBlock::new",
        "xavier",
    ];
    if frames
        .iter()
        .any(|f| setup.iter().any(|s| f.symbol.contains(s)))
    {
        return Part::Setup;
    }
    for frame in frames {
        if let Some(part) = part_of_frame(frame) {
            return part;
        }
    }
    let user = |f: &&Frame| !f.symbol.is_empty() && !is_kernel_symbol(&f.symbol);
    if frames
        .iter()
        .filter(user)
        .any(|f| f.symbol.contains("rayon") || f.symbol.contains("crossbeam"))
    {
        Part::ThreadPool
    } else if !frames.is_empty() && frames.iter().filter(user).all(|f| f.symbol == "[unknown]") {
        Part::Kernel
    } else {
        Part::Other
    }
}

/// The part a single frame names, if any.
fn part_of_frame(frame: &Frame) -> Option<Part> {
    let s = frame.symbol.as_str();
    let file = frame
        .source
        .as_deref()
        .and_then(|src| src.rsplit_once(':').map(|(f, _)| f))
        .unwrap_or("");
    let has = |needles: &[&str]| needles.iter().any(|n| s.contains(n));
    if has(&[
        "gemm_f32",
        "gemm_common",
        "gemm::",
        "spectrans_linalg::sgemm",
        "spectrans_linalg::matmul",
        "spectrans_linalg::epilogue",
        "cblas_sgemm",
    ]) {
        Some(Part::Gemm)
    } else if has(&["erff", "::erf", "gelu", "Gelu"])
        || file == "erff.rs"
        || file == "activation.rs"
    {
        Some(Part::Gelu)
    } else if s.contains("layer_norm") || file == "layer_norm.rs" {
        Some(Part::LayerNorm)
    } else if has(&["spectrans_fft", "rustfft", "realfft", "global_filter"])
        || file == "global_filter.rs"
    {
        Some(Part::FftFilter)
    } else if has(&["spectrans_layers::embedding", "positional"]) {
        Some(Part::Embedding)
    } else if has(&["spectrans_layers::linear", "feed_forward"]) {
        Some(Part::LinearGlue)
    } else if s.contains("spectrans_layers::block") {
        Some(Part::Residual)
    } else {
        None
    }
}

/// Kernel frames carry no `::` path and come from the kernel's symbol table; perf shows
/// them with addresses above 0xffff_8000_0000_0000, which the parser has dropped, so this
/// recognises the common entry points by name.
fn is_kernel_symbol(s: &str) -> bool {
    !s.contains("::")
        && (s.starts_with("asm_")
            || s.starts_with("exc_")
            || s.starts_with("do_")
            || s.starts_with("__")
            || s.starts_with("entry_")
            || s.contains("page")
            || s.contains("sched")
            || s.contains("irq"))
}

/// A part of a profile's table: its label, and which part is setup (left out of the shares).
pub trait ProfilePart: Copy + Ord + std::fmt::Debug {
    /// The part that is not the work profiled (model construction).
    const SETUP: Self;
    /// The row label in the report.
    fn label(self) -> &'static str;
}

impl ProfilePart for Part {
    const SETUP: Self = Part::Setup;
    fn label(self) -> &'static str {
        Part::label(self)
    }
}

/// Time per part, in sample weight (ns of cpu-clock).
#[derive(Debug, Clone, PartialEq)]
pub struct Breakdown<P: ProfilePart = Part> {
    /// Weight per part, Setup included.
    pub weight: BTreeMap<P, u64>,
    /// Samples seen (Setup included).
    pub samples: usize,
}

impl<P: ProfilePart> Default for Breakdown<P> {
    fn default() -> Self {
        Self {
            weight: BTreeMap::new(),
            samples: 0,
        }
    }
}

impl Breakdown<Part> {
    /// Sums the samples per part of the forward.
    pub fn from_samples(samples: &[StackSample]) -> Self {
        Self::classified(samples, classify)
    }
}

impl<P: ProfilePart> Breakdown<P> {
    /// Sums the samples per part, each put in its part by `classify`.
    pub fn classified(samples: &[StackSample], classify: impl Fn(&[Frame]) -> P) -> Self {
        let mut weight = BTreeMap::new();
        for s in samples {
            *weight.entry(classify(&s.frames)).or_insert(0) += s.period;
        }
        Self {
            weight,
            samples: samples.len(),
        }
    }

    /// Weight of the work profiled (all but Setup).
    pub fn forward_weight(&self) -> u64 {
        self.weight
            .iter()
            .filter(|(p, _)| **p != P::SETUP)
            .map(|(_, w)| w)
            .sum()
    }

    /// Share of `part` among the work profiled, in percent; 0 when nothing was sampled.
    pub fn percent(&self, part: P) -> f64 {
        let total = self.forward_weight();
        let w = self.weight.get(&part).copied().unwrap_or(0);
        if total == 0 || part == P::SETUP {
            0.0
        } else {
            100.0 * w as f64 / total as f64
        }
    }

    /// Parts, largest first (Setup left out).
    pub fn ranked(&self) -> Vec<(P, f64)> {
        let mut rows: Vec<(P, f64)> = self
            .weight
            .keys()
            .filter(|p| **p != P::SETUP)
            .map(|&p| (p, self.percent(p)))
            .collect();
        rows.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        rows
    }
}

/// The parts a training step's time is split into (issue 28).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TrainPart {
    /// Every matrix product: the forward's, the input and the weight gradients'.
    Gemm,
    /// The global filter's forward: rfft, spectral product, irfft, filter preparation.
    FftForward,
    /// Its backward: the adjoint transforms, the cross spectrum, the filter gradient.
    FftBackward,
    /// LayerNorm's forward.
    LayerNormForward,
    /// LayerNorm's backward.
    LayerNormBackward,
    /// GELU and its derivative (fc1's epilogue keeps it for the backward, which applies it).
    Gelu,
    /// The optimizer step: AdamW on every tensor (and the gradient norm when clipping).
    AdamW,
    /// Dropout masks and their gradient.
    Dropout,
    /// Embedding gather and positional encoding (forward).
    Embedding,
    /// The embedding gradient (scatter-add of the token rows) and the positional one.
    EmbeddingGrad,
    /// The loss and the classification head.
    LossHead,
    /// Memory traffic: buffers, zero-fills, copies, gradient and residual adds, bias sums.
    Memory,
    /// Rayon's pool: waiting, stealing, waking threads.
    ThreadPool,
    /// Kernel-only stacks (page faults, scheduling).
    Kernel,
    /// Anything else.
    Other,
    /// Building the model, its inputs and the trainer: left out of the shares.
    Setup,
}

impl ProfilePart for TrainPart {
    const SETUP: Self = TrainPart::Setup;
    fn label(self) -> &'static str {
        match self {
            Self::Gemm => "GEMM (forward, input and weight gradients)",
            Self::FftForward => "FFT global filter, forward",
            Self::FftBackward => "FFT global filter, backward (adjoint, filter gradient)",
            Self::LayerNormForward => "LayerNorm, forward",
            Self::LayerNormBackward => "LayerNorm, backward",
            Self::Gelu => "GELU and its derivative",
            Self::AdamW => "AdamW step",
            Self::Dropout => "dropout",
            Self::Embedding => "embedding + positional encoding, forward",
            Self::EmbeddingGrad => "embedding gradient",
            Self::LossHead => "loss and head",
            Self::Memory => "memory traffic (buffers, zero-fill, copies, gradient adds)",
            Self::ThreadPool => "thread pool (rayon wait/steal)",
            Self::Kernel => "kernel only (page faults, scheduling)",
            Self::Other => "other",
            Self::Setup => "setup (model, inputs, trainer; excluded)",
        }
    }
}

/// The part of a training step a stack belongs to: its first frame, leaf first, that names
/// a part (a frame of the backward pass, `backward` or the FFT's `adjoint` in any frame of the
/// stack, decides forward or backward for the FFT, LayerNorm and the embedding); failing
/// that, the pool when a frame waits in rayon, memory traffic when a frame is a copy, a fill
/// or a layer's glue, else the kernel or other.
pub fn classify_train(frames: &[Frame]) -> TrainPart {
    let setup = [
        "Gfnet::new",
        "bench::random_input",
        "GfnetBlock::new",
        "xavier",
        "Trainer::new",
    ];
    if frames
        .iter()
        .any(|f| setup.iter().any(|s| f.symbol.contains(s)))
    {
        return TrainPart::Setup;
    }
    let backward = frames
        .iter()
        .any(|f| f.symbol.contains("backward") || f.symbol.contains("adjoint"));
    let pick = |fwd, bwd| if backward { bwd } else { fwd };
    for frame in frames {
        let s = frame.symbol.as_str();
        if s.contains("spectrans_train::optim") || s.contains("Trainer::apply") {
            return TrainPart::AdamW;
        }
        if s.contains("spectrans_layers::dropout") || s.contains("DropoutMask") {
            return TrainPart::Dropout;
        }
        if s.contains("spectrans_train::loss") || s.contains("spectrans_models::heads") {
            return TrainPart::LossHead;
        }
        match part_of_frame(frame) {
            Some(Part::Gemm) => return TrainPart::Gemm,
            Some(Part::Gelu) => return TrainPart::Gelu,
            Some(Part::LayerNorm) => {
                return pick(TrainPart::LayerNormForward, TrainPart::LayerNormBackward);
            }
            Some(Part::FftFilter) => return pick(TrainPart::FftForward, TrainPart::FftBackward),
            Some(Part::Embedding) => return pick(TrainPart::Embedding, TrainPart::EmbeddingGrad),
            _ => {}
        }
    }
    // No part named: the frame nearest the leaf that copies or fills memory, is a layer's
    // glue, or waits for the pool (the caller of a parallel section, or an idle worker).
    let memory = [
        "memset",
        "memcpy",
        "memmove",
        "to_owned",
        "zeros_like",
        "spectrans_layers::linear",
        "feed_forward",
        "spectrans_layers::block",
        "spectrans_layers::reuse",
        "spectrans_layers::tensor",
        "spectrans_layers::positional",
        "clear_page",
    ];
    let waiting = [
        "rayon_core::sleep",
        "rayon_core::latch",
        "wait_until",
        "in_worker_cold",
    ];
    for frame in frames {
        if memory.iter().any(|m| frame.symbol.contains(m)) {
            return TrainPart::Memory;
        }
        if waiting.iter().any(|w| frame.symbol.contains(w)) {
            return TrainPart::ThreadPool;
        }
    }
    match classify(frames) {
        Part::ThreadPool => TrainPart::ThreadPool,
        Part::Kernel => TrainPart::Kernel,
        _ => TrainPart::Other,
    }
}

/// Where to record and what to run.
#[derive(Debug, Clone)]
pub struct ProfileRun<'a> {
    pub binary: &'a Path,
    pub config: std::path::PathBuf,
    pub batch: usize,
    pub threads: usize,
    pub iters: usize,
    pub out_dir: std::path::PathBuf,
    /// Profile training steps (`spectrans bench --train`) rather than forwards.
    pub train: bool,
}

/// Records `spectrans bench` forwards under perf and returns the breakdown.
pub fn profile(run: &ProfileRun<'_>) -> Result<Breakdown, BenchError> {
    Ok(Breakdown::from_samples(&record(run)?))
}

/// Records `spectrans bench --train` under perf and returns the training step's breakdown.
pub fn profile_train(run: &ProfileRun<'_>) -> Result<Breakdown<TrainPart>, BenchError> {
    Ok(Breakdown::classified(&record(run)?, classify_train))
}

/// Records `spectrans bench` (with `--train` when `run.train`) under perf; its samples.
fn record(run: &ProfileRun<'_>) -> Result<Vec<StackSample>, BenchError> {
    std::fs::create_dir_all(&run.out_dir).map_err(BenchError::io(&run.out_dir))?;
    let data = run.out_dir.join(if run.train {
        "perf-train.data"
    } else {
        "perf.data"
    });
    let threads = run.threads.to_string();
    run_checked(
        Command::new("perf")
            .args(["record", "-q", "-e", "cpu-clock", "-F", "499"])
            .args(["--call-graph", "dwarf,16384", "-o"])
            .arg(&data)
            .arg("--")
            .arg(run.binary)
            .args(["bench", "--json", "--config"])
            .arg(&run.config)
            .args(["--batch", &run.batch.to_string()])
            .args(["--iters", &run.iters.to_string()])
            .args(["--threads", &threads])
            .args(run.train.then_some("--train"))
            .env("RAYON_NUM_THREADS", &threads),
    )?;
    let text = run_checked(
        Command::new("perf")
            .args([
                "script",
                "-F",
                "tid,period,ip,sym,srcline",
                "--inline",
                "-i",
            ])
            .arg(&data),
    )?;
    let samples = parse_perf_script(&text);
    if samples.is_empty() {
        return Err(BenchError::BadLine(format!(
            "perf recorded no samples in {}",
            data.display()
        )));
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRIPT: &str = " 3000    2004008 \n\
\t          198609 rand_chacha::guts::refill_wide::impl_avx2\n  avx2.rs:2508\n\
\t          340b75 ndarray::iterators::to_vec_mapped\n  guts.rs:85\n\
\t          3701fd spectrans_layers::embedding::xavier_uniform\n\
\t          35c117 spectrans_models::gfnet::Gfnet::new\n\
\n\
 3003    1000 \n\
\t          338b72 core::ops::function::impls::<impl core::ops::function::FnMut<A> for &F>::call_mut\n  erff.rs:160\n\
\t          338b72 apply\n  activation.rs:57 (inlined)\n\
\t          338b72 {closure#3}\n  feed_forward.rs:120 (inlined)\n\
\t          32d777 rayon_core::join::join_context::{{closure}}\n\
\n\
 3000    500\n\
\t          2f0000 gemm_f32::microkernel::fma::f32::x3x4\n  fma.rs:10\n\
\t          2f1000 spectrans_linalg::matmul::gemm\n\
\t          2f2000 spectrans_layers::feed_forward::FeedForward::forward\n\
\n\
 3000    250\n\
\t          2f3000 spectrans_layers::feed_forward::FeedForward::forward\n  layer_norm.rs:40\n\
\t          2f3000 moments\n  layer_norm.rs:12 (inlined)\n\
 3000    250\n\
\tffffffff821eb0e7 clear_page_erms\n\
\tffffffff81000c82 asm_exc_page_fault\n\
\t          2f4000 spectrans_layers::linear::Linear::forward_into\n\
 3000    125\n\
\t          2f5000 rayon_core::registry::WorkerThread::wait_until_cold\n\
\t          2f5100 std::sys::backtrace::__rust_begin_short_backtrace\n";

    fn parts() -> Vec<(Part, u64)> {
        parse_perf_script(SCRIPT)
            .iter()
            .map(|s| (classify(&s.frames), s.period))
            .collect()
    }

    #[test]
    fn parses_samples_and_weights() {
        let samples = parse_perf_script(SCRIPT);
        assert_eq!(samples.len(), 6);
        assert_eq!(samples[0].period, 2004008);
        // the physical frame's innermost source line comes before its inlined frames
        assert_eq!(samples[1].frames[0].source.as_deref(), Some("erff.rs:160"));
        assert_eq!(samples[1].frames[1].symbol, "apply");
        assert!(samples[1].frames[3].symbol.ends_with("call_mut"));
    }

    #[test]
    fn attributes_each_stack_to_its_part() {
        let got: Vec<Part> = parts().into_iter().map(|(p, _)| p).collect();
        assert_eq!(
            got,
            vec![
                Part::Setup,
                Part::Gelu,
                Part::Gemm,
                Part::LayerNorm,
                Part::LinearGlue,
                Part::ThreadPool
            ]
        );
    }

    #[test]
    fn shares_leave_setup_out_and_sum_to_100() {
        let b = Breakdown::from_samples(&parse_perf_script(SCRIPT));
        assert_eq!(b.samples, 6);
        assert_eq!(b.forward_weight(), 1000 + 500 + 250 + 250 + 125);
        assert_eq!(b.percent(Part::Setup), 0.0);
        let total: f64 = b.ranked().iter().map(|(_, p)| p).sum();
        assert!((total - 100.0).abs() < 1e-9);
        assert_eq!(b.ranked()[0], (Part::Gelu, 100.0 * 1000.0 / 2125.0));
    }

    #[test]
    fn the_linalg_kernels_count_as_gemm_and_their_gelu_epilogue_as_gelu() {
        let frame = |symbol: &str| Frame {
            symbol: symbol.into(),
            source: None,
        };
        let kernel = [
            frame("spectrans_linalg::sgemm::avx2::f32::kernel"),
            frame("spectrans_linalg::sgemm::run_task"),
            frame("spectrans_layers::linear::Linear::forward_into"),
        ];
        assert_eq!(classify(&kernel), Part::Gemm);
        let epilogue = [
            frame("spectrans_linalg::fast_math::gelu_bias_row"),
            frame("spectrans_linalg::sgemm::finish"),
        ];
        assert_eq!(classify(&epilogue), Part::Gelu);
        let fallback = [frame("spectrans_linalg::epilogue::apply_epilogue")];
        assert_eq!(classify(&fallback), Part::Gemm);
    }

    fn frames(symbols: &[&str]) -> Vec<Frame> {
        symbols
            .iter()
            .map(|s| Frame {
                symbol: (*s).into(),
                source: None,
            })
            .collect()
    }

    #[test]
    fn training_stacks_go_to_their_part_forward_or_backward() {
        let cases: [(&[&str], TrainPart); 12] = [
            (
                &[
                    "spectrans_fft::lanes::LanePlan::filter_matrix_avx",
                    "call_mut<(..), spectrans_fft::filter_slices::{impl#0}::filter_slices::{closure_env#1}>",
                ],
                TrainPart::FftForward,
            ),
            (
                &[
                    "spectrans_fft::lanes::LanePlan::filter_matrix_avx",
                    "spectrans_fft::filter_slices::{impl#0}::filter_adjoint_slices",
                ],
                TrainPart::FftBackward,
            ),
            (
                &[
                    "call_mut<(..), spectrans_layers::layer_norm::{impl#1}::backward::{closure_env#0}>",
                ],
                TrainPart::LayerNormBackward,
            ),
            (
                &["spectrans_layers::layer_norm::moments"],
                TrainPart::LayerNormForward,
            ),
            (
                &[
                    "_mm512_fmadd_ps",
                    "spectrans_linalg::sgemm::kernel::avx512::pair",
                    "spectrans_layers::linear::Linear::backward_input",
                ],
                TrainPart::Gemm,
            ),
            (
                &["spectrans_linalg::fast_math::gelu_bias_row_with_derivative::avx512"],
                TrainPart::Gelu,
            ),
            (
                &[
                    "__memcpy_avx512_unaligned_erms",
                    "ndarray::impl_methods::<impl ndarray::ArrayBase<S,D>>::to_owned",
                    "spectrans_train::trainer::Trainer::apply::{{closure}}",
                ],
                TrainPart::AdamW,
            ),
            (
                &["spectrans_train::optim::block_sum_of_squares"],
                TrainPart::AdamW,
            ),
            (
                &["spectrans_layers::embedding::Embedding::backward"],
                TrainPart::EmbeddingGrad,
            ),
            (
                &["spectrans_layers::embedding::Embedding::gather"],
                TrainPart::Embedding,
            ),
            (
                &[
                    "__memset_avx512_unaligned_erms",
                    "spectrans_layers::block::GfnetBlockGrads::zeros_like",
                ],
                TrainPart::Memory,
            ),
            (
                &[
                    "spectrans_train::trainer::Trainer::new",
                    "spectrans::cmd::bench::run",
                ],
                TrainPart::Setup,
            ),
        ];
        for (stack, part) in cases {
            assert_eq!(classify_train(&frames(stack)), part, "{stack:?}");
        }
        assert_eq!(
            classify_train(&frames(&[
                "rayon_core::registry::WorkerThread::wait_until_cold"
            ])),
            TrainPart::ThreadPool
        );
        assert_eq!(classify_train(&frames(&["main"])), TrainPart::Other);
    }

    #[test]
    fn a_training_breakdown_leaves_setup_out() {
        let samples = [
            StackSample {
                period: 300,
                frames: frames(&["spectrans_linalg::sgemm::run_task"]),
            },
            StackSample {
                period: 100,
                frames: frames(&["spectrans_train::optim::AdamW::step"]),
            },
            StackSample {
                period: 1000,
                frames: frames(&["spectrans_models::gfnet::Gfnet::new"]),
            },
        ];
        let b = Breakdown::classified(&samples, classify_train);
        assert_eq!(b.forward_weight(), 400);
        assert_eq!(
            b.ranked(),
            vec![(TrainPart::Gemm, 75.0), (TrainPart::AdamW, 25.0)]
        );
    }

    #[test]
    fn unknown_and_kernel_only_stacks() {
        let kernel = [Frame {
            symbol: "clear_page_erms".into(),
            source: None,
        }];
        assert_eq!(classify(&kernel), Part::Kernel);
        let unknown = [Frame {
            symbol: "main".into(),
            source: None,
        }];
        assert_eq!(classify(&unknown), Part::Other);
        assert_eq!(parse_perf_script("garbage\n\tno header\n"), vec![]);
    }
}

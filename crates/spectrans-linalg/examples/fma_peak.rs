//! Measures this CPU's single-precision FMA peak: GFLOP/s of independent fused multiply-adds
//! held in registers (no memory traffic), on `--threads` threads at once. No GEMM can pass
//! it, so `cargo xtask bench` sets the model's products against it. Prints one JSON line.
//!
//! `cargo run --release -p spectrans-linalg --example fma_peak -- --threads T [--seconds S]`
//!
//! The widest FMA the CPU has is chosen at run time: 512-bit (AVX-512 F), 256-bit (AVX2 and
//! FMA), else scalar `f32::mul_add`.
use std::hint::black_box;
use std::process::ExitCode;
use std::sync::Barrier;
use std::time::{Duration, Instant};

#[cfg(target_arch = "x86_64")]
use spectrans_linalg::simd;

/// Independent accumulators per step: more than FMA latency x FMA pipes, so the loop is
/// bound by FMA throughput alone.
const CHAINS: usize = 16;
/// Steps between clock reads.
const CHUNK: u64 = 1 << 20;

/// One way to run `steps` steps of `CHAINS` FMAs: the vector ones hold the capability token
/// of their instruction set (spectrans_linalg::simd), made only after the run-time check.
#[derive(Clone, Copy)]
enum Fma {
    #[cfg(target_arch = "x86_64")]
    Avx512(simd::Avx512),
    #[cfg(target_arch = "x86_64")]
    Avx2Fma(simd::Avx2Fma),
    Scalar,
}

impl Fma {
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if let Some(cpu) = simd::Avx512::try_new() {
                return Fma::Avx512(cpu);
            }
            if let Some(cpu) = simd::Avx2Fma::try_new() {
                return Fma::Avx2Fma(cpu);
            }
        }
        Fma::Scalar
    }

    fn name(self) -> &'static str {
        match self {
            #[cfg(target_arch = "x86_64")]
            Fma::Avx512(_) => "vfmadd (512-bit, AVX-512 F)",
            #[cfg(target_arch = "x86_64")]
            Fma::Avx2Fma(_) => "vfmadd (256-bit, AVX2 + FMA)",
            Fma::Scalar => "scalar f32::mul_add",
        }
    }

    /// f32 lanes per FMA.
    fn lanes(self) -> usize {
        match self {
            #[cfg(target_arch = "x86_64")]
            Fma::Avx512(_) => 16,
            #[cfg(target_arch = "x86_64")]
            Fma::Avx2Fma(_) => 8,
            Fma::Scalar => 1,
        }
    }

    /// Runs `steps` steps; returns a value to keep the work alive.
    fn run(self, steps: u64) -> f32 {
        match self {
            // SAFETY (both): the function's features are vouched for by the token `cpu`.
            #[cfg(target_arch = "x86_64")]
            Fma::Avx512(cpu) => unsafe { x86::chains_512(cpu, steps) },
            #[cfg(target_arch = "x86_64")]
            Fma::Avx2Fma(cpu) => unsafe { x86::chains_256(cpu, steps) },
            Fma::Scalar => chains_scalar(steps),
        }
    }
}

fn chains_scalar(steps: u64) -> f32 {
    let mut acc = [1.0f32; CHAINS];
    let (b, c) = (black_box(0.999_999f32), black_box(1e-7f32));
    for _ in 0..steps {
        for a in &mut acc {
            *a = a.mul_add(b, c);
        }
    }
    acc.iter().sum()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;
    use std::hint::black_box;

    use spectrans_linalg::simd;

    use super::CHAINS;

    /// Needs AVX-512 F, vouched for by the token.
    #[target_feature(enable = "avx512f")]
    pub(super) fn chains_512(_cpu: simd::Avx512, steps: u64) -> f32 {
        let mut acc = [_mm512_set1_ps(1.0); CHAINS];
        let b = _mm512_set1_ps(black_box(0.999_999));
        let c = _mm512_set1_ps(black_box(1e-7));
        for _ in 0..steps {
            for a in &mut acc {
                *a = _mm512_fmadd_ps(*a, b, c);
            }
        }
        acc.iter().map(|&a| _mm512_reduce_add_ps(a)).sum()
    }

    /// Needs AVX2 and FMA, vouched for by the token.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn chains_256(_cpu: simd::Avx2Fma, steps: u64) -> f32 {
        let mut acc = [_mm256_set1_ps(1.0); CHAINS];
        let b = _mm256_set1_ps(black_box(0.999_999));
        let c = _mm256_set1_ps(black_box(1e-7));
        for _ in 0..steps {
            for a in &mut acc {
                *a = _mm256_fmadd_ps(*a, b, c);
            }
        }
        let mut sum = 0.0;
        for a in acc {
            let mut lanes = [0.0f32; 8];
            // SAFETY: `lanes` holds eight floats.
            unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), a) };
            sum += lanes.iter().sum::<f32>();
        }
        sum
    }
}

/// GFLOP/s of one thread running `fma` for about `time` (after the others are ready).
fn one_thread(fma: &Fma, time: Duration, start: &Barrier) -> f64 {
    fma.run(CHUNK); // warm-up: clocks up, code in cache
    start.wait();
    let t = Instant::now();
    let mut steps = 0u64;
    while t.elapsed() < time {
        black_box(fma.run(CHUNK));
        steps += CHUNK;
    }
    let flops = steps as f64 * (CHAINS * fma.lanes() * 2) as f64;
    flops / t.elapsed().as_secs_f64() / 1e9
}

fn parse() -> Result<(usize, f64), String> {
    let (mut threads, mut seconds) = (1usize, 1.0f64);
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let value = it.next().ok_or(format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--threads" => {
                threads = value
                    .parse::<usize>()
                    .map_err(|_| format!("--threads takes a count, got `{value}`"))?
                    .max(1)
            }
            "--seconds" => {
                seconds = value
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .ok_or(format!("--seconds takes a positive number, got `{value}`"))?
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok((threads, seconds))
}

fn main() -> ExitCode {
    let (threads, seconds) = match parse() {
        Ok(a) => a,
        Err(why) => {
            eprintln!("fma_peak: {why}");
            return ExitCode::FAILURE;
        }
    };
    let fma = Fma::detect();
    let start = Barrier::new(threads);
    let time = Duration::from_secs_f64(seconds);
    let per_thread: Vec<f64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| s.spawn(|| one_thread(&fma, time, &start)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("an FMA loop does not panic"))
            .collect()
    });
    let total: f64 = per_thread.iter().sum();
    println!(
        "{{\"threads\": {threads}, \"gflops\": {total:.2}, \"gflops_per_core\": {:.2}, \
         \"instruction\": \"{}\"}}",
        total / threads as f64,
        fma.name()
    );
    ExitCode::SUCCESS
}

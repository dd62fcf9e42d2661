//! Times the fused global filter `irfft(Hf ⊙ rfft(x))` of one sequence at each length given,
//! hidden 256 (the long-sequence sweep's width), and prints ns per element and pass.
//!
//! `cargo run --release -p spectrans-fft --example filter_bench -- [--threads T] n [n ...]`
use std::time::Instant;

use ndarray::{Array2, Array3};
use spectrans_fft::{Complex32, FilterWorkspace, SeqRealFft};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut threads = 1;
    let mut lengths = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--threads" {
            threads = args.next().ok_or("--threads needs a count")?.parse()?;
        } else {
            lengths.push(arg.parse::<usize>()?);
        }
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()?;
    let d = 256;
    for n in lengths {
        let plan = SeqRealFft::new(n)?;
        let x = Array3::from_shape_fn((1, n, d), |(_, t, c)| ((t * 7 + c * 3) as f32 * 0.01).sin());
        let g = Array2::from_shape_fn((plan.spectrum_len(), d), |(k, c)| {
            Complex32::new(
                ((k + c) as f32 * 0.1).cos(),
                ((k * 3 + c) as f32 * 0.1).sin(),
            )
        });
        let mut y = Array3::<f32>::zeros((1, n, d));
        let mut workspace = FilterWorkspace::new();
        let iters = (1 << 24) / (n * d) + 3;
        let mut times = Vec::new();
        for i in 0..iters + 2 {
            let t = Instant::now();
            rayon::scope(|_| plan.filter(x.view(), g.view(), y.view_mut(), None, &mut workspace))?;
            if i >= 2 {
                times.push(t.elapsed().as_secs_f64());
            }
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let per = median * 1e9 / (n * d) as f64 / (n as f64).log2();
        println!(
            "n {n:6}  {:8.3} ms  {per:.3} ns per element per log2 n  ({threads} threads)",
            median * 1e3
        );
    }
    Ok(())
}

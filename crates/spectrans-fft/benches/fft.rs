//! rfft + irfft along axis 1, and the fused spectral filter, at GFNet shapes.
//!
//! `cargo bench -p spectrans-fft --bench fft` (or `cargo xtask bench fft`, which also times
//! PyTorch side by side). Threads: the global rayon pool (`RAYON_NUM_THREADS`).

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ndarray::{Array2, Array3};
use spectrans_fft::{Complex32, FftNorm, FilterWorkspace, SeqRealFft};

/// (B, n, D) shapes: GFNet-base at seq 512, the small benchmark model (issue 6), and a small
/// model at seq 128.
const SHAPES: [(usize, usize, usize); 3] = [(8, 512, 768), (8, 512, 256), (32, 128, 256)];

/// Deterministic values in [-1, 1) (no RNG dependency needed for timing).
fn signal(shape: (usize, usize, usize)) -> Array3<f32> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    Array3::from_shape_simple_fn(shape, || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    })
}

fn label((b, n, d): (usize, usize, usize)) -> String {
    format!("{b}x{n}x{d}")
}

fn rfft_irfft(c: &mut Criterion) {
    let mut group = c.benchmark_group("rfft_irfft");
    for shape in SHAPES {
        let (b, n, d) = shape;
        let plan = SeqRealFft::new(n).expect("n >= 1");
        let x = signal(shape);
        let mut spectrum = Array3::<Complex32>::zeros((b, plan.spectrum_len(), d));
        let mut y = Array3::<f32>::zeros(shape);
        group.bench_function(BenchmarkId::from_parameter(label(shape)), |bench| {
            bench.iter(|| {
                plan.forward(x.view(), spectrum.view_mut(), FftNorm::Ortho)
                    .expect("shapes match");
                plan.inverse(spectrum.view(), y.view_mut(), FftNorm::Ortho)
                    .expect("shapes match");
            })
        });
    }
    group.finish();
}

fn filter(c: &mut Criterion) {
    let mut group = c.benchmark_group("filter");
    for shape in SHAPES {
        let (_, n, d) = shape;
        let plan = SeqRealFft::new(n).expect("n >= 1");
        let x = signal(shape);
        let hf = Array2::from_shape_fn((plan.spectrum_len(), d), |(k, j)| {
            Complex32::new(1.0 / (1 + k) as f32, (j % 7) as f32 * 0.1)
        });
        let mut y = Array3::<f32>::zeros(shape);
        let mut workspace = FilterWorkspace::new();
        group.bench_function(BenchmarkId::from_parameter(label(shape)), |bench| {
            bench.iter(|| {
                plan.filter(x.view(), hf.view(), y.view_mut(), None, &mut workspace)
                    .expect("shapes match");
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(40)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = rfft_irfft, filter
}
criterion_main!(benches);

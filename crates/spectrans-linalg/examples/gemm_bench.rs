//! Times our sgemm as a Linear layer runs it, `y = x · Wᵀ` with x (m, k) and W (n, k), and
//! prints one JSON line per shape (what `cargo xtask bench` puts in its GEMM table).
//!
//! `cargo run --release -p spectrans-linalg --example gemm_bench -- --threads T [--iters K]
//! [--warmup W] [--precision f32|bf16|int8] [--product forward|input-grad|weight-grad]
//! m,k,n [m,k,n ...]`
//!
//! `--product` picks which of the Linear layer's three products is timed (f32 only): the
//! forward `y = x · Wᵀ` (the default), or training's backward products, `dx = dy · W` (m, n)
//! x (n, k), and `dW += dyᵀ · x` (n, m) x (m, k), whose B is packed on every call and whose A
//! is transposed.
//!
//! At bf16 and int8 the weight is held in that format ([`PackedRhs::quantized_from_weight`])
//! and the input quantized on each call, as a Linear layer at that precision runs it; the
//! GFLOP/s count the same `2 m k n` operations.
use std::process::ExitCode;
use std::time::Instant;

use ndarray::Array2;
use ndarray::{ArrayView2, ArrayViewMut2};
use spectrans_linalg::{
    Backend, Epilogue, PackedRhs, Parallelism, Precision, Rhs, backend, f32_kernel_name, gemm,
    has_bf16_kernel, int8_kernel_name, packs_f32,
};

/// `dst (+)= lhs · rhs` on a plain right operand, as a Linear layer's plain products run.
fn matmul_into(
    dst: ArrayViewMut2<'_, f32>,
    lhs: ArrayView2<'_, f32>,
    rhs: ArrayView2<'_, f32>,
    accumulate: bool,
) -> Result<(), spectrans_linalg::LinalgError> {
    let epilogue = Epilogue {
        accumulate,
        ..Epilogue::default()
    };
    gemm(dst, lhs, Rhs::Plain(rhs), epilogue, Parallelism::Rayon)
}

struct Args {
    threads: usize,
    iters: usize,
    warmup: usize,
    precision: Precision,
    product: Product,
    shapes: Vec<[usize; 3]>,
}

/// Which product of a Linear layer (k -> n) over m rows is timed.
#[derive(Clone, Copy, PartialEq)]
enum Product {
    /// `y = x · Wᵀ`, W packed once.
    Forward,
    /// `dx = dy · W`.
    InputGrad,
    /// `dW += dyᵀ · x`.
    WeightGrad,
}

impl Product {
    fn name(self) -> &'static str {
        match self {
            Product::Forward => "forward",
            Product::InputGrad => "input-grad",
            Product::WeightGrad => "weight-grad",
        }
    }
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        threads: 1,
        iters: 20,
        warmup: 3,
        precision: Precision::F32,
        product: Product::Forward,
        shapes: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut number = |name: &str| -> Result<usize, String> {
            let v = it.next().ok_or(format!("{name} needs a value"))?;
            v.parse()
                .map_err(|_| format!("{name} takes a count, got `{v}`"))
        };
        match arg.as_str() {
            "--threads" => args.threads = number("--threads")?.max(1),
            "--iters" => args.iters = number("--iters")?.max(1),
            "--warmup" => args.warmup = number("--warmup")?,
            "--precision" => {
                let v = it.next().ok_or("--precision needs a value")?;
                args.precision = v.parse().map_err(|e| format!("--precision: {e}"))?;
            }
            "--product" => {
                args.product = match it.next().as_deref() {
                    Some("forward") => Product::Forward,
                    Some("input-grad") => Product::InputGrad,
                    Some("weight-grad") => Product::WeightGrad,
                    other => {
                        return Err(format!(
                            "--product takes forward, input-grad or weight-grad; got {other:?}"
                        ));
                    }
                }
            }
            shape => {
                let dims: Vec<usize> = shape
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .map_err(|_| format!("a shape is m,k,n; got `{shape}`"))?;
                match dims[..] {
                    [m, k, n] => args.shapes.push([m, k, n]),
                    _ => return Err(format!("a shape is m,k,n; got `{shape}`")),
                }
            }
        }
    }
    if args.shapes.is_empty() {
        return Err("give at least one m,k,n shape".into());
    }
    if args.product != Product::Forward && args.precision != Precision::F32 {
        return Err("the backward products run in f32 only".into());
    }
    Ok(args)
}

/// Median and minimum milliseconds of `iters` runs after `warmup` runs.
fn time(
    mut f: impl FnMut() -> Result<(), String>,
    warmup: usize,
    iters: usize,
) -> Result<(f64, f64), String> {
    for _ in 0..warmup {
        f()?;
    }
    let mut times = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok((times[iters / 2], times[0]))
}

/// What the Linear layers' product runs on this CPU and build.
fn implementation(precision: Precision) -> String {
    if precision == Precision::Int8 {
        return format!("int8 ({}, weights quantized once)", int8_kernel_name());
    }
    let name = if precision == Precision::Bf16 && has_bf16_kernel() {
        "bf16 (AVX-512 BF16 vdpbf16ps 6x16 kernel, weights converted once)"
    } else if precision == Precision::Bf16 {
        "bf16 weights widened into the f32 6x16 kernel"
    } else {
        match backend() {
            Backend::OpenBlas => "OpenBLAS cblas_sgemm (feature openblas)",
            Backend::Sgemm => {
                return format!("sgemm ({}, weights packed once)", f32_kernel_name());
            }
            Backend::GemmCrate => "gemm crate 0.19 (run-time dispatch)",
        }
    };
    name.to_string()
}

fn run(args: &Args) -> Result<(), String> {
    for &[m, k, n] in &args.shapes {
        let x = Array2::from_shape_fn((m, k), |(i, j)| ((i * 7 + j * 3) as f32 * 0.01).sin());
        let w = Array2::from_shape_fn((n, k), |(i, j)| ((i * 5 + j * 11) as f32 * 0.01).cos());
        let mut y = Array2::<f32>::zeros((m, n));
        // As a Linear layer runs it: the weight packed once where our GEMM is the CPU's
        // fastest ([`packs_f32`]), else the product on the plain weight.
        let packed = PackedRhs::quantized_from_weight(w.view(), args.precision);
        let (median_ms, min_ms) = if args.product == Product::InputGrad {
            let dy = Array2::from_shape_fn((m, n), |(i, j)| ((i * 3 + j) as f32 * 0.01).sin());
            let mut dx = Array2::<f32>::zeros((m, k));
            time(
                || {
                    matmul_into(dx.view_mut(), dy.view(), w.view(), false)
                        .map_err(|e| e.to_string())
                },
                args.warmup,
                args.iters,
            )?
        } else if args.product == Product::WeightGrad {
            let dy = Array2::from_shape_fn((m, n), |(i, j)| ((i * 3 + j) as f32 * 0.01).sin());
            let mut dw = Array2::<f32>::zeros((n, k));
            time(
                || matmul_into(dw.view_mut(), dy.t(), x.view(), true).map_err(|e| e.to_string()),
                args.warmup,
                args.iters,
            )?
        } else if args.precision == Precision::F32 && !packs_f32() {
            time(
                || matmul_into(y.view_mut(), x.view(), w.t(), false).map_err(|e| e.to_string()),
                args.warmup,
                args.iters,
            )?
        } else {
            time(
                || {
                    gemm(
                        y.view_mut(),
                        x.view(),
                        Rhs::Packed(&packed),
                        Epilogue::default(),
                        Parallelism::Rayon,
                    )
                    .map_err(|e| e.to_string())
                },
                args.warmup,
                args.iters,
            )?
        };
        let gflops = 2.0 * (m * k * n) as f64 / (median_ms * 1e-3) / 1e9;
        println!(
            "{{\"backend\": \"spectrans-rs\", \"m\": {m}, \"k\": {k}, \"n\": {n}, \"threads\": {}, \
             \"median_ms\": {median_ms:.4}, \"min_ms\": {min_ms:.4}, \"gflops\": {gflops:.2}, \
             \"precision\": \"{}\", \"product\": \"{}\", \"blas\": \"{}\"}}",
            rayon::current_num_threads(),
            args.precision,
            args.product.name(),
            implementation(args.precision)
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let outcome = parse().and_then(|args| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(args.threads)
            .build()
            .map_err(|e| format!("thread pool: {e}"))?
            .install(|| run(&args))
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("gemm_bench: {why}");
            ExitCode::FAILURE
        }
    }
}

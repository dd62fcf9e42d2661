//! Times the eval forward and a train step (forward_train + backward) of one GfnetBlock.
//! `cargo run --release -p spectrans-layers --example block_timing -- B N D`
use std::time::Instant;

use ndarray::Array3;
use rand::SeedableRng;
use spectrans_layers::{BlockOptions, GfnetBlock, GfnetBlockGrads, LayerError, TrainContext};

fn median_ms(
    mut f: impl FnMut() -> Result<(), LayerError>,
    iters: usize,
) -> Result<f64, LayerError> {
    f()?;
    let mut times = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[iters / 2])
}

fn main() -> Result<(), LayerError> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (b, n, d) = match args[..] {
        [b, n, d] => (b, n, d),
        _ => (8, 256, 256),
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let block = GfnetBlock::new(BlockOptions::new(d, n), &mut rng)?;
    let x = Array3::from_shape_fn((b, n, d), |(i, t, c)| {
        ((i * 31 + t * 7 + c) as f32 * 0.01).sin()
    });
    let fwd = median_ms(|| block.forward(x.view()).map(|_| ()), 10)?;
    let mut grads = GfnetBlockGrads::zeros_like(&block);
    let step = median_ms(
        || {
            let (y, cache) = block.forward_train(x.view(), &mut TrainContext::new(0, true))?;
            block.backward(&cache, y.view(), &mut grads).map(|_| ())
        },
        5,
    )?;
    println!(
        "block B={b} N={n} D={d}: forward {fwd:.2} ms, train step {step:.2} ms, threads {}",
        rayon::current_num_threads()
    );
    Ok(())
}

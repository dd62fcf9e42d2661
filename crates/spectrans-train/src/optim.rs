//! Optimisers over named parameters (PyTorch semantics), a learning-rate schedule, and
//! gradient clipping by global norm.
//!
//! An optimiser sees one parameter at a time, by its `state_dict` name, so it works with any
//! model that can visit its parameters and gradients by name.

use std::collections::HashMap;

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Zip};

/// An optimiser: call [`Optimizer::begin_step`] once per step, then [`Optimizer::update`] for
/// every parameter with its gradient.
pub trait Optimizer: Send {
    /// Starts a step at learning rate `lr`.
    fn begin_step(&mut self, lr: f32);
    /// Updates one parameter in place from its gradient.
    fn update(&mut self, name: &str, param: ArrayViewMutD<'_, f32>, grad: ArrayViewD<'_, f32>);
    /// The number of steps begun.
    fn steps(&self) -> u64;
}

/// AdamW (Loshchilov & Hutter), as `torch.optim.AdamW` computes it (amsgrad off):
///
/// p ← p (1 − lr·λ);  m ← β1 m + (1 − β1) g;  v ← β2 v + (1 − β2) g²;
/// p ← p − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε)
#[derive(Debug, Clone)]
pub struct AdamW {
    /// β1, β2 (PyTorch: 0.9, 0.999).
    pub betas: (f32, f32),
    /// ε (PyTorch: 1e-8).
    pub eps: f32,
    /// Decoupled weight decay λ (PyTorch: 0.01).
    pub weight_decay: f32,
    step: u64,
    lr: f32,
    moments: HashMap<String, (ArrayD<f32>, ArrayD<f32>)>,
}

impl Default for AdamW {
    fn default() -> Self {
        Self::new(0.01)
    }
}

impl AdamW {
    /// AdamW with PyTorch's defaults and the given weight decay.
    pub fn new(weight_decay: f32) -> Self {
        Self {
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay,
            step: 0,
            lr: 1e-3,
            moments: HashMap::new(),
        }
    }

    /// The first and second moments kept for a parameter, if any step has touched it.
    pub fn moments(&self, name: &str) -> Option<(&ArrayD<f32>, &ArrayD<f32>)> {
        self.moments.get(name).map(|(m, v)| (m, v))
    }

    /// Restores optimiser state (step count and moments), as saved by a checkpoint.
    pub fn restore(&mut self, step: u64, moments: HashMap<String, (ArrayD<f32>, ArrayD<f32>)>) {
        self.step = step;
        self.moments = moments;
    }

    /// All moments, by parameter name.
    pub fn all_moments(&self) -> &HashMap<String, (ArrayD<f32>, ArrayD<f32>)> {
        &self.moments
    }
}

impl Optimizer for AdamW {
    fn begin_step(&mut self, lr: f32) {
        self.step += 1;
        self.lr = lr;
    }

    fn update(&mut self, name: &str, mut param: ArrayViewMutD<'_, f32>, grad: ArrayViewD<'_, f32>) {
        let (b1, b2) = self.betas;
        let t = self.step.max(1) as i32;
        let bias1 = 1.0 - (b1 as f64).powi(t);
        let bias2_sqrt = (1.0 - (b2 as f64).powi(t)).sqrt();
        let step_size = (self.lr as f64 / bias1) as f32;
        let decay = 1.0 - self.lr * self.weight_decay;
        let eps = self.eps;
        let (m, v) = self.moments.entry(name.to_string()).or_insert_with(|| {
            (
                ArrayD::zeros(param.raw_dim()),
                ArrayD::zeros(param.raw_dim()),
            )
        });
        let bias2_sqrt = bias2_sqrt as f32;
        // Element by element, so splitting across threads gives the same bits.
        Zip::from(&mut param)
            .and(&grad)
            .and(m)
            .and(v)
            .par_for_each(|p, &g, m, v| {
                *p *= decay;
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                let denom = v.sqrt() / bias2_sqrt + eps;
                *p -= step_size * *m / denom;
            });
    }

    fn steps(&self) -> u64 {
        self.step
    }
}

/// SGD with momentum, as `torch.optim.SGD` (dampening 0, not Nesterov):
/// g ← g + λ p;  b ← μ b + g (b = g on the first step);  p ← p − lr · b
#[derive(Debug, Clone)]
pub struct Sgd {
    /// Momentum μ.
    pub momentum: f32,
    /// L2 weight decay λ (coupled, as in PyTorch's SGD).
    pub weight_decay: f32,
    step: u64,
    lr: f32,
    buffers: HashMap<String, ArrayD<f32>>,
}

impl Sgd {
    /// SGD with the given momentum and no weight decay.
    pub fn new(momentum: f32) -> Self {
        Self {
            momentum,
            weight_decay: 0.0,
            step: 0,
            lr: 0.01,
            buffers: HashMap::new(),
        }
    }
}

impl Optimizer for Sgd {
    fn begin_step(&mut self, lr: f32) {
        self.step += 1;
        self.lr = lr;
    }

    fn update(&mut self, name: &str, mut param: ArrayViewMutD<'_, f32>, grad: ArrayViewD<'_, f32>) {
        let mut g = grad.to_owned();
        if self.weight_decay != 0.0 {
            g.zip_mut_with(&param, |g, &p| *g += self.weight_decay * p);
        }
        if self.momentum != 0.0 {
            let mu = self.momentum;
            match self.buffers.get_mut(name) {
                Some(b) => {
                    b.zip_mut_with(&g, |b, &g| *b = mu * *b + g);
                    g.assign(b);
                }
                None => {
                    self.buffers.insert(name.to_string(), g.clone());
                }
            }
        }
        let lr = self.lr;
        param.zip_mut_with(&g, |p, &g| *p -= lr * g);
    }

    fn steps(&self) -> u64 {
        self.step
    }
}

/// Linear warm-up from 0 to `base_lr` over `warmup_steps`, then cosine decay to `min_lr` at
/// `total_steps`:  lr(s) = min + (base − min) · (1 + cos(π · (s − w) / (T − w))) / 2.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LrSchedule {
    /// Peak learning rate.
    pub base_lr: f32,
    /// Final learning rate.
    pub min_lr: f32,
    /// Steps of linear warm-up.
    pub warmup_steps: u64,
    /// Total steps of the run.
    pub total_steps: u64,
}

impl LrSchedule {
    /// The learning rate for step `step` (1-based: the first step is 1).
    pub fn lr_at(&self, step: u64) -> f32 {
        if self.warmup_steps > 0 && step <= self.warmup_steps {
            return self.base_lr * step as f32 / self.warmup_steps as f32;
        }
        let span = self.total_steps.saturating_sub(self.warmup_steps).max(1);
        let progress = (step.saturating_sub(self.warmup_steps) as f64 / span as f64).min(1.0);
        let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
        self.min_lr + (self.base_lr - self.min_lr) * cosine as f32
    }
}

/// The global L2 norm of all gradients: √(Σ g²), summed in f64.
///
/// Each gradient is summed in fixed blocks of 16 Ki values, the blocks on the rayon
/// pool and their sums added in order, so the bits do not depend on the thread count.
pub fn global_norm<'a>(grads: impl IntoIterator<Item = ArrayViewD<'a, f32>>) -> f32 {
    grads.into_iter().map(sum_of_squares).sum::<f64>().sqrt() as f32
}

/// Values per block of [`global_norm`]'s sums.
const NORM_BLOCK: usize = 1 << 14;

/// Σ v² of one gradient in f64, block by block (any layout; a contiguous one in parallel).
fn sum_of_squares(g: ArrayViewD<'_, f32>) -> f64 {
    use rayon::prelude::*;
    match g.as_slice_memory_order() {
        Some(values) => values
            .par_chunks(NORM_BLOCK)
            .map(block_sum_of_squares)
            .collect::<Vec<f64>>()
            .iter()
            .sum(),
        None => {
            let values: Vec<f32> = g.iter().copied().collect();
            values.chunks(NORM_BLOCK).map(block_sum_of_squares).sum()
        }
    }
}

/// Σ v² of a block in f64, in eight running sums (lane `i` takes values `i, i + 8, ...`)
/// added at the end: independent additions the compiler can put in vectors.
fn block_sum_of_squares(block: &[f32]) -> f64 {
    let mut lanes = [0.0f64; 8];
    let mut eights = block.chunks_exact(8);
    for eight in &mut eights {
        for (lane, &v) in lanes.iter_mut().zip(eight) {
            *lane += f64::from(v) * f64::from(v);
        }
    }
    for (lane, &v) in lanes.iter_mut().zip(eights.remainder()) {
        *lane += f64::from(v) * f64::from(v);
    }
    lanes.iter().sum()
}

/// The factor `torch.nn.utils.clip_grad_norm_` scales every gradient by:
/// min(1, max_norm / (norm + 1e-6)).
pub fn clip_coefficient(norm: f32, max_norm: f32) -> f32 {
    (max_norm / (norm + 1e-6)).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::arr1;

    /// Two steps against an independent f64 transcription of torch.optim.AdamW's update, and
    /// against values torch 2.15 printed for the same steps (lr 0.1, weight decay 0.01).
    #[test]
    fn adamw_matches_reference_formula() {
        let mut opt = AdamW::new(0.01);
        let mut p = arr1(&[1.0f32, -2.0]).into_dyn();
        let grads = [arr1(&[0.5f32, -1.0]), arr1(&[0.2f32, 0.3])];
        // Independent f64 reference.
        let mut rp = [1.0f64, -2.0];
        let (mut m, mut v) = ([0.0f64; 2], [0.0f64; 2]);
        for (t, g) in grads.iter().enumerate() {
            opt.begin_step(0.1);
            opt.update("w", p.view_mut(), g.view().into_dyn());
            let t = (t + 1) as i32;
            for i in 0..2 {
                let gi = g[i] as f64;
                rp[i] *= 1.0 - 0.1 * 0.01;
                m[i] = 0.9 * m[i] + 0.1 * gi;
                v[i] = 0.999 * v[i] + 0.001 * gi * gi;
                let mh = m[i] / (1.0 - 0.9f64.powi(t));
                let vh = v[i] / (1.0 - 0.999f64.powi(t));
                rp[i] -= 0.1 * mh / (vh.sqrt() + 1e-8);
            }
        }
        for i in 0..2 {
            assert!((p[i] as f64 - rp[i]).abs() < 1e-6, "{} vs {}", p[i], rp[i]);
        }
        // Printed by torch 2.15 for the same two steps.
        let torch = [0.808_243_5f32, -1.853_317_3];
        for i in 0..2 {
            assert!(
                (p[i] - torch[i]).abs() < 1e-6,
                "{} vs torch {}",
                p[i],
                torch[i]
            );
        }
        assert_eq!(opt.steps(), 2);
    }

    #[test]
    fn sgd_momentum_accumulates() {
        let mut opt = Sgd::new(0.9);
        let mut p = arr1(&[1.0f32]).into_dyn();
        let g = arr1(&[1.0f32]).into_dyn();
        opt.begin_step(0.1);
        opt.update("w", p.view_mut(), g.view());
        assert!((p[0] - 0.9).abs() < 1e-7);
        opt.begin_step(0.1);
        opt.update("w", p.view_mut(), g.view());
        // buffer = 0.9 * 1 + 1 = 1.9
        assert!((p[0] - (0.9 - 0.19)).abs() < 1e-6);
    }

    #[test]
    fn schedule_warms_up_then_decays() {
        let s = LrSchedule {
            base_lr: 1.0,
            min_lr: 0.1,
            warmup_steps: 10,
            total_steps: 110,
        };
        assert!((s.lr_at(5) - 0.5).abs() < 1e-6);
        assert!((s.lr_at(10) - 1.0).abs() < 1e-6);
        assert!((s.lr_at(60) - 0.55).abs() < 1e-6);
        assert!((s.lr_at(110) - 0.1).abs() < 1e-6);
        assert!((s.lr_at(500) - 0.1).abs() < 1e-6);
        let mut last = f32::INFINITY;
        for step in 10..=110 {
            let lr = s.lr_at(step);
            assert!(lr <= last + 1e-7);
            last = lr;
        }
    }

    /// The blocked sum against a plain f64 sum, over sizes around the block and lane widths,
    /// a non-contiguous view included; and the same bits on one thread and on four.
    #[test]
    fn the_global_norm_is_the_f64_norm_on_any_thread_count() {
        let values: Vec<f32> = (0..3 * NORM_BLOCK + 13)
            .map(|i| ((i as f32) * 0.37).sin() * 1e-2)
            .collect();
        for len in [0, 1, 7, 8, 9, NORM_BLOCK - 1, NORM_BLOCK + 5, values.len()] {
            let g = ndarray::ArrayView1::from(&values[..len]).into_dyn();
            let strided = ndarray::ArrayView1::from(&values[..len])
                .slice_move(ndarray::s![..;2])
                .into_dyn();
            for view in [g, strided] {
                let want = view
                    .iter()
                    .map(|&v| f64::from(v) * f64::from(v))
                    .sum::<f64>()
                    .sqrt();
                let got = global_norm([view.clone()]);
                assert!(
                    (f64::from(got) - want).abs() <= 1e-6 * want.max(1e-30),
                    "{len}"
                );
                let on = |threads: usize| {
                    rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .unwrap()
                        .install(|| global_norm([view.clone()]))
                };
                assert_eq!(on(1).to_bits(), on(4).to_bits(), "{len}");
            }
        }
    }

    #[test]
    fn clipping_scales_to_max_norm() {
        let g = [arr1(&[3.0f32, 4.0]).into_dyn()];
        let norm = global_norm(g.iter().map(|a| a.view()));
        assert!((norm - 5.0).abs() < 1e-6);
        assert!((clip_coefficient(norm, 1.0) - 0.2).abs() < 1e-6);
        assert_eq!(clip_coefficient(norm, 10.0), 1.0);
    }
}

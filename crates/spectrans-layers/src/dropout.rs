//! Inverted dropout with masks drawn from a seeded RNG, and the training context.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::LayerError;

/// What a training-mode forward needs: the RNG that draws dropout masks, and whether
/// dropout is on. `training = false` runs the train path (caches for backward) without dropout.
#[derive(Debug, Clone)]
pub struct TrainContext {
    /// Source of every dropout mask; seeded, so a run repeats.
    pub rng: ChaCha8Rng,
    /// Dropout on (`true`) or off.
    pub training: bool,
}

impl TrainContext {
    /// A context whose RNG is `ChaCha8Rng::seed_from_u64(seed)`.
    pub fn new(seed: u64, training: bool) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            training,
        }
    }
}

/// Dropout(p): in training keeps each value with probability `1 - p` and scales kept values by
/// `1 / (1 - p)` (`p = 1` zeroes everything); in eval it is the identity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dropout {
    p: f32,
}

impl Dropout {
    /// Errors with [`LayerError::InvalidArgument`] unless `0 <= p <= 1`.
    pub fn new(p: f32) -> Result<Self, LayerError> {
        if (0.0..=1.0).contains(&p) {
            Ok(Self { p })
        } else {
            Err(LayerError::InvalidArgument {
                what: "dropout",
                value: p.to_string(),
                expected: "0 <= p <= 1",
            })
        }
    }

    /// The drop probability.
    pub fn p(&self) -> f32 {
        self.p
    }

    /// Applies dropout in place when `ctx.training` and `p > 0`; returns the mask backward needs.
    ///
    /// ```
    /// use spectrans_layers::{Dropout, TrainContext};
    /// let mut x = vec![1.0f32; 1000];
    /// let mask = Dropout::new(0.5).unwrap().apply(&mut x, &mut TrainContext::new(7, true));
    /// assert!(x.iter().all(|&v| v == 0.0 || v == 2.0));
    /// assert!(!mask.is_identity());
    /// ```
    pub fn apply(&self, data: &mut [f32], ctx: &mut TrainContext) -> DropoutMask {
        if !ctx.training || self.p == 0.0 {
            return DropoutMask::identity();
        }
        let keep_scale = if self.p >= 1.0 {
            0.0
        } else {
            1.0 / (1.0 - self.p)
        };
        let scales: Vec<f32> = data
            .iter_mut()
            .map(|v| {
                let s = if ctx.rng.r#gen::<f32>() < self.p {
                    0.0
                } else {
                    keep_scale
                };
                *v *= s;
                s
            })
            .collect();
        DropoutMask {
            scales: Some(scales),
        }
    }
}

/// The per-element scale (0 or `1 / (1 - p)`) a dropout applied; `None` = identity.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DropoutMask {
    scales: Option<Vec<f32>>,
}

impl DropoutMask {
    /// The mask of an inactive dropout (eval, or p = 0).
    pub fn identity() -> Self {
        Self { scales: None }
    }

    /// A fixed mask of per-element scales (for tests and replays).
    pub fn from_scales(scales: Vec<f32>) -> Self {
        Self {
            scales: Some(scales),
        }
    }

    /// Whether this mask changes nothing.
    pub fn is_identity(&self) -> bool {
        self.scales.is_none()
    }

    /// The per-element scales, if any.
    pub fn scales(&self) -> Option<&[f32]> {
        self.scales.as_deref()
    }

    /// Forward with this fixed mask: `x *= scale` (same as the draw that made it).
    pub fn forward_in_place(&self, data: &mut [f32], what: &str) -> Result<(), LayerError> {
        self.backward_in_place(data, what)
    }

    /// Backward: `grad *= scale`, the same mask as forward. Errors if the lengths differ.
    pub fn backward_in_place(&self, grad: &mut [f32], what: &str) -> Result<(), LayerError> {
        let Some(scales) = &self.scales else {
            return Ok(());
        };
        if scales.len() != grad.len() {
            return Err(LayerError::Shape {
                what: format!("{what} dropout gradient"),
                expected: format!("{} elements", scales.len()),
                found: vec![grad.len()],
            });
        }
        grad.iter_mut().zip(scales).for_each(|(g, s)| *g *= s);
        Ok(())
    }
}

//! Inverted dropout with masks drawn from a seeded RNG, and the training context.

use ndarray::{ArrayView, CowArray, Dimension};
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

    /// The gradient through this mask, in standard layout: `grad` itself (borrowed, no copy)
    /// when the mask is the identity, else a copy with `grad *= scale`. The one way a layer
    /// takes its output gradient back through its dropout.
    ///
    /// ```
    /// use ndarray::array;
    /// use spectrans_layers::DropoutMask;
    /// let g = array![[1.0f32, 2.0], [3.0, 4.0]];
    /// assert!(DropoutMask::identity().masked_grad(g.view(), "x")?.is_view());
    /// let masked = DropoutMask::from_scales(vec![0.0, 2.0, 2.0, 0.0]).masked_grad(g.view(), "x")?;
    /// assert_eq!(masked, array![[0.0, 4.0], [6.0, 0.0]]);
    /// # Ok::<(), spectrans_layers::LayerError>(())
    /// ```
    pub fn masked_grad<'a, D: Dimension + 'a>(
        &self,
        grad: ArrayView<'a, f32, D>,
        what: &str,
    ) -> Result<CowArray<'a, f32, D>, LayerError> {
        if self.is_identity() && grad.is_standard_layout() {
            return Ok(CowArray::from(grad));
        }
        let mut owned = grad.as_standard_layout().into_owned();
        let slice = owned.as_slice_mut().ok_or_else(|| LayerError::Shape {
            what: format!("{what} dropout gradient"),
            expected: "a contiguous array".into(),
            found: grad.shape().to_vec(),
        })?;
        self.backward_in_place(slice, what)?;
        Ok(CowArray::from(owned))
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

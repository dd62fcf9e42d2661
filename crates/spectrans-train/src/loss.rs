//! Losses with their gradients: cross-entropy over rows of logits, and mean squared error.

use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD, Axis, IxDyn};

use crate::data::IGNORE_INDEX;
use crate::error::{LossError, TrainError};

/// Which loss a step minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossKind {
    /// Mean cross-entropy over every predicted row whose target is not -100 (targets: class ids).
    CrossEntropy,
    /// Mean squared error over every element (targets: the output's shape).
    Mse,
}

/// Training targets.
#[derive(Debug, Clone)]
pub enum Targets<'a> {
    /// Class ids: the output's shape minus its last axis.
    Classes(ArrayViewD<'a, i64>),
    /// Values of the output's shape.
    Values(ArrayViewD<'a, f32>),
}

/// The loss of `output` against `targets`, and its gradient w.r.t. `output`.
///
/// ```
/// use ndarray::{ArrayD, IxDyn};
/// use spectrans_train::{LossKind, Targets, loss_and_grad};
/// let logits = ArrayD::<f32>::zeros(IxDyn(&[2, 4]));
/// let classes = ArrayD::from_shape_vec(IxDyn(&[2]), vec![1i64, 3]).unwrap();
/// let (loss, grad) = loss_and_grad(logits.view(), Targets::Classes(classes.view()), LossKind::CrossEntropy)?;
/// assert!((loss - 4f32.ln()).abs() < 1e-6);
/// assert_eq!(grad.shape(), &[2, 4]);
/// # Ok::<(), spectrans_train::TrainError>(())
/// ```
pub fn loss_and_grad(
    output: ArrayViewD<'_, f32>,
    targets: Targets<'_>,
    kind: LossKind,
) -> Result<(f32, ArrayD<f32>), TrainError> {
    match (kind, targets) {
        (LossKind::CrossEntropy, Targets::Classes(t)) => {
            let shape = output.shape();
            let classes = *shape.last().unwrap_or(&0);
            if output.ndim() < 2 || t.shape() != &shape[..shape.len() - 1] {
                return Err(LossError::Shape {
                    what: "the output's shape minus its last axis",
                    expected: shape[..shape.len().saturating_sub(1)].to_vec(),
                    found: t.shape().to_vec(),
                }
                .into());
            }
            let rows = output.len() / classes.max(1);
            let logits = output
                .as_standard_layout()
                .into_owned()
                .into_shape_with_order((rows, classes))?;
            let targets: Vec<i64> = t.iter().copied().collect();
            let (loss, g) = cross_entropy(logits.view(), &targets)?;
            Ok((loss, g.into_shape_with_order(IxDyn(shape))?))
        }
        (LossKind::Mse, Targets::Values(t)) => Ok(mse(output, t)?),
        (LossKind::CrossEntropy, Targets::Values(_)) => Err(TrainError::Targets(
            "cross-entropy needs integer class targets (I64)".into(),
        )),
        (LossKind::Mse, Targets::Classes(_)) => Err(TrainError::Targets(
            "mse needs floating targets of the output's shape (F32)".into(),
        )),
    }
}

/// Mean cross-entropy over rows, with its gradient w.r.t. the logits.
///
/// `loss = mean_r [ logsumexp(z_r) - z_r[t_r] ]`;  `d loss / d z_r = (softmax(z_r) - onehot(t_r)) / R`,
/// over the R rows whose target is not -100 ([`IGNORE_INDEX`], skipped as PyTorch's
/// `ignore_index` does; their gradient is zero). When every row is ignored the loss is 0 with
/// a zero gradient (PyTorch gives NaN), so a batch of padding does not stop a run.
/// The sums run in f64 so the loss is accurate to f32 for any number of rows.
pub fn cross_entropy(
    logits: ArrayView2<'_, f32>,
    targets: &[i64],
) -> Result<(f32, Array2<f32>), LossError> {
    let (rows, classes) = logits.dim();
    if targets.len() != rows {
        return Err(LossError::Shape {
            what: "one class id per row of logits",
            expected: vec![rows],
            found: vec![targets.len()],
        });
    }
    if rows == 0 {
        return Err(LossError::Empty);
    }
    let mut grad = Array2::<f32>::zeros((rows, classes));
    let mut total = 0.0f64;
    let counted = targets.iter().filter(|&&t| t != IGNORE_INDEX).count();
    if counted == 0 {
        return Ok((0.0, grad));
    }
    let scale = 1.0 / counted as f64;
    for (r, (z, mut g)) in logits
        .axis_iter(Axis(0))
        .zip(grad.axis_iter_mut(Axis(0)))
        .enumerate()
    {
        let t = targets[r];
        if t == IGNORE_INDEX {
            continue;
        }
        if t < 0 || t as usize >= classes {
            return Err(LossError::ClassOutOfRange {
                row: r,
                class: t,
                classes,
            });
        }
        let max = z.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
        let sum: f64 = z.iter().map(|&v| (v as f64 - max).exp()).sum();
        let lse = max + sum.ln();
        total += lse - z[t as usize] as f64;
        for (gi, &zi) in g.iter_mut().zip(z.iter()) {
            *gi = (((zi as f64 - lse).exp()) * scale) as f32;
        }
        g[t as usize] -= scale as f32;
    }
    Ok(((total * scale) as f32, grad))
}

/// Mean squared error over every element, with its gradient: d/dp = 2 (p - t) / n.
pub fn mse(
    predictions: ArrayViewD<'_, f32>,
    targets: ArrayViewD<'_, f32>,
) -> Result<(f32, ArrayD<f32>), LossError> {
    if predictions.shape() != targets.shape() {
        return Err(LossError::Shape {
            what: "the output's shape",
            expected: predictions.shape().to_vec(),
            found: targets.shape().to_vec(),
        });
    }
    let n = predictions.len();
    if n == 0 {
        return Err(LossError::Empty);
    }
    let mut total = 0.0f64;
    let mut grad = ArrayD::<f32>::zeros(predictions.raw_dim());
    let scale = 2.0 / n as f64;
    for ((g, &p), &t) in grad.iter_mut().zip(predictions.iter()).zip(targets.iter()) {
        let d = p as f64 - t as f64;
        total += d * d;
        *g = (d * scale) as f32;
    }
    Ok(((total / n as f64) as f32, grad))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array, arr2};
    use proptest::prelude::*;

    #[test]
    fn cross_entropy_of_uniform_logits_is_log_classes() {
        let z = Array2::<f32>::zeros((3, 4));
        let (loss, _) = cross_entropy(z.view(), &[0, 1, 3]).unwrap();
        assert!((loss - 4f32.ln()).abs() < 1e-6);
    }

    #[test]
    fn cross_entropy_rejects_bad_targets() {
        let z = arr2(&[[0.0f32, 1.0]]);
        assert_eq!(
            cross_entropy(z.view(), &[2]).unwrap_err(),
            LossError::ClassOutOfRange {
                row: 0,
                class: 2,
                classes: 2
            }
        );
        assert!(matches!(
            cross_entropy(z.view(), &[-1]),
            Err(LossError::ClassOutOfRange { .. })
        ));
        assert!(matches!(
            cross_entropy(z.view(), &[0, 1]),
            Err(LossError::Shape { .. })
        ));
    }

    #[test]
    fn cross_entropy_skips_ignored_rows_like_pytorch() {
        let z = arr2(&[[0.5f32, -1.0, 2.0], [3.0, 0.0, 1.0], [0.1, 0.2, 0.3]]);
        let (all_but_one, g) = cross_entropy(z.view(), &[2, IGNORE_INDEX, 0]).unwrap();
        let kept = arr2(&[[0.5f32, -1.0, 2.0], [0.1, 0.2, 0.3]]);
        let (expected, g_kept) = cross_entropy(kept.view(), &[2, 0]).unwrap();
        assert_eq!(all_but_one, expected);
        assert!(g.row(1).iter().all(|&v| v == 0.0));
        assert_eq!(g.row(0), g_kept.row(0));
        assert_eq!(g.row(2), g_kept.row(1));
        let (loss, g) = cross_entropy(z.view(), &[IGNORE_INDEX; 3]).unwrap();
        assert_eq!(loss, 0.0);
        assert!(g.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn mse_rejects_shape_mismatch() {
        let p = Array::<f32, _>::zeros((2, 1)).into_dyn();
        let t = Array::<f32, _>::zeros((2,)).into_dyn();
        assert!(matches!(
            mse(p.view(), t.view()),
            Err(LossError::Shape { .. })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Central differences of the loss agree with the analytic gradient.
        #[test]
        fn cross_entropy_gradient_matches_finite_differences(
            rows in 1usize..5, classes in 1usize..6, seed in any::<u64>()
        ) {
            let mut s = seed;
            let mut next = || { s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); ((s >> 40) as f32 / (1u64 << 24) as f32) * 6.0 - 3.0 };
            let z = Array2::from_shape_fn((rows, classes), |_| next());
            let t: Vec<i64> = (0..rows).map(|r| ((r * 7 + seed as usize) % classes) as i64).collect();
            let (_, g) = cross_entropy(z.view(), &t).unwrap();
            let h = 1e-2f32;
            for r in 0..rows { for c in 0..classes {
                let mut zp = z.clone(); zp[[r, c]] += h;
                let mut zm = z.clone(); zm[[r, c]] -= h;
                let fd = (cross_entropy(zp.view(), &t).unwrap().0 - cross_entropy(zm.view(), &t).unwrap().0) / (2.0 * h);
                prop_assert!((fd - g[[r, c]]).abs() < 2e-3, "fd {} vs {}", fd, g[[r, c]]);
            }}
        }

        #[test]
        fn mse_gradient_matches_finite_differences(v in proptest::collection::vec(-3.0f32..3.0, 2..12)) {
            let n = v.len() / 2;
            let p = Array::from_vec(v[..n].to_vec()).into_dyn();
            let t = Array::from_vec(v[n..2 * n].to_vec()).into_dyn();
            let (_, g) = mse(p.view(), t.view()).unwrap();
            let h = 1e-2f32;
            for i in 0..n {
                let mut pp = p.clone(); pp[i] += h;
                let mut pm = p.clone(); pm[i] -= h;
                let fd = (mse(pp.view(), t.view()).unwrap().0 - mse(pm.view(), t.view()).unwrap().0) / (2.0 * h);
                prop_assert!((fd - g[i]).abs() < 2e-3);
            }
        }
    }
}

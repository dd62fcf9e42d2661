//! Branch-free f32 `exp` and `erf` that the compiler vectorizes (used by GELU's hot loop).

/// `e^x` to about 2 ulp for x in [-87, 88] (clamped outside): `x = n ln2 + r`,
/// `e^x = 2^n · p(r)` with a degree-6 polynomial `p` on |r| <= ln2 / 2.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // 1.5 · 2^23: adding and subtracting it rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * LOG2E + ROUND;
    let n = shifted - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (0.166_666_67
                    + r * (0.041_666_668 + r * (0.008_333_334 + r * 0.001_388_889)))));
    // `shifted` lies in [2^23, 2^24), where the ulp is 1: its low bits hold n. Integer ops
    // only (no float -> int conversion), so the loop vectorizes.
    let scale = f32::from_bits(
        shifted
            .to_bits()
            .wrapping_sub(ROUND.to_bits())
            .wrapping_add(127)
            << 23,
    );
    p * scale
}

/// `erf(x)` by Abramowitz–Stegun 7.1.26 (absolute error < 1.5e-7), the approximation
/// PyTorch's vectorized CPU `erf` uses: `erf(|x|) = 1 - t (a1 + t (a2 + …)) e^{-x²}`,
/// `t = 1 / (1 + p |x|)`.
#[inline(always)]
pub fn erf_f32(x: f32) -> f32 {
    erf_and_gauss(x).0
}

/// `(erf(x), e^{-x²})`: the Gaussian factor of [`erf_f32`] comes out too, so GELU's
/// derivative (whose density term is the same `e^{-z²/2}`) costs no second `exp`.
#[inline(always)]
fn erf_and_gauss(x: f32) -> (f32, f32) {
    const P: f32 = 0.327_591_1;
    const A1: f32 = 0.254_829_6;
    const A2: f32 = -0.284_496_74;
    const A3: f32 = 1.421_413_7;
    const A4: f32 = -1.453_152_1;
    const A5: f32 = 1.061_405_4;
    let ax = x.abs();
    let t = 1.0 / (1.0 + P * ax);
    let poly = t * (A1 + t * (A2 + t * (A3 + t * (A4 + t * A5))));
    let gauss = exp_f32(-ax * ax);
    let y = 1.0 - poly * gauss;
    (y.copysign(x), gauss)
}

/// `x · ½ (1 + erf(x / √2))`.
#[inline(always)]
fn gelu(x: f32) -> f32 {
    x * 0.5 * (1.0 + erf_f32(x * std::f32::consts::FRAC_1_SQRT_2))
}

#[inline(always)]
fn gelu_bias_row_portable(row: &mut [f32], bias: &[f32]) {
    for (v, &b) in row.iter_mut().zip(bias) {
        *v = gelu(*v + b);
    }
}

/// The same loop compiled for AVX2 + FMA (8 lanes instead of SSE2's 4). Rust never fuses
/// `a * b + c` on its own, so the results are bit-identical to the portable loop.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn gelu_bias_row_avx2(row: &mut [f32], bias: &[f32]) {
    gelu_bias_row_portable(row, bias);
}

/// `row[j] = gelu(row[j] + bias[j])`, on the widest vector unit the CPU has.
pub fn gelu_bias_row(row: &mut [f32], bias: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports AVX2 and FMA (checked just above), the only requirement of
        // calling a `#[target_feature(enable = "avx2,fma")]` function.
        unsafe { gelu_bias_row_avx2(row, bias) };
        return;
    }
    gelu_bias_row_portable(row, bias);
}

/// `(gelu(z), gelu'(z))` with one `exp`: `Φ = ½ (1 + erf(z / √2))`, `gelu = z Φ`,
/// `gelu' = Φ + z e^{-z²/2} / √(2π)`. The value is bit-identical to [`gelu`].
#[inline(always)]
fn gelu_with_derivative(z: f32) -> (f32, f32) {
    const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;
    let (erf, gauss) = erf_and_gauss(z * std::f32::consts::FRAC_1_SQRT_2);
    let cdf = 1.0 + erf;
    (z * 0.5 * cdf, 0.5 * cdf + z * FRAC_1_SQRT_2PI * gauss)
}

#[inline(always)]
fn gelu_bias_grad_portable(row: &mut [f32], grad: &mut [f32], bias: &[f32]) {
    for ((v, g), &b) in row.iter_mut().zip(grad.iter_mut()).zip(bias) {
        (*v, *g) = gelu_with_derivative(*v + b);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn gelu_bias_grad_avx2(row: &mut [f32], grad: &mut [f32], bias: &[f32]) {
    gelu_bias_grad_portable(row, grad, bias);
}

/// Training twin of [`gelu_bias_row`]: with `z = row[j] + bias[j]`, `row[j] = gelu(z)` and
/// `grad[j] = gelu'(z)` (kept for backward, so backward evaluates no `erf`).
pub fn gelu_bias_row_with_derivative(row: &mut [f32], grad: &mut [f32], bias: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        // SAFETY: AVX2 and FMA are available (checked just above).
        unsafe { gelu_bias_grad_avx2(row, grad, bias) };
        return;
    }
    gelu_bias_grad_portable(row, grad, bias);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_accurate() {
        let mut worst = 0.0f64;
        for i in -8700..=8800 {
            let x = i as f32 * 0.01;
            let want = (x as f64).exp();
            worst = worst.max(((exp_f32(x) as f64 - want) / want).abs());
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
    }

    #[test]
    fn dispatched_gelu_equals_portable() {
        let xs: Vec<f32> = (-600..600).map(|i| i as f32 * 0.013).collect();
        let bias: Vec<f32> = xs.iter().map(|x| x * 0.1).collect();
        let (mut a, mut b) = (xs.clone(), xs.clone());
        gelu_bias_row(&mut a, &bias);
        gelu_bias_row_portable(&mut b, &bias);
        assert_eq!(a, b);
    }

    #[test]
    fn training_loop_matches_the_scalar_formulas() {
        let z: Vec<f32> = (-500..500).map(|i| i as f32 * 0.017).collect();
        let bias: Vec<f32> = z.iter().map(|x| -0.3 * x).collect();
        let (mut row, mut grad) = (z.clone(), vec![0.0; z.len()]);
        gelu_bias_row_with_derivative(&mut row, &mut grad, &bias);
        let mut eval = z.clone();
        gelu_bias_row(&mut eval, &bias);
        assert_eq!(
            row, eval,
            "training GELU must equal the eval GELU bit for bit"
        );
        for ((&x, &a), &d) in z.iter().zip(&row).zip(&grad) {
            let pre = (x - 0.3 * x) as f64;
            let cdf = 0.5 * (1.0 + libm::erf(pre / std::f64::consts::SQRT_2));
            let pdf = (-0.5 * pre * pre).exp() / (2.0 * std::f64::consts::PI).sqrt();
            assert!((a as f64 - pre * cdf).abs() < 1e-6, "gelu({pre})");
            assert!((d as f64 - (cdf + pre * pdf)).abs() < 1e-6, "gelu'({pre})");
        }
    }

    #[test]
    fn erf_is_accurate() {
        let mut worst = 0.0f64;
        for i in -1000..=1000 {
            let x = i as f32 * 0.01;
            worst = worst.max((erf_f32(x) as f64 - libm::erf(x as f64)).abs());
        }
        assert!(worst < 4e-7, "worst absolute error {worst}");
    }
}

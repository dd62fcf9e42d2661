//! Branch-free f32 `exp`, `erf` and GELU that the compiler vectorizes (GELU's hot loops).
//!
//! Every formula is written once, generic over how `a·b + c` is evaluated (`MulAdd`):
//! fused (one rounding, one instruction) inside the loops compiled for CPUs with FMA, and
//! unfused in the portable fallback, where a software `fma` would be slow. The loops are
//! compiled three times on x86_64 (AVX-512, AVX2 + FMA, baseline) and picked at run time.

use num_complex::Complex32;

/// How a polynomial step `a·b + c` is evaluated.
pub(crate) trait MulAdd {
    /// `a·b + c`.
    fn madd(a: f32, b: f32, c: f32) -> f32;
}

/// `a.mul_add(b, c)`: one `vfmadd` where the CPU has FMA.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) struct Fused;

/// `a * b + c`, two roundings (Rust never contracts it on its own).
pub(crate) struct Unfused;

impl MulAdd for Fused {
    #[inline(always)]
    fn madd(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

impl MulAdd for Unfused {
    #[inline(always)]
    fn madd(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// `e^x` to about 2 ulp for x in [-87, 88] (clamped outside): `x = n ln2 + r`,
/// `e^x = 2^n · p(r)` with a degree-6 polynomial `p` on |r| <= ln2 / 2.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    exp_with::<Unfused>(x)
}

#[inline(always)]
fn exp_with<M: MulAdd>(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // 1.5 · 2^23: adding and subtracting it rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let shifted = M::madd(x, LOG2E, ROUND);
    let n = shifted - ROUND;
    let r = M::madd(-n, LN2_LO, M::madd(-n, LN2_HI, x));
    let mut p = 0.001_388_889;
    for c in [0.008_333_334, 0.041_666_668, 0.166_666_67, 0.5, 1.0, 1.0] {
        p = M::madd(p, r, c);
    }
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
    erf_and_gauss::<Unfused>(x).0
}

/// `(erf(x), e^{-x²})`: the Gaussian factor of [`erf_f32`] comes out too, so GELU's
/// derivative (whose density term is the same `e^{-z²/2}`) costs no second `exp`.
#[inline(always)]
fn erf_and_gauss<M: MulAdd>(x: f32) -> (f32, f32) {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_74,
        1.421_413_7,
        -1.453_152_1,
        1.061_405_4,
    ];
    let ax = x.abs();
    let t = 1.0 / M::madd(P, ax, 1.0);
    let mut poly = A[4];
    for &a in A[..4].iter().rev() {
        poly = M::madd(poly, t, a);
    }
    let poly = poly * t;
    let gauss = exp_with::<M>(-ax * ax);
    let y = M::madd(-poly, gauss, 1.0);
    (y.copysign(x), gauss)
}

/// `(gelu(z), gelu'(z))` with one `exp`: `Φ = ½ (1 + erf(z / √2))`, `gelu = z Φ`,
/// `gelu' = Φ + z e^{-z²/2} / √(2π)`.
#[inline(always)]
fn gelu_with_derivative<M: MulAdd>(z: f32) -> (f32, f32) {
    const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;
    let (erf, gauss) = erf_and_gauss::<M>(z * std::f32::consts::FRAC_1_SQRT_2);
    let cdf = 0.5 + 0.5 * erf;
    (z * cdf, M::madd(z * FRAC_1_SQRT_2PI, gauss, cdf))
}

/// `gelu(z) = z Φ(z)`, the first half of [`gelu_with_derivative`] (the same bits).
#[inline(always)]
fn gelu<M: MulAdd>(z: f32) -> f32 {
    let (erf, _) = erf_and_gauss::<M>(z * std::f32::consts::FRAC_1_SQRT_2);
    z * (0.5 + 0.5 * erf)
}

#[inline(always)]
fn gelu_bias_loop<M: MulAdd>(row: &mut [f32], bias: &[f32]) {
    for (v, &b) in row.iter_mut().zip(bias) {
        *v = gelu::<M>(*v + b);
    }
}

#[inline(always)]
fn gelu_bias_grad_loop<M: MulAdd>(row: &mut [f32], grad: &mut [f32], bias: &[f32]) {
    for ((v, g), &b) in row.iter_mut().zip(grad.iter_mut()).zip(bias) {
        (*v, *g) = gelu_with_derivative::<M>(*v + b);
    }
}

/// `σ(x) = 1 / (1 + e^{-x})` with [`exp_with`].
#[inline(always)]
fn sigmoid_with<M: MulAdd>(x: f32) -> f32 {
    1.0 / (1.0 + exp_with::<M>(-x))
}

#[inline(always)]
fn sigmoid_complex_loop<M: MulAdd>(re: &[f32], im: &[f32], out: &mut [Complex32]) {
    for ((o, &r), &i) in out.iter_mut().zip(re).zip(im) {
        *o = Complex32::new(sigmoid_with::<M>(r), sigmoid_with::<M>(i));
    }
}

/// The widest instruction set the CPU has for these loops, with its capability token.
#[derive(Clone, Copy)]
enum Isa {
    #[cfg(target_arch = "x86_64")]
    Avx512(crate::simd::Avx512),
    #[cfg(target_arch = "x86_64")]
    Avx2Fma(crate::simd::Avx2Fma),
    Portable,
}

#[inline]
fn isa() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        if let Some(cpu) = crate::simd::Avx512::try_new() {
            return Isa::Avx512(cpu);
        }
        if let Some(cpu) = crate::simd::Avx2Fma::try_new() {
            return Isa::Avx2Fma(cpu);
        }
    }
    Isa::Portable
}

/// Defines `pub fn $name($args)` that runs `$generic::<M>($args)` compiled for the widest
/// instruction set the CPU has: AVX-512 or AVX2 with fused multiply-adds (`M = Fused`), else
/// the baseline build with `M = Unfused`.
macro_rules! multiversion {
    ($(#[$doc:meta])* pub fn $name:ident($($arg:ident: $ty:ty),*) => $generic:ident) => {
        $(#[$doc])*
        pub fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx2,fma")]
            fn avx512(_cpu: crate::simd::Avx512, $($arg: $ty),*) {
                $generic::<Fused>($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn avx2(_cpu: crate::simd::Avx2Fma, $($arg: $ty),*) {
                $generic::<Fused>($($arg),*)
            }
            match isa() {
                // SAFETY (both arms): the features the function is compiled for, its only
                // requirement, are vouched for by the token `cpu`.
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512(cpu) => unsafe { avx512(cpu, $($arg),*) },
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2Fma(cpu) => unsafe { avx2(cpu, $($arg),*) },
                Isa::Portable => $generic::<Unfused>($($arg),*),
            }
        }
    };
}

multiversion! {
    /// `row[j] = gelu(row[j] + bias[j])`, on the widest vector unit the CPU has.
    pub fn gelu_bias_row(row: &mut [f32], bias: &[f32]) => gelu_bias_loop
}

multiversion! {
    /// Training twin of [`gelu_bias_row`]: with `z = row[j] + bias[j]`, `row[j] = gelu(z)` (the
    /// same bits as [`gelu_bias_row`]) and `grad[j] = gelu'(z)`, kept for backward so that
    /// backward evaluates no `erf`.
    pub fn gelu_bias_row_with_derivative(row: &mut [f32], grad: &mut [f32], bias: &[f32])
        => gelu_bias_grad_loop
}

multiversion! {
    /// `out[j] = σ(re[j]) + i σ(im[j])` (the global filter's default activation), on the
    /// widest vector unit the CPU has.
    pub fn sigmoid_complex_row(re: &[f32], im: &[f32], out: &mut [Complex32])
        => sigmoid_complex_loop
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
        gelu_bias_loop::<Unfused>(&mut b, &bias);
        // Fused and unfused polynomials differ by rounding only.
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= 2e-7 * (1.0 + y.abs()), "{x} vs {y}");
        }
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
    fn sigmoid_row_matches_f64() {
        let re: Vec<f32> = (-900..900).map(|i| i as f32 * 0.11).collect();
        let im: Vec<f32> = re.iter().map(|x| -0.7 * x).collect();
        let mut out = vec![Complex32::new(0.0, 0.0); re.len()];
        sigmoid_complex_row(&re, &im, &mut out);
        let s = |x: f32| 1.0 / (1.0 + (-(x as f64)).exp());
        for ((o, &r), &i) in out.iter().zip(&re).zip(&im) {
            assert!((o.re as f64 - s(r)).abs() < 2e-7, "sigmoid({r})");
            assert!((o.im as f64 - s(i)).abs() < 2e-7, "sigmoid({i})");
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

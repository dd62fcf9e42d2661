//! A branch-free f32 `erf`, so exact GELU vectorises.
//!
//! `libm::erff` branches per value and cannot be vectorised; the FFN's GELU then cost a fifth of
//! a forward. This version evaluates three fixed polynomials and selects among them, which
//! compiles to SIMD blends:
//!
//! - |x| < 1:    erf(x) = x · P(x²)                 (P: degree 8)
//! - 1 ≤ |x| < 2.5: erf(x) = 1 + Q(|x| − 1.75)      (Q: degree 14)
//! - 2.5 ≤ |x| < 4: erf(x) = 1 − R(|x| − 3.25)      (R ≈ erfc, degree 11)
//! - |x| ≥ 4:    erf(x) = ±1 (erfc(4) = 1.5e-8, below f32's resolution at 1)
//!
//! The coefficients are least-squares fits in f64 on Chebyshev nodes of each interval (numpy
//! `polyfit` against `math.erf`), rounded to f32. Evaluated in f32 the maximum error is 1.6e-7
//! absolute over all of f32 (about 2 ulp near 1, checked against an f64 erf in the tests below).

/// P: erf(x)/x as a polynomial in x², on [0, 1].
const SMALL: [f32; 9] = [
    1.128_379_2,
    -0.376_126_38,
    0.112_837_91,
    -0.026_866_138,
    0.005_223_801_4,
    -0.000_854_300_2,
    0.000_119_606_775,
    -1.393_376_9e-5,
    1.064_867_4e-6,
];

/// Q: erf(x) − 1 as a polynomial in (x − 1.75), on [1, 2.5].
const MIDDLE: [f32; 16] = [
    -0.013_328_329,
    0.052_774_996,
    -0.092_356_24,
    0.090_157_285,
    -0.048_102_21,
    0.006_624_363,
    0.008_963_044,
    -0.006_058_769,
    0.000_730_058_64,
    0.000_894_286_1,
    -0.000_442_786_64,
    -5.799_318_4e-6,
    6.877_675e-5,
    -1.703_352_4e-5,
    -4.807_119_7e-6,
    2.555_709e-6,
];

/// R: erfc(x) as a polynomial in (x − 3.25), on [2.5, 4].
const LARGE: [f32; 12] = [
    4.302_808e-6,
    -2.918_906_6e-5,
    9.486_065e-5,
    -0.000_195_807_62,
    0.000_286_645_8,
    -0.000_313_827_3,
    0.000_262_947_03,
    -0.000_169_804_57,
    8.364_816e-5,
    -2.648_451_7e-5,
    -8.504_149e-7,
    3.724_056e-6,
];

#[inline(always)]
fn horner<const N: usize>(c: &[f32; N], t: f32) -> f32 {
    let mut p = c[N - 1];
    for &ci in c[..N - 1].iter().rev() {
        p = p * t + ci;
    }
    p
}

/// The error function in f32, branch-free (see the module docs for the method and accuracy).
///
/// ```
/// use spectrans_layers::erf::erf;
/// assert!((erf(0.5) - 0.520_499_9).abs() < 2e-7);
/// assert_eq!(erf(-7.0), -1.0);
/// ```
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let a = x.abs();
    let small = a * horner(&SMALL, a * a);
    let middle = 1.0 + horner(&MIDDLE, a - 1.75);
    let large = 1.0 - horner(&LARGE, a - 3.25);
    let r = if a < 1.0 {
        small
    } else if a < 2.5 {
        middle
    } else if a < 4.0 {
        large
    } else {
        1.0
    };
    // Every comparison with NaN is false, which would select 1.0: return NaN explicitly.
    let r = if x.is_nan() { x } else { r };
    r.copysign(x)
}

/// Exact GELU, x · ½ (1 + erf(x / √2)), with the vectorisable [`erf`].
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    x * 0.5 * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// `row[i] = gelu(row[i] + bias[i])` (the FFN's bias and activation in one pass); uses AVX2 when
/// the CPU has it.
pub fn bias_gelu_in_place(row: &mut [f32], bias: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { bias_gelu_avx2(row, bias) };
            return;
        }
    }
    bias_gelu_generic(row, bias);
}

#[inline(always)]
fn bias_gelu_generic(row: &mut [f32], bias: &[f32]) {
    for (v, &b) in row.iter_mut().zip(bias) {
        *v = gelu(*v + b);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn bias_gelu_avx2(row: &mut [f32], bias: &[f32]) {
    bias_gelu_generic(row, bias);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf in f64 from its Maclaurin series (|x| <= 3) or the continued fraction of erfc.
    fn erf_f64(x: f64) -> f64 {
        let a = x.abs();
        let r = if a <= 3.0 {
            let mut term = a;
            let mut sum = a;
            let mut n = 0.0;
            loop {
                n += 1.0;
                term *= -a * a / n;
                let add = term / (2.0 * n + 1.0);
                sum += add;
                if add.abs() < 1e-17 * sum.abs() {
                    break;
                }
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            // erfc(a) = exp(-a²)/√π · 1/(a + 1/2/(a + 1/(a + 3/2/(a + ...)))) (Lentz, 60 terms)
            let mut f = a;
            for k in (1..60).rev() {
                f = a + (k as f64 / 2.0) / f;
            }
            1.0 - (-a * a).exp() / (std::f64::consts::PI.sqrt() * f)
        };
        r.copysign(x)
    }

    #[test]
    fn matches_f64_erf_everywhere() {
        let mut worst = 0.0f64;
        let mut at = 0.0f32;
        let mut x = -6.0f32;
        while x <= 6.0 {
            let e = (erf(x) as f64 - erf_f64(x as f64)).abs();
            if e > worst {
                worst = e;
                at = x;
            }
            x += 1.0 / 4096.0;
        }
        assert!(worst < 2e-7, "max error {worst} at {at}");
    }

    #[test]
    fn agrees_with_libm_and_handles_specials() {
        for i in -4000..=4000 {
            let x = i as f32 * 1.37e-3;
            assert!((erf(x) - libm::erff(x)).abs() < 2.5e-7, "{x}");
        }
        assert_eq!(erf(0.0), 0.0);
        assert_eq!(erf(f32::INFINITY), 1.0);
        assert_eq!(erf(f32::NEG_INFINITY), -1.0);
        assert!(erf(f32::NAN).is_nan());
        assert!(erf(-1e-30) <= 0.0);
    }

    #[test]
    fn bias_gelu_matches_the_scalar_formula() {
        let bias: Vec<f32> = (0..37).map(|i| (i as f32 - 18.0) * 0.1).collect();
        let mut row: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
        let expected: Vec<f32> = row
            .iter()
            .zip(&bias)
            .map(|(&v, &b)| {
                let z = v + b;
                z * 0.5 * (1.0 + libm::erff(z * std::f32::consts::FRAC_1_SQRT_2))
            })
            .collect();
        bias_gelu_in_place(&mut row, &bias);
        for (a, e) in row.iter().zip(&expected) {
            assert!((a - e).abs() < 4e-7 * e.abs().max(1.0), "{a} vs {e}");
        }
    }
}

//! Normalisation modes, with numpy / torch semantics.

use std::fmt;
use std::str::FromStr;

use crate::FftError;

/// Which direction of a transform pair carries the `1/n` factor.
///
/// | mode | forward scale | inverse scale |
/// | --- | --- | --- |
/// | `Backward` | 1 | 1/n |
/// | `Forward` | 1/n | 1 |
/// | `Ortho` | 1/√n | 1/√n |
///
/// ```
/// use spectrans_fft::FftNorm;
/// let norm: FftNorm = "ortho".parse().unwrap();
/// assert_eq!(norm, FftNorm::Ortho);
/// assert_eq!(norm.to_string(), "ortho");
/// assert!("unitary".parse::<FftNorm>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FftNorm {
    /// No scaling forward, `1/n` on the inverse (numpy's default).
    Backward,
    /// `1/n` forward, no scaling on the inverse.
    Forward,
    /// `1/√n` both ways: the transform is unitary.
    Ortho,
}

impl FftNorm {
    /// Factor applied to the unnormalised forward sum for a length-`n` transform.
    pub fn forward_scale(self, n: usize) -> f32 {
        match self {
            Self::Backward => 1.0,
            Self::Forward => recip(n as f64),
            Self::Ortho => recip((n as f64).sqrt()),
        }
    }

    /// Factor applied to the unnormalised inverse sum for a length-`n` transform.
    pub fn inverse_scale(self, n: usize) -> f32 {
        match self {
            Self::Backward => recip(n as f64),
            Self::Forward => 1.0,
            Self::Ortho => recip((n as f64).sqrt()),
        }
    }

    /// The lower-case name, as numpy and torch spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Backward => "backward",
            Self::Forward => "forward",
            Self::Ortho => "ortho",
        }
    }
}

fn recip(x: f64) -> f32 {
    (1.0 / x) as f32
}

impl FromStr for FftNorm {
    type Err = FftError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "backward" => Ok(Self::Backward),
            "forward" => Ok(Self::Forward),
            "ortho" => Ok(Self::Ortho),
            other => Err(FftError::InvalidNorm {
                value: other.to_owned(),
            }),
        }
    }
}

impl fmt::Display for FftNorm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

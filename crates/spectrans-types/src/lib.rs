//! The shared vocabulary of spectrans-rs: one definition of each choice that the FFT, the
//! config and the layers all name.
//!
//! - [`FftNorm`]: how a transform is scaled (numpy's and PyTorch's `norm=`).
//! - [`FilterActivation`]: the function applied to the global filter's real and imaginary
//!   weights.
//! - [`Activation`]: the function between the feed-forward network's two linears.
//!
//! Each has its lower-case spelling (`Display`, `FromStr`, `NAMES`), the one the TOML configs
//! and spectrans use; with the `serde` feature it (de)serializes by that spelling. The math of
//! the activations lives in spectrans-layers (`ActivationExt`, `FilterActivationExt`).
//!
//! ```
//! use spectrans_types::{Activation, FftNorm};
//! let norm: FftNorm = "ortho".parse()?;
//! assert_eq!(norm.forward_scale(4), 0.5);
//! assert_eq!(Activation::LeakyRelu.to_string(), "leaky_relu");
//! assert!("softmax".parse::<Activation>().is_err());
//! # Ok::<(), spectrans_types::UnknownVariant>(())
//! ```

#![deny(missing_docs)]

use std::fmt;

/// A string that names none of an enum's variants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownVariant {
    /// What kind of choice was being parsed, e.g. "fft_norm".
    pub what: &'static str,
    /// The string that was given.
    pub value: String,
    /// Every accepted spelling.
    pub expected: &'static [&'static str],
}

impl fmt::Display for UnknownVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown {} `{}`; expected one of {}",
            self.what,
            self.value,
            self.expected.join(", ")
        )
    }
}

impl std::error::Error for UnknownVariant {}

/// Defines a string-valued choice: the enum, `ALL`, `NAMES`, `as_str`, `Display` and
/// `FromStr` (whose error is [`UnknownVariant`]). Written `choice_enum! { serde; ... }`, the
/// enum also (de)serializes by its spellings (the caller depends on serde); without `serde;`
/// it does so under this crate's `serde` feature. The config crate defines its own choices
/// (model type, output type, ...) with it, so every choice of the workspace has one shape.
///
/// ```
/// spectrans_types::choice_enum! {
///     /// A colour.
///     Colour, "colour" {
///         /// The first.
///         Red => "red",
///         /// The second.
///         DarkBlue => "dark_blue",
///     }
/// }
/// assert_eq!("dark_blue".parse::<Colour>(), Ok(Colour::DarkBlue));
/// assert_eq!(Colour::NAMES, ["red", "dark_blue"]);
/// assert!("blue".parse::<Colour>().unwrap_err().to_string().contains("colour"));
/// ```
#[macro_export]
macro_rules! choice_enum {
    (
        serde;
        $(#[$meta:meta])*
        $name:ident, $what:literal {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant ),+
        }
        $crate::choice_enum!(@impl $name, $what { $($variant => $text),+ });
    };
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        pub enum $name {
            $( $(#[$vmeta])* #[cfg_attr(feature = "serde", serde(rename = $text))] $variant ),+
        }
        $crate::choice_enum!(@impl $name, $what { $($variant => $text),+ });
    };
    (@impl $name:ident, $what:literal { $($variant:ident => $text:literal),+ }) => {
        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The spelling of every variant, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The spelling of this variant.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::UnknownVariant;

            fn from_str(s: &str) -> ::std::result::Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::UnknownVariant {
                        what: $what,
                        value: s.to_owned(),
                        expected: Self::NAMES,
                    }),
                }
            }
        }
    };
}

choice_enum! {
    /// FFT scaling, as numpy and PyTorch name it (`norm=`).
    ///
    /// ```
    /// use spectrans_types::FftNorm;
    /// assert_eq!(FftNorm::Backward.inverse_scale(8), 0.125);
    /// assert_eq!(FftNorm::Ortho.as_str(), "ortho");
    /// ```
    FftNorm, "fft_norm" {
        /// `1/√n` both ways: the transform is unitary (spectrans' default).
        Ortho => "ortho",
        /// `1/n` forward, no scaling on the inverse.
        Forward => "forward",
        /// No scaling forward, `1/n` on the inverse (numpy's default).
        Backward => "backward",
    }
}

impl FftNorm {
    /// Factor applied to the unnormalised forward sum of a length-`n` transform.
    pub fn forward_scale(self, n: usize) -> f32 {
        match self {
            Self::Backward => 1.0,
            Self::Forward => recip(n as f64),
            Self::Ortho => recip((n as f64).sqrt()),
        }
    }

    /// Factor applied to the unnormalised inverse sum of a length-`n` transform.
    pub fn inverse_scale(self, n: usize) -> f32 {
        match self {
            Self::Backward => recip(n as f64),
            Self::Forward => 1.0,
            Self::Ortho => recip((n as f64).sqrt()),
        }
    }
}

/// `1 / x` in f64, rounded once to f32; 1 for `x = 0` (an empty transform scales nothing).
fn recip(x: f64) -> f32 {
    if x == 0.0 { 1.0 } else { (1.0 / x) as f32 }
}

choice_enum! {
    /// The function applied to the global filter's real and imaginary weights separately:
    /// `H = act(W_r) + i act(W_i)`.
    FilterActivation, "filter_activation" {
        /// `σ(w) = 1 / (1 + e^-w)` (spectrans' default).
        Sigmoid => "sigmoid",
        /// `tanh(w)`.
        Tanh => "tanh",
        /// `w`.
        Identity => "identity",
    }
}

choice_enum! {
    /// The feed-forward network's activation (spectrans' `FeedForwardNetwork` set).
    Activation, "activation" {
        /// Exact GELU: `x · ½ (1 + erf(x / √2))`.
        Gelu => "gelu",
        /// `max(0, x)`.
        Relu => "relu",
        /// `x · σ(x)`.
        Silu => "silu",
        /// `tanh(x)`.
        Tanh => "tanh",
        /// `σ(x)`.
        Sigmoid => "sigmoid",
        /// `x` for x > 0, else `e^x - 1` (alpha 1).
        Elu => "elu",
        /// `x` for x > 0, else `0.01 x`.
        LeakyRelu => "leaky_relu",
    }
}

impl Default for FftNorm {
    /// `Ortho`, spectrans' default.
    fn default() -> Self {
        Self::Ortho
    }
}

impl Default for FilterActivation {
    /// `Sigmoid`, spectrans' default.
    fn default() -> Self {
        Self::Sigmoid
    }
}

impl Default for Activation {
    /// `Gelu`, spectrans' default.
    fn default() -> Self {
        Self::Gelu
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn round_trips<T>(all: &[T], names: &[&str])
    where
        T: Copy + fmt::Display + FromStr + PartialEq + fmt::Debug,
    {
        assert_eq!(all.len(), names.len());
        for (v, n) in all.iter().zip(names) {
            assert_eq!(v.to_string(), *n);
            assert_eq!(n.parse::<T>().ok(), Some(*v));
        }
    }

    #[test]
    fn names_round_trip() {
        round_trips(FftNorm::ALL, FftNorm::NAMES);
        round_trips(FilterActivation::ALL, FilterActivation::NAMES);
        round_trips(Activation::ALL, Activation::NAMES);
    }

    #[test]
    fn unknown_names_list_the_choices() {
        let err = "unitary".parse::<FftNorm>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown fft_norm `unitary`; expected one of ortho, forward, backward"
        );
        assert!(
            "Ortho".parse::<FftNorm>().is_err(),
            "spellings are case-sensitive"
        );
    }

    #[test]
    fn scales_multiply_to_one_over_n() {
        for norm in FftNorm::ALL {
            for n in [1usize, 2, 7, 512] {
                let product = norm.forward_scale(n) as f64 * norm.inverse_scale(n) as f64;
                assert!((product * n as f64 - 1.0).abs() < 1e-6, "{norm} n={n}");
            }
        }
        assert_eq!(FftNorm::Ortho.forward_scale(0), 1.0);
    }
}

choice_enum! {
    /// The number format of a model's linear layers at inference (`--precision`). The
    /// embedding, the LayerNorms and the global filter always run in f32.
    Precision, "precision" {
        /// Float32 everywhere: the parity path.
        F32 => "f32",
        /// bfloat16 weights and activations into each Linear, f32 accumulation.
        Bf16 => "bf16",
        /// int8 weights (symmetric, per output channel) and u8 activations (asymmetric, per
        /// row) into each Linear, dequantized after the product.
        Int8 => "int8",
    }
}

//! Capability tokens: zero-sized values that exist only once the CPU has been checked at run
//! time for a set of instruction-set features.
//!
//! A token has a private field, and its one constructor, `try_new`, returns `Some` only after
//! `is_x86_feature_detected!` said yes for every feature it names. So a function that takes a
//! token as an argument cannot be called on a CPU without those features, and a SIMD value
//! type that keeps a token beside its register (as spectrans-fft's AVX lanes do) cannot be
//! made on one: every intrinsic a method of that value runs is vouched for by the value's
//! existence. `#[target_feature]` functions that take a token are still `unsafe` to call from
//! code compiled without the feature (the language's rule); the call's `SAFETY` comment then
//! points at the token in hand, never at a convention.
//!
//! ```
//! use spectrans_linalg::simd::Avx2Fma;
//! match Avx2Fma::try_new() {
//!     Some(cpu) => println!("this CPU runs AVX2 + FMA code ({cpu:?})"),
//!     None => println!("portable code only"),
//! }
//! ```

/// Defines a capability token for a list of features.
macro_rules! token {
    ($(#[$doc:meta])* $name:ident => [$($feature:tt),+]) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name {
            /// Private: only `try_new` makes one.
            _checked: (),
        }

        impl $name {
            /// The features this token vouches for, as `#[target_feature]` spells them.
            pub const FEATURES: &'static [&'static str] = &[$($feature),+];

            /// The token, when this CPU has every feature in [`Self::FEATURES`].
            #[inline]
            pub fn try_new() -> Option<Self> {
                #[cfg(target_arch = "x86_64")]
                if $(std::arch::is_x86_feature_detected!($feature))&&+ {
                    return Some(Self { _checked: () });
                }
                None
            }
        }
    };
}

token! {
    /// The CPU has AVX (256-bit float vectors).
    Avx => ["avx"]
}

token! {
    /// The CPU has AVX2 (256-bit integer vectors), and so AVX.
    Avx2 => ["avx", "avx2"]
}

token! {
    /// The CPU has AVX2 and fused multiply-adds (FMA3), and so AVX.
    Avx2Fma => ["avx", "avx2", "fma"]
}

token! {
    /// The CPU has AVX-512 F, and AVX2 and FMA beside it.
    Avx512 => ["avx", "avx2", "fma", "avx512f"]
}

token! {
    /// The CPU has AVX-512 VNNI with 256-bit forms (VL), and AVX2 beside it (`vpdpbusd`).
    Avx512Vnni => ["avx", "avx2", "avx512f", "avx512vnni", "avx512vl"]
}

token! {
    /// The CPU has AVX-512 BF16 with 256-bit forms (VL), and AVX2 beside it (`vdpbf16ps`).
    Avx512Bf16 => ["avx", "avx2", "avx512f", "avx512bf16", "avx512vl"]
}

/// Defines a narrowing from a larger feature set to one it contains.
macro_rules! narrows {
    ($from:ident => $($to:ident),+) => {
        $(
            impl From<$from> for $to {
                /// A CPU with the larger set has the smaller one.
                #[inline(always)]
                fn from(_: $from) -> Self {
                    Self { _checked: () }
                }
            }
        )+
    };
}

narrows!(Avx2 => Avx);
narrows!(Avx2Fma => Avx, Avx2);
narrows!(Avx512 => Avx, Avx2, Avx2Fma);
narrows!(Avx512Vnni => Avx, Avx2);
narrows!(Avx512Bf16 => Avx, Avx2);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_exists_exactly_when_the_cpu_has_its_features() {
        #[cfg(target_arch = "x86_64")]
        {
            let has = |features: &[&str]| {
                features.iter().all(|f| match *f {
                    "avx" => std::arch::is_x86_feature_detected!("avx"),
                    "avx2" => std::arch::is_x86_feature_detected!("avx2"),
                    "fma" => std::arch::is_x86_feature_detected!("fma"),
                    "avx512f" => std::arch::is_x86_feature_detected!("avx512f"),
                    "avx512vnni" => std::arch::is_x86_feature_detected!("avx512vnni"),
                    "avx512vl" => std::arch::is_x86_feature_detected!("avx512vl"),
                    "avx512bf16" => std::arch::is_x86_feature_detected!("avx512bf16"),
                    other => panic!("unknown feature {other}"),
                })
            };
            assert_eq!(Avx::try_new().is_some(), has(Avx::FEATURES));
            assert_eq!(Avx2::try_new().is_some(), has(Avx2::FEATURES));
            assert_eq!(Avx2Fma::try_new().is_some(), has(Avx2Fma::FEATURES));
            assert_eq!(Avx512::try_new().is_some(), has(Avx512::FEATURES));
            assert_eq!(Avx512Vnni::try_new().is_some(), has(Avx512Vnni::FEATURES));
            assert_eq!(Avx512Bf16::try_new().is_some(), has(Avx512Bf16::FEATURES));
        }
        #[cfg(not(target_arch = "x86_64"))]
        assert!(Avx::try_new().is_none());
    }

    #[test]
    fn a_larger_set_implies_the_smaller_ones() {
        if let Some(cpu) = Avx512::try_new() {
            let narrow: Avx2Fma = cpu.into();
            assert_eq!(Some(narrow), Avx2Fma::try_new());
        }
    }
}

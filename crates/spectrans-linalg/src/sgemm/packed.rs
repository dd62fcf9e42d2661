//! The packed formats of the right operand: f32 or bf16 panels for the f32 kernel, int8 codes
//! with scales for the integer kernel, bf16 pairs for the `vdpbf16ps` kernel.

use ndarray::{Array2, ArrayView2};

use super::kernel::{BPanel, NR, PanelValue};
use super::pack::{KC, Strided, pack_rhs, packed_len, panels};
use super::{bf16, int8};
use crate::precision::{Precision, round_bf16};

/// The right operand B (k, n) of `C = A · B`, packed into the panels the micro-kernels read.
///
/// A Linear layer's weight W (out, in) gives B = Wᵀ: [`PackedRhs::from_weight`] keeps it in
/// f32, [`PackedRhs::quantized_from_weight`] in bfloat16 (half the memory) or int8 with one
/// scale per output channel (a quarter).
#[derive(Debug, Clone, PartialEq)]
pub struct PackedRhs {
    pub(super) k: usize,
    pub(super) n: usize,
    pub(super) data: Panels,
}

/// The packed values of a [`PackedRhs`], in one of three formats.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Panels {
    F32(Vec<f32>),
    /// bfloat16 bits (the high half of each value's f32, rounded to nearest even), widened
    /// by the f32 kernel.
    Bf16(Vec<u16>),
    /// bfloat16 bits in the `vdpbf16ps` kernel's layout (CPUs with AVX-512 BF16).
    Bf16Dot(bf16::Bf16Rhs),
    /// int8 codes and one scale per output channel, in the integer kernel's layout.
    Int8(int8::Int8Rhs),
}

impl PackedRhs {
    /// Packs B (k, n), any strides.
    pub fn new(b: ArrayView2<'_, f32>) -> Self {
        let (k, n) = b.dim();
        // Exactly the weight's size (when n is a multiple of 16): see `pack::Line`.
        let mut data = vec![0.0f32; packed_len(k, n)];
        pack_rhs(Strided::of(&b), &mut data);
        Self {
            k,
            n,
            data: Panels::F32(data),
        }
    }

    /// Packs `B = Wᵀ` for a weight W (out, in) in PyTorch layout, so `C = A · Wᵀ`.
    pub fn from_weight(weight: ArrayView2<'_, f32>) -> Self {
        Self::new(weight.t())
    }

    /// Packs `B = Wᵀ` in `precision`: at `Bf16` each value rounded to bfloat16
    /// ([`round_bf16`]); at `Int8` each output channel (row of W) quantized symmetrically,
    /// `q = round(w / s)` in [-127, 127], `s = max|w| / 127` (a row of zeros keeps `s = 0`), as
    /// [`quantize_rows_into`](crate::precision::quantize_rows_into) does. The products of
    /// [`gemm()`](crate::gemm()) then use exactly those values, and convert the left operand to the
    /// same format on each call (bf16: each value rounded; int8: per row to 7-bit codes,
    /// then the sums of `x · q`, times the scales). On CPUs with AVX-512 BF16 a bf16 weight
    /// is held for the `vdpbf16ps` kernel; elsewhere the f32 kernel widens it.
    ///
    /// ```
    /// use ndarray::array;
    /// use spectrans_linalg::{PackedRhs, Precision};
    /// let w = array![[0.5f32, -1.0, 0.25]];
    /// let packed = PackedRhs::quantized_from_weight(w.view(), Precision::Int8);
    /// assert_eq!(packed.precision(), Precision::Int8);
    /// let back = packed.to_weight(); // s · q with s = 1/127
    /// assert_eq!(back[[0, 1]], -1.0);
    /// assert!((back[[0, 0]] - 64.0 / 127.0).abs() < 1e-7);
    /// ```
    pub fn quantized_from_weight(weight: ArrayView2<'_, f32>, precision: Precision) -> Self {
        let (n, k) = weight.dim();
        let data = match precision {
            Precision::F32 => return Self::from_weight(weight),
            Precision::Bf16 if let Some(cpu) = bf16::supported() => {
                Panels::Bf16Dot(bf16::Bf16Rhs::from_weight(cpu, weight))
            }
            Precision::Bf16 => {
                let Panels::F32(values) = Self::from_weight(weight).data else {
                    unreachable!("from_weight packs f32")
                };
                Panels::Bf16(values.iter().map(|&v| bf16_bits(v)).collect())
            }
            Precision::Int8 => Panels::Int8(int8::Int8Rhs::from_weight(weight)),
        };
        Self { k, n, data }
    }

    /// W (out, in) packed as the products on it should read it, in `precision`: always for
    /// bf16 and int8 ([`PackedRhs::quantized_from_weight`]); for f32 only where our kernels
    /// run the products ([`packs_f32`](crate::packs_f32)), `None` elsewhere (the backend
    /// there reads the plain matrix).
    pub fn for_products(weight: ArrayView2<'_, f32>, precision: Precision) -> Option<Self> {
        if precision == Precision::F32 && !crate::packs_f32() {
            return None;
        }
        Some(Self::quantized_from_weight(weight, precision))
    }

    /// The number format the values are kept in.
    pub fn precision(&self) -> Precision {
        match self.data {
            Panels::F32(_) => Precision::F32,
            Panels::Bf16(_) | Panels::Bf16Dot(_) => Precision::Bf16,
            Panels::Int8(_) => Precision::Int8,
        }
    }

    /// Rows of B (the inner dimension k).
    pub fn rows(&self) -> usize {
        self.k
    }

    /// Columns of B (the output width n).
    pub fn cols(&self) -> usize {
        self.n
    }

    /// Unpacks the weight W (n, k) that [`PackedRhs::from_weight`] packed (B = Wᵀ); for a
    /// reduced precision, the values it holds (`s · q` for int8).
    pub fn to_weight(&self) -> Array2<f32> {
        let view = match self.view() {
            Rhs::Panels(view) => view,
            Rhs::Int8(q) => return q.to_weight(),
            Rhs::Bf16Dot(q) => return q.to_weight(),
        };
        Array2::from_shape_fn((self.n, self.k), |(j, p)| {
            let kc = KC.min(self.k - p / KC * KC);
            let i = (p % KC) * NR + j % NR;
            match view.panel(p / KC * KC, kc, j / NR) {
                BPanel::F32(b) => b[i],
                BPanel::Bf16(b) => b[i].to_f32(),
            }
        })
    }

    pub(super) fn view(&self) -> Rhs<'_> {
        let data = match &self.data {
            Panels::F32(v) => PanelsRef::F32(v),
            Panels::Bf16(v) => PanelsRef::Bf16(v),
            Panels::Int8(q) => return Rhs::Int8(q),
            Panels::Bf16Dot(q) => return Rhs::Bf16Dot(q),
        };
        Rhs::Panels(PackedView {
            k: self.k,
            n: self.n,
            data,
        })
    }
}

/// A product's right operand: f32 or bf16 panels for the f32 kernel, int8 for the integer
/// one, or bf16 for the `vdpbf16ps` one.
#[derive(Debug, Clone, Copy)]
pub(super) enum Rhs<'a> {
    Panels(PackedView<'a>),
    Int8(&'a int8::Int8Rhs),
    Bf16Dot(&'a bf16::Bf16Rhs),
}

impl Rhs<'_> {
    pub(super) fn k(&self) -> usize {
        match self {
            Rhs::Panels(v) => v.k,
            Rhs::Int8(q) => q.k,
            Rhs::Bf16Dot(q) => q.k,
        }
    }

    pub(super) fn n(&self) -> usize {
        match self {
            Rhs::Panels(v) => v.n,
            Rhs::Int8(q) => q.n,
            Rhs::Bf16Dot(q) => q.n,
        }
    }
}

/// The bfloat16 bits of `v` rounded to nearest even ([`round_bf16`]).
pub(super) fn bf16_bits(v: f32) -> u16 {
    // The low 16 bits of a rounded value are zero.
    (round_bf16(v).to_bits() >> 16) as u16
}

/// The packed values of a [`PackedView`], borrowed.
#[derive(Debug, Clone, Copy)]
pub(super) enum PanelsRef<'a> {
    F32(&'a [f32]),
    Bf16(&'a [u16]),
}

/// A packed B, borrowed (from a [`PackedRhs`] or a per-call scratch buffer).
#[derive(Debug, Clone, Copy)]
pub(super) struct PackedView<'a> {
    pub(super) k: usize,
    pub(super) n: usize,
    pub(super) data: PanelsRef<'a>,
}

impl<'a> PackedView<'a> {
    /// The panel of columns `16j..` in the block of B rows starting at `p0` (`kc` rows).
    pub(super) fn panel(&self, p0: usize, kc: usize, j: usize) -> BPanel<'a> {
        self.panels(p0, kc, j, 1)
    }

    /// `count` consecutive panels from columns `16j..` in the block of B rows starting at
    /// `p0` (`kc` rows): panel after panel, `kc * NR` values each.
    pub(super) fn panels(&self, p0: usize, kc: usize, j: usize, count: usize) -> BPanel<'a> {
        let start = p0 * panels(self.n) * NR + j * kc * NR;
        let range = start..start + count * kc * NR;
        match self.data {
            PanelsRef::F32(v) => BPanel::F32(&v[range]),
            PanelsRef::Bf16(v) => BPanel::Bf16(&v[range]),
        }
    }
}

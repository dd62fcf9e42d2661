//! Positional encodings: sinusoidal table, learned table, rotary.

use ndarray::{Array2, Array3, ArrayView3, ArrayViewD, ArrayViewMutD, Axis, s};
use rand::Rng;
use spectrans_linalg::{contiguous, contiguous_mut};

use crate::dropout::{Dropout, DropoutMask, TrainContext};
use crate::embedding::{Embedding, EmbeddingGrads};
use crate::error::{LayerError, shape_error};
use crate::params::{Parameters, join};
use rayon::prelude::*;

use crate::tensor::{min_rows, rows_of};

/// `ln(10000)`, the base of every frequency here.
const LN_10000: f64 = 9.210_340_371_976_184;

/// The sinusoidal table, computed in f32 the way PyTorch does:
/// `div[i] = exp(2i · -(ln 10000 / D))`, `pe[p, 2i] = sin(p · div[i])`, `pe[p, 2i+1] = cos(p · div[i])`.
///
/// ```
/// let pe = spectrans_layers::sinusoidal_table(4, 4);
/// assert_eq!(pe[[0, 1]], 1.0);
/// assert!((pe[[1, 0]] - 1f32.sin()).abs() < 1e-7);
/// ```
pub fn sinusoidal_table(max_len: usize, dim: usize) -> Array2<f32> {
    let scale = -(LN_10000 / dim.max(1) as f64) as f32;
    let div: Vec<f32> = (0..dim)
        .step_by(2)
        .map(|i| (i as f32 * scale).exp())
        .collect();
    let mut pe = Array2::<f32>::zeros((max_len, dim));
    for (p, mut row) in pe.axis_iter_mut(Axis(0)).enumerate() {
        let pos = p as f32;
        for (i, &d) in div.iter().enumerate() {
            let angle = pos * d;
            if let Some(v) = row.get_mut(2 * i) {
                *v = angle.sin();
            }
            if let Some(v) = row.get_mut(2 * i + 1) {
                *v = angle.cos();
            }
        }
    }
    pe
}

/// Rotary inverse frequencies `1 / 10000^(2i / D)` in f32, i < D/2 (PyTorch's float math).
pub fn rotary_inv_freq(dim: usize) -> Vec<f32> {
    let d = dim.max(1) as f32;
    (0..dim)
        .step_by(2)
        .map(|i| 1.0 / 10000f32.powf(i as f32 / d))
        .collect()
}

/// `x + pe[:N]` then dropout (spectrans `PositionalEncoding`).
#[derive(Debug, Clone)]
pub struct SinusoidalEncoding {
    /// The table, (S, D) (PyTorch stores it as the buffer `pe` of shape (1, S, D)).
    pub pe: Array2<f32>,
    /// Dropout after the addition.
    pub dropout: Dropout,
}

/// `x + E[0..N]` then dropout (spectrans `LearnedPositionalEncoding`).
#[derive(Debug, Clone)]
pub struct LearnedEncoding {
    /// `position_embeddings`, weight (S, D).
    pub position_embeddings: Embedding,
    /// Dropout after the addition.
    pub dropout: Dropout,
}

/// Rotary position embedding on the hidden halves; any length, no parameters, no dropout.
#[derive(Debug, Clone)]
pub struct RotaryEncoding {
    dim: usize,
    inv_freq: Vec<f32>,
}

/// One of spectrans' positional encodings.
#[derive(Debug, Clone)]
pub enum PositionalEncoding {
    /// Fixed sinusoidal table.
    Sinusoidal(SinusoidalEncoding),
    /// Learned table.
    Learned(LearnedEncoding),
    /// Rotary.
    Rotary(RotaryEncoding),
}

/// Gradients of a [`PositionalEncoding`] (only the learned one has parameters).
#[derive(Debug, Clone)]
pub struct PositionalEncodingGrads {
    /// Of `position_embeddings` (learned encoding only).
    pub position_embeddings: Option<EmbeddingGrads>,
}

/// What [`PositionalEncoding::backward`] needs.
#[derive(Debug, Clone)]
pub struct PositionalEncodingCache {
    /// Dropout mask after the addition.
    pub mask: DropoutMask,
    /// Input shape (batch, seq, dim).
    pub shape: (usize, usize, usize),
}

impl PositionalEncoding {
    /// Sinusoidal table of `max_len` rows and width `dim`.
    pub fn sinusoidal(max_len: usize, dim: usize, dropout: f32) -> Result<Self, LayerError> {
        Ok(Self::Sinusoidal(SinusoidalEncoding {
            pe: sinusoidal_table(max_len, dim),
            dropout: Dropout::new(dropout)?,
        }))
    }

    /// Learned table of `max_len` rows (xavier-uniform init).
    pub fn learned(
        max_len: usize,
        dim: usize,
        dropout: f32,
        rng: &mut impl Rng,
    ) -> Result<Self, LayerError> {
        Ok(Self::Learned(LearnedEncoding {
            position_embeddings: Embedding::new(max_len, dim, rng),
            dropout: Dropout::new(dropout)?,
        }))
    }

    /// Rotary encoding; errors with [`LayerError::OddRotaryDim`] for odd `dim`.
    pub fn rotary(dim: usize) -> Result<Self, LayerError> {
        if !dim.is_multiple_of(2) {
            return Err(LayerError::OddRotaryDim { hidden_dim: dim });
        }
        Ok(Self::Rotary(RotaryEncoding {
            dim,
            inv_freq: rotary_inv_freq(dim),
        }))
    }

    /// The hidden width D.
    pub fn dim(&self) -> usize {
        match self {
            Self::Sinusoidal(e) => e.pe.ncols(),
            Self::Learned(e) => e.position_embeddings.dim(),
            Self::Rotary(e) => e.dim,
        }
    }

    fn check(&self, x: &ArrayView3<'_, f32>) -> Result<(), LayerError> {
        let (_, n, d) = x.dim();
        if d != self.dim() {
            return Err(shape_error(
                "positional encoding input",
                format!("(batch, seq, {})", self.dim()),
                x.shape(),
            ));
        }
        let (what, max_len) = match self {
            Self::Sinusoidal(e) => ("sinusoidal positional encoding", e.pe.nrows()),
            Self::Learned(e) => ("learned positional encoding", e.position_embeddings.num()),
            Self::Rotary(_) => return Ok(()),
        };
        if n > max_len {
            return Err(LayerError::SequenceTooLong {
                what,
                seq_len: n,
                max_len,
            });
        }
        Ok(())
    }

    /// The added table rows 0..n (sinusoidal, learned).
    fn table(&self) -> Option<&Array2<f32>> {
        match self {
            Self::Sinusoidal(e) => Some(&e.pe),
            Self::Learned(e) => Some(&e.position_embeddings.weight),
            Self::Rotary(_) => None,
        }
    }

    fn dropout(&self) -> Option<&Dropout> {
        match self {
            Self::Sinusoidal(e) => Some(&e.dropout),
            Self::Learned(e) => Some(&e.dropout),
            Self::Rotary(_) => None,
        }
    }

    /// The encoding without dropout, on an owned array.
    fn encode(&self, x: ArrayView3<'_, f32>) -> Result<Array3<f32>, LayerError> {
        self.check(&x)?;
        let n = x.dim().1;
        match (self, self.table()) {
            (_, Some(table)) => {
                let rows = table.slice(s![..n, ..]);
                let mut out = x.to_owned();
                for mut b in out.axis_iter_mut(Axis(0)) {
                    b += &rows;
                }
                Ok(out)
            }
            (Self::Rotary(r), None) => r.rotate(x, false),
            _ => Ok(x.to_owned()),
        }
    }

    /// Eval forward on (batch, seq, dim).
    ///
    /// ```
    /// use ndarray::Array3;
    /// use spectrans_layers::{LayerError, PositionalEncoding};
    /// let pe = PositionalEncoding::sinusoidal(8, 4, 0.0).unwrap();
    /// let y = pe.forward(Array3::zeros((1, 3, 4)).view()).unwrap();
    /// assert_eq!(y[[0, 0, 1]], 1.0);
    /// let too_long = pe.forward(Array3::zeros((1, 9, 4)).view());
    /// assert!(matches!(too_long, Err(LayerError::SequenceTooLong { .. })));
    /// ```
    pub fn forward(&self, x: ArrayView3<'_, f32>) -> Result<Array3<f32>, LayerError> {
        self.encode(x)
    }

    /// Training forward with dropout from `ctx` (sinusoidal, learned).
    pub fn forward_train(
        &self,
        x: ArrayView3<'_, f32>,
        ctx: &mut TrainContext,
    ) -> Result<(Array3<f32>, PositionalEncodingCache), LayerError> {
        let shape = x.dim();
        let mut out = self.encode(x)?;
        let mask = match self.dropout() {
            Some(d) => d.apply(contiguous_mut("positional encoding output", &mut out)?, ctx),
            None => DropoutMask::identity(),
        };
        Ok((out, PositionalEncodingCache { mask, shape }))
    }

    /// Backward: returns dL/dx; the learned table gets `dE[p] += Σ_b dy[b, p]`.
    pub fn backward(
        &self,
        cache: &PositionalEncodingCache,
        grad_out: ArrayView3<'_, f32>,
        grads: &mut PositionalEncodingGrads,
    ) -> Result<Array3<f32>, LayerError> {
        if grad_out.dim() != cache.shape {
            let (b, n, d) = cache.shape;
            return Err(shape_error(
                "positional encoding output gradient",
                format!("({b}, {n}, {d})"),
                grad_out.shape(),
            ));
        }
        let g = cache
            .mask
            .masked_grad(grad_out, "positional encoding")?
            .into_owned();
        match self {
            Self::Sinusoidal(_) => Ok(g),
            Self::Learned(e) => {
                let n = cache.shape.1;
                let Some(pg) = grads.position_embeddings.as_mut() else {
                    return Err(LayerError::UnknownParameter {
                        name: "position_embeddings.weight (gradient buffer missing)".into(),
                    });
                };
                if pg.weight.dim() != e.position_embeddings.weight.dim() || n > pg.weight.nrows() {
                    return Err(shape_error(
                        "position_embeddings.weight gradient",
                        format!("{:?}", e.position_embeddings.weight.shape()),
                        pg.weight.shape(),
                    ));
                }
                let mut rows = pg.weight.slice_mut(s![..n, ..]);
                for b in g.axis_iter(Axis(0)) {
                    rows += &b;
                }
                Ok(g)
            }
            Self::Rotary(r) => r.rotate(g.view(), true),
        }
    }
}

impl RotaryEncoding {
    /// `cos` and `sin` of `p · inv_freq[i]`, each (n, D/2), in f32.
    fn tables(&self, n: usize) -> (Array2<f32>, Array2<f32>) {
        let half = self.inv_freq.len();
        let mut cos = Array2::<f32>::zeros((n, half));
        let mut sin = Array2::<f32>::zeros((n, half));
        for (p, (mut c_row, mut s_row)) in
            cos.rows_mut().into_iter().zip(sin.rows_mut()).enumerate()
        {
            for ((c, s), &f) in c_row.iter_mut().zip(s_row.iter_mut()).zip(&self.inv_freq) {
                let angle = p as f32 * f;
                *c = angle.cos();
                *s = angle.sin();
            }
        }
        (cos, sin)
    }

    /// `[x1 cos - x2 sin, x1 sin + x2 cos]`, or with `transpose` the inverse rotation
    /// `[y1 cos + y2 sin, -y1 sin + y2 cos]` (the backward pass).
    fn rotate(&self, x: ArrayView3<'_, f32>, transpose: bool) -> Result<Array3<f32>, LayerError> {
        let (b, n, d) = x.dim();
        if d != self.dim {
            return Err(shape_error(
                "rotary positional encoding input",
                format!("(batch, seq, {})", self.dim),
                x.shape(),
            ));
        }
        let half = d / 2;
        let mut out = Array3::<f32>::zeros((b, n, d));
        if half == 0 || n == 0 {
            return Ok(out);
        }
        let (cos, sin) = self.tables(n);
        let cos = contiguous("rotary cos table", &cos)?;
        let sin = contiguous("rotary sin table", &sin)?;
        let sign = if transpose { -1.0 } else { 1.0 };
        let rows = rows_of(&x)?;
        let xs = contiguous("rotary input", &rows)?;
        contiguous_mut("rotary output", &mut out)?
            .par_chunks_mut(d)
            .with_min_len(min_rows(d))
            .zip(xs.par_chunks(d))
            .enumerate()
            .for_each(|(r, (o, xr))| {
                let p = r % n;
                let (c, s) = (
                    &cos[p * half..(p + 1) * half],
                    &sin[p * half..(p + 1) * half],
                );
                let (x1, x2) = xr.split_at(half);
                let (o1, o2) = o.split_at_mut(half);
                for (((((o1, o2), &x1), &x2), &c), &s) in o1
                    .iter_mut()
                    .zip(o2.iter_mut())
                    .zip(x1)
                    .zip(x2)
                    .zip(c)
                    .zip(s)
                {
                    let s = sign * s;
                    *o1 = x1 * c - x2 * s;
                    *o2 = x1 * s + x2 * c;
                }
            });
        Ok(out)
    }
}

impl PositionalEncodingGrads {
    /// Zero gradients shaped like `pe`.
    pub fn zeros_like(pe: &PositionalEncoding) -> Self {
        Self {
            position_embeddings: match pe {
                PositionalEncoding::Learned(e) => {
                    Some(EmbeddingGrads::zeros_like(&e.position_embeddings))
                }
                _ => None,
            },
        }
    }
}

impl Parameters for PositionalEncoding {
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, ArrayViewD<'_, f32>)) {
        if let Self::Learned(e) = self {
            e.position_embeddings
                .visit(&join(prefix, "position_embeddings."), f);
        }
    }
    fn visit_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, ArrayViewMutD<'_, f32>)) {
        if let Self::Learned(e) = self {
            e.position_embeddings
                .visit_mut(&join(prefix, "position_embeddings."), f);
        }
    }
}

impl Parameters for PositionalEncodingGrads {
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, ArrayViewD<'_, f32>)) {
        if let Some(g) = &self.position_embeddings {
            g.visit(&join(prefix, "position_embeddings."), f);
        }
    }
    fn visit_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, ArrayViewMutD<'_, f32>)) {
        if let Some(g) = &mut self.position_embeddings {
            g.visit_mut(&join(prefix, "position_embeddings."), f);
        }
    }
}

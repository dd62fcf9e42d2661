//! Embedding(V, D): a lookup table of token vectors.

use ndarray::{Array2, Array3, ArrayView2, ArrayView3, Axis};
use rand::Rng;
use rand_distr::{Distribution, Uniform};

use crate::dropout::TrainContext;
use crate::error::{LayerError, shape_error};

/// An integer type that can hold a token id.
pub trait TokenId: Copy {
    /// The id as i64 (negative ids are kept negative so they can be reported).
    fn to_i64(self) -> i64;
}

macro_rules! token_id {
    ($($t:ty),*) => {$(
        impl TokenId for $t {
            #[inline]
            fn to_i64(self) -> i64 {
                i64::try_from(self).unwrap_or(i64::MAX)
            }
        }
    )*};
}
token_id!(i64, i32, i16, i8, u64, u32, u16, u8, usize);

/// `xavier_uniform`: `U(-a, a)`, `a = sqrt(6 / (fan_in + fan_out))`, of shape (rows, cols).
pub fn xavier_uniform(rows: usize, cols: usize, rng: &mut impl Rng) -> Array2<f32> {
    let fan = rows + cols;
    if fan == 0 {
        return Array2::zeros((rows, cols));
    }
    let a = (6.0 / fan as f32).sqrt();
    let dist = Uniform::new_inclusive(-a, a);
    Array2::from_shape_simple_fn((rows, cols), || dist.sample(rng))
}

/// A table of `num` vectors of width `dim` (PyTorch `nn.Embedding`, spectrans' xavier init).
#[derive(Debug, Clone)]
pub struct Embedding {
    /// `weight`, shape (num, dim).
    pub weight: Array2<f32>,
}

/// Gradient of an [`Embedding`].
#[derive(Debug, Clone)]
pub struct EmbeddingGrads {
    /// dL/dweight, (num, dim).
    pub weight: Array2<f32>,
}

/// What [`Embedding::backward`] needs: the validated ids.
#[derive(Debug, Clone)]
pub struct EmbeddingCache {
    /// Token ids, (batch, seq).
    pub ids: Array2<usize>,
}

impl Embedding {
    /// Xavier-uniform initialized table of shape (num, dim).
    pub fn new(num: usize, dim: usize, rng: &mut impl Rng) -> Self {
        Self {
            weight: xavier_uniform(num, dim, rng),
        }
    }

    /// Number of rows V.
    pub fn num(&self) -> usize {
        self.weight.nrows()
    }

    /// Vector width D.
    pub fn dim(&self) -> usize {
        self.weight.ncols()
    }

    /// Checks every id: `0 <= id < V`, else [`LayerError::TokenOutOfRange`] naming it.
    pub fn validate_ids<T: TokenId>(
        &self,
        ids: ArrayView2<'_, T>,
    ) -> Result<Array2<usize>, LayerError> {
        let v = self.num();
        let mut out = Array2::<usize>::zeros(ids.raw_dim());
        for ((pos, &id), o) in ids.indexed_iter().zip(out.iter_mut()) {
            let id = id.to_i64();
            match usize::try_from(id) {
                Ok(u) if u < v => *o = u,
                _ => {
                    return Err(LayerError::TokenOutOfRange {
                        id,
                        position: pos,
                        vocab_size: v,
                    });
                }
            }
        }
        Ok(out)
    }

    fn gather(&self, ids: &Array2<usize>) -> Array3<f32> {
        let (b, n) = ids.dim();
        let d = self.dim();
        let mut out = Array3::<f32>::zeros((b, n, d));
        for (mut row, &id) in out.lanes_mut(Axis(2)).into_iter().zip(ids.iter()) {
            row.assign(&self.weight.row(id));
        }
        out
    }

    /// Looks up ids (batch, seq) -> (batch, seq, dim).
    ///
    /// ```
    /// use ndarray::array;
    /// use spectrans_layers::{Embedding, LayerError};
    /// let emb = Embedding::new(4, 3, &mut rand::thread_rng());
    /// let y = emb.forward(array![[3i64, 0]].view()).unwrap();
    /// assert_eq!(y.shape(), &[1, 2, 3]);
    /// assert!(matches!(emb.forward(array![[4i64]].view()), Err(LayerError::TokenOutOfRange { .. })));
    /// ```
    pub fn forward<T: TokenId>(&self, ids: ArrayView2<'_, T>) -> Result<Array3<f32>, LayerError> {
        let ids = self.validate_ids(ids)?;
        Ok(self.gather(&ids))
    }

    /// Training forward; caches the ids. (No dropout; `ctx` is unused.)
    pub fn forward_train<T: TokenId>(
        &self,
        ids: ArrayView2<'_, T>,
        _ctx: &mut TrainContext,
    ) -> Result<(Array3<f32>, EmbeddingCache), LayerError> {
        let ids = self.validate_ids(ids)?;
        let out = self.gather(&ids);
        Ok((out, EmbeddingCache { ids }))
    }

    /// Backward: `dW[id] += dy[b, n]` for each position (scatter-add). Ids have no gradient.
    pub fn backward(
        &self,
        cache: &EmbeddingCache,
        grad_out: ArrayView3<'_, f32>,
        grads: &mut EmbeddingGrads,
    ) -> Result<(), LayerError> {
        let (b, n) = cache.ids.dim();
        let d = self.dim();
        if grad_out.dim() != (b, n, d) {
            return Err(shape_error(
                "Embedding output gradient",
                format!("({b}, {n}, {d})"),
                grad_out.shape(),
            ));
        }
        if grads.weight.dim() != self.weight.dim() {
            return Err(shape_error(
                "Embedding gradient buffer",
                format!("{:?}", self.weight.shape()),
                grads.weight.shape(),
            ));
        }
        let v = self.num();
        for ((pos, &id), g) in cache.ids.indexed_iter().zip(grad_out.lanes(Axis(2))) {
            if id >= v {
                return Err(LayerError::TokenOutOfRange {
                    id: i64::try_from(id).unwrap_or(i64::MAX),
                    position: pos,
                    vocab_size: v,
                });
            }
            let mut row = grads.weight.row_mut(id);
            row += &g;
        }
        Ok(())
    }
}

impl EmbeddingGrads {
    /// Zero gradient shaped like `emb`.
    pub fn zeros_like(emb: &Embedding) -> Self {
        Self {
            weight: Array2::zeros(emb.weight.raw_dim()),
        }
    }
}

crate::parameters!(Embedding, EmbeddingGrads => [tensor weight]);

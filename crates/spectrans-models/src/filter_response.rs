//! The learned global filter of each block as a response `H = act(Wr) + i act(Wi)`: spectrans'
//! `GlobalFilterMixing.get_filter_response()`, with its magnitude and phase.
//!
//! The response has the parameters' own shape (frequency = `sequence_length`, channel =
//! `hidden_dim`), before any resampling to an input length; `act` is the scalar form of the
//! forward's row kernel ([`FilterActivationExt::apply`], within an f32 rounding of it).

use ndarray::{Array2, Axis};
use spectrans_layers::{FilterActivation, FilterActivationExt, GlobalFilter};

use crate::gfnet::Gfnet;

/// Why a filter has no response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterResponseError {
    /// A layer's `filter_imag` does not have the shape of its `filter_real`.
    #[error(
        "blocks.{layer}.mixing_layer.filter_imag: expected shape {expected:?} like filter_real, found {found:?}"
    )]
    Shape {
        /// The block.
        layer: usize,
        /// `filter_real`'s shape.
        expected: Vec<usize>,
        /// `filter_imag`'s shape.
        found: Vec<usize>,
    },
    /// A layer's filter has no entries (a zero sequence length or width).
    #[error("blocks.{layer}.mixing_layer: the filter is empty (shape {shape:?})")]
    Empty {
        /// The block.
        layer: usize,
        /// Its shape.
        shape: Vec<usize>,
    },
}

/// One layer's filter response `H = act(Wr) + i act(Wi)`, full resolution, row = frequency.
#[derive(Debug, Clone)]
pub struct FilterResponse {
    /// The block index.
    pub layer: usize,
    /// `act`.
    pub activation: FilterActivation,
    /// `Re H = act(Wr)`, (n, d).
    pub real: Array2<f32>,
    /// `Im H = act(Wi)`, (n, d).
    pub imag: Array2<f32>,
    /// `|H|`, (n, d).
    pub magnitude: Array2<f32>,
    /// `arg H` in radians, in (-π, π], (n, d).
    pub phase: Array2<f32>,
    /// `|H|` averaged over the d channels, (n,).
    pub mean_magnitude: Vec<f32>,
}

impl FilterResponse {
    /// The response of block `layer`'s global filter.
    pub fn of(layer: usize, filter: &GlobalFilter) -> Result<Self, FilterResponseError> {
        let (wr, wi) = (filter.filter_real(), filter.filter_imag());
        if wr.dim() != wi.dim() {
            return Err(FilterResponseError::Shape {
                layer,
                expected: wr.shape().to_vec(),
                found: wi.shape().to_vec(),
            });
        }
        if wr.is_empty() {
            return Err(FilterResponseError::Empty {
                layer,
                shape: wr.shape().to_vec(),
            });
        }
        let act = filter.activation;
        let real = wr.mapv(|w| act.apply(w));
        let imag = wi.mapv(|w| act.apply(w));
        let mut magnitude = Array2::zeros(real.raw_dim());
        let mut phase = Array2::zeros(real.raw_dim());
        ndarray::Zip::from(&mut magnitude)
            .and(&mut phase)
            .and(&real)
            .and(&imag)
            .for_each(|m, p, &re, &im| {
                *m = re.hypot(im);
                *p = im.atan2(re);
            });
        let mean_magnitude = magnitude
            .axis_iter(Axis(0))
            .map(|row| (row.iter().map(|&v| f64::from(v)).sum::<f64>() / row.len() as f64) as f32)
            .collect();
        Ok(Self {
            layer,
            activation: act,
            real,
            imag,
            magnitude,
            phase,
            mean_magnitude,
        })
    }

    /// (n, d): frequencies, channels.
    pub fn shape(&self) -> (usize, usize) {
        self.magnitude.dim()
    }
}

impl Gfnet {
    /// The filter response of every block, in order.
    ///
    /// ```
    /// use spectrans_models::Gfnet;
    /// let model = Gfnet::builder().hidden_dim(8).num_layers(2).max_sequence_length(6)
    ///     .vocab_size(10).num_classes(2).build(0)?;
    /// let responses = model.filter_responses()?;
    /// assert_eq!(responses.len(), 2);
    /// assert_eq!(responses[1].shape(), (6, 8));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn filter_responses(&self) -> Result<Vec<FilterResponse>, FilterResponseError> {
        self.blocks()
            .iter()
            .enumerate()
            .map(|(i, b)| FilterResponse::of(i, &b.mixing_layer))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn filter(n: usize, d: usize, activation: FilterActivation) -> GlobalFilter {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let mut f = GlobalFilter::new(
            d,
            n,
            activation,
            spectrans_layers::FftNorm::Ortho,
            0.5,
            0.0,
            &mut rng,
        )
        .expect("a filter");
        *f.filter_real_mut() = Array2::from_shape_fn((n, d), |(i, j)| (i as f32 - j as f32) * 0.1);
        *f.filter_imag_mut() = Array2::from_shape_fn((n, d), |(i, j)| (i * j) as f32 * 0.01 - 0.3);
        f
    }

    #[test]
    fn the_response_is_act_of_each_part() {
        let f = filter(5, 3, FilterActivation::Tanh);
        let l = FilterResponse::of(2, &f).expect("response");
        assert_eq!(l.shape(), (5, 3));
        let (re, im) = (0.4f64.tanh(), (-0.3f64).tanh());
        assert!((f64::from(l.real[[4, 0]]) - re).abs() < 1e-6);
        assert!((f64::from(l.imag[[0, 1]]) - im).abs() < 1e-6);
        let (wr, wi) = (
            f64::from(f.filter_real()[[2, 1]]),
            f64::from(f.filter_imag()[[2, 1]]),
        );
        let (re, im) = (wr.tanh(), wi.tanh());
        assert!((f64::from(l.magnitude[[2, 1]]) - re.hypot(im)).abs() < 1e-6);
        assert!((f64::from(l.phase[[2, 1]]) - im.atan2(re)).abs() < 1e-6);
        let mean: f64 = (0..3).map(|j| f64::from(l.magnitude[[2, j]])).sum::<f64>() / 3.0;
        assert!((f64::from(l.mean_magnitude[2]) - mean).abs() < 1e-6);
    }

    #[test]
    fn mismatched_and_empty_parts_are_errors() {
        let mut f = filter(4, 2, FilterActivation::Sigmoid);
        *f.filter_imag_mut() = Array2::zeros((3, 2));
        let err = FilterResponse::of(1, &f).unwrap_err();
        assert!(
            matches!(err, FilterResponseError::Shape { layer: 1, .. }),
            "{err}"
        );
        *f.filter_real_mut() = Array2::zeros((0, 2));
        *f.filter_imag_mut() = Array2::zeros((0, 2));
        let err = FilterResponse::of(3, &f).unwrap_err();
        assert!(
            matches!(err, FilterResponseError::Empty { layer: 3, .. }),
            "{err}"
        );
    }
}

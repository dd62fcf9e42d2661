//! GlobalFilter (GFNet mixing): `y = Re(IFFT(H ⊙ FFT(x)))` along the sequence axis,
//! `H = act(Wr) + i act(Wi)`, the filter resampled to the input length when it differs.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use ndarray::{Array2, Array3, ArrayView2, ArrayView3};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use spectrans_fft::{
    Complex32, FftNorm, FilterWorkspace, fold_filter, real_plan, with_thread_local,
};
use spectrans_linalg::{contiguous, contiguous_mut};

use crate::activation::{FilterActivation, FilterActivationExt};
use crate::dropout::{Dropout, DropoutMask, TrainContext};
use crate::error::{LayerError, shape_error};
use crate::interpolate::LinearResample;
use crate::tensor::{check_hidden, min_rows};

/// The GFNet global filter layer (spectrans `GlobalFilterMixing`).
///
/// `fft_norm` is carried for the config and the weights' round trip but does not change the
/// result: the forward and inverse transforms use the same norm, so their scales multiply to
/// `1/n` for every norm and `Re(IFFT(H ⊙ FFT(x)))` is the same.
///
/// The eval forward keeps the filter it applies (`Wr`, `Wi` resampled to the input length,
/// the activation, folded for the real FFT) for the last few input lengths, so a model that
/// serves computes it once per length, not on every call. Wr and Wi are private for that
/// reason: [`GlobalFilter::filter_real_mut`], [`GlobalFilter::filter_imag_mut`] and
/// [`Parameters::visit_mut`](crate::Parameters::visit_mut) drop the kept filters, so they are
/// never stale.
#[derive(Debug, Clone)]
pub struct GlobalFilter {
    /// `filter_real` Wr, (sequence_length, hidden_dim).
    filter_real: Array2<f32>,
    /// `filter_imag` Wi, (sequence_length, hidden_dim).
    filter_imag: Array2<f32>,
    /// The eval forward's folded filters by input length.
    prepared: PreparedFilters,
    /// `act` applied to Wr and Wi.
    pub activation: FilterActivation,
    /// FFT normalization (no effect on the result, see the type's doc).
    pub fft_norm: FftNorm,
    /// Dropout after the filter.
    pub dropout: Dropout,
}

thread_local! {
    /// The FFT workspace of every GlobalFilter on this thread (see
    /// [`spectrans_fft::with_thread_local`], the one scratch strategy).
    static WORKSPACE: RefCell<FilterWorkspace> = RefCell::new(FilterWorkspace::new());
}

/// Gradients of a [`GlobalFilter`].
#[derive(Debug, Clone)]
pub struct GlobalFilterGrads {
    /// dL/dWr.
    pub filter_real: Array2<f32>,
    /// dL/dWi.
    pub filter_imag: Array2<f32>,
}

/// What [`GlobalFilter::backward`] needs.
#[derive(Debug, Clone)]
pub struct GlobalFilterCache {
    /// `rfft_ortho(x)`, (batch, n/2+1, dim).
    pub spectrum: Array3<Complex32>,
    /// The folded half filter `Hf`, (n/2+1, dim).
    pub filter_half: Array2<Complex32>,
    /// Wr resampled to the input length, before the activation, (n, dim).
    pub real_pre: Array2<f32>,
    /// Wi resampled to the input length, before the activation, (n, dim).
    pub imag_pre: Array2<f32>,
    /// Dropout mask on the output.
    pub mask: DropoutMask,
    /// Input shape (batch, n, dim).
    pub shape: (usize, usize, usize),
}

/// How many input lengths an eval [`GlobalFilter`] keeps its folded filter for: each is
/// (n/2 + 1) x D complex values, about the size of Wr and Wi at n = S.
const PREPARED_LENGTHS: usize = 4;

/// The folded filters `Hf` of recent eval forwards, most recent last; keyed by the input length
/// and the activation (a public field that a caller may change).
#[derive(Default)]
struct PreparedFilters(Mutex<Vec<PreparedFilter>>);

struct PreparedFilter {
    n: usize,
    activation: FilterActivation,
    half: Arc<Array2<Complex32>>,
}

impl PreparedFilters {
    fn entries(&self) -> std::sync::MutexGuard<'_, Vec<PreparedFilter>> {
        // Nothing panics while the lock is held; a poisoned list is still a valid list.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, n: usize, activation: FilterActivation) -> Option<Arc<Array2<Complex32>>> {
        let mut entries = self.entries();
        let i = entries
            .iter()
            .position(|e| e.n == n && e.activation == activation)?;
        let hit = entries.remove(i);
        let half = Arc::clone(&hit.half);
        entries.push(hit);
        Some(half)
    }

    fn insert(&self, n: usize, activation: FilterActivation, half: Arc<Array2<Complex32>>) {
        let mut entries = self.entries();
        entries.retain(|e| !(e.n == n && e.activation == activation));
        if entries.len() == PREPARED_LENGTHS {
            entries.remove(0);
        }
        entries.push(PreparedFilter {
            n,
            activation,
            half,
        });
    }

    fn clear(&mut self) {
        self.0
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    fn lengths(&self) -> Vec<usize> {
        self.entries().iter().map(|e| e.n).collect()
    }
}

/// A clone starts with no kept filters (it may be changed independently).
impl Clone for PreparedFilters {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl std::fmt::Debug for PreparedFilters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedFilters")
            .field("lengths", &self.lengths())
            .finish()
    }
}

/// The filter at input length n: the resampled pre-activation Wr, Wi and the folded `Hf`.
struct FilterAtLength<'a> {
    real_pre: Cow<'a, Array2<f32>>,
    imag_pre: Cow<'a, Array2<f32>>,
    half: Array2<Complex32>,
}

impl GlobalFilter {
    /// Wr, Wi ~ N(0, 1) · `filter_init_std`, shape (sequence_length, hidden_dim).
    pub fn new(
        hidden_dim: usize,
        sequence_length: usize,
        activation: FilterActivation,
        fft_norm: FftNorm,
        filter_init_std: f32,
        dropout: f32,
        rng: &mut impl Rng,
    ) -> Result<Self, LayerError> {
        if !(filter_init_std.is_finite() && filter_init_std >= 0.0) {
            return Err(LayerError::InvalidArgument {
                what: "filter_init_std",
                value: filter_init_std.to_string(),
                expected: "a finite value >= 0",
            });
        }
        if sequence_length == 0 {
            return Err(LayerError::InvalidArgument {
                what: "sequence_length",
                value: "0".into(),
                expected: "at least 1",
            });
        }
        let dropout = Dropout::new(dropout)?;
        let mut draw = || {
            Array2::from_shape_simple_fn((sequence_length, hidden_dim), || {
                let z: f32 = StandardNormal.sample(rng);
                z * filter_init_std
            })
        };
        let filter_real = draw();
        let filter_imag = draw();
        Ok(Self {
            filter_real,
            filter_imag,
            prepared: PreparedFilters::default(),
            activation,
            fft_norm,
            dropout,
        })
    }

    /// Wr, (sequence_length, hidden_dim).
    pub fn filter_real(&self) -> &Array2<f32> {
        &self.filter_real
    }

    /// Wi, (sequence_length, hidden_dim).
    pub fn filter_imag(&self) -> &Array2<f32> {
        &self.filter_imag
    }

    /// Wr for editing (or replacing); drops the filters the eval forward kept.
    pub fn filter_real_mut(&mut self) -> &mut Array2<f32> {
        self.prepared.clear();
        &mut self.filter_real
    }

    /// Wi for editing (or replacing); drops the filters the eval forward kept.
    pub fn filter_imag_mut(&mut self) -> &mut Array2<f32> {
        self.prepared.clear();
        &mut self.filter_imag
    }

    /// The input lengths whose eval filter is kept, least recently used first.
    pub fn prepared_lengths(&self) -> Vec<usize> {
        self.prepared.lengths()
    }

    /// D.
    pub fn hidden_dim(&self) -> usize {
        self.filter_real.ncols()
    }

    /// S, the parameters' length.
    pub fn sequence_length(&self) -> usize {
        self.filter_real.nrows()
    }

    fn check_params(&self) -> Result<(), LayerError> {
        if self.filter_imag.dim() != self.filter_real.dim() {
            return Err(shape_error(
                "filter_imag",
                format!("{:?} like filter_real", self.filter_real.shape()),
                self.filter_imag.shape(),
            ));
        }
        Ok(())
    }

    fn check_input(&self, x: &ArrayView3<'_, f32>) -> Result<(), LayerError> {
        self.check_params()?;
        check_hidden("GlobalFilter input", x, self.hidden_dim())?;
        if x.dim().1 == 0 {
            return Err(shape_error(
                "GlobalFilter input",
                format!("(batch, seq >= 1, {})", self.hidden_dim()),
                x.shape(),
            ));
        }
        Ok(())
    }

    /// Runs `job` with this thread's FFT workspace (a fresh one on re-entry): concurrent
    /// forwards never wait on each other.
    fn with_workspace<R>(&self, job: impl FnOnce(&mut FilterWorkspace) -> R) -> R {
        with_thread_local(&WORKSPACE, job)
    }

    /// The eval forward's folded filter at input length `n`: kept from an earlier call, or
    /// computed by [`GlobalFilter::filter_at`] and kept.
    fn prepared_half(&self, n: usize) -> Result<Arc<Array2<Complex32>>, LayerError> {
        if let Some(half) = self.prepared.get(n, self.activation) {
            return Ok(half);
        }
        let half = Arc::new(self.filter_at(n)?.half);
        self.prepared.insert(n, self.activation, Arc::clone(&half));
        Ok(half)
    }

    /// The complex filter at input length `n`, folded for the real FFT.
    fn filter_at(&self, n: usize) -> Result<FilterAtLength<'_>, LayerError> {
        let (real_pre, imag_pre) = if n == self.sequence_length() {
            (
                Cow::Borrowed(&self.filter_real),
                Cow::Borrowed(&self.filter_imag),
            )
        } else {
            let r = LinearResample::new(self.sequence_length(), n);
            (
                Cow::Owned(r.apply(self.filter_real.view())?),
                Cow::Owned(r.apply(self.filter_imag.view())?),
            )
        };
        let mut full = Array2::<Complex32>::zeros(real_pre.raw_dim());
        let cols = full.ncols().max(1);
        let re = real_pre.as_standard_layout();
        let im = imag_pre.as_standard_layout();
        // O(n D) per call, the size of one batch entry: row by row in parallel (so that it
        // is no serial part of a small-batch forward), each row a plain loop that vectorizes.
        contiguous_mut("GlobalFilter filter", &mut full)?
            .par_chunks_mut(cols)
            .zip(contiguous("filter_real", &re)?.par_chunks(cols))
            .zip(contiguous("filter_imag", &im)?.par_chunks(cols))
            .with_min_len(min_rows(cols))
            .for_each(|((h, re), im)| self.activation.apply_complex_row(re, im, h));
        let half = fold_filter(full.view())?;
        Ok(FilterAtLength {
            real_pre,
            imag_pre,
            half,
        })
    }

    fn run_filter(
        &self,
        x: ArrayView3<'_, f32>,
        half: ArrayView2<'_, Complex32>,
        spectrum: Option<&mut Array3<Complex32>>,
    ) -> Result<Array3<f32>, LayerError> {
        let plan = real_plan(x.dim().1)?;
        let mut out = Array3::<f32>::zeros(x.raw_dim());
        self.with_workspace(|ws| {
            plan.filter(x, half, out.view_mut(), spectrum.map(|s| s.view_mut()), ws)
        })?;
        Ok(out)
    }

    /// Eval forward on (batch, n, dim), any n >= 1.
    ///
    /// ```
    /// use ndarray::Array3;
    /// use spectrans_fft::FftNorm;
    /// use spectrans_layers::{FilterActivation, GlobalFilter};
    /// let mut gf = GlobalFilter::new(2, 4, FilterActivation::Identity, FftNorm::Ortho, 0.02, 0.0,
    ///                                &mut rand::thread_rng()).unwrap();
    /// gf.filter_real_mut().fill(1.0); // H = 1: the identity
    /// gf.filter_imag_mut().fill(0.0);
    /// let x = Array3::from_shape_fn((1, 6, 2), |(_, t, d)| (t + d) as f32);
    /// let y = gf.forward(x.view()).unwrap();
    /// assert!(x.iter().zip(y.iter()).all(|(a, b)| (a - b).abs() < 1e-4));
    /// ```
    pub fn forward(&self, x: ArrayView3<'_, f32>) -> Result<Array3<f32>, LayerError> {
        self.check_input(&x)?;
        let half = self.prepared_half(x.dim().1)?;
        self.run_filter(x, half.view(), None)
    }

    /// Training forward (dropout from `ctx`); caches the spectrum and the filter.
    pub fn forward_train(
        &self,
        x: ArrayView3<'_, f32>,
        ctx: &mut TrainContext,
    ) -> Result<(Array3<f32>, GlobalFilterCache), LayerError> {
        self.check_input(&x)?;
        let (b, n, d) = x.dim();
        let f = self.filter_at(n)?;
        let mut spectrum = Array3::<Complex32>::zeros((b, n / 2 + 1, d));
        let mut out = self.run_filter(x, f.half.view(), Some(&mut spectrum))?;
        let mask = self
            .dropout
            .apply(contiguous_mut("GlobalFilter output", &mut out)?, ctx);
        Ok((
            out,
            GlobalFilterCache {
                spectrum,
                filter_half: f.half,
                real_pre: f.real_pre.into_owned(),
                imag_pre: f.imag_pre.into_owned(),
                mask,
                shape: (b, n, d),
            },
        ))
    }

    /// Backward. With `C = Σ_b rfft_ortho(dy)[b] ⊙ conj(X[b])`, `dL/dH[k] = C[k]` for k <= n/2 and
    /// `conj(C[n-k])` above; then `dWr' = Re(dH) · act'(Wr')`, `dWi' = Im(dH) · act'(Wi')`, and
    /// the transpose of the resampling scatters them onto Wr, Wi. Returns dL/dx.
    pub fn backward(
        &self,
        cache: &GlobalFilterCache,
        grad_out: ArrayView3<'_, f32>,
        grads: &mut GlobalFilterGrads,
    ) -> Result<Array3<f32>, LayerError> {
        self.check_params()?;
        let (b, n, d) = cache.shape;
        if grad_out.dim() != cache.shape {
            return Err(shape_error(
                "GlobalFilter output gradient",
                format!("({b}, {n}, {d})"),
                grad_out.shape(),
            ));
        }
        if d != self.hidden_dim()
            || cache.real_pre.dim() != (n, d)
            || cache.imag_pre.dim() != (n, d)
        {
            return Err(shape_error(
                "GlobalFilter cache filter",
                format!("({n}, {})", self.hidden_dim()),
                cache.real_pre.shape(),
            ));
        }
        if grads.filter_real.dim() != self.filter_real.dim()
            || grads.filter_imag.dim() != self.filter_imag.dim()
        {
            return Err(shape_error(
                "GlobalFilter gradient buffer",
                format!("{:?}", self.filter_real.shape()),
                grads.filter_real.shape(),
            ));
        }
        // The output gradient as is when no dropout was applied; a masked copy otherwise.
        let dy = cache.mask.masked_grad(grad_out, "GlobalFilter")?;
        let plan = real_plan(n)?;
        let mut dx = Array3::<f32>::zeros((b, n, d));
        let mut cross = Array2::<Complex32>::zeros((n / 2 + 1, d));
        self.with_workspace(|ws| {
            plan.filter_adjoint(
                dy.view(),
                cache.spectrum.view(),
                cache.filter_half.view(),
                dx.view_mut(),
                cross.view_mut(),
                ws,
            )
        })?;
        // Gradients w.r.t. the resampled pre-activation filter, (n, d).
        let act = self.activation;
        let mut d_real = Array2::<f32>::zeros((n, d));
        let mut d_imag = Array2::<f32>::zeros((n, d));
        let (wr_all, wi_all) = (
            cache.real_pre.as_standard_layout(),
            cache.imag_pre.as_standard_layout(),
        );
        let cross = cross.as_standard_layout();
        let cross = contiguous("GlobalFilter cross spectrum", &cross)?;
        let cols = d.max(1);
        // Row k of the (n, d) filter takes bin k of the half spectrum, or the conjugate of
        // bin n - k above n/2. O(n D) like one batch entry: rows in parallel.
        contiguous_mut("GlobalFilter d_real", &mut d_real)?
            .par_chunks_mut(cols)
            .zip(contiguous_mut("GlobalFilter d_imag", &mut d_imag)?.par_chunks_mut(cols))
            .zip(contiguous("filter_real", &wr_all)?.par_chunks(cols))
            .zip(contiguous("filter_imag", &wi_all)?.par_chunks(cols))
            .enumerate()
            .with_min_len(min_rows(cols))
            .for_each(|(k, (((gr, gi), wr), wi))| {
                let (src, sign) = if k <= n / 2 { (k, 1.0) } else { (n - k, -1.0) };
                let c_row = &cross[src * d..(src + 1) * d];
                for ((((gr, gi), c), &wr), &wi) in gr.iter_mut().zip(gi).zip(c_row).zip(wr).zip(wi)
                {
                    *gr = c.re * act.derivative(wr);
                    *gi = sign * c.im * act.derivative(wi);
                }
            });
        if n == self.sequence_length() {
            grads.filter_real += &d_real;
            grads.filter_imag += &d_imag;
        } else {
            let r = LinearResample::new(self.sequence_length(), n);
            r.transpose_add(d_real.view(), &mut grads.filter_real)?;
            r.transpose_add(d_imag.view(), &mut grads.filter_imag)?;
        }
        Ok(dx)
    }
}

impl GlobalFilterGrads {
    /// Zero gradients shaped like `gf`.
    pub fn zeros_like(gf: &GlobalFilter) -> Self {
        Self {
            filter_real: Array2::zeros(gf.filter_real.raw_dim()),
            filter_imag: Array2::zeros(gf.filter_imag.raw_dim()),
        }
    }
}

crate::parameters!(GlobalFilterGrads => [tensor filter_real, tensor filter_imag]);

/// By hand rather than by [`crate::parameters!`]: `visit_mut` drops the kept eval filters.
impl crate::Parameters for GlobalFilter {
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, ndarray::ArrayViewD<'_, f32>)) {
        f(
            &format!("{prefix}filter_real"),
            self.filter_real.view().into_dyn(),
        );
        f(
            &format!("{prefix}filter_imag"),
            self.filter_imag.view().into_dyn(),
        );
    }

    fn visit_mut(
        &mut self,
        prefix: &str,
        f: &mut dyn FnMut(&str, ndarray::ArrayViewMutD<'_, f32>),
    ) {
        self.prepared.clear();
        f(
            &format!("{prefix}filter_real"),
            self.filter_real.view_mut().into_dyn(),
        );
        f(
            &format!("{prefix}filter_imag"),
            self.filter_imag.view_mut().into_dyn(),
        );
    }
}

//! The spectral filter `irfft(Hf ⊙ rfft(x))` along axis 1, and its adjoint.

use ndarray::{ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3, Axis, Zip};
use num_complex::Complex32;
use rayon::iter::Either;
use rayon::prelude::*;

use crate::filter_slices::{AdjointSlices, FilterSlices, ortho_scale};
use crate::lanes::{LanePlan, SpectrumSink};
use crate::scratch::{FilterWorkspace, TileScratch, with_thread_scratch, zeroed_prefix};
use crate::shape::expect_shape;
use crate::split::{Split, entry_tasks_fill_threads};
use crate::tile::{copy_rows_in, copy_rows_out, gather_columns, scatter_columns};
use crate::{FftError, SeqRealFft};

impl SeqRealFft {
    /// Spectral filter in one pass per column tile:
    /// `output[b] = irfft(Hf ⊙ rfft(input[b]))` along axis 1.
    ///
    /// The composite is the same for every normalisation, as long as the forward and the
    /// inverse use the same one (the factors multiply to `1/n`), so there is no norm argument.
    /// Shapes: `input` and `output` `(B, n, D)`, `filter_half` `(n/2+1, D)`. If `spectrum` is
    /// given, it receives `rfft_ortho(input)` `(B, n/2+1, D)` for [`Self::filter_adjoint`].
    /// As in `irfft`, the imaginary parts of `Hf[0]` and (even `n`) `Hf[n/2]` do not count.
    /// With `Hf = fold_filter(H)` this is spectrans' `Re(ifft(H ⊙ fft(x)))`.
    ///
    /// ```
    /// use ndarray::{Array2, Array3};
    /// use spectrans_fft::{Complex32, FilterWorkspace, SeqRealFft};
    ///
    /// let plan = SeqRealFft::new(8)?;
    /// let x = Array3::from_shape_fn((2, 8, 3), |(b, t, d)| (b + 2 * t + d) as f32);
    /// // An all-pass filter returns the input.
    /// let all_pass = Array2::from_elem((plan.spectrum_len(), 3), Complex32::new(1.0, 0.0));
    /// let mut y = Array3::<f32>::zeros((2, 8, 3));
    /// let mut workspace = FilterWorkspace::new();
    /// plan.filter(x.view(), all_pass.view(), y.view_mut(), None, &mut workspace)?;
    /// assert!(x.iter().zip(y.iter()).all(|(a, b)| (a - b).abs() < 1e-4));
    /// # Ok::<(), spectrans_fft::FftError>(())
    /// ```
    pub fn filter(
        &self,
        input: ArrayView3<'_, f32>,
        filter_half: ArrayView2<'_, Complex32>,
        mut output: ArrayViewMut3<'_, f32>,
        spectrum: Option<ArrayViewMut3<'_, Complex32>>,
        workspace: &mut FilterWorkspace,
    ) -> Result<(), FftError> {
        let (batch, _, cols) = input.dim();
        let (n, h) = (self.len(), self.spectrum_len());
        expect_shape("input", input.shape(), &[batch, n, cols])?;
        expect_shape("filter_half", filter_half.shape(), &[h, cols])?;
        expect_shape("output", output.shape(), &[batch, n, cols])?;
        if let Some(spectrum) = &spectrum {
            expect_shape("spectrum", spectrum.shape(), &[batch, h, cols])?;
        }
        if batch == 0 || cols == 0 {
            return Ok(());
        }
        let FilterWorkspace { filter_columns, .. } = workspace;
        let mut spectrum = spectrum;
        if entry_tasks_fill_threads(batch) {
            let spectrum_slice = match spectrum.as_mut() {
                Some(spectrum) => spectrum.as_slice_mut().map(Some),
                None => Some(None),
            };
            if let (Some(input), Some(filter_half), Some(output), Some(spectrum)) = (
                input.as_slice(),
                filter_half.as_slice(),
                output.as_slice_mut(),
                spectrum_slice,
            ) {
                let slices = FilterSlices {
                    input,
                    filter_half,
                    output,
                    spectrum,
                    cols,
                };
                return self.filter_slices(slices, filter_columns);
            }
        }
        let split = Split::per_entry(batch, n, cols);
        let size = self.scratch_size(split.tile);
        let groups = split.groups(batch);
        let tiles = cols.div_ceil(split.tile);
        let ortho = ortho_scale(n);

        let spectrum_groups = match spectrum.as_mut() {
            Some(spectrum) => Either::Left(
                spectrum
                    .axis_chunks_iter_mut(Axis(0), split.batch_chunk)
                    .into_par_iter()
                    .map(Some),
            ),
            None => Either::Right((0..groups).into_par_iter().map(|_| None)),
        };
        (
            input.axis_chunks_iter(Axis(0), split.batch_chunk),
            output.axis_chunks_iter_mut(Axis(0), split.batch_chunk),
            spectrum_groups,
        )
            .into_par_iter()
            .try_for_each(|(input, mut output, mut spectrum)| {
                let spectrum_tiles = match spectrum.as_mut() {
                    Some(spectrum) => Either::Left(
                        spectrum
                            .axis_chunks_iter_mut(Axis(2), split.tile)
                            .into_par_iter()
                            .map(Some),
                    ),
                    None => Either::Right((0..tiles).into_par_iter().map(|_| None)),
                };
                (
                    input.axis_chunks_iter(Axis(2), split.tile),
                    filter_half.axis_chunks_iter(Axis(1), split.tile),
                    output.axis_chunks_iter_mut(Axis(2), split.tile),
                    spectrum_tiles,
                )
                    .into_par_iter()
                    .try_for_each(
                        |(input, filter_half, mut output, mut spectrum)| {
                            if let Some(lanes) = self.lanes() {
                                for (b, (x, y)) in
                                    input.outer_iter().zip(output.outer_iter_mut()).enumerate()
                                {
                                    let sink = match spectrum.as_mut() {
                                        Some(spectrum) => ViewSink::Store(
                                            spectrum.index_axis_mut(Axis(0), b),
                                            ortho,
                                        ),
                                        None => ViewSink::Discard,
                                    };
                                    lane_block(lanes, x, filter_half, false, y, sink);
                                }
                                return Ok(());
                            }
                            with_thread_scratch(size, |scratch| {
                                for (b, (x, y)) in
                                    input.outer_iter().zip(output.outer_iter_mut()).enumerate()
                                {
                                    let store = spectrum
                                        .as_mut()
                                        .map(|spectrum| spectrum.index_axis_mut(Axis(0), b));
                                    self.spectral_block(
                                        x,
                                        filter_half,
                                        false,
                                        y,
                                        scratch,
                                        |raw| {
                                            if let Some(store) = store {
                                                scatter_columns(raw, store, |v| v * ortho);
                                            }
                                        },
                                    )?;
                                }
                                Ok(())
                            })
                        },
                    )
            })
    }

    /// Adjoint of [`Self::filter`] with respect to both its inputs.
    ///
    /// Given `dy = output_cotangent` `(B, n, D)` and the ortho spectrum `X` of the forward
    /// input, as `filter` stored it `(B, n/2+1, D)`:
    ///
    /// * `input_cotangent = irfft(conj(Hf) ⊙ rfft(dy))` (written, not accumulated);
    /// * `cross_spectrum += Σ_b rfft_ortho(dy)[b] ⊙ conj(X[b])` `(n/2+1, D)` (accumulated).
    ///
    /// Gradient of the full filter. For `y = Re(ifft(H ⊙ fft(x)))` with any matching norm,
    /// `y[t] = Re((1/√n) Σ_k H[k] X[k] ω^{kt})` with `X = fft_ortho(x)`, `ω = e^{2πi/n}`.
    /// For a real loss `L` with `dL/dy = dy`, writing `g = dL/dRe H + i dL/dIm H`:
    /// `g[k] = Σ_t dy[t] conj((1/√n) X[k] ω^{kt}) = fft_ortho(dy)[k] · conj(X[k])`.
    /// Both spectra are Hermitian, so for `k > n/2`, `g[k] = conj(g[n-k])`. Hence, with
    /// `C = cross_spectrum`: `dL/dH[k] = C[k]` for `k <= n/2` and `conj(C[n-k])` for
    /// `k > n/2`. With respect to `Hf` itself (each `Hf[k]`, `0 < k < n/2`, stands for two
    /// bins of the full spectrum): `dL/dHf[k] = 2 C[k]`, and `Re C[k]` for `k = 0` and, even
    /// `n`, `k = n/2`.
    ///
    /// ```
    /// use ndarray::{Array2, Array3};
    /// use spectrans_fft::{Complex32, FilterWorkspace, SeqRealFft};
    ///
    /// let plan = SeqRealFft::new(6)?;
    /// let hf = Array2::from_shape_fn((4, 2), |(k, d)| Complex32::new(0.5, (k + d) as f32 * 0.1));
    /// let x = Array3::from_shape_fn((1, 6, 2), |(_, t, d)| (t * 3 + d) as f32 * 0.25);
    /// let mut y = Array3::<f32>::zeros((1, 6, 2));
    /// let mut spectrum = Array3::<Complex32>::zeros((1, 4, 2));
    /// let mut ws = FilterWorkspace::new();
    /// plan.filter(x.view(), hf.view(), y.view_mut(), Some(spectrum.view_mut()), &mut ws)?;
    ///
    /// let dy = Array3::from_shape_fn((1, 6, 2), |(_, t, d)| 1.0 - (t + d) as f32 * 0.2);
    /// let mut dx = Array3::<f32>::zeros((1, 6, 2));
    /// let mut cross = Array2::<Complex32>::zeros((4, 2));
    /// plan.filter_adjoint(dy.view(), spectrum.view(), hf.view(), dx.view_mut(), cross.view_mut(), &mut ws)?;
    /// // <filter(x), dy> = <x, filter_adjoint(dy)>
    /// let lhs: f32 = y.iter().zip(dy.iter()).map(|(a, b)| a * b).sum();
    /// let rhs: f32 = x.iter().zip(dx.iter()).map(|(a, b)| a * b).sum();
    /// assert!((lhs - rhs).abs() < 1e-4);
    /// # Ok::<(), spectrans_fft::FftError>(())
    /// ```
    pub fn filter_adjoint(
        &self,
        output_cotangent: ArrayView3<'_, f32>,
        spectrum: ArrayView3<'_, Complex32>,
        filter_half: ArrayView2<'_, Complex32>,
        mut input_cotangent: ArrayViewMut3<'_, f32>,
        mut cross_spectrum: ArrayViewMut2<'_, Complex32>,
        workspace: &mut FilterWorkspace,
    ) -> Result<(), FftError> {
        let (batch, _, cols) = output_cotangent.dim();
        let (n, h) = (self.len(), self.spectrum_len());
        expect_shape(
            "output_cotangent",
            output_cotangent.shape(),
            &[batch, n, cols],
        )?;
        expect_shape("spectrum", spectrum.shape(), &[batch, h, cols])?;
        expect_shape("filter_half", filter_half.shape(), &[h, cols])?;
        expect_shape(
            "input_cotangent",
            input_cotangent.shape(),
            &[batch, n, cols],
        )?;
        expect_shape("cross_spectrum", cross_spectrum.shape(), &[h, cols])?;
        if batch == 0 || cols == 0 {
            return Ok(());
        }
        let FilterWorkspace {
            partial,
            filter_columns,
        } = workspace;
        let threads = rayon::current_num_threads();
        if entry_tasks_fill_threads(batch)
            && let (
                Some(output_cotangent),
                Some(spectrum),
                Some(filter_half),
                Some(input_cotangent),
            ) = (
                output_cotangent.as_slice(),
                spectrum.as_slice(),
                filter_half.as_slice(),
                input_cotangent.as_slice_mut(),
            )
        {
            let slices = AdjointSlices {
                output_cotangent,
                spectrum,
                filter_half,
                input_cotangent,
                cols,
            };
            let batch_chunk = batch.div_ceil(threads.max(1));
            let groups =
                self.filter_adjoint_slices(slices, batch_chunk, partial, filter_columns)?;
            return add_partials(partial, groups, cross_spectrum);
        }
        let split = Split::reducing(batch, n, cols, threads);
        let size = self.scratch_size(split.tile);
        let groups = split.groups(batch);
        let ortho = ortho_scale(n);

        // One accumulator (n/2+1, D) per batch group: the caller's array when there is a
        // single group, zeroed partial sums otherwise (added in order below).
        let mut accumulators = if groups == 1 {
            cross_spectrum.view_mut().insert_axis(Axis(0))
        } else {
            ArrayViewMut3::from_shape((groups, h, cols), zeroed_prefix(partial, groups * h * cols))
                .map_err(FftError::backend)?
        };
        (
            output_cotangent.axis_chunks_iter(Axis(0), split.batch_chunk),
            spectrum.axis_chunks_iter(Axis(0), split.batch_chunk),
            input_cotangent.axis_chunks_iter_mut(Axis(0), split.batch_chunk),
            accumulators.axis_iter_mut(Axis(0)),
        )
            .into_par_iter()
            .try_for_each(|(dy, spectrum, mut dx, mut accumulator)| {
                (
                    dy.axis_chunks_iter(Axis(2), split.tile),
                    spectrum.axis_chunks_iter(Axis(2), split.tile),
                    filter_half.axis_chunks_iter(Axis(1), split.tile),
                    dx.axis_chunks_iter_mut(Axis(2), split.tile),
                    accumulator.axis_chunks_iter_mut(Axis(1), split.tile),
                )
                    .into_par_iter()
                    .try_for_each(
                        |(dy, spectrum, filter_half, mut dx, mut accumulator)| {
                            if let Some(lanes) = self.lanes() {
                                for ((dy, dx), forward) in dy
                                    .outer_iter()
                                    .zip(dx.outer_iter_mut())
                                    .zip(spectrum.outer_iter())
                                {
                                    let sink =
                                        ViewSink::Correlate(forward, accumulator.view_mut(), ortho);
                                    lane_block(lanes, dy, filter_half, true, dx, sink);
                                }
                                return Ok(());
                            }
                            with_thread_scratch(size, |scratch| {
                                for ((dy, dx), forward) in dy
                                    .outer_iter()
                                    .zip(dx.outer_iter_mut())
                                    .zip(spectrum.outer_iter())
                                {
                                    let accumulator = accumulator.view_mut();
                                    self.spectral_block(
                                        dy,
                                        filter_half,
                                        true,
                                        dx,
                                        scratch,
                                        |raw| {
                                            correlate(raw, forward, accumulator, ortho);
                                        },
                                    )?;
                                }
                                Ok(())
                            })
                        },
                    )
            })?;

        if groups > 1 {
            add_partials(partial, groups, cross_spectrum)?;
        }
        Ok(())
    }

    /// `y = irfft(G ⊙ rfft(x))` for one `(n, w)` block, `G = Hf` or `conj(Hf)`.
    /// `on_spectrum` sees the unnormalised spectrum of `x` (column after column) first.
    fn spectral_block(
        &self,
        x: ArrayView2<'_, f32>,
        filter_half: ArrayView2<'_, Complex32>,
        conjugate: bool,
        y: ArrayViewMut2<'_, f32>,
        scratch: &mut TileScratch,
        on_spectrum: impl FnOnce(&[Complex32]),
    ) -> Result<(), FftError> {
        let width = x.ncols();
        let (n, h) = (self.len(), self.spectrum_len());
        gather_columns(x, &mut scratch.real);
        self.rfft_columns(scratch, width)?;
        on_spectrum(&scratch.spectrum[..h * width]);
        // rfft and irfft are unnormalised here: fold the 1/n of the pair into the filter.
        let inv_n = (1.0 / n as f64) as f32;
        let spectrum = &mut scratch.spectrum[..h * width];
        for (k, row) in filter_half.outer_iter().enumerate() {
            for (j, &g) in row.iter().enumerate() {
                let g = if conjugate { g.conj() } else { g };
                spectrum[j * h + k] *= g * inv_n;
            }
        }
        self.irfft_columns(scratch, width)?;
        scatter_columns(&scratch.real, y, |v| v);
        Ok(())
    }
}

/// `accumulator[k, j] += scale · raw[j * h + k] · conj(forward[k, j])`.
fn correlate(
    raw: &[Complex32],
    forward: ArrayView2<'_, Complex32>,
    accumulator: ArrayViewMut2<'_, Complex32>,
    scale: f32,
) {
    let h = forward.nrows();
    Zip::indexed(accumulator)
        .and(forward)
        .for_each(|(k, j), acc, &x| *acc += raw[j * h + k] * scale * x.conj());
}

/// `cross_spectrum += Σ_g partial[g]` over the first `groups` `(n/2+1, D)` blocks, in order.
fn add_partials(
    partial: &[Complex32],
    groups: usize,
    mut cross_spectrum: ArrayViewMut2<'_, Complex32>,
) -> Result<(), FftError> {
    let (h, cols) = cross_spectrum.dim();
    let partial = ArrayView3::from_shape((groups, h, cols), &partial[..groups * h * cols])
        .map_err(FftError::backend)?;
    for group in partial.outer_iter() {
        cross_spectrum += &group;
    }
    Ok(())
}

/// What [`lane_block`] does with the block's input spectrum: [`SpectrumSink`] on views.
enum ViewSink<'a, 'b> {
    Discard,
    /// `out = scale · X`.
    Store(ArrayViewMut2<'a, Complex32>, f32),
    /// `acc += (scale · X) ⊙ conj(forward)`.
    Correlate(ArrayView2<'b, Complex32>, ArrayViewMut2<'a, Complex32>, f32),
}

/// Row-major copies of one block's views, for [`lane_block`].
#[derive(Debug, Default)]
struct BlockScratch {
    x: Vec<f32>,
    y: Vec<f32>,
    filter: Vec<Complex32>,
    forward: Vec<Complex32>,
    spectrum: Vec<Complex32>,
}

thread_local! {
    static BLOCK_SCRATCH: std::cell::RefCell<BlockScratch> =
        std::cell::RefCell::new(BlockScratch::default());
}

/// `y = irfft(G ⊙ rfft(x)) / n` for one `(n, w)` block of views on the lane transforms, `G`
/// = `Hf` or `conj(Hf)`: the views are copied into row-major scratch and back, so every
/// column gets the bits of the row-major path.
fn lane_block(
    lanes: &LanePlan,
    x: ArrayView2<'_, f32>,
    filter_half: ArrayView2<'_, Complex32>,
    conjugate: bool,
    y: ArrayViewMut2<'_, f32>,
    sink: ViewSink<'_, '_>,
) {
    let ((n, w), h) = (x.dim(), filter_half.nrows());
    crate::scratch::with_thread_local(&BLOCK_SCRATCH, |scratch| {
        let zero = Complex32::new(0.0, 0.0);
        scratch.x.resize(n * w, 0.0);
        scratch.y.resize(n * w, 0.0);
        scratch.filter.resize(h * w, zero);
        scratch.forward.resize(h * w, zero);
        scratch.spectrum.resize(h * w, zero);
        let BlockScratch {
            x: xs,
            y: ys,
            filter,
            forward,
            spectrum,
        } = scratch;
        let (xs, ys) = (&mut xs[..n * w], &mut ys[..n * w]);
        let (filter, forward, spectrum) = (
            &mut filter[..h * w],
            &mut forward[..h * w],
            &mut spectrum[..h * w],
        );
        copy_rows_out(x, xs);
        copy_rows_out(filter_half, filter);
        match sink {
            ViewSink::Discard => {
                lanes.filter_matrix(xs, filter, conjugate, ys, w, &mut SpectrumSink::Discard);
            }
            ViewSink::Store(out, scale) => {
                let mut sink = SpectrumSink::Store {
                    out: &mut *spectrum,
                    scale,
                };
                lanes.filter_matrix(xs, filter, conjugate, ys, w, &mut sink);
                copy_rows_in(spectrum, out);
            }
            ViewSink::Correlate(forward_view, acc, scale) => {
                copy_rows_out(forward_view, forward);
                copy_rows_out(acc.view(), spectrum);
                let mut sink = SpectrumSink::Correlate {
                    forward,
                    acc: &mut *spectrum,
                    scale,
                };
                lanes.filter_matrix(xs, filter, conjugate, ys, w, &mut sink);
                copy_rows_in(spectrum, acc);
            }
        }
        copy_rows_in(ys, y);
    });
}

//! Fast path of the spectral filter for row-major arrays: one task per batch entry (or
//! group of entries) working on plain slices, column tile after column tile.

use num_complex::Complex32;
use rayon::iter::Either;
use rayon::prelude::*;

use crate::lanes::SpectrumSink;
use crate::scratch::{TileScratch, with_thread_scratch, zeroed_prefix};
use crate::split::slice_tile;
use crate::strided;
use crate::{FftError, SeqRealFft};

/// Row-major `(B, n, D)` / `(n/2+1, D)` slices of one `filter` call.
pub(crate) struct FilterSlices<'a> {
    pub(crate) input: &'a [f32],
    pub(crate) filter_half: &'a [Complex32],
    pub(crate) output: &'a mut [f32],
    pub(crate) spectrum: Option<&'a mut [Complex32]>,
    pub(crate) cols: usize,
}

/// Row-major slices of one `filter_adjoint` call.
pub(crate) struct AdjointSlices<'a> {
    pub(crate) output_cotangent: &'a [f32],
    pub(crate) spectrum: &'a [Complex32],
    pub(crate) filter_half: &'a [Complex32],
    pub(crate) input_cotangent: &'a mut [f32],
    pub(crate) cols: usize,
}

impl SeqRealFft {
    /// `filter` with one task per batch entry.
    pub(crate) fn filter_slices(
        &self,
        slices: FilterSlices<'_>,
        columns: &mut Vec<Complex32>,
    ) -> Result<(), FftError> {
        let FilterSlices {
            input,
            filter_half,
            output,
            spectrum,
            cols,
        } = slices;
        let (n, h) = (self.len(), self.spectrum_len());
        let tile_cols = slice_tile(n);
        let size = self.scratch_size(tile_cols.min(cols));
        let ortho = ortho_scale(n);
        let entries = input.len() / (n * cols);
        // The entries' spectra to keep, or a `None` per entry.
        let spectra = match spectrum {
            Some(spectrum) => Either::Left(spectrum.par_chunks_mut(h * cols).map(Some)),
            None => Either::Right((0..entries).into_par_iter().map(|_| None)),
        };
        if let Some(lanes) = self.lanes() {
            (
                input.par_chunks(n * cols),
                output.par_chunks_mut(n * cols),
                spectra,
            )
                .into_par_iter()
                .for_each(|(x, y, spectrum)| {
                    let mut sink = match spectrum {
                        Some(out) => SpectrumSink::Store { out, scale: ortho },
                        None => SpectrumSink::Discard,
                    };
                    lanes.filter_matrix(x, filter_half, false, y, cols, &mut sink);
                });
            return Ok(());
        }
        let filter_columns = filter_columns(filter_half, h, cols, false, n, columns);
        (
            input.par_chunks(n * cols),
            output.par_chunks_mut(n * cols),
            spectra,
        )
            .into_par_iter()
            .try_for_each(|(x, y, mut spectrum)| {
                with_thread_scratch(size, |scratch| {
                    for col0 in (0..cols).step_by(tile_cols) {
                        let tile = Tile {
                            cols,
                            col0,
                            width: tile_cols.min(cols - col0),
                        };
                        self.spectral_tile(x, filter_columns, y, tile, scratch, |raw| {
                            if let Some(spectrum) = spectrum.as_deref_mut() {
                                strided::scatter(raw, h, tile.width, spectrum, cols, col0, |v| {
                                    v * ortho
                                });
                            }
                        })?;
                    }
                    Ok(())
                })
            })
    }

    /// `filter_adjoint` with one task per group of `batch_chunk` entries; each group adds
    /// its cross spectrum into its own `(n/2+1, D)` block of `partial` (zeroed here).
    pub(crate) fn filter_adjoint_slices(
        &self,
        slices: AdjointSlices<'_>,
        batch_chunk: usize,
        partial: &mut Vec<Complex32>,
        columns: &mut Vec<Complex32>,
    ) -> Result<usize, FftError> {
        let AdjointSlices {
            output_cotangent,
            spectrum,
            filter_half,
            input_cotangent,
            cols,
        } = slices;
        let (n, h) = (self.len(), self.spectrum_len());
        let tile_cols = slice_tile(n);
        let size = self.scratch_size(tile_cols.min(cols));
        let ortho = ortho_scale(n);
        let entries = output_cotangent.len() / (n * cols);
        let groups = entries.div_ceil(batch_chunk);
        let partial = zeroed_prefix(partial, groups * h * cols);
        if let Some(lanes) = self.lanes() {
            (
                output_cotangent.par_chunks(batch_chunk * n * cols),
                spectrum.par_chunks(batch_chunk * h * cols),
                input_cotangent.par_chunks_mut(batch_chunk * n * cols),
                partial.par_chunks_mut(h * cols),
            )
                .into_par_iter()
                .for_each(|(dy, forward, dx, acc)| {
                    for ((dy, forward), dx) in dy
                        .chunks_exact(n * cols)
                        .zip(forward.chunks_exact(h * cols))
                        .zip(dx.chunks_exact_mut(n * cols))
                    {
                        let mut sink = SpectrumSink::Correlate {
                            forward,
                            acc: &mut *acc,
                            scale: ortho,
                        };
                        lanes.filter_matrix(dy, filter_half, true, dx, cols, &mut sink);
                    }
                });
            return Ok(groups);
        }
        let filter_columns = filter_columns(filter_half, h, cols, true, n, columns);
        (
            output_cotangent.par_chunks(batch_chunk * n * cols),
            spectrum.par_chunks(batch_chunk * h * cols),
            input_cotangent.par_chunks_mut(batch_chunk * n * cols),
            partial.par_chunks_mut(h * cols),
        )
            .into_par_iter()
            .try_for_each(|(dy, forward, dx, accumulator)| {
                with_thread_scratch(size, |scratch| {
                    for ((dy, forward), dx) in dy
                        .chunks_exact(n * cols)
                        .zip(forward.chunks_exact(h * cols))
                        .zip(dx.chunks_exact_mut(n * cols))
                    {
                        for col0 in (0..cols).step_by(tile_cols) {
                            let tile = Tile {
                                cols,
                                col0,
                                width: tile_cols.min(cols - col0),
                            };
                            self.spectral_tile(dy, filter_columns, dx, tile, scratch, |raw| {
                                correlate(raw, forward, accumulator, tile, h, ortho);
                            })?;
                        }
                    }
                    Ok(())
                })
            })?;
        Ok(groups)
    }

    /// `y = irfft(G ⊙ rfft(x)) / n` on one column tile of one entry, with `G` given column
    /// after column (see [`filter_columns`]); `on_spectrum` sees the unnormalised spectrum
    /// of `x` (column after column) first.
    fn spectral_tile(
        &self,
        x: &[f32],
        filter_columns: &[Complex32],
        y: &mut [f32],
        tile: Tile,
        scratch: &mut TileScratch,
        on_spectrum: impl FnOnce(&[Complex32]),
    ) -> Result<(), FftError> {
        let Tile { cols, col0, width } = tile;
        let (n, h) = (self.len(), self.spectrum_len());
        strided::gather_f32(x, cols, col0, n, width, &mut scratch.real);
        self.rfft_columns(scratch, width)?;
        on_spectrum(&scratch.spectrum[..h * width]);
        let filter = &filter_columns[col0 * h..(col0 + width) * h];
        for (bin, &g) in scratch.spectrum[..h * width].iter_mut().zip(filter) {
            *bin *= g;
        }
        self.irfft_columns(scratch, width)?;
        strided::scatter_f32(&scratch.real, n, width, y, cols, col0);
        Ok(())
    }
}

/// The filter `(h, cols)` row-major, as `cols` contiguous columns of `h` bins, conjugated
/// if asked and scaled by `1/n` (the rfft/irfft pair runs unnormalised), in `buffer`.
fn filter_columns<'b>(
    filter_half: &[Complex32],
    h: usize,
    cols: usize,
    conjugate: bool,
    n: usize,
    buffer: &'b mut Vec<Complex32>,
) -> &'b [Complex32] {
    if buffer.len() < h * cols {
        buffer.resize(h * cols, Complex32::new(0.0, 0.0));
    }
    let columns = &mut buffer[..h * cols];
    let inv_n = (1.0 / n as f64) as f32;
    // O(n D) like one batch entry: blocks of columns in parallel.
    const BLOCK_COLUMNS: usize = 16;
    columns
        .par_chunks_mut(BLOCK_COLUMNS * h)
        .enumerate()
        .for_each(|(block, dst)| {
            let width = dst.len() / h;
            strided::gather(filter_half, cols, block * BLOCK_COLUMNS, h, width, dst);
            for g in dst.iter_mut() {
                *g = if conjugate { g.conj() } else { *g } * inv_n;
            }
        });
    columns
}

/// A block of `width` columns starting at `col0` of a row-major matrix with `cols` columns.
#[derive(Clone, Copy, Debug)]
struct Tile {
    cols: usize,
    col0: usize,
    width: usize,
}

/// `accumulator[k, c] += scale · raw[j * h + k] · conj(forward[k, c])`, `c = col0 + j`.
fn correlate(
    raw: &[Complex32],
    forward: &[Complex32],
    accumulator: &mut [Complex32],
    tile: Tile,
    h: usize,
    scale: f32,
) {
    let Tile { cols, col0, width } = tile;
    for (k, (acc, x)) in accumulator
        .chunks_exact_mut(cols)
        .zip(forward.chunks_exact(cols))
        .enumerate()
    {
        let (acc, x) = (&mut acc[col0..col0 + width], &x[col0..col0 + width]);
        for (j, (a, x)) in acc.iter_mut().zip(x).enumerate() {
            *a += raw[j * h + k] * scale * x.conj();
        }
    }
}

/// `1/√n`, the ortho normalisation.
pub(crate) fn ortho_scale(n: usize) -> f32 {
    (1.0 / (n as f64).sqrt()) as f32
}

//! The SVG of one layer's filter response: heat maps of `|H|` and `arg H` over (frequency,
//! channel), each with a colour bar, and mean `|H|` against frequency.

use std::ops::Range;
use std::path::Path;

use ndarray::{Array2, ArrayView2};
use plotters::prelude::*;
use spectrans_models::filter_response::FilterResponse;

use super::FiltersError;

/// The most heat-map cells along either axis of an SVG; larger filters are block-averaged.
pub const MAX_CELLS: usize = 128;

/// `count = min(len, max)` consecutive ranges covering `0..len`, sizes differing by at most 1.
fn bins(len: usize, max: usize) -> Vec<Range<usize>> {
    let count = len.min(max).max(1);
    (0..count)
        .map(|k| k * len / count..(k + 1) * len / count)
        .collect()
}

/// A heat map's cells: value per (frequency bin, channel bin).
struct Grid {
    freq: Vec<Range<usize>>,
    chan: Vec<Range<usize>>,
    values: Array2<f32>,
}

impl Grid {
    /// Block means of `values` (n, d).
    fn mean(values: ArrayView2<'_, f32>) -> Self {
        let (n, d) = values.dim();
        let (freq, chan) = (bins(n, MAX_CELLS), bins(d, MAX_CELLS));
        let cells = Array2::from_shape_fn((freq.len(), chan.len()), |(a, b)| {
            let block = values.slice(ndarray::s![freq[a].clone(), chan[b].clone()]);
            (block.iter().map(|&v| f64::from(v)).sum::<f64>() / block.len() as f64) as f32
        });
        Grid {
            freq,
            chan,
            values: cells,
        }
    }

    /// Block circular means of the phase of `re + i im`: `arg Σ H/|H|` (an arithmetic mean
    /// of angles would put the mean of -3.1 and 3.1 at 0 instead of at π).
    fn circular_mean(re: ArrayView2<'_, f32>, im: ArrayView2<'_, f32>) -> Self {
        let (n, d) = re.dim();
        let (freq, chan) = (bins(n, MAX_CELLS), bins(d, MAX_CELLS));
        let cells = Array2::from_shape_fn((freq.len(), chan.len()), |(a, b)| {
            let s = ndarray::s![freq[a].clone(), chan[b].clone()];
            let (mut sx, mut sy) = (0.0f64, 0.0f64);
            for (&x, &y) in re.slice(s).iter().zip(im.slice(s).iter()) {
                let r = f64::from(x).hypot(f64::from(y));
                if r > 0.0 {
                    sx += f64::from(x) / r;
                    sy += f64::from(y) / r;
                }
            }
            sy.atan2(sx) as f32
        });
        Grid {
            freq,
            chan,
            values: cells,
        }
    }

    fn downsampled(&self, n: usize, d: usize) -> bool {
        self.freq.len() < n || self.chan.len() < d
    }

    /// The value range, widened when flat so that a colour scale can be drawn.
    fn range(&self) -> (f64, f64) {
        let lo = self.values.iter().copied().fold(f32::INFINITY, f32::min) as f64;
        let hi = self
            .values
            .iter()
            .copied()
            .fold(f32::NEG_INFINITY, f32::max) as f64;
        widen(lo, hi)
    }
}

/// `lo..hi`, widened around its middle when (nearly) empty.
fn widen(lo: f64, hi: f64) -> (f64, f64) {
    let min_span = 1e-6 * lo.abs().max(hi.abs()).max(1.0);
    if hi - lo < min_span {
        let mid = 0.5 * (lo + hi);
        (mid - min_span, mid + min_span)
    } else {
        (lo, hi)
    }
}

/// A colour map: anchors spaced evenly over [0, 1], linear in between.
#[derive(Clone, Copy)]
struct ColourMap(&'static [(u8, u8, u8)]);

/// Viridis (matplotlib's default), sampled at 9 points.
const VIRIDIS: ColourMap = ColourMap(&[
    (68, 1, 84),
    (71, 44, 122),
    (59, 81, 139),
    (44, 113, 142),
    (33, 144, 141),
    (39, 173, 129),
    (92, 200, 99),
    (170, 220, 50),
    (253, 231, 37),
]);

/// Plasma, sampled at 7 points (distinct from |H|'s map, so the panels are not confused).
const PLASMA: ColourMap = ColourMap(&[
    (13, 8, 135),
    (91, 2, 163),
    (154, 23, 155),
    (203, 70, 121),
    (235, 120, 82),
    (251, 179, 47),
    (240, 249, 33),
]);

/// A cyclic map (twilight-like: light at both ends, dark in the middle) for phases spanning
/// most of the circle, where -π and π are the same angle and must get the same colour.
const CYCLIC: ColourMap = ColourMap(&[
    (226, 217, 226),
    (163, 184, 206),
    (103, 133, 193),
    (92, 74, 170),
    (47, 20, 54),
    (124, 40, 97),
    (180, 86, 81),
    (213, 153, 135),
    (226, 217, 226),
]);

/// The phase heat map's scale: its own range on a sequential map when the phases stay within
/// half the circle (sigmoid filters lie in (0, π/2)), else all of [-π, π] on the cyclic map.
fn phase_scale(grid: &Grid) -> (f64, f64, ColourMap) {
    let (lo, hi) = grid.range();
    if hi - lo > std::f64::consts::PI {
        (-std::f64::consts::PI, std::f64::consts::PI, CYCLIC)
    } else {
        (lo, hi, PLASMA)
    }
}

impl ColourMap {
    /// The colour at `t` in [0, 1] (clamped).
    fn at(self, t: f64) -> RGBColor {
        let anchors = self.0;
        let t = if t.is_finite() {
            t.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let x = t * (anchors.len() - 1) as f64;
        let k = (x.floor() as usize).min(anchors.len() - 2);
        let f = x - k as f64;
        let mix = |a: u8, b: u8| (f64::from(a) + f * (f64::from(b) - f64::from(a))).round() as u8;
        let (a, b) = (anchors[k], anchors[k + 1]);
        RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }
}

/// Tick text with enough decimals to tell ticks `span / 5` apart.
fn tick_label(v: f64, span: f64) -> String {
    let step = (span / 5.0).abs().max(1e-12);
    let decimals = (-step.log10()).ceil().clamp(0.0, 7.0) as usize;
    format!("{v:.decimals$}")
}

const WIDTH: u32 = 1500;
const HEIGHT: u32 = 1000;
const TOP: u32 = 580;
const BAR: u32 = 120;
const TITLE_FONT: u32 = 20;
const LABEL_FONT: u32 = 16;

/// The whole SVG of one layer.
pub(super) fn render(layer: &FilterResponse, path: &Path) -> Result<String, FiltersError> {
    let err = |e: &dyn std::fmt::Display| FiltersError::Plot {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let (top, bottom) = root.split_vertically(TOP);
        let (left, right) = top.split_horizontally(WIDTH / 2);
        let (n, d) = layer.shape();
        let magnitude = Grid::mean(layer.magnitude.view());
        let (lo, hi) = magnitude.range();
        heat_map(
            &left,
            &magnitude,
            (n, d),
            &format!("layer {}: |H|", layer.layer),
            "|H|",
            (lo, hi, VIRIDIS),
        )
        .map_err(|e| err(&e))?;
        let phase = Grid::circular_mean(layer.real.view(), layer.imag.view());
        let (lo, hi, colours) = phase_scale(&phase);
        heat_map(
            &right,
            &phase,
            (n, d),
            &format!("layer {}: phase arg H", layer.layer),
            "arg H (rad)",
            (lo, hi, colours),
        )
        .map_err(|e| err(&e))?;
        line_plot(&bottom, layer).map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

/// A heat map over (frequency on x, channel on y) with its colour bar on the right.
fn heat_map(
    area: &Area<'_>,
    grid: &Grid,
    (n, d): (usize, usize),
    title: &str,
    scale_name: &str,
    (lo, hi, colours): (f64, f64, ColourMap),
) -> DrawResult {
    let (plot_area, bar_area) = area.split_horizontally(area.dim_in_pixel().0 - BAR);
    let title = if grid.downsampled(n, d) {
        format!(
            "{title} ({n} x {d} averaged to {} x {} cells)",
            grid.freq.len(),
            grid.chan.len()
        )
    } else {
        format!("{title} ({n} x {d})")
    };
    let mut chart = ChartBuilder::on(&plot_area)
        .caption(title, ("sans-serif", TITLE_FONT))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(56)
        // Index k is the cell [k - 0.5, k + 0.5], so that a tick sits on its cell's middle.
        .build_cartesian_2d(-0.5..n as f64 - 0.5, -0.5..d as f64 - 0.5)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("frequency index")
        .y_desc("channel")
        .x_labels(8)
        .y_labels(8)
        .label_style(("sans-serif", LABEL_FONT))
        .axis_desc_style(("sans-serif", LABEL_FONT + 1))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    let colour = |v: f32| colours.at((f64::from(v) - lo) / (hi - lo));
    chart.draw_series(grid.values.indexed_iter().map(|((a, b), &v)| {
        let (f, c) = (&grid.freq[a], &grid.chan[b]);
        Rectangle::new(
            [
                (f.start as f64 - 0.5, c.start as f64 - 0.5),
                (f.end as f64 - 0.5, c.end as f64 - 0.5),
            ],
            colour(v).filled(),
        )
    }))?;
    colour_bar(&bar_area, lo, hi, scale_name, colours)
}

/// A vertical colour bar for `lo..hi` with tick values and the scale's name.
fn colour_bar(area: &Area<'_>, lo: f64, hi: f64, name: &str, colours: ColourMap) -> DrawResult {
    const STEPS: usize = 64;
    let span = hi - lo;
    let mut bar = ChartBuilder::on(area)
        // The same caption height as the heat map's, so the bar lines up with it.
        .caption(" ", ("sans-serif", TITLE_FONT))
        .margin(12)
        .margin_left(4)
        .x_label_area_size(44)
        .y_label_area_size(0)
        .right_y_label_area_size(68)
        .build_cartesian_2d(0.0..1.0, lo..hi)?;
    bar.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(6)
        .y_desc(name)
        .label_style(("sans-serif", LABEL_FONT))
        .axis_desc_style(("sans-serif", LABEL_FONT + 1))
        .y_label_formatter(&|v| tick_label(*v, span))
        .draw()?;
    bar.draw_series((0..STEPS).map(|k| {
        let (a, b) = (k as f64 / STEPS as f64, (k + 1) as f64 / STEPS as f64);
        Rectangle::new(
            [(0.0, lo + a * span), (1.0, lo + b * span)],
            colours.at((a + b) / 2.0).filled(),
        )
    }))?;
    Ok(())
}

/// `|H|` averaged over channels against frequency.
fn line_plot(area: &Area<'_>, layer: &FilterResponse) -> DrawResult {
    let (n, d) = layer.shape();
    let points: Vec<(f64, f64)> = layer
        .mean_magnitude
        .iter()
        .enumerate()
        .map(|(k, &v)| (k as f64, f64::from(v)))
        .collect();
    let lo = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = widen(lo, hi);
    let pad = 0.08 * (hi - lo);
    let x_hi = (n.max(2) - 1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "layer {}: mean |H| over the {d} channels, by frequency  (H = {act}(Wr) + i {act}(Wi))",
                layer.layer,
                act = layer.activation.as_str()
            ),
            ("sans-serif", TITLE_FONT),
        )
        .margin(12)
        .margin_right(BAR as i32)
        .x_label_area_size(44)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..x_hi, (lo - pad)..(hi + pad))?;
    let span = hi - lo;
    chart
        .configure_mesh()
        .x_desc("frequency index")
        .y_desc("mean |H|")
        .x_labels(12)
        .y_labels(6)
        .label_style(("sans-serif", LABEL_FONT))
        .axis_desc_style(("sans-serif", LABEL_FONT + 1))
        .light_line_style(RGBColor(235, 235, 235))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|v| tick_label(*v, span))
        .draw()?;
    let line = RGBColor(40, 90, 180);
    chart.draw_series(LineSeries::new(
        points.iter().copied(),
        line.stroke_width(2),
    ))?;
    if n <= 64 {
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, line.filled())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use spectrans_layers::{FilterActivation, GlobalFilter};

    #[test]
    fn bins_cover_the_axis_evenly() {
        assert_eq!(bins(5, 128), (0..5).map(|k| k..k + 1).collect::<Vec<_>>());
        let b = bins(768, 128);
        assert_eq!(b.len(), 128);
        assert!(b.iter().all(|r| r.len() == 6));
        let b = bins(300, 128);
        assert_eq!((b[0].start, b[127].end), (0, 300));
        assert!(b.windows(2).all(|w| w[0].end == w[1].start));
        assert!(b.iter().all(|r| r.len() == 2 || r.len() == 3));
    }

    #[test]
    fn the_circular_mean_of_angles_near_pi_is_near_pi() {
        let re = Array2::from_elem((1, 2), -1.0f32);
        let im = ndarray::array![[0.05f32, -0.05]];
        let g = Grid::circular_mean(re.view(), im.view());
        assert_eq!(g.values.dim(), (1, 2));
        let big_re = Array2::from_elem((256, 2), -1.0f32);
        let big_im =
            Array2::from_shape_fn((256, 2), |(i, _)| if i % 2 == 0 { 0.05 } else { -0.05 });
        let g = Grid::circular_mean(big_re.view(), big_im.view());
        assert_eq!(g.values.dim(), (128, 2));
        assert!(g.values.iter().all(|v| v.abs() > 3.1), "{:?}", g.values);
    }

    #[test]
    fn a_large_filter_makes_a_small_svg_that_says_it_is_averaged() {
        use rand::SeedableRng;
        let rng = &mut rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let (act, norm) = (FilterActivation::Sigmoid, spectrans_layers::FftNorm::Ortho);
        let f = GlobalFilter::new(768, 512, act, norm, 0.5, 0.0, rng).expect("a filter");
        let l = FilterResponse::of(0, &f).expect("response");
        let svg = render(&l, Path::new("layer_0.svg")).expect("svg");
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("averaged to 128 x 128 cells"));
        assert!(svg.contains("frequency index") && svg.contains("channel"));
        assert!(svg.contains("mean |H|"));
        assert!(svg.len() < 8 << 20, "{} bytes", svg.len());
    }

    #[test]
    fn phases_around_the_circle_get_the_cyclic_scale() {
        let grid = |values: Array2<f32>| Grid {
            freq: bins(values.nrows(), MAX_CELLS),
            chan: bins(values.ncols(), MAX_CELLS),
            values,
        };
        let (lo, hi, map) = phase_scale(&grid(ndarray::array![[0.7f32, 0.9]]));
        assert_eq!((lo, hi), (0.7f32 as f64, 0.9f32 as f64));
        assert_eq!(map.0, PLASMA.0);
        let (lo, hi, map) = phase_scale(&grid(ndarray::array![[-3.0f32, 3.1]]));
        assert_eq!((lo, hi), (-std::f64::consts::PI, std::f64::consts::PI));
        assert_eq!(map.at(0.0), map.at(1.0), "-π and π look the same");
    }

    #[test]
    fn tick_labels_tell_close_ticks_apart() {
        assert_eq!(tick_label(0.5, 0.01), "0.500");
        assert_eq!(tick_label(1.0, 3.0), "1.0");
        assert_eq!(tick_label(100.0, 500.0), "100");
    }
}

//! The SVG chart of throughput (tokens/s) against sequence length, one line per implementation.

use std::path::Path;

use plotters::prelude::*;

use super::error::BenchError;

/// One line of the chart: a name and its (sequence length, tokens/s) points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// Draws `series` to `path` (log sequence axis, linear throughput axis from 0): the sweep at
/// 4096 tokens per batch.
pub fn tokens_per_s_chart(path: &Path, title: &str, series: &[Series]) -> Result<(), BenchError> {
    chart(
        path,
        title,
        "sequence length (batch x sequence = 4096 tokens)",
        false,
        series,
    )
}

/// Draws `series` to `path` with both axes logarithmic: the long-sequence sweep at batch 1.
pub fn tokens_per_s_log_log(
    path: &Path,
    title: &str,
    x_desc: &str,
    series: &[Series],
) -> Result<(), BenchError> {
    chart(path, title, x_desc, true, series)
}

/// The chart: a log x axis, a log or linear (from 0) y axis, one line per series.
fn chart(
    path: &Path,
    title: &str,
    x_desc: &str,
    log_y: bool,
    series: &[Series],
) -> Result<(), BenchError> {
    if log_y {
        let all = series.iter().flat_map(|s| s.points.iter());
        let y_lo = all.map(|p| p.1).fold(f64::INFINITY, f64::min);
        if y_lo.is_nan() || y_lo <= 0.0 {
            return Err(BenchError::Plot {
                path: path.to_path_buf(),
                message: "a logarithmic axis needs positive values".into(),
            });
        }
        let y_hi = series
            .iter()
            .flat_map(|s| s.points.iter())
            .map(|p| p.1)
            .fold(0.0f64, f64::max);
        return draw(
            path,
            title,
            x_desc,
            series,
            (y_lo / 1.5)..(y_hi * 1.5),
            true,
        );
    }
    let y_hi = series
        .iter()
        .flat_map(|s| s.points.iter())
        .map(|p| p.1)
        .fold(0.0f64, f64::max)
        * 1.15;
    draw(path, title, x_desc, series, 0.0..y_hi.max(1.0), false)
}

fn draw(
    path: &Path,
    title: &str,
    x_desc: &str,
    series: &[Series],
    y_range: std::ops::Range<f64>,
    log_y: bool,
) -> Result<(), BenchError> {
    let err = |e: &dyn std::fmt::Display| BenchError::Plot {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let all: Vec<(f64, f64)> = series.iter().flat_map(|s| s.points.clone()).collect();
    if all.is_empty() {
        return Err(err(&"no points to draw"));
    }
    let (x_lo, x_hi) = all.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), p| {
        (lo.min(p.0), hi.max(p.0))
    });
    let root = SVGBackend::new(path, (860, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(80);
    let x_range = ((x_lo / 1.2)..(x_hi * 1.2)).log_scale();
    if log_y {
        let mut chart = builder
            .build_cartesian_2d(x_range, y_range.log_scale())
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc("tokens / s")
            .x_label_formatter(&|x| format!("{:.0}", x))
            .y_label_formatter(&|y| format!("{:.0}", y))
            .draw()
            .map_err(|e| err(&e))?;
        lines(&mut chart, series).map_err(|e| err(&e))?;
    } else {
        let mut chart = builder
            .build_cartesian_2d(x_range, y_range)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc("tokens / s")
            .x_label_formatter(&|x| format!("{:.0}", x))
            .y_label_formatter(&|y| format!("{:.0}", y))
            .draw()
            .map_err(|e| err(&e))?;
        lines(&mut chart, series).map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// One line with markers and a legend entry per series, then the legend.
fn lines<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    series: &[Series],
) -> Result<(), DrawingAreaErrorKind<std::io::Error>>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let colors = [
        RGBColor(200, 60, 30),
        RGBColor(40, 90, 180),
        RGBColor(30, 140, 60),
        RGBColor(120, 60, 160),
    ];
    for (s, color) in series.iter().zip(colors.iter().cycle()) {
        let color = *color;
        chart
            .draw_series(LineSeries::new(s.points.clone(), color.stroke_width(2)))?
            .label(s.name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart.draw_series(s.points.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_an_svg_with_both_lines() -> Result<(), Box<dyn std::error::Error>> {
        let path = std::env::temp_dir().join(format!("xtask-plot-{}.svg", std::process::id()));
        let series = [
            Series {
                name: "spectrans-rs".into(),
                points: vec![(128.0, 20000.0), (512.0, 15000.0), (4096.0, 9000.0)],
            },
            Series {
                name: "pytorch".into(),
                points: vec![(128.0, 9000.0), (512.0, 8000.0), (4096.0, 4000.0)],
            },
        ];
        tokens_per_s_chart(&path, "test", &series)?;
        let svg = std::fs::read_to_string(&path)?;
        std::fs::remove_file(&path)?;
        assert!(svg.starts_with("<svg"));
        // each series: its line and its legend mark, in its own colour
        for colour in ["#C83C1E", "#285AB4"] {
            let lines = svg
                .lines()
                .filter(|l| l.contains("<polyline") && l.contains(colour))
                .count();
            assert_eq!(lines, 2, "{colour} in\n{svg}");
        }
        assert_eq!(svg.matches("<circle").count(), 6, "one marker per point");
        assert!(svg.contains("spectrans-rs") && svg.contains("pytorch"));
        Ok(())
    }

    #[test]
    fn a_log_log_chart_with_four_lines() -> Result<(), Box<dyn std::error::Error>> {
        let path = std::env::temp_dir().join(format!("xtask-plot-log-{}.svg", std::process::id()));
        let series: Vec<Series> = (0..4)
            .map(|i| Series {
                name: format!("line {i}"),
                points: vec![
                    (512.0, 1e5 / (i + 1) as f64),
                    (65536.0, 1e3 * (i + 1) as f64),
                ],
            })
            .collect();
        tokens_per_s_log_log(&path, "t", "sequence length (batch 1)", &series)?;
        let svg = std::fs::read_to_string(&path)?;
        std::fs::remove_file(&path)?;
        assert_eq!(svg.matches("<circle").count(), 8, "one marker per point");
        assert!(svg.contains("line 3") && svg.contains("#783CA0"));
        let zero = [Series {
            name: "z".into(),
            points: vec![(512.0, 0.0)],
        }];
        assert!(tokens_per_s_log_log(&path, "t", "x", &zero).is_err());
        Ok(())
    }

    #[test]
    fn refuses_an_empty_chart() {
        let path = std::env::temp_dir().join("xtask-plot-empty.svg");
        assert!(tokens_per_s_chart(&path, "t", &[]).is_err());
    }
}

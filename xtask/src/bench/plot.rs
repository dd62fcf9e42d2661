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

/// Draws `series` to `path` (log2 sequence axis, linear throughput axis from 0).
pub fn tokens_per_s_chart(path: &Path, title: &str, series: &[Series]) -> Result<(), BenchError> {
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
    let y_hi = all.iter().map(|p| p.1).fold(0.0f64, f64::max) * 1.15;
    let root = SVGBackend::new(path, (860, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(80)
        .build_cartesian_2d(((x_lo / 1.2)..(x_hi * 1.2)).log_scale(), 0.0..y_hi.max(1.0))
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("sequence length (batch x sequence = 4096 tokens)")
        .y_desc("tokens / s")
        .x_label_formatter(&|x| format!("{:.0}", x))
        .y_label_formatter(&|y| format!("{:.0}", y))
        .draw()
        .map_err(|e| err(&e))?;
    let colors = [
        RGBColor(200, 60, 30),
        RGBColor(40, 90, 180),
        RGBColor(30, 140, 60),
    ];
    for (s, color) in series.iter().zip(colors.iter().cycle()) {
        let color = *color;
        chart
            .draw_series(LineSeries::new(s.points.clone(), color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(s.name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(s.points.iter().map(|&p| Circle::new(p, 4, color.filled())))
            .map_err(|e| err(&e))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
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
    fn refuses_an_empty_chart() {
        let path = std::env::temp_dir().join("xtask-plot-empty.svg");
        assert!(tokens_per_s_chart(&path, "t", &[]).is_err());
    }
}

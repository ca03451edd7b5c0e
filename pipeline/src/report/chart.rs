//! The run report's charts: SVG text drawn by plotters, inlined into the page, so the report
//! needs no script and no other file.

use anyhow::{anyhow, Result};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

const SIZE: (u32, u32) = (900, 320);
/// One colour per series, told apart in print too (Okabe–Ito, for colour-blind readers).
pub const PALETTE: [RGBColor; 5] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
];

/// A series of points; the page prints the key (series `i` in [`css_color`]`(i)`).
pub type Series = Vec<(f64, f64)>;

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing a report chart: {e}")
}

/// `lo..hi` with a margin, never empty (plotters needs a span to divide).
fn padded(values: impl Iterator<Item = f64>, floor_at_zero: bool) -> (f64, f64) {
    let (mut lo, mut hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(v), h.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if floor_at_zero {
        lo = lo.min(0.0);
    }
    let span = (hi - lo).max(hi.abs() * 0.1).max(1e-3);
    hi += span * 0.1;
    if !floor_at_zero {
        lo -= span * 0.1;
    }
    (lo, hi)
}

type Chart<'a> = ChartContext<'a, SVGBackend<'a>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A chart over `x` and `y` on `root`, room left for the axes' labels.
fn frame<'a>(
    root: &DrawingArea<SVGBackend<'a>, plotters::coord::Shift>,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
) -> Result<Chart<'a>> {
    ChartBuilder::on(root)
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(55)
        .build_cartesian_2d(x, y)
        .map_err(err)
}

/// The label of category position `x` (categories sit at 0, 1, 2, ...); none between them.
fn category_label(categories: &[String], x: f64) -> String {
    let i = x.round();
    if (x - i).abs() > 1e-6 || i < 0.0 {
        return String::new();
    }
    categories.get(i as usize).cloned().unwrap_or_default()
}

/// Grouped bars: a group per category, a bar per series (`None`: no bar); series `i` in
/// [`css_color`]`(i)`.
pub fn bars(y_desc: &str, categories: &[String], series: &[Vec<Option<f64>>]) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (_, hi) = padded(
            series.iter().flat_map(|v| v.iter().flatten().copied()),
            true,
        );
        let n = categories.len().max(1);
        let mut chart = frame(&root, -0.5..(n as f64 - 0.5), 0.0..hi)?;
        let label = |x: &f64| category_label(categories, *x);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&label)
            .y_desc(y_desc)
            .draw()
            .map_err(err)?;
        let width = 0.8 / series.len().max(1) as f64;
        for (s, values) in series.iter().enumerate() {
            let color = PALETTE[s % PALETTE.len()];
            let left = |i: usize| i as f64 - 0.4 + s as f64 * width;
            chart
                .draw_series(values.iter().enumerate().filter_map(|(i, v)| {
                    v.map(|v| {
                        Rectangle::new([(left(i), 0.0), (left(i) + width * 0.9, v)], color.filled())
                    })
                }))
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Lines with a marker at each point. With `categories`, x positions 0, 1, 2, ... are labelled
/// with them (e.g. release ids in order).
pub fn lines(
    x_desc: &str,
    y_desc: &str,
    series: &[Series],
    categories: Option<&[String]>,
) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let points = || series.iter().flatten();
        let (x_lo, x_hi) = match categories {
            Some(c) => (-0.5, c.len().max(1) as f64 - 0.5),
            None => padded(points().map(|p| p.0), false),
        };
        let (y_lo, y_hi) = padded(points().map(|p| p.1), false);
        let mut chart = frame(&root, x_lo..x_hi, y_lo..y_hi)?;
        let label = |x: &f64| category_label(categories.unwrap_or_default(), *x);
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(x_desc).y_desc(y_desc);
        if let Some(c) = categories {
            mesh.disable_x_mesh()
                .x_labels(c.len().max(1))
                .x_label_formatter(&label);
        }
        mesh.draw().map_err(err)?;
        for (s, line) in series.iter().enumerate() {
            let color = PALETTE[s % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(line.iter().copied(), color.stroke_width(2)))
                .map_err(err)?;
            chart
                .draw_series(line.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Labelled points, the `highlight`ed ones filled and the others hollow.
pub fn scatter(x_desc: &str, y_desc: &str, points: &[(String, f64, f64, bool)]) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (x_lo, x_hi) = padded(points.iter().map(|p| p.1), false);
        let (y_lo, y_hi) = padded(points.iter().map(|p| p.2), false);
        let mut chart = frame(&root, x_lo..x_hi, y_lo..y_hi)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .draw()
            .map_err(err)?;
        let color = PALETTE[0];
        chart
            .draw_series(points.iter().map(|(name, x, y, highlight)| {
                let style = if *highlight {
                    color.filled()
                } else {
                    color.stroke_width(2)
                };
                EmptyElement::at((*x, *y))
                    + Circle::new((0, 0), 4, style)
                    + Text::new(name.clone(), (6, -14), ("sans-serif", 12))
            }))
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Series `i`'s colour as CSS, for the key the page prints under a chart.
pub fn css_color(i: usize) -> String {
    let RGBColor(r, g, b) = PALETTE[i % PALETTE.len()];
    format!("#{r:02x}{g:02x}{b:02x}")
}

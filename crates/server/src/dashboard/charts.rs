//! The dashboard's charts, drawn on the server by `plotters` into SVG that
//! is inlined in the page: no chart script, nothing fetched, and a page is
//! whole when its HTML has arrived (which keeps the largest paint early).
//!
//! Each chart comes with its legend and its numbers as HTML (a legend list,
//! and the data table the page shows beside it), since an SVG's shapes say
//! nothing to a screen reader: the SVG itself is an image with a label.

use super::format::count;
use maud::{html, Markup, PreEscaped};
use plotters::prelude::*;

/// The colours of series, in order: distinct for the common kinds of colour blindness.
pub const PALETTE: [RGBColor; 12] = [
    RGBColor(0x0a, 0x58, 0xca),
    RGBColor(0xe6, 0x7e, 0x22),
    RGBColor(0x1e, 0x7a, 0x3c),
    RGBColor(0xb0, 0x2a, 0x37),
    RGBColor(0x6f, 0x42, 0xc1),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xd6, 0x33, 0x84),
    RGBColor(0x5c, 0x63, 0x6a),
    RGBColor(0xa0, 0x8f, 0x00),
    RGBColor(0x0d, 0xa5, 0xb5),
    RGBColor(0x33, 0x33, 0x99),
    RGBColor(0x99, 0x66, 0x00),
];

const AXIS_FONT: (&str, u32) = ("sans-serif", 17);
const INK: RGBColor = RGBColor(0x1d, 0x23, 0x2b);
const GRID: RGBColor = RGBColor(0xe4, 0xe8, 0xec);
const LIMIT: RGBColor = RGBColor(0xb0, 0x2a, 0x37);

/// One series of a stacked chart.
pub struct Series {
    /// Its name, for the legend.
    pub name: String,
    /// A value per slot.
    pub values: Vec<u64>,
}

/// A value axis that ends on a round number above `max`.
fn nice_ceiling(max: u64) -> f64 {
    if max == 0 {
        return 1.0;
    }
    let magnitude = 10f64.powi((max as f64).log10().floor() as i32);
    let steps = [1.0, 2.0, 2.5, 5.0, 10.0];
    let top = steps.iter().map(|s| s * magnitude).find(|v| *v >= max as f64).unwrap_or(10.0 * magnitude);
    top.max(1.0)
}

/// The SVG, labelled as an image for screen readers (its numbers are in the page's table).
fn labelled(svg: String, label: &str) -> Markup {
    let label = maud::html! { (label) }.into_string(); // escaped for the attribute
    PreEscaped(svg.replacen("<svg ", &format!("<svg role=\"img\" aria-label=\"{label}\" "), 1))
}

fn failed(e: impl std::fmt::Display) -> Markup {
    tracing::warn!(error = %e, "a dashboard chart could not be drawn");
    html! { p class="muted" { "The chart could not be drawn." } }
}

/// The desktop and the phone drawing of a chart: an SVG scales, its text
/// with it, so a chart drawn for 1,200 px would have 4 px labels on a phone.
/// Both are sent; the stylesheet shows one (`.chart-wide`, `.chart-narrow`).
fn both(wide: Markup, narrow: Markup) -> Markup {
    html! { div class="chart-wide" { (wide) } div class="chart-narrow" { (narrow) } }
}

/// Stacked series over time slots (bars for a few slots, areas for many),
/// with `labels` naming each slot on the time axis; `height` at desktop width.
pub fn stacked(label: &str, labels: &[String], series: &[Series], height: u32) -> Markup {
    let draw = |size: (u32, u32), ticks: usize| match draw_stacked(labels, series, size, ticks) {
        Ok(svg) => labelled(svg, label),
        Err(e) => failed(e),
    };
    both(draw((1200, height), 9), draw((420, 300), 4))
}

fn draw_stacked(labels: &[String], series: &[Series], size: (u32, u32), ticks: usize) -> Result<String, String> {
    let slots = labels.len();
    let mut totals = vec![0u64; slots];
    for s in series {
        for (t, v) in totals.iter_mut().zip(&s.values) {
            *t += v;
        }
    }
    let top = nice_ceiling(totals.iter().copied().max().unwrap_or(0));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .x_label_area_size(36)
            .y_label_area_size(80)
            .build_cartesian_2d(0f64..slots.max(1) as f64, 0f64..top)
            .map_err(|e| e.to_string())?;
        let x_label = |x: &f64| labels.get(x.floor().max(0.0) as usize).cloned().unwrap_or_default();
        let y_label = |y: &f64| count(y.round().max(0.0) as u64);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE)
            .bold_line_style(GRID)
            .axis_style(INK)
            .x_labels((slots + 1).clamp(2, ticks))
            .y_labels(6)
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label)
            .label_style(AXIS_FONT)
            .draw()
            .map_err(|e| e.to_string())?;
        // Painted from the top of the stack down: each layer covers the ones below it.
        let mut cumulative: Vec<Vec<u64>> = Vec::with_capacity(series.len());
        let mut running = vec![0u64; slots];
        for s in series {
            for (r, v) in running.iter_mut().zip(&s.values) {
                *r += v;
            }
            cumulative.push(running.clone());
        }
        for (i, layer) in cumulative.iter().enumerate().rev() {
            let colour = PALETTE[i % PALETTE.len()];
            if slots <= 62 {
                let bars = layer.iter().enumerate().filter(|(_, v)| **v > 0).map(|(x, v)| {
                    let x = x as f64;
                    Rectangle::new([(x + 0.12, 0.0), (x + 0.88, *v as f64)], colour.filled())
                });
                chart.draw_series(bars).map_err(|e| e.to_string())?;
            } else {
                // A step outline: each slot is flat across its width.
                let points =
                    layer.iter().enumerate().flat_map(|(x, v)| [(x as f64, *v as f64), (x as f64 + 1.0, *v as f64)]);
                chart.draw_series(AreaSeries::new(points, 0.0, colour.filled())).map_err(|e| e.to_string())?;
            }
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// The period's gauge: billed so far, the projection to the period's end,
/// and the allowance as a line.
pub fn gauge(label: &str, billed: u64, projected: Option<u64>, included: u64) -> Markup {
    let draw = |size: (u32, u32), ticks: usize| match draw_gauge(billed, projected, included, size, ticks) {
        Ok(svg) => labelled(svg, label),
        Err(e) => failed(e),
    };
    both(draw((1200, 90), 6), draw((420, 90), 3))
}

fn draw_gauge(
    billed: u64,
    projected: Option<u64>,
    included: u64,
    size: (u32, u32),
    ticks: usize,
) -> Result<String, String> {
    let top = nice_ceiling(billed.max(projected.unwrap_or(0)).max(included));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .margin_right(64)
            .x_label_area_size(32)
            .y_label_area_size(8)
            .build_cartesian_2d(0f64..top, 0f64..1f64)
            .map_err(|e| e.to_string())?;
        let x_label = |x: &f64| count(x.round().max(0.0) as u64);
        chart
            .configure_mesh()
            .disable_y_mesh()
            .disable_x_mesh()
            .y_labels(0)
            .x_labels(ticks)
            .axis_style(INK)
            .x_label_formatter(&x_label)
            .label_style(AXIS_FONT)
            .draw()
            .map_err(|e| e.to_string())?;
        if let Some(p) = projected.filter(|p| *p > billed) {
            let light = RGBColor(0xa9, 0xc4, 0xf0);
            chart
                .draw_series([Rectangle::new([(billed as f64, 0.25), (p as f64, 0.75)], light.filled())])
                .map_err(|e| e.to_string())?;
        }
        chart
            .draw_series([Rectangle::new([(0.0, 0.25), (billed as f64, 0.75)], PALETTE[0].filled())])
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new([(included as f64, 0.05), (included as f64, 0.95)], LIMIT.stroke_width(3)))
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// A small chart of one series over time, for a finding: no axes, just its shape and peak.
pub fn spark(label: &str, values: &[u64], size: (u32, u32)) -> Markup {
    match draw_spark(values, size) {
        Ok(svg) => labelled(svg, label),
        Err(e) => failed(e),
    }
}

fn draw_spark(values: &[u64], size: (u32, u32)) -> Result<String, String> {
    let top = nice_ceiling(values.iter().copied().max().unwrap_or(0));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .margin(4)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..values.len().max(1) as f64, 0f64..top)
            .map_err(|e| e.to_string())?;
        let y_label = |y: &f64| count(y.round().max(0.0) as u64);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE)
            .bold_line_style(GRID)
            .x_labels(0)
            .y_labels(3)
            .axis_style(INK)
            .y_label_formatter(&y_label)
            .label_style(("sans-serif", 15))
            .draw()
            .map_err(|e| e.to_string())?;
        let points = values.iter().enumerate().flat_map(|(x, v)| [(x as f64, *v as f64), (x as f64 + 1.0, *v as f64)]);
        chart.draw_series(AreaSeries::new(points, 0.0, PALETTE[0].mix(0.75).filled())).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// A legend for the series of a stacked chart.
pub fn legend(names: &[&str]) -> Markup {
    html! {
        ul class="legend" {
            @for (i, name) in names.iter().enumerate() {
                li { span class={"swatch c" (i % PALETTE.len())} {} (name) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_axis_tops() {
        assert_eq!(nice_ceiling(0), 1.0);
        assert_eq!(nice_ceiling(7), 10.0);
        assert_eq!(nice_ceiling(11), 20.0);
        assert_eq!(nice_ceiling(2_400), 2_500.0);
        assert_eq!(nice_ceiling(1_000_000), 1_000_000.0);
    }

    #[test]
    fn stacked_charts_are_svg_with_a_label_and_escape_it() {
        let labels: Vec<String> = (0..3).map(|i| format!("day {i}")).collect();
        let series = vec![
            Series { name: "rest".into(), values: vec![1, 2, 3] },
            Series { name: "sftp".into(), values: vec![0, 5, 1] },
        ];
        let svg = stacked("calls <per> day", &labels, &series, 240).into_string();
        assert!(svg.contains("<svg role=\"img\" aria-label=\"calls &lt;per&gt; day\""), "{}", &svg[..200]);
        assert_eq!(svg.matches("<svg ").count(), 2, "a wide and a narrow drawing");
        assert!(svg.contains("<rect"), "bars for a few slots");
        assert!(svg.contains("day 1"), "{svg}");
        let many: Vec<String> = (0..200).map(|i| i.to_string()).collect();
        let series = vec![Series { name: "rest".into(), values: (0..200).collect() }];
        let svg = stacked("hours", &many, &series, 240).into_string();
        assert!(svg.contains("<polygon") || svg.contains("<path"), "an area for many slots");
        assert!(svg.len() < 80_000, "an hourly month stays small: {} bytes", svg.len());
    }

    #[test]
    fn gauge_and_spark_draw() {
        let g = gauge("usage", 800, Some(1_200), 1_000).into_string();
        assert!(g.contains("<svg role=\"img\""));
        assert!(g.contains("1,000") || g.contains("1,200"), "the axis is in calls");
        let s = spark("calls", &[0, 3, 9, 2], (240, 70)).into_string();
        assert!(s.contains("<svg role=\"img\""));
    }
}

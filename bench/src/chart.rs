//! The fan-out chart: end-to-end latency (p50, p99, p99.9; medians over
//! the runs at each rate) against deliveries per second, with the 10 ms
//! and 50 ms targets drawn across, as an SVG file.

use crate::report::{Run, median};
use plotters::prelude::*;
use std::path::Path;

/// The figure at `path` (e.g. `latency.p99_ms`) of a run, if numeric.
fn figure(run: &Run, path: &str) -> Option<f64> {
    let mut value = serde_json::Value::Object(run.figures.clone());
    for part in path.split('.') {
        value = value.get(part)?.clone();
    }
    value.as_f64()
}

/// Draws one point per rate of the sweep (each entry holds that rate's runs).
pub fn fanout_latency(sweep: &[Vec<Run>], path: &Path) -> anyhow::Result<()> {
    let series = [
        ("p50", "latency.p50_ms", BLUE),
        ("p99", "latency.p99_ms", RED),
        ("p99.9", "latency.p999_ms", MAGENTA),
    ];
    let point = |runs: &Vec<Run>, key: &str| -> Option<(f64, f64)> {
        let x = median(
            runs.iter()
                .filter_map(|r| figure(r, "deliveries_per_s"))
                .collect(),
        )?;
        let y = median(runs.iter().filter_map(|r| figure(r, key)).collect())?;
        Some((x / 1000.0, y))
    };
    let x_max = sweep
        .iter()
        .filter_map(|runs| point(runs, "latency.p50_ms"))
        .map(|(x, _)| x)
        .fold(1.0, f64::max)
        * 1.1;
    let y_max = sweep
        .iter()
        .filter_map(|runs| point(runs, "latency.p999_ms"))
        .map(|(_, y)| y)
        .fold(60.0, f64::max)
        * 1.1;
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "chats3 fan-out: end-to-end latency against load",
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..x_max, (0.1..y_max).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("deliveries per second (thousands)")
        .y_desc("latency (ms, log scale)")
        .draw()?;
    for (target, label) in [(10.0, "10 ms target"), (50.0, "50 ms target")] {
        chart
            .draw_series(LineSeries::new(
                [(0.0, target), (x_max, target)],
                ShapeStyle::from(&BLACK.mix(0.4)).stroke_width(1),
            ))?
            .label(label)
            .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLACK.mix(0.4)));
    }
    for (name, key, color) in series {
        let points: Vec<(f64, f64)> = sweep.iter().filter_map(|runs| point(runs, key)).collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2)));
        chart.draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, 4, color.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

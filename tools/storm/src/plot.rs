//! The storm's plot: acked punches/s and refusals/s, the consumers' lag, and the slowest
//! `/healthz` answer of each second, over time, as one SVG (plotters' SVG backend).

use std::path::Path;

use plotters::prelude::*;

use crate::sample::Sample;

/// Why the plot could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("drawing the plot {path}: {message}")]
pub struct PlotError {
    path: String,
    message: String,
}

/// Draws `samples` of the run titled `title` into an SVG at `path`.
pub fn draw(path: &Path, title: &str, samples: &[Sample]) -> Result<(), PlotError> {
    let fail = |e: &dyn std::fmt::Display| PlotError {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let root = SVGBackend::new(path, (1000, 900)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let root = root
        .titled(title, ("sans-serif", 22))
        .map_err(|e| fail(&e))?;
    let panels = root.split_evenly((3, 1));
    let t_max = samples.last().map_or(1.0, |s| s.t_s).max(1.0);

    panel_rates(&panels[0], t_max, samples).map_err(|e| fail(&e))?;
    panel_lag(&panels[1], t_max, samples).map_err(|e| fail(&e))?;
    panel_health(&panels[2], t_max, samples).map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))?;
    Ok(())
}

/// Acked punches/s, refusals/s and other failures/s.
fn panel_rates<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    t_max: f64,
    samples: &[Sample],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let rate_max = samples
        .iter()
        .map(|s| s.acked_per_s.max(s.refused_per_s).max(s.failed_per_s))
        .fold(1.0_f64, f64::max);
    panel(
        area,
        "punches acked/s and requests refused/s",
        t_max,
        rate_max * 1.1,
        &[
            (
                "acked punches/s",
                &BLUE,
                samples.iter().map(|s| (s.t_s, s.acked_per_s)).collect(),
            ),
            (
                "429+503 answers/s",
                &RED,
                samples.iter().map(|s| (s.t_s, s.refused_per_s)).collect(),
            ),
            (
                "other failures/s",
                &BLACK,
                samples.iter().map(|s| (s.t_s, s.failed_per_s)).collect(),
            ),
        ],
    )
}

/// The two consumers' lag.
fn panel_lag<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    t_max: f64,
    samples: &[Sample],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let lag_max = samples
        .iter()
        .map(|s| (s.lag_raw + s.lag_checked) as f64)
        .fold(1.0_f64, f64::max);
    panel(
        area,
        "consumer lag (records)",
        t_max,
        lag_max * 1.1,
        &[
            (
                "licence-check lag",
                &MAGENTA,
                samples.iter().map(|s| (s.t_s, s.lag_raw as f64)).collect(),
            ),
            (
                "attendance lag",
                &GREEN,
                samples
                    .iter()
                    .map(|s| (s.t_s, s.lag_checked as f64))
                    .collect(),
            ),
        ],
    )
}

/// The slowest `/healthz` answer of each second.
fn panel_health<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    t_max: f64,
    samples: &[Sample],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let health_max = samples
        .iter()
        .map(|s| s.health_max_ms)
        .fold(1.0_f64, f64::max);
    panel(
        area,
        "slowest /healthz answer per second (ms)",
        t_max,
        health_max * 1.1,
        &[(
            "/healthz max ms",
            &CYAN,
            samples.iter().map(|s| (s.t_s, s.health_max_ms)).collect(),
        )],
    )
}

type Series<'a> = (&'a str, &'a RGBColor, Vec<(f64, f64)>);

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    caption: &str,
    x_max: f64,
    y_max: f64,
    series: &[Series<'_>],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("seconds since the storm started")
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for (label, color, points) in series {
        let color = **color;
        chart
            .draw_series(LineSeries::new(points.iter().copied(), color))?
            .label(*label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    Ok(())
}

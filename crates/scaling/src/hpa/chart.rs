//! The replay as a picture: utilization against the target above, replicas below.

use std::path::Path;

use plotters::prelude::*;

use super::simulate::Step;

/// Why the chart could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw {path}: {message}")]
pub struct ChartError {
    /// The file.
    pub path: String,
    /// What failed.
    pub message: String,
}

/// Draws the series labels of a panel in the chart's one legend style.
fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    chart.configure_series_labels().border_style(BLACK).background_style(WHITE.mix(0.8)).draw()
}

/// Draws `steps` as an SVG at `path`; `target` is the HPA's target on the utilization axis and
/// `unit` names that axis.
pub fn draw_svg(steps: &[Step], target: Option<f64>, unit: &str, path: &Path) -> Result<(), ChartError> {
    let fail = |message: String| ChartError { path: path.display().to_string(), message };
    let end = steps.last().map_or(1.0, |s| s.time_s).max(1.0);
    let top_utilization =
        steps.iter().map(|s| s.utilization).filter(|u| u.is_finite()).chain(target).fold(1.0f64, f64::max) * 1.15;
    let top_replicas = steps.iter().map(|s| s.replicas.max(s.desired_replicas)).max().unwrap_or(1).max(1) + 1;

    let root = SVGBackend::new(path, (960, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
    let (upper, lower) = root.split_vertically(320);

    let mut chart = ChartBuilder::on(&upper)
        .caption(format!("HPA replay: {unit}"), ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..end, 0.0..top_utilization)
        .map_err(|e| fail(e.to_string()))?;
    chart.configure_mesh().x_desc("seconds").y_desc(unit).draw().map_err(|e| fail(e.to_string()))?;
    chart
        .draw_series(LineSeries::new(
            steps.iter().filter(|s| s.utilization.is_finite()).map(|s| (s.time_s, s.utilization)),
            &BLUE,
        ))
        .map_err(|e| fail(e.to_string()))?
        .label("measured")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLUE));
    if let Some(target) = target {
        chart
            .draw_series(LineSeries::new([(0.0, target), (end, target)], RED.stroke_width(1)))
            .map_err(|e| fail(e.to_string()))?
            .label("target")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], RED));
    }
    legend(&mut chart).map_err(|e| fail(e.to_string()))?;

    let mut chart = ChartBuilder::on(&lower)
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..end, 0..top_replicas)
        .map_err(|e| fail(e.to_string()))?;
    chart.configure_mesh().x_desc("seconds").y_desc("replicas").draw().map_err(|e| fail(e.to_string()))?;
    let stepped = |value: fn(&Step) -> i32| {
        let mut points = Vec::with_capacity(steps.len() * 2);
        for (index, step) in steps.iter().enumerate() {
            if index > 0 {
                points.push((step.time_s, value(&steps[index - 1])));
            }
            points.push((step.time_s, value(step)));
        }
        points
    };
    chart
        .draw_series(LineSeries::new(stepped(|s| s.replicas), GREEN.stroke_width(2)))
        .map_err(|e| fail(e.to_string()))?
        .label("replicas")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], GREEN));
    chart
        .draw_series(LineSeries::new(stepped(|s| s.desired_replicas), MAGENTA))
        .map_err(|e| fail(e.to_string()))?
        .label("desired")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], MAGENTA));
    legend(&mut chart).map_err(|e| fail(e.to_string()))?;
    root.present().map_err(|e| fail(e.to_string()))?;
    Ok(())
}

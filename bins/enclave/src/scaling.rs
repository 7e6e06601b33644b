//! `enclave scaling simulate`: an HPA replayed over a load trace.

use std::io::Write;

use crate::cli::Output;
use crate::output::print_json;
use crate::{Failure, invalid, usage_error};

#[allow(clippy::too_many_arguments)]
pub(crate) fn simulate(
    hpa_path: &std::path::Path,
    trace_path: &std::path::Path,
    out: &std::path::Path,
    request: Option<String>,
    initial_replicas: Option<i32>,
    readiness_delay: f64,
    metric: Option<String>,
    output: Output,
) -> Result<(), Failure> {
    use enclave_scaling::hpa::{chart, simulate};
    let hpa: k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler =
        enclave_core::config::read_typed(hpa_path).map_err(|e| invalid(e, output))?;
    let trace = simulate::read_trace(trace_path).map_err(|e| usage_error(e.to_string(), output))?;
    let request = request
        .map(|text| text.parse::<enclave_core::spec::Quantity>())
        .transpose()
        .map_err(|e| usage_error(format!("--request: {e}"), output))?;
    if request.as_ref().is_some_and(|q| q.milli() <= 0) {
        return Err(usage_error("--request must be above zero".into(), output));
    }
    let options = simulate::Options { request, initial_replicas, readiness_delay: Some(readiness_delay), metric };
    let steps = simulate::simulate(&hpa, &trace, &options)
        .map_err(|e| usage_error(format!("{}: {e}", hpa_path.display()), output))?;
    std::fs::create_dir_all(out)
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("cannot create {}: {e}", out.display())))?;
    let timeline = out.join("timeline.csv");
    simulate::write_timeline(&steps, &timeline).map_err(|e| Failure::Runtime(e.into()))?;
    let chart_path = out.join("chart.svg");
    let target = simulate::target_line(&hpa, &options);
    let unit = if options.request.is_some() { "utilization (% of request)" } else { "metric value" };
    chart::draw_svg(&steps, target, unit, &chart_path).map_err(|e| Failure::Runtime(e.into()))?;
    let changes: Vec<&simulate::Step> = steps.iter().filter(|s| s.desired_replicas != s.replicas).collect();
    let peak = steps.iter().map(|s| s.desired_replicas.max(s.replicas)).max().unwrap_or(0);
    match output {
        Output::Json => print_json(&serde_json::json!({
            "timeline": timeline,
            "chart": chart_path,
            "syncs": steps.len(),
            "peak_replicas": peak,
            "changes": changes,
        })),
        Output::Text => {
            let mut stdout = anstream::stdout();
            let _ = writeln!(
                stdout,
                "{} syncs over {} s, peak {peak} replicas",
                steps.len(),
                steps.last().map_or(0.0, |s| s.time_s)
            );
            for step in changes {
                let _ = writeln!(
                    stdout,
                    "  t={:>5}s  {:>3} -> {:<3} {:<18} utilization {}",
                    step.time_s, step.replicas, step.desired_replicas, step.reason, step.utilization
                );
            }
            let _ = writeln!(stdout, "wrote {} and {}", timeline.display(), chart_path.display());
        }
    }
    Ok(())
}

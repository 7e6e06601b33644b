//! Replays an HPA over a load trace, one sync period (15 s) at a time.
//!
//! **Trace format** (CSV with a header): `time_s,total_usage` are required. `total_usage` is
//! the metric summed over all pods: millicores for a CPU target, the metric's base unit (bytes,
//! requests per second, messages) for anything else. The value holds from its row until the
//! next row (sample and hold). Optional columns:
//! - `unready_pods`: pods that exist but are not Ready at that time (crash-looping, failing
//!   probes) besides those still starting; they get no traffic.
//! - `missing_pods`: Ready pods whose metric the metrics API does not return at that time.
//!
//! **Pod model**: the load is spread evenly over Ready pods. A new pod is Ready
//! `readiness_delay` seconds after the controller creates it; scale-down removes the newest
//! pods first. Metrics are sampled at each sync with a 15 s window, so the upstream CPU rules
//! for young and unready pods apply as they would in a cluster.

use std::path::Path;

use enclave_core::spec::Quantity;
use k8s_openapi::api::autoscaling::v2::{HPAScalingRules, HorizontalPodAutoscaler, MetricSpec, MetricTarget};
use serde::Serialize;

use super::calculator::{self, Metrics, Phase, Pod, ReadyCondition, Resource, Sample, Settings, Tolerances};
use super::controller::{Behavior, Bounds, Controller, Limit, Policy, Rules, SYNC_PERIOD, Select};

/// Metric window of metrics-server samples.
const METRIC_WINDOW: f64 = 15.0;

/// Simulation settings besides the HPA and the trace.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The pod's request of the target resource; required for `Utilization` targets.
    pub request: Option<Quantity>,
    /// Replicas at time 0; defaults to `minReplicas`.
    pub initial_replicas: Option<i32>,
    /// Seconds from pod creation to Ready; defaults to 30.
    pub readiness_delay: Option<f64>,
    /// Which metric of a multi-metric HPA to replay (resource or metric name).
    pub metric: Option<String>,
}

/// One row of a trace.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TracePoint {
    /// Seconds since the start.
    pub time_s: f64,
    /// Metric summed over all pods.
    pub total_usage: f64,
    /// Pods not Ready besides starting ones.
    pub unready_pods: u32,
    /// Ready pods without a metric.
    pub missing_pods: u32,
}

/// One sync of the replay.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Step {
    /// Seconds since the start.
    pub time_s: f64,
    /// Load at this time.
    pub total_usage: f64,
    /// Pods that exist.
    pub replicas: i32,
    /// Pods that are Ready.
    pub ready_replicas: i32,
    /// Percent of requests (`Utilization` targets) or per-pod / total value in the metric's
    /// unit, as the calculator reports it.
    pub utilization: f64,
    /// The calculator's proposal, before normalization (empty when no proposal was made).
    pub proposal: Option<i32>,
    /// What the controller sets.
    pub desired_replicas: i32,
    /// What limited it.
    pub reason: &'static str,
}

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimulateError {
    /// The HPA cannot be replayed as written.
    #[error("{0}")]
    Hpa(String),
    /// The trace is malformed.
    #[error("{file}:{line}: {message}")]
    Trace {
        /// Trace file.
        file: String,
        /// 1-based line.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("cannot access {path}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// What the replay needs from the HPA's metric.
#[derive(Clone, Debug, PartialEq)]
enum Target {
    Utilization { resource: Resource, percent: i32 },
    AverageValue { resource: Option<Resource>, milli: i64 },
    Value { milli: i64 },
    TotalAverageValue { milli: i64 },
}

fn quantity_milli(
    quantity: &k8s_openapi::apimachinery::pkg::api::resource::Quantity,
    what: &str,
) -> Result<i64, SimulateError> {
    let parsed: Quantity =
        quantity.0.parse().map_err(|e: enclave_core::spec::InvalidValue| SimulateError::Hpa(format!("{what}: {e}")))?;
    i64::try_from(parsed.milli()).map_err(|_| SimulateError::Hpa(format!("{what}: {} is too large", quantity.0)))
}

/// Where a metric comes from, which decides what an `AverageValue` target means.
#[derive(Clone, Copy)]
enum Source {
    /// Resource or pods metrics: the average over pods.
    PerPod(Option<Resource>),
    /// Object or external metrics: one total, spread over the replicas.
    Total,
}

fn value_target(target: &MetricTarget, what: &str, source: Source) -> Result<Target, SimulateError> {
    let missing = |field: &str| SimulateError::Hpa(format!("{what}: {} target without {field}", target.type_));
    match (target.type_.as_str(), source) {
        ("AverageValue", Source::PerPod(resource)) => {
            let value = target.average_value.as_ref().ok_or_else(|| missing("averageValue"))?;
            Ok(Target::AverageValue { resource, milli: quantity_milli(value, what)? })
        }
        ("AverageValue", Source::Total) => {
            let value = target.average_value.as_ref().ok_or_else(|| missing("averageValue"))?;
            Ok(Target::TotalAverageValue { milli: quantity_milli(value, what)? })
        }
        ("Value", Source::Total) => {
            let value = target.value.as_ref().ok_or_else(|| missing("value"))?;
            Ok(Target::Value { milli: quantity_milli(value, what)? })
        }
        (other, _) => Err(SimulateError::Hpa(format!("{what}: target type `{other}` is not valid for this metric"))),
    }
}

fn target_of(metric: &MetricSpec) -> Result<(String, Target), SimulateError> {
    if let Some(source) = &metric.resource {
        let resource = if source.name == "cpu" { Resource::Cpu } else { Resource::Other };
        let what = format!("resource metric {}", source.name);
        let target = if source.target.type_ == "Utilization" {
            let percent = source
                .target
                .average_utilization
                .ok_or_else(|| SimulateError::Hpa(format!("{what}: Utilization target without averageUtilization")))?;
            Target::Utilization { resource, percent }
        } else {
            value_target(&source.target, &what, Source::PerPod(Some(resource)))?
        };
        return Ok((source.name.clone(), target));
    }
    if let Some(source) = &metric.pods {
        let what = format!("pods metric {}", source.metric.name);
        return Ok((source.metric.name.clone(), value_target(&source.target, &what, Source::PerPod(None))?));
    }
    if let Some(source) = &metric.object {
        let what = format!("object metric {}", source.metric.name);
        return Ok((source.metric.name.clone(), value_target(&source.target, &what, Source::Total)?));
    }
    if let Some(source) = &metric.external {
        let what = format!("external metric {}", source.metric.name);
        return Ok((source.metric.name.clone(), value_target(&source.target, &what, Source::Total)?));
    }
    if let Some(source) = &metric.container_resource {
        let resource = if source.name == "cpu" { Resource::Cpu } else { Resource::Other };
        let percent = source.target.average_utilization.ok_or_else(|| {
            SimulateError::Hpa(format!(
                "container resource metric {}: only Utilization targets are replayed",
                source.name
            ))
        })?;
        return Ok((source.name.clone(), Target::Utilization { resource, percent }));
    }
    Err(SimulateError::Hpa(format!("metric of type `{}` has no source", metric.type_)))
}

fn rules(rules: Option<&HPAScalingRules>, mut defaults: Rules) -> Result<Rules, SimulateError> {
    let Some(rules) = rules else { return Ok(defaults) };
    if let Some(window) = rules.stabilization_window_seconds {
        defaults.stabilization_window = window;
    }
    if let Some(select) = &rules.select_policy {
        defaults.select = match select.as_str() {
            "Max" => Select::Max,
            "Min" => Select::Min,
            "Disabled" => Select::Disabled,
            other => return Err(SimulateError::Hpa(format!("selectPolicy `{other}` is not Max, Min or Disabled"))),
        };
    }
    if let Some(policies) = rules.policies.as_ref().filter(|p| !p.is_empty()) {
        defaults.policies = policies
            .iter()
            .map(|policy| match policy.type_.as_str() {
                "Pods" => Ok(Policy::Pods { value: policy.value, period: policy.period_seconds }),
                "Percent" => Ok(Policy::Percent { value: policy.value, period: policy.period_seconds }),
                other => Err(SimulateError::Hpa(format!("policy type `{other}` is not Pods or Percent"))),
            })
            .collect::<Result<_, _>>()?;
    }
    if let Some(tolerance) = &rules.tolerance {
        defaults.tolerance = Some(quantity_milli(tolerance, "tolerance")? as f64 / 1000.0);
    }
    Ok(defaults)
}

/// Reads a trace CSV.
pub fn read_trace(path: &Path) -> Result<Vec<TracePoint>, SimulateError> {
    let file = path.display().to_string();
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|error| SimulateError::Trace { file: file.clone(), line: 1, message: error.to_string() })?;
    let headers = reader
        .headers()
        .map_err(|e| SimulateError::Trace { file: file.clone(), line: 1, message: e.to_string() })?
        .clone();
    let column = |name: &str| headers.iter().position(|h| h == name);
    let (Some(time), Some(usage)) = (column("time_s"), column("total_usage")) else {
        return Err(SimulateError::Trace {
            file,
            line: 1,
            message: format!(
                "the header must name `time_s` and `total_usage`, found `{}`",
                headers.iter().collect::<Vec<_>>().join(",")
            ),
        });
    };
    for name in headers.iter() {
        if !["time_s", "total_usage", "unready_pods", "missing_pods"].contains(&name) {
            return Err(SimulateError::Trace {
                file,
                line: 1,
                message: format!("unknown column `{name}`; known: time_s, total_usage, unready_pods, missing_pods"),
            });
        }
    }
    let (unready, missing) = (column("unready_pods"), column("missing_pods"));
    let mut points: Vec<TracePoint> = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| SimulateError::Trace {
            file: file.clone(),
            line: e.position().map_or(0, |p| p.line()),
            message: e.to_string(),
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let number = |index: usize, name: &str| -> Result<f64, SimulateError> {
            let text = record.get(index).unwrap_or_default();
            text.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0).ok_or_else(|| SimulateError::Trace {
                file: file.clone(),
                line,
                message: format!("{name}: `{text}` is not a non-negative number"),
            })
        };
        let count = |index: Option<usize>, name: &str| -> Result<u32, SimulateError> {
            match index {
                None => Ok(0),
                Some(index) if record.get(index).is_none_or(str::is_empty) => Ok(0),
                Some(index) => {
                    let text = record.get(index).unwrap_or_default();
                    text.parse::<u32>().map_err(|_| SimulateError::Trace {
                        file: file.clone(),
                        line,
                        message: format!("{name}: `{text}` is not a whole number"),
                    })
                }
            }
        };
        let point = TracePoint {
            time_s: number(time, "time_s")?,
            total_usage: number(usage, "total_usage")?,
            unready_pods: count(unready, "unready_pods")?,
            missing_pods: count(missing, "missing_pods")?,
        };
        if points.last().is_some_and(|previous| previous.time_s >= point.time_s) {
            return Err(SimulateError::Trace { file, line, message: "time_s must increase from row to row".into() });
        }
        points.push(point);
    }
    if points.is_empty() {
        return Err(SimulateError::Trace { file, line: 2, message: "the trace has no rows".into() });
    }
    Ok(points)
}

struct SimPod {
    name: String,
    created: f64,
    ready_at: f64,
}

/// The replayed HPA: bounds, target and tolerances, from the manifest.
struct Replay {
    bounds: Bounds,
    target: Target,
    tolerances: Tolerances,
}

fn replay_of(hpa: &HorizontalPodAutoscaler, options: &Options) -> Result<Replay, SimulateError> {
    let spec = hpa.spec.as_ref().ok_or_else(|| SimulateError::Hpa("the HPA has no spec".into()))?;
    let metrics = spec.metrics.clone().unwrap_or_default();
    let targets: Vec<(String, Target)> = metrics.iter().map(target_of).collect::<Result<_, _>>()?;
    let (_, target) = match (&options.metric, targets.len()) {
        (_, 0) => return Err(SimulateError::Hpa("the HPA has no metrics".into())),
        (None, 1) => targets[0].clone(),
        (None, _) => {
            let names: Vec<&str> = targets.iter().map(|(name, _)| name.as_str()).collect();
            return Err(SimulateError::Hpa(format!(
                "the HPA has {} metrics ({}); pick the one the trace measures with --metric",
                names.len(),
                names.join(", ")
            )));
        }
        (Some(wanted), _) => targets
            .iter()
            .find(|(name, _)| name == wanted)
            .cloned()
            .ok_or_else(|| SimulateError::Hpa(format!("the HPA has no metric `{wanted}`")))?,
    };
    let behavior = spec
        .behavior
        .as_ref()
        .map(|behavior| -> Result<Behavior, SimulateError> {
            Ok(Behavior {
                scale_up: rules(behavior.scale_up.as_ref(), Rules::default_scale_up())?,
                scale_down: rules(behavior.scale_down.as_ref(), Rules::default_scale_down())?,
            })
        })
        .transpose()?;
    let tolerances = Tolerances {
        scale_up: behavior.as_ref().and_then(|b| b.scale_up.tolerance).unwrap_or(calculator::DEFAULT_TOLERANCE),
        scale_down: behavior.as_ref().and_then(|b| b.scale_down.tolerance).unwrap_or(calculator::DEFAULT_TOLERANCE),
    };
    let bounds = Bounds { min_replicas: spec.min_replicas.unwrap_or(1), max_replicas: spec.max_replicas, behavior };
    if bounds.max_replicas < 1 || bounds.max_replicas < bounds.min_replicas {
        return Err(SimulateError::Hpa(format!(
            "maxReplicas {} is below minReplicas {}",
            bounds.max_replicas, bounds.min_replicas
        )));
    }
    if matches!(target, Target::Utilization { .. }) && options.request.is_none() {
        return Err(SimulateError::Hpa(
            "a Utilization target needs the pod's request of the resource: pass --request (e.g. 500m)".into(),
        ));
    }
    Ok(Replay { bounds, target, tolerances })
}

/// Replays `hpa` over `trace`, one sync every 15 s from 0 to the last row's time.
pub fn simulate(
    hpa: &HorizontalPodAutoscaler,
    trace: &[TracePoint],
    options: &Options,
) -> Result<Vec<Step>, SimulateError> {
    let replay = replay_of(hpa, options)?;
    let settings = Settings { tolerances: replay.tolerances, ..Settings::default() };
    let readiness_delay = options.readiness_delay.unwrap_or(30.0);
    let request_milli = options.request.as_ref().map_or(0, |q| i64::try_from(q.milli()).unwrap_or(i64::MAX));
    let initial = options.initial_replicas.unwrap_or(replay.bounds.min_replicas).max(0);
    let mut pods: Vec<SimPod> = (0..initial)
        .map(|i| SimPod { name: format!("pod-{i}"), created: -3600.0, ready_at: -3600.0 + readiness_delay })
        .collect();
    let mut next_name = initial;
    let mut controller = Controller::new();
    let end = trace.last().map_or(0.0, |p| p.time_s);
    let mut steps = Vec::new();
    let mut now = 0.0;
    while now <= end + 1e-9 {
        let point = trace.iter().rev().find(|p| p.time_s <= now).copied().unwrap_or(trace[0]);
        // Usage in milli-units: CPU traces are millicores already.
        let usage_milli = match replay.target {
            Target::Utilization { resource: Resource::Cpu, .. }
            | Target::AverageValue { resource: Some(Resource::Cpu), .. } => point.total_usage,
            _ => point.total_usage * 1000.0,
        };
        let started: Vec<&SimPod> = pods.iter().collect();
        let not_ready_extra = usize::try_from(point.unready_pods).unwrap_or(usize::MAX);
        let mut ready_flags: Vec<bool> = started.iter().map(|pod| pod.ready_at <= now).collect();
        // The trace's unready pods are taken from the oldest ready ones.
        for flag in ready_flags.iter_mut().filter(|f| **f).take(not_ready_extra) {
            *flag = false;
        }
        let ready_count = ready_flags.iter().filter(|f| **f).count();
        let per_pod = if ready_count == 0 { 0.0 } else { usage_milli / ready_count as f64 };
        let mut missing_left = usize::try_from(point.missing_pods).unwrap_or(usize::MAX);
        let mut calc_pods = Vec::with_capacity(started.len());
        let mut metrics = Metrics::new();
        for (pod, ready) in started.iter().zip(&ready_flags) {
            calc_pods.push(Pod {
                name: pod.name.clone(),
                phase: Phase::Running,
                deleting: false,
                start_time: Some(pod.created - now),
                ready: Some(ReadyCondition {
                    ready: *ready,
                    last_transition: if *ready { pod.ready_at - now } else { pod.created - now },
                }),
                request: Some(request_milli),
            });
            if *ready && missing_left > 0 {
                missing_left -= 1;
                continue;
            }
            let value = if *ready { per_pod.round() as i64 } else { 0 };
            metrics.insert(pod.name.clone(), Sample { value, timestamp: 0.0, window: METRIC_WINDOW });
        }
        let current = i32::try_from(pods.len()).unwrap_or(i32::MAX);
        let mut utilization = f64::NAN;
        let mut proposal = None;
        let decision = controller.reconcile(now, current, &replay.bounds, || {
            let result = match replay.target {
                Target::Utilization { resource, percent } => {
                    calculator::resource_utilization(current, &calc_pods, &metrics, resource, percent, &settings)
                }
                Target::AverageValue { resource, milli } => {
                    calculator::average_value(current, &calc_pods, &metrics, resource, milli, &settings)
                }
                Target::Value { milli } => {
                    calculator::value(current, usage_milli.round() as i64, milli, &calc_pods, &settings)
                }
                Target::TotalAverageValue { milli } => {
                    Ok(calculator::value_per_pod(current, usage_milli.round() as i64, milli, &settings))
                }
            };
            result.map(|p| {
                utilization = match replay.target {
                    Target::Utilization { .. } => p.utilization as f64,
                    _ => p.utilization as f64 / 1000.0,
                };
                proposal = Some(p.replicas);
                p.replicas
            })
        });
        let (desired, reason) = match decision {
            Ok(decision) => (decision.replicas, decision.limit.as_str()),
            // No usable metric this sync: upstream keeps the replicas.
            Err(_) => (current, "MetricsUnavailable"),
        };
        steps.push(Step {
            time_s: now,
            total_usage: point.total_usage,
            replicas: current,
            ready_replicas: i32::try_from(ready_count).unwrap_or(i32::MAX),
            utilization,
            proposal,
            desired_replicas: desired,
            reason: if reason == Limit::DesiredWithinRange.as_str() && desired == current {
                "NoChange"
            } else {
                reason
            },
        });
        match desired.cmp(&current) {
            std::cmp::Ordering::Greater => {
                for _ in current..desired {
                    pods.push(SimPod {
                        name: format!("pod-{next_name}"),
                        created: now,
                        ready_at: now + readiness_delay,
                    });
                    next_name += 1;
                }
            }
            std::cmp::Ordering::Less => pods.truncate(usize::try_from(desired).unwrap_or(0)),
            std::cmp::Ordering::Equal => {}
        }
        now += SYNC_PERIOD;
    }
    Ok(steps)
}

/// Writes the timeline as CSV: `time_s,total_usage,utilization,replicas,ready_replicas,proposal,desired_replicas,reason`.
pub fn write_timeline(steps: &[Step], path: &Path) -> Result<(), SimulateError> {
    let io = |source: std::io::Error| SimulateError::Io { path: path.display().to_string(), source };
    let mut writer = csv::Writer::from_path(path).map_err(|e| io(e.into()))?;
    writer
        .write_record([
            "time_s",
            "total_usage",
            "utilization",
            "replicas",
            "ready_replicas",
            "proposal",
            "desired_replicas",
            "reason",
        ])
        .map_err(|e| io(e.into()))?;
    for step in steps {
        let utilization = if step.utilization.is_nan() { String::new() } else { format!("{}", step.utilization) };
        writer
            .write_record([
                format!("{}", step.time_s),
                format!("{}", step.total_usage),
                utilization,
                step.replicas.to_string(),
                step.ready_replicas.to_string(),
                step.proposal.map(|p| p.to_string()).unwrap_or_default(),
                step.desired_replicas.to_string(),
                step.reason.to_owned(),
            ])
            .map_err(|e| io(e.into()))?;
    }
    writer.flush().map_err(io)
}

/// The target as a number on the utilization axis, for the chart.
pub fn target_line(hpa: &HorizontalPodAutoscaler, options: &Options) -> Option<f64> {
    let replay = replay_of(hpa, options).ok()?;
    Some(match replay.target {
        Target::Utilization { percent, .. } => f64::from(percent),
        Target::AverageValue { milli, .. } | Target::Value { milli } | Target::TotalAverageValue { milli } => {
            milli as f64 / 1000.0
        }
    })
}

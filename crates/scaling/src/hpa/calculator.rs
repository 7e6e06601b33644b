//! The replica calculator: from pod metrics to a replica proposal, as upstream's
//! `pkg/controller/podautoscaler/replica_calculator.go` computes it.
//!
//! Times are seconds relative to the moment of calculation (negative is the past). Quantities
//! are milli-units, as upstream's `MilliValue`.

use std::collections::{BTreeMap, BTreeSet};

/// Upstream's default `--horizontal-pod-autoscaler-tolerance`.
pub const DEFAULT_TOLERANCE: f64 = 0.1;
/// Upstream's default `--horizontal-pod-autoscaler-cpu-initialization-period` (5 minutes).
pub const CPU_INITIALIZATION_PERIOD: f64 = 300.0;
/// Upstream's default `--horizontal-pod-autoscaler-initial-readiness-delay` (30 seconds).
pub const INITIAL_READINESS_DELAY: f64 = 30.0;

/// How far the usage ratio may stray from 1 before the calculator proposes a change.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerances {
    /// Allowed ratio below 1.
    pub scale_down: f64,
    /// Allowed ratio above 1.
    pub scale_up: f64,
}

impl Default for Tolerances {
    fn default() -> Self {
        Tolerances { scale_down: DEFAULT_TOLERANCE, scale_up: DEFAULT_TOLERANCE }
    }
}

impl Tolerances {
    /// Whether `ratio` is close enough to 1 to leave the replicas alone.
    pub fn is_within(&self, ratio: f64) -> bool {
        (1.0 - self.scale_down) <= ratio && ratio <= (1.0 + self.scale_up)
    }
}

/// Calculator settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// Tolerances.
    pub tolerances: Tolerances,
    /// CPU samples of pods younger than this are scrutinised for readiness.
    pub cpu_initialization_period: f64,
    /// A pod not ready this long after start has been ready before.
    pub initial_readiness_delay: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            tolerances: Tolerances::default(),
            cpu_initialization_period: CPU_INITIALIZATION_PERIOD,
            initial_readiness_delay: INITIAL_READINESS_DELAY,
        }
    }
}

/// Pod phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Not yet running.
    Pending,
    /// Running.
    Running,
    /// Completed.
    Succeeded,
    /// Failed.
    Failed,
}

/// The `Ready` condition of a pod.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReadyCondition {
    /// Whether the pod is ready.
    pub ready: bool,
    /// When the condition last changed.
    pub last_transition: f64,
}

/// A metric sample of one pod.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Value in milli-units.
    pub value: i64,
    /// When it was taken.
    pub timestamp: f64,
    /// Over how long it was measured.
    pub window: f64,
}

/// One pod as the calculator sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Pod {
    /// Name.
    pub name: String,
    /// Phase.
    pub phase: Phase,
    /// Whether it is being deleted.
    pub deleting: bool,
    /// Start time, if started.
    pub start_time: Option<f64>,
    /// The `Ready` condition, if reported.
    pub ready: Option<ReadyCondition>,
    /// Sum of the containers' requests of the resource, milli-units; `None` when a container
    /// has no request.
    pub request: Option<i64>,
}

impl Pod {
    /// A running pod, ready since long ago, with `request`.
    pub fn running(name: impl Into<String>, request: i64) -> Self {
        Pod {
            name: name.into(),
            phase: Phase::Running,
            deleting: false,
            start_time: Some(-3600.0),
            ready: Some(ReadyCondition { ready: true, last_transition: -3600.0 }),
            request: Some(request),
        }
    }
}

/// Metric samples by pod name, as the metrics API returns them (it may include pods that no
/// longer exist).
pub type Metrics = BTreeMap<String, Sample>;

/// The resource a resource metric measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    /// CPU: readiness of young pods matters.
    Cpu,
    /// Memory or any other resource.
    Other,
}

/// A proposal and the utilization it was based on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// Proposed replicas.
    pub replicas: i32,
    /// Utilization in percent of requests (resource utilization targets), or the average
    /// value in milli-units per pod (value targets).
    pub utilization: i64,
    /// Average raw value per pod, milli-units (resource metrics).
    pub raw_average: i64,
}

/// Why no proposal could be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CalcError {
    /// No pod of the target has a usable metric.
    #[error("did not receive metrics for targeted pods (pods might be unready)")]
    NoMetrics,
    /// A pod with a metric has no request for the resource.
    #[error("missing request for pod {pod}")]
    MissingRequest {
        /// The pod.
        pod: String,
    },
    /// No pods match the target.
    #[error("no pods returned by selector while calculating replica count")]
    NoPods,
    /// The metrics API returned nothing at all.
    #[error("no metrics returned from resource metrics API")]
    EmptyMetrics,
    /// No returned metric belongs to a known pod.
    #[error("no metrics returned matched known pods")]
    NoMatchingMetrics,
}

struct Groups {
    ready: i64,
    unready: BTreeSet<String>,
    missing: BTreeSet<String>,
    ignored: BTreeSet<String>,
}

fn group(pods: &[Pod], metrics: &Metrics, resource: Option<Resource>, settings: &Settings) -> Groups {
    let mut groups = Groups { ready: 0, unready: BTreeSet::new(), missing: BTreeSet::new(), ignored: BTreeSet::new() };
    for pod in pods {
        if pod.deleting || pod.phase == Phase::Failed {
            groups.ignored.insert(pod.name.clone());
            continue;
        }
        if pod.phase == Phase::Pending {
            groups.unready.insert(pod.name.clone());
            continue;
        }
        let Some(sample) = metrics.get(&pod.name) else {
            groups.missing.insert(pod.name.clone());
            continue;
        };
        if resource == Some(Resource::Cpu) {
            let unready = match (pod.ready, pod.start_time) {
                (Some(condition), Some(start)) => {
                    if start + settings.cpu_initialization_period > 0.0 {
                        // Young pod: ignore the sample if unready, or if no full metric window
                        // has passed since the last readiness change.
                        !condition.ready || sample.timestamp < condition.last_transition + sample.window
                    } else {
                        // Older pod: ignore it only if unready and never ready.
                        !condition.ready && start + settings.initial_readiness_delay > condition.last_transition
                    }
                }
                _ => true,
            };
            if unready {
                groups.unready.insert(pod.name.clone());
                continue;
            }
        }
        groups.ready += 1;
    }
    groups
}

type Values = BTreeMap<String, i64>;

/// The usable values: every sample but those of ignored and unready pods.
fn values(metrics: &Metrics, groups: &Groups) -> Values {
    metrics
        .iter()
        .filter(|(pod, _)| !groups.unready.contains(*pod) && !groups.ignored.contains(*pod))
        .map(|(pod, sample)| (pod.clone(), sample.value))
        .collect()
}

/// Utilization ratio, integer utilization (truncated, as upstream) and raw average. Values of
/// pods without a request (metrics of pods that no longer exist) are skipped.
fn utilization_ratio(
    values: &Values,
    requests: &BTreeMap<String, i64>,
    target: i32,
) -> Result<(f64, i64, i64), CalcError> {
    let mut metrics_total = 0i64;
    let mut requests_total = 0i64;
    let mut entries = 0i64;
    for (pod, value) in values {
        if let Some(request) = requests.get(pod) {
            metrics_total = metrics_total.saturating_add(*value);
            requests_total += request;
            entries += 1;
        }
    }
    if requests_total == 0 {
        return Err(CalcError::NoMatchingMetrics);
    }
    let utilization = metrics_total * 100 / requests_total;
    Ok((utilization as f64 / f64::from(target), utilization, metrics_total / entries))
}

fn ceil_replicas(value: f64) -> i32 {
    // Upstream caps proposals above MaxInt32 rather than wrapping.
    value.ceil().clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32
}

/// Replicas for a resource metric with a `Utilization` target (percent of requests).
pub fn resource_utilization(
    current: i32,
    pods: &[Pod],
    metrics: &Metrics,
    resource: Resource,
    target_utilization: i32,
    settings: &Settings,
) -> Result<Proposal, CalcError> {
    if metrics.is_empty() {
        return Err(CalcError::EmptyMetrics);
    }
    if pods.is_empty() {
        return Err(CalcError::NoPods);
    }
    let groups = group(pods, metrics, Some(resource), settings);
    let mut metrics = values(metrics, &groups);
    if metrics.is_empty() {
        return Err(CalcError::NoMetrics);
    }
    let mut requests = BTreeMap::new();
    for pod in pods {
        let request = pod.request.ok_or_else(|| CalcError::MissingRequest { pod: pod.name.clone() })?;
        requests.insert(pod.name.clone(), request);
    }
    let (ratio, utilization, raw_average) = utilization_ratio(&metrics, &requests, target_utilization)?;
    let replicas = decide(
        current,
        ratio,
        &groups,
        &mut metrics,
        settings,
        FillIn {
            // Scale-down: missing pods count as using their request (or the target, if higher).
            scale_down: &|pod| {
                requests.get(pod).copied().unwrap_or_default() * i64::from(target_utilization.max(100)) / 100
            },
            ratio: &|values| utilization_ratio(values, &requests, target_utilization).map(|(ratio, _, _)| ratio),
        },
    )?;
    Ok(Proposal { replicas, utilization, raw_average })
}

/// How the second pass of a calculation values pods it could not measure, and rates the result.
struct FillIn<'a> {
    /// The value a missing pod is assumed to have on a scale-down.
    scale_down: &'a dyn Fn(&str) -> i64,
    /// The usage ratio of a set of values.
    ratio: &'a dyn Fn(&Values) -> Result<f64, CalcError>,
}

/// Upstream's decision once the first-pass `ratio` is known: propose from ready pods when every
/// pod was measured and ready; otherwise value missing pods (at the scale-down fallback or idle)
/// and, on a scale-up, unready pods as idle, and keep the current count when that second pass
/// is within tolerance or points the other way.
fn decide(
    current: i32,
    ratio: f64,
    groups: &Groups,
    metrics: &mut Values,
    settings: &Settings,
    fill: FillIn<'_>,
) -> Result<i32, CalcError> {
    let scale_up_with_unready = !groups.unready.is_empty() && ratio > 1.0;
    if !scale_up_with_unready && groups.missing.is_empty() {
        if settings.tolerances.is_within(ratio) {
            return Ok(current);
        }
        return Ok(ceil_replicas(ratio * groups.ready as f64));
    }
    for pod in &groups.missing {
        if ratio < 1.0 {
            metrics.insert(pod.clone(), (fill.scale_down)(pod));
        } else if ratio > 1.0 {
            metrics.insert(pod.clone(), 0);
        }
    }
    if scale_up_with_unready {
        for pod in &groups.unready {
            metrics.insert(pod.clone(), 0);
        }
    }
    let new_ratio = (fill.ratio)(metrics)?;
    if settings.tolerances.is_within(new_ratio) || (ratio < 1.0 && new_ratio > 1.0) || (ratio > 1.0 && new_ratio < 1.0)
    {
        return Ok(current);
    }
    let replicas = ceil_replicas(new_ratio * metrics.len() as f64);
    if (new_ratio < 1.0 && replicas > current) || (new_ratio > 1.0 && replicas < current) {
        return Ok(current);
    }
    Ok(replicas)
}

/// Replicas for a per-pod average value target: a resource metric with `AverageValue`
/// (pass the resource) or a `Pods` metric (pass `None`).
pub fn average_value(
    current: i32,
    pods: &[Pod],
    metrics: &Metrics,
    resource: Option<Resource>,
    target_average: i64,
    settings: &Settings,
) -> Result<Proposal, CalcError> {
    if pods.is_empty() {
        return Err(CalcError::NoPods);
    }
    let groups = group(pods, metrics, resource, settings);
    let mut metrics = values(metrics, &groups);
    if metrics.is_empty() {
        return Err(CalcError::NoMetrics);
    }
    let ratio_of = |metrics: &Values| {
        let total = metrics.values().fold(0i64, |sum, value| sum.saturating_add(*value));
        let average = total / i64::try_from(metrics.len().max(1)).unwrap_or(1);
        (average as f64 / target_average as f64, average)
    };
    let (ratio, average) = ratio_of(&metrics);
    let replicas = decide(
        current,
        ratio,
        &groups,
        &mut metrics,
        settings,
        FillIn {
            // Scale-down: missing pods count as exactly at target.
            scale_down: &|_| target_average,
            ratio: &|values| Ok(ratio_of(values).0),
        },
    )?;
    Ok(Proposal { replicas, utilization: average, raw_average: average })
}

/// Pods that count as ready for object and external value targets: running and `Ready`.
pub fn ready_pod_count(pods: &[Pod]) -> i64 {
    let count = pods.iter().filter(|pod| pod.phase == Phase::Running && pod.ready.is_some_and(|c| c.ready)).count();
    i64::try_from(count).unwrap_or(i64::MAX)
}

fn usage_ratio_replicas(current: i32, ratio: f64, ready: i64, settings: &Settings) -> Result<i32, CalcError> {
    if current == 0 {
        return Ok(ceil_replicas(ratio));
    }
    if settings.tolerances.is_within(ratio) {
        return Ok(current);
    }
    // Upstream errors only when no pod matches at all; pods that exist but are not Ready make
    // a proposal of zero, which min replicas then clamps.
    Ok(ceil_replicas(ratio * ready as f64))
}

/// Replicas for an `Object` or `External` metric with a `Value` target: the total usage
/// (sum of the external series) against the target.
pub fn value(current: i32, usage: i64, target: i64, pods: &[Pod], settings: &Settings) -> Result<Proposal, CalcError> {
    if pods.is_empty() && current != 0 {
        return Err(CalcError::NoPods);
    }
    let ratio = usage as f64 / target as f64;
    let replicas = usage_ratio_replicas(current, ratio, ready_pod_count(pods), settings)?;
    Ok(Proposal { replicas, utilization: usage, raw_average: usage })
}

/// Replicas for an `Object` or `External` metric with an `AverageValue` target: the total
/// usage spread over the current replicas.
pub fn value_per_pod(current: i32, usage: i64, target_average: i64, settings: &Settings) -> Proposal {
    let mut replicas = current;
    let ratio = usage as f64 / (target_average as f64 * f64::from(current));
    if !settings.tolerances.is_within(ratio) {
        replicas = ceil_replicas(usage as f64 / target_average as f64);
    }
    let average =
        if current == 0 { usage } else { (usage as f64 / f64::from(current)).ceil().min(i64::MAX as f64) as i64 };
    Proposal { replicas, utilization: average, raw_average: average }
}

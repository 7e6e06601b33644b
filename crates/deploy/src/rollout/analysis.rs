//! Analysis, as Argo Rollouts' AnalysisRun decides it: each measurement of a metric is judged by
//! its conditions ([`Metric::judge`]), and a metric's phase follows from its measurements and
//! its limits ([`Metric::assess`]); a run's phase is its worst metric's ([`run_phase`]).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The default `consecutiveErrorLimit` (Argo's `DefaultConsecutiveErrorLimit`).
pub const DEFAULT_CONSECUTIVE_ERROR_LIMIT: u32 = 4;

/// The phase of a measurement, a metric or a run, worst last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Nothing measured yet.
    Pending,
    /// Measuring.
    Running,
    /// Done and good.
    Successful,
    /// Neither good nor bad: the rollout pauses for a person.
    Inconclusive,
    /// Measuring failed too often in a row.
    Error,
    /// Done and bad.
    Failed,
}

impl Phase {
    /// Whether nothing more will change it.
    pub fn completed(self) -> bool {
        matches!(self, Phase::Successful | Phase::Inconclusive | Phase::Error | Phase::Failed)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Pending => "pending",
            Phase::Running => "running",
            Phase::Successful => "successful",
            Phase::Inconclusive => "inconclusive",
            Phase::Error => "error",
            Phase::Failed => "failed",
        })
    }
}

/// A comparison of the measured value with a threshold (`result < 0.05`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// `result < x`.
    Below(f64),
    /// `result <= x`.
    AtMost(f64),
    /// `result > x`.
    Above(f64),
    /// `result >= x`.
    AtLeast(f64),
}

impl Condition {
    /// Whether `value` meets it.
    pub fn holds(self, value: f64) -> bool {
        match self {
            Condition::Below(x) => value < x,
            Condition::AtMost(x) => value <= x,
            Condition::Above(x) => value > x,
            Condition::AtLeast(x) => value >= x,
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Below(x) => write!(f, "< {x}"),
            Condition::AtMost(x) => write!(f, "<= {x}"),
            Condition::Above(x) => write!(f, "> {x}"),
            Condition::AtLeast(x) => write!(f, ">= {x}"),
        }
    }
}

/// Where a metric's numbers come from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// A PromQL query whose result is one number.
    Prometheus(String),
    /// The health gate: this path of the app's readiness endpoint, called through the preview
    /// Service (which selects the new version): 1 when it answers 2xx, 0 otherwise.
    Readiness(String),
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Provider::Prometheus(query) => write!(f, "prometheus: {query}"),
            Provider::Readiness(path) => write!(f, "readiness: GET {path}"),
        }
    }
}

/// One metric of an analysis: a Prometheus query (or the health gate) measured `count` times,
/// `interval_seconds` apart, each result judged by its conditions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// Name (`error-rate`).
    pub name: String,
    /// Where its numbers come from.
    pub provider: Provider,
    /// Seconds between measurements.
    pub interval_seconds: u64,
    /// How many measurements complete the metric; `None`: until it fails or the run ends.
    pub count: Option<u32>,
    /// What a good result is.
    pub success: Option<Condition>,
    /// What a bad result is.
    pub failure: Option<Condition>,
    /// Failed measurements tolerated (the metric fails at one more).
    pub failure_limit: u32,
    /// Inconclusive measurements tolerated.
    pub inconclusive_limit: u32,
    /// Consecutive measurement errors tolerated.
    pub consecutive_error_limit: u32,
}

/// One measurement: a value, or why there is none (Prometheus unreachable, no series).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measurement {
    /// The query's result.
    Value(f64),
    /// No value: the reason.
    Error(String),
}

/// A metric's state: its measurements, judged.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricState {
    /// Each measurement with its phase, oldest first.
    pub measurements: Vec<(Measurement, Phase)>,
    /// When the latest was taken (seconds; the next is due an interval later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_at: Option<u64>,
}

impl MetricState {
    fn count(&self, phase: Phase) -> u32 {
        u32::try_from(self.measurements.iter().filter(|(_, p)| *p == phase).count()).unwrap_or(u32::MAX)
    }

    fn consecutive_errors(&self) -> u32 {
        u32::try_from(self.measurements.iter().rev().take_while(|(_, p)| *p == Phase::Error).count())
            .unwrap_or(u32::MAX)
    }
}

impl Metric {
    /// The phase of one measurement (Argo's `EvaluateResult`): with both conditions, failure
    /// first, then success, else inconclusive; with one, it alone decides; with none, success.
    pub fn judge(&self, measurement: &Measurement) -> Phase {
        let Measurement::Value(value) = measurement else { return Phase::Error };
        match (self.success, self.failure) {
            (None, None) => Phase::Successful,
            (Some(success), None) => {
                if success.holds(*value) {
                    Phase::Successful
                } else {
                    Phase::Failed
                }
            }
            (None, Some(failure)) => {
                if failure.holds(*value) {
                    Phase::Failed
                } else {
                    Phase::Successful
                }
            }
            (Some(success), Some(failure)) => {
                if failure.holds(*value) {
                    Phase::Failed
                } else if success.holds(*value) {
                    Phase::Successful
                } else {
                    Phase::Inconclusive
                }
            }
        }
    }

    /// Adds `measurement` to `state`, judged.
    pub fn record(&self, state: &mut MetricState, measurement: Measurement) {
        let phase = self.judge(&measurement);
        state.measurements.push((measurement, phase));
    }

    /// The metric's phase from its measurements (Argo's `assessMetricStatus`): errors in a row
    /// beyond their limit make it an error, else inconclusive measurements beyond theirs make it
    /// inconclusive, else failures beyond the failure limit fail it (Argo checks all three and
    /// the last that holds wins); once `count` measurements are in (errors are not counted), it
    /// succeeded. `terminating`: the run is ending, so a metric still running succeeded.
    pub fn assess(&self, state: &MetricState, terminating: bool) -> Phase {
        if state.measurements.is_empty() {
            return if terminating { Phase::Successful } else { Phase::Pending };
        }
        if state.consecutive_errors() > self.consecutive_error_limit {
            return Phase::Error;
        }
        if state.count(Phase::Inconclusive) > self.inconclusive_limit {
            return Phase::Inconclusive;
        }
        if state.count(Phase::Failed) > self.failure_limit {
            return Phase::Failed;
        }
        let counted =
            u32::try_from(state.measurements.iter().filter(|(_, p)| *p != Phase::Error).count()).unwrap_or(u32::MAX);
        if self.count.is_some_and(|count| counted >= count) || terminating {
            return Phase::Successful;
        }
        Phase::Running
    }

    /// Why the metric is in `phase`, with the measured values: `error-rate: 0.071 > 0.05 at
    /// 2 of 3 measurements (failure limit 1)`.
    pub fn explain(&self, state: &MetricState, phase: Phase) -> String {
        // Values to four decimals, trailing zeros dropped; a run of errors folds (`error x3`).
        let mut values: Vec<(String, usize)> = Vec::new();
        for (measurement, _) in &state.measurements {
            let shown = match measurement {
                Measurement::Value(v) => {
                    let fixed = format!("{v:.4}");
                    fixed.trim_end_matches('0').trim_end_matches('.').to_owned()
                }
                Measurement::Error(_) => "error".to_owned(),
            };
            match values.last_mut() {
                Some((last, count)) if *last == shown && shown == "error" => *count += 1,
                Some(_) | None => values.push((shown, 1)),
            }
        }
        let values: Vec<String> =
            values.into_iter().map(|(v, count)| if count > 1 { format!("{v} x{count}") } else { v }).collect();
        let n = state.measurements.len();
        let conditions = match (self.success, self.failure) {
            (Some(s), Some(f)) => format!("success when {s}, failure when {f}"),
            (Some(s), None) => format!("success when {s}"),
            (None, Some(f)) => format!("failure when {f}"),
            (None, None) => "no condition".to_owned(),
        };
        let detail = match phase {
            Phase::Failed => format!(
                "{} of {n} measurements failed (failure limit {})",
                state.count(Phase::Failed),
                self.failure_limit
            ),
            Phase::Inconclusive => format!(
                "{} of {n} measurements inconclusive (limit {})",
                state.count(Phase::Inconclusive),
                self.inconclusive_limit
            ),
            Phase::Error => {
                format!("{} errors in a row (limit {})", state.consecutive_errors(), self.consecutive_error_limit)
            }
            Phase::Successful => format!("{n} measurements within the limits"),
            Phase::Running | Phase::Pending => format!("{n} measurements so far"),
        };
        format!("{}: [{}] ({conditions}): {detail}", self.name, values.join(", "))
    }
}

/// The phase of a run from its metrics' phases (Argo's `assessRunStatus`): a metric that
/// failed, errored or was inconclusive ends the run, which takes the worst completed phase
/// (failed, then error, then inconclusive); otherwise it runs while any metric does, and then
/// succeeded.
pub fn run_phase(phases: &[Phase]) -> Phase {
    let ended =
        phases.iter().copied().filter(|p| matches!(p, Phase::Failed | Phase::Error | Phase::Inconclusive)).max();
    if let Some(worst) = ended {
        return worst;
    }
    if phases.iter().any(|p| !p.completed()) {
        return Phase::Running;
    }
    Phase::Successful
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(success: Option<Condition>, failure: Option<Condition>) -> Metric {
        Metric {
            name: "error-rate".into(),
            provider: Provider::Prometheus("x".into()),
            interval_seconds: 30,
            count: Some(3),
            success,
            failure,
            failure_limit: 0,
            inconclusive_limit: 0,
            consecutive_error_limit: DEFAULT_CONSECUTIVE_ERROR_LIMIT,
        }
    }

    fn state(metric: &Metric, values: &[Option<f64>]) -> MetricState {
        let mut state = MetricState::default();
        for value in values {
            let m = value.map_or(Measurement::Error("unreachable".into()), Measurement::Value);
            metric.record(&mut state, m);
        }
        state
    }

    #[test]
    fn a_measurement_is_judged_as_argo_evaluates_its_conditions() {
        let both = metric(Some(Condition::Below(0.05)), Some(Condition::Above(0.1)));
        assert_eq!(both.judge(&Measurement::Value(0.01)), Phase::Successful);
        assert_eq!(both.judge(&Measurement::Value(0.2)), Phase::Failed);
        assert_eq!(both.judge(&Measurement::Value(0.07)), Phase::Inconclusive, "between the two");
        let success = metric(Some(Condition::Below(0.05)), None);
        assert_eq!(success.judge(&Measurement::Value(0.07)), Phase::Failed);
        let failure = metric(None, Some(Condition::AtLeast(0.05)));
        assert_eq!(failure.judge(&Measurement::Value(0.01)), Phase::Successful);
        assert_eq!(failure.judge(&Measurement::Value(0.05)), Phase::Failed);
        assert_eq!(metric(None, None).judge(&Measurement::Value(9.0)), Phase::Successful);
        assert_eq!(success.judge(&Measurement::Error("down".into())), Phase::Error);
    }

    #[test]
    fn each_limit_is_crossed_at_one_more_than_it_allows() {
        let mut m = metric(Some(Condition::Below(0.05)), None);
        m.failure_limit = 1;
        assert_eq!(m.assess(&state(&m, &[Some(0.07)]), false), Phase::Running, "one failure allowed");
        assert_eq!(m.assess(&state(&m, &[Some(0.07), Some(0.08)]), false), Phase::Failed);
        assert_eq!(m.assess(&state(&m, &[Some(0.07), Some(0.01), Some(0.01)]), false), Phase::Successful);

        let mut both = metric(Some(Condition::Below(0.05)), Some(Condition::Above(0.1)));
        both.inconclusive_limit = 1;
        assert_eq!(both.assess(&state(&both, &[Some(0.07)]), false), Phase::Running);
        assert_eq!(both.assess(&state(&both, &[Some(0.07), Some(0.08)]), false), Phase::Inconclusive);

        let errors = metric(Some(Condition::Below(0.05)), None);
        let four = state(&errors, &[None, None, None, None]);
        assert_eq!(errors.assess(&four, false), Phase::Running, "four errors in a row are tolerated");
        let five = state(&errors, &[None, None, None, None, None]);
        assert_eq!(errors.assess(&five, false), Phase::Error);
        let broken = state(&errors, &[None, None, None, None, Some(0.01), None]);
        assert_eq!(
            errors.assess(&broken, false),
            Phase::Running,
            "a value resets the run of errors; errors do not count"
        );
        let mut all = metric(Some(Condition::Below(0.05)), Some(Condition::Above(0.1)));
        all.consecutive_error_limit = 0;
        let mixed = state(&all, &[Some(0.2), Some(0.07), None]);
        assert_eq!(all.assess(&mixed, false), Phase::Error, "error outranks inconclusive and failed within a metric");
    }

    #[test]
    fn a_metric_succeeds_at_its_count_or_when_the_run_ends() {
        let m = metric(Some(Condition::Below(0.05)), None);
        assert_eq!(m.assess(&MetricState::default(), false), Phase::Pending);
        assert_eq!(m.assess(&state(&m, &[Some(0.01), Some(0.02)]), false), Phase::Running);
        assert_eq!(m.assess(&state(&m, &[Some(0.01), Some(0.02), Some(0.03)]), false), Phase::Successful);
        let mut open = m.clone();
        open.count = None;
        assert_eq!(open.assess(&state(&open, &[Some(0.01)]), false), Phase::Running);
        assert_eq!(open.assess(&state(&open, &[Some(0.01)]), true), Phase::Successful);
        let explained = m.explain(&state(&m, &[Some(0.071)]), Phase::Failed);
        assert_eq!(
            explained,
            "error-rate: [0.071] (success when < 0.05): 1 of 1 measurements failed (failure limit 0)"
        );
        let noisy = state(&m, &[None, None, Some(0.630_434_782_6), Some(10.0)]);
        let explained = m.explain(&noisy, Phase::Failed);
        assert!(explained.starts_with("error-rate: [error x2, 0.6304, 10] "), "{explained}");
    }

    #[test]
    fn a_run_is_its_worst_metric_and_ends_at_the_first_failure() {
        assert_eq!(run_phase(&[Phase::Successful, Phase::Running]), Phase::Running);
        assert_eq!(run_phase(&[Phase::Failed, Phase::Running]), Phase::Failed);
        assert_eq!(run_phase(&[Phase::Error, Phase::Running]), Phase::Error);
        assert_eq!(run_phase(&[Phase::Successful, Phase::Inconclusive]), Phase::Inconclusive);
        assert_eq!(run_phase(&[Phase::Inconclusive, Phase::Running]), Phase::Inconclusive, "ends the run");
        assert_eq!(run_phase(&[Phase::Inconclusive, Phase::Error]), Phase::Error);
        assert_eq!(run_phase(&[Phase::Successful, Phase::Successful]), Phase::Successful);
        assert_eq!(run_phase(&[]), Phase::Successful);
    }
}

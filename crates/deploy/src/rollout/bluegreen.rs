//! The blue-green rollout as a pure state machine, with Argo Rollouts' `blueGreen` semantics:
//! no I/O, driven by [`Event`]s (observed readiness, analysis measurements, a person's promote
//! or abort, a new image, the clock) and answering with the [`Action`]s a driver carries out on
//! the cluster. Every decision is recorded with its reason and the measured values.
//!
//! The flow: a new revision ("green") is scaled up beside the stable one ("blue") and the
//! preview Service selects it; once it is fully available the pre-promotion analysis runs; then
//! it is promoted (at once, after `auto_promotion_seconds`, or by a person when auto-promotion
//! is off): the active Service selects green; the post-promotion analysis runs; then green is
//! stable and blue is scaled down after `scale_down_delay_seconds`. A failed or erroring
//! analysis aborts: the active Service selects blue again and green is scaled down after the
//! abort delay; an inconclusive one pauses for a person. A newer image while a rollout runs
//! replaces the one in flight (the newer wins); the stable image again rolls back at once.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::analysis::{Measurement, Metric, MetricState, Phase, run_phase};

/// Argo's default `scaleDownDelaySeconds` and the `abortScaleDownDelaySeconds` used when unset.
pub const DEFAULT_SCALE_DOWN_DELAY_SECONDS: u64 = 30;

/// How an app rolls out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Strategy {
    /// Promote without a person once green is available and analysed (`autoPromotionEnabled`).
    pub auto_promotion: bool,
    /// With auto-promotion, wait this long first (`autoPromotionSeconds`).
    pub auto_promotion_seconds: Option<u64>,
    /// How long blue stays up after the switch (`scaleDownDelaySeconds`).
    pub scale_down_delay_seconds: u64,
    /// How long green stays up after an abort: `None` 30 s, `Some(0)` never scaled down
    /// (`abortScaleDownDelaySeconds`).
    pub abort_scale_down_delay_seconds: Option<u64>,
    /// Before the switch, on green through the preview Service (`prePromotionAnalysis`).
    pub pre_promotion: Vec<Metric>,
    /// After the switch (`postPromotionAnalysis`).
    pub post_promotion: Vec<Metric>,
}

impl Default for Strategy {
    fn default() -> Self {
        Strategy {
            auto_promotion: true,
            auto_promotion_seconds: None,
            scale_down_delay_seconds: DEFAULT_SCALE_DOWN_DELAY_SECONDS,
            abort_scale_down_delay_seconds: None,
            pre_promotion: Vec::new(),
            post_promotion: Vec::new(),
        }
    }
}

/// Which analysis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Before the switch.
    PrePromotion,
    /// After it.
    PostPromotion,
}

/// Why a rollout waits for a person (or the clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "reason")]
pub enum Pause {
    /// Auto-promotion is off: `promote` switches.
    Promotion,
    /// Auto-promotion after a delay: promoted at `until` (or earlier by `promote`).
    AutoPromotion {
        /// When.
        until: u64,
    },
    /// An analysis was inconclusive: `promote` goes on, `abort` rolls back.
    Inconclusive {
        /// Which.
        stage: Stage,
    },
}

/// Where a rollout is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "phase")]
pub enum Step {
    /// One revision, stable, serving.
    Healthy,
    /// Green is scaling up; the preview Service selects it.
    Progressing,
    /// Green is being analysed.
    Analysis {
        /// Which analysis.
        stage: Stage,
    },
    /// Waiting.
    Paused {
        /// Why.
        pause: Pause,
    },
    /// Green serves and is stable; blue is scaled down at `until`.
    ScaleDownDelay {
        /// When.
        until: u64,
    },
    /// Rolled back: blue serves; green is scaled down at `scale_down_at` (`None`: nothing
    /// pending, because it was scaled down already or the abort delay is 0, which keeps it).
    Aborted {
        /// When green goes.
        scale_down_at: Option<u64>,
    },
}

/// Something observed or asked for.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// Readiness of a revision: ready pods of the wanted count.
    Available {
        /// The revision (image).
        revision: String,
        /// Ready pods.
        ready: u32,
        /// Wanted pods.
        wanted: u32,
    },
    /// A measurement of a metric of the running analysis.
    Measured {
        /// Which analysis.
        stage: Stage,
        /// The metric's name.
        metric: String,
        /// The value or error.
        measurement: Measurement,
    },
    /// A person promotes (`enclave rollout promote`).
    Promote,
    /// A person aborts (`enclave rollout abort`).
    Abort,
    /// A new revision is wanted (`enclave rollout start --image`, or `undo`: the stable one).
    Image(String),
    /// Time passed (the clock is the `now` given to [`Rollout::handle`]).
    Tick,
}

/// What the driver does on the cluster, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "action", content = "revision")]
pub enum Action {
    /// Scale this revision to the app's replicas.
    ScaleUp(String),
    /// Scale this revision to zero.
    ScaleDown(String),
    /// The preview Service selects this revision.
    Preview(String),
    /// The active Service selects this revision (traffic moves).
    Activate(String),
}

/// One decision, with why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// When (the driver's clock, seconds).
    pub at: u64,
    /// What was decided.
    pub what: String,
    /// Why, with the measured values.
    pub why: String,
}

/// A rollout's whole state (kept in the cluster by the driver, so a killed process resumes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    /// The revision that served last and is known good ("blue").
    pub stable: String,
    /// The revision wanted ("green"; the stable one when healthy).
    pub desired: String,
    /// What the active Service selects.
    pub active: String,
    /// What the preview Service selects.
    pub preview: String,
    /// Where the rollout is.
    pub step: Step,
    /// Measurements of the running (or last) analysis, per metric.
    pub analysis: BTreeMap<String, MetricState>,
    /// Every decision, oldest first.
    pub decisions: Vec<Decision>,
    /// Revisions to scale down, each at its deadline (seconds).
    #[serde(default)]
    pub scale_downs: BTreeMap<String, u64>,
    /// The revisions scaled up (what the actions so far left running).
    #[serde(default)]
    pub up: BTreeSet<String>,
    /// When the current step began (seconds): analyses measure from here.
    #[serde(default)]
    pub since: u64,
    /// The stable revision before the current one (what `undo` rolls out again).
    #[serde(default)]
    pub previous: Option<String>,
}

impl Rollout {
    /// A healthy rollout of `revision`.
    pub fn new(revision: &str) -> Self {
        Rollout {
            stable: revision.to_owned(),
            desired: revision.to_owned(),
            active: revision.to_owned(),
            preview: revision.to_owned(),
            step: Step::Healthy,
            analysis: BTreeMap::new(),
            decisions: Vec::new(),
            scale_downs: BTreeMap::new(),
            up: BTreeSet::from([revision.to_owned()]),
            since: 0,
            previous: None,
        }
    }

    /// Scales `revision` down `delay` seconds from now; `0` keeps it up (Argo's
    /// `scaleDownDelaySeconds: 0`: never). Returns the deadline.
    fn schedule_scale_down(&mut self, revision: &str, delay: u64, now: u64) -> Option<u64> {
        (delay > 0).then(|| {
            self.scale_downs.insert(revision.to_owned(), now + delay);
            now + delay
        })
    }

    fn decide(&mut self, now: u64, what: impl Into<String>, why: impl Into<String>) {
        self.decisions.push(Decision { at: now, what: what.into(), why: why.into() });
    }

    /// Handles `event` at time `now` (seconds): the new state, and what to do.
    pub fn handle(&mut self, strategy: &Strategy, event: Event, now: u64) -> Vec<Action> {
        let before = self.step.clone();
        let actions = self.decide_on(strategy, event, now);
        for action in &actions {
            match action {
                Action::ScaleUp(revision) => {
                    self.up.insert(revision.clone());
                }
                Action::ScaleDown(revision) => {
                    self.up.remove(revision);
                }
                Action::Preview(_) | Action::Activate(_) => {}
            }
        }
        if self.step != before {
            self.since = now;
        }
        actions
    }

    fn decide_on(&mut self, strategy: &Strategy, event: Event, now: u64) -> Vec<Action> {
        let mut actions = Vec::new();
        match event {
            Event::Image(revision) => self.image(strategy, revision, now, &mut actions),
            Event::Available { revision, ready, wanted } => {
                if self.step == Step::Progressing && revision == self.desired && ready >= wanted && wanted > 0 {
                    let why = format!("{ready}/{wanted} pods of {revision} ready");
                    if strategy.pre_promotion.is_empty() {
                        self.decide(now, "green available", why);
                        self.promotion(strategy, now, &mut actions);
                    } else {
                        self.decide(now, "pre-promotion analysis started", why);
                        self.analysis.clear();
                        self.step = Step::Analysis { stage: Stage::PrePromotion };
                    }
                }
            }
            Event::Measured { stage, metric, measurement } => {
                if self.step == (Step::Analysis { stage }) {
                    self.measured(strategy, stage, &metric, measurement, now, &mut actions);
                }
            }
            Event::Promote => self.promote_by_hand(strategy, now, &mut actions),
            Event::Abort => {
                if self.desired != self.stable && !matches!(self.step, Step::Aborted { .. }) {
                    self.abort(strategy, now, "aborted by hand".to_owned(), &mut actions);
                }
            }
            Event::Tick => self.tick(strategy, now, &mut actions),
        }
        actions
    }

    fn image(&mut self, strategy: &Strategy, revision: String, now: u64, actions: &mut Vec<Action>) {
        if revision == self.desired && !matches!(self.step, Step::Aborted { .. }) {
            return;
        }
        let in_flight = (self.desired != self.stable && self.desired != revision).then(|| self.desired.clone());
        let delay = strategy.scale_down_delay_seconds;
        if revision == self.stable {
            // Back to the stable revision (undo): no analysis, traffic back at once.
            if self.active != self.stable {
                actions.push(Action::Activate(self.stable.clone()));
            }
            if self.preview != self.stable {
                actions.push(Action::Preview(self.stable.clone()));
            }
            if let Some(old) = in_flight {
                let at = self.schedule_scale_down(&old, delay, now);
                let later =
                    at.map_or("kept up (scale-down delay 0)".to_owned(), |at| format!("scaled down in {} s", at - now));
                self.decide(
                    now,
                    format!("rolled back to {}", self.stable),
                    format!("{old} abandoned for the stable revision; {later}"),
                );
            }
            self.desired = self.stable.clone();
            self.active = self.stable.clone();
            self.preview = self.stable.clone();
            self.analysis.clear();
            self.step = Step::Healthy;
            return;
        }
        // A newer revision replaces the one in flight, which goes after the scale-down delay (or,
        // when it serves already, once the newer one is promoted or the rollout aborts).
        if let Some(old) = &in_flight
            && self.active != *old
        {
            self.schedule_scale_down(old, delay, now);
        }
        self.scale_downs.remove(&revision);
        actions.push(Action::ScaleUp(revision.clone()));
        actions.push(Action::Preview(revision.clone()));
        let why = match &in_flight {
            Some(old) => format!("{revision} replaces {old}, which was still rolling out"),
            None => format!("{revision} wanted; {} stable", self.stable),
        };
        self.decide(now, format!("rollout of {revision} started"), why);
        self.desired = revision.clone();
        self.preview = revision;
        self.analysis.clear();
        self.step = Step::Progressing;
    }

    /// Green is available and analysed: promote now, later, or when a person says so.
    fn promotion(&mut self, strategy: &Strategy, now: u64, actions: &mut Vec<Action>) {
        if !strategy.auto_promotion {
            self.decide(
                now,
                "paused for promotion",
                "auto-promotion is off: `enclave rollout promote` switches traffic",
            );
            self.step = Step::Paused { pause: Pause::Promotion };
        } else if let Some(seconds) = strategy.auto_promotion_seconds.filter(|s| *s > 0) {
            self.decide(now, "promotion scheduled", format!("auto-promotion after {seconds} s"));
            self.step = Step::Paused { pause: Pause::AutoPromotion { until: now + seconds } };
        } else {
            self.promote(strategy, now, actions);
        }
    }

    fn promote(&mut self, strategy: &Strategy, now: u64, actions: &mut Vec<Action>) {
        let previous = std::mem::replace(&mut self.active, self.desired.clone());
        if previous != self.stable && previous != self.desired {
            // A superseded revision that served until now.
            self.schedule_scale_down(&previous, strategy.scale_down_delay_seconds, now);
        }
        actions.push(Action::Activate(self.desired.clone()));
        self.active = self.desired.clone();
        self.decide(
            now,
            format!("promoted {}", self.desired),
            format!("the active Service selects {} (was {})", self.desired, self.stable),
        );
        if strategy.post_promotion.is_empty() {
            self.complete(strategy, now);
        } else {
            self.analysis.clear();
            self.step = Step::Analysis { stage: Stage::PostPromotion };
        }
    }

    /// Green is stable; blue goes after the delay.
    fn complete(&mut self, strategy: &Strategy, now: u64) {
        let blue = std::mem::replace(&mut self.stable, self.desired.clone());
        self.previous = Some(blue.clone());
        match self.schedule_scale_down(&blue, strategy.scale_down_delay_seconds, now) {
            Some(until) => {
                let why = format!("{blue} scaled down in {} s", strategy.scale_down_delay_seconds);
                self.decide(now, format!("{} stable", self.desired), why);
                self.step = Step::ScaleDownDelay { until };
            }
            None => {
                self.decide(now, format!("{} stable", self.desired), format!("{blue} kept up (scale-down delay 0)"));
                self.preview = self.stable.clone();
                self.step = Step::Healthy;
            }
        }
    }

    fn promote_by_hand(&mut self, strategy: &Strategy, now: u64, actions: &mut Vec<Action>) {
        match &self.step {
            Step::Paused { pause: Pause::Inconclusive { stage } } => {
                // As Argo: a promote after an inconclusive analysis runs it again.
                let stage = *stage;
                self.decide(
                    now,
                    format!("{} analysis restarted", stage_name(stage)),
                    "`promote` after an inconclusive analysis",
                );
                self.analysis.clear();
                self.step = Step::Analysis { stage };
            }
            Step::Paused { .. } => {
                self.decide(now, "promoted by hand", "the pause ended by `promote`");
                self.promote(strategy, now, actions);
            }
            Step::ScaleDownDelay { .. } => {
                // Nothing waits for a promotion: the delay runs its course.
                self.decide(
                    now,
                    "promote ignored",
                    "already promoted; the previous revision is scaled down after its delay",
                );
            }
            Step::Healthy | Step::Progressing | Step::Analysis { .. } | Step::Aborted { .. } => {
                self.decide(now, "promote ignored", "nothing waits for a promotion");
            }
        }
    }

    fn measured(
        &mut self,
        strategy: &Strategy,
        stage: Stage,
        name: &str,
        measurement: Measurement,
        now: u64,
        actions: &mut Vec<Action>,
    ) {
        let metrics = match stage {
            Stage::PrePromotion => &strategy.pre_promotion,
            Stage::PostPromotion => &strategy.post_promotion,
        };
        let Some(metric) = metrics.iter().find(|m| m.name == name) else { return };
        let state = self.analysis.entry(name.to_owned()).or_default();
        metric.record(state, measurement);
        state.last_at = Some(now);
        let phases: Vec<(Phase, String)> = metrics
            .iter()
            .map(|m| {
                let state = self.analysis.get(&m.name).cloned().unwrap_or_default();
                let phase = m.assess(&state, false);
                (phase, m.explain(&state, phase))
            })
            .collect();
        let run = run_phase(&phases.iter().map(|(p, _)| *p).collect::<Vec<_>>());
        let worst = phases.iter().filter(|(p, _)| *p == run).map(|(_, why)| why.clone()).collect::<Vec<_>>().join("; ");
        match run {
            Phase::Pending | Phase::Running => {}
            Phase::Successful => {
                self.decide(now, format!("{} analysis successful", stage_name(stage)), worst);
                match stage {
                    Stage::PrePromotion => self.promotion(strategy, now, actions),
                    Stage::PostPromotion => self.complete(strategy, now),
                }
            }
            Phase::Inconclusive => {
                self.decide(now, format!("paused: {} analysis inconclusive", stage_name(stage)), worst);
                self.step = Step::Paused { pause: Pause::Inconclusive { stage } };
            }
            Phase::Failed | Phase::Error => {
                self.abort(strategy, now, format!("{} analysis {run}: {worst}", stage_name(stage)), actions);
            }
        }
    }

    fn abort(&mut self, strategy: &Strategy, now: u64, why: String, actions: &mut Vec<Action>) {
        if self.active != self.stable {
            let previous = std::mem::replace(&mut self.active, self.stable.clone());
            actions.push(Action::Activate(self.stable.clone()));
            if previous != self.desired {
                self.schedule_scale_down(&previous, strategy.scale_down_delay_seconds, now);
            }
        }
        // The preview Service keeps selecting green (as Argo's does), for a look at what failed.
        let delay = strategy.abort_scale_down_delay_seconds.unwrap_or(DEFAULT_SCALE_DOWN_DELAY_SECONDS);
        let desired = self.desired.clone();
        let scale_down_at = self.schedule_scale_down(&desired, delay, now);
        let later =
            scale_down_at.map_or("kept up (abort delay 0)".to_owned(), |at| format!("scaled down in {} s", at - now));
        self.decide(now, format!("rollback to {}", self.stable), format!("{why}; {} {later}", self.desired));
        self.step = Step::Aborted { scale_down_at };
    }

    fn tick(&mut self, strategy: &Strategy, now: u64, actions: &mut Vec<Action>) {
        let due: Vec<String> = self.scale_downs.iter().filter(|(_, at)| **at <= now).map(|(r, _)| r.clone()).collect();
        for revision in due {
            self.scale_downs.remove(&revision);
            actions.push(Action::ScaleDown(revision.clone()));
            self.decide(now, format!("{revision} scaled down"), "its scale-down delay ended");
        }
        match self.step.clone() {
            Step::Paused { pause: Pause::AutoPromotion { until } } if now >= until => {
                self.decide(
                    now,
                    "auto-promotion",
                    format!("its delay of {} s ended", strategy.auto_promotion_seconds.unwrap_or(0)),
                );
                self.promote(strategy, now, actions);
            }
            Step::ScaleDownDelay { until } if now >= until => {
                self.preview = self.stable.clone();
                self.step = Step::Healthy;
            }
            Step::Aborted { scale_down_at: Some(at) } if now >= at => {
                self.step = Step::Aborted { scale_down_at: None };
            }
            // Nothing else waits on the clock (scale-downs, done above, aside).
            Step::Paused { pause: Pause::AutoPromotion { .. } | Pause::Promotion | Pause::Inconclusive { .. } }
            | Step::ScaleDownDelay { .. }
            | Step::Aborted { .. }
            | Step::Healthy
            | Step::Progressing
            | Step::Analysis { .. } => {}
        }
    }
}

fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::PrePromotion => "pre-promotion",
        Stage::PostPromotion => "post-promotion",
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(stage_name(*self))
    }
}

#[cfg(test)]
mod tests {
    use super::super::analysis::{Condition, DEFAULT_CONSECUTIVE_ERROR_LIMIT, Provider};
    use super::*;

    fn error_rate(failure_limit: u32) -> Metric {
        Metric {
            name: "error-rate".into(),
            provider: Provider::Prometheus("sum(rate(errors[1m])) / sum(rate(requests[1m]))".into()),
            interval_seconds: 30,
            count: Some(3),
            success: Some(Condition::AtMost(0.05)),
            failure: None,
            failure_limit,
            inconclusive_limit: 0,
            consecutive_error_limit: DEFAULT_CONSECUTIVE_ERROR_LIMIT,
        }
    }

    fn available(rollout: &mut Rollout, strategy: &Strategy, revision: &str, now: u64) -> Vec<Action> {
        rollout.handle(strategy, Event::Available { revision: revision.into(), ready: 3, wanted: 3 }, now)
    }

    fn measure(rollout: &mut Rollout, strategy: &Strategy, stage: Stage, value: f64, now: u64) -> Vec<Action> {
        let event = Event::Measured { stage, metric: "error-rate".into(), measurement: Measurement::Value(value) };
        rollout.handle(strategy, event, now)
    }

    fn activate(revision: &str) -> Action {
        Action::Activate(revision.into())
    }

    #[test]
    fn a_healthy_green_is_previewed_analysed_promoted_and_blue_goes_after_the_delay() {
        let strategy =
            Strategy { pre_promotion: vec![error_rate(0)], post_promotion: vec![error_rate(0)], ..Strategy::default() };
        let mut rollout = Rollout::new("v1");
        let started = rollout.handle(&strategy, Event::Image("v2".into()), 0);
        assert_eq!(started, [Action::ScaleUp("v2".into()), Action::Preview("v2".into())]);
        assert_eq!((rollout.active.as_str(), rollout.step.clone()), ("v1", Step::Progressing));
        // Not all pods ready: nothing happens.
        assert!(
            rollout.handle(&strategy, Event::Available { revision: "v2".into(), ready: 2, wanted: 3 }, 5).is_empty()
        );
        assert!(available(&mut rollout, &strategy, "v2", 10).is_empty());
        assert_eq!(rollout.step, Step::Analysis { stage: Stage::PrePromotion });
        assert!(measure(&mut rollout, &strategy, Stage::PrePromotion, 0.01, 40).is_empty());
        assert!(measure(&mut rollout, &strategy, Stage::PrePromotion, 0.02, 70).is_empty());
        assert_eq!(measure(&mut rollout, &strategy, Stage::PrePromotion, 0.0, 100), [activate("v2")]);
        assert_eq!(rollout.step, Step::Analysis { stage: Stage::PostPromotion });
        for (i, value) in [0.01, 0.01, 0.03].into_iter().enumerate() {
            assert!(measure(&mut rollout, &strategy, Stage::PostPromotion, value, 130 + 30 * i as u64).is_empty());
        }
        assert_eq!((rollout.stable.as_str(), rollout.step.clone()), ("v2", Step::ScaleDownDelay { until: 220 }));
        assert!(rollout.handle(&strategy, Event::Tick, 219).is_empty(), "blue stays for its 30 s");
        assert_eq!(rollout.handle(&strategy, Event::Tick, 220), [Action::ScaleDown("v1".into())]);
        assert_eq!(rollout.step, Step::Healthy);
        assert_eq!((rollout.active.as_str(), rollout.preview.as_str()), ("v2", "v2"));
    }

    #[test]
    fn the_state_tracks_what_runs_when_each_step_began_and_what_undo_goes_back_to() {
        let strategy = Strategy { pre_promotion: vec![error_rate(0)], ..Strategy::default() };
        let mut rollout = Rollout::new("v1");
        assert_eq!(rollout.up.iter().collect::<Vec<_>>(), ["v1"]);
        rollout.handle(&strategy, Event::Image("v2".into()), 7);
        assert_eq!((rollout.up.len(), rollout.since), (2, 7), "green scaled up beside blue");
        available(&mut rollout, &strategy, "v2", 12);
        assert_eq!(rollout.since, 12, "the analysis measures from when it began");
        assert!(rollout.handle(&strategy, Event::Tick, 13).is_empty());
        assert_eq!(rollout.since, 12, "a tick that changes nothing keeps the step's start");
        for now in [20, 21] {
            measure(&mut rollout, &strategy, Stage::PrePromotion, 0.0, now);
            assert_eq!(rollout.analysis["error-rate"].last_at, Some(now));
        }
        measure(&mut rollout, &strategy, Stage::PrePromotion, 0.0, 22);
        assert_eq!((rollout.previous.as_deref(), rollout.stable.as_str()), (Some("v1"), "v2"));
        rollout.handle(&strategy, Event::Tick, 52);
        assert_eq!(rollout.up.iter().collect::<Vec<_>>(), ["v2"], "blue went after its delay");
        let json = serde_json::to_string(&rollout).expect("serialisable");
        assert_eq!(serde_json::from_str::<Rollout>(&json).expect("readable"), rollout, "resumable from the cluster");
    }

    #[test]
    fn a_failing_pre_promotion_analysis_never_sends_traffic_to_green() {
        let strategy = Strategy { pre_promotion: vec![error_rate(1)], ..Strategy::default() };
        let mut rollout = Rollout::new("v1");
        rollout.handle(&strategy, Event::Image("v2".into()), 0);
        available(&mut rollout, &strategy, "v2", 10);
        assert!(measure(&mut rollout, &strategy, Stage::PrePromotion, 0.071, 40).is_empty(), "one failure allowed");
        let actions = measure(&mut rollout, &strategy, Stage::PrePromotion, 0.09, 70);
        assert!(actions.is_empty(), "the active Service never left v1; the preview keeps v2 for a look");
        assert_eq!(rollout.step, Step::Aborted { scale_down_at: Some(100) });
        let why = &rollout.decisions.last().expect("decided").why;
        assert!(why.contains("0.071, 0.09") && why.contains("2 of 2 measurements failed (failure limit 1)"), "{why}");
        assert_eq!(rollout.handle(&strategy, Event::Tick, 100), [Action::ScaleDown("v2".into())]);
    }

    #[test]
    fn a_failing_post_promotion_analysis_rolls_traffic_back_to_blue() {
        let strategy = Strategy {
            post_promotion: vec![error_rate(0)],
            abort_scale_down_delay_seconds: Some(0),
            ..Strategy::default()
        };
        let mut rollout = Rollout::new("v1");
        rollout.handle(&strategy, Event::Image("v2".into()), 0);
        assert_eq!(available(&mut rollout, &strategy, "v2", 10), [activate("v2")], "no pre-promotion analysis");
        let actions = measure(&mut rollout, &strategy, Stage::PostPromotion, 0.2, 40);
        assert_eq!(actions, [activate("v1")]);
        assert_eq!(rollout.step, Step::Aborted { scale_down_at: None }, "abort delay 0 keeps green up");
        assert!(rollout.handle(&strategy, Event::Tick, 10_000).is_empty());
        assert_eq!(rollout.stable, "v1");
    }

    #[test]
    fn errors_beyond_the_limit_abort_and_inconclusive_pauses_for_a_person() {
        let strategy = Strategy { pre_promotion: vec![error_rate(0)], ..Strategy::default() };
        let mut rollout = Rollout::new("v1");
        rollout.handle(&strategy, Event::Image("v2".into()), 0);
        available(&mut rollout, &strategy, "v2", 10);
        for i in 0..5 {
            let event = Event::Measured {
                stage: Stage::PrePromotion,
                metric: "error-rate".into(),
                measurement: Measurement::Error("prometheus down".into()),
            };
            rollout.handle(&strategy, event, 40 + i);
        }
        assert!(matches!(rollout.step, Step::Aborted { .. }), "five errors in a row: {:?}", rollout.step);

        let mut both = error_rate(0);
        both.failure = Some(Condition::Above(0.1));
        let strategy = Strategy { pre_promotion: vec![both], ..Strategy::default() };
        let mut rollout = Rollout::new("v1");
        rollout.handle(&strategy, Event::Image("v2".into()), 0);
        available(&mut rollout, &strategy, "v2", 10);
        assert!(measure(&mut rollout, &strategy, Stage::PrePromotion, 0.07, 40).is_empty());
        assert_eq!(rollout.step, Step::Paused { pause: Pause::Inconclusive { stage: Stage::PrePromotion } });
        assert!(rollout.handle(&strategy, Event::Promote, 50).is_empty());
        assert_eq!(rollout.step, Step::Analysis { stage: Stage::PrePromotion }, "promote runs the analysis again");
        assert!(measure(&mut rollout, &strategy, Stage::PrePromotion, 0.01, 80).is_empty());
        assert!(measure(&mut rollout, &strategy, Stage::PrePromotion, 0.01, 110).is_empty());
        assert_eq!(measure(&mut rollout, &strategy, Stage::PrePromotion, 0.01, 140), [activate("v2")]);
    }

    #[test]
    fn promotion_waits_for_a_person_or_the_auto_promotion_delay() {
        let manual = Strategy { auto_promotion: false, ..Strategy::default() };
        let mut rollout = Rollout::new("v1");
        rollout.handle(&manual, Event::Image("v2".into()), 0);
        assert!(available(&mut rollout, &manual, "v2", 10).is_empty());
        assert!(rollout.handle(&manual, Event::Tick, 1_000).is_empty(), "never on its own");
        assert_eq!(rollout.handle(&manual, Event::Promote, 1_001), [activate("v2")]);

        let timed = Strategy { auto_promotion_seconds: Some(60), ..Strategy::default() };
        let mut rollout = Rollout::new("v1");
        rollout.handle(&timed, Event::Image("v2".into()), 0);
        available(&mut rollout, &timed, "v2", 10);
        assert!(rollout.handle(&timed, Event::Tick, 69).is_empty());
        assert_eq!(rollout.handle(&timed, Event::Tick, 70), [activate("v2")]);
    }

    #[test]
    fn abort_during_analysis_and_promote_during_the_scale_down_delay() {
        let strategy = Strategy { post_promotion: vec![error_rate(0)], ..Strategy::default() };
        let mut rollout = Rollout::new("v1");
        rollout.handle(&strategy, Event::Image("v2".into()), 0);
        available(&mut rollout, &strategy, "v2", 10);
        measure(&mut rollout, &strategy, Stage::PostPromotion, 0.01, 40);
        let aborted = rollout.handle(&strategy, Event::Abort, 50);
        assert_eq!(aborted, [activate("v1")]);
        assert_eq!(rollout.step, Step::Aborted { scale_down_at: Some(80) }, "the default abort delay is 30 s");
        assert_eq!(rollout.handle(&strategy, Event::Tick, 80), [Action::ScaleDown("v2".into())]);
        assert!(measure(&mut rollout, &strategy, Stage::PostPromotion, 0.01, 60).is_empty(), "the analysis stopped");
        assert!(rollout.handle(&strategy, Event::Abort, 81).is_empty(), "nothing left to abort");
        // Retry: the same image again after an abort.
        let retried = rollout.handle(&strategy, Event::Image("v2".into()), 90);
        assert_eq!(retried, [Action::ScaleUp("v2".into()), Action::Preview("v2".into())]);

        let plain = Strategy::default();
        let mut rollout = Rollout::new("v1");
        rollout.handle(&plain, Event::Image("v2".into()), 0);
        available(&mut rollout, &plain, "v2", 10);
        assert_eq!(rollout.step, Step::ScaleDownDelay { until: 40 });
        assert!(rollout.handle(&plain, Event::Promote, 20).is_empty(), "a promote does not cut the delay short");
        assert_eq!(rollout.step, Step::ScaleDownDelay { until: 40 });
        assert_eq!(rollout.handle(&plain, Event::Tick, 40), [Action::ScaleDown("v1".into())]);
    }

    #[test]
    fn a_newer_image_replaces_the_one_in_flight_and_the_stable_one_rolls_back_at_once() {
        let strategy = Strategy { pre_promotion: vec![error_rate(0)], ..Strategy::default() };
        let mut rollout = Rollout::new("v1");
        rollout.handle(&strategy, Event::Image("v2".into()), 0);
        available(&mut rollout, &strategy, "v2", 10);
        let replaced = rollout.handle(&strategy, Event::Image("v3".into()), 20);
        assert_eq!(replaced, [Action::ScaleUp("v3".into()), Action::Preview("v3".into())]);
        assert_eq!(rollout.scale_downs.get("v2"), Some(&50), "the superseded one goes after the delay");
        assert_eq!((rollout.desired.as_str(), rollout.step.clone()), ("v3", Step::Progressing));
        assert!(rollout.analysis.is_empty(), "v2's measurements do not count for v3");
        assert!(available(&mut rollout, &strategy, "v2", 25).is_empty(), "v2's readiness no longer matters");
        let back = rollout.handle(&strategy, Event::Image("v1".into()), 30);
        assert_eq!(back, [Action::Preview("v1".into())]);
        assert_eq!(rollout.step, Step::Healthy);
        let mut gone = rollout.handle(&strategy, Event::Tick, 60);
        gone.sort_by_key(|a| format!("{a:?}"));
        assert_eq!(gone, [Action::ScaleDown("v2".into()), Action::ScaleDown("v3".into())]);

        // A promoted but unconfirmed revision keeps serving until the newer one is promoted.
        let post = Strategy { post_promotion: vec![error_rate(0)], ..Strategy::default() };
        let mut rollout = Rollout::new("v1");
        rollout.handle(&post, Event::Image("v2".into()), 0);
        available(&mut rollout, &post, "v2", 10);
        let replaced = rollout.handle(&post, Event::Image("v3".into()), 20);
        assert_eq!(replaced, [Action::ScaleUp("v3".into()), Action::Preview("v3".into())]);
        assert_eq!(rollout.active, "v2");
        assert_eq!(available(&mut rollout, &post, "v3", 30), [activate("v3")]);
        assert_eq!(rollout.scale_downs.get("v2"), Some(&60), "v2 goes once v3 serves");
    }

    #[test]
    fn the_state_survives_a_round_trip_through_json_so_a_killed_driver_resumes() {
        let strategy = Strategy { pre_promotion: vec![error_rate(0)], ..Strategy::default() };
        let mut rollout = Rollout::new("v1");
        rollout.handle(&strategy, Event::Image("v2".into()), 0);
        available(&mut rollout, &strategy, "v2", 10);
        measure(&mut rollout, &strategy, Stage::PrePromotion, 0.01, 40);
        let saved = serde_json::to_string(&rollout).expect("json");
        let mut resumed: Rollout = serde_json::from_str(&saved).expect("parsed");
        assert_eq!(resumed, rollout);
        measure(&mut resumed, &strategy, Stage::PrePromotion, 0.01, 70);
        assert_eq!(measure(&mut resumed, &strategy, Stage::PrePromotion, 0.01, 100), [activate("v2")]);
    }
}

//! The horizontal controller's normalization: stabilization windows, rate limits and min/max
//! clamping, as upstream's `pkg/controller/podautoscaler/horizontal.go` applies them to a
//! replica proposal. Times are absolute seconds on the caller's clock.

/// Upstream's `--horizontal-pod-autoscaler-downscale-stabilization` default (5 minutes).
pub const DOWNSCALE_STABILIZATION_WINDOW: f64 = 300.0;
/// Upstream's sync period (15 seconds).
pub const SYNC_PERIOD: f64 = 15.0;

/// Why the normalized replicas are what they are (upstream's `ScalingLimited` reasons).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// Nothing limited the proposal.
    DesiredWithinRange,
    /// Clamped up to `minReplicas`.
    TooFewReplicas,
    /// Clamped down to `maxReplicas`.
    TooManyReplicas,
    /// Held back by the scale-up rate.
    ScaleUpLimit,
    /// Held back by the scale-down rate.
    ScaleDownLimit,
}

impl Limit {
    /// Upstream's reason string.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::DesiredWithinRange => "DesiredWithinRange",
            Limit::TooFewReplicas => "TooFewReplicas",
            Limit::TooManyReplicas => "TooManyReplicas",
            Limit::ScaleUpLimit => "ScaleUpLimit",
            Limit::ScaleDownLimit => "ScaleDownLimit",
        }
    }
}

/// `selectPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Select {
    /// The largest change.
    Max,
    /// The smallest change.
    Min,
    /// No change in this direction.
    Disabled,
}

/// A rate-limit policy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Policy {
    /// At most this many pods per period.
    Pods {
        /// Pods.
        value: i32,
        /// Seconds.
        period: i32,
    },
    /// At most this percent of the replicas at the start of the period.
    Percent {
        /// Percent.
        value: i32,
        /// Seconds.
        period: i32,
    },
}

impl Policy {
    fn period(&self) -> i32 {
        match self {
            Policy::Pods { period, .. } | Policy::Percent { period, .. } => *period,
        }
    }
}

/// Rules for one direction, with upstream defaults filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct Rules {
    /// Stabilization window, seconds.
    pub stabilization_window: i32,
    /// Policy selection.
    pub select: Select,
    /// Policies.
    pub policies: Vec<Policy>,
    /// Tolerance for this direction, when the HPA sets one.
    pub tolerance: Option<f64>,
}

impl Rules {
    /// Upstream's `GenerateHPAScaleUpRules(nil)`: no window, max of 4 pods and 100% per 15 s.
    pub fn default_scale_up() -> Self {
        Rules {
            stabilization_window: 0,
            select: Select::Max,
            policies: vec![Policy::Pods { value: 4, period: 15 }, Policy::Percent { value: 100, period: 15 }],
            tolerance: None,
        }
    }

    /// Upstream's `GenerateHPAScaleDownRules(nil)` with the controller's 300 s window: 100% per
    /// 15 s.
    pub fn default_scale_down() -> Self {
        Rules {
            stabilization_window: 300,
            select: Select::Max,
            policies: vec![Policy::Percent { value: 100, period: 15 }],
            tolerance: None,
        }
    }

    fn longest_period(&self) -> i32 {
        self.policies.iter().map(Policy::period).max().unwrap_or(0)
    }
}

/// `behavior`, both directions, defaults filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct Behavior {
    /// Scale-up rules.
    pub scale_up: Rules,
    /// Scale-down rules.
    pub scale_down: Rules,
}

impl Default for Behavior {
    fn default() -> Self {
        Behavior { scale_up: Rules::default_scale_up(), scale_down: Rules::default_scale_down() }
    }
}

/// What the controller needs from an HPA spec.
#[derive(Clone, Debug, PartialEq)]
pub struct Bounds {
    /// `minReplicas` (upstream defaults it to 1).
    pub min_replicas: i32,
    /// `maxReplicas`.
    pub max_replicas: i32,
    /// `behavior`; `None` takes the legacy path.
    pub behavior: Option<Behavior>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Recommendation {
    replicas: i32,
    at: f64,
}

/// A past scale event.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScaleEvent {
    /// Replicas added (scale-up list) or removed (scale-down list).
    pub change: i32,
    /// When.
    pub at: f64,
    /// Older than the longest policy period when last checked; its slot may be reused.
    pub outdated: bool,
}

/// The controller's memory for one HPA.
#[derive(Clone, Debug, PartialEq)]
pub struct Controller {
    /// The legacy downscale stabilization window, seconds.
    pub downscale_window: f64,
    recommendations: Option<Vec<Recommendation>>,
    /// Scale-up events.
    pub scale_up_events: Vec<ScaleEvent>,
    /// Scale-down events.
    pub scale_down_events: Vec<ScaleEvent>,
}

impl Default for Controller {
    fn default() -> Self {
        Controller {
            downscale_window: DOWNSCALE_STABILIZATION_WINDOW,
            recommendations: None,
            scale_up_events: Vec::new(),
            scale_down_events: Vec::new(),
        }
    }
}

/// The outcome of one reconcile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Replicas the controller sets.
    pub replicas: i32,
    /// What limited it.
    pub limit: Limit,
    /// The stabilized recommendation before rate limits and clamping.
    pub stabilized: i32,
}

/// Upstream's legacy scale-up cap: `max(2 * current, 4)`.
pub fn legacy_scale_up_limit(current: i32) -> i32 {
    (2.0 * f64::from(current)).max(4.0) as i32
}

/// Upstream's `convertDesiredReplicasWithRules` (no `behavior`).
pub fn convert_with_rules(current: i32, desired: i32, min: i32, max: i32) -> (i32, Limit) {
    let scale_up_limit = legacy_scale_up_limit(current);
    let (maximum, limiting) =
        if max > scale_up_limit { (scale_up_limit, Limit::ScaleUpLimit) } else { (max, Limit::TooManyReplicas) };
    if desired < min {
        (min, Limit::TooFewReplicas)
    } else if desired > maximum {
        (maximum, limiting)
    } else {
        (desired, Limit::DesiredWithinRange)
    }
}

/// Sum of changes of events strictly after `now - period`.
fn change_in_period(now: f64, period: i32, events: &[ScaleEvent]) -> i32 {
    let cutoff = now - f64::from(period);
    events.iter().filter(|event| event.at > cutoff).map(|event| event.change).sum()
}

/// Upstream's `calculateScaleUpLimitWithScalingRules`.
pub fn scale_up_limit(now: f64, current: i32, up: &[ScaleEvent], down: &[ScaleEvent], rules: &Rules) -> i32 {
    let (mut result, pick): (i32, fn(i32, i32) -> i32) = match rules.select {
        Select::Disabled => return current,
        Select::Min => (i32::MAX, std::cmp::min),
        Select::Max => (i32::MIN, std::cmp::max),
    };
    for policy in &rules.policies {
        let start = current - change_in_period(now, policy.period(), up) + change_in_period(now, policy.period(), down);
        let proposed = match policy {
            Policy::Pods { value, .. } => start + value,
            Policy::Percent { value, .. } => (f64::from(start) * (1.0 + f64::from(*value) / 100.0)).ceil() as i32,
        };
        result = pick(result, proposed);
    }
    result
}

/// Upstream's `calculateScaleDownLimitWithBehaviors`.
pub fn scale_down_limit(now: f64, current: i32, up: &[ScaleEvent], down: &[ScaleEvent], rules: &Rules) -> i32 {
    let (mut result, pick): (i32, fn(i32, i32) -> i32) = match rules.select {
        Select::Disabled => return current,
        Select::Min => (i32::MIN, std::cmp::max),
        Select::Max => (i32::MAX, std::cmp::min),
    };
    for policy in &rules.policies {
        let start = current - change_in_period(now, policy.period(), up) + change_in_period(now, policy.period(), down);
        let proposed = match policy {
            Policy::Pods { value, .. } => start - value,
            // Truncation toward zero, as Go's int32 conversion.
            Policy::Percent { value, .. } => (f64::from(start) * (1.0 - f64::from(*value) / 100.0)) as i32,
        };
        result = pick(result, proposed);
    }
    result
}

impl Controller {
    /// A controller with no history yet.
    pub fn new() -> Self {
        Controller::default()
    }

    /// Seeds the recommendation history with `(replicas, at)` values, for tests and replays.
    pub fn with_recommendations(mut self, history: &[(i32, f64)]) -> Self {
        self.recommendations = Some(history.iter().map(|&(replicas, at)| Recommendation { replicas, at }).collect());
        self
    }

    /// Seeds the scale events remembered for each direction.
    pub fn with_events(mut self, scale_up: Vec<ScaleEvent>, scale_down: Vec<ScaleEvent>) -> Self {
        self.scale_up_events = scale_up;
        self.scale_down_events = scale_down;
        self
    }

    /// Recommendation values currently remembered, oldest slot first.
    pub fn recommendations(&self) -> Vec<i32> {
        self.recommendations.iter().flatten().map(|r| r.replicas).collect()
    }

    fn history(&mut self) -> &mut Vec<Recommendation> {
        self.recommendations.get_or_insert_with(Vec::new)
    }

    /// Upstream's `stabilizeRecommendation` (legacy path): the highest recommendation of the
    /// downscale window, counting records exactly at the window's edge.
    pub fn stabilize_legacy(&mut self, now: f64, prenormalized: i32) -> i32 {
        let cutoff = now - self.downscale_window;
        let mut highest = prenormalized;
        let mut old_slot = None;
        for (index, record) in self.history().iter().enumerate() {
            if record.at < cutoff {
                old_slot = Some(index);
            } else if record.replicas > highest {
                highest = record.replicas;
            }
        }
        let record = Recommendation { replicas: prenormalized, at: now };
        match old_slot {
            Some(index) => self.history()[index] = record,
            None => self.history().push(record),
        }
        highest
    }

    /// Upstream's `stabilizeRecommendationWithBehaviors`: the current replicas clamped between
    /// the lowest recommendation of the scale-up window and the highest of the scale-down window
    /// (records strictly inside the windows).
    pub fn stabilize_with_behavior(
        &mut self,
        now: f64,
        current: i32,
        desired: i32,
        up_window: i32,
        down_window: i32,
    ) -> i32 {
        let up_cutoff = now - f64::from(up_window);
        let down_cutoff = now - f64::from(down_window);
        let mut up = desired;
        let mut down = desired;
        let mut old_slot = None;
        for (index, record) in self.history().iter().enumerate() {
            if record.at > up_cutoff {
                up = up.min(record.replicas);
            }
            if record.at > down_cutoff {
                down = down.max(record.replicas);
            }
            if record.at < up_cutoff && record.at < down_cutoff {
                old_slot = Some(index);
            }
        }
        let record = Recommendation { replicas: desired, at: now };
        match old_slot {
            Some(index) => self.history()[index] = record,
            None => self.history().push(record),
        }
        current.max(up).min(down)
    }

    /// Upstream's `convertDesiredReplicasWithBehaviorRate`.
    pub fn convert_with_behavior_rate(
        &self,
        now: f64,
        current: i32,
        desired: i32,
        bounds: &Bounds,
        behavior: &Behavior,
    ) -> (i32, Limit) {
        if desired > current {
            let limit =
                scale_up_limit(now, current, &self.scale_up_events, &self.scale_down_events, &behavior.scale_up)
                    .max(current);
            let (maximum, limiting) = if bounds.max_replicas > limit {
                (limit, Limit::ScaleUpLimit)
            } else {
                (bounds.max_replicas, Limit::TooManyReplicas)
            };
            if desired > maximum {
                return (maximum, limiting);
            }
        } else if desired < current {
            let limit =
                scale_down_limit(now, current, &self.scale_up_events, &self.scale_down_events, &behavior.scale_down)
                    .min(current);
            let (minimum, limiting) = if bounds.min_replicas < limit {
                (limit, Limit::ScaleDownLimit)
            } else {
                (bounds.min_replicas, Limit::TooFewReplicas)
            };
            if desired < minimum {
                return (minimum, limiting);
            }
        }
        (desired, Limit::DesiredWithinRange)
    }

    /// Upstream's `storeScaleEvent`: remembers a change, reusing the last slot that fell out of
    /// the direction's longest policy period.
    pub fn store_scale_event(&mut self, now: f64, behavior: Option<&Behavior>, previous: i32, new: i32) {
        let Some(behavior) = behavior else { return };
        let (events, rules, change) = if new > previous {
            (&mut self.scale_up_events, &behavior.scale_up, new - previous)
        } else {
            (&mut self.scale_down_events, &behavior.scale_down, previous - new)
        };
        let cutoff = now - f64::from(rules.longest_period());
        for event in events.iter_mut() {
            if event.at < cutoff {
                event.outdated = true;
            }
        }
        let event = ScaleEvent { change, at: now, outdated: false };
        match events.iter().rposition(|event| event.outdated) {
            Some(index) => events[index] = event,
            None => events.push(event),
        }
    }

    /// Normalizes a proposal (`normalizeDesiredReplicas` or its behavior variant).
    pub fn normalize(&mut self, now: f64, current: i32, proposal: i32, bounds: &Bounds) -> Decision {
        match &bounds.behavior {
            None => {
                let stabilized = self.stabilize_legacy(now, proposal);
                let (replicas, limit) =
                    convert_with_rules(current, stabilized, bounds.min_replicas, bounds.max_replicas);
                Decision { replicas, limit, stabilized }
            }
            Some(behavior) => {
                let stabilized = self.stabilize_with_behavior(
                    now,
                    current,
                    proposal,
                    behavior.scale_up.stabilization_window,
                    behavior.scale_down.stabilization_window,
                );
                let (replicas, limit) = self.convert_with_behavior_rate(now, current, stabilized, bounds, behavior);
                Decision { replicas, limit, stabilized }
            }
        }
    }

    /// One reconcile, as `reconcileAutoscaler` orders it: no scaling from zero, replicas above
    /// max or below min are clamped without metrics, otherwise the proposal (computed only then)
    /// is normalized. A scale event is remembered when the replicas change.
    pub fn reconcile<E>(
        &mut self,
        now: f64,
        current: i32,
        bounds: &Bounds,
        proposal: impl FnOnce() -> Result<i32, E>,
    ) -> Result<Decision, E> {
        if self.recommendations.is_none() {
            self.recommendations = Some(vec![Recommendation { replicas: current, at: now }]);
        }
        let decision = if current == 0 && bounds.min_replicas != 0 {
            Decision { replicas: 0, limit: Limit::DesiredWithinRange, stabilized: 0 }
        } else if current > bounds.max_replicas {
            Decision { replicas: bounds.max_replicas, limit: Limit::TooManyReplicas, stabilized: bounds.max_replicas }
        } else if current < bounds.min_replicas {
            Decision { replicas: bounds.min_replicas, limit: Limit::TooFewReplicas, stabilized: bounds.min_replicas }
        } else {
            let proposal = proposal()?;
            self.normalize(now, current, proposal, bounds)
        };
        if decision.replicas != current {
            self.store_scale_event(now, bounds.behavior.as_ref(), current, decision.replicas);
        }
        Ok(decision)
    }
}

//! Resilience layers for calls to dependencies: timeout, retry with backoff, full jitter and a
//! retry budget, and a circuit breaker.
//!
//! **Order is behaviour.** Recommended stack, outermost first:
//!
//! ```text
//! TimeoutLayer(overall deadline)      bounds what the caller waits, retries included
//!   RetryLayer(RetryPolicy + budget)  retries transient failures, never beyond the budget
//!     CircuitBreakerLayer             fails fast while the dependency is down; a rejected call
//!                                     is not retried (the policy treats Open as final)
//!       TimeoutLayer(per attempt)     a hung attempt counts as a failure for the breaker
//!         the dependency client
//! ```
//!
//! Putting the breaker outside the retry would let one logical call count once however many
//! attempts failed, and hide retry storms from it; putting the per-attempt timeout outside the
//! breaker would let slow calls keep the circuit closed.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tower::retry::budget::{Budget, TpsBudget};
use tower::{Layer, Service};

use crate::metrics::{BreakerLabels, BreakerMetrics, TransitionLabels};

/// Exponential backoff with full jitter: attempt `n` waits a uniformly random time between zero
/// and `min(cap, base * 2^n)`.
#[derive(Clone, Debug)]
pub struct Backoff {
    /// First ceiling.
    pub base: Duration,
    /// Largest ceiling.
    pub cap: Duration,
    rng: Arc<AtomicU64>,
}

impl Backoff {
    /// A backoff whose jitter sequence is fixed by `seed` (tests replay it exactly).
    pub fn new(base: Duration, cap: Duration, seed: u64) -> Self {
        Backoff { base, cap, rng: Arc::new(AtomicU64::new(seed)) }
    }

    /// The ceiling for attempt `attempt` (0-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(31));
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The wait before retry `attempt`: uniform in `[0, ceiling(attempt)]`.
    pub fn delay(&self, attempt: u32) -> Duration {
        // splitmix64 over a shared counter: every retry of every request draws a new number.
        let mut z = self.rng.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let unit = (z >> 11) as f64 / (1u64 << 53) as f64;
        self.ceiling(attempt).mul_f64(unit)
    }
}

/// Which errors are worth retrying.
pub trait Retryable {
    /// Whether a retry may succeed.
    fn is_retryable(&self) -> bool;
}

/// Retry policy: at most `max_retries` retries of retryable errors, spaced by [`Backoff`], and
/// only while the shared budget allows (by default 20% extra load, at least 10 retries a second).
#[derive(Clone)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Waits between attempts.
    pub backoff: Backoff,
    budget: Arc<TpsBudget>,
    attempt: u32,
}

impl RetryPolicy {
    /// A policy with the default budget.
    pub fn new(max_retries: u32, backoff: Backoff) -> Self {
        RetryPolicy::with_budget(max_retries, backoff, Arc::new(TpsBudget::new(Duration::from_secs(10), 10, 0.2)))
    }

    /// A policy drawing on `budget`, which callers of the same dependency should share.
    pub fn with_budget(max_retries: u32, backoff: Backoff, budget: Arc<TpsBudget>) -> Self {
        RetryPolicy { max_retries, backoff, budget, attempt: 0 }
    }
}

impl<Req: Clone, Res, E: Retryable> tower::retry::Policy<Req, Res, E> for RetryPolicy {
    type Future = tokio::time::Sleep;

    fn retry(&mut self, _request: &mut Req, result: &mut Result<Res, E>) -> Option<Self::Future> {
        match result {
            Ok(_) => {
                self.budget.deposit();
                None
            }
            Err(error) if error.is_retryable() && self.attempt < self.max_retries && self.budget.withdraw() => {
                let delay = self.backoff.delay(self.attempt);
                self.attempt += 1;
                Some(tokio::time::sleep(delay))
            }
            Err(_) => None,
        }
    }

    fn clone_request(&mut self, request: &Req) -> Option<Req> {
        Some(request.clone())
    }
}

/// Circuit breaker settings.
#[derive(Clone, Debug)]
pub struct BreakerConfig {
    /// Outcomes remembered while closed (a count-based window).
    pub window: usize,
    /// Outcomes needed before the failure rate is judged.
    pub minimum_calls: usize,
    /// Failure share at which the circuit opens (0 to 1).
    pub failure_rate: f64,
    /// How long the circuit stays open before probing.
    pub open_for: Duration,
    /// Probe calls allowed while half-open; all must succeed to close.
    pub half_open_calls: usize,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            window: 20,
            minimum_calls: 10,
            failure_rate: 0.5,
            open_for: Duration::from_secs(30),
            half_open_calls: 3,
        }
    }
}

/// Circuit state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Calls flow; outcomes are counted.
    Closed,
    /// Calls are rejected until the deadline.
    Open {
        /// When probing may start.
        until: Instant,
    },
    /// A few probe calls flow.
    HalfOpen {
        /// Probes running.
        in_flight: usize,
        /// Probes that succeeded.
        successes: usize,
    },
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open { .. } => "open",
            State::HalfOpen { .. } => "half-open",
        }
    }

    fn gauge(&self) -> i64 {
        match self {
            State::Closed => 0,
            State::HalfOpen { .. } => 1,
            State::Open { .. } => 2,
        }
    }
}

struct Shared {
    name: String,
    config: BreakerConfig,
    state: State,
    outcomes: VecDeque<bool>,
    metrics: Option<BreakerMetrics>,
}

impl Shared {
    fn transition(&mut self, to: State) {
        self.state = to;
        self.outcomes.clear();
        if let Some(metrics) = &self.metrics {
            metrics.state.get_or_create(&BreakerLabels { breaker: self.name.clone() }).set(to.gauge());
            metrics
                .transitions
                .get_or_create(&TransitionLabels { breaker: self.name.clone(), to: to.name().to_owned() })
                .inc();
        }
        tracing::warn!(breaker = %self.name, state = to.name(), "circuit breaker changed state");
    }

    /// Admits a call or rejects it.
    fn admit(&mut self) -> bool {
        if let State::Open { until } = self.state {
            if Instant::now() < until {
                return false;
            }
            self.transition(State::HalfOpen { in_flight: 0, successes: 0 });
        }
        match &mut self.state {
            State::HalfOpen { in_flight, .. } if *in_flight >= self.config.half_open_calls => false,
            State::HalfOpen { in_flight, .. } => {
                *in_flight += 1;
                true
            }
            _ => true,
        }
    }

    fn record(&mut self, success: bool) {
        match self.state {
            State::Closed => {
                self.outcomes.push_back(success);
                while self.outcomes.len() > self.config.window {
                    self.outcomes.pop_front();
                }
                let failures = self.outcomes.iter().filter(|ok| !**ok).count();
                if self.outcomes.len() >= self.config.minimum_calls
                    && failures as f64 / self.outcomes.len() as f64 >= self.config.failure_rate
                {
                    self.transition(State::Open { until: Instant::now() + self.config.open_for });
                }
            }
            State::HalfOpen { in_flight, successes } => {
                if !success {
                    self.transition(State::Open { until: Instant::now() + self.config.open_for });
                } else if successes + 1 >= self.config.half_open_calls {
                    self.transition(State::Closed);
                } else {
                    self.state = State::HalfOpen { in_flight: in_flight.saturating_sub(1), successes: successes + 1 };
                }
            }
            // A call admitted before the circuit opened finished late: it changes nothing.
            State::Open { .. } => {}
        }
    }
}

/// Records an admitted call's outcome exactly once. A call dropped before it finished (the
/// client went away, an outer timeout fired) counts as a failure, so a half-open probe slot is
/// never leaked and the circuit cannot stay stuck.
struct Outcome {
    shared: Arc<Mutex<Shared>>,
    recorded: bool,
}

impl Outcome {
    fn record(&mut self, success: bool) {
        if !self.recorded {
            self.recorded = true;
            if let Ok(mut shared) = self.shared.lock() {
                shared.record(success);
            }
        }
    }
}

impl Drop for Outcome {
    fn drop(&mut self) {
        self.record(false);
    }
}

/// What a breaker-wrapped call fails with.
#[derive(Debug)]
pub enum BreakerError<E> {
    /// The circuit is open: the call was not made.
    Open {
        /// Breaker name.
        breaker: String,
    },
    /// The call was made and failed.
    Inner(E),
}

impl<E: fmt::Display> fmt::Display for BreakerError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BreakerError::Open { breaker } => write!(f, "circuit `{breaker}` is open"),
            BreakerError::Inner(error) => error.fmt(f),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for BreakerError<E> {}

impl<E: Retryable> Retryable for BreakerError<E> {
    fn is_retryable(&self) -> bool {
        match self {
            // Retrying into an open circuit only burns budget.
            BreakerError::Open { .. } => false,
            BreakerError::Inner(error) => error.is_retryable(),
        }
    }
}

/// Wraps a service in a circuit breaker; clones share the circuit.
#[derive(Clone)]
pub struct CircuitBreakerLayer {
    shared: Arc<Mutex<Shared>>,
}

impl CircuitBreakerLayer {
    /// A closed circuit named `name` (the `breaker` label of its metrics).
    pub fn new(name: &str, config: BreakerConfig, metrics: Option<BreakerMetrics>) -> Self {
        if let Some(metrics) = &metrics {
            metrics.state.get_or_create(&BreakerLabels { breaker: name.to_owned() }).set(0);
        }
        CircuitBreakerLayer {
            shared: Arc::new(Mutex::new(Shared {
                name: name.to_owned(),
                config,
                state: State::Closed,
                outcomes: VecDeque::new(),
                metrics,
            })),
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.shared.lock().map_or(State::Closed, |shared| shared.state)
    }
}

impl<S> Layer<S> for CircuitBreakerLayer {
    type Service = CircuitBreaker<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreaker { inner, shared: self.shared.clone() }
    }
}

/// The service [`CircuitBreakerLayer`] produces.
#[derive(Clone)]
pub struct CircuitBreaker<S> {
    inner: S,
    shared: Arc<Mutex<Shared>>,
}

impl<S, Req> Service<Req> for CircuitBreaker<S>
where
    S: Service<Req>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = BreakerError<S::Error>;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(BreakerError::Inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let admitted = self.shared.lock().map(|mut shared| (shared.admit(), shared.name.clone()));
        let (admitted, name) = admitted.unwrap_or((true, String::new()));
        if !admitted {
            return Box::pin(std::future::ready(Err(BreakerError::Open { breaker: name })));
        }
        let outcome = Outcome { shared: self.shared.clone(), recorded: false };
        let future = self.inner.call(request);
        Box::pin(async move {
            let mut outcome = outcome;
            let result = future.await;
            outcome.record(result.is_ok());
            result.map_err(BreakerError::Inner)
        })
    }
}

//! The resilience layers, deterministically, on paused tokio time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use enclave_monitor::metrics::MetricsBuilder;
use enclave_monitor::resilience::{
    Backoff, BreakerConfig, BreakerError, CircuitBreakerLayer, RetryPolicy, Retryable, State,
};
use tokio::time::Instant;
use tower::retry::RetryLayer;
use tower::retry::budget::TpsBudget;
use tower::{Service, ServiceBuilder, ServiceExt};

#[derive(Debug, Clone, PartialEq)]
struct Failure(&'static str);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Failure {}

impl Retryable for Failure {
    fn is_retryable(&self) -> bool {
        self.0 != "fatal"
    }
}

/// A dependency that fails its first `failures` calls, counting every call.
fn flaky(
    failures: usize,
    calls: Arc<AtomicUsize>,
) -> impl Service<u32, Response = u32, Error = Failure, Future = impl Send> + Clone {
    tower::service_fn(move |request: u32| {
        let calls = calls.clone();
        async move {
            let call = calls.fetch_add(1, Ordering::SeqCst);
            if call < failures { Err(Failure("refused")) } else { Ok(request) }
        }
    })
}

#[test]
fn full_jitter_stays_under_an_exponential_ceiling_capped_at_the_maximum() {
    let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1), 42);
    assert_eq!(backoff.ceiling(0), Duration::from_millis(100));
    assert_eq!(backoff.ceiling(3), Duration::from_millis(800));
    assert_eq!(backoff.ceiling(4), Duration::from_secs(1), "capped");
    let delays: Vec<Duration> = (0..200).map(|_| backoff.delay(2)).collect();
    assert!(delays.iter().all(|d| *d <= Duration::from_millis(400)));
    let spread = delays.iter().max().copied().unwrap_or_default() - delays.iter().min().copied().unwrap_or_default();
    assert!(spread > Duration::from_millis(300), "full jitter spreads over the whole range: {spread:?}");
    let again = Backoff::new(Duration::from_millis(100), Duration::from_secs(1), 42);
    assert_eq!(again.delay(2), delays[0], "a seed replays the same sequence");
}

#[tokio::test(start_paused = true)]
async fn retry_recovers_from_transient_failures_after_backoff() {
    let calls = Arc::new(AtomicUsize::new(0));
    let policy = RetryPolicy::new(3, Backoff::new(Duration::from_millis(100), Duration::from_secs(2), 1));
    let mut service = ServiceBuilder::new().layer(RetryLayer::new(policy)).service(flaky(2, calls.clone()));
    let began = Instant::now();
    let answer = service.ready().await.expect("ready").call(7).await;
    assert_eq!(answer, Ok(7));
    assert_eq!(calls.load(Ordering::SeqCst), 3, "two failures, then success");
    assert!(began.elapsed() <= Duration::from_millis(300), "waited at most 100 + 200 ms: {:?}", began.elapsed());
}

#[tokio::test(start_paused = true)]
async fn retry_gives_up_on_fatal_errors_and_after_max_retries() {
    let calls = Arc::new(AtomicUsize::new(0));
    let fatal = tower::service_fn({
        let calls = calls.clone();
        move |_: u32| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err::<u32, _>(Failure("fatal")) }
        }
    });
    let policy = RetryPolicy::new(3, Backoff::new(Duration::from_millis(10), Duration::from_secs(1), 1));
    let mut service = ServiceBuilder::new().layer(RetryLayer::new(policy.clone())).service(fatal);
    assert_eq!(service.ready().await.expect("ready").call(1).await, Err(Failure("fatal")));
    assert_eq!(calls.load(Ordering::SeqCst), 1, "fatal errors are not retried");

    let calls = Arc::new(AtomicUsize::new(0));
    let mut service = ServiceBuilder::new().layer(RetryLayer::new(policy)).service(flaky(100, calls.clone()));
    assert_eq!(service.ready().await.expect("ready").call(1).await, Err(Failure("refused")));
    assert_eq!(calls.load(Ordering::SeqCst), 4, "one attempt and three retries");
}

#[tokio::test(start_paused = true)]
async fn an_exhausted_budget_stops_retry_storms() {
    // No reserve and no credit from successes: not a single retry is affordable.
    let budget = Arc::new(TpsBudget::new(Duration::from_secs(10), 1, 0.0));
    let calls = Arc::new(AtomicUsize::new(0));
    let policy =
        RetryPolicy::with_budget(5, Backoff::new(Duration::from_millis(10), Duration::from_secs(1), 3), budget);
    let mut service = ServiceBuilder::new().layer(RetryLayer::new(policy)).service(flaky(1000, calls.clone()));
    for _ in 0..20 {
        let _ = service.ready().await.expect("ready").call(1).await;
    }
    let made = calls.load(Ordering::SeqCst);
    assert!(made < 20 * 6, "the budget capped retries: {made} calls for 20 requests");
    assert!(made <= 20 + 10 + 1, "at most the reserve of about 10 retries beyond the first attempts: {made}");
}

#[tokio::test(start_paused = true)]
async fn breaker_opens_on_the_failure_rate_then_probes_and_closes() {
    let calls = Arc::new(AtomicUsize::new(0));
    let down = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let dependency = tower::service_fn({
        let (calls, down) = (calls.clone(), down.clone());
        move |request: u32| {
            calls.fetch_add(1, Ordering::SeqCst);
            let failing = down.load(Ordering::SeqCst);
            async move { if failing { Err(Failure("refused")) } else { Ok(request) } }
        }
    });
    let mut metrics = MetricsBuilder::new();
    let config = BreakerConfig {
        window: 10,
        minimum_calls: 4,
        failure_rate: 0.5,
        open_for: Duration::from_secs(30),
        half_open_calls: 2,
    };
    let layer = CircuitBreakerLayer::new("db", config, Some(metrics.breakers()));
    let mut service = ServiceBuilder::new().layer(layer.clone()).service(dependency);

    for _ in 0..4 {
        let result = service.ready().await.expect("ready").call(1).await;
        assert!(matches!(result, Err(BreakerError::Inner(_))));
    }
    assert!(matches!(layer.state(), State::Open { .. }), "4 of 4 failed: open");
    let result = service.ready().await.expect("ready").call(1).await;
    assert!(matches!(result, Err(BreakerError::Open { .. })), "open circuits reject without calling");
    assert_eq!(calls.load(Ordering::SeqCst), 4);

    tokio::time::advance(Duration::from_secs(31)).await;
    down.store(false, Ordering::SeqCst);
    assert_eq!(service.ready().await.expect("ready").call(2).await.ok(), Some(2), "half-open probe");
    assert!(matches!(layer.state(), State::HalfOpen { .. }));
    assert_eq!(service.ready().await.expect("ready").call(3).await.ok(), Some(3));
    assert_eq!(layer.state(), State::Closed, "two good probes close the circuit");

    let text = metrics.build().encode();
    assert!(text.contains("circuit_breaker_state{breaker=\"db\"} 0"), "{text}");
    assert!(text.contains("circuit_breaker_transitions_total{breaker=\"db\",to=\"open\"} 1"), "{text}");
    assert!(text.contains("circuit_breaker_transitions_total{breaker=\"db\",to=\"closed\"} 1"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_reopens_the_circuit() {
    let dependency = tower::service_fn(|_: u32| async { Err::<u32, _>(Failure("refused")) });
    let config = BreakerConfig {
        window: 4,
        minimum_calls: 2,
        failure_rate: 0.5,
        open_for: Duration::from_secs(5),
        half_open_calls: 1,
    };
    let layer = CircuitBreakerLayer::new("db", config, None);
    let mut service = ServiceBuilder::new().layer(layer.clone()).service(dependency);
    for _ in 0..2 {
        let _ = service.ready().await.expect("ready").call(1).await;
    }
    tokio::time::advance(Duration::from_secs(6)).await;
    let _ = service.ready().await.expect("ready").call(1).await;
    match layer.state() {
        State::Open { until } => assert!(until > Instant::now() + Duration::from_secs(4), "a fresh open period"),
        other => panic!("expected open, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn the_recommended_stack_fails_fast_once_open_and_bounds_latency() {
    let calls = Arc::new(AtomicUsize::new(0));
    let slow = tower::service_fn({
        let calls = calls.clone();
        move |_: u32| {
            calls.fetch_add(1, Ordering::SeqCst);
            async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok::<u32, Failure>(1)
            }
        }
    });
    let config = BreakerConfig {
        window: 10,
        minimum_calls: 3,
        failure_rate: 0.5,
        open_for: Duration::from_secs(30),
        half_open_calls: 1,
    };
    let breaker = CircuitBreakerLayer::new("slow", config, None);
    let mut service = ServiceBuilder::new()
        .timeout(Duration::from_secs(2))
        .layer(breaker.clone())
        .timeout(Duration::from_millis(500))
        .service(slow);
    for _ in 0..3 {
        let began = Instant::now();
        let result = service.ready().await.expect("ready").call(1).await;
        assert!(result.is_err());
        assert!(began.elapsed() <= Duration::from_millis(500), "the per-attempt timeout bounds each call");
    }
    assert!(matches!(breaker.state(), State::Open { .. }), "timeouts count as failures");
    let began = Instant::now();
    assert!(service.ready().await.expect("ready").call(1).await.is_err());
    assert_eq!(began.elapsed(), Duration::ZERO, "rejected at once");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn a_probe_dropped_before_it_finishes_cannot_wedge_the_circuit() {
    let hang = tower::service_fn(|_: u32| async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok::<u32, Failure>(1)
    });
    let config = BreakerConfig {
        window: 4,
        minimum_calls: 1,
        failure_rate: 0.5,
        open_for: Duration::from_secs(5),
        half_open_calls: 1,
    };
    let layer = CircuitBreakerLayer::new("db", config, None);
    let mut service = ServiceBuilder::new().layer(layer.clone()).service(hang);
    // Open it: one call dropped (a client that went away) counts as a failure.
    drop(service.ready().await.expect("ready").call(1));
    assert!(matches!(layer.state(), State::Open { .. }), "{:?}", layer.state());
    tokio::time::advance(Duration::from_secs(6)).await;
    // The half-open probe is dropped too: its slot must come back (as a failure, reopening).
    let probe = service.ready().await.expect("ready").call(1);
    assert!(matches!(layer.state(), State::HalfOpen { in_flight: 1, .. }));
    drop(probe);
    assert!(
        matches!(layer.state(), State::Open { .. }),
        "a lost probe reopens instead of wedging: {:?}",
        layer.state()
    );
    tokio::time::advance(Duration::from_secs(6)).await;
    let _next = service.ready().await.expect("ready").call(1);
    assert!(matches!(layer.state(), State::HalfOpen { in_flight: 1, .. }), "probing resumes");
}

//! Probe semantics, concurrency, timeouts and the cache of the health router.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use enclave_monitor::health::{Check, CheckError, Health, Status};
use enclave_monitor::metrics::MetricsBuilder;
use tower::ServiceExt;

/// A dependency that counts its checks, answers after `delay`, and fails while `down`.
#[derive(Clone)]
struct Probe {
    calls: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
    delay: Duration,
}

impl Probe {
    fn new(delay: Duration) -> Self {
        Probe { calls: Arc::new(AtomicUsize::new(0)), down: Arc::new(AtomicBool::new(false)), delay }
    }
}

#[async_trait::async_trait]
impl Check for Probe {
    async fn check(&self) -> Result<(), CheckError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        if self.down.load(Ordering::SeqCst) { Err(CheckError("connection refused".into())) } else { Ok(()) }
    }
}

async fn get(health: &Health, path: &str) -> (StatusCode, serde_json::Value) {
    let response =
        health.router().oneshot(Request::get(path).body(Body::empty()).expect("request")).await.expect("response");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
    (status, serde_json::from_slice(&bytes).expect("json"))
}

#[tokio::test(start_paused = true)]
async fn readiness_follows_critical_dependencies_and_liveness_never_does() {
    let database = Probe::new(Duration::from_millis(5));
    let cache = Probe::new(Duration::from_millis(5));
    let health = Health::builder()
        .dependency("database", "database", true, Duration::from_secs(1), database.clone())
        .dependency("cache", "cache", false, Duration::from_secs(1), cache.clone())
        .cache_for(Duration::ZERO)
        .build();
    assert_eq!(get(&health, "/health/startup").await.0, StatusCode::SERVICE_UNAVAILABLE, "not started yet");
    assert_eq!(get(&health, "/health/ready").await.0, StatusCode::SERVICE_UNAVAILABLE, "not ready before startup");
    health.mark_started();
    assert_eq!(get(&health, "/health/startup").await.0, StatusCode::OK);
    assert_eq!(get(&health, "/health/ready").await.0, StatusCode::OK);

    cache.down.store(true, Ordering::SeqCst);
    let (code, body) = get(&health, "/health/ready").await;
    assert_eq!((code, body["status"].as_str()), (StatusCode::OK, Some("degraded")), "non-critical: degraded but ready");

    database.down.store(true, Ordering::SeqCst);
    let (code, body) = get(&health, "/health").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["checks"][0]["status"], "down");
    assert_eq!(body["checks"][0]["error"], "connection refused");
    assert_eq!(body["checks"][0]["critical"], true);
    assert!(body["checks"][0]["latency_ms"].as_f64().is_some_and(|ms| ms >= 5.0));
    assert_eq!(get(&health, "/health/live").await.0, StatusCode::OK, "liveness ignores dependencies");
    health.set_live(false);
    assert_eq!(get(&health, "/health/live").await.0, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test(start_paused = true)]
async fn checks_time_out_individually_and_run_concurrently() {
    let slow = Probe::new(Duration::from_secs(30));
    let fast = Probe::new(Duration::from_millis(100));
    let health = Health::builder()
        .dependency("queue", "queue", true, Duration::from_millis(300), slow)
        .dependency("api", "http", true, Duration::from_millis(300), fast.clone())
        .dependency("api-2", "http", true, Duration::from_millis(300), fast)
        .build();
    health.mark_started();
    let began = tokio::time::Instant::now();
    let report = health.report().await;
    assert_eq!(began.elapsed(), Duration::from_millis(300), "concurrent: bounded by the slowest timeout, not the sum");
    assert_eq!(report.checks[0].status, Status::Timeout);
    assert_eq!(report.status, Status::Down);
    assert_eq!(report.checks[1].status, Status::Up);
}

#[tokio::test(start_paused = true)]
async fn a_probe_storm_costs_one_round_of_checks_per_interval() {
    let database = Probe::new(Duration::from_millis(50));
    let health = Health::builder()
        .dependency("database", "database", true, Duration::from_secs(1), database.clone())
        .cache_for(Duration::from_secs(5))
        .build();
    health.mark_started();
    let storm: Vec<_> = (0..200).map(|_| get(&health, "/health/ready")).collect();
    let answers = futures_util::future::join_all(storm).await;
    assert!(answers.iter().all(|(code, _)| *code == StatusCode::OK));
    assert_eq!(database.calls.load(Ordering::SeqCst), 1, "200 concurrent probes, one check");
    tokio::time::advance(Duration::from_secs(6)).await;
    get(&health, "/health/ready").await;
    assert_eq!(database.calls.load(Ordering::SeqCst), 2, "refreshed once the interval passed");
}

#[tokio::test(start_paused = true)]
async fn background_refresh_keeps_dependency_metrics_current() {
    let database = Probe::new(Duration::from_millis(1));
    let mut metrics = MetricsBuilder::new();
    let health = Health::builder()
        .dependency("database", "database", true, Duration::from_secs(1), database.clone())
        .metrics(metrics.dependencies())
        .build();
    let endpoint = metrics.build();
    let refresher = health.spawn_refresh(Duration::from_secs(2));
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(endpoint.encode().contains("dependency_up{dependency=\"database\",kind=\"database\"} 1"));
    database.down.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let text = endpoint.encode();
    assert!(text.contains("dependency_up{dependency=\"database\",kind=\"database\"} 0"), "{text}");
    assert!(text.contains("dependency_check_failures_total{dependency=\"database\",kind=\"database\"} 1"), "{text}");
    refresher.abort();
}

mockall::mock! {
    /// A dependency whose answers are scripted, in order, and whose calls are counted by mockall.
    Dependency {}
    #[async_trait::async_trait]
    impl Check for Dependency {
        async fn check(&self) -> Result<(), CheckError>;
    }
}

#[tokio::test(start_paused = true)]
async fn a_cached_answer_is_served_until_the_interval_passes_then_the_next_one_counts() {
    let mut sequence = mockall::Sequence::new();
    let mut database = MockDependency::new();
    database.expect_check().times(1).in_sequence(&mut sequence).returning(|| Ok(()));
    database
        .expect_check()
        .times(1)
        .in_sequence(&mut sequence)
        .returning(|| Err(CheckError("connection refused".into())));
    let health = Health::builder()
        .dependency("database", "database", true, Duration::from_secs(1), database)
        .cache_for(Duration::from_secs(5))
        .build();
    health.mark_started();
    for _ in 0..3 {
        assert_eq!(get(&health, "/health/ready").await.0, StatusCode::OK, "served from the first answer");
    }
    tokio::time::advance(Duration::from_secs(6)).await;
    assert_eq!(get(&health, "/health/ready").await.0, StatusCode::SERVICE_UNAVAILABLE, "the second answer fails");
    let (_, body) = get(&health, "/health").await;
    assert_eq!(body["checks"][0]["error"], "connection refused", "the full report, from the same answer");
    // A third check would panic in the mock: nothing asks again within the interval.
    assert_eq!(get(&health, "/health/ready").await.0, StatusCode::SERVICE_UNAVAILABLE);
}

//! Health endpoints with Kubernetes probe semantics.
//!
//! | path | status | depends on dependencies |
//! |---|---|---|
//! | `/health/live` | 200 unless the service declared itself broken | never: a dependency outage must not restart every pod |
//! | `/health/startup` | 503 until [`Health::mark_started`] | no |
//! | `/health/ready` | 503 while starting or when a critical dependency is down; the body names the failing ones | critical ones |
//! | `/health` | the deep report: every dependency with status and latency | all (non-critical ones degrade, never fail) |
//!
//! Checks run concurrently, each under its own timeout, and their results are cached for a
//! configurable interval behind a single-flight lock: a burst of probes costs at most one round
//! of dependency calls per interval. [`Health::spawn_refresh`] keeps the cache (and the
//! `dependency_up` metric) fresh in the background, so probes only read it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use serde::Serialize;
use tokio::time::Instant;

use crate::metrics::DependencyMetrics;

/// Why a check failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CheckError(pub String);

/// A dependency probe: a database ping, an HTTP call, a queue's metadata request.
#[async_trait::async_trait]
pub trait Check: Send + Sync + 'static {
    /// Succeeds when the dependency answers.
    async fn check(&self) -> Result<(), CheckError>;
}

/// A closure as a check.
pub struct FnCheck<F>(pub F);

#[async_trait::async_trait]
impl<F, Fut> Check for FnCheck<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), CheckError>> + Send,
{
    async fn check(&self) -> Result<(), CheckError> {
        (self.0)().await
    }
}

struct Dependency {
    name: String,
    kind: String,
    critical: bool,
    timeout: Duration,
    check: Arc<dyn Check>,
}

/// Status of one dependency or of the whole service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Everything answers.
    Up,
    /// A non-critical dependency is down; still ready.
    Degraded,
    /// Not ready.
    Down,
    /// The check took longer than its timeout.
    Timeout,
}

/// One dependency in a report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckResult {
    /// Dependency name.
    pub name: String,
    /// Dependency kind (`database`, `http`, ...).
    pub kind: String,
    /// Whether it gates readiness.
    pub critical: bool,
    /// Up, down or timeout.
    pub status: Status,
    /// How long the check took, milliseconds.
    pub latency_ms: f64,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The deep health report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// Up, degraded or down.
    pub status: Status,
    /// Whether startup has completed.
    pub started: bool,
    /// Every dependency.
    pub checks: Vec<CheckResult>,
    /// Age of the results, milliseconds.
    pub age_ms: f64,
}

/// One round of checks, with what the readiness probe answers precomputed: probes are the hot
/// path and only read this.
struct Snapshot {
    at: Instant,
    checks: Vec<CheckResult>,
    critical_down: bool,
    any_down: bool,
    ready_body: axum::body::Bytes,
}

impl Snapshot {
    fn new(checks: Vec<CheckResult>) -> Self {
        let failing: Vec<&str> = checks.iter().filter(|c| c.status != Status::Up).map(|c| c.name.as_str()).collect();
        let critical_down = checks.iter().any(|c| c.critical && c.status != Status::Up);
        let any_down = !failing.is_empty();
        let body = match (critical_down, any_down) {
            (true, _) => serde_json::json!({"status": "down", "failing": failing}),
            (false, true) => serde_json::json!({"status": "degraded", "failing": failing}),
            (false, false) => serde_json::json!({"status": "up"}),
        };
        Snapshot {
            at: Instant::now(),
            any_down,
            critical_down,
            checks,
            ready_body: axum::body::Bytes::from(body.to_string()),
        }
    }
}

struct Inner {
    dependencies: Vec<Dependency>,
    cache_for: Duration,
    snapshot: std::sync::RwLock<Option<Arc<Snapshot>>>,
    refreshing: tokio::sync::Mutex<()>,
    started: AtomicBool,
    live: AtomicBool,
    metrics: Option<DependencyMetrics>,
}

/// Builds a [`Health`].
pub struct HealthBuilder {
    dependencies: Vec<Dependency>,
    cache_for: Duration,
    metrics: Option<DependencyMetrics>,
}

impl HealthBuilder {
    /// Adds a dependency; critical ones gate readiness.
    #[must_use]
    pub fn dependency(mut self, name: &str, kind: &str, critical: bool, timeout: Duration, check: impl Check) -> Self {
        self.dependencies.push(Dependency {
            name: name.to_owned(),
            kind: kind.to_owned(),
            critical,
            timeout,
            check: Arc::new(check),
        });
        self
    }

    /// How long results are reused (default 5 s).
    #[must_use]
    pub fn cache_for(mut self, interval: Duration) -> Self {
        self.cache_for = interval;
        self
    }

    /// Publishes `dependency_up` and `dependency_check_failures_total` on every check.
    #[must_use]
    pub fn metrics(mut self, metrics: DependencyMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The health state, not yet started.
    pub fn build(self) -> Health {
        Health {
            inner: Arc::new(Inner {
                dependencies: self.dependencies,
                cache_for: self.cache_for,
                snapshot: std::sync::RwLock::new(None),
                refreshing: tokio::sync::Mutex::new(()),
                started: AtomicBool::new(false),
                live: AtomicBool::new(true),
                metrics: self.metrics,
            }),
        }
    }
}

/// Health state shared by the probe endpoints.
#[derive(Clone)]
pub struct Health {
    inner: Arc<Inner>,
}

impl Health {
    /// A builder with no dependencies and a 5 s cache.
    pub fn builder() -> HealthBuilder {
        HealthBuilder { dependencies: Vec::new(), cache_for: Duration::from_secs(5), metrics: None }
    }

    /// Startup has finished: the startup probe passes and readiness may.
    pub fn mark_started(&self) {
        self.inner.started.store(true, Ordering::SeqCst);
    }

    /// Declares the process broken (or healthy again); liveness follows.
    pub fn set_live(&self, live: bool) {
        self.inner.live.store(live, Ordering::SeqCst);
    }

    fn fresh_snapshot(&self) -> Option<Arc<Snapshot>> {
        let guard = self.inner.snapshot.read().ok()?;
        guard.as_ref().filter(|snapshot| snapshot.at.elapsed() < self.inner.cache_for).cloned()
    }

    fn store(&self, snapshot: Snapshot) -> Arc<Snapshot> {
        let snapshot = Arc::new(snapshot);
        if let Ok(mut guard) = self.inner.snapshot.write() {
            *guard = Some(snapshot.clone());
        }
        snapshot
    }

    /// The latest round of checks: the cached one while fresh, otherwise a new round. Concurrent
    /// callers of a stale cache wait for the one round in flight instead of starting their own.
    async fn snapshot(&self) -> Arc<Snapshot> {
        if let Some(snapshot) = self.fresh_snapshot() {
            return snapshot;
        }
        let _refreshing = self.inner.refreshing.lock().await;
        if let Some(snapshot) = self.fresh_snapshot() {
            return snapshot;
        }
        let checks = self.run_checks().await;
        self.store(Snapshot::new(checks))
    }

    /// The deep report, from cache when fresh.
    pub async fn report(&self) -> Report {
        let snapshot = self.snapshot().await;
        let started = self.inner.started.load(Ordering::SeqCst);
        let status = if snapshot.critical_down || !started {
            Status::Down
        } else if snapshot.any_down {
            Status::Degraded
        } else {
            Status::Up
        };
        Report {
            status,
            started,
            checks: snapshot.checks.clone(),
            age_ms: snapshot.at.elapsed().as_secs_f64() * 1000.0,
        }
    }

    async fn run_checks(&self) -> Vec<CheckResult> {
        let runs = self.inner.dependencies.iter().map(|dependency| async move {
            let began = Instant::now();
            let outcome = tokio::time::timeout(dependency.timeout, dependency.check.check()).await;
            let latency_ms = began.elapsed().as_secs_f64() * 1000.0;
            let (status, error) = match outcome {
                Ok(Ok(())) => (Status::Up, None),
                Ok(Err(error)) => (Status::Down, Some(error.0)),
                Err(_) => (Status::Timeout, Some(format!("no answer within {:?}", dependency.timeout))),
            };
            if let Some(metrics) = &self.inner.metrics {
                metrics.record(&dependency.name, &dependency.kind, status == Status::Up, latency_ms / 1000.0);
            }
            CheckResult {
                name: dependency.name.clone(),
                kind: dependency.kind.clone(),
                critical: dependency.critical,
                status,
                latency_ms,
                error,
            }
        });
        futures_util::future::join_all(runs).await
    }

    /// Refreshes the checks every `period` in the background, so probes read a warm cache
    /// and the dependency metrics stay current between probes.
    pub fn spawn_refresh(&self, period: Duration) -> tokio::task::JoinHandle<()> {
        let health = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(period);
            loop {
                ticker.tick().await;
                let _refreshing = health.inner.refreshing.lock().await;
                let checks = health.run_checks().await;
                health.store(Snapshot::new(checks));
            }
        })
    }

    /// The four probe routes.
    pub fn router(&self) -> Router {
        let live = self.clone();
        let startup = self.clone();
        let ready = self.clone();
        let deep = self.clone();
        Router::new()
            .route(
                "/health/live",
                get(move || {
                    let health = live.clone();
                    async move {
                        if health.inner.live.load(Ordering::SeqCst) {
                            (StatusCode::OK, Json(serde_json::json!({"status": "up"})))
                        } else {
                            (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({"status": "down"})))
                        }
                    }
                }),
            )
            .route(
                "/health/startup",
                get(move || {
                    let health = startup.clone();
                    async move {
                        let started = health.inner.started.load(Ordering::SeqCst);
                        let code = if started { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
                        (code, Json(serde_json::json!({"status": if started { "up" } else { "starting" }})))
                    }
                }),
            )
            .route("/health/ready", get(move || ready_response(ready.clone())))
            .route("/health", get(move || report_response(deep.clone())))
    }
}

/// Readiness: a precomputed body, no report assembly, no JSON encoding per probe.
async fn ready_response(health: Health) -> Response {
    if !health.inner.started.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({"status": "starting"}))).into_response();
    }
    let snapshot = health.snapshot().await;
    let code = if snapshot.critical_down { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    (code, [(axum::http::header::CONTENT_TYPE, "application/json")], snapshot.ready_body.clone()).into_response()
}

async fn report_response(health: Health) -> Response {
    let report = health.report().await;
    let code = if report.status == Status::Down { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    (code, Json(report)).into_response()
}

//! Prometheus metrics in OpenMetrics text: RED per route as a tower layer, dependency and
//! circuit-breaker metrics, and a small API for business metrics.
//!
//! ```no_run
//! use enclave_monitor::metrics::{MetricsBuilder, RedLayer};
//!
//! let mut builder = MetricsBuilder::new();
//! let red = RedLayer::new(builder.http());
//! let jobs = builder.business();
//! let app = axum::Router::new()
//!     .route("/orders/{id}", axum::routing::get(|| async { "ok" }))
//!     .layer(red)
//!     .merge(builder.build().router());
//! jobs.jobs_processed("invoice", "ok");
//! # let _: axum::Router = app;
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::extract::MatchedPath;
use axum::http::{Method, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::time::Instant;
use tower::{Layer, Service};

/// Latency buckets, seconds: fine below a second, and edges at the 2 s alert threshold.
pub const LATENCY_BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0];

/// Labels of a request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// HTTP method.
    pub method: String,
    /// The route template (`/orders/{id}`), never the raw path: bounded cardinality.
    pub route: String,
    /// Status code.
    pub status: String,
}

/// Labels of a request's duration.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// HTTP method.
    pub method: String,
    /// The route template.
    pub route: String,
}

/// RED metrics of an HTTP service.
#[derive(Clone)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    errors: Family<RequestLabels, Counter>,
    duration: Family<RouteLabels, Histogram>,
}

/// Labels of a dependency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DependencyLabels {
    /// Dependency name.
    pub dependency: String,
    /// Dependency kind.
    pub kind: String,
}

/// `dependency_up`, `dependency_check_failures_total` and `dependency_check_duration_seconds`.
#[derive(Clone)]
pub struct DependencyMetrics {
    up: Family<DependencyLabels, Gauge>,
    failures: Family<DependencyLabels, Counter>,
    duration: Family<DependencyLabels, Histogram>,
}

impl DependencyMetrics {
    /// Records one check.
    pub fn record(&self, dependency: &str, kind: &str, up: bool, seconds: f64) {
        let labels = DependencyLabels { dependency: dependency.to_owned(), kind: kind.to_owned() };
        self.up.get_or_create(&labels).set(i64::from(up));
        if !up {
            self.failures.get_or_create(&labels).inc();
        }
        self.duration.get_or_create(&labels).observe(seconds);
    }
}

/// Labels of a circuit breaker.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BreakerLabels {
    /// Breaker name.
    pub breaker: String,
}

/// Labels of a breaker transition.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransitionLabels {
    /// Breaker name.
    pub breaker: String,
    /// New state.
    pub to: String,
}

/// `circuit_breaker_state` (0 closed, 1 half-open, 2 open) and
/// `circuit_breaker_transitions_total`.
#[derive(Clone)]
pub struct BreakerMetrics {
    pub(crate) state: Family<BreakerLabels, Gauge>,
    pub(crate) transitions: Family<TransitionLabels, Counter>,
}

/// Labels of a job outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    /// Job kind.
    pub job_type: String,
    /// `ok`, `failed`, ...
    pub outcome: String,
}

/// Labels of a queue.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    /// Queue name.
    pub queue: String,
}

/// Business metrics: jobs processed, data volume, queue depth, processing time.
#[derive(Clone)]
pub struct BusinessMetrics {
    jobs: Family<JobLabels, Counter>,
    bytes: Counter,
    queue_depth: Family<QueueLabels, Gauge>,
    processing: Family<JobLabels, Histogram>,
}

impl BusinessMetrics {
    /// Counts a finished job.
    pub fn jobs_processed(&self, job_type: &str, outcome: &str) {
        self.jobs.get_or_create(&JobLabels { job_type: job_type.to_owned(), outcome: outcome.to_owned() }).inc();
    }

    /// Adds processed bytes.
    pub fn data_processed(&self, bytes: u64) {
        self.bytes.inc_by(bytes);
    }

    /// Sets a queue's depth.
    pub fn queue_depth(&self, queue: &str, depth: i64) {
        self.queue_depth.get_or_create(&QueueLabels { queue: queue.to_owned() }).set(depth);
    }

    /// Records how long a job took.
    pub fn processing_time(&self, job_type: &str, outcome: &str, seconds: f64) {
        self.processing
            .get_or_create(&JobLabels { job_type: job_type.to_owned(), outcome: outcome.to_owned() })
            .observe(seconds);
    }
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Registers metrics, then serves them.
pub struct MetricsBuilder {
    registry: Registry,
}

impl Default for MetricsBuilder {
    fn default() -> Self {
        MetricsBuilder::new()
    }
}

impl MetricsBuilder {
    /// An empty registry.
    pub fn new() -> Self {
        MetricsBuilder { registry: Registry::default() }
    }

    /// The registry, for metrics of the application's own.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// RED metrics: `http_requests_total`, `http_request_errors_total` (5xx) and
    /// `http_request_duration_seconds`.
    pub fn http(&mut self) -> HttpMetrics {
        let metrics = HttpMetrics {
            requests: Family::default(),
            errors: Family::default(),
            duration: Family::new_with_constructor(latency_histogram),
        };
        self.registry.register("http_requests", "HTTP requests by route and status", metrics.requests.clone());
        self.registry.register(
            "http_request_errors",
            "HTTP requests answered with a 5xx status",
            metrics.errors.clone(),
        );
        self.registry.register("http_request_duration_seconds", "HTTP request latency", metrics.duration.clone());
        metrics
    }

    /// Dependency check metrics, for [`crate::health::HealthBuilder::metrics`].
    pub fn dependencies(&mut self) -> DependencyMetrics {
        let metrics = DependencyMetrics {
            up: Family::default(),
            failures: Family::default(),
            duration: Family::new_with_constructor(latency_histogram),
        };
        self.registry.register("dependency_up", "Whether the last check of a dependency succeeded", metrics.up.clone());
        self.registry.register("dependency_check_failures", "Failed dependency checks", metrics.failures.clone());
        self.registry.register(
            "dependency_check_duration_seconds",
            "Dependency check latency",
            metrics.duration.clone(),
        );
        metrics
    }

    /// Circuit breaker metrics, for [`crate::resilience::CircuitBreakerLayer`].
    pub fn breakers(&mut self) -> BreakerMetrics {
        let metrics = BreakerMetrics { state: Family::default(), transitions: Family::default() };
        self.registry.register("circuit_breaker_state", "0 closed, 1 half-open, 2 open", metrics.state.clone());
        self.registry.register(
            "circuit_breaker_transitions",
            "Circuit breaker state changes",
            metrics.transitions.clone(),
        );
        metrics
    }

    /// Business metrics.
    pub fn business(&mut self) -> BusinessMetrics {
        let metrics = BusinessMetrics {
            jobs: Family::default(),
            bytes: Counter::default(),
            queue_depth: Family::default(),
            processing: Family::new_with_constructor(latency_histogram),
        };
        self.registry.register("jobs_processed", "Jobs processed by type and outcome", metrics.jobs.clone());
        self.registry.register("data_processed_bytes", "Bytes of data processed", metrics.bytes.clone());
        self.registry.register("queue_depth", "Messages waiting per queue", metrics.queue_depth.clone());
        self.registry.register("job_processing_seconds", "Time to process a job", metrics.processing.clone());
        metrics
    }

    /// Freezes the registry.
    pub fn build(self) -> MetricsEndpoint {
        MetricsEndpoint { registry: Arc::new(self.registry) }
    }
}

/// Serves the registry.
#[derive(Clone)]
pub struct MetricsEndpoint {
    registry: Arc<Registry>,
}

impl MetricsEndpoint {
    /// The registry in OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// `GET /metrics`.
    pub fn router(&self) -> Router {
        let endpoint = self.clone();
        Router::new().route(
            "/metrics",
            get(move || {
                let endpoint = endpoint.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
                        endpoint.encode(),
                    )
                        .into_response()
                }
            }),
        )
    }
}

/// Records RED metrics for every request of the wrapped service.
#[derive(Clone)]
pub struct RedLayer {
    metrics: HttpMetrics,
}

impl RedLayer {
    /// A layer recording into `metrics`.
    pub fn new(metrics: HttpMetrics) -> Self {
        RedLayer { metrics }
    }
}

impl<S> Layer<S> for RedLayer {
    type Service = RedService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RedService { inner, metrics: self.metrics.clone() }
    }
}

/// The service [`RedLayer`] produces.
#[derive(Clone)]
pub struct RedService<S> {
    inner: S,
    metrics: HttpMetrics,
}

impl<S, B, R> Service<Request<B>> for RedService<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
        // Only standard methods become label values: arbitrary extension methods from clients
        // would otherwise create unbounded series.
        let method = match *request.method() {
            Method::GET
            | Method::HEAD
            | Method::POST
            | Method::PUT
            | Method::DELETE
            | Method::PATCH
            | Method::OPTIONS => request.method().as_str().to_owned(),
            _ => "other".to_owned(),
        };
        let metrics = self.metrics.clone();
        let began = Instant::now();
        let future = self.inner.call(request);
        Box::pin(async move {
            let result = future.await;
            let status = match &result {
                Ok(response) => response.status(),
                Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let labels =
                RequestLabels { method: method.clone(), route: route.clone(), status: status.as_u16().to_string() };
            metrics.requests.get_or_create(&labels).inc();
            if status.is_server_error() {
                metrics.errors.get_or_create(&labels).inc();
            }
            metrics.duration.get_or_create(&RouteLabels { method, route }).observe(began.elapsed().as_secs_f64());
            result
        })
    }
}

//! `example-service`: an orders service built with `enclave-monitor`, and the worked example of
//! the database-connection-loss scenario.
//!
//! - `GET /orders/{id}` reads from a pooled database through the recommended resilience stack:
//!   overall timeout, retry with full-jitter backoff and a budget, circuit breaker, per-attempt
//!   timeout.
//! - On the internal address only: `/health/live`, `/health/ready`, `/health/startup`,
//!   `/health` report the database (critical) and a payments API (non-critical); `/metrics`
//!   serves RED, dependency, breaker and business metrics.
//! - `--database-down`, `--database-fails-after SECONDS`, or (with `--admin`)
//!   `POST /admin/database/{down,up}` make the database fail, so the alert, the readiness
//!   probe and the breaker can be watched reacting.
//! - `--bug-percent N` (or `POST /admin/bug/{N}`) makes N% of lookups fail with 500 while
//!   readiness stays up: a bad release, for the rollout's analysis to catch.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::{get, post};
use clap::Parser;
use enclave_monitor::health::{Check, CheckError, FnCheck, Health};
use enclave_monitor::metrics::{BusinessMetrics, MetricsBuilder, RedLayer};
use enclave_monitor::resilience::{Backoff, BreakerConfig, BreakerError, CircuitBreakerLayer, RetryPolicy, Retryable};
use tokio::sync::Semaphore;
use tower::util::BoxCloneSyncService;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

/// Command-line flags.
#[derive(Debug, Parser)]
#[command(name = "example-service", about = "An orders service instrumented with enclave-monitor")]
struct Args {
    /// Address traffic arrives on (`/orders`).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Internal address for probes, metrics and the admin switch; never routed from outside.
    #[arg(long, default_value = "127.0.0.1:9090")]
    internal_listen: SocketAddr,
    /// Start with the database failing.
    #[arg(long)]
    database_down: bool,
    /// Make the database fail this many seconds after start.
    #[arg(long, value_name = "SECONDS")]
    database_fails_after: Option<u64>,
    /// A release with a bug: this percentage of order lookups fails with 500 while the
    /// dependencies, and so readiness, stay healthy (what a rollout's analysis must catch).
    #[arg(long, value_name = "PERCENT", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    bug_percent: u8,
    /// Enable `POST /admin/database/{down,up}` and `POST /admin/bug/{percent}`.
    #[arg(long)]
    admin: bool,
    /// How often dependency checks run in the background, seconds.
    #[arg(long, default_value_t = 5)]
    health_refresh_seconds: u64,
    /// Export traces over OTLP/HTTP to this collector (Jaeger: `http://jaeger:4318`).
    #[arg(long, value_name = "URL", env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    /// Serve only a bare `GET /health/ready` answering 200 (the benchmark's baseline).
    #[arg(long, hide = true)]
    bare: bool,
}

/// Why a database call failed.
#[derive(Debug, thiserror::Error)]
enum DbError {
    #[error("connection refused by the database")]
    ConnectionRefused,
    #[error("no free connection in the pool")]
    PoolExhausted,
}

impl Retryable for DbError {
    fn is_retryable(&self) -> bool {
        true
    }
}

/// A pooled database: a fixed number of connections and a switch that makes it fail.
struct Database {
    pool: Semaphore,
    down: AtomicBool,
}

impl Database {
    async fn query(&self, id: u64) -> Result<serde_json::Value, DbError> {
        let _connection = tokio::time::timeout(Duration::from_millis(200), self.pool.acquire())
            .await
            .map_err(|_| DbError::PoolExhausted)?
            .map_err(|_| DbError::PoolExhausted)?;
        if self.down.load(Ordering::SeqCst) {
            return Err(DbError::ConnectionRefused);
        }
        Ok(serde_json::json!({"id": id, "status": "shipped", "items": 3}))
    }

    async fn ping(&self) -> Result<(), CheckError> {
        self.query(0).await.map(|_| ()).map_err(|e| CheckError(e.to_string()))
    }
}

/// A failed attempt, classified for the retry policy: an open circuit is final, anything else
/// (refused connection, exhausted pool, attempt timeout) may pass on a retry.
struct Classified {
    error: BoxError,
    retryable: bool,
}

impl From<BreakerError<BoxError>> for Classified {
    fn from(error: BreakerError<BoxError>) -> Self {
        let retryable = matches!(error, BreakerError::Inner(_));
        Classified { retryable, error: Box::new(error) }
    }
}

impl Retryable for Classified {
    fn is_retryable(&self) -> bool {
        self.retryable
    }
}

type OrdersService = BoxCloneSyncService<u64, serde_json::Value, BoxError>;

/// The database behind the recommended stack (see `enclave_monitor::resilience`).
fn orders_service(database: Arc<Database>, breaker: CircuitBreakerLayer) -> OrdersService {
    let client = tower::service_fn(move |id: u64| {
        let database = database.clone();
        async move { database.query(id).await }
    });
    let retry = RetryPolicy::new(2, Backoff::new(Duration::from_millis(20), Duration::from_millis(200), 7));
    let stack = ServiceBuilder::new()
        .timeout(Duration::from_secs(2))
        .map_err(|failed: Classified| failed.error)
        .layer(tower::retry::RetryLayer::new(retry))
        .map_err(Classified::from)
        .layer(breaker)
        .timeout(Duration::from_millis(500))
        .service(client);
    BoxCloneSyncService::new(stack)
}

#[derive(Clone)]
struct AppState {
    orders: OrdersService,
    database: Arc<Database>,
    business: BusinessMetrics,
    /// The injected bug: the percentage of lookups that fail, and the lookups so far.
    bug: Arc<(AtomicU8, AtomicU64)>,
}

#[tracing::instrument(skip(state))]
async fn get_order(State(state): State<AppState>, Path(id): Path<u64>) -> impl IntoResponse {
    let began = std::time::Instant::now();
    let (percent, count) = &*state.bug;
    // Spread evenly: lookup i fails when i * percent / 100 steps up (every other one at 50).
    let (i, p) = (count.fetch_add(1, Ordering::Relaxed), u64::from(percent.load(Ordering::Relaxed)));
    if i * p / 100 != (i + 1) * p / 100 {
        state.business.jobs_processed("order_lookup", "failed");
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(serde_json::json!({"error": "injected bug"})));
    }
    let mut orders = state.orders.clone();
    let result = match orders.ready().await {
        Ok(service) => service.call(id).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(order) => {
            state.business.jobs_processed("order_lookup", "ok");
            state.business.processing_time("order_lookup", "ok", began.elapsed().as_secs_f64());
            (StatusCode::OK, Json(order))
        }
        Err(error) => {
            state.business.jobs_processed("order_lookup", "failed");
            tracing::error!(order = id, error = %error, "order lookup failed");
            (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({"error": error.to_string()})))
        }
    }
}

async fn set_database(State(state): State<AppState>, Path(target): Path<String>) -> impl IntoResponse {
    let down = match target.as_str() {
        "down" => true,
        "up" => false,
        _ => return (StatusCode::NOT_FOUND, "use /admin/database/down or /admin/database/up\n"),
    };
    state.database.down.store(down, Ordering::SeqCst);
    tracing::warn!(database_down = down, "database switched by the admin endpoint");
    (StatusCode::OK, "ok\n")
}

async fn set_bug(State(state): State<AppState>, Path(percent): Path<u8>) -> impl IntoResponse {
    if percent > 100 {
        return (StatusCode::BAD_REQUEST, "a percentage: 0 to 100\n");
    }
    state.bug.0.store(percent, Ordering::SeqCst);
    tracing::warn!(bug_percent = percent, "bug switched by the admin endpoint");
    (StatusCode::OK, "ok\n")
}

fn bare_router() -> Router {
    Router::new().route("/health/ready", get(|| async { StatusCode::OK }))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _tracing = enclave_monitor::logging::init_with_otlp("example-service", args.otlp_endpoint.as_deref())?;
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    if args.bare {
        axum::serve(listener, bare_router()).with_graceful_shutdown(shutdown()).await?;
        return Ok(());
    }

    let database = Arc::new(Database { pool: Semaphore::new(8), down: AtomicBool::new(args.database_down) });
    let mut metrics = MetricsBuilder::new();
    let breaker = CircuitBreakerLayer::new(
        "database",
        BreakerConfig {
            window: 20,
            minimum_calls: 5,
            failure_rate: 0.5,
            open_for: Duration::from_secs(10),
            half_open_calls: 2,
        },
        Some(metrics.breakers()),
    );
    let ping = database.clone();
    let health = Health::builder()
        .dependency("database", "database", true, Duration::from_secs(1), DatabaseCheck(ping))
        .dependency("payments-api", "http", false, Duration::from_secs(1), FnCheck(|| async { Ok(()) }))
        .cache_for(Duration::from_secs(args.health_refresh_seconds))
        .metrics(metrics.dependencies())
        .build();
    let state = AppState {
        orders: orders_service(database.clone(), breaker),
        database: database.clone(),
        business: metrics.business(),
        bug: Arc::new((AtomicU8::new(args.bug_percent), AtomicU64::new(0))),
    };
    let red = RedLayer::new(metrics.http());
    let app = Router::new().route("/orders/{id}", get(get_order)).with_state(state.clone()).layer(red);
    let mut internal = health.router().merge(metrics.build().router());
    if args.admin {
        internal = internal.merge(
            Router::new()
                .route("/admin/database/{state}", post(set_database))
                .route("/admin/bug/{percent}", post(set_bug))
                .with_state(state),
        );
    }
    let internal_listener = tokio::net::TcpListener::bind(args.internal_listen).await?;

    health.spawn_refresh(Duration::from_secs(args.health_refresh_seconds));
    if let Some(seconds) = args.database_fails_after {
        let database = database.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(seconds)).await;
            database.down.store(true, Ordering::SeqCst);
            tracing::warn!("database failure injected");
        });
    }
    health.mark_started();
    tracing::info!(listen = %args.listen, internal = %args.internal_listen, "example-service started");
    let internal_server =
        tokio::spawn(async move { axum::serve(internal_listener, internal).with_graceful_shutdown(shutdown()).await });
    axum::serve(listener, app).with_graceful_shutdown(shutdown()).await?;
    internal_server.await??;
    Ok(())
}

struct DatabaseCheck(Arc<Database>);

#[async_trait::async_trait]
impl Check for DatabaseCheck {
    async fn check(&self) -> Result<(), CheckError> {
        self.0.ping().await
    }
}

async fn shutdown() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => return interrupt.await.unwrap_or_default(),
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    interrupt.await.unwrap_or_default();
}

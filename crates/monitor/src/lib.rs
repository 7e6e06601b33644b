//! `enclave-monitor`: what application teams link into their own services, and what enclave
//! renders to watch them.
//!
//! With the default `runtime` feature:
//! - [`health`]: `/health/live`, `/health/ready`, `/health/startup` and the deep `/health`,
//!   with Kubernetes probe semantics, per-check timeouts, concurrent checks and a cache that
//!   keeps probe storms from becoming dependency storms.
//! - [`metrics`]: RED metrics per route as a tower layer, dependency and circuit-breaker
//!   metrics, business metrics, `/metrics` in OpenMetrics text (`prometheus-client`).
//! - [`resilience`]: timeout, retry with exponential backoff, full jitter and a budget, circuit
//!   breaker; the module docs give the order to stack them in.
//! - [`logging`]: JSON log lines that Filebeat's `ndjson` parser reads as they are.
//!
//! Always (pure, no async): [`render`] turns an app of the spec into alert rules (a
//! `PrometheusRule` and a plain rule file with its promtool unit tests), a Grafana dashboard, a
//! `ServiceMonitor`, a Filebeat input and Kubernetes probe specs; [`alerting`] turns the spec's
//! `alerting` section into the Alertmanager configuration that routes those alerts.
//!
//! The crate never depends on an AWS SDK.
//!
//! ```no_run
//! use std::time::Duration;
//! use enclave_monitor::health::{CheckError, FnCheck, Health};
//! use enclave_monitor::metrics::{MetricsBuilder, RedLayer};
//!
//! # async fn run() -> std::io::Result<()> {
//! let mut metrics = MetricsBuilder::new();
//! let health = Health::builder()
//!     .dependency("database", "database", true, Duration::from_secs(1), FnCheck(|| async { Ok::<(), CheckError>(()) }))
//!     .metrics(metrics.dependencies())
//!     .build();
//! let app = axum::Router::new()
//!     .route("/orders", axum::routing::get(|| async { "[]" }))
//!     .layer(RedLayer::new(metrics.http()))
//!     .merge(health.router())
//!     .merge(metrics.build().router());
//! health.spawn_refresh(Duration::from_secs(5));
//! health.mark_started();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
#![deny(missing_docs)]

pub mod alerting;
#[cfg(feature = "runtime")]
pub mod health;
#[cfg(feature = "runtime")]
pub mod logging;
#[cfg(feature = "runtime")]
pub mod metrics;
pub mod render;
#[cfg(feature = "runtime")]
pub mod resilience;

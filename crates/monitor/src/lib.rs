//! `enclave-monitor`: what application teams link into their own services.
//!
//! This crate will own health endpoints (live, ready, startup, deep) as an axum router, a RED
//! metrics tower layer, resilience layers (timeout, retry with budget, circuit breaker), and
//! rendered alert rules, dashboards, `ServiceMonitor`s and log and trace set-up. It will never
//! depend on an AWS SDK.
//!
//! Nothing is implemented yet.
#![deny(missing_docs)]

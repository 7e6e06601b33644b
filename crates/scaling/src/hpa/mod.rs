//! The upstream HPA algorithm and a simulator over load traces.
//!
//! [`calculator`] turns pod metrics into a replica proposal, [`controller`] normalizes it
//! (stabilization, rate limits, min and max), and [`simulate`] replays both every sync period
//! over a trace. Both follow Kubernetes' `pkg/controller/podautoscaler` and are checked against
//! its test tables (`crates/scaling/tests/upstream_hpa.rs`).

pub mod calculator;
pub mod chart;
pub mod controller;
pub mod simulate;

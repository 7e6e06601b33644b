//! `enclave-scaling`: how workloads and nodes scale, rendered from the spec.
//!
//! This crate will own `autoscaling/v2` HorizontalPodAutoscalers, VerticalPodAutoscalers,
//! the Cluster Autoscaler deployment and its node-group discovery tags, custom-metric scaling,
//! PodDisruptionBudgets, topology spread, ResourceQuota and LimitRange, and an HPA simulator
//! that replays the upstream controller algorithm over a load trace. It needs no AWS SDK.
//!
//! Nothing is implemented yet.
#![deny(missing_docs)]

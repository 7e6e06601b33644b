//! `enclave-deploy`: from an app in the spec to running, verified pods.
//!
//! This crate will own app bundles (Deployment, Service, probes, security context), ECR
//! repositories, EKS clusters and node groups, blue-green orchestration with health and metric
//! gates through kube-rs, and delivery pipeline rendering.
//!
//! Nothing is implemented yet: the spec shape it will read (`clusters`, `apps`) is parsed and
//! validated by `enclave-core` today.
#![deny(missing_docs)]

//! `enclave-deploy`: from an app in the spec to running, verified pods.
//!
//! Today: [`workload`], each app's Namespace (Pod Security Admission `restricted`),
//! ServiceAccount, Deployment and Services, typed, with pods that meet the restricted profile
//! and drain before they stop. The binary adds them to each cluster's bundle beside the scaling
//! and monitoring objects that target them.
//!
//! [`network`]: NetworkPolicies from the spec's declared calls (default deny per namespace, then
//! each app's callers in and its dependencies out).
//!
//! Still to come (issue 13 and after): ECR repositories, EKS clusters and node groups, blue-green orchestration through kube-rs, and
//! the delivery pipeline.
#![deny(missing_docs)]

#[cfg(feature = "aws")]
pub mod apply;
#[cfg(feature = "aws")]
pub mod clients;
pub mod guardrails;
pub mod kind;
pub mod model;
pub mod network;
#[cfg(feature = "aws")]
pub mod observe;
pub mod resources;
#[cfg(feature = "aws")]
pub mod scan;
pub mod workload;

pub use model::DeployModel;

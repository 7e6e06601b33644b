//! `enclave-deploy`: from an app in the spec to running, verified pods.
//!
//! **In the cluster** (pure, typed k8s-openapi objects the binary adds to each cluster's
//! bundle): [`workload`], each app's Namespace (Pod Security Admission `restricted`),
//! ServiceAccount, Deployment and Services, with pods that meet the restricted profile and
//! drain before they stop; [`network`], NetworkPolicies from the spec's declared calls (default
//! deny per namespace, then each app's callers in and its dependencies out); [`mesh`], the
//! Istio objects of a mesh cluster from the same declarations (mutual TLS, authorization,
//! timeouts, retries, outlier detection, egress); [`addons`], the controllers and monitoring
//! stack those objects rely on, as GitOps objects with pinned charts and values from the spec
//! (`ADD` rules in `addons::guardrails`).
//!
//! **In AWS** (the `deploy` component of every plan): [`model::build`] computes the registry and
//! the clusters from the spec and the network's tier placement; [`resources::desired`] turns
//! them into plan resources ([`kind::Kind`]): per app an ECR repository in the registry account,
//! per cluster its role, the private encrypted logged cluster, its OIDC provider, add-ons and
//! access entries, per node group a node role, a launch template and the managed node group;
//! [`guardrails`] holds the `DEP` rules. With the `aws` feature: `clients`, `observe` (listing,
//! since the tagging API covers neither ECR nor EKS in moto), `apply` (the `Registry`
//! provider for every kind) and `scan` (an image's findings for `enclave deploy scan-gate`).
//! Without it the crate is pure.
//!
//! **Delivery**: [`rollout`], blue-green rollouts with Argo Rollouts' semantics (the state
//! machine and analysis, pure; with the `cluster` feature, the kube-rs driver behind `enclave
//! rollout`); [`pipeline`], the GitHub Actions workflow of each app (`enclave render pipeline`).
#![deny(missing_docs)]

pub mod addons;
#[cfg(feature = "aws")]
pub mod apply;
#[cfg(feature = "aws")]
pub mod clients;
pub mod guardrails;
pub mod kind;
pub mod mesh;
pub mod model;
pub mod network;
#[cfg(feature = "aws")]
pub mod observe;
pub mod pipeline;
pub mod resources;
pub mod rollout;
#[cfg(feature = "aws")]
pub mod scan;
pub mod severity;
pub mod workload;

pub use model::DeployModel;

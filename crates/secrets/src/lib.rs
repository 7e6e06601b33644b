//! `enclave-secrets`: secrets from AWS Secrets Manager to pods, without a value ever in a plan,
//! a log or a file enclave writes.
//!
//! - [`model`]: which app keeps which secret in which account, the role reading them.
//! - [`values`]: values read from where the spec says (generated, an environment variable, a
//!   file); problems name the field, never the value.
//! - [`resources`]: the desired secrets, IAM roles and Pod Identity associations (component
//!   `secrets`), with [`policy`] for every document.
//! - [`render`]: External Secrets Operator objects and the pod's read-only secret volumes.
//! - [`seal`]: kubeseal-compatible Sealed Secrets (seal, unseal, merge, re-encrypt).
//! - [`guardrails`]: `SEC001`... over the desired resources and rendered objects.
//! - With feature `aws`: `clients`, `observe`, `apply` (Secrets Manager, IAM, EKS, KMS).
#![deny(missing_docs)]

pub mod guardrails;
pub mod kind;
pub mod model;
pub mod policy;
pub mod render;
pub mod resources;
pub mod seal;
pub mod values;

#[cfg(feature = "aws")]
pub mod apply;
#[cfg(feature = "aws")]
pub mod clients;
#[cfg(feature = "aws")]
pub mod observe;

#[cfg(test)]
mod testing;

pub use model::{SecretsModel, build};

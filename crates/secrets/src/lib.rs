//! `enclave-secrets`: secrets from AWS Secrets Manager to pods, without a value ever in a plan.
//!
//! This crate will own Secrets Manager secrets (metadata only; values never appear in logs,
//! plans or snapshots), External Secrets Operator objects (`SecretStore`, `ExternalSecret`),
//! kubeseal-compatible Sealed Secrets, IRSA trust policies and EKS Pod Identity associations.
//!
//! Nothing is implemented yet.
#![deny(missing_docs)]

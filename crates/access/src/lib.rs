//! `enclave-access`: how operators reach the platform and how it is audited.
//!
//! This crate will own the Session Manager baseline (preferences document, the interface
//! endpoints it needs, instance profiles), bastion hosts reachable only through Session Manager,
//! least-privilege IAM roles and instance profiles, the organization CloudTrail and its bucket,
//! and rendered mesh security (Istio `PeerAuthentication`, `AuthorizationPolicy`), admission
//! policy (Gatekeeper) and runtime rules (Falco).
//!
//! Nothing is implemented yet: the spec shape it will read (`access`, `audit`) is parsed and
//! validated by `enclave-core` today.
#![deny(missing_docs)]

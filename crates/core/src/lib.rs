//! `enclave-core`: the pure heart of enclave.
//!
//! It owns the platform [`Spec`] and how it is loaded from layered YAML ([`config`], with the
//! merge rules in [`merge`]), validation whose every error names file, line, column and field
//! ([`Diagnostic`]), logical resource [`Address`]es, the [`plan`] model (desired vs observed,
//! ordered changes with reasons), the [`reconcile`] engine that carries a plan out through a
//! domain's provider, and the [`guardrail`] framework.
//!
//! It is not an AWS or Kubernetes client: no async runtime, no network, no SDK (the engine only
//! drives the provider's futures). Domain crates
//! (`enclave-net`, ...) turn a spec into desired resources and findings; the `enclave` binary
//! wires them together.
//!
//! ```
//! use enclave_core::config;
//!
//! let loaded = config::load_str("spec.yaml", r#"
//! organization: { name: acme, region: eu-west-1 }
//! network:
//!   tiers: [{ name: app, size: 20, slot: 0 }]
//! accounts:
//!   - { name: dev, id: "111111111111", environment: dev, vpc_cidr: 10.1.0.0/16 }
//! "#)?;
//! assert_eq!(loaded.spec.accounts[0].network.azs, 3);
//!
//! let error = config::load_str("spec.yaml", "organization: { name: acme, region: eu-west-1, colour: blue }\naccounts: []\n")
//!     .unwrap_err();
//! assert!(error.to_string().starts_with("spec.yaml:1:48: organization.colour: unknown field `colour`"));
//! # Ok::<(), enclave_core::Error>(())
//! ```
#![deny(missing_docs)]

pub mod address;
pub mod bundle;
pub mod config;
mod error;
pub mod exception;
pub mod guardrail;
pub mod iam;
pub mod merge;
pub mod names;
pub mod plan;
pub mod quantity;
pub mod reconcile;
pub mod redact;
pub mod region;
pub mod secret;
pub mod source;
pub mod spec;
pub mod validate;
pub mod yaml;

pub use address::Address;
pub use config::{LoadOptions, Loaded, load};
pub use error::{Diagnostic, Error, Result, Violation};
pub use source::{FieldPath, Span};
pub use spec::Spec;

//! `enclave-net`: the private network of every account.
//!
//! The pure part, available today: the stable CIDR planner ([`cidr`]), the private-subnet
//! topology ([`model`]: workload tiers with no internet route, an egress tier holding only NAT
//! gateways, interface endpoints behind a 443-from-the-VPC security group, gateway endpoints on
//! the private route tables, an emptied default security group, flow logs), the model as plan
//! resources ([`resources`]) and the network guardrails ([`guardrails`]).
//!
//! Every resource kind is a [`kind::Kind`], shared by the plan resources, observation and
//! apply, with the attributes an update may change in place.
//!
//! With the default `aws` feature, [`observe`] rebuilds what exists from tag-filtered, batched
//! Describe calls, and [`apply::Network`] is the [`enclave_core::reconcile::Provider`] that
//! creates, updates and deletes every network kind through the reconciler toolkit of
//! `enclave-aws` (ownership checked on the client, lookups before any retried create, bounded
//! waits, typed errors); drift is a non-empty plan, destroy the plan against an empty spec.
//!
//! ```
//! use enclave_core::{config, plan};
//!
//! let loaded = config::load_str("spec.yaml", r#"
//! organization: { name: acme, region: eu-west-1 }
//! network:
//!   tiers: [{ name: app, size: 20, slot: 0 }]
//! accounts:
//!   - { name: dev, id: "111111111111", environment: dev, vpc_cidr: 10.1.0.0/16 }
//! "#)?;
//! let model = enclave_net::build(&loaded.spec).map_err(|v| loaded.locate(v))?;
//! assert_eq!(model.accounts[0].subnets[0].cidr.to_string(), "10.1.0.0/20");
//! assert!(enclave_net::guardrails::rules().run(&model).findings.is_empty());
//!
//! let plan = plan::diff(&enclave_net::resources::desired(&model), &[]).expect("acyclic");
//! assert_eq!(plan.changes[0].address.to_string(), "dev/net/vpc/main");
//! # Ok::<(), enclave_core::Error>(())
//! ```
#![deny(missing_docs)]

#[cfg(feature = "aws")]
pub mod apply;
pub mod cidr;
#[cfg(feature = "aws")]
pub mod clients;
pub mod guardrails;
pub mod kind;
pub mod model;
#[cfg(feature = "aws")]
pub mod observe;
pub mod resources;

pub use cidr::validate;
pub use model::{NetworkModel, build};

//! `enclave-access`: how operators reach the platform and how it is audited.
//!
//! Per account, from the spec's `access` and `audit` blocks:
//! - the **Session Manager baseline**: a KMS key (rotation on) with its alias, session logs in
//!   an S3 bucket (public access blocked, versioned, SSE-KMS, TLS only, expiring) and a
//!   CloudWatch Logs group, the `SSM-SessionManagerRunShell` preferences document, the instance
//!   role and profile (`AmazonSSMManagedInstanceCore` plus only the logging rights), and a
//!   managed policy for people (sessions only on the stack's instances, with its document);
//! - a **bastion** where enabled: a security group without inbound rules, a launch template
//!   (no key pair, no public IP, IMDSv2 with one hop, encrypted root volume) and one instance in
//!   the spec's tier;
//! - **CloudTrail** where enabled: a trail (multi-region, validated, SSE-KMS, a CloudWatch Logs
//!   copy through a role that may only write there) and its bucket.
//!
//! [`model::build`] computes what each account gets; [`resources::desired`] turns it into plan
//! resources under the `access` component (some after the network's resources: the bastion
//! after its subnet); [`policy`] holds every document; [`guardrails`] the `ACC` rules. Kinds
//! are the closed [`kind::Kind`]. [`connect`] builds the Session Manager command to a bastion.
//!
//! In the clusters: [`admission`], Gatekeeper ConstraintTemplates (Rego) and Constraints for
//! the platform's admission rules; [`runtime`], the Falco rules file of each cluster's workloads
//! (lists and macros from the spec: app namespaces, images, the networks pods may reach).
//!
//! With the `aws` feature: `clients` (every service client of one account), `observe` (one
//! paged `tag:GetResources` plus one read per EC2, IAM, KMS, S3, SSM and CloudTrail type,
//! ownership checked on the client), `apply` (the `Provider` for every kind, through
//! `enclave_aws::reconcile`) and the AWS half of `connect` (finding the running bastion, its
//! agent's status). Without it the crate is pure.
#![deny(missing_docs)]

pub mod admission;
#[cfg(feature = "aws")]
pub mod apply;
#[cfg(feature = "aws")]
pub mod clients;
pub mod connect;
pub mod guardrails;
pub mod kind;
pub mod model;
#[cfg(feature = "aws")]
pub mod observe;
pub mod policy;
pub mod resources;
pub mod runtime;

pub use model::{AccessModel, Image, Placement};

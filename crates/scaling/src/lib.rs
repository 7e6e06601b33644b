//! `enclave-scaling`: how workloads and nodes scale, rendered from the spec, and what an HPA
//! would do before it is deployed.
//!
//! - [`render`]: per app an `autoscaling/v2` HorizontalPodAutoscaler (CPU, memory, pods and
//!   external metrics, `behavior`), a VerticalPodAutoscaler, a PodDisruptionBudget and topology
//!   spread constraints; per namespace a ResourceQuota and LimitRange sized to the apps'
//!   ceilings; per cluster the Cluster Autoscaler (IRSA service account, least-privilege RBAC,
//!   auto-discovery of node groups by tag, balanced similar node groups) and the
//!   prometheus-adapter rules behind custom metrics.
//! - [`mod@validate`]: what the spec must not ask for, such as a VPA and an HPA fighting over the same
//!   resource.
//! - [`hpa`]: the upstream HPA algorithm (replica calculator and controller normalization) and a
//!   simulator that replays it over a load trace.
//!
//! Custom metrics go through **prometheus-adapter**, not KEDA: the HPA stays the only thing that
//! scales a Deployment (a KEDA `ScaledObject` creates and owns its own HPA, which would fight
//! ours), the adapter is one Deployment with no CRDs, and the rules are a ConfigMap that the
//! Kubernetes schema can check.
//!
//! The crate renders only; it needs no AWS SDK and no cluster.
//!
//! ```
//! use enclave_core::config;
//!
//! let loaded = config::load_str("spec.yaml", r#"
//! organization: { name: acme, region: eu-west-1 }
//! network: { tiers: [{ name: app, size: 20, slot: 0 }] }
//! accounts: [{ name: prod, id: "333333333333", environment: prod, vpc_cidr: 10.3.0.0/16 }]
//! clusters: [{ name: main, account: prod, version: "1.33" }]
//! apps:
//!   - name: web
//!     cluster: main
//!     image: web:1.0.0
//!     port: 8080
//!     autoscaling: { max_replicas: 10, cpu_utilization: 70 }
//! "#)?;
//! let bundle = enclave_scaling::render::render_cluster(&loaded.spec, &loaded.spec.clusters[0]).expect("renders");
//! assert!(bundle.objects().iter().any(|o| o.kind() == "HorizontalPodAutoscaler" && o.name() == "web"));
//! # Ok::<(), enclave_core::Error>(())
//! ```
#![deny(missing_docs)]

pub mod hpa;
pub mod render;
pub mod validate;

pub use validate::validate;

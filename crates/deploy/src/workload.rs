//! An app's workload objects, typed (k8s-openapi), never YAML text: its Namespace (Pod Security
//! Admission `restricted`, enforced), ServiceAccount (no token: nothing here calls the API), a
//! Deployment whose pods meet the restricted profile and every `enclave check` rule, a ClusterIP
//! Service on the traffic port only, and a ClusterIP `-metrics` Service on the internal port for
//! the ServiceMonitor `enclave-monitor` renders.
//!
//! What other crates define comes in through [`PodInputs`] (the binary composes them; domain
//! crates do not depend on each other): the probes of `enclave-monitor` and the topology spread of
//! `enclave-scaling`.
//!
//! Pods:
//! - run as [`RUN_AS`] (distroless's `nonroot`, numeric, above 10000), never root, with a
//!   read-only root filesystem, every capability dropped, no privilege escalation, the
//!   `RuntimeDefault` seccomp profile, and requests and limits from the spec;
//! - pull by digest when the image names one, else always pull the tag;
//! - drain before they stop: a `preStop` sleep as long as readiness takes to remove the pod
//!   from its Service (probe period x failure threshold, plus a margin), inside a termination
//!   grace period that leaves the app its shutdown time after it.

use std::collections::BTreeMap;

use enclave_core::names::METRICS_PORT_NAME;
use enclave_core::spec::AppSpec;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, Lifecycle, LifecycleHandler, Namespace, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile, SecurityContext, Service, ServiceAccount,
    ServicePort, ServiceSpec, SleepAction, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The user and group every app container runs as.
pub const RUN_AS: i64 = 65532;

/// The name of the traffic port on the container and the Service.
pub const TRAFFIC_PORT_NAME: &str = "http";

/// Seconds the app gets to finish in-flight work after its drain delay.
pub const SHUTDOWN_SECONDS: i64 = 30;

/// Seconds added to the drain delay for endpoint updates to reach every proxy.
pub const DRAIN_MARGIN_SECONDS: i64 = 5;

/// What other crates define for the app's pods.
#[derive(Clone, Debug, Default)]
pub struct PodInputs {
    /// Startup, liveness and readiness probes (`enclave-monitor`), on the internal port.
    pub probes: (Probe, Probe, Probe),
    /// Spread across zones and nodes (`enclave-scaling`).
    pub topology_spread: Vec<TopologySpreadConstraint>,
    /// Volumes of the pod and their mounts in the app's container (`enclave-secrets`: each of
    /// the app's secrets, synced into a Kubernetes Secret by the External Secrets Operator,
    /// read-only).
    pub volumes: Vec<(k8s_openapi::api::core::v1::Volume, k8s_openapi::api::core::v1::VolumeMount)>,
    /// Labels added to the pods (the mesh's: [`crate::mesh::pod_labels`]).
    pub pod_labels: BTreeMap<String, String>,
    /// Environment variables of the app's container (where the collector is:
    /// [`crate::addons::collector_env`]); never secrets, which are files.
    pub env: Vec<k8s_openapi::api::core::v1::EnvVar>,
}

/// The labels of every object rendered for `app`.
fn labels(stack: &str, app: &AppSpec) -> BTreeMap<String, String> {
    let mut labels = app.selector();
    labels.insert("app.kubernetes.io/part-of".to_owned(), stack.to_owned());
    labels.insert("app.kubernetes.io/managed-by".to_owned(), "enclave".to_owned());
    labels
}

fn meta(stack: &str, app: &AppSpec, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(app.namespace().to_string()),
        labels: Some(labels(stack, app)),
        ..ObjectMeta::default()
    }
}

/// The app's namespace, with Pod Security Admission's `restricted` profile enforced (and
/// audited and warned on), at the latest version of the profile.
pub fn namespace(stack: &str, name: &str) -> Namespace {
    let mut labels = BTreeMap::from([
        ("app.kubernetes.io/part-of".to_owned(), stack.to_owned()),
        ("app.kubernetes.io/managed-by".to_owned(), "enclave".to_owned()),
    ]);
    for mode in ["enforce", "audit", "warn"] {
        labels.insert(format!("pod-security.kubernetes.io/{mode}"), "restricted".to_owned());
        labels.insert(format!("pod-security.kubernetes.io/{mode}-version"), "latest".to_owned());
    }
    Namespace {
        metadata: ObjectMeta { name: Some(name.to_owned()), labels: Some(labels), ..ObjectMeta::default() },
        ..Namespace::default()
    }
}

/// The app's own ServiceAccount; its token is never mounted (the app does not call the
/// Kubernetes API).
pub fn service_account(stack: &str, app: &AppSpec) -> ServiceAccount {
    ServiceAccount {
        metadata: meta(stack, app, app.name.as_str()),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}

/// Whether the image is pinned by digest (`...@sha256:...`).
pub fn pinned_by_digest(image: &str) -> bool {
    image.contains("@sha256:")
}

/// How long a stopping pod keeps serving while readiness takes it out of its Service.
pub fn drain_seconds(app: &AppSpec) -> i64 {
    let timing = &app.monitoring.health;
    let period = i64::try_from(timing.period.seconds()).unwrap_or(i64::MAX).max(1);
    period.saturating_mul(i64::from(timing.failure_threshold)).saturating_add(DRAIN_MARGIN_SECONDS)
}

fn container_security() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        privileged: Some(false),
        run_as_non_root: Some(true),
        run_as_user: Some(RUN_AS),
        run_as_group: Some(RUN_AS),
        capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), ..Capabilities::default() }),
        seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), ..SeccompProfile::default() }),
        ..SecurityContext::default()
    }
}

/// The app's Deployment. Without autoscaling it runs `replicas`; with it, the replica count is
/// left to the HorizontalPodAutoscaler (a fixed count here would fight it on every apply).
pub fn deployment(stack: &str, app: &AppSpec, inputs: &PodInputs) -> Deployment {
    let requests = BTreeMap::from([
        ("cpu".to_owned(), Quantity(app.resources.requests.cpu.to_string())),
        ("memory".to_owned(), Quantity(app.resources.requests.memory.to_string())),
    ]);
    let limits = BTreeMap::from([
        ("cpu".to_owned(), Quantity(app.resources.limits.cpu.to_string())),
        ("memory".to_owned(), Quantity(app.resources.limits.memory.to_string())),
    ]);
    let (startup, liveness, readiness) = inputs.probes.clone();
    let drain = drain_seconds(app);
    let container = Container {
        name: app.name.to_string(),
        image: Some(app.image.clone()),
        image_pull_policy: Some(if pinned_by_digest(&app.image) { "IfNotPresent" } else { "Always" }.to_owned()),
        env: (!inputs.env.is_empty()).then(|| inputs.env.clone()),
        volume_mounts: (!inputs.volumes.is_empty())
            .then(|| inputs.volumes.iter().map(|(_, mount)| mount.clone()).collect()),
        ports: Some(vec![
            ContainerPort {
                name: Some(TRAFFIC_PORT_NAME.to_owned()),
                container_port: i32::from(app.port),
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            },
            ContainerPort {
                name: Some(METRICS_PORT_NAME.to_owned()),
                container_port: i32::from(app.monitoring.port),
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            },
        ]),
        resources: Some(ResourceRequirements {
            requests: Some(requests),
            limits: Some(limits),
            ..ResourceRequirements::default()
        }),
        startup_probe: Some(startup),
        liveness_probe: Some(liveness),
        readiness_probe: Some(readiness),
        lifecycle: Some(Lifecycle {
            // A sleep action: distroless images have no shell to run `sleep` in.
            pre_stop: Some(LifecycleHandler {
                sleep: Some(SleepAction { seconds: drain }),
                ..LifecycleHandler::default()
            }),
            ..Lifecycle::default()
        }),
        security_context: Some(container_security()),
        ..Container::default()
    };
    let selector = app.selector();
    let mut pod_labels = labels(stack, app);
    pod_labels.extend(inputs.pod_labels.clone());
    pod_labels.extend(selector.clone());
    Deployment {
        metadata: meta(stack, app, app.name.as_str()),
        spec: Some(DeploymentSpec {
            replicas: app.autoscaling.is_none().then_some(i32::from(app.replicas)),
            selector: LabelSelector { match_labels: Some(selector), ..LabelSelector::default() },
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::String("25%".into())),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(pod_labels), ..ObjectMeta::default() }),
                spec: Some(PodSpec {
                    service_account_name: Some(app.name.to_string()),
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    termination_grace_period_seconds: Some(drain + SHUTDOWN_SECONDS),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(RUN_AS),
                        run_as_group: Some(RUN_AS),
                        fs_group: Some(RUN_AS),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".into(),
                            ..SeccompProfile::default()
                        }),
                        ..PodSecurityContext::default()
                    }),
                    topology_spread_constraints: (!inputs.topology_spread.is_empty())
                        .then(|| inputs.topology_spread.clone()),
                    volumes: (!inputs.volumes.is_empty())
                        .then(|| inputs.volumes.iter().map(|(volume, _)| volume.clone()).collect()),
                    containers: vec![container],
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

fn service(stack: &str, app: &AppSpec, name: &str, port_name: &str, port: u16) -> Service {
    Service {
        metadata: meta(stack, app, name),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(app.selector()),
            ports: Some(vec![ServicePort {
                name: Some(port_name.to_owned()),
                port: i32::from(port),
                target_port: Some(IntOrString::String(port_name.to_owned())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// The app's Service: ClusterIP, the traffic port only (probes and metrics are never routed).
pub fn traffic_service(stack: &str, app: &AppSpec) -> Service {
    service(stack, app, app.name.as_str(), TRAFFIC_PORT_NAME, app.port)
}

/// `<app>-metrics`: ClusterIP, the internal port only, for the ServiceMonitor (which scrapes
/// the port named [`METRICS_PORT_NAME`]).
pub fn metrics_service(stack: &str, app: &AppSpec) -> Service {
    service(stack, app, &format!("{}-metrics", app.name), METRICS_PORT_NAME, app.monitoring.port)
}

/// Every workload object of `app`, as JSON values for a bundle (its namespace comes from
/// [`namespace`], once per namespace).
pub fn render_app(stack: &str, app: &AppSpec, inputs: &PodInputs) -> Vec<serde_json::Value> {
    let value = |object: serde_json::Result<serde_json::Value>| object.unwrap_or(serde_json::Value::Null);
    vec![
        value(serde_json::to_value(service_account(stack, app))),
        value(serde_json::to_value(deployment(stack, app, inputs))),
        value(serde_json::to_value(traffic_service(stack, app))),
        value(serde_json::to_value(metrics_service(stack, app))),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(extra: &str) -> AppSpec {
        let text = format!(
            "organization: {{ name: acme, region: eu-west-1 }}\nnetwork: {{ tiers: [{{ name: app, size: 20, slot: 0 }}] }}\n\
             accounts: [{{ name: prod, id: \"333333333333\", environment: prod, vpc_cidr: 10.3.0.0/16 }}]\n\
             clusters: [{{ name: main, account: prod, version: \"1.33\" }}]\n\
             apps: [{{ name: orders, cluster: main, namespace: shop, image: \"example/orders:1.0\", port: 8080{extra} }}]\n"
        );
        enclave_core::config::load_str("spec.yaml", &text).expect("valid").spec.apps.remove(0)
    }

    #[test]
    fn pods_meet_the_restricted_profile_and_drain_before_stopping() {
        let app = app("");
        let deployment = deployment("acme", &app, &PodInputs::default());
        let spec = deployment.spec.expect("spec");
        let pod = spec.template.spec.expect("pod");
        let pod_security = pod.security_context.expect("pod security");
        assert_eq!((pod_security.run_as_non_root, pod_security.run_as_user), (Some(true), Some(RUN_AS)));
        assert_eq!(pod.automount_service_account_token, Some(false));
        let container = &pod.containers[0];
        let security = container.security_context.as_ref().expect("container security");
        assert_eq!(security.allow_privilege_escalation, Some(false));
        assert_eq!(security.read_only_root_filesystem, Some(true));
        assert_eq!(security.capabilities.as_ref().and_then(|c| c.drop.clone()), Some(vec!["ALL".to_owned()]));
        assert_eq!(container.image_pull_policy.as_deref(), Some("Always"), "a tag is always pulled");
        // Default probe timing: 10 s period x 3 failures, plus the margin.
        let drain = container.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()).and_then(|h| h.sleep.as_ref());
        assert_eq!(drain.map(|s| s.seconds), Some(35));
        assert_eq!(pod.termination_grace_period_seconds, Some(35 + SHUTDOWN_SECONDS));
        assert_eq!(spec.replicas, Some(2), "the spec's replicas without autoscaling");
    }

    #[test]
    fn an_autoscaled_app_leaves_its_replica_count_to_the_hpa_and_a_digest_is_not_pulled_again() {
        let mut app = app(", autoscaling: { min_replicas: 3, max_replicas: 6, cpu_utilization: 70 }");
        app.image = format!("example/orders:1.0@sha256:{}", "a".repeat(64));
        let spec = deployment("acme", &app, &PodInputs::default()).spec.expect("spec");
        assert_eq!(spec.replicas, None);
        let pod = spec.template.spec.expect("pod");
        assert_eq!(pod.containers[0].image_pull_policy.as_deref(), Some("IfNotPresent"));
    }

    #[test]
    fn the_service_carries_only_the_traffic_port_and_the_metrics_service_only_the_internal_one() {
        let app = app("");
        let ports = |service: Service| -> Vec<(String, i32)> {
            service
                .spec
                .and_then(|s| s.ports)
                .unwrap_or_default()
                .into_iter()
                .map(|p| (p.name.unwrap_or_default(), p.port))
                .collect()
        };
        assert_eq!(ports(traffic_service("acme", &app)), [("http".to_owned(), 8080)]);
        assert_eq!(ports(metrics_service("acme", &app)), [(METRICS_PORT_NAME.to_owned(), 9090)]);
        let namespace = namespace("acme", "shop");
        let labels = namespace.metadata.labels.expect("labels");
        assert_eq!(labels.get("pod-security.kubernetes.io/enforce").map(String::as_str), Some("restricted"));
    }
}

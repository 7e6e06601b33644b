//! The log and trace store, as ECK's resources: `Elasticsearch` and `Kibana` in the monitoring
//! namespace, sized from the spec, and Filebeat as a `Beat` DaemonSet with the inputs
//! `enclave-monitor` renders for each app, shipping to that Elasticsearch.

use std::collections::BTreeMap;

use enclave_core::names::MONITORING_NAMESPACE;
use enclave_core::spec::ElasticsearchSizing;
use k8s_openapi::api::core::v1::{
    Container, EnvVar, EnvVarSource, HostPathVolumeSource, ObjectFieldSelector, PersistentVolumeClaimSpec,
    PodSecurityContext, PodSpec, PodTemplateSpec, SecurityContext, ServiceAccount, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use super::values::{resources, restricted_container, restricted_pod};

/// The Elastic Stack version of Elasticsearch, Kibana and Filebeat (supported by the pinned
/// ECK operator).
pub const STACK_VERSION: &str = "9.4.3";
/// The Elasticsearch resource's name; ECK names its Service `<name>-es-http` and the `elastic`
/// user's Secret `<name>-es-elastic-user`.
pub const ELASTICSEARCH: &str = "elasticsearch";
/// The Beat's namespace: it reads the nodes' log files, apart from everything else.
pub const FILEBEAT_NAMESPACE: &str = "filebeat";
const FILEBEAT: &str = "filebeat";

/// Elasticsearch's HTTPS endpoint inside the cluster.
pub fn elasticsearch_url() -> String {
    format!("https://{ELASTICSEARCH}-es-http.{MONITORING_NAMESPACE}.svc:9200")
}

/// The Secret holding the certificate authority of Elasticsearch's HTTP endpoint (key `ca.crt`).
pub fn http_ca_secret() -> String {
    format!("{ELASTICSEARCH}-es-http-certs-public")
}

/// The Secret ECK keeps the `elastic` user's password in (key `elastic`).
pub fn elastic_user_secret() -> String {
    format!("{ELASTICSEARCH}-es-elastic-user")
}

/// `elasticsearch.k8s.elastic.co/v1` Elasticsearch.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Elasticsearch {
    api_version: &'static str,
    kind: &'static str,
    metadata: ObjectMeta,
    spec: ElasticsearchSpec,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ElasticsearchSpec {
    version: String,
    node_sets: Vec<NodeSet>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct NodeSet {
    name: String,
    count: i32,
    config: BTreeMap<String, serde_json::Value>,
    pod_template: PodTemplateSpec,
    volume_claim_templates: Vec<ClaimTemplate>,
}

#[derive(Clone, Debug, Serialize)]
struct ClaimTemplate {
    metadata: ObjectMeta,
    spec: PersistentVolumeClaimSpec,
}

/// `kibana.k8s.elastic.co/v1` Kibana.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Kibana {
    api_version: &'static str,
    kind: &'static str,
    metadata: ObjectMeta,
    spec: KibanaSpec,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct KibanaSpec {
    version: String,
    count: i32,
    elasticsearch_ref: ObjectRef,
    pod_template: PodTemplateSpec,
}

#[derive(Clone, Debug, Serialize)]
struct ObjectRef {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
}

/// `beat.k8s.elastic.co/v1beta1` Beat.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Beat {
    api_version: &'static str,
    kind: &'static str,
    metadata: ObjectMeta,
    spec: BeatSpec,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct BeatSpec {
    #[serde(rename = "type")]
    type_: String,
    version: String,
    elasticsearch_ref: ObjectRef,
    config: serde_json::Value,
    daemon_set: DaemonSetSpec,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DaemonSetSpec {
    pod_template: PodTemplateSpec,
}

fn meta(stack: &str, name: &str, namespace: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(namespace.to_owned()),
        labels: Some(super::labels(stack, name)),
        ..ObjectMeta::default()
    }
}

fn pod(container: Container, security: PodSecurityContext) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: None,
        spec: Some(PodSpec { containers: vec![container], security_context: Some(security), ..PodSpec::default() }),
    }
}

/// The Elasticsearch cluster: `nodes` nodes, each master-eligible and data, memory as request
/// and limit, no memory mapping (so no privileged `sysctl` init container is needed).
pub fn elasticsearch(stack: &str, sizing: &ElasticsearchSizing) -> Elasticsearch {
    let memory = sizing.memory.to_string();
    let container = Container {
        name: "elasticsearch".to_owned(),
        resources: Some(resources(sizing.cpu.as_str(), &memory, sizing.cpu.as_str(), &memory)),
        security_context: Some(restricted_container()),
        ..Container::default()
    };
    let claim = ClaimTemplate {
        // ECK's name for the data volume.
        metadata: ObjectMeta { name: Some("elasticsearch-data".to_owned()), ..ObjectMeta::default() },
        spec: PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_owned(), Quantity(sizing.storage.to_string()))])),
                limits: None,
            }),
            storage_class_name: sizing.storage_class.as_ref().map(ToString::to_string),
            ..PersistentVolumeClaimSpec::default()
        },
    };
    Elasticsearch {
        api_version: "elasticsearch.k8s.elastic.co/v1",
        kind: "Elasticsearch",
        metadata: meta(stack, ELASTICSEARCH, MONITORING_NAMESPACE),
        spec: ElasticsearchSpec {
            version: STACK_VERSION.to_owned(),
            node_sets: vec![NodeSet {
                name: "default".to_owned(),
                count: i32::from(sizing.nodes),
                config: BTreeMap::from([("node.store.allow_mmap".to_owned(), serde_json::json!(false))]),
                pod_template: pod(container, restricted_pod(1000)),
                volume_claim_templates: vec![claim],
            }],
        },
    }
}

/// Kibana, on the same Elasticsearch.
pub fn kibana(stack: &str, sizing: &ElasticsearchSizing) -> Kibana {
    let container = Container {
        name: "kibana".to_owned(),
        resources: Some(resources("250m", "1Gi", "1", "1Gi")),
        security_context: Some(restricted_container()),
        ..Container::default()
    };
    Kibana {
        api_version: "kibana.k8s.elastic.co/v1",
        kind: "Kibana",
        metadata: meta(stack, "kibana", MONITORING_NAMESPACE),
        spec: KibanaSpec {
            version: STACK_VERSION.to_owned(),
            count: i32::from(sizing.kibana_replicas),
            elasticsearch_ref: ObjectRef { name: ELASTICSEARCH.to_owned(), namespace: None },
            pod_template: pod(container, restricted_pod(1000)),
        },
    }
}

/// Where the container runtime keeps the logs Filebeat reads.
const LOG_PATHS: [(&str, &str); 2] = [("varlogcontainers", "/var/log/containers"), ("varlogpods", "/var/log/pods")];

/// Filebeat on every node with the apps' inputs (each `enclave_monitor::render::filebeat_input`),
/// reading the nodes' log files read-only, shipping to Elasticsearch through ECK's association.
/// It runs as root (the log files are root's) with no capability and no privilege: the
/// accepted exception [`super::exceptions`] names.
pub fn filebeat(stack: &str, inputs: &[serde_json::Value]) -> Beat {
    let mut mounts: Vec<VolumeMount> = LOG_PATHS
        .iter()
        .map(|(name, path)| VolumeMount {
            name: (*name).to_owned(),
            mount_path: (*path).to_owned(),
            read_only: Some(true),
            ..VolumeMount::default()
        })
        .collect();
    mounts.sort_by(|a, b| a.name.cmp(&b.name));
    let volumes = LOG_PATHS
        .iter()
        .map(|(name, path)| Volume {
            name: (*name).to_owned(),
            host_path: Some(HostPathVolumeSource { path: (*path).to_owned(), type_: Some("Directory".to_owned()) }),
            ..Volume::default()
        })
        .collect();
    let container = Container {
        name: FILEBEAT.to_owned(),
        env: Some(vec![EnvVar {
            name: "NODE_NAME".to_owned(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector { field_path: "spec.nodeName".to_owned(), api_version: None }),
                ..EnvVarSource::default()
            }),
            value: None,
        }]),
        resources: Some(resources("100m", "200Mi", "500m", "400Mi")),
        security_context: Some(SecurityContext {
            run_as_user: Some(0),
            run_as_non_root: Some(false),
            ..restricted_container()
        }),
        volume_mounts: Some(mounts),
        ..Container::default()
    };
    let spec = PodSpec {
        service_account_name: Some(FILEBEAT.to_owned()),
        automount_service_account_token: Some(true),
        containers: vec![container],
        volumes: Some(volumes),
        security_context: Some(PodSecurityContext {
            run_as_user: Some(0),
            seccomp_profile: restricted_pod(0).seccomp_profile,
            ..PodSecurityContext::default()
        }),
        ..PodSpec::default()
    };
    let metadata = ObjectMeta {
        annotations: Some(BTreeMap::from([(
            enclave_core::exception::CHECK_SKIP_ANNOTATION.to_owned(),
            super::exception_skips(super::Exempt::Filebeat),
        )])),
        ..ObjectMeta::default()
    };
    let inputs: Vec<serde_json::Value> =
        inputs.iter().flat_map(|input| input.as_array().cloned().unwrap_or_default()).collect();
    Beat {
        api_version: "beat.k8s.elastic.co/v1beta1",
        kind: "Beat",
        metadata: meta(stack, FILEBEAT, FILEBEAT_NAMESPACE),
        spec: BeatSpec {
            type_: FILEBEAT.to_owned(),
            version: STACK_VERSION.to_owned(),
            elasticsearch_ref: ObjectRef {
                name: ELASTICSEARCH.to_owned(),
                namespace: Some(MONITORING_NAMESPACE.to_owned()),
            },
            config: serde_json::json!({"filebeat.inputs": inputs}),
            daemon_set: DaemonSetSpec { pod_template: PodTemplateSpec { metadata: Some(metadata), spec: Some(spec) } },
        },
    }
}

/// Filebeat's identity: a service account that may read pods, namespaces, nodes, ReplicaSets and
/// Jobs (its `add_kubernetes_metadata` processor), nothing else.
pub fn filebeat_rbac(stack: &str) -> (ServiceAccount, ClusterRole, ClusterRoleBinding) {
    let account = ServiceAccount { metadata: meta(stack, FILEBEAT, FILEBEAT_NAMESPACE), ..ServiceAccount::default() };
    let cluster_meta = ObjectMeta {
        name: Some(FILEBEAT.to_owned()),
        labels: Some(super::labels(stack, FILEBEAT)),
        ..ObjectMeta::default()
    };
    let role = ClusterRole {
        metadata: cluster_meta.clone(),
        // Names of the Deployments and CronJobs behind pods come from their ReplicaSets and Jobs.
        rules: Some(
            [("", &["namespaces", "nodes", "pods"][..]), ("apps", &["replicasets"][..]), ("batch", &["jobs"][..])]
                .into_iter()
                .map(|(group, resources)| PolicyRule {
                    api_groups: Some(vec![group.to_owned()]),
                    resources: Some(resources.iter().map(|r| (*r).to_owned()).collect()),
                    verbs: vec!["get".to_owned(), "list".to_owned(), "watch".to_owned()],
                    ..PolicyRule::default()
                })
                .collect(),
        ),
        ..ClusterRole::default()
    };
    let binding = ClusterRoleBinding {
        metadata: cluster_meta,
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: "ClusterRole".to_owned(),
            name: FILEBEAT.to_owned(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            name: FILEBEAT.to_owned(),
            namespace: Some(FILEBEAT_NAMESPACE.to_owned()),
            ..Subject::default()
        }]),
    };
    (account, role, binding)
}

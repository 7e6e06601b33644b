//! Each chart's values, as typed structs of the keys enclave sets (the chart's defaults stand
//! for the rest). Key names and nesting are the charts' own, at the pinned versions
//! ([`super::chart`]).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, EmptyDirVolumeSource, EnvVar, EnvVarSource, PodSecurityContext, ResourceRequirements, SeccompProfile,
    SecretKeySelector, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde::Serialize;

use enclave_core::names::PROMETHEUS_SERVICE_ACCOUNT;

/// Requests and limits (the admission policy's bar: both, for CPU and memory).
pub fn resources(cpu: &str, memory: &str, cpu_limit: &str, memory_limit: &str) -> ResourceRequirements {
    let pair = |cpu: &str, memory: &str| {
        BTreeMap::from([
            ("cpu".to_owned(), Quantity(cpu.to_owned())),
            ("memory".to_owned(), Quantity(memory.to_owned())),
        ])
    };
    ResourceRequirements {
        requests: Some(pair(cpu, memory)),
        limits: Some(pair(cpu_limit, memory_limit)),
        ..Default::default()
    }
}

/// A container that runs as a user, with no privilege, no capability and a read-only root.
pub fn restricted_container() -> SecurityContext {
    SecurityContext {
        run_as_non_root: Some(true),
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        read_only_root_filesystem: Some(true),
        capabilities: Some(Capabilities { drop: Some(vec!["ALL".to_owned()]), add: None }),
        seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".to_owned(), localhost_profile: None }),
        ..SecurityContext::default()
    }
}

/// A pod that runs as `user`, with the runtime's default seccomp profile.
pub fn restricted_pod(user: i64) -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(user),
        run_as_group: Some(user),
        fs_group: Some(user),
        seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".to_owned(), localhost_profile: None }),
        ..PodSecurityContext::default()
    }
}

/// An environment variable read from a Secret's key.
pub fn secret_env(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector { name: secret.to_owned(), key: key.to_owned(), optional: None }),
            ..EnvVarSource::default()
        }),
        value: None,
    }
}

pub(crate) fn to_value(values: &impl Serialize) -> serde_json::Value {
    // Our own structs always serialise.
    serde_json::to_value(values).unwrap_or_default()
}

// ---- kube-prometheus-stack ------------------------------------------------------------------

/// kube-prometheus-stack's values.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KubePrometheusStack {
    /// Pins object names (`kube-prometheus-stack-prometheus`, ...).
    pub fullname_override: String,
    /// CRDs installed with the chart.
    pub crds: Enabled,
    /// The chart's node, Kubernetes and Prometheus alerts.
    pub default_rules: DefaultRules,
    /// Prometheus.
    pub prometheus: Prometheus,
    /// Alertmanager.
    pub alertmanager: Alertmanager,
    /// Grafana (the grafana subchart).
    pub grafana: Grafana,
    /// The operator.
    pub prometheus_operator: Operator,
    /// Node exporter's subchart values.
    #[serde(rename = "prometheus-node-exporter")]
    pub node_exporter: NodeExporter,
    /// kube-state-metrics' subchart values.
    #[serde(rename = "kube-state-metrics")]
    pub kube_state_metrics: Workload,
}

/// `enabled: bool`.
#[derive(Clone, Debug, Serialize)]
pub struct Enabled {
    /// On or off.
    pub enabled: bool,
}

/// `defaultRules`.
#[derive(Clone, Debug, Serialize)]
pub struct DefaultRules {
    /// Create them.
    pub create: bool,
}

/// `prometheus`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Prometheus {
    /// Its service account: the identity the mesh lets scrape.
    pub service_account: ServiceAccount,
    /// The Prometheus resource.
    pub prometheus_spec: PrometheusSpec,
}

/// A chart's service account.
#[derive(Clone, Debug, Serialize)]
pub struct ServiceAccount {
    /// Created by the chart.
    pub create: bool,
    /// Its name.
    pub name: String,
    /// Its annotations (an IRSA role).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// `prometheus.prometheusSpec`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusSpec {
    /// Replicas.
    pub replicas: u8,
    /// How long samples are kept.
    pub retention: String,
    /// The most kept on disk.
    pub retention_size: String,
    /// The volume.
    pub storage_spec: StorageSpec,
    /// Every ServiceMonitor, not only the chart's.
    pub service_monitor_selector_nil_uses_helm_values: bool,
    /// Every PodMonitor.
    pub pod_monitor_selector_nil_uses_helm_values: bool,
    /// Every PrometheusRule.
    pub rule_selector_nil_uses_helm_values: bool,
    /// Requests and limits.
    pub resources: ResourceRequirements,
    /// Labels and annotations of the pods (the mesh's sidecar, for scraping with its certificates).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_metadata: Option<PodMetadata>,
    /// Extra volumes (the mesh's certificates).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    /// Extra mounts of the Prometheus container.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<VolumeMount>,
}

/// Pod labels and annotations.
#[derive(Clone, Debug, Serialize)]
pub struct PodMetadata {
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
}

/// `storageSpec`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    /// The claim template.
    pub volume_claim_template: ClaimTemplate,
}

/// A claim template.
#[derive(Clone, Debug, Serialize)]
pub struct ClaimTemplate {
    /// Its spec.
    pub spec: k8s_openapi::api::core::v1::PersistentVolumeClaimSpec,
}

/// `alertmanager`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Alertmanager {
    /// The whole configuration (`enclave_monitor::alerting::config`).
    pub config: serde_json::Value,
    /// The Alertmanager resource.
    pub alertmanager_spec: AlertmanagerSpec,
}

/// `alertmanager.alertmanagerSpec`.
#[derive(Clone, Debug, Serialize)]
pub struct AlertmanagerSpec {
    /// Replicas (they gossip: notifications are not repeated).
    pub replicas: u8,
    /// Secrets mounted under `/etc/alertmanager/secrets/<name>`: the receivers' credentials.
    pub secrets: Vec<String>,
    /// Requests and limits.
    pub resources: ResourceRequirements,
}

/// `grafana`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Grafana {
    /// The admin password: the secrets domain's generated one (the chart would make a new one
    /// at every render).
    pub admin: GrafanaAdmin,
    /// The admin user, given here so the password Secret needs no user key.
    pub env: BTreeMap<String, String>,
    /// Elasticsearch's certificate authority, for its data source.
    pub extra_secret_mounts: Vec<SecretMount>,
    /// The dashboards sidecar.
    pub sidecar: GrafanaSidecar,
    /// Jaeger and Elasticsearch beside the chart's Prometheus.
    pub additional_data_sources: Vec<DataSource>,
    /// Environment from Secrets (the Elasticsearch password the data source reads).
    pub env_value_from: BTreeMap<String, EnvVarSource>,
    /// Requests and limits.
    pub resources: ResourceRequirements,
}

/// `grafana.admin`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GrafanaAdmin {
    /// The Secret.
    pub existing_secret: String,
    /// Its key holding the password.
    pub password_key: String,
}

/// A Secret mounted as files.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretMount {
    /// Volume name.
    pub name: String,
    /// The Secret.
    pub secret_name: String,
    /// Where.
    pub mount_path: String,
    /// Read-only.
    pub read_only: bool,
}

/// `grafana.sidecar`.
#[derive(Clone, Debug, Serialize)]
pub struct GrafanaSidecar {
    /// Dashboards from ConfigMaps.
    pub dashboards: DashboardSidecar,
    /// Data sources.
    pub datasources: SidecarLogin,
}

/// A sidecar's login for Grafana's reload API (the user `env` names is not in the Secret).
#[derive(Clone, Debug, Serialize)]
pub struct SidecarLogin {
    /// `REQ_USERNAME`.
    pub env: BTreeMap<String, String>,
}

/// `grafana.sidecar.dashboards`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DashboardSidecar {
    /// On.
    pub enabled: bool,
    /// The label our dashboard ConfigMaps carry.
    pub label: String,
    /// Its value.
    pub label_value: String,
    /// In every namespace.
    pub search_namespace: String,
    /// `REQ_USERNAME`.
    pub env: BTreeMap<String, String>,
}

/// A Grafana data source.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DataSource {
    /// Name.
    pub name: String,
    /// Plugin type.
    #[serde(rename = "type")]
    pub type_: String,
    /// Through Grafana's server.
    pub access: String,
    /// URL.
    pub url: String,
    /// Basic authentication.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<bool>,
    /// Its user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth_user: Option<String>,
    /// Plugin settings.
    pub json_data: serde_json::Value,
    /// Secret settings, from the environment (`$__env{...}`), never inline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secure_json_data: Option<BTreeMap<String, String>>,
}

/// `prometheusOperator`.
#[derive(Clone, Debug, Serialize)]
pub struct Operator {
    /// Requests and limits.
    pub resources: ResourceRequirements,
}

/// `prometheus-node-exporter` (in its own namespace: it needs the host's).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeExporter {
    /// Its namespace.
    pub namespace_override: String,
    /// Skips of `enclave check`, with their reasons, on the pods.
    pub pod_annotations: BTreeMap<String, String>,
    /// Requests and limits.
    pub resources: ResourceRequirements,
}

/// A workload's requests and limits.
#[derive(Clone, Debug, Serialize)]
pub struct Workload {
    /// Requests and limits.
    pub resources: ResourceRequirements,
}

/// Istio's recipe for a Prometheus that scrapes with the mesh's certificates: the sidecar
/// writes its certificates to a shared volume and captures no traffic.
pub fn mesh_scraper() -> (PodMetadata, Vec<Volume>, Vec<VolumeMount>) {
    let proxy_config = serde_json::json!({"proxyMetadata": {"OUTPUT_CERTS": ISTIO_OUTPUT_CERTS}});
    let user_mount = serde_json::json!([{"name": "istio-certs", "mountPath": ISTIO_OUTPUT_CERTS}]);
    let metadata = PodMetadata {
        labels: BTreeMap::from([("sidecar.istio.io/inject".to_owned(), "true".to_owned())]),
        annotations: BTreeMap::from([
            ("traffic.sidecar.istio.io/includeInboundPorts".to_owned(), String::new()),
            ("traffic.sidecar.istio.io/includeOutboundIPRanges".to_owned(), String::new()),
            ("proxy.istio.io/config".to_owned(), proxy_config.to_string()),
            ("sidecar.istio.io/userVolumeMount".to_owned(), user_mount.to_string()),
        ]),
    };
    let volume = Volume {
        name: "istio-certs".to_owned(),
        empty_dir: Some(EmptyDirVolumeSource { medium: Some("Memory".to_owned()), size_limit: None }),
        ..Volume::default()
    };
    let mount = VolumeMount {
        name: "istio-certs".to_owned(),
        mount_path: enclave_core::names::PROMETHEUS_MESH_CERTS.to_owned(),
        read_only: Some(true),
        ..VolumeMount::default()
    };
    (metadata, vec![volume], vec![mount])
}

/// Where the sidecar writes the certificates Prometheus reads.
const ISTIO_OUTPUT_CERTS: &str = "/etc/istio-output-certs";

/// The Prometheus service account's spec.
pub fn prometheus_service_account() -> ServiceAccount {
    ServiceAccount { create: true, name: PROMETHEUS_SERVICE_ACCOUNT.to_owned(), annotations: BTreeMap::new() }
}

// ---- the smaller charts ---------------------------------------------------------------------

/// prometheus-adapter's values: the rules `enclave-scaling` renders, in its ConfigMap.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusAdapter {
    /// Prometheus's Service.
    pub prometheus: AdapterPrometheus,
    /// The rules ConfigMap.
    pub rules: AdapterRules,
    /// Requests and limits.
    pub resources: ResourceRequirements,
}

/// `prometheus`.
#[derive(Clone, Debug, Serialize)]
pub struct AdapterPrometheus {
    /// URL without port.
    pub url: String,
    /// Port.
    pub port: u16,
}

/// `rules`.
#[derive(Clone, Debug, Serialize)]
pub struct AdapterRules {
    /// The chart's own rules: off (ours only).
    pub default: bool,
    /// The ConfigMap holding `config.yaml`.
    pub existing: String,
}

/// A chart whose only values enclave sets are requests and limits and security contexts.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plain {
    /// Requests and limits.
    pub resources: ResourceRequirements,
    /// The container's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_context: Option<SecurityContext>,
}

/// The Vertical Pod Autoscaler's values.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerticalPodAutoscaler {
    /// Recommender.
    pub recommender: VpaComponent,
    /// Updater.
    pub updater: VpaComponent,
    /// Admission controller.
    pub admission_controller: VpaComponent,
    /// The containers'.
    pub container_security_context: SecurityContext,
}

/// One VPA component.
#[derive(Clone, Debug, Serialize)]
pub struct VpaComponent {
    /// On.
    pub enabled: bool,
    /// Requests and limits.
    pub resources: ResourceRequirements,
}

/// external-secrets' values.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecrets {
    /// CRDs with the chart.
    #[serde(rename = "installCRDs")]
    pub install_crds: bool,
    /// The operator's service account (the one Pod Identity associates with its role).
    pub service_account: ServiceAccount,
    /// Requests and limits.
    pub resources: ResourceRequirements,
    /// The webhook.
    pub webhook: Workload,
    /// The certificate controller.
    pub cert_controller: Workload,
}

/// sealed-secrets' values.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SealedSecrets {
    /// `sealed-secrets-controller`, the name kubeseal looks for.
    pub fullname_override: String,
    /// Requests and limits.
    pub resources: ResourceRequirements,
}

/// gatekeeper's values.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Gatekeeper {
    /// Webhook replicas.
    pub replicas: u8,
    /// The webhook.
    pub controller_manager: Workload,
    /// The audit.
    pub audit: Workload,
}

/// falco's values.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Falco {
    /// The modern eBPF probe.
    pub driver: FalcoDriver,
    /// Rule files by name: the platform's (`enclave-access`'s runtime rules).
    pub custom_rules: BTreeMap<String, String>,
    /// Falco's own configuration.
    pub falco: FalcoConfig,
    /// Requests and limits.
    pub resources: ResourceRequirements,
    /// Skips of `enclave check`, with their reasons, on the pods.
    pub pod_annotations: BTreeMap<String, String>,
}

/// `driver`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FalcoDriver {
    /// `modern_ebpf`.
    pub kind: String,
    /// Its settings.
    pub modern_ebpf: ModernEbpf,
}

/// `driver.modernEbpf`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModernEbpf {
    /// Capabilities instead of a privileged container.
    pub least_privileged: bool,
}

/// `falco`.
#[derive(Clone, Debug, Serialize)]
pub struct FalcoConfig {
    /// The rule files loaded, in order.
    pub rules_files: Vec<String>,
    /// JSON alerts.
    pub json_output: bool,
}

/// Istio's `global` values.
#[derive(Clone, Debug, Serialize)]
pub struct IstioGlobal {
    /// Where Istio's images (the sidecar's included) are pulled from: the stack's registry,
    /// the only one the admission policy admits in app namespaces.
    pub hub: String,
}

/// Istio's `cni` chart values.
#[derive(Clone, Debug, Serialize)]
pub struct IstioCni {
    /// The registry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global: Option<IstioGlobal>,
    /// Requests and limits.
    pub resources: ResourceRequirements,
}

/// Istio's `istiod` chart values (top-level keys since Istio 1.24).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Istiod {
    /// The registry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global: Option<IstioGlobal>,
    /// The mesh's configuration.
    pub mesh_config: serde_json::Value,
    /// The CNI node agent instead of a privileged init container in every pod.
    pub cni: Enabled,
    /// Requests and limits.
    pub resources: ResourceRequirements,
}

/// The OpenTelemetry Collector's values.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpentelemetryCollector {
    /// `deployment`.
    pub mode: String,
    /// The image (required by the chart).
    pub image: Image,
    /// The collector's configuration.
    pub config: serde_json::Value,
    /// Requests and limits.
    pub resources: ResourceRequirements,
    /// The container's.
    pub security_context: SecurityContext,
}

/// An image repository.
#[derive(Clone, Debug, Serialize)]
pub struct Image {
    /// Repository.
    pub repository: String,
}

/// Jaeger's values (chart 4, Jaeger v2).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Jaeger {
    /// The one Deployment.
    pub jaeger: JaegerDeployment,
    /// The configuration that replaces the chart's (Elasticsearch storage).
    pub userconfig: serde_json::Value,
}

/// `jaeger`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JaegerDeployment {
    /// The Elasticsearch password.
    pub extra_env: Vec<EnvVar>,
    /// Elasticsearch's certificate authority.
    pub extra_volumes: Vec<Volume>,
    /// Its mount.
    pub extra_volume_mounts: Vec<VolumeMount>,
    /// Requests and limits.
    pub resources: ResourceRequirements,
    /// The container's.
    pub security_context: SecurityContext,
}

/// ECK's operator values.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EckOperator {
    /// CRDs with the chart.
    #[serde(rename = "installCRDs")]
    pub install_crds: bool,
    /// Requests and limits.
    pub resources: ResourceRequirements,
}

/// Argo CD's values.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArgoCd {
    /// `argocd-cm` and friends.
    pub configs: ArgoConfigs,
    /// Dex (single sign-on): off, people sign in through the cluster's own access.
    pub dex: Enabled,
    /// The application controller.
    pub controller: Workload,
    /// The API server.
    pub server: Workload,
    /// The repository server.
    pub repo_server: Workload,
    /// Redis.
    pub redis: Workload,
}

/// `configs`.
#[derive(Clone, Debug, Serialize)]
pub struct ArgoConfigs {
    /// `argocd-cm`.
    pub cm: BTreeMap<String, String>,
}

/// Argo CD's health check for Applications (not built in since 1.8), so the root's sync waves
/// wait for each add-on to be healthy before the objects that need it.
pub const APPLICATION_HEALTH: &str = r#"hs = {}
hs.status = "Progressing"
hs.message = ""
if obj.status ~= nil then
  if obj.status.health ~= nil then
    hs.status = obj.status.health.status
    if obj.status.health.message ~= nil then
      hs.message = obj.status.health.message
    end
  end
end
return hs
"#;

/// Argo CD's health check for Gatekeeper's ConstraintTemplates: healthy once Gatekeeper has made
/// the Constraint kind's CRD (`status.created`), so the Constraints' wave waits for it.
pub const CONSTRAINT_TEMPLATE_HEALTH: &str = r#"hs = {}
hs.status = "Progressing"
hs.message = "waiting for Gatekeeper to create the constraint's CRD"
if obj.status ~= nil and obj.status.created == true then
  hs.status = "Healthy"
  hs.message = ""
end
return hs
"#;

/// The Flux chart's values.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Flux {
    /// The Helm controller.
    pub helm_controller: Workload,
    /// The source controller.
    pub source_controller: Workload,
    /// The kustomize controller.
    pub kustomize_controller: Workload,
    /// Not used by enclave.
    pub image_automation_controller: Create,
    /// Not used by enclave.
    pub image_reflection_controller: Create,
    /// Not used by enclave.
    pub notification_controller: Create,
}

/// `create: bool`.
#[derive(Clone, Debug, Serialize)]
pub struct Create {
    /// Installed.
    pub create: bool,
}

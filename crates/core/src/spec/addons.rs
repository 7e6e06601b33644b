//! What a cluster runs besides its apps: the controllers that read the objects enclave renders
//! and the monitoring stack (filled by `enclave-deploy`'s `addons`), and where alerts go (filled
//! by `enclave-monitor`'s `alerting`).

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Name, PromDuration, Quantity, SecretSpec};

/// A cluster's add-ons: one GitOps `Application` (or Flux `HelmRelease`) per chart, each with a
/// pinned version and values derived from the spec. Every add-on the cluster's objects need is on
/// unless listed in `disabled`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddonsSpec {
    /// The GitOps controller that installs the add-ons and syncs the rendered folder.
    #[serde(default)]
    pub gitops: GitOps,
    /// Add-ons not to install (the platform runs its own); a rendered object whose controller
    /// is then missing is reported (`ADD001`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disabled: Vec<Addon>,
    /// Chart versions to use instead of the ones enclave pins; each must be exact (`ADD002`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub versions: BTreeMap<Addon, String>,
    /// Prometheus: how long and how much it keeps.
    #[serde(default)]
    pub prometheus: PrometheusSizing,
    /// Elasticsearch and Kibana, where the logs and traces go.
    #[serde(default)]
    pub elasticsearch: ElasticsearchSizing,
    /// Traces: the share of requests the collector keeps.
    #[serde(default)]
    pub tracing: TracingSpec,
}

/// The GitOps controller and the Git location of the rendered folder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GitOps {
    /// Argo CD (`Application`s, the default) or Flux (`HelmRelease`s).
    #[serde(default)]
    pub controller: GitOpsController,
    /// The Git repository holding the output of `enclave render` (an `https://` or `ssh://`
    /// URL). With it, a root object syncing the cluster's folder is rendered too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// The branch or tag of `repository` to follow.
    #[serde(default = "default_revision")]
    pub revision: String,
    /// The cluster's folder inside `repository`; defaults to the cluster's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl Default for GitOps {
    fn default() -> Self {
        GitOps { controller: GitOpsController::default(), repository: None, revision: default_revision(), path: None }
    }
}

fn default_revision() -> String {
    "main".to_owned()
}

/// A GitOps controller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum GitOpsController {
    /// Argo CD: one `Application` per chart, ordered by sync waves.
    #[default]
    Argocd,
    /// Flux: a `HelmRepository` per chart repository and a `HelmRelease` per chart, ordered by
    /// `dependsOn`.
    Flux,
}

/// Every add-on enclave knows. Which ones a cluster gets follows from the spec (the mesh's only
/// with `mesh:`, the GitOps controller's own chart by `gitops.controller`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Addon {
    /// Argo CD, managing itself once bootstrapped.
    ArgoCd,
    /// Flux, managing itself once bootstrapped.
    Flux,
    /// Prometheus, Alertmanager, Grafana and the Prometheus Operator.
    KubePrometheusStack,
    /// The custom and external metrics API for HPAs.
    PrometheusAdapter,
    /// The resource metrics API (`kubectl top`, CPU and memory HPAs).
    MetricsServer,
    /// The Vertical Pod Autoscaler.
    VerticalPodAutoscaler,
    /// The External Secrets Operator.
    ExternalSecrets,
    /// The Sealed Secrets controller.
    SealedSecrets,
    /// OPA Gatekeeper.
    Gatekeeper,
    /// Falco, with the platform's rules.
    Falco,
    /// Istio's CRDs and cluster roles.
    IstioBase,
    /// Istio's control plane.
    Istiod,
    /// Istio's CNI node agent (no privileged init container in app pods).
    IstioCni,
    /// The OpenTelemetry Collector receiving the apps' traces.
    OpentelemetryCollector,
    /// Jaeger, storing traces in Elasticsearch.
    Jaeger,
    /// Elastic Cloud on Kubernetes: Elasticsearch, Kibana and Filebeat.
    EckOperator,
}

impl Addon {
    /// Every add-on, in install order.
    pub const ALL: [Addon; 16] = [
        Addon::ArgoCd,
        Addon::Flux,
        Addon::IstioBase,
        Addon::IstioCni,
        Addon::Istiod,
        Addon::KubePrometheusStack,
        Addon::Gatekeeper,
        Addon::ExternalSecrets,
        Addon::SealedSecrets,
        Addon::VerticalPodAutoscaler,
        Addon::EckOperator,
        Addon::MetricsServer,
        Addon::PrometheusAdapter,
        Addon::Falco,
        Addon::OpentelemetryCollector,
        Addon::Jaeger,
    ];

    /// Its name in the spec and in rendered object names.
    pub fn as_str(self) -> &'static str {
        match self {
            Addon::ArgoCd => "argo-cd",
            Addon::Flux => "flux",
            Addon::KubePrometheusStack => "kube-prometheus-stack",
            Addon::PrometheusAdapter => "prometheus-adapter",
            Addon::MetricsServer => "metrics-server",
            Addon::VerticalPodAutoscaler => "vertical-pod-autoscaler",
            Addon::ExternalSecrets => "external-secrets",
            Addon::SealedSecrets => "sealed-secrets",
            Addon::Gatekeeper => "gatekeeper",
            Addon::Falco => "falco",
            Addon::IstioBase => "istio-base",
            Addon::Istiod => "istiod",
            Addon::IstioCni => "istio-cni",
            Addon::OpentelemetryCollector => "opentelemetry-collector",
            Addon::Jaeger => "jaeger",
            Addon::EckOperator => "eck-operator",
        }
    }
}

impl Addon {
    /// The namespaces it runs in, the chart's own first. The mesh's add-ons run in the mesh's
    /// root namespace and have none of their own.
    pub fn namespaces(self) -> &'static [&'static str] {
        match self {
            Addon::ArgoCd => &["argocd"],
            Addon::Flux => &["flux-system"],
            // Node exporter needs the host's namespaces: apart, so the exception stays narrow.
            Addon::KubePrometheusStack => &["monitoring", "node-exporter"],
            Addon::PrometheusAdapter => &["monitoring"],
            Addon::MetricsServer => &["metrics-server"],
            Addon::VerticalPodAutoscaler => &["vpa"],
            Addon::ExternalSecrets => &["external-secrets"],
            Addon::SealedSecrets => &["sealed-secrets"],
            Addon::Gatekeeper => &["gatekeeper-system"],
            Addon::Falco => &["falco"],
            Addon::IstioBase | Addon::Istiod | Addon::IstioCni => &[],
            // With Prometheus, Grafana, Elasticsearch and Kibana: the stack's credentials
            // (ECK's Elasticsearch user) stay in one namespace.
            Addon::OpentelemetryCollector | Addon::Jaeger => &["monitoring"],
            // The operator apart; Elasticsearch and Kibana in `monitoring`; Filebeat reads the
            // nodes' log files, apart so its exception stays narrow.
            Addon::EckOperator => &["elastic-system", "filebeat"],
        }
    }
}

impl fmt::Display for Addon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Prometheus's storage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrometheusSizing {
    /// How long samples are kept.
    #[serde(default = "default_retention")]
    pub retention: PromDuration,
    /// The volume of each replica; Prometheus also stops keeping data at 85% of it, so the
    /// volume never fills.
    #[serde(default = "default_prometheus_storage")]
    pub storage: Quantity,
    /// The storage class of the volume; the cluster's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<Name>,
    /// Replicas (each scrapes everything: two survive a node loss).
    #[serde(default = "default_two")]
    pub replicas: u8,
}

impl Default for PrometheusSizing {
    fn default() -> Self {
        PrometheusSizing {
            retention: default_retention(),
            storage: default_prometheus_storage(),
            storage_class: None,
            replicas: default_two(),
        }
    }
}

fn default_retention() -> PromDuration {
    PromDuration(15 * 86_400)
}

fn default_prometheus_storage() -> Quantity {
    "50Gi".parse().unwrap_or_else(|_| unreachable!("a valid quantity"))
}

fn default_two() -> u8 {
    2
}

/// Elasticsearch (logs and traces) and Kibana.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ElasticsearchSizing {
    /// Nodes (each master-eligible and data); three keep a quorum through a node loss.
    #[serde(default = "default_three")]
    pub nodes: u8,
    /// The data volume of each node.
    #[serde(default = "default_es_storage")]
    pub storage: Quantity,
    /// Memory of each node (request and limit; the JVM heap is half of it).
    #[serde(default = "default_es_memory")]
    pub memory: Quantity,
    /// CPU request of each node.
    #[serde(default = "default_es_cpu")]
    pub cpu: Quantity,
    /// The storage class of the volumes; the cluster's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<Name>,
    /// Kibana replicas.
    #[serde(default = "default_one")]
    pub kibana_replicas: u8,
}

impl Default for ElasticsearchSizing {
    fn default() -> Self {
        ElasticsearchSizing {
            nodes: default_three(),
            storage: default_es_storage(),
            memory: default_es_memory(),
            cpu: default_es_cpu(),
            storage_class: None,
            kibana_replicas: default_one(),
        }
    }
}

fn default_three() -> u8 {
    3
}

fn default_one() -> u8 {
    1
}

fn default_es_storage() -> Quantity {
    "100Gi".parse().unwrap_or_else(|_| unreachable!("a valid quantity"))
}

fn default_es_memory() -> Quantity {
    "4Gi".parse().unwrap_or_else(|_| unreachable!("a valid quantity"))
}

fn default_es_cpu() -> Quantity {
    "1".parse().unwrap_or_else(|_| unreachable!("a valid quantity"))
}

/// Trace sampling.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TracingSpec {
    /// Percent of traces kept (by trace id, so a trace is kept or dropped whole).
    #[serde(default = "default_sampling")]
    pub sampling_percent: f64,
}

impl Default for TracingSpec {
    fn default() -> Self {
        TracingSpec { sampling_percent: default_sampling() }
    }
}

fn default_sampling() -> f64 {
    10.0
}

/// Where alerts go: Alertmanager's receivers and routes, the same in every cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertingSpec {
    /// Receivers by name: a pager, a chat channel, e-mail.
    pub receivers: Vec<Receiver>,
    /// Credentials the receivers use (a PagerDuty key, a Slack webhook URL, an SMTP password),
    /// kept in Secrets Manager and synced into each cluster's `monitoring` namespace like an
    /// app's secrets; never in the spec.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretSpec>,
    /// Routes, first match wins: an alert goes to the receiver of the first route whose
    /// severity and team it has.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<AlertRoute>,
    /// Where alerts no route takes go. Absent: they are dropped, which `ADD003` reports for
    /// every alert of the table it would drop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_receiver: Option<Name>,
    /// Labels alerts are grouped by into one notification.
    #[serde(default = "default_group_by")]
    pub group_by: Vec<String>,
    /// How long a new group waits for more alerts before the first notification.
    #[serde(default = "default_group_wait")]
    pub group_wait: PromDuration,
    /// How long before a group's notification about new alerts.
    #[serde(default = "default_group_interval")]
    pub group_interval: PromDuration,
    /// How long before a notification is sent again for alerts still firing.
    #[serde(default = "default_repeat_interval")]
    pub repeat_interval: PromDuration,
}

fn default_group_by() -> Vec<String> {
    vec!["alertname".to_owned(), "service".to_owned()]
}

fn default_group_wait() -> PromDuration {
    PromDuration(30)
}

fn default_group_interval() -> PromDuration {
    PromDuration(300)
}

fn default_repeat_interval() -> PromDuration {
    PromDuration(4 * 3600)
}

/// A receiver: exactly one of `pagerduty`, `slack` and `email`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Receiver {
    /// Name, referred to by routes.
    pub name: Name,
    /// A PagerDuty service (Events API v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagerduty: Option<PagerDuty>,
    /// A Slack channel, through an incoming webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<Slack>,
    /// E-mail through an SMTP relay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
}

/// PagerDuty.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PagerDuty {
    /// The secret (of `alerting.secrets`) holding the integration's routing key.
    pub routing_key_secret: Name,
}

/// Slack.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Slack {
    /// The channel, `#name`.
    pub channel: String,
    /// The secret (of `alerting.secrets`) holding the incoming webhook's URL.
    pub webhook_secret: Name,
}

/// E-mail.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Email {
    /// Recipient address.
    pub to: String,
    /// Sender address.
    pub from: String,
    /// The SMTP relay, `host:port`.
    pub smarthost: String,
    /// The SMTP user, when the relay wants one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The secret (of `alerting.secrets`) holding the SMTP password, with `username`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret: Option<Name>,
}

/// A route of the alert table to a receiver.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertRoute {
    /// Only alerts of this severity; any when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<AlertSeverity>,
    /// Only alerts of this team's apps (`apps[].team`); any when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<Name>,
    /// The receiver.
    pub receiver: Name,
    /// How often a still-firing alert is sent again; the section's `repeat_interval` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_interval: Option<PromDuration>,
}

/// The severities of the alert table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AlertSeverity {
    /// Someone acts now.
    Critical,
    /// Someone looks today.
    Warning,
}

impl AlertSeverity {
    /// Both, most urgent first.
    pub const ALL: [AlertSeverity; 2] = [AlertSeverity::Critical, AlertSeverity::Warning];

    /// The `severity` label's value.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertSeverity::Critical => "critical",
            AlertSeverity::Warning => "warning",
        }
    }
}

impl fmt::Display for AlertSeverity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

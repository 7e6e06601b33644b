//! The Istio mesh of a cluster, from the same declarations as the NetworkPolicies ([`network`]):
//! one source, two enforcement layers. Rendered only for clusters with `mesh:`.
//!
//! **Security** (`security.istio.io/v1`):
//! - a mesh-wide `PeerAuthentication` in the root namespace and one per app namespace, `STRICT`
//!   (`PERMISSIVE` only for the namespaces the spec lists as migrating, which a guardrail reports:
//!   plain-text callers have no identity, so those namespaces get no AuthorizationPolicy and
//!   only their NetworkPolicies hold the declared callers);
//! - per namespace an allow-nothing `AuthorizationPolicy` (an `ALLOW` policy with no rule: once a
//!   workload has an `ALLOW` policy, only what some rule matches gets in), then per app one
//!   `ALLOW` listing exactly its declared callers, by the identity of their service account
//!   (`<trust domain>/ns/<namespace>/sa/<app>`), on its traffic port, with the methods and paths
//!   the spec gives, and the scrape of its internal port by Prometheus's service account.
//!   Kubelet probes are rewritten by the sidecar to its own agent port and need no rule.
//!
//! **Traffic** (`networking.istio.io/v1`):
//! - per app a `DestinationRule` (`ISTIO_MUTUAL`, the connection pool and outlier detection of
//!   `resilience`, the `blue` and `green` subsets by [`SLOT_LABEL`]) and a `VirtualService` (the
//!   call's timeout and the mesh's retries, all traffic on the `blue` subset; a rollout moves the
//!   weights);
//! - per namespace a `Sidecar` that lets its pods reach only the root namespace, and per app one
//!   that adds exactly its declared dependencies, with outbound traffic limited to the registry
//!   (`REGISTRY_ONLY`): an undeclared destination is not reachable even where a NetworkPolicy
//!   would be silent;
//! - per dependency outside the cluster (a tier of the VPC, a CIDR) a `ServiceEntry` with its
//!   addresses, as plain TCP (its real TLS name is unknown here, so SNI cannot be matched), and
//!   in the root namespace one per AWS service the account's VPC endpoints serve.
//!
//! [`network`]: crate::network

use std::collections::{BTreeMap, BTreeSet};

use enclave_core::names::{MONITORING_NAMESPACE, PROMETHEUS_SERVICE_ACCOUNT};
use enclave_core::spec::{AppSpec, ClusterSpec, Destination, MeshSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use crate::network::Reach;

pub mod guardrails;

/// The pod label the `blue` and `green` subsets select.
pub const SLOT_LABEL: &str = "enclave.dev/slot";

/// The label that turns sidecar injection on for a namespace (or off for a pod, as `false`).
pub const INJECTION_LABEL: &str = "istio-injection";

/// The pod label that keeps a pod out of the mesh.
pub const POD_INJECT_LABEL: &str = "sidecar.istio.io/inject";

/// The Kubernetes cluster domain of Service names (EKS's).
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// The name of each namespace's allow-nothing policy.
pub const ALLOW_NOTHING: &str = "allow-nothing";

/// The name of the mesh-wide and per-namespace defaults (Istio's convention).
pub const DEFAULT: &str = "default";

/// A blue-green slot: the rendered Deployment's pods are `blue`, a rollout alternates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    /// The slot the rendered Deployment's pods start in.
    Blue,
    /// The other one.
    Green,
}

impl Slot {
    /// Its label value and subset name.
    pub fn as_str(self) -> &'static str {
        match self {
            Slot::Blue => "blue",
            Slot::Green => "green",
        }
    }

    /// The other slot.
    pub fn other(self) -> Slot {
        match self {
            Slot::Blue => Slot::Green,
            Slot::Green => Slot::Blue,
        }
    }
}

/// An Istio object: `apiVersion`, `kind`, metadata and a typed spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IstioObject<S> {
    /// `security.istio.io/v1` or `networking.istio.io/v1`.
    pub api_version: String,
    /// The kind.
    pub kind: String,
    /// Name, namespace, labels.
    pub metadata: ObjectMeta,
    /// The kind's spec.
    pub spec: S,
}

/// A spec type and the kind it belongs to.
pub trait IstioKind {
    /// `group/version`.
    const API_VERSION: &'static str;
    /// The kind.
    const KIND: &'static str;
}

macro_rules! kind {
    ($spec:ty, $api:literal, $kind:literal) => {
        impl IstioKind for $spec {
            const API_VERSION: &'static str = $api;
            const KIND: &'static str = $kind;
        }
    };
}

/// Selects workloads by their pod labels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadSelector {
    /// Labels every selected pod carries.
    pub match_labels: BTreeMap<String, String>,
}

/// `PeerAuthentication`'s spec.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerAuthenticationSpec {
    /// The workloads it applies to; the whole namespace when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<WorkloadSelector>,
    /// The mutual TLS mode.
    pub mtls: PeerMtls,
}
kind!(PeerAuthenticationSpec, "security.istio.io/v1", "PeerAuthentication");

/// Mutual TLS settings of a `PeerAuthentication`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerMtls {
    /// The mode.
    pub mode: MtlsMode,
}

/// Whether a workload accepts plain text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum MtlsMode {
    /// Mutual TLS only.
    Strict,
    /// Mutual TLS and plain text.
    Permissive,
}

/// `AuthorizationPolicy`'s spec. With no rule and the default `ALLOW`, it allows nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationPolicySpec {
    /// The workloads it applies to; the whole namespace when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<WorkloadSelector>,
    /// `ALLOW` (Istio's default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<AuthorizationAction>,
    /// Requests any rule matches are allowed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<AuthorizationRule>,
}
kind!(AuthorizationPolicySpec, "security.istio.io/v1", "AuthorizationPolicy");

/// What a matching `AuthorizationPolicy` does. Only `ALLOW` is rendered: a deny-list leaves open
/// what it forgets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AuthorizationAction {
    /// Allow the matching requests (and, with any `ALLOW` policy present, nothing else).
    Allow,
}

/// One rule: a request matches when some `from` and some `to` entry match.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationRule {
    /// Where the request comes from (absent: anywhere).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<RuleFrom>,
    /// What it asks for (absent: anything).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<RuleTo>,
}

/// A rule's source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleFrom {
    /// The peer.
    pub source: Source,
}

/// A peer identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// Mutual-TLS identities (`<trust domain>/ns/<namespace>/sa/<service account>`; absent:
    /// any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub principals: Vec<String>,
}

/// A rule's operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleTo {
    /// The request.
    pub operation: Operation,
}

/// Ports, methods and paths a request may use; an absent list matches any.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    /// Destination ports, as strings (Istio's type; absent: any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<String>,
    /// HTTP methods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// HTTP paths (exact, `prefix*` or `*suffix`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
}

/// `DestinationRule`'s spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationRuleSpec {
    /// The Service's name.
    pub host: String,
    /// Connections to it.
    pub traffic_policy: TrafficPolicy,
    /// Named groups of its pods.
    pub subsets: Vec<Subset>,
}
kind!(DestinationRuleSpec, "networking.istio.io/v1", "DestinationRule");

/// How callers' sidecars connect.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficPolicy {
    /// Mutual TLS with the mesh's certificates (absent for an app without the sidecar: Istio's
    /// automatic mutual TLS then sends it plain text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ClientTls>,
    /// Connection limits.
    pub connection_pool: ConnectionPoolSettings,
    /// Ejection of failing pods.
    pub outlier_detection: OutlierDetectionSettings,
}

/// The client side of TLS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientTls {
    /// `ISTIO_MUTUAL`.
    pub mode: ClientTlsMode,
}

/// Client TLS modes rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClientTlsMode {
    /// The mesh's own mutual TLS.
    IstioMutual,
}

/// `connectionPool`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionPoolSettings {
    /// TCP limits.
    pub tcp: TcpSettings,
    /// HTTP limits.
    pub http: HttpSettings,
}

/// `connectionPool.tcp`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TcpSettings {
    /// Connections per caller sidecar.
    pub max_connections: u32,
}

/// `connectionPool.http`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpSettings {
    /// Requests queued for a connection.
    #[serde(rename = "http1MaxPendingRequests")]
    pub http1_max_pending_requests: u32,
    /// Requests per connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests_per_connection: Option<u32>,
}

/// `outlierDetection`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutlierDetectionSettings {
    /// 5xx in a row that eject a pod.
    #[serde(rename = "consecutive5xxErrors")]
    pub consecutive_5xx_errors: u32,
    /// Sweep interval.
    pub interval: String,
    /// First ejection's length.
    pub base_ejection_time: String,
    /// Largest share ejected, in percent.
    pub max_ejection_percent: u8,
}

/// A named group of a Service's pods.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subset {
    /// Its name.
    pub name: String,
    /// Labels its pods carry.
    pub labels: BTreeMap<String, String>,
}

/// `VirtualService`'s spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualServiceSpec {
    /// The Service names it routes.
    pub hosts: Vec<String>,
    /// HTTP routes.
    pub http: Vec<HttpRoute>,
}
kind!(VirtualServiceSpec, "networking.istio.io/v1", "VirtualService");

/// An HTTP route.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HttpRoute {
    /// Its name.
    pub name: String,
    /// Weighted destinations.
    pub route: Vec<RouteDestination>,
    /// The whole call's timeout, retries included.
    pub timeout: String,
    /// The mesh's retries.
    pub retries: HttpRetry,
}

/// A weighted destination.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteDestination {
    /// Where.
    pub destination: RouteTarget,
    /// Share of the traffic, in percent.
    pub weight: u8,
}

/// A Service, subset and port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteTarget {
    /// The Service's name.
    pub host: String,
    /// The subset.
    pub subset: String,
    /// The Service port.
    pub port: PortSelector,
}

/// A port by number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSelector {
    /// The number.
    pub number: u16,
}

/// `retries`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRetry {
    /// Retries after the first attempt.
    pub attempts: u32,
    /// One attempt's timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_try_timeout: Option<String>,
    /// Envoy's retry conditions, comma-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_on: Option<String>,
}

/// `Sidecar`'s spec.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SidecarSpec {
    /// The workloads it applies to; the namespace's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_selector: Option<SidecarWorkloadSelector>,
    /// What the sidecar may reach.
    pub egress: Vec<EgressListener>,
    /// Destinations outside the registry.
    pub outbound_traffic_policy: OutboundTrafficPolicy,
}
kind!(SidecarSpec, "networking.istio.io/v1", "Sidecar");

/// A Sidecar's workload selector (its field is `labels`, not `matchLabels`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SidecarWorkloadSelector {
    /// Labels every selected pod carries.
    pub labels: BTreeMap<String, String>,
}

/// Hosts a sidecar may reach, as `namespace/host`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EgressListener {
    /// `<namespace>/<host>`; `./` is the Sidecar's own namespace, `*` any host there.
    pub hosts: Vec<String>,
}

/// `outboundTrafficPolicy`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundTrafficPolicy {
    /// `REGISTRY_ONLY`.
    pub mode: OutboundMode,
}

/// Outbound modes rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OutboundMode {
    /// Only hosts of the service registry (Services and ServiceEntries).
    RegistryOnly,
}

/// `ServiceEntry`'s spec.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEntrySpec {
    /// Its names.
    pub hosts: Vec<String>,
    /// Its address ranges (for TCP without names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    /// Its ports.
    pub ports: Vec<EntryPort>,
    /// Outside the mesh.
    pub location: EntryLocation,
    /// How its endpoints are found.
    pub resolution: Resolution,
    /// The namespaces that see it (`.`: its own; `*`: all).
    pub export_to: Vec<String>,
}
kind!(ServiceEntrySpec, "networking.istio.io/v1", "ServiceEntry");

/// A ServiceEntry port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryPort {
    /// The number.
    pub number: u16,
    /// Its name.
    pub name: String,
    /// `TCP` or `TLS`.
    pub protocol: EntryProtocol,
}

/// ServiceEntry port protocols rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EntryProtocol {
    /// Plain TCP, matched by destination address.
    Tcp,
    /// TLS, matched by server name.
    Tls,
}

/// ServiceEntry locations rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EntryLocation {
    /// Outside the mesh: no mutual TLS towards it.
    MeshExternal,
}

/// ServiceEntry resolutions rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Resolution {
    /// The original destination address is used.
    None,
    /// The hosts are resolved by DNS.
    Dns,
}

/// What a mesh needs beyond the apps: the cluster's region and the AWS services its VPC
/// endpoints serve (`ecr.api`, `s3`).
#[derive(Clone, Debug, Default)]
pub struct MeshInputs<'a> {
    /// The apps, and the subnets of each tier.
    pub reach: Reach<'a>,
    /// The AWS region.
    pub region: String,
    /// The endpoint services (interface and gateway).
    pub aws_services: Vec<String>,
}

fn object<S: IstioKind>(stack: &str, name: &str, namespace: &str, spec: S) -> IstioObject<S> {
    IstioObject {
        api_version: S::API_VERSION.to_owned(),
        kind: S::KIND.to_owned(),
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([
                ("app.kubernetes.io/part-of".to_owned(), stack.to_owned()),
                ("app.kubernetes.io/managed-by".to_owned(), "enclave".to_owned()),
            ])),
            ..ObjectMeta::default()
        },
        spec,
    }
}

fn value<S: Serialize>(object: &S) -> serde_json::Value {
    serde_json::to_value(object).unwrap_or_else(|error| panic!("internal error: an Istio object to JSON: {error}"))
}

/// The Service name of `app` inside the cluster.
pub fn host(app: &AppSpec) -> String {
    format!("{}.{}.svc.{CLUSTER_DOMAIN}", app.name, app.namespace())
}

/// The mesh identity of `app`'s pods (their service account is named after the app).
pub fn principal(mesh: &MeshSpec, app: &AppSpec) -> String {
    format!("{}/ns/{}/sa/{}", mesh.trust_domain, app.namespace(), app.name)
}

/// The mesh identity of Prometheus, which scrapes every app's internal port.
pub fn prometheus_principal(mesh: &MeshSpec) -> String {
    format!("{}/ns/{MONITORING_NAMESPACE}/sa/{PROMETHEUS_SERVICE_ACCOUNT}", mesh.trust_domain)
}

/// Labels of an app namespace in a mesh cluster: sidecar injection on.
pub fn namespace_labels() -> BTreeMap<String, String> {
    BTreeMap::from([(INJECTION_LABEL.to_owned(), "enabled".to_owned())])
}

/// Labels of `app`'s pods in a mesh cluster: the `blue` slot, and injection off when the app
/// opts out.
pub fn pod_labels(app: &AppSpec) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([(SLOT_LABEL.to_owned(), Slot::Blue.as_str().to_owned())]);
    if !app.mesh.sidecar {
        labels.insert(POD_INJECT_LABEL.to_owned(), "false".to_owned());
    }
    labels
}

/// The names of the ServiceEntry hosts of `service`'s endpoint in `region`: interface
/// endpoints with private DNS answer for the service's regional name (ECR's two reversed, the
/// registry's under each account's name), gateway endpoints for S3's path and bucket names.
pub fn aws_hosts(service: &str, region: &str) -> Vec<String> {
    let suffix = format!("{region}.amazonaws.com");
    match service {
        "ecr.api" => vec![format!("api.ecr.{suffix}")],
        "ecr.dkr" => vec![format!("*.dkr.ecr.{suffix}")],
        "s3" => vec![format!("s3.{suffix}"), format!("*.s3.{suffix}")],
        other => vec![format!("{other}.{suffix}")],
    }
}

/// The name a ServiceEntry host of a dependency outside the cluster gets. It is never resolved
/// (the entry matches by address); `.internal` is reserved for private use.
pub fn external_host(app: &AppSpec, dependency: &str) -> String {
    format!("{dependency}.{}.{}.internal", app.name, app.namespace())
}

/// The addresses of each dependency of `app` outside the cluster, with its port.
fn external_dependencies(app: &AppSpec, reach: &Reach<'_>) -> Vec<(String, Vec<String>, u16)> {
    app.monitoring
        .dependencies
        .iter()
        .filter_map(|dependency| {
            let addresses = match dependency.to.as_ref()? {
                Destination::App(_) => return None,
                Destination::Tier(tier) => reach.tier_subnets.get(tier.as_str())?.clone(),
                Destination::Cidr(cidr) => vec![cidr.to_string()],
            };
            Some((dependency.name.to_string(), addresses, dependency.port?))
        })
        .collect()
}

/// Every mesh object of `cluster`, as JSON values for its bundle; none when it has no mesh.
pub fn render_cluster(stack: &str, cluster: &ClusterSpec, inputs: &MeshInputs<'_>) -> Vec<serde_json::Value> {
    let Some(mesh) = &cluster.mesh else { return Vec::new() };
    let root = mesh.root_namespace.as_str();
    let apps = &inputs.reach.apps;
    let mut objects = vec![value(&object(
        stack,
        DEFAULT,
        root,
        PeerAuthenticationSpec { selector: None, mtls: PeerMtls { mode: MtlsMode::Strict } },
    ))];
    for service in &inputs.aws_services {
        let hosts = aws_hosts(service, &inputs.region);
        let wildcard = hosts.iter().any(|host| host.starts_with('*'));
        objects.push(value(&object(
            stack,
            &format!("aws-{}", service.replace('.', "-")),
            root,
            ServiceEntrySpec {
                hosts,
                addresses: Vec::new(),
                ports: vec![EntryPort { number: 443, name: "tls".to_owned(), protocol: EntryProtocol::Tls }],
                location: EntryLocation::MeshExternal,
                // A wildcard cannot be resolved: the original destination is kept.
                resolution: if wildcard { Resolution::None } else { Resolution::Dns },
                export_to: vec!["*".to_owned()],
            },
        )));
    }
    let namespaces: BTreeSet<&str> = apps.iter().map(|app| app.namespace().as_str()).collect();
    for namespace in namespaces {
        let permissive = mesh.permissive_namespaces.iter().any(|name| name.as_str() == namespace);
        let mode = if permissive { MtlsMode::Permissive } else { MtlsMode::Strict };
        objects.push(value(&object(
            stack,
            DEFAULT,
            namespace,
            PeerAuthenticationSpec { selector: None, mtls: PeerMtls { mode } },
        )));
        // Plain-text callers have no identity for an AuthorizationPolicy to allow: while a
        // namespace is migrating, only its NetworkPolicies enforce the declared callers.
        if !permissive {
            objects.push(value(&object(stack, ALLOW_NOTHING, namespace, AuthorizationPolicySpec::default())));
        }
        objects.push(value(&object(
            stack,
            DEFAULT,
            namespace,
            SidecarSpec {
                workload_selector: None,
                egress: vec![EgressListener { hosts: vec![format!("{root}/*")] }],
                outbound_traffic_policy: OutboundTrafficPolicy { mode: OutboundMode::RegistryOnly },
            },
        )));
    }
    for app in apps {
        let permissive = mesh.permissive_namespaces.iter().any(|name| name == app.namespace());
        let rendered = render_app(stack, mesh, app, &inputs.reach);
        objects.extend(rendered.into_iter().filter(|object| !(permissive && object["kind"] == "AuthorizationPolicy")));
    }
    objects
}

/// `app`'s authorization, destination rule, virtual service, sidecar and external entries.
pub fn render_app(stack: &str, mesh: &MeshSpec, app: &AppSpec, reach: &Reach<'_>) -> Vec<serde_json::Value> {
    let find = |name: &str| reach.apps.iter().copied().find(|other| other.name.as_str() == name);
    let namespace = app.namespace().as_str();
    let name = app.name.as_str();
    let selector = WorkloadSelector { match_labels: app.selector() };
    let mut rules: Vec<AuthorizationRule> = app
        .callers
        .iter()
        .filter_map(|caller| find(caller.app.as_str()).map(|other| (caller, other)))
        .map(|(caller, other)| AuthorizationRule {
            from: vec![RuleFrom { source: Source { principals: vec![principal(mesh, other)] } }],
            to: vec![RuleTo {
                operation: Operation {
                    ports: vec![app.port.to_string()],
                    methods: caller.methods.iter().map(ToString::to_string).collect(),
                    paths: caller.paths.clone(),
                },
            }],
        })
        .collect();
    rules.push(AuthorizationRule {
        from: vec![RuleFrom { source: Source { principals: vec![prometheus_principal(mesh)] } }],
        to: vec![RuleTo {
            operation: Operation {
                ports: vec![app.monitoring.port.to_string()],
                methods: vec!["GET".to_owned()],
                paths: vec![app.monitoring.metrics_path.clone()],
            },
        }],
    });
    let mut objects = vec![value(&object(
        stack,
        name,
        namespace,
        AuthorizationPolicySpec { selector: Some(selector.clone()), action: Some(AuthorizationAction::Allow), rules },
    ))];

    let resilience = &app.resilience;
    let slot_subset = |slot: Slot| Subset {
        name: slot.as_str().to_owned(),
        labels: BTreeMap::from([(SLOT_LABEL.to_owned(), slot.as_str().to_owned())]),
    };
    objects.push(value(&object(
        stack,
        name,
        namespace,
        DestinationRuleSpec {
            host: host(app),
            traffic_policy: TrafficPolicy {
                tls: app.mesh.sidecar.then_some(ClientTls { mode: ClientTlsMode::IstioMutual }),
                connection_pool: ConnectionPoolSettings {
                    tcp: TcpSettings { max_connections: resilience.connection_pool.max_connections },
                    http: HttpSettings {
                        http1_max_pending_requests: resilience.connection_pool.max_pending_requests,
                        max_requests_per_connection: resilience.connection_pool.max_requests_per_connection,
                    },
                },
                outlier_detection: OutlierDetectionSettings {
                    consecutive_5xx_errors: resilience.outlier_detection.consecutive_5xx,
                    interval: resilience.outlier_detection.interval.to_string(),
                    base_ejection_time: resilience.outlier_detection.base_ejection_time.to_string(),
                    max_ejection_percent: resilience.outlier_detection.max_ejection_percent,
                },
            },
            subsets: vec![slot_subset(Slot::Blue), slot_subset(Slot::Green)],
        },
    )));
    objects.push(value(&object(stack, name, namespace, virtual_service_spec(app, Slot::Blue))));

    let mut hosts = vec![format!("{}/*", mesh.root_namespace)];
    if reach.collector {
        // Its spans, the sidecar's and the app's own.
        hosts.push(format!("{}/{}", enclave_core::names::MONITORING_NAMESPACE, crate::addons::COLLECTOR_HOST));
    }
    for dependency in &app.monitoring.dependencies {
        if let Some(Destination::App(other)) = &dependency.to
            && let Some(other) = find(other.as_str())
        {
            hosts.push(format!("{}/{}", other.namespace(), host(other)));
        }
    }
    for (dependency, addresses, port) in external_dependencies(app, reach) {
        let entry_host = external_host(app, &dependency);
        hosts.push(format!("./{entry_host}"));
        objects.push(value(&object(
            stack,
            &format!("{name}-{dependency}"),
            namespace,
            ServiceEntrySpec {
                hosts: vec![entry_host],
                addresses,
                ports: vec![EntryPort { number: port, name: format!("tcp-{port}"), protocol: EntryProtocol::Tcp }],
                location: EntryLocation::MeshExternal,
                resolution: Resolution::None,
                export_to: vec![".".to_owned()],
            },
        )));
    }
    objects.push(value(&object(
        stack,
        name,
        namespace,
        SidecarSpec {
            workload_selector: Some(SidecarWorkloadSelector { labels: app.selector() }),
            egress: vec![EgressListener { hosts }],
            outbound_traffic_policy: OutboundTrafficPolicy { mode: OutboundMode::RegistryOnly },
        },
    )));
    objects
}

/// `app`'s VirtualService spec with all traffic on `serving`: the call's timeout and the mesh's
/// retries. A rollout switches traffic by writing this spec with the other slot.
pub fn virtual_service_spec(app: &AppSpec, serving: Slot) -> VirtualServiceSpec {
    let resilience = &app.resilience;
    let retries = &resilience.retries;
    let target = |slot: Slot| RouteDestination {
        destination: RouteTarget {
            host: host(app),
            subset: slot.as_str().to_owned(),
            port: PortSelector { number: app.port },
        },
        weight: if slot == serving { 100 } else { 0 },
    };
    VirtualServiceSpec {
        hosts: vec![host(app)],
        http: vec![HttpRoute {
            name: "primary".to_owned(),
            route: vec![target(Slot::Blue), target(Slot::Green)],
            timeout: resilience.timeout.to_string(),
            retries: HttpRetry {
                attempts: retries.attempts,
                per_try_timeout: (retries.attempts > 0).then(|| retries.per_try_timeout.to_string()),
                retry_on: (retries.attempts > 0)
                    .then(|| retries.retry_on.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")),
            },
        }],
    }
}

/// The retries one call from a client making `client` retries to an app whose mesh makes
/// `mesh` causes at most: every client attempt is retried by the mesh.
pub fn total_retries(client: u32, mesh: u32) -> u64 {
    (u64::from(client) + 1) * (u64::from(mesh) + 1) - 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> enclave_core::Spec {
        let text = r#"
organization: { name: acme, region: eu-west-1 }
network: { tiers: [{ name: app, size: 20, slot: 0 }, { name: data, size: 22, slot: 4 }] }
accounts: [{ name: prod, id: "333333333333", environment: prod, vpc_cidr: 10.3.0.0/16 }]
clusters: [{ name: main, account: prod, version: "1.33", mesh: { permissive_namespaces: [legacy] } }]
apps:
  - name: orders
    cluster: main
    namespace: shop
    image: example/orders:1.0
    port: 8080
    callers: [{ app: web, methods: [GET, POST], paths: ["/orders/*"] }]
    resilience: { retries: { attempts: 1 }, connection_pool: { max_requests_per_connection: 10 } }
    monitoring:
      dependencies:
        - { name: db, kind: database, to: { tier: data }, port: 5432 }
  - name: web
    cluster: main
    namespace: legacy
    image: example/web:1.0
    port: 8000
    resilience: { retries: { attempts: 0 } }
    mesh: { sidecar: false }
    monitoring:
      dependencies: [{ name: orders, kind: http, to: { app: orders }, retries: 1 }]
"#;
        enclave_core::config::load_str("spec.yaml", text).expect("valid").spec
    }

    fn find<'a>(objects: &'a [serde_json::Value], kind: &str, namespace: &str, name: &str) -> &'a serde_json::Value {
        objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["namespace"] == namespace && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {namespace}/{name}"))
    }

    fn render(spec: &enclave_core::Spec) -> Vec<serde_json::Value> {
        let reach = Reach {
            mesh_root: Some("istio-system".to_owned()),
            collector: false,
            apps: spec.apps.iter().collect(),
            tier_subnets: BTreeMap::from([("data".to_owned(), vec!["10.3.64.0/22".to_owned()])]),
        };
        let inputs =
            MeshInputs { reach, region: "eu-west-1".to_owned(), aws_services: vec!["ecr.dkr".into(), "sts".into()] };
        render_cluster("acme", &spec.clusters[0], &inputs)
    }

    #[test]
    fn callers_get_exactly_their_methods_and_paths_and_prometheus_only_the_scrape() {
        let spec = spec();
        let objects = render(&spec);
        let policy = find(&objects, "AuthorizationPolicy", "shop", "orders");
        assert_eq!(policy["spec"]["action"], "ALLOW");
        assert_eq!(
            policy["spec"]["rules"],
            json!([
                {"from": [{"source": {"principals": ["cluster.local/ns/legacy/sa/web"]}}],
                 "to": [{"operation": {"ports": ["8080"], "methods": ["GET", "POST"], "paths": ["/orders/*"]}}]},
                {"from": [{"source": {"principals": ["cluster.local/ns/monitoring/sa/prometheus"]}}],
                 "to": [{"operation": {"ports": ["9090"], "methods": ["GET"], "paths": ["/metrics"]}}]}
            ])
        );
        assert_eq!(find(&objects, "AuthorizationPolicy", "shop", ALLOW_NOTHING)["spec"], json!({}));
        assert_eq!(find(&objects, "PeerAuthentication", "istio-system", DEFAULT)["spec"]["mtls"]["mode"], "STRICT");
        assert_eq!(find(&objects, "PeerAuthentication", "shop", DEFAULT)["spec"]["mtls"]["mode"], "STRICT");
        assert_eq!(find(&objects, "PeerAuthentication", "legacy", DEFAULT)["spec"]["mtls"]["mode"], "PERMISSIVE");
    }

    #[test]
    fn traffic_policy_follows_resilience_and_egress_only_the_dependencies() {
        let spec = spec();
        let objects = render(&spec);
        let rule = find(&objects, "DestinationRule", "shop", "orders");
        assert_eq!(rule["spec"]["host"], "orders.shop.svc.cluster.local");
        assert_eq!(
            rule["spec"]["trafficPolicy"],
            json!({"tls": {"mode": "ISTIO_MUTUAL"},
                   "connectionPool": {"tcp": {"maxConnections": 100},
                                      "http": {"http1MaxPendingRequests": 64, "maxRequestsPerConnection": 10}},
                   "outlierDetection": {"consecutive5xxErrors": 5, "interval": "10s", "baseEjectionTime": "30s",
                                        "maxEjectionPercent": 50}})
        );
        let route = &find(&objects, "VirtualService", "shop", "orders")["spec"]["http"][0];
        assert_eq!(route["timeout"], "15s");
        assert_eq!(
            route["retries"],
            json!({"attempts": 1, "perTryTimeout": "5s",
            "retryOn": "connect-failure,refused-stream,unavailable"})
        );
        assert_eq!(route["route"][0]["weight"], 100);
        assert_eq!(route["route"][1]["destination"]["subset"], "green");
        assert_eq!(
            find(&objects, "VirtualService", "legacy", "web")["spec"]["http"][0]["retries"],
            json!({"attempts": 0})
        );

        let web = find(&objects, "Sidecar", "legacy", "web");
        assert_eq!(web["spec"]["egress"][0]["hosts"], json!(["istio-system/*", "shop/orders.shop.svc.cluster.local"]));
        assert_eq!(web["spec"]["outboundTrafficPolicy"]["mode"], "REGISTRY_ONLY");
        let orders = find(&objects, "Sidecar", "shop", "orders");
        assert_eq!(orders["spec"]["egress"][0]["hosts"], json!(["istio-system/*", "./db.orders.shop.internal"]));
        let entry = find(&objects, "ServiceEntry", "shop", "orders-db");
        assert_eq!(entry["spec"]["addresses"], json!(["10.3.64.0/22"]));
        assert_eq!(entry["spec"]["ports"], json!([{"number": 5432, "name": "tcp-5432", "protocol": "TCP"}]));
        assert_eq!(find(&objects, "ServiceEntry", "istio-system", "aws-ecr-dkr")["spec"]["resolution"], "NONE");
        assert_eq!(
            find(&objects, "ServiceEntry", "istio-system", "aws-sts")["spec"]["hosts"],
            json!(["sts.eu-west-1.amazonaws.com"])
        );
    }

    #[test]
    fn no_mesh_renders_nothing_and_retries_multiply() {
        let mut spec = spec();
        spec.clusters[0].mesh = None;
        assert!(render(&spec).is_empty());
        assert_eq!(total_retries(0, 2), 2);
        assert_eq!(total_retries(2, 2), 8);
        assert_eq!(pod_labels(&spec.apps[1]).get(POD_INJECT_LABEL).map(String::as_str), Some("false"));
    }
}

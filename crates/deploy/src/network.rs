//! NetworkPolicies from the spec's declared calls: one default-deny policy per namespace, then
//! per app exactly the connections the spec names, and nothing else.
//!
//! - **In**: the traffic port from the pods of each app in `callers`, and the internal port
//!   from Prometheus (the [`MONITORING_NAMESPACE`] pods with
//!   [`prometheus_pod_labels`]). Kubelet probes come from the node and are not subject to
//!   NetworkPolicy in the EKS VPC CNI's enforcement.
//! - **Out**: DNS to CoreDNS, istiod's configuration port in a mesh cluster (the sidecar's), then
//!   each of `monitoring.dependencies`: another app (its pods, on
//!   its traffic port), a subnet tier of the cluster's VPC (its subnets in use) or a CIDR, on the
//!   dependency's port.
//!
//! The same declarations drive the mesh's AuthorizationPolicies (issue 16): one source, two
//! enforcement layers. Validation (`enclave_core::validate`) guarantees every destination
//! exists and that a call between apps is declared at both ends.

use std::collections::BTreeMap;

use enclave_core::names::{MONITORING_NAMESPACE, prometheus_pod_labels};
use enclave_core::spec::{AppSpec, Destination};
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The name of every namespace's default-deny policy.
pub const DEFAULT_DENY: &str = "default-deny";

/// The label Kubernetes sets on every namespace to its name.
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// A transport protocol of a policy port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        }
    }
}

/// The other end of an allowed connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    /// The pods with `labels` in `namespace`.
    Pods {
        /// Their namespace.
        namespace: String,
        /// Labels they all carry.
        labels: BTreeMap<String, String>,
    },
    /// An address range (`10.3.64.0/20`).
    Block(String),
    /// Any address: only for AWS APIs, whose public addresses cannot be listed.
    Anywhere,
}

impl Peer {
    /// CoreDNS.
    pub fn dns() -> Peer {
        Peer::Pods {
            namespace: "kube-system".to_owned(),
            labels: BTreeMap::from([("k8s-app".to_owned(), "kube-dns".to_owned())]),
        }
    }

    /// The Prometheus pods that scrape workloads.
    pub fn prometheus() -> Peer {
        Peer::Pods { namespace: MONITORING_NAMESPACE.to_owned(), labels: prometheus_pod_labels() }
    }

    /// The pods of `app`.
    pub fn app(app: &AppSpec) -> Peer {
        Peer::Pods { namespace: app.namespace().to_string(), labels: app.selector() }
    }

    fn to_k8s(&self) -> Option<NetworkPolicyPeer> {
        match self {
            Peer::Pods { namespace, labels } => Some(NetworkPolicyPeer {
                namespace_selector: Some(LabelSelector {
                    match_labels: Some(BTreeMap::from([(NAMESPACE_NAME_LABEL.to_owned(), namespace.clone())])),
                    ..LabelSelector::default()
                }),
                pod_selector: Some(LabelSelector { match_labels: Some(labels.clone()), ..LabelSelector::default() }),
                ..NetworkPolicyPeer::default()
            }),
            Peer::Block(cidr) => Some(NetworkPolicyPeer {
                ip_block: Some(IPBlock { cidr: cidr.clone(), except: None }),
                ..NetworkPolicyPeer::default()
            }),
            // An empty `from`/`to` list means any peer.
            Peer::Anywhere => None,
        }
    }
}

/// One allowed connection: from (or to) `peers`, on `ports`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The other ends.
    pub peers: Vec<Peer>,
    /// The ports, on the receiving side.
    pub ports: Vec<(Protocol, u16)>,
}

impl Rule {
    fn peers(&self) -> Option<Vec<NetworkPolicyPeer>> {
        if self.peers.contains(&Peer::Anywhere) {
            return None;
        }
        Some(self.peers.iter().filter_map(Peer::to_k8s).collect())
    }

    fn ports(&self) -> Vec<NetworkPolicyPort> {
        self.ports
            .iter()
            .map(|(protocol, port)| NetworkPolicyPort {
                protocol: Some(protocol.as_str().to_owned()),
                port: Some(IntOrString::Int(i32::from(*port))),
                ..NetworkPolicyPort::default()
            })
            .collect()
    }
}

fn labels(stack: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/part-of".to_owned(), stack.to_owned()),
        ("app.kubernetes.io/managed-by".to_owned(), "enclave".to_owned()),
    ])
}

/// A policy selecting the pods with `selector` in `namespace`, allowing `ingress` and `egress`
/// and denying everything else in both directions.
pub fn policy(
    stack: &str,
    name: &str,
    namespace: &str,
    selector: BTreeMap<String, String>,
    ingress: &[Rule],
    egress: &[Rule],
) -> NetworkPolicy {
    NetworkPolicy {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(labels(stack)),
            ..ObjectMeta::default()
        },
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: (!selector.is_empty()).then_some(selector),
                ..LabelSelector::default()
            }),
            policy_types: Some(vec!["Ingress".to_owned(), "Egress".to_owned()]),
            // A rule with no peer allows nothing, so it is left out: an empty `from` (or `to`)
            // in Kubernetes means every peer.
            ingress: Some(
                ingress
                    .iter()
                    .filter(|rule| !rule.peers.is_empty())
                    .map(|rule| NetworkPolicyIngressRule { from: rule.peers(), ports: Some(rule.ports()) })
                    .collect(),
            ),
            egress: Some(
                egress
                    .iter()
                    .filter(|rule| !rule.peers.is_empty())
                    .map(|rule| NetworkPolicyEgressRule { to: rule.peers(), ports: Some(rule.ports()) })
                    .collect(),
            ),
        }),
    }
}

/// Every pod of `namespace` denied every connection in and out, unless another policy allows it.
pub fn default_deny(stack: &str, namespace: &str) -> NetworkPolicy {
    policy(stack, DEFAULT_DENY, namespace, BTreeMap::new(), &[], &[])
}

/// DNS queries to CoreDNS, over UDP and TCP.
pub fn dns_rule() -> Rule {
    Rule { peers: vec![Peer::dns()], ports: vec![(Protocol::Udp, 53), (Protocol::Tcp, 53)] }
}

/// What an app's policy needs to know about its cluster.
#[derive(Clone, Debug, Default)]
pub struct Reach<'a> {
    /// Every app of the cluster (callers and app dependencies are looked up here).
    pub apps: Vec<&'a AppSpec>,
    /// The subnets of each tier of the cluster's VPC (one per AZ in use), by tier name.
    pub tier_subnets: BTreeMap<String, Vec<String>>,
    /// The mesh's root namespace, in a mesh cluster: every pod's sidecar reaches istiod there.
    pub mesh_root: Option<String>,
    /// Whether the cluster runs the OpenTelemetry Collector (an add-on): every pod may send it
    /// spans (the app's own over OTLP/HTTP, its sidecar's over OTLP/gRPC).
    pub collector: bool,
}

/// The port sidecars fetch their configuration and certificates from istiod on.
pub const ISTIOD_XDS_PORT: u16 = 15012;

/// The connections `app` may accept and open, and nothing else. A destination the cluster does
/// not know (validation rules it out) is left out, never widened.
pub fn app_policy(stack: &str, app: &AppSpec, reach: &Reach<'_>) -> NetworkPolicy {
    let find = |name: &str| reach.apps.iter().copied().find(|other| other.name.as_str() == name);
    let mut ingress = Vec::new();
    let callers: Vec<Peer> = app.callers.iter().filter_map(|caller| find(caller.app.as_str())).map(Peer::app).collect();
    if !callers.is_empty() {
        ingress.push(Rule { peers: callers, ports: vec![(Protocol::Tcp, app.port)] });
    }
    ingress.push(Rule { peers: vec![Peer::prometheus()], ports: vec![(Protocol::Tcp, app.monitoring.port)] });
    let mut egress = vec![dns_rule()];
    if let Some(root) = &reach.mesh_root
        && app.mesh.sidecar
    {
        let istiod = BTreeMap::from([("app".to_owned(), "istiod".to_owned())]);
        egress.push(Rule {
            peers: vec![Peer::Pods { namespace: root.clone(), labels: istiod }],
            ports: vec![(Protocol::Tcp, ISTIOD_XDS_PORT)],
        });
    }
    if reach.collector {
        egress.push(Rule {
            peers: vec![Peer::Pods {
                namespace: enclave_core::names::MONITORING_NAMESPACE.to_owned(),
                labels: crate::addons::collector_labels(),
            }],
            ports: vec![(Protocol::Tcp, crate::addons::OTLP_GRPC_PORT), (Protocol::Tcp, crate::addons::OTLP_HTTP_PORT)],
        });
    }
    for dependency in &app.monitoring.dependencies {
        let rule = match &dependency.to {
            Some(Destination::App(name)) => find(name.as_str())
                .map(|other| Rule { peers: vec![Peer::app(other)], ports: vec![(Protocol::Tcp, other.port)] }),
            Some(Destination::Tier(tier)) => {
                reach.tier_subnets.get(tier.as_str()).zip(dependency.port).map(|(subnets, port)| Rule {
                    peers: subnets.iter().cloned().map(Peer::Block).collect(),
                    ports: vec![(Protocol::Tcp, port)],
                })
            }
            Some(Destination::Cidr(cidr)) => dependency
                .port
                .map(|port| Rule { peers: vec![Peer::Block(cidr.to_string())], ports: vec![(Protocol::Tcp, port)] }),
            None => None,
        };
        egress.extend(rule);
    }
    policy(stack, app.name.as_str(), app.namespace().as_str(), app.selector(), &ingress, &egress)
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
clusters: [{ name: main, account: prod, version: "1.33" }]
apps:
  - name: orders
    cluster: main
    namespace: shop
    image: example/orders:1.0
    port: 8080
    callers: [{ app: web }]
    monitoring:
      dependencies:
        - { name: db, kind: database, to: { tier: data }, port: 5432 }
        - { name: psp, kind: http, to: { cidr: 203.0.113.0/24 }, port: 443 }
  - name: web
    cluster: main
    image: example/web:1.0
    port: 8000
    monitoring:
      dependencies: [{ name: orders, kind: http, to: { app: orders } }]
"#;
        enclave_core::config::load_str("spec.yaml", text).expect("valid").spec
    }

    #[test]
    fn an_app_accepts_its_callers_and_prometheus_and_reaches_only_dns_and_its_dependencies() {
        let spec = spec();
        let reach = Reach {
            mesh_root: None,
            collector: false,
            apps: spec.apps.iter().collect(),
            tier_subnets: BTreeMap::from([(
                "data".to_owned(),
                vec!["10.3.64.0/22".to_owned(), "10.3.68.0/22".to_owned()],
            )]),
        };
        let orders = serde_json::to_value(app_policy("acme", &spec.apps[0], &reach)).expect("json");
        assert_eq!(orders["spec"]["podSelector"], json!({"matchLabels": {"app.kubernetes.io/name": "orders"}}));
        assert_eq!(orders["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
        let ingress = &orders["spec"]["ingress"];
        assert_eq!(
            ingress[0],
            json!({"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "web"}},
                             "podSelector": {"matchLabels": {"app.kubernetes.io/name": "web"}}}],
                   "ports": [{"port": 8080, "protocol": "TCP"}]})
        );
        assert_eq!(ingress[1]["ports"], json!([{"port": 9090, "protocol": "TCP"}]));
        assert_eq!(
            ingress[1]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
            "monitoring"
        );
        let egress = orders["spec"]["egress"].as_array().expect("egress");
        assert_eq!(egress.len(), 3, "DNS, the database tier and the payment provider: {egress:?}");
        assert_eq!(
            egress[1],
            json!({"to": [{"ipBlock": {"cidr": "10.3.64.0/22"}}, {"ipBlock": {"cidr": "10.3.68.0/22"}}], "ports": [{"port": 5432, "protocol": "TCP"}]})
        );
        assert_eq!(egress[2]["to"][0]["ipBlock"]["cidr"], "203.0.113.0/24");

        let web = serde_json::to_value(app_policy("acme", &spec.apps[1], &reach)).expect("json");
        assert_eq!(web["spec"]["ingress"].as_array().map(Vec::len), Some(1), "no caller: only the scrape");
        assert_eq!(
            web["spec"]["egress"][1],
            json!({"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "shop"}},
                           "podSelector": {"matchLabels": {"app.kubernetes.io/name": "orders"}}}],
                   "ports": [{"port": 8080, "protocol": "TCP"}]}),
            "the callee's traffic port, in the callee's namespace"
        );
    }

    #[test]
    fn the_default_deny_selects_every_pod_and_allows_nothing() {
        let deny = serde_json::to_value(default_deny("acme", "shop")).expect("json");
        assert_eq!(
            deny["spec"],
            json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": [], "egress": []})
        );
    }

    #[test]
    fn anywhere_is_an_absent_peer_list_never_an_empty_one() {
        let rule = Rule { peers: vec![Peer::Anywhere], ports: vec![(Protocol::Tcp, 443)] };
        let open = serde_json::to_value(policy("acme", "x", "ns", BTreeMap::new(), &[], &[rule])).expect("json");
        assert_eq!(open["spec"]["egress"], json!([{"ports": [{"port": 443, "protocol": "TCP"}]}]));
        let nobody = Rule { peers: vec![], ports: vec![(Protocol::Tcp, 443)] };
        let closed = serde_json::to_value(policy("acme", "x", "ns", BTreeMap::new(), &[nobody], &[])).expect("json");
        assert_eq!(closed["spec"]["ingress"], json!([]), "a rule without peers must not become `from: []` (everyone)");
    }
}

//! Mesh guardrails (`MESH001`...), over the spec and the mesh objects rendered from it: every
//! namespace of a mesh cluster on STRICT mutual TLS, every app reachable by exactly the callers
//! the spec declares (the rendered AuthorizationPolicies evaluated with Istio's rules, and
//! method or path limits that only a mesh can enforce), retries that never multiply, and every
//! app of a mesh cluster in the mesh.

use std::collections::{BTreeMap, BTreeSet};

use enclave_core::Address;
use enclave_core::guardrail::{Hit, RuleSet, Severity};
use enclave_core::names::{MONITORING_NAMESPACE, prometheus_pod_labels};
use enclave_core::spec::{AppSpec, ClusterSpec, Destination, Name, Spec};

use super::{AuthorizationPolicySpec, IstioObject, MeshInputs, principal, prometheus_principal, total_retries};
use crate::network::Reach;

/// The component of every mesh finding's address.
pub const COMPONENT: &str = "mesh";

/// What the mesh rules look at: the spec, and each mesh cluster's rendered objects.
#[derive(Debug)]
pub struct Subject<'a> {
    /// The spec.
    pub spec: &'a Spec,
    /// Each cluster with a mesh, and its rendered mesh objects.
    pub clusters: Vec<(&'a ClusterSpec, Vec<serde_json::Value>)>,
}

impl<'a> Subject<'a> {
    /// Renders the mesh of every cluster of `spec` (region and endpoints are not needed by any
    /// rule, so none are given).
    pub fn new(spec: &'a Spec) -> Self {
        let stack = spec.stack().to_string();
        let clusters = spec
            .clusters
            .iter()
            .filter(|cluster| cluster.mesh.is_some())
            .map(|cluster| {
                let apps = spec.apps.iter().filter(|app| app.cluster == cluster.name).collect();
                let inputs = MeshInputs { reach: Reach { apps, ..Reach::default() }, ..MeshInputs::default() };
                (cluster, super::render_cluster(&stack, cluster, &inputs))
            })
            .collect();
        Subject { spec, clusters }
    }

    fn apps(&self, cluster: &ClusterSpec) -> impl Iterator<Item = &'a AppSpec> + use<'a, '_> {
        let name = cluster.name.clone();
        self.spec.apps.iter().filter(move |app| app.cluster == name)
    }
}

/// Every mesh rule, in id order.
pub fn rules<'a>() -> RuleSet<Subject<'a>> {
    RuleSet::default().with(StrictMtls).with(DeclaredCallersOnly).with(RetriesDoNotMultiply).with(SidecarInjected)
}

macro_rules! rule {
    ($name:ident, $id:literal, $($rule:tt)*) => {
        enclave_core::guardrail_rule!(impl<'a> for Subject<'a>, $name, $id, None, $($rule)*);
    };
}

fn at(account: &Name, kind: &str, name: &str) -> Address {
    Address::new(account.as_str(), COMPONENT, kind, name)
        .unwrap_or_else(|error| panic!("internal address error: {error}"))
}

rule!(
    StrictMtls,
    "MESH001",
    Severity::High,
    "every namespace of a mesh cluster accepts only mutual TLS",
    "move the namespace's clients into the mesh, then remove it from `mesh.permissive_namespaces`",
    |subject| {
        subject
            .clusters
            .iter()
            .flat_map(|(cluster, _)| {
                let permissive = cluster.mesh.iter().flat_map(|mesh| mesh.permissive_namespaces.iter());
                permissive.map(|namespace| {
                    Hit::new(
                        at(&cluster.account, "namespace", &format!("{}-{namespace}", cluster.name)),
                        format!(
                            "namespace `{namespace}` of `{}` accepts plain text (PERMISSIVE): no identity to authorize, \
                             only its NetworkPolicies hold its callers",
                            cluster.name
                        ),
                    )
                })
            })
            .collect()
    }
);

rule!(
    DeclaredCallersOnly,
    "MESH002",
    Severity::High,
    "every app is reachable by exactly the callers the spec declares",
    "declare the caller under the app's `callers`; to limit methods or paths, turn the cluster's mesh on",
    |subject| {
        let mut hits = Vec::new();
        for (cluster, objects) in &subject.clusters {
            let Some(mesh) = &cluster.mesh else { continue };
            let workloads = workloads(subject.apps(cluster), mesh);
            let declared = declared_calls(subject.apps(cluster));
            for call in allowed_calls(objects, mesh.root_namespace.as_str(), &workloads) {
                if !declared.contains(&call) {
                    hits.push(Hit::new(
                        at(&cluster.account, "app", &call.to),
                        format!(
                            "`{}` may call `{}` on port {} but is not a declared caller",
                            call.from, call.to, call.port
                        ),
                    ));
                }
            }
        }
        for app in &subject.spec.apps {
            let cluster = subject.spec.clusters.iter().find(|cluster| cluster.name == app.cluster);
            let enforced = cluster.is_some_and(|cluster| cluster.mesh.is_some()) && app.mesh.sidecar;
            let limited = app.callers.iter().filter(|caller| !caller.methods.is_empty() || !caller.paths.is_empty());
            for caller in limited.filter(|_| !enforced) {
                let account = cluster.map(|cluster| cluster.account.clone());
                if let Some(account) = account {
                    hits.push(Hit::new(
                        at(&account, "app", app.name.as_str()),
                        format!(
                            "`{}` may call any method and path of `{}`: without the mesh only its port is enforced",
                            caller.app, app.name
                        ),
                    ));
                }
            }
        }
        hits
    }
);

rule!(
    RetriesDoNotMultiply,
    "MESH003",
    Severity::Medium,
    "a call is retried by one layer only: the caller's client or the mesh",
    "set the dependency's `retries: 0` and let the mesh retry, or the callee's `resilience.retries.attempts: 0`",
    |subject| {
        let mut hits = Vec::new();
        for (cluster, _) in &subject.clusters {
            for app in subject.apps(cluster) {
                for dependency in app.monitoring.dependencies.iter().filter(|dependency| dependency.retries > 0) {
                    let Some(Destination::App(callee)) = &dependency.to else { continue };
                    let Some(callee) = subject.apps(cluster).find(|other| &other.name == callee) else { continue };
                    // The caller's sidecar makes the mesh's retries (the callee's VirtualService).
                    let mesh = callee.resilience.retries.attempts;
                    if mesh == 0 || !app.mesh.sidecar {
                        continue;
                    }
                    let total = total_retries(dependency.retries, mesh);
                    hits.push(Hit::new(
                        at(&cluster.account, "app", app.name.as_str()),
                        format!(
                            "{} client retries to `{}` times its {} mesh retries: up to {total} retries per call \
                             (its budget is {})",
                            dependency.retries, callee.name, mesh, callee.resilience.retry_budget
                        ),
                    ));
                }
            }
        }
        hits
    }
);

rule!(
    SidecarInjected,
    "MESH004",
    Severity::High,
    "every app of a mesh cluster runs with the sidecar",
    "remove `mesh: { sidecar: false }` from the app",
    |subject| {
        subject
            .clusters
            .iter()
            .flat_map(|(cluster, _)| {
                subject.apps(cluster).filter(|app| !app.mesh.sidecar).map(|app| {
                    Hit::new(
                        at(&cluster.account, "app", app.name.as_str()),
                        format!(
                            "`{}` runs without the sidecar: no mutual TLS, no authorization, and its calls to apps \
                             on STRICT mutual TLS are refused",
                            app.name
                        ),
                    )
                })
            })
            .collect()
    }
);

/// A pod that may call: its name, namespace, labels, mesh identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    /// App name (or `prometheus`).
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Pod labels.
    pub labels: BTreeMap<String, String>,
    /// Mesh identity.
    pub principal: String,
    /// The ports it serves.
    pub ports: Vec<u16>,
}

/// A call: `from` may open a connection to `to` on `port`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Call {
    /// The caller.
    pub from: String,
    /// The callee.
    pub to: String,
    /// The callee's port.
    pub port: u16,
}

/// The apps of a mesh cluster and Prometheus, as workloads.
pub fn workloads<'a>(apps: impl Iterator<Item = &'a AppSpec>, mesh: &enclave_core::spec::MeshSpec) -> Vec<Workload> {
    let mut workloads: Vec<Workload> = apps
        .map(|app| Workload {
            name: app.name.to_string(),
            namespace: app.namespace().to_string(),
            labels: app.selector(),
            principal: principal(mesh, app),
            ports: vec![app.port, app.monitoring.port],
        })
        .collect();
    workloads.push(Workload {
        name: "prometheus".to_owned(),
        namespace: MONITORING_NAMESPACE.to_owned(),
        labels: prometheus_pod_labels(),
        principal: prometheus_principal(mesh),
        ports: Vec::new(),
    });
    workloads
}

/// The calls the spec declares: each caller on its callee's traffic port, Prometheus on every
/// app's internal port.
pub fn declared_calls<'a>(apps: impl Iterator<Item = &'a AppSpec>) -> BTreeSet<Call> {
    let mut calls = BTreeSet::new();
    for app in apps {
        for caller in &app.callers {
            calls.insert(Call { from: caller.app.to_string(), to: app.name.to_string(), port: app.port });
        }
        calls.insert(Call { from: "prometheus".to_owned(), to: app.name.to_string(), port: app.monitoring.port });
    }
    calls
}

/// The calls the AuthorizationPolicies among `objects` allow between `workloads`, by Istio's
/// rules for `ALLOW` policies: the policies of the root namespace and of the callee's own apply
/// when their selector (none: all) matches its labels; with none applying, everything is
/// allowed; otherwise a call is allowed when some rule has a source with the caller's identity
/// (or none) and an operation on the port (or none). Policies that do not parse count as
/// applying and allowing nothing. Methods and paths narrow a call; they never widen one.
pub fn allowed_calls(objects: &[serde_json::Value], root: &str, workloads: &[Workload]) -> BTreeSet<Call> {
    let policies: Vec<(String, Option<AuthorizationPolicySpec>)> = objects
        .iter()
        .filter(|object| object["kind"] == "AuthorizationPolicy")
        .map(|object| {
            let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default().to_owned();
            let parsed = serde_json::from_value::<IstioObject<AuthorizationPolicySpec>>(object.clone()).ok();
            (namespace, parsed.map(|policy| policy.spec))
        })
        .collect();
    let mut calls = BTreeSet::new();
    for callee in workloads {
        let applying: Vec<Option<&AuthorizationPolicySpec>> = policies
            .iter()
            .filter(|(namespace, _)| namespace == root || *namespace == callee.namespace)
            .filter(|(_, spec)| {
                spec.as_ref().is_none_or(|spec| {
                    spec.selector.as_ref().is_none_or(|selector| {
                        selector.match_labels.iter().all(|(key, value)| callee.labels.get(key) == Some(value))
                    })
                })
            })
            .map(|(_, spec)| spec.as_ref())
            .collect();
        for caller in workloads {
            for &port in &callee.ports {
                let allowed = applying.is_empty()
                    || applying.iter().flatten().any(|spec| {
                        spec.rules.iter().any(|rule| {
                            let from = rule.from.is_empty()
                                || rule.from.iter().any(|from| {
                                    from.source.principals.is_empty()
                                        || from.source.principals.contains(&caller.principal)
                                });
                            let to = rule.to.is_empty()
                                || rule.to.iter().any(|to| {
                                    to.operation.ports.is_empty()
                                        || to.operation.ports.iter().any(|p| *p == port.to_string())
                                });
                            from && to
                        })
                    });
                if allowed {
                    calls.insert(Call { from: caller.name.clone(), to: callee.name.clone(), port });
                }
            }
        }
    }
    calls
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: &str) -> Spec {
        let text = format!(
            r#"
organization: {{ name: acme, region: eu-west-1 }}
network: {{ tiers: [{{ name: app, size: 20, slot: 0 }}] }}
accounts: [{{ name: prod, id: "333333333333", environment: prod, vpc_cidr: 10.3.0.0/16 }}]
clusters: [{{ name: main, account: prod, version: "1.33", mesh: {{}} }}, {{ name: plain, account: prod, version: "1.33" }}]
apps:
  - name: orders
    cluster: main
    image: example/orders:1.0
    port: 8080
    callers: [{{ app: web }}]
  - name: web
    cluster: main
    image: example/web:1.0
    port: 8000
    monitoring:
      dependencies: [{{ name: orders, kind: http, to: {{ app: orders }}, retries: 0 }}]
{extra}"#
        );
        enclave_core::config::load_str("spec.yaml", &text).expect("valid").spec
    }

    fn ids(spec: &Spec) -> Vec<(String, String)> {
        let report = rules().run(&Subject::new(spec));
        report.findings.into_iter().map(|finding| (finding.rule, finding.message)).collect()
    }

    #[test]
    fn a_declared_mesh_has_no_finding_and_allows_exactly_the_declared_calls() {
        let spec = spec("");
        assert_eq!(ids(&spec), Vec::<(String, String)>::new());
        let subject = Subject::new(&spec);
        let (cluster, objects) = &subject.clusters[0];
        let mesh = cluster.mesh.as_ref().expect("mesh");
        let workloads = workloads(subject.apps(cluster), mesh);
        let allowed = allowed_calls(objects, "istio-system", &workloads);
        assert_eq!(allowed, declared_calls(subject.apps(cluster)));
        assert!(allowed.contains(&Call { from: "web".into(), to: "orders".into(), port: 8080 }));
        assert!(!allowed.contains(&Call { from: "orders".into(), to: "web".into(), port: 8000 }));
        assert!(!allowed.contains(&Call { from: "web".into(), to: "orders".into(), port: 9090 }));
    }

    #[test]
    fn the_evaluator_follows_istio_allow_semantics() {
        let spec = spec("");
        let subject = Subject::new(&spec);
        let (cluster, objects) = &subject.clusters[0];
        let mesh = cluster.mesh.as_ref().expect("mesh");
        let workloads = workloads(subject.apps(cluster), mesh);
        // No policy at all: everything is allowed.
        let ports: usize = workloads.iter().map(|workload| workload.ports.len()).sum();
        assert_eq!(allowed_calls(&[], "istio-system", &workloads).len(), workloads.len() * ports);
        // Only the allow-nothing policies: nothing is.
        let nothing: Vec<_> =
            objects.iter().filter(|o| o["metadata"]["name"] == super::super::ALLOW_NOTHING).cloned().collect();
        assert!(allowed_calls(&nothing, "istio-system", &workloads).is_empty());
        // A rule without a source, in the root namespace, opens the port to everyone.
        let mut open = objects.clone();
        open.push(serde_json::json!({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
            "metadata": {"name": "open", "namespace": "istio-system"},
            "spec": {"action": "ALLOW", "rules": [{"to": [{"operation": {"ports": ["8000"]}}]}]}}));
        let widened = allowed_calls(&open, "istio-system", &workloads);
        assert!(widened.contains(&Call { from: "orders".into(), to: "web".into(), port: 8000 }));
    }

    #[test]
    fn each_rule_fires_on_its_case() {
        let mut spec = spec(
            r#"  - name: lone
    cluster: plain
    image: example/lone:1.0
    port: 8000
    callers: [{ app: other, paths: ["/x"] }]
  - name: other
    cluster: plain
    image: example/other:1.0
    port: 8000
    monitoring:
      dependencies: [{ name: lone, kind: http, to: { app: lone } }]
"#,
        );
        spec.clusters[0].mesh.as_mut().expect("mesh").permissive_namespaces.push("web".parse().expect("name"));
        spec.apps[1].monitoring.dependencies[0].retries = 2;
        spec.apps[1].mesh.sidecar = false;
        let found: BTreeSet<String> = ids(&spec).into_iter().map(|(id, _)| id).collect();
        assert_eq!(found, BTreeSet::from(["MESH001", "MESH002", "MESH004"].map(String::from)), "{:?}", ids(&spec));
        spec.apps[1].mesh.sidecar = true;
        let hits = ids(&spec);
        let retries = hits.iter().find(|(id, _)| id == "MESH003").expect("MESH003");
        assert!(retries.1.contains("up to 8 retries per call (its budget is 2)"), "{}", retries.1);
    }
}

//! One source, two enforcement layers: on the reference platform (every overlay), the calls the
//! rendered AuthorizationPolicies allow and the calls the rendered NetworkPolicies allow are each
//! exactly the calls the spec declares (each caller on its callee's traffic port, Prometheus on
//! every app's internal port), over every pair of workloads and every port they serve, plus a
//! pod outside every app.

use std::collections::{BTreeMap, BTreeSet};

use enclave_deploy::mesh::guardrails::{Call, Workload, allowed_calls, declared_calls, workloads};
use enclave_tests::{load, workspace};
use serde_json::Value;

/// A pod of no app, in a namespace of its own: nothing may reach it or be reached by it.
fn intruder() -> Workload {
    Workload {
        name: "intruder".to_owned(),
        namespace: "default".to_owned(),
        labels: BTreeMap::from([("app.kubernetes.io/name".to_owned(), "intruder".to_owned())]),
        principal: "cluster.local/ns/default/sa/default".to_owned(),
        ports: vec![8080],
    }
}

fn labels(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .map(|map| map.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
        .unwrap_or_default()
}

/// Whether a label selector (`matchLabels` only; empty or absent: everything) selects `labels`.
fn selects(selector: &Value, labels: &BTreeMap<String, String>) -> bool {
    assert!(selector.get("matchExpressions").is_none(), "not modelled: {selector}");
    self::labels(&selector["matchLabels"]).iter().all(|(key, value)| labels.get(key) == Some(value))
}

/// Whether a NetworkPolicy peer admits `workload` (pod peers only: workloads have no fixed IP).
fn peer_admits(peer: &Value, workload: &Workload) -> bool {
    if peer.get("ipBlock").is_some() {
        return false;
    }
    let namespace = BTreeMap::from([("kubernetes.io/metadata.name".to_owned(), workload.namespace.clone())]);
    let namespace_ok = match peer.get("namespaceSelector") {
        Some(selector) => selects(selector, &namespace),
        None => true,
    };
    let pod_ok = peer.get("podSelector").is_none_or(|selector| selects(selector, &workload.labels));
    namespace_ok && pod_ok
}

/// Kubernetes NetworkPolicy semantics for one direction: the policies of `pod`'s namespace that
/// select it and have `direction` among their types; none: allowed; else some rule whose peers
/// (absent: all) admit `other` and whose ports (absent: all) include `port`.
fn network_allows(policies: &[Value], pod: &Workload, direction: &str, other: &Workload, port: u16) -> bool {
    let (types, rules, peers) = match direction {
        "Ingress" => ("Ingress", "ingress", "from"),
        _ => ("Egress", "egress", "to"),
    };
    let applying: Vec<&Value> = policies
        .iter()
        .filter(|p| p["metadata"]["namespace"] == pod.namespace.as_str())
        .filter(|p| selects(&p["spec"]["podSelector"], &pod.labels))
        .filter(|p| p["spec"]["policyTypes"].as_array().is_some_and(|t| t.iter().any(|t| t == types)))
        .collect();
    applying.is_empty()
        || applying.iter().any(|policy| {
            policy["spec"][rules].as_array().into_iter().flatten().any(|rule| {
                let peer_ok = rule.get(peers).is_none_or(|list| {
                    list.as_array().is_some_and(|list| list.iter().any(|peer| peer_admits(peer, other)))
                });
                let port_ok = rule.get("ports").is_none_or(|ports| {
                    ports.as_array().is_some_and(|ports| {
                        ports.iter().any(|p| p["port"] == i64::from(port) && p["protocol"] == "TCP")
                    })
                });
                peer_ok && port_ok
            })
        })
}

#[test]
fn authorization_and_network_policies_each_allow_exactly_the_declared_calls() {
    let mut meshes = 0;
    for overlays in [&[][..], &["client-a"], &["client-b"], &["staging"]] {
        let (loaded, _) = load(&workspace().join("fixtures/reference"), overlays).expect("valid reference spec");
        for rendered in enclave::render(&loaded.spec).expect("renders") {
            let cluster = loaded.spec.clusters.iter().find(|c| c.name.as_str() == rendered.cluster).expect("cluster");
            let apps = || loaded.spec.apps.iter().filter(|app| app.cluster == cluster.name);
            let objects: Vec<Value> = rendered.bundle.objects().iter().map(|o| o.value().clone()).collect();
            let at = format!("{overlays:?} {}", cluster.name);
            let declared = declared_calls(apps());
            assert!(declared.iter().any(|call| call.from != "prometheus") || apps().count() < 2, "{at}: no call");
            let mesh = cluster.mesh.clone().unwrap_or_default();
            let mut everyone = workloads(apps(), &mesh);
            everyone.push(intruder());

            // The NetworkPolicies: a call needs the caller's egress and the callee's ingress.
            let policies: Vec<Value> = objects.iter().filter(|o| o["kind"] == "NetworkPolicy").cloned().collect();
            let mut by_network = BTreeSet::new();
            for callee in &everyone {
                for caller in &everyone {
                    for &port in &callee.ports {
                        if network_allows(&policies, callee, "Ingress", caller, port)
                            && network_allows(&policies, caller, "Egress", callee, port)
                        {
                            by_network.insert(Call { from: caller.name.clone(), to: callee.name.clone(), port });
                        }
                    }
                }
            }
            // Neither the intruder's namespace nor Prometheus's has a policy here: between the
            // two, nothing is enforced by what we render. Every call to or from an app is.
            by_network
                .retain(|call| !(call.to == "intruder" && ["prometheus", "intruder"].contains(&call.from.as_str())));
            assert_eq!(by_network, declared, "{at}: NetworkPolicies");

            // The AuthorizationPolicies, in a mesh cluster.
            if let Some(mesh) = &cluster.mesh {
                meshes += 1;
                let mut by_mesh = allowed_calls(&objects, mesh.root_namespace.as_str(), &everyone);
                by_mesh.retain(|call| call.to != "intruder");
                assert_eq!(by_mesh, declared, "{at}: AuthorizationPolicies");
                // Methods and paths are each caller's, exactly.
                for app in apps() {
                    let policy = objects
                        .iter()
                        .find(|o| {
                            o["kind"] == "AuthorizationPolicy"
                                && o["metadata"]["namespace"] == app.namespace().as_str()
                                && o["metadata"]["name"] == app.name.as_str()
                        })
                        .unwrap_or_else(|| panic!("{at}: {}'s AuthorizationPolicy", app.name));
                    for (caller, rule) in app.callers.iter().zip(policy["spec"]["rules"].as_array().expect("rules")) {
                        let methods: Vec<String> = caller.methods.iter().map(ToString::to_string).collect();
                        let operation = &rule["to"][0]["operation"];
                        assert_eq!(
                            operation.get("methods").map_or(Value::Null, Clone::clone),
                            if methods.is_empty() { Value::Null } else { serde_json::json!(methods) }
                        );
                        assert_eq!(
                            operation.get("paths").map_or(Value::Null, Clone::clone),
                            if caller.paths.is_empty() { Value::Null } else { serde_json::json!(caller.paths) }
                        );
                    }
                }
            } else {
                assert!(
                    objects.iter().all(|o| !o["apiVersion"].as_str().unwrap_or_default().contains("istio.io")),
                    "{at}: no Istio object without a mesh"
                );
            }
        }
    }
    assert!(meshes >= 4, "the reference platform has a mesh cluster in every overlay");
}

#[test]
fn the_reference_platform_has_no_mesh_finding() {
    let (loaded, network) = load(&workspace().join("fixtures/reference"), &[]).expect("valid reference spec");
    let report = enclave::platform::guardrails(&loaded.spec, &network);
    let mesh: Vec<_> = report.findings.iter().filter(|f| f.rule.starts_with("MESH")).collect();
    assert!(mesh.is_empty(), "{mesh:?}");
}

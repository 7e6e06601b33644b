//! What moto 5.2.5 does not serve of EKS (it answers 404), served by the fault proxy in front
//! of it ([`crate::proxy::Faults::eks_gaps`]): managed add-ons and access entries with their
//! access policies, in memory, shaped like EKS's REST-JSON answers. Everything else about a
//! cluster stays moto's; deleting a cluster here forgets its add-ons and entries.
//!
//! Pod Identity associations are served too (create, list with its filters, describe, update of
//! the role, delete; a second association of one service account is `ResourceInUseException`).
//!
//! What this does not model: add-on versions beyond the one asked for (or a fixed default),
//! configuration values, `UpdateAccessEntry`, target roles of associations, and accounts: state is
//! keyed by cluster name (the proxy cannot tell accounts apart), so two accounts with a cluster
//! of the same name would share it.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::{Value, json};

/// The add-ons and access entries of every cluster, by cluster name.
#[derive(Debug, Default)]
pub(crate) struct EksGaps {
    clusters: Mutex<BTreeMap<String, Extras>>,
}

#[derive(Debug, Default)]
struct Extras {
    addons: BTreeMap<String, Value>,
    entries: BTreeMap<String, Entry>,
    associations: BTreeMap<String, Value>,
    next_association: u64,
}

#[derive(Debug)]
struct Entry {
    entry: Value,
    policies: BTreeMap<String, Value>,
}

/// An answer: status and JSON body (an `x-amzn-errortype` for errors).
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) error: Option<&'static str>,
    pub(crate) body: Value,
}

fn ok(body: Value) -> Option<Answer> {
    Some(Answer { status: 200, error: None, body })
}

fn error(status: u16, code: &'static str, message: String) -> Option<Answer> {
    Some(Answer { status, error: Some(code), body: json!({ "message": message }) })
}

fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

/// Whether a request is signed for EKS.
pub(crate) fn is_eks(authorization: Option<&str>) -> bool {
    authorization.is_some_and(|value| value.contains("/eks/aws4_request"))
}

impl EksGaps {
    /// Answers `method path` when it is an add-on or access-entry call; `None` forwards it.
    pub(crate) fn answer(&self, method: &str, path: &str, body: &[u8]) -> Option<Answer> {
        let segments: Vec<String> = path.split('?').next()?.trim_matches('/').split('/').map(decode).collect();
        let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
        let mut clusters = self.clusters.lock().ok()?;
        match parts.as_slice() {
            ["clusters", cluster] if method == "DELETE" => {
                // moto deletes the cluster; what it did not know goes with it.
                clusters.remove(*cluster);
                None
            }
            ["clusters", cluster, "addons"] => {
                let extras = clusters.entry((*cluster).to_owned()).or_default();
                match method {
                    "GET" => ok(json!({ "addons": extras.addons.keys().collect::<Vec<_>>() })),
                    "POST" => {
                        let name = request["addonName"].as_str().unwrap_or_default().to_owned();
                        if extras.addons.contains_key(&name) {
                            return error(409, "ResourceInUseException", format!("Addon already exists: {name}"));
                        }
                        let addon = json!({
                            "addonName": name,
                            "clusterName": cluster,
                            "status": "ACTIVE",
                            "addonVersion": request["addonVersion"].as_str().unwrap_or("v1.0.0-eksbuild.1"),
                            "addonArn": format!("arn:aws:eks:::addon/{cluster}/{name}"),
                            "serviceAccountRoleArn": request["serviceAccountRoleArn"],
                            "tags": request["tags"],
                            "createdAt": 1_700_000_000,
                            "modifiedAt": 1_700_000_000
                        });
                        extras.addons.insert(name, addon.clone());
                        ok(json!({ "addon": addon }))
                    }
                    _ => None,
                }
            }
            ["clusters", cluster, "addons", name, rest @ ..] => {
                let extras = clusters.entry((*cluster).to_owned()).or_default();
                let missing =
                    || error(404, "ResourceNotFoundException", format!("No addon: {name} found in cluster: {cluster}"));
                match (method, rest) {
                    ("GET", []) => extras.addons.get(*name).map_or_else(missing, |addon| ok(json!({ "addon": addon }))),
                    ("DELETE", []) => extras.addons.remove(*name).map_or_else(missing, |mut addon| {
                        addon["status"] = json!("DELETING");
                        ok(json!({ "addon": addon }))
                    }),
                    ("POST", ["update"]) => match extras.addons.get_mut(*name) {
                        Some(addon) => {
                            if let Some(version) = request["addonVersion"].as_str() {
                                addon["addonVersion"] = json!(version);
                            }
                            ok(
                                json!({ "update": { "id": "fault-proxy", "status": "Successful", "type": "AddonUpdate" } }),
                            )
                        }
                        None => missing(),
                    },
                    _ => None,
                }
            }
            ["clusters", cluster, "pod-identity-associations"] => {
                let extras = clusters.entry((*cluster).to_owned()).or_default();
                match method {
                    "GET" => {
                        let query: BTreeMap<String, String> = path
                            .split_once('?')
                            .map(|(_, query)| {
                                query
                                    .split('&')
                                    .filter_map(|pair| pair.split_once('='))
                                    .map(|(k, v)| (k.to_owned(), decode(v)))
                                    .collect()
                            })
                            .unwrap_or_default();
                        let matches = |association: &&Value, field: &str| {
                            query.get(field).is_none_or(|wanted| association[field].as_str() == Some(wanted))
                        };
                        let summaries: Vec<Value> = extras
                            .associations
                            .values()
                            .filter(|a| matches(a, "namespace") && matches(a, "serviceAccount"))
                            .map(|a| {
                                json!({
                                    "clusterName": a["clusterName"], "namespace": a["namespace"],
                                    "serviceAccount": a["serviceAccount"], "associationArn": a["associationArn"],
                                    "associationId": a["associationId"]
                                })
                            })
                            .collect();
                        ok(json!({ "associations": summaries }))
                    }
                    "POST" => {
                        let (namespace, account) = (&request["namespace"], &request["serviceAccount"]);
                        if extras
                            .associations
                            .values()
                            .any(|a| &a["namespace"] == namespace && &a["serviceAccount"] == account)
                        {
                            return error(
                                409,
                                "ResourceInUseException",
                                "Association already exists for this service account".to_owned(),
                            );
                        }
                        extras.next_association += 1;
                        let id = format!("a-fault-proxy-{:04}", extras.next_association);
                        let association = json!({
                            "clusterName": cluster,
                            "namespace": namespace,
                            "serviceAccount": account,
                            "roleArn": request["roleArn"],
                            "associationArn": format!("arn:aws:eks:us-east-1:123456789012:podidentityassociation/{cluster}/{id}"),
                            "associationId": id,
                            "tags": request.get("tags").cloned().unwrap_or_else(|| json!({})),
                            "createdAt": 0,
                            "modifiedAt": 0
                        });
                        extras.associations.insert(id, association.clone());
                        ok(json!({ "association": association }))
                    }
                    _ => None,
                }
            }
            ["clusters", cluster, "pod-identity-associations", id] => {
                let extras = clusters.entry((*cluster).to_owned()).or_default();
                let missing = || {
                    error(404, "ResourceNotFoundException", format!("No association {id} found in cluster {cluster}"))
                };
                match method {
                    "GET" => extras.associations.get(*id).map_or_else(missing, |a| ok(json!({ "association": a }))),
                    "POST" => match extras.associations.get_mut(*id) {
                        Some(association) => {
                            if let Some(role) = request.get("roleArn") {
                                association["roleArn"] = role.clone();
                            }
                            ok(json!({ "association": association }))
                        }
                        None => missing(),
                    },
                    "DELETE" => {
                        extras.associations.remove(*id).map_or_else(missing, |a| ok(json!({ "association": a })))
                    }
                    _ => None,
                }
            }
            ["clusters", cluster, "access-entries"] => {
                let extras = clusters.entry((*cluster).to_owned()).or_default();
                match method {
                    "GET" => ok(json!({ "accessEntries": extras.entries.keys().collect::<Vec<_>>() })),
                    "POST" => {
                        let principal = request["principalArn"].as_str().unwrap_or_default().to_owned();
                        if extras.entries.contains_key(&principal) {
                            return error(
                                409,
                                "ResourceInUseException",
                                format!(
                                    "The specified access entry resource is already in use on this cluster: {principal}"
                                ),
                            );
                        }
                        let entry = json!({
                            "clusterName": cluster,
                            "principalArn": principal,
                            "kubernetesGroups": request["kubernetesGroups"].as_array().cloned().unwrap_or_default(),
                            "accessEntryArn": format!("arn:aws:eks:::access-entry/{cluster}/{}", principal.rsplit('/').next().unwrap_or_default()),
                            "tags": request["tags"],
                            "type": request["type"].as_str().unwrap_or("STANDARD"),
                            "username": principal,
                            "createdAt": 1_700_000_000,
                            "modifiedAt": 1_700_000_000
                        });
                        extras.entries.insert(principal, Entry { entry: entry.clone(), policies: BTreeMap::new() });
                        ok(json!({ "accessEntry": entry }))
                    }
                    _ => None,
                }
            }
            ["clusters", cluster, "access-entries", principal, rest @ ..] => {
                let extras = clusters.entry((*cluster).to_owned()).or_default();
                let principal = (*principal).to_owned();
                let missing = || {
                    error(
                        404,
                        "ResourceNotFoundException",
                        format!("The specified principalArn could not be found: {principal}"),
                    )
                };
                match (method, rest) {
                    ("GET", []) => extras
                        .entries
                        .get(&principal)
                        .map_or_else(missing, |entry| ok(json!({ "accessEntry": entry.entry }))),
                    ("DELETE", []) => extras.entries.remove(&principal).map_or_else(missing, |_| ok(json!({}))),
                    ("GET", ["access-policies"]) => extras.entries.get(&principal).map_or_else(missing, |entry| {
                        ok(json!({
                            "clusterName": cluster,
                            "principalArn": principal,
                            "associatedAccessPolicies": entry.policies.values().collect::<Vec<_>>()
                        }))
                    }),
                    ("POST", ["access-policies"]) => match extras.entries.get_mut(&principal) {
                        Some(entry) => {
                            let arn = request["policyArn"].as_str().unwrap_or_default().to_owned();
                            let policy = json!({
                                "policyArn": arn,
                                "accessScope": request["accessScope"],
                                "associatedAt": 1_700_000_000,
                                "modifiedAt": 1_700_000_000
                            });
                            entry.policies.insert(arn, policy.clone());
                            ok(
                                json!({ "clusterName": cluster, "principalArn": principal, "associatedAccessPolicy": policy }),
                            )
                        }
                        None => missing(),
                    },
                    ("DELETE", ["access-policies", policy]) => match extras.entries.get_mut(&principal) {
                        Some(entry) => {
                            entry.policies.remove(*policy);
                            ok(json!({}))
                        }
                        None => missing(),
                    },
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_ons_and_access_entries_live_until_deleted_and_go_with_their_cluster() {
        let gaps = EksGaps::default();
        let created = gaps.answer("POST", "/clusters/main/addons", br#"{"addonName":"coredns"}"#).expect("answered");
        assert_eq!((created.status, created.body["addon"]["status"].as_str()), (200, Some("ACTIVE")));
        let twice = gaps.answer("POST", "/clusters/main/addons", br#"{"addonName":"coredns"}"#).expect("answered");
        assert_eq!((twice.status, twice.error), (409, Some("ResourceInUseException")));
        let listed = gaps.answer("GET", "/clusters/main/addons", b"").expect("answered");
        assert_eq!(listed.body["addons"], json!(["coredns"]));
        let principal = "arn%3Aaws%3Aiam%3A%3A333333333333%3Arole%2Fadmins";
        gaps.answer(
            "POST",
            "/clusters/main/access-entries",
            br#"{"principalArn":"arn:aws:iam::333333333333:role/admins"}"#,
        )
        .expect("answered");
        let policy = br#"{"policyArn":"arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy","accessScope":{"type":"cluster"}}"#;
        gaps.answer("POST", &format!("/clusters/main/access-entries/{principal}/access-policies"), policy)
            .expect("answered");
        let policies = gaps
            .answer("GET", &format!("/clusters/main/access-entries/{principal}/access-policies"), b"")
            .expect("answered");
        assert_eq!(policies.body["associatedAccessPolicies"][0]["accessScope"]["type"], "cluster");
        let association = br#"{"namespace":"external-secrets","serviceAccount":"external-secrets","roleArn":"arn:aws:iam::333333333333:role/r","tags":{"enclave:stack":"acme"}}"#;
        let made = gaps.answer("POST", "/clusters/main/pod-identity-associations", association).expect("answered");
        let id = made.body["association"]["associationId"].as_str().expect("an id").to_owned();
        let again = gaps.answer("POST", "/clusters/main/pod-identity-associations", association).expect("answered");
        assert_eq!((again.status, again.error), (409, Some("ResourceInUseException")));
        let listed = gaps
            .answer("GET", "/clusters/main/pod-identity-associations?namespace=external-secrets", b"")
            .expect("answered");
        assert_eq!(listed.body["associations"][0]["associationId"], json!(id));
        let none =
            gaps.answer("GET", "/clusters/main/pod-identity-associations?namespace=other", b"").expect("answered");
        assert_eq!(none.body["associations"], json!([]));
        let path = format!("/clusters/main/pod-identity-associations/{id}");
        gaps.answer("POST", &path, br#"{"roleArn":"arn:aws:iam::333333333333:role/s"}"#).expect("answered");
        let described = gaps.answer("GET", &path, b"").expect("answered");
        assert_eq!(described.body["association"]["roleArn"], "arn:aws:iam::333333333333:role/s");
        assert_eq!(described.body["association"]["tags"]["enclave:stack"], "acme");
        assert!(gaps.answer("DELETE", "/clusters/main", b"").is_none(), "the cluster delete goes on to moto");
        let gone = gaps.answer("GET", "/clusters/main/addons/coredns", b"").expect("answered");
        assert_eq!((gone.status, gone.error), (404, Some("ResourceNotFoundException")));
        assert!(gaps.answer("GET", "/clusters/main", b"").is_none(), "DescribeCluster is moto's");
    }
}

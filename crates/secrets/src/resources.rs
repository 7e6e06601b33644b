//! Desired resources of the secrets domain, under the `secrets` component: per app its role
//! and its secrets, and with Pod Identity the operator's role and its association.
//!
//! Secrets come after the account key and its alias (made by access) and after the role their
//! policy names; IRSA roles after their cluster's OIDC provider, associations after their
//! cluster (made by deploy). A secret's `value` is sensitive: plans compare its digest and show
//! `(sensitive)`; a generated value is set only when the secret is created (`initial`).

use enclave_core::Address;
use enclave_core::names::{
    ROLE_PATH, account_key_address, account_key_alias_address, cluster_address, oidc_provider_address,
};
use enclave_core::plan::Resource;
use enclave_core::spec::{SecretSource, WorkloadIdentity};
use serde_json::{Value, json};

use crate::kind::Kind;
use crate::model::{
    AppSecrets, CONTROLLER_NAMESPACE, CONTROLLER_SERVICE_ACCOUNT, READER_SERVICE_ACCOUNT, SecretEntry, SecretsModel,
};
use crate::policy;
use crate::values::Values;

/// The component of every secrets address.
pub const COMPONENT: &str = "secrets";

/// The address of a secrets resource.
pub fn address(account: &str, kind: Kind, name: &str) -> Address {
    Address::new(account, COMPONENT, kind.as_str(), name)
        .unwrap_or_else(|error| panic!("internal address error: {error}"))
}

/// The address name of a secret: `<app>-<name>`.
pub fn secret_name(app: &AppSecrets, secret: &SecretEntry) -> String {
    format!("{}-{}", app.app, secret.name)
}

/// Rotation as compared: null, or the function and days.
pub fn rotation(secret: &SecretEntry) -> Value {
    match &secret.rotation {
        Some((days, Some(lambda))) => json!({ "lambda": lambda, "days": days }),
        // Without a function nothing can rotate it: nothing is configured (a guardrail says so).
        Some((_, None)) | None => Value::Null,
    }
}

/// Every desired secrets resource. A secret whose value `values` lacks is still planned, with
/// its value unknown (offline plans of specs whose sources are elsewhere).
pub fn desired(model: &SecretsModel, values: &Values) -> Vec<Resource> {
    let mut out = Vec::new();
    for cluster in &model.clusters {
        let Some(controller) = cluster.controller_role() else { continue };
        let apps: Vec<&AppSecrets> = model.apps.iter().filter(|app| app.cluster == cluster.name).collect();
        let role = address(&cluster.account, Kind::IamRole, &controller);
        out.push(
            Resource::new(role.clone())
                .immutable("name", controller.as_str())
                .immutable("path", ROLE_PATH)
                .attr(
                    "trust_policy",
                    policy::pod_identity_trust(cluster, CONTROLLER_NAMESPACE, CONTROLLER_SERVICE_ACCOUNT),
                )
                .attr("managed_policies", json!([]))
                .attr("policy", policy::controller_policy(&apps, &model.partition)),
        );
        out.push(
            Resource::new(address(
                &cluster.account,
                Kind::PodIdentityAssociation,
                &format!("{}-{CONTROLLER_NAMESPACE}-{CONTROLLER_SERVICE_ACCOUNT}", cluster.name),
            ))
            .immutable("cluster", cluster_address(&cluster.account, &cluster.name).to_string())
            .immutable("namespace", CONTROLLER_NAMESPACE)
            .immutable("service_account", CONTROLLER_SERVICE_ACCOUNT)
            .attr("role", role.to_string())
            .after(&cluster_address(&cluster.account, &cluster.name))
            .after(&role),
        );
    }
    for app in &model.apps {
        let role = address(&app.account, Kind::IamRole, &app.role_name);
        let mut resource = Resource::new(role.clone())
            .immutable("name", app.role_name.as_str())
            .immutable("path", ROLE_PATH)
            .attr("managed_policies", json!([]))
            .attr("policy", policy::read_policy(app, &model.partition, &model.region));
        resource = match app.identity {
            WorkloadIdentity::Irsa => {
                let provider = oidc_provider_address(&app.account, &app.cluster);
                resource
                    .attr("trust_policy", policy::irsa_trust(&provider, &app.namespace, READER_SERVICE_ACCOUNT))
                    .after(&provider)
            }
            WorkloadIdentity::PodIdentity => {
                let cluster = model.clusters.iter().find(|c| c.name == app.cluster);
                let controller = cluster.and_then(|c| c.controller_role().map(|name| (c, name)));
                match controller {
                    Some((cluster, name)) => resource
                        .attr(
                            "trust_policy",
                            policy::chained_trust(&crate::model::role_arn(
                                &model.partition,
                                &cluster.account_id,
                                &name,
                            )),
                        )
                        .after(&address(&app.account, Kind::IamRole, &name)),
                    None => resource,
                }
            }
        };
        out.push(resource);
        for secret in &app.secrets {
            out.push(secret_resource(model, app, secret, &role, values));
        }
    }
    out
}

fn secret_resource(
    model: &SecretsModel,
    app: &AppSecrets,
    secret: &SecretEntry,
    role: &Address,
    values: &Values,
) -> Resource {
    let key = account_key_address(&app.account);
    let mut resource = Resource::new(address(&app.account, Kind::Secret, &secret_name(app, secret)))
        .immutable("name", secret.full_name.as_str())
        .attr("description", format!("{} of app {} ({})", secret.name, app.app, model.stack))
        .attr("key", key.to_string())
        .attr("policy", policy::secret_policy(app, &model.partition))
        .attr("rotation", rotation(secret))
        .attr("source", secret.source_kind())
        .attr("recovery_days", secret.recovery_days)
        .after(&key)
        .after(&account_key_alias_address(&app.account))
        .after(role);
    if let Some(value) = values.get(&secret.full_name) {
        resource = resource.secret("value", value.clone());
        if matches!(secret.source, SecretSource::Generate(_)) {
            // Generated once, at creation; never replaced by a later apply.
            resource.initial.insert("value".to_owned());
        }
    }
    resource
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_desired_attribute_is_updatable_or_immutable() {
        let spec = crate::testing::spec();
        let model = crate::model::build(&spec);
        let values = crate::testing::values(&spec);
        let desired = desired(&model, &values);
        assert!(!desired.is_empty());
        for resource in &desired {
            let kind: Kind = resource.address.kind().parse().expect("a secrets kind");
            for name in resource.attributes.keys() {
                let updatable = kind.updatable().contains(&name.as_str());
                let immutable = resource.replace_on.contains(name);
                assert!(
                    updatable != immutable,
                    "{}: {name} updatable {updatable}, immutable {immutable}",
                    resource.address
                );
            }
        }
        let kinds: BTreeSet<&str> = desired.iter().map(|r| r.address.kind()).collect();
        assert_eq!(kinds, BTreeSet::from(["iam-role", "pod-identity-association", "secret"]));
    }

    #[test]
    fn every_app_role_is_assumable_by_exactly_its_own_reader_and_reads_exactly_its_secrets() {
        let spec = crate::testing::spec();
        let model = crate::model::build(&spec);
        let desired = desired(&model, &crate::testing::values(&spec));
        assert_eq!(model.apps.len(), 2 + 2, "orders, reports, and each cluster's monitoring stack");
        for app in &model.apps {
            let role = desired.iter().find(|r| r.address.name() == app.role_name).expect("the app's role");
            let trust = &role.attributes["trust_policy"]["Statement"];
            assert_eq!(trust.as_array().map(Vec::len), Some(1), "{}: one statement", app.app);
            let statement = &trust[0];
            match app.identity {
                WorkloadIdentity::Irsa => {
                    let provider = oidc_provider_address(&app.account, &app.cluster).to_string();
                    assert_eq!(statement["Principal"]["Federated"], json!(provider));
                    assert_eq!(statement["Action"], "sts:AssumeRoleWithWebIdentity");
                    let equals = &statement["Condition"]["StringEquals"];
                    assert_eq!(
                        equals[format!("{provider}:sub")],
                        json!(format!("system:serviceaccount:{}:{READER_SERVICE_ACCOUNT}", app.namespace))
                    );
                    assert_eq!(equals[format!("{provider}:aud")], "sts.amazonaws.com");
                    assert_eq!(equals.as_object().map(serde_json::Map::len), Some(2), "nothing looser");
                }
                WorkloadIdentity::PodIdentity => {
                    // Only the operator's role, which only Pod Identity's session for the
                    // operator's service account may assume.
                    let controller = format!("role/enclave/{}-external-secrets", app.cluster);
                    assert!(statement["Principal"]["AWS"].as_str().is_some_and(|p| p.ends_with(&controller)));
                    let operator =
                        desired.iter().find(|r| r.address.name() == format!("{}-external-secrets", app.cluster));
                    let operator = &operator.expect("the operator's role").attributes["trust_policy"]["Statement"][0];
                    let tags = &operator["Condition"]["StringEquals"];
                    assert_eq!(tags["aws:RequestTag/kubernetes-service-account"], CONTROLLER_SERVICE_ACCOUNT);
                    assert_eq!(tags["aws:RequestTag/kubernetes-namespace"], CONTROLLER_NAMESPACE);
                    assert_eq!(tags["aws:RequestTag/eks-cluster-name"], json!(app.cluster));
                }
            }
            let resources = &role.attributes["policy"]["Statement"][0]["Resource"];
            let mine: Vec<String> = app
                .secrets
                .iter()
                .map(|s| policy::secret_arn_pattern("aws", &model.region, &app.account_id, &s.full_name))
                .collect();
            assert_eq!(resources, &json!(mine), "{}: exactly its secrets", app.app);
        }
    }

    #[test]
    fn a_generated_value_is_initial_and_a_given_one_is_compared() {
        let spec = crate::testing::spec();
        let model = crate::model::build(&spec);
        let desired = desired(&model, &crate::testing::values(&spec));
        let secret =
            |name: &str| desired.iter().find(|r| r.address.name() == name).unwrap_or_else(|| panic!("{name} planned"));
        let generated = secret("orders-database-password");
        assert!(generated.initial.contains("value") && generated.sensitive.contains("value"));
        let given = secret("orders-payments-api-key");
        assert!(!given.initial.contains("value") && given.sensitive.contains("value"));
        assert!(!format!("{given:?}").contains(crate::testing::CANARY));
    }
}

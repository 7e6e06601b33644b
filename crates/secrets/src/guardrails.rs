//! Secrets guardrails (`SEC001`...), over the desired resources of every domain and the
//! objects rendered into the cluster bundles. The reference platform produces no finding.

use enclave_core::Address;
use enclave_core::guardrail::{Hit, RuleSet, Severity};
use enclave_core::plan::Resource;
use serde_json::Value;

use crate::kind::Kind;
use crate::resources::COMPONENT;
use crate::seal::{CLUSTER_WIDE, Scope};

/// What the rules look at.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    /// Desired resources of every domain.
    pub resources: &'a [Resource],
    /// Rendered Kubernetes objects, each with the account of the cluster it is rendered for.
    pub objects: &'a [(String, Value)],
    /// The secrets model (for what only the spec says, like rotation without a function).
    pub model: &'a crate::SecretsModel,
}

/// Every secrets rule, in id order.
pub fn rules<'a>() -> RuleSet<Subject<'a>> {
    RuleSet::default()
        .with(TrustNamesTheServiceAccount)
        .with(NoPublicSecret)
        .with(OwnSecretsOnly)
        .with(NoSecretDataInBundles)
        .with(SealedNotClusterWide)
        .with(RotationHasAFunction)
}

macro_rules! rule {
    ($name:ident, $id:literal, $($rule:tt)*) => {
        enclave_core::guardrail_rule!(impl<'a> for Subject<'a>, $name, $id, None, $($rule)*);
    };
}

/// The statements of a policy document (one object or a list).
fn statements(document: &Value) -> Vec<&Value> {
    match document.get("Statement") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(item @ Value::Object(_)) => vec![item],
        _ => Vec::new(),
    }
}

/// A statement's values under `field` (a string or a list of strings).
fn strings<'v>(statement: &'v Value, field: &str) -> Vec<&'v str> {
    match statement.get(field) {
        Some(Value::String(text)) => vec![text.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// The condition keys a statement sets with `StringEquals`.
fn equals_keys(statement: &Value) -> Vec<&str> {
    statement
        .get("Condition")
        .and_then(|c| c.get("StringEquals"))
        .and_then(Value::as_object)
        .map(|keys| keys.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

fn object_address(account: &str, object: &Value) -> Address {
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("object").to_ascii_lowercase();
    let meta = object.get("metadata");
    let field = |name: &str| meta.and_then(|m| m.get(name)).and_then(Value::as_str).unwrap_or_default();
    let name =
        [field("namespace"), field("name")].iter().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>().join("-");
    Address::new(account, COMPONENT, &kind, if name.is_empty() { "unnamed" } else { &name })
        .or_else(|_| Address::new(account, COMPONENT, "object", "unnamed"))
        .unwrap_or_else(|error| panic!("internal address error: {error}"))
}

rule!(
    TrustNamesTheServiceAccount,
    "SEC001",
    Severity::High,
    "a role pods assume trusts exactly one service account",
    "IRSA: `StringEquals` on `<issuer>:sub` (and `:aud`); Pod Identity: on the session's namespace and service account tags",
    |subject| {
        subject
            .resources
            .iter()
            .filter(|r| r.address.kind() == "iam-role")
            .filter_map(|role| {
                let trust = role.attributes.get("trust_policy")?;
                statements(trust).into_iter().find_map(|statement| {
                    let keys = equals_keys(statement);
                    let web = strings(statement, "Action").contains(&"sts:AssumeRoleWithWebIdentity");
                    let pods = statement
                        .get("Principal")
                        .and_then(|p| p.get("Service"))
                        .is_some_and(|s| s.as_str() == Some(crate::model::POD_IDENTITY_SERVICE));
                    if web && !keys.iter().any(|k| k.ends_with(":sub")) {
                        Some(Hit::new(role.address.clone(), "trusts web identities without a `:sub` condition: any service account of the cluster can assume it"))
                    } else if pods && !keys.contains(&"aws:RequestTag/kubernetes-service-account") {
                        Some(Hit::new(role.address.clone(), "trusts Pod Identity without naming the service account: any association can use it"))
                    } else {
                        None
                    }
                })
            })
            .collect()
    }
);

rule!(
    NoPublicSecret,
    "SEC002",
    Severity::Critical,
    "no secret's policy names every principal",
    "name the app's role as the only principal",
    |subject| {
        subject
            .resources
            .iter()
            .filter(|r| r.address.component() == COMPONENT && r.address.kind() == Kind::Secret.as_str())
            .filter(|secret| {
                secret.attributes.get("policy").is_some_and(|policy| {
                    statements(policy).into_iter().any(|statement| {
                        statement.get("Effect").and_then(Value::as_str) == Some("Allow")
                            && match statement.get("Principal") {
                                Some(Value::String(all)) => all == "*",
                                Some(principal) => strings(principal, "AWS").contains(&"*"),
                                None => false,
                            }
                    })
                })
            })
            .map(|secret| Hit::new(secret.address.clone(), "its resource policy allows `*`"))
            .collect()
    }
);

/// The app segment of a secret name `<stack>/<environment>/<app>/<name>`.
fn app_of(full_name: &str) -> Option<&str> {
    full_name.split('/').nth(2)
}

rule!(
    OwnSecretsOnly,
    "SEC003",
    Severity::High,
    "an app's role reads only that app's secrets, and a secret names only its app's role",
    "keep each secret under its own app; give each app its own role",
    |subject| {
        let mut hits = Vec::new();
        for secret in subject
            .resources
            .iter()
            .filter(|r| r.address.component() == COMPONENT && r.address.kind() == Kind::Secret.as_str())
        {
            let Some(app) = secret.attributes.get("name").and_then(Value::as_str).and_then(app_of) else { continue };
            // The owner's own role (an app's, or a cluster's Alertmanager's), by the model.
            let suffix = match subject.model.apps.iter().find(|owner| owner.app == app) {
                Some(owner) => format!("/{}", owner.role_name),
                None => format!("-{app}-secrets"),
            };
            let strangers = secret
                .attributes
                .get("policy")
                .map(|policy| {
                    statements(policy)
                        .into_iter()
                        .filter_map(|s| s.get("Principal"))
                        .flat_map(|p| strings(p, "AWS"))
                        .any(|principal| principal != "*" && !principal.ends_with(&suffix))
                })
                .unwrap_or(false);
            if strangers {
                hits.push(Hit::new(
                    secret.address.clone(),
                    format!("its policy lets a role other than `{app}`'s read it"),
                ));
            }
        }
        for role in subject
            .resources
            .iter()
            .filter(|r| r.address.component() == COMPONENT && r.address.kind() == Kind::IamRole.as_str())
        {
            let Some(app) = subject.model.apps.iter().find(|a| role.address.name() == a.role_name) else { continue };
            let foreign = role
                .attributes
                .get("policy")
                .map(|policy| {
                    statements(policy).into_iter().flat_map(|s| strings(s, "Resource")).any(|resource| {
                        resource.split_once(":secret:").is_some_and(|(_, name)| app_of(name) != Some(app.app.as_str()))
                    })
                })
                .unwrap_or(false);
            if foreign {
                hits.push(Hit::new(
                    role.address.clone(),
                    format!("it may read secrets of apps other than `{}`", app.app),
                ));
            }
        }
        hits
    }
);

rule!(
    NoSecretDataInBundles,
    "SEC004",
    Severity::High,
    "no rendered Kubernetes Secret carries data (values reach clusters through ExternalSecrets or SealedSecrets)",
    "keep the value in Secrets Manager and render an ExternalSecret, or seal it",
    |subject| {
        subject
            .objects
            .iter()
            .filter(|(_, object)| object.get("kind").and_then(Value::as_str) == Some("Secret"))
            .filter(|(_, object)| {
                ["data", "stringData"]
                    .iter()
                    .any(|field| object.get(field).and_then(Value::as_object).is_some_and(|m| !m.is_empty()))
            })
            .map(|(account, object)| Hit::new(object_address(account, object), "a Secret with data in the bundle"))
            .collect()
    }
);

rule!(
    SealedNotClusterWide,
    "SEC005",
    Severity::Low,
    "sealed secrets are bound to their namespace (strict or namespace-wide scope)",
    "seal with `--scope strict` (the default) unless the secret must move between namespaces",
    |subject| {
        subject
            .objects
            .iter()
            .filter(|(_, object)| object.get("kind").and_then(Value::as_str) == Some("SealedSecret"))
            .filter(|(_, object)| {
                let annotations = object
                    .get("metadata")
                    .and_then(|m| m.get("annotations"))
                    .and_then(|a| serde_json::from_value(a.clone()).ok());
                Scope::of(annotations.as_ref()) == Scope::ClusterWide
            })
            .map(|(account, object)| {
                Hit::new(
                    object_address(account, object),
                    format!("sealed cluster-wide (`{CLUSTER_WIDE}`): any namespace can unseal it"),
                )
            })
            .collect()
    }
);

rule!(
    RotationHasAFunction,
    "SEC006",
    Severity::Medium,
    "a secret that asks for rotation names the function that rotates it",
    "set `rotation.lambda` to the rotation function's ARN, or remove `rotation`",
    |subject| {
        subject
            .model
            .apps
            .iter()
            .flat_map(|app| app.secrets.iter().map(move |secret| (app, secret)))
            .filter(|(_, secret)| matches!(secret.rotation, Some((_, None))))
            .map(|(app, secret)| {
                Hit::new(
                    crate::resources::address(&app.account, Kind::Secret, &crate::resources::secret_name(app, secret)),
                    "rotation is asked for without a function: nothing rotates it",
                )
            })
            .collect()
    }
);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(resources: &[Resource], objects: &[(String, Value)], model: &crate::SecretsModel) -> Vec<String> {
        let subject = Subject { resources, objects, model };
        let mut found: Vec<String> =
            rules().run(&subject).findings.iter().map(|f| format!("{} {}", f.rule, f.address)).collect();
        found.sort();
        found
    }

    #[test]
    fn the_reference_breaks_no_secrets_rule_and_each_rule_catches_its_case() {
        let spec = crate::testing::spec();
        let model = crate::build(&spec);
        let mut resources = crate::resources::desired(&model, &crate::testing::values(&spec));
        assert_eq!(run(&resources, &[], &model), Vec::<String>::new());

        let role = resources.iter_mut().find(|r| r.address.name() == "platform-prod-orders-secrets").expect("role");
        role.attributes.insert("trust_policy".into(), json!({"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity", "Principal": {"Federated": "x"}}]}));
        let secret = resources.iter_mut().find(|r| r.address.name() == "orders-payments-api-key").expect("secret");
        secret.attributes.insert("policy".into(), json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}));
        let other = resources.iter_mut().find(|r| r.address.name() == "orders-database-password").expect("secret");
        other.attributes.insert("policy".into(), json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:role/enclave/platform-dev-reports-secrets"}, "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}));
        let objects = vec![
            (
                "prod".to_owned(),
                json!({"kind": "Secret", "metadata": {"name": "db", "namespace": "orders"}, "stringData": {"p": "x"}}),
            ),
            (
                "prod".to_owned(),
                json!({"kind": "SealedSecret", "metadata": {"name": "tls", "annotations": {CLUSTER_WIDE: "true"}}}),
            ),
            ("prod".to_owned(), json!({"kind": "Secret", "metadata": {"name": "empty"}})),
        ];
        let mut model = model;
        model.apps[0].secrets[0].rotation = Some((30, None));
        let found = run(&resources, &objects, &model);
        assert_eq!(
            found,
            [
                "SEC001 prod/secrets/iam-role/platform-prod-orders-secrets",
                "SEC002 prod/secrets/secret/orders-payments-api-key",
                "SEC003 prod/secrets/secret/orders-database-password",
                "SEC004 prod/secrets/secret/orders-db",
                "SEC005 prod/secrets/sealedsecret/tls",
                "SEC006 prod/secrets/secret/orders-database-password",
            ]
        );
    }
}

//! Every IAM document of the secrets domain: the secret's resource policy, the app role's
//! permissions and trust, and with Pod Identity the operator role's.
//!
//! An IRSA trust policy names the cluster's OIDC provider, whose ARN and issuer EKS makes up
//! when it creates the cluster. Desired documents therefore name the provider by its plan
//! address (`prod/deploy/oidc-provider/main`), as the Federated principal and as the prefix of
//! the `:sub` and `:aud` condition keys; [`resolve`] puts the real ARN and issuer in before a
//! document is sent, and [`refer`] turns an observed document back into that form.

use enclave_core::Address;
use enclave_core::address::ADDRESS_TAG;
use enclave_core::names::account_key_address;
use serde_json::{Value, json};

use crate::model::{AppSecrets, ClusterSecrets, POD_IDENTITY_SERVICE, STS_AUDIENCE, role_arn};

/// The two reads an app needs, and nothing else.
pub const READ_ACTIONS: [&str; 2] = ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"];

/// The resource policy of each of `app`'s secrets: its role may read it; no other principal is
/// named.
pub fn secret_policy(app: &AppSecrets, partition: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "AppReads",
            "Effect": "Allow",
            "Principal": { "AWS": app.role_arn(partition) },
            "Action": READ_ACTIONS,
            "Resource": "*"
        }]
    })
}

/// The ARN pattern of one secret: Secrets Manager appends six random characters to the name.
pub fn secret_arn_pattern(partition: &str, region: &str, account_id: &str, full_name: &str) -> String {
    format!("arn:{partition}:secretsmanager:{region}:{account_id}:secret:{full_name}-??????")
}

/// The app role's permissions: read exactly its secrets, and decrypt them with the account key
/// only through Secrets Manager.
pub fn read_policy(app: &AppSecrets, partition: &str, region: &str) -> Value {
    let secrets: Vec<String> = app
        .secrets
        .iter()
        .map(|secret| secret_arn_pattern(partition, region, &app.account_id, &secret.full_name))
        .collect();
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadOwnSecrets",
                "Effect": "Allow",
                "Action": READ_ACTIONS,
                "Resource": secrets
            },
            {
                "Sid": "DecryptThroughSecretsManager",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": format!("arn:{partition}:kms:{region}:{}:key/*", app.account_id),
                "Condition": {
                    "StringEquals": {
                        "kms:ViaService": format!("secretsmanager.{region}.amazonaws.com"),
                        format!("aws:ResourceTag/{ADDRESS_TAG}"): account_key_address(&app.account).to_string()
                    }
                }
            }
        ]
    })
}

/// IRSA: the role trusts the cluster's OIDC provider for exactly one service account, with the
/// STS audience. `provider` is the provider's plan address (see the module docs).
pub fn irsa_trust(provider: &Address, namespace: &str, service_account: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Federated": provider.to_string() },
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {
                    format!("{provider}:sub"): format!("system:serviceaccount:{namespace}:{service_account}"),
                    format!("{provider}:aud"): STS_AUDIENCE
                }
            }
        }]
    })
}

/// Pod Identity: the role trusts the EKS Pod Identity service (which tags its sessions), only
/// for the one service account of the one cluster of the one account it is associated with.
pub fn pod_identity_trust(cluster: &ClusterSecrets, namespace: &str, service_account: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Service": POD_IDENTITY_SERVICE },
            "Action": ["sts:AssumeRole", "sts:TagSession"],
            "Condition": {
                "StringEquals": {
                    "aws:SourceAccount": cluster.account_id,
                    "aws:RequestTag/eks-cluster-name": cluster.name,
                    "aws:RequestTag/kubernetes-namespace": namespace,
                    "aws:RequestTag/kubernetes-service-account": service_account
                }
            }
        }]
    })
}

/// With Pod Identity the operator reads as the app: the app's role trusts only the operator's
/// role of its cluster.
pub fn chained_trust(controller_role_arn: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "AWS": controller_role_arn },
            "Action": "sts:AssumeRole"
        }]
    })
}

/// The operator role's permissions (Pod Identity): assume the roles of its cluster's apps, and
/// nothing else.
pub fn controller_policy(apps: &[&AppSecrets], partition: &str) -> Value {
    let roles: Vec<String> = apps.iter().map(|app| app.role_arn(partition)).collect();
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "AssumeAppSecretRoles",
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Resource": roles
        }]
    })
}

/// The ARN of the operator's role on `cluster` (Pod Identity).
pub fn controller_role_arn(cluster: &ClusterSecrets, partition: &str) -> Option<String> {
    cluster.controller_role().map(|name| role_arn(partition, &cluster.account_id, &name))
}

/// The issuer of an OIDC provider ARN (`oidc.eks.<region>.amazonaws.com/id/<ID>`).
pub fn issuer_of(provider_arn: &str) -> Option<&str> {
    provider_arn.split_once(":oidc-provider/").map(|(_, issuer)| issuer)
}

/// `document` with the provider's address replaced by its ARN (the Federated principal) and
/// its issuer (the condition keys): what IAM is sent.
pub fn resolve(document: &Value, provider: &Address, provider_arn: &str) -> Value {
    let issuer = issuer_of(provider_arn).unwrap_or(provider_arn);
    rewrite(document, &|text| {
        if text == provider.to_string() {
            provider_arn.to_owned()
        } else if let Some(condition) = text.strip_prefix(&format!("{provider}:")) {
            format!("{issuer}:{condition}")
        } else {
            text.to_owned()
        }
    })
}

/// `document` with the ARN and issuer of a known provider replaced by its address: the form
/// desired documents are written in.
pub fn refer(document: &Value, provider: &Address, provider_arn: &str) -> Value {
    let Some(issuer) = issuer_of(provider_arn) else { return document.clone() };
    rewrite(document, &|text| {
        if text == provider_arn {
            provider.to_string()
        } else if let Some(condition) = text.strip_prefix(&format!("{issuer}:")) {
            format!("{provider}:{condition}")
        } else {
            text.to_owned()
        }
    })
}

/// Every string and key of `value`, mapped.
fn rewrite(value: &Value, map: &dyn Fn(&str) -> String) -> Value {
    match value {
        Value::String(text) => Value::String(map(text)),
        Value::Array(items) => Value::Array(items.iter().map(|item| rewrite(item, map)).collect()),
        Value::Object(entries) => {
            Value::Object(entries.iter().map(|(key, item)| (map(key), rewrite(item, map))).collect())
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provider_address_resolves_to_its_arn_and_issuer_and_back() {
        let provider = Address::new("prod", "deploy", "oidc-provider", "main").expect("address");
        let trust = irsa_trust(&provider, "orders", "secrets-reader");
        let arn = "arn:aws:iam::111111111111:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABC123";
        let sent = resolve(&trust, &provider, arn);
        let text = sent.to_string();
        assert!(text.contains(&format!("\"Federated\":\"{arn}\"")), "{text}");
        assert!(text.contains(
            "\"oidc.eks.eu-west-1.amazonaws.com/id/ABC123:sub\":\"system:serviceaccount:orders:secrets-reader\""
        ));
        assert!(text.contains("\"oidc.eks.eu-west-1.amazonaws.com/id/ABC123:aud\":\"sts.amazonaws.com\""));
        assert!(!text.contains("prod/deploy"), "{text}");
        assert_eq!(refer(&sent, &provider, arn), trust);
    }
}

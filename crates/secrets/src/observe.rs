//! Observing the stack's secrets, their roles and Pod Identity associations in one account:
//! - secrets: one paged `secretsmanager:ListSecrets` (filtered by the stack's tag key; ownership
//!   checked here, on the client), then `GetResourcePolicy` per secret; the values of secrets
//!   whose source is an environment variable or a file are read in batches of 20
//!   (`BatchGetSecretValue`) and kept only as digests, to compare with the spec's; generated
//!   values are never read;
//! - roles: the toolkit's `observe_roles` (roles under the enclave path, this component's);
//! - associations: `eks:ListClusters`, then `ListPodIdentityAssociations` and
//!   `DescribePodIdentityAssociation` (tags) per cluster.
//!
//! Secrets scheduled for deletion are not plan resources, only ids: planned again, they are
//! restored (see [`crate::apply`]). The account key is read once (`kms:DescribeKey`), when a secret of ours
//! names a key. IRSA trust policies come back naming the real OIDC provider; [`refer_providers`]
//! turns them into the form desired resources use once the deploy domain's providers are known.

use std::collections::BTreeMap;

use enclave_aws::kms::KeyReader;
use enclave_aws::reconcile::{found, owned_address, policy_document};
use enclave_core::address::STACK_TAG;
use enclave_core::names::cluster_address;
use enclave_core::plan::Resource;
use enclave_core::secret::digest;
use serde_json::{Value, json};

use crate::clients::{CallError, Clients, Missing, call_error};
use crate::kind::Kind;
use crate::resources::COMPONENT;

pub use enclave_core::reconcile::Observed;

/// The tag naming where a secret's value comes from.
pub const SOURCE_TAG: &str = "enclave:source";
/// The tag holding a secret's recovery window in days.
pub const RECOVERY_TAG: &str = "enclave:recovery-days";

/// The stack and account an observation is for.
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    /// Stack name.
    pub stack: &'a str,
    /// The account's name in the spec (or in the record, for a removed account).
    pub account: &'a str,
}

/// The stack's secrets resources in one account, as plan resources with their ids.
pub async fn observe(clients: &Clients, scope: Scope<'_>) -> Result<Observed, CallError> {
    let mut observed = observe_secrets(clients, scope).await?;
    let mut roles: BTreeMap<String, String> = BTreeMap::new();
    for (arn, resource) in enclave_aws::iam::observe_roles(&clients.iam, scope.stack, COMPONENT).await? {
        if resource.address.account() != scope.account || resource.address.kind() != Kind::IamRole.as_str() {
            continue;
        }
        roles.insert(arn.clone(), resource.address.to_string());
        observed.record(&arn, resource);
    }
    observed.extend(observe_associations(clients, scope, &roles).await?);
    Ok(observed)
}

async fn observe_secrets(clients: &Clients, scope: Scope<'_>) -> Result<Observed, CallError> {
    let filter = aws_sdk_secretsmanager::types::Filter::builder()
        .key(aws_sdk_secretsmanager::types::FilterNameStringType::TagKey)
        .values(STACK_TAG)
        .build();
    let pages = clients
        .secrets
        .list_secrets()
        .filters(filter)
        .include_planned_deletion(true)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(call_error("secretsmanager:ListSecrets"))?;
    let listed: Vec<&aws_sdk_secretsmanager::types::SecretListEntry> =
        pages.iter().flat_map(|page| page.secret_list()).collect();
    let mut observed = Observed::default();
    let mut key = KeyReader::default();
    let mut read: Vec<(String, Resource)> = Vec::new();
    for secret in listed {
        let (Some(name), Some(arn)) = (secret.name(), secret.arn()) else { continue };
        let tags: Vec<(&str, &str)> =
            secret.tags().iter().filter_map(|t| Some((t.key()?, t.value().unwrap_or_default()))).collect();
        let Some(address) = owned_address(scope.stack, COMPONENT, tags.iter().copied()) else { continue };
        if address.account() != scope.account || address.kind() != Kind::Secret.as_str() {
            continue;
        }
        if secret.deleted_date().is_some() {
            // Scheduled for deletion: not a resource the plan sees (planned again, it is a
            // create), but its id tells the create to restore it rather than make it anew.
            observed.ids.insert(address, arn.to_owned());
            continue;
        }
        let tag = |wanted: &str| tags.iter().find(|(k, _)| *k == wanted).map(|(_, v)| *v);
        let used_key = match secret.kms_key_id() {
            Some(used) => Value::from(key.reference(&clients.kms, scope.stack, scope.account, used).await?),
            // No key of its own: Secrets Manager's AWS-managed key.
            None => Value::from("aws/secretsmanager"),
        };
        let rotation = if secret.rotation_enabled() == Some(true) {
            json!({
                "lambda": secret.rotation_lambda_arn(),
                "days": secret.rotation_rules().and_then(|r| r.automatically_after_days()),
            })
        } else {
            Value::Null
        };
        let policy = found(
            clients
                .secrets
                .get_resource_policy()
                .secret_id(arn)
                .send()
                .await
                .map_err(call_error("secretsmanager:GetResourcePolicy")),
            Missing::Resource,
        )?
        .and_then(|out| out.resource_policy().map(policy_document))
        .unwrap_or(Value::Null);
        let source = tag(crate::observe::SOURCE_TAG).unwrap_or_default().to_owned();
        let resource = Resource::new(address)
            .immutable("name", name)
            .attr("description", secret.description().unwrap_or_default())
            .attr("key", used_key)
            .attr("policy", policy)
            .attr("rotation", rotation)
            .attr("source", source.as_str())
            .attr("recovery_days", tag(RECOVERY_TAG).and_then(|days| days.parse::<u8>().ok()));
        if matches!(source.as_str(), "env" | "file") {
            read.push((arn.to_owned(), resource));
        } else {
            observed.record(arn, resource);
        }
    }
    // Values given from outside are compared by digest; the value itself is dropped here.
    for chunk in read.chunks(20) {
        let out = clients
            .secrets
            .batch_get_secret_value()
            .set_secret_id_list(Some(chunk.iter().map(|(arn, _)| arn.clone()).collect()))
            .send()
            .await
            .map_err(call_error("secretsmanager:BatchGetSecretValue"))?;
        let digests: BTreeMap<&str, String> = out
            .secret_values()
            .iter()
            .filter_map(|value| Some((value.arn()?, digest(value.secret_string()?))))
            .collect();
        for (arn, resource) in chunk {
            let resource = match digests.get(arn.as_str()) {
                Some(digest) => resource.clone().observed_secret("value", digest.clone()),
                None => resource.clone(),
            };
            observed.record(arn, resource);
        }
    }
    Ok(observed)
}

/// Pod Identity associations of ours in every cluster of the account. Their id is
/// `<cluster>/<association id>`.
async fn observe_associations(
    clients: &Clients,
    scope: Scope<'_>,
    roles: &BTreeMap<String, String>,
) -> Result<Observed, CallError> {
    let clusters = clients
        .eks
        .list_clusters()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(call_error("eks:ListClusters"))?;
    let mut observed = Observed::default();
    for cluster in &clusters {
        let summaries = clients
            .eks
            .list_pod_identity_associations()
            .cluster_name(cluster)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(call_error("eks:ListPodIdentityAssociations"))?;
        for summary in &summaries {
            let Some(id) = summary.association_id() else { continue };
            let described = found(
                clients
                    .eks
                    .describe_pod_identity_association()
                    .cluster_name(cluster)
                    .association_id(id)
                    .send()
                    .await
                    .map_err(call_error("eks:DescribePodIdentityAssociation")),
                Missing::Resource,
            )?;
            let Some(association) = described.as_ref().and_then(|out| out.association()) else { continue };
            let tags = association.tags().into_iter().flatten().map(|(k, v)| (k.as_str(), v.as_str()));
            let Some(address) = owned_address(scope.stack, COMPONENT, tags) else { continue };
            if address.account() != scope.account || address.kind() != Kind::PodIdentityAssociation.as_str() {
                continue;
            }
            let role = association.role_arn().unwrap_or_default();
            let resource = Resource::new(address)
                .immutable("cluster", cluster_address(scope.account, cluster).to_string())
                .immutable("namespace", association.namespace().unwrap_or_default())
                .immutable("service_account", association.service_account().unwrap_or_default())
                .attr("role", roles.get(role).cloned().unwrap_or_else(|| role.to_owned()));
            observed.record(&format!("{cluster}/{id}"), resource);
        }
    }
    Ok(observed)
}

/// Rewrites the trust policies of observed secrets roles to name OIDC providers by their plan
/// address, for every provider `observed` knows the ARN of (the deploy domain's): after this,
/// an unchanged IRSA trust policy equals the desired one.
pub fn refer_providers(observed: &mut Observed) {
    let providers: Vec<(enclave_core::Address, String)> = observed
        .ids
        .iter()
        .filter(|(address, _)| address.component() == "deploy" && address.kind() == "oidc-provider")
        .map(|(address, arn)| (address.clone(), arn.clone()))
        .collect();
    for resource in observed
        .resources
        .iter_mut()
        .filter(|r| r.address.component() == COMPONENT && r.address.kind() == Kind::IamRole.as_str())
    {
        let Some(trust) = resource.attributes.get_mut("trust_policy") else { continue };
        // A role trusts its own account's providers (issuers alone need not be unique).
        for (address, arn) in providers.iter().filter(|(address, _)| address.account() == resource.address.account()) {
            *trust = crate::policy::refer(trust, address, arn);
        }
    }
}

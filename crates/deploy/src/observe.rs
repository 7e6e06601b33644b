//! Observing the stack's registry in one account. The Resource Groups Tagging API does not
//! cover ECR in moto, so repositories are listed (one paged `ecr:DescribeRepositories`) and
//! each is read with three calls (tags, lifecycle policy, repository policy); the account key's
//! alias is read once (`kms:DescribeKey`) when a repository is ours, to recognise the key the
//! repository is encrypted with. Ownership is checked here, on the client: a repository is ours
//! only when it carries [`enclave_core::address::STACK_TAG`] with this stack and an address of
//! the `deploy` component.

use enclave_aws::reconcile::{found, owned_address, policy_document};
use enclave_core::names::{account_key_address, account_key_alias};
use enclave_core::plan::Resource;
use serde_json::{Value, json};

use crate::clients::{CallError, Clients, Missing, call_error};
use crate::kind::Kind;
use crate::resources::COMPONENT;

pub use enclave_core::reconcile::Observed;

/// The stack and account an observation is for.
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    /// Stack name.
    pub stack: &'a str,
    /// The account's name in the spec (or in the record, for a removed account).
    pub account: &'a str,
}

/// The ARN and id of the account key behind the stack's alias, when it exists.
async fn account_key(clients: &Clients, stack: &str) -> Result<Option<(String, String)>, CallError> {
    let described = found(
        clients.kms.describe_key().key_id(account_key_alias(stack)).send().await.map_err(call_error("kms:DescribeKey")),
        Missing::Key,
    )?;
    Ok(described.and_then(|out| {
        out.key_metadata().map(|key| (key.arn().unwrap_or_default().to_owned(), key.key_id().to_owned()))
    }))
}

/// The stack's repositories in one account, as plan resources with their ids (names).
pub async fn observe(clients: &Clients, scope: Scope<'_>) -> Result<Observed, CallError> {
    let pages = clients
        .ecr
        .describe_repositories()
        .max_results(1000)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(call_error("ecr:DescribeRepositories"))?;
    let mut observed = Observed::default();
    let mut key: Option<Option<(String, String)>> = None;
    for repository in pages.iter().flat_map(|page| page.repositories()) {
        let (Some(name), Some(arn)) = (repository.repository_name(), repository.repository_arn()) else { continue };
        let tags = clients
            .ecr
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map_err(call_error("ecr:ListTagsForResource"))?;
        let Some(address) = owned_address(scope.stack, COMPONENT, tags.tags().iter().map(|t| (t.key(), t.value())))
        else {
            continue;
        };
        if address.kind().parse::<Kind>() != Ok(Kind::Repository) || address.account() != scope.account {
            continue;
        }
        if key.is_none() {
            key = Some(account_key(clients, scope.stack).await?);
        }
        let encryption = repository.encryption_configuration();
        let kms_key = encryption.and_then(|e| e.kms_key()).map(|used| {
            let ours = key.iter().flatten().any(|(key_arn, key_id)| {
                used == key_arn
                    || used == key_id
                    || used == account_key_alias(scope.stack)
                    || used.ends_with(&format!(":{}", account_key_alias(scope.stack)))
            });
            if ours { account_key_address(scope.account).to_string() } else { used.to_owned() }
        });
        let lifecycle = found(
            clients
                .ecr
                .get_lifecycle_policy()
                .repository_name(name)
                .send()
                .await
                .map_err(call_error("ecr:GetLifecyclePolicy")),
            Missing::RepositoryConfiguration,
        )?
        .and_then(|out| out.lifecycle_policy_text().map(policy_document))
        .unwrap_or(Value::Null);
        let policy = found(
            clients
                .ecr
                .get_repository_policy()
                .repository_name(name)
                .send()
                .await
                .map_err(call_error("ecr:GetRepositoryPolicy")),
            Missing::RepositoryConfiguration,
        )?
        .and_then(|out| out.policy_text().map(policy_document))
        .unwrap_or(Value::Null);
        let resource = Resource::new(address)
            .immutable("name", name)
            .immutable(
                "encryption",
                json!({
                    "type": encryption.map_or("AES256", |e| e.encryption_type().as_str()),
                    "kms_key": kms_key,
                }),
            )
            .attr("scan_on_push", repository.image_scanning_configuration().is_some_and(|scan| scan.scan_on_push()))
            .attr("tag_mutability", repository.image_tag_mutability().map_or("MUTABLE", |m| m.as_str()))
            .attr("lifecycle", lifecycle)
            .attr("policy", policy);
        observed.record(name, resource);
    }
    Ok(observed)
}

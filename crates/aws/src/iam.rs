//! IAM roles as every domain makes them (feature `iam`): one definition of how a role is
//! observed, created, brought to the plan and deleted, so that access's instance and trail
//! roles, deploy's cluster and node roles and the secrets domain's workload roles behave alike.
//!
//! A role's compared attributes are `name`, `path`, `trust_policy`, `managed_policies` (ARNs,
//! sorted) and `policy` (its one inline policy, [`INLINE_POLICY`], or null). It carries
//! [`STACK_TAG`] and [`ADDRESS_TAG`] from its creation; a role of that name without this stack's
//! tag is never adopted.

use std::collections::BTreeSet;

use aws_sdk_iam::Client;
use enclave_core::Address;
use enclave_core::plan::{Attributes, Resource};
use serde_json::{Value, json};

use crate::reconcile::{
    ADDRESS_TAG, CallError, Code, Existing, Missing, STACK_TAG, Waits, call_error, found, owned_address,
    policy_document,
};

/// The name of the one inline policy of every role enclave makes.
pub const INLINE_POLICY: &str = "enclave";

type Result<T> = std::result::Result<T, CallError>;

fn strings(value: Option<&Value>) -> BTreeSet<String> {
    value
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

fn document(attributes: Option<&Attributes>, name: &str) -> String {
    attributes.and_then(|a| a.get(name)).map(Value::to_string).unwrap_or_default()
}

/// The role called `name` when it is this stack's and `component`'s: its ARN and its compared
/// attributes as a plan resource.
pub async fn observe_role(
    iam: &Client,
    name: &str,
    stack: &str,
    component: &str,
) -> Result<Option<(String, Resource)>> {
    let got = found(iam.get_role().role_name(name).send().await.map_err(call_error("iam:GetRole")), Missing::Entity)?;
    let Some(role) = got.and_then(|out| out.role) else { return Ok(None) };
    let Some(address) = owned_address(stack, component, role.tags().iter().map(|t| (t.key(), t.value()))) else {
        return Ok(None);
    };
    let (attached, inline) = tokio::try_join!(
        async {
            iam.list_attached_role_policies()
                .role_name(name)
                .into_paginator()
                .items()
                .send()
                .collect::<std::result::Result<Vec<_>, _>>()
                .await
                .map_err(call_error("iam:ListAttachedRolePolicies"))
        },
        async {
            found(
                iam.get_role_policy()
                    .role_name(name)
                    .policy_name(INLINE_POLICY)
                    .send()
                    .await
                    .map_err(call_error("iam:GetRolePolicy")),
                Missing::Entity,
            )
        },
    )?;
    let mut managed: Vec<String> = attached.iter().filter_map(|p| p.policy_arn().map(str::to_owned)).collect();
    managed.sort();
    let resource = Resource::new(address)
        .attr("name", role.role_name())
        .attr("path", role.path())
        .attr("trust_policy", role.assume_role_policy_document().map_or(Value::Null, policy_document))
        .attr("managed_policies", json!(managed))
        .attr("policy", inline.map_or(Value::Null, |out| policy_document(out.policy_document())));
    Ok(Some((role.arn().to_owned(), resource)))
}

/// Every role under [`enclave_core::names::ROLE_PATH`] that is this stack's and `component`'s
/// (one paged `iam:ListRoles`, then [`observe_role`] each: other domains' roles are skipped by
/// their address tag).
pub async fn observe_roles(iam: &Client, stack: &str, component: &str) -> Result<Vec<(String, Resource)>> {
    let roles = iam
        .list_roles()
        .path_prefix(enclave_core::names::ROLE_PATH)
        .into_paginator()
        .items()
        .send()
        .collect::<std::result::Result<Vec<_>, _>>()
        .await
        .map_err(call_error("iam:ListRoles"))?;
    let mut out = Vec::new();
    for role in &roles {
        if let Some(found) = observe_role(iam, role.role_name(), stack, component).await? {
            out.push(found);
        }
    }
    Ok(out)
}

/// Creates the role `after` describes for `address` (tagged), or adopts one of that name that
/// carries this stack's tag (a create retried after it reached IAM); then attaches its managed
/// policies and puts its inline policy. Returns its ARN.
pub async fn create_role(iam: &Client, stack: &str, address: &Address, after: &Attributes) -> Result<String> {
    let text = |name: &str| {
        after
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| CallError::enclave(format!("{address}: attribute {name} is missing")))
    };
    let name = text("name")?;
    let tag = |key: &str, value: &str| {
        aws_sdk_iam::types::Tag::builder().key(key).value(value).build().map_err(|e| CallError::enclave(e.to_string()))
    };
    let created = iam
        .create_role()
        .role_name(&name)
        .path(text("path")?)
        .assume_role_policy_document(document(Some(after), "trust_policy"))
        .description(format!("enclave {stack}: {address}"))
        .tags(tag(STACK_TAG, stack)?)
        .tags(tag(ADDRESS_TAG, &address.to_string())?)
        .send()
        .await
        .map_err(call_error("iam:CreateRole"));
    let arn = match created {
        Ok(out) => out.role().map(|r| r.arn().to_owned()).unwrap_or_default(),
        Err(error) if error.is(&Code::AlreadyExists(Existing::Entity)) => {
            let out = iam.get_role().role_name(&name).send().await.map_err(call_error("iam:GetRole"))?;
            let role = out.role().ok_or_else(|| CallError::aws("iam:GetRole", None, "no role returned"))?;
            if !role.tags().iter().any(|t| t.key() == STACK_TAG && t.value() == stack) {
                return Err(CallError::enclave(format!(
                    "{address}: the role {name} exists without this stack's tags; enclave will not take it over"
                )));
            }
            role.arn().to_owned()
        }
        Err(error) => return Err(error),
    };
    configure_role(iam, &name, None, Some(after), true).await?;
    Ok(arn)
}

/// Brings role `name` from `before` to `after`: its trust policy (not on create: it was made
/// with it), its managed policies (attached and detached by difference) and its inline policy.
/// With `all`, every part is written whether it changed or not.
pub async fn configure_role(
    iam: &Client,
    name: &str,
    before: Option<&Attributes>,
    after: Option<&Attributes>,
    all: bool,
) -> Result<()> {
    let changed = |attribute: &str| before.and_then(|b| b.get(attribute)) != after.and_then(|a| a.get(attribute));
    if !all && changed("trust_policy") {
        iam.update_assume_role_policy()
            .role_name(name)
            .policy_document(document(after, "trust_policy"))
            .send()
            .await
            .map_err(call_error("iam:UpdateAssumeRolePolicy"))?;
    }
    if all || changed("managed_policies") {
        let wanted = strings(after.and_then(|a| a.get("managed_policies")));
        let had = if all { BTreeSet::new() } else { strings(before.and_then(|b| b.get("managed_policies"))) };
        for arn in wanted.difference(&had) {
            iam.attach_role_policy()
                .role_name(name)
                .policy_arn(arn)
                .send()
                .await
                .map_err(call_error("iam:AttachRolePolicy"))?;
        }
        for arn in had.difference(&wanted) {
            found(
                iam.detach_role_policy()
                    .role_name(name)
                    .policy_arn(arn)
                    .send()
                    .await
                    .map_err(call_error("iam:DetachRolePolicy")),
                Missing::Entity,
            )?;
        }
    }
    if all || changed("policy") {
        match after.and_then(|a| a.get("policy")) {
            Some(Value::Null) | None => {
                found(
                    iam.delete_role_policy()
                        .role_name(name)
                        .policy_name(INLINE_POLICY)
                        .send()
                        .await
                        .map_err(call_error("iam:DeleteRolePolicy")),
                    Missing::Entity,
                )?;
            }
            Some(policy) => {
                iam.put_role_policy()
                    .role_name(name)
                    .policy_name(INLINE_POLICY)
                    .policy_document(policy.to_string())
                    .send()
                    .await
                    .map_err(call_error("iam:PutRolePolicy"))?;
            }
        }
    }
    Ok(())
}

/// Deletes role `name`: detaches its managed policies, deletes its inline policy, then the
/// role (retried within `waits` while something still uses it). Already gone is done.
pub async fn delete_role(iam: &Client, name: &str, waits: Waits) -> Result<()> {
    let ignore_missing = |result: Result<()>| found(result, Missing::Entity).map(drop);
    let Some(out) = found(
        iam.list_attached_role_policies()
            .role_name(name)
            .send()
            .await
            .map_err(call_error("iam:ListAttachedRolePolicies")),
        Missing::Entity,
    )?
    else {
        return Ok(());
    };
    let attached = out.attached_policies.unwrap_or_default();
    for policy in attached.iter().filter_map(|p| p.policy_arn()) {
        ignore_missing(
            iam.detach_role_policy()
                .role_name(name)
                .policy_arn(policy)
                .send()
                .await
                .map(drop)
                .map_err(call_error("iam:DetachRolePolicy")),
        )?;
    }
    ignore_missing(
        iam.delete_role_policy()
            .role_name(name)
            .policy_name(INLINE_POLICY)
            .send()
            .await
            .map(drop)
            .map_err(call_error("iam:DeleteRolePolicy")),
    )?;
    crate::reconcile::delete(
        waits,
        |error| error.is(&Code::NotFound(Missing::Entity)),
        || async { iam.delete_role().role_name(name).send().await.map(drop).map_err(call_error("iam:DeleteRole")) },
    )
    .await
}

//! Observing the stack's access resources in one account, batched: one paged
//! `tag:GetResources` finds the keys, buckets, log groups and documents carrying the stack's
//! tag; EC2 (the bastion, its group and template), CloudTrail and IAM, which that API does not
//! cover everywhere, are read with one tag-filtered or by-name call each. The number of calls
//! depends on the resources of this domain (a fixed handful per account), never on how many
//! subnets, routes or endpoints the network has.
//!
//! Ownership is always checked here, on the client: a resource is ours only when it carries
//! [`STACK_TAG`] with this stack and an `enclave:address` of the `access` component (moto ignores
//! the tag filters of some APIs, and a resource of another stack or domain must never be taken
//! for ours). The key alias has no tags: it is ours when it bears the stack's alias name and
//! points at a key that is ours.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::Filter;
use enclave_aws::reconcile::{Tagged, found as absent, owned, policy_document};
use enclave_core::Address;
use enclave_core::plan::Resource;
use serde_json::{Value, json};

use crate::clients::{CallError, Clients, Code, Missing, call_error};
use crate::kind::Kind;
use crate::model::{instance_role_name, key_alias, people_policy_name, trail_role_name};
use crate::resources::{COMPONENT, ROLE_PATH};
use enclave_core::address::STACK_TAG;

pub use enclave_core::reconcile::Observed;

/// The inline policy every access role carries (its only one).
pub use enclave_aws::iam::INLINE_POLICY;

/// The stack and account an observation is for.
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    /// Stack name.
    pub stack: &'a str,
    /// The account's name in the spec (or in the record, for a removed account).
    pub account: &'a str,
    /// Its 12-digit id.
    pub account_id: &'a str,
    /// ARN partition.
    pub partition: &'a str,
}

/// Whether `tags` (key, value pairs) make a resource ours: this stack, an access address.
fn ours<'t>(stack: &str, tags: impl IntoIterator<Item = (&'t str, &'t str)>) -> Option<Address> {
    enclave_aws::reconcile::owned_address(stack, COMPONENT, tags)
}

/// An owned EC2 resource of this domain.
fn owned_here<'a, T: Tagged>(item: &'a T, stack: &str) -> Option<(&'a str, Address)> {
    owned(item, stack).filter(|(_, address)| address.component() == COMPONENT)
}

fn ec2_name_tag(tags: &[aws_sdk_ec2::types::Tag]) -> Value {
    match tags.iter().find(|t| t.key() == Some("Name")).and_then(|t| t.value()) {
        Some(name) => json!({ "Name": name }),
        None => json!({}),
    }
}

/// The resource name at the end of an ARN (`.../NAME` or `...:NAME`).
pub fn arn_name(arn: &str) -> &str {
    arn.rsplit(['/', ':']).next().unwrap_or(arn)
}

/// The resource types read through the tagging API (`logs`, not `logs:log-group`, which moto
/// does not match).
const TAGGED_TYPES: [&str; 4] = ["kms:key", "s3", "logs", "ssm:document"];

/// What the tagging API found, by kind: (id, address).
type Found = BTreeMap<Kind, Vec<(String, Address)>>;

async fn tagged_resources(clients: &Clients, stack: &str) -> Result<Found, CallError> {
    let filter = aws_sdk_resourcegroupstagging::types::TagFilter::builder().key(STACK_TAG).values(stack).build();
    let pages = clients
        .tagging
        .get_resources()
        .tag_filters(filter)
        // Only the types read from here: the network's many EC2 resources carry the same tag.
        .set_resource_type_filters(Some(TAGGED_TYPES.iter().map(|t| (*t).to_owned()).collect()))
        .resources_per_page(100)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(call_error("tag:GetResources"))?;
    let mut found = Found::new();
    for mapping in pages.iter().flat_map(|page| page.resource_tag_mapping_list()) {
        let Some(arn) = mapping.resource_arn() else { continue };
        let Some(address) = ours(stack, mapping.tags().iter().map(|t| (t.key(), t.value()))) else { continue };
        let Ok(kind) = address.kind().parse::<Kind>() else { continue };
        // The id each kind is known by; kinds read elsewhere (EC2, IAM, CloudTrail) are skipped.
        let id = match kind {
            Kind::KmsKey if arn.contains(":kms:") => arn.to_owned(),
            Kind::Bucket if arn.contains(":s3:") => arn_name(arn).to_owned(),
            Kind::LogGroup if arn.contains(":logs:") => {
                arn.split_once(":log-group:").map_or("", |(_, name)| name.trim_end_matches(":*")).to_owned()
            }
            Kind::SessionDocument if arn.contains(":ssm:") => arn_name(arn).to_owned(),
            Kind::KmsKey
            | Kind::Bucket
            | Kind::LogGroup
            | Kind::SessionDocument
            | Kind::KmsAlias
            | Kind::IamRole
            | Kind::InstanceProfile
            | Kind::IamPolicy
            | Kind::SecurityGroup
            | Kind::LaunchTemplate
            | Kind::Instance
            | Kind::Trail => continue,
        };
        found.entry(kind).or_default().push((id, address));
    }
    Ok(found)
}

/// Observes the stack's access resources in the account `clients` are for.
pub async fn observe(clients: &Clients, scope: Scope<'_>) -> Result<Observed, CallError> {
    let stack = scope.stack;
    let found = tagged_resources(clients, stack).await?;
    let of = |kind: Kind| found.get(&kind).cloned().unwrap_or_default();
    let (keys, groups, buckets, documents) =
        (of(Kind::KmsKey), of(Kind::LogGroup), of(Kind::Bucket), of(Kind::SessionDocument));
    let (keys, aliases, groups, buckets, documents, roles, profile, policy, ec2, trails) = tokio::try_join!(
        observe_keys(clients, &keys),
        observe_aliases(clients, stack, !keys.is_empty()),
        observe_log_groups(clients, stack, &groups),
        observe_buckets(clients, &buckets),
        observe_documents(clients, &documents),
        observe_roles(clients, stack),
        observe_instance_profile(clients, stack),
        observe_people_policy(clients, scope),
        observe_bastion(clients, stack),
        observe_trails(clients, stack),
    )?;

    // References are written as addresses: every id (and other names AWS may use) of what is
    // ours, to its address.
    let mut by_id: BTreeMap<String, Address> = BTreeMap::new();
    for (arn, address, _) in &keys {
        by_id.insert(arn.clone(), address.clone());
        by_id.insert(arn_name(arn).to_owned(), address.clone());
    }
    let key_ids: BTreeSet<&str> = keys.iter().map(|(arn, _, _)| arn_name(arn)).collect();
    let mut observed = Observed::default();
    for (arn, _, resource) in &keys {
        observed.record(arn, resource.clone());
    }
    let owned_alias = aliases.into_iter().find(|alias| key_ids.contains(alias.target.as_str()));
    let alias_address = crate::resources::address(scope.account, Kind::KmsAlias, "access");
    if let Some(alias) = &owned_alias {
        let key = by_id.get(&alias.target).map(ToString::to_string).unwrap_or_else(|| alias.target.clone());
        by_id.insert(alias.name.clone(), alias_address.clone());
        by_id.insert(alias.arn.clone(), alias_address.clone());
        let mut resource =
            Resource::new(alias_address.clone()).attr("name", alias.name.clone()).attr("target_key", key.clone());
        if let Ok(key) = key.parse::<Address>() {
            resource = resource.after(&key);
        }
        observed.record(&alias.name, resource);
    }
    let refer = |id: Option<&str>| -> Value {
        match id {
            Some(id) => by_id.get(id).map_or_else(|| json!(id), |address| json!(address.to_string())),
            None => Value::Null,
        }
    };
    for group in &groups {
        observed.record(
            &group.name,
            Resource::new(group.address.clone())
                .attr("name", group.name.clone())
                .attr("retention_days", group.retention_days.map_or(Value::Null, |d| json!(d)))
                .attr("kms_key", refer(group.kms_key.as_deref())),
        );
    }
    for bucket in &buckets {
        let mut resource = bucket.resource.clone();
        resource.attributes.insert(
            "encryption".into(),
            match &bucket.encryption {
                Some((algorithm, key, bucket_key)) => {
                    json!({ "algorithm": algorithm, "kms_key": refer(key.as_deref()), "bucket_key": bucket_key })
                }
                None => Value::Null,
            },
        );
        observed.record(&bucket.name, resource);
    }
    for (name, resource) in documents {
        observed.record(&name, resource);
    }
    for role in &roles {
        by_id.insert(role.arn.clone(), role.resource.address.clone());
    }
    for role in roles {
        observed.record(&role.arn, role.resource);
    }
    let refer = |id: Option<&str>| -> Value {
        match id {
            Some(id) => by_id.get(id).map_or_else(|| json!(id), |address| json!(address.to_string())),
            None => Value::Null,
        }
    };
    if let Some(profile) = &profile {
        let role = refer(profile.role.as_deref());
        observed.record(
            &profile.arn,
            Resource::new(profile.address.clone())
                .attr("name", profile.name.clone())
                .attr("path", profile.path.clone())
                .attr("role", role),
        );
    }
    if let Some((arn, resource)) = policy {
        observed.record(&arn, resource);
    }
    let mut refs: BTreeMap<String, Address> = by_id.clone();
    if let Some(profile) = &profile {
        refs.insert(profile.arn.clone(), profile.address.clone());
    }
    for (id, address) in ec2.ids() {
        refs.insert(id, address);
    }
    ec2.record(&refs, &mut observed);
    for trail in trails {
        let refer = |id: Option<&str>| -> Value {
            match id {
                Some(id) => refs.get(id).map_or_else(|| json!(id), |address| json!(address.to_string())),
                None => Value::Null,
            }
        };
        let bucket = trail
            .bucket
            .as_deref()
            .and_then(|name| buckets.iter().find(|b| b.name == name))
            .map_or_else(|| json!(trail.bucket), |b| json!(b.resource.address.to_string()));
        // The trail's key may read back as the alias we gave, its ARN, or the key's ARN.
        let key = match trail.kms_key.as_deref() {
            Some(key)
                if owned_alias.as_ref().is_some_and(|a| a.name == key || a.arn == key || a.target_arn() == key) =>
            {
                json!(alias_address.to_string())
            }
            other => refer(other),
        };
        let group = trail.log_group.as_deref().map(|arn| {
            let name = arn.split_once(":log-group:").map_or(arn, |(_, name)| name.trim_end_matches(":*"));
            groups.iter().find(|g| g.name == name).map_or_else(|| json!(arn), |g| json!(g.address.to_string()))
        });
        observed.record(
            &trail.arn,
            Resource::new(trail.address)
                .attr("name", trail.name)
                .attr("bucket", bucket)
                .attr("multi_region", trail.multi_region)
                .attr("log_file_validation", trail.log_file_validation)
                .attr("global_service_events", trail.global_service_events)
                .attr("kms_key", key)
                .attr("log_group", group.unwrap_or(Value::Null))
                .attr("log_role", refer(trail.log_role.as_deref()))
                .attr("logging", trail.logging),
        );
    }
    observed.retain_component(COMPONENT);
    Ok(observed)
}

async fn observe_keys(
    clients: &Clients,
    keys: &[(String, Address)],
) -> Result<Vec<(String, Address, Resource)>, CallError> {
    let kms = &clients.kms;
    let all = futures_util::future::try_join_all(keys.iter().map(|(arn, address)| async move {
        let described =
            absent(kms.describe_key().key_id(arn).send().await.map_err(call_error("kms:DescribeKey")), Missing::Key)?;
        let Some(metadata) = described.and_then(|out| out.key_metadata) else { return Ok(None) };
        // A key scheduled for deletion is on its way out: as good as gone.
        if metadata.key_state().is_some_and(|state| state.as_str() == "PendingDeletion") {
            return Ok(None);
        }
        let (rotation, policy) = tokio::try_join!(
            async {
                kms.get_key_rotation_status().key_id(arn).send().await.map_err(call_error("kms:GetKeyRotationStatus"))
            },
            async {
                kms.get_key_policy()
                    .key_id(arn)
                    .policy_name("default")
                    .send()
                    .await
                    .map_err(call_error("kms:GetKeyPolicy"))
            },
        )?;
        let resource = Resource::new(address.clone())
            .attr("description", metadata.description().unwrap_or_default())
            .attr("key_usage", metadata.key_usage().map_or("", |usage| usage.as_str()))
            .attr("rotation", rotation.key_rotation_enabled())
            .attr("policy", policy.policy().map_or(Value::Null, policy_document));
        Ok::<_, CallError>(Some((arn.clone(), address.clone(), resource)))
    }))
    .await?;
    Ok(all.into_iter().flatten().collect())
}

/// An alias with the stack's alias name.
struct Alias {
    name: String,
    arn: String,
    /// The key id it points at.
    target: String,
}

impl Alias {
    /// The ARN of the key it points at (the alias ARN with `key/<id>` instead).
    fn target_arn(&self) -> String {
        match self.arn.split_once(":alias/") {
            Some((head, _)) => format!("{head}:key/{}", self.target),
            None => self.target.clone(),
        }
    }
}

async fn observe_aliases(clients: &Clients, stack: &str, any_key: bool) -> Result<Vec<Alias>, CallError> {
    if !any_key {
        return Ok(Vec::new());
    }
    let name = key_alias(stack);
    let aliases = clients
        .kms
        .list_aliases()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(call_error("kms:ListAliases"))?;
    Ok(aliases
        .into_iter()
        .filter(|alias| alias.alias_name() == Some(name.as_str()))
        .filter_map(|alias| {
            Some(Alias {
                name: alias.alias_name()?.to_owned(),
                arn: alias.alias_arn().unwrap_or_default().to_owned(),
                target: alias.target_key_id()?.to_owned(),
            })
        })
        .collect())
}

struct Group {
    name: String,
    address: Address,
    retention_days: Option<i32>,
    kms_key: Option<String>,
}

async fn observe_log_groups(
    clients: &Clients,
    stack: &str,
    groups: &[(String, Address)],
) -> Result<Vec<Group>, CallError> {
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let all = clients
        .logs
        .describe_log_groups()
        .log_group_name_prefix(format!("/enclave/{stack}/"))
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(call_error("logs:DescribeLogGroups"))?;
    Ok(all
        .into_iter()
        .filter_map(|group| {
            let name = group.log_group_name()?;
            let (_, address) = groups.iter().find(|(id, _)| id == name)?;
            Some(Group {
                name: name.to_owned(),
                address: address.clone(),
                retention_days: group.retention_in_days(),
                kms_key: group.kms_key_id().map(str::to_owned),
            })
        })
        .collect())
}

struct Bucket {
    name: String,
    resource: Resource,
    /// Algorithm, key id or ARN, bucket key.
    encryption: Option<(String, Option<String>, bool)>,
}

async fn observe_buckets(clients: &Clients, buckets: &[(String, Address)]) -> Result<Vec<Bucket>, CallError> {
    let s3 = &clients.s3;
    let all = futures_util::future::try_join_all(buckets.iter().map(|(name, address)| async move {
        let config = Missing::BucketConfiguration;
        let (block, versioning, encryption, policy, lifecycle) = tokio::try_join!(
            async {
                absent(
                    s3.get_public_access_block()
                        .bucket(name)
                        .send()
                        .await
                        .map_err(call_error("s3:GetPublicAccessBlock")),
                    config,
                )
            },
            async {
                match s3.get_bucket_versioning().bucket(name).send().await {
                    Ok(out) => Ok(out.status().map(|status| status.as_str().to_owned())),
                    Err(error) => {
                        misrooted_versioning(&error).ok_or_else(|| call_error("s3:GetBucketVersioning")(error))
                    }
                }
            },
            async {
                absent(
                    s3.get_bucket_encryption().bucket(name).send().await.map_err(call_error("s3:GetBucketEncryption")),
                    config,
                )
            },
            async {
                absent(
                    s3.get_bucket_policy().bucket(name).send().await.map_err(call_error("s3:GetBucketPolicy")),
                    config,
                )
            },
            async {
                absent(
                    s3.get_bucket_lifecycle_configuration()
                        .bucket(name)
                        .send()
                        .await
                        .map_err(call_error("s3:GetBucketLifecycleConfiguration")),
                    config,
                )
            },
        )?;
        let block = block.and_then(|out| out.public_access_block_configuration);
        let flag = |value: Option<bool>| value.unwrap_or(false);
        let public_access_block = json!({
            "block_public_acls": flag(block.as_ref().and_then(|b| b.block_public_acls())),
            "ignore_public_acls": flag(block.as_ref().and_then(|b| b.ignore_public_acls())),
            "block_public_policy": flag(block.as_ref().and_then(|b| b.block_public_policy())),
            "restrict_public_buckets": flag(block.as_ref().and_then(|b| b.restrict_public_buckets())),
        });
        let rule = encryption
            .and_then(|out| out.server_side_encryption_configuration)
            .and_then(|config| config.rules.into_iter().next());
        let encryption = rule.map(|rule| {
            let default = rule.apply_server_side_encryption_by_default();
            (
                default.map_or(String::new(), |d| d.sse_algorithm().as_str().to_owned()),
                default.and_then(|d| d.kms_master_key_id()).map(str::to_owned),
                rule.bucket_key_enabled().unwrap_or(false),
            )
        });
        let expiry = lifecycle.and_then(|out| {
            out.rules().iter().find(|rule| rule.id() == Some(crate::model::LIFECYCLE_RULE)).map(|rule| {
                json!({
                    "expire_days": rule.expiration().and_then(|e| e.days()),
                    "noncurrent_expire_days": rule.noncurrent_version_expiration().and_then(|e| e.noncurrent_days()),
                })
            })
        });
        let resource = Resource::new(address.clone())
            .attr("name", name.clone())
            .attr("public_access_block", public_access_block)
            .attr("versioning", versioning.unwrap_or_else(|| "Disabled".to_owned()))
            .attr("policy", policy.and_then(|out| out.policy).as_deref().map_or(Value::Null, policy_document))
            .attr("lifecycle", expiry.unwrap_or(Value::Null));
        Ok::<_, CallError>(Bucket { name: name.clone(), resource, encryption })
    }))
    .await;
    // A bucket deleted between the two calls is gone.
    match all {
        Err(error) if error.is(&Code::NotFound(Missing::Bucket)) => Ok(Vec::new()),
        other => other,
    }
}

/// The versioning status in a `GetBucketVersioning` answer whose XML root is
/// `GetBucketVersioningResponse` instead of `VersioningConfiguration` (moto 5.2.5 answers so; the
/// SDK rejects it, keeping the raw answer in the error). `None` for every other error.
fn misrooted_versioning<E>(
    error: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> Option<Option<String>> {
    let aws_sdk_s3::error::SdkError::ServiceError(context) = error else { return None };
    let body = std::str::from_utf8(context.raw().body().bytes()?).ok()?;
    if !body.contains("<GetBucketVersioningResponse") {
        return None;
    }
    let status =
        body.split_once("<Status>").and_then(|(_, rest)| rest.split_once("</Status>")).map(|(s, _)| s.to_owned());
    Some(status)
}

async fn observe_documents(
    clients: &Clients,
    documents: &[(String, Address)],
) -> Result<Vec<(String, Resource)>, CallError> {
    let ssm = &clients.ssm;
    let all = futures_util::future::try_join_all(documents.iter().map(|(name, address)| async move {
        let document = absent(
            ssm.get_document().name(name).send().await.map_err(call_error("ssm:GetDocument")),
            Missing::Document,
        )?;
        Ok::<_, CallError>(document.map(|document| {
            let content = document.content().map_or(Value::Null, |text| {
                serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
            });
            (
                name.clone(),
                Resource::new(address.clone())
                    .attr("name", name.clone())
                    .attr("document_type", document.document_type().map_or("", |t| t.as_str()))
                    .attr("content", content),
            )
        }))
    }))
    .await?;
    Ok(all.into_iter().flatten().collect())
}

struct Role {
    arn: String,
    resource: Resource,
}

fn iam_tags(tags: &[aws_sdk_iam::types::Tag]) -> impl Iterator<Item = (&str, &str)> {
    tags.iter().map(|t| (t.key(), t.value()))
}

async fn observe_roles(clients: &Clients, stack: &str) -> Result<Vec<Role>, CallError> {
    let names = [instance_role_name(stack), trail_role_name(stack)];
    let all = futures_util::future::try_join_all(
        names.iter().map(|name| enclave_aws::iam::observe_role(&clients.iam, name, stack, COMPONENT)),
    )
    .await?;
    Ok(all.into_iter().flatten().map(|(arn, resource)| Role { arn, resource }).collect())
}

struct Profile {
    arn: String,
    name: String,
    path: String,
    address: Address,
    /// The ARN of its role.
    role: Option<String>,
}

async fn observe_instance_profile(clients: &Clients, stack: &str) -> Result<Option<Profile>, CallError> {
    let name = instance_role_name(stack);
    let got = absent(
        clients
            .iam
            .get_instance_profile()
            .instance_profile_name(&name)
            .send()
            .await
            .map_err(call_error("iam:GetInstanceProfile")),
        Missing::Entity,
    )?;
    let Some(profile) = got.and_then(|out| out.instance_profile) else { return Ok(None) };
    let Some(address) = ours(stack, iam_tags(profile.tags())) else { return Ok(None) };
    Ok(Some(Profile {
        arn: profile.arn().to_owned(),
        name: profile.instance_profile_name().to_owned(),
        path: profile.path().to_owned(),
        address,
        role: profile.roles().first().map(|role| role.arn().to_owned()),
    }))
}

/// The ARN of the people policy in an account.
pub fn people_policy_arn(scope: Scope<'_>) -> String {
    format!("arn:{}:iam::{}:policy{ROLE_PATH}{}", scope.partition, scope.account_id, people_policy_name(scope.stack))
}

async fn observe_people_policy(clients: &Clients, scope: Scope<'_>) -> Result<Option<(String, Resource)>, CallError> {
    let iam = &clients.iam;
    let arn = people_policy_arn(scope);
    let got =
        absent(iam.get_policy().policy_arn(&arn).send().await.map_err(call_error("iam:GetPolicy")), Missing::Entity)?;
    let Some(policy) = got.and_then(|out| out.policy) else { return Ok(None) };
    let Some(address) = ours(scope.stack, iam_tags(policy.tags())) else { return Ok(None) };
    let version = iam
        .get_policy_version()
        .policy_arn(&arn)
        .version_id(policy.default_version_id().unwrap_or("v1"))
        .send()
        .await
        .map_err(call_error("iam:GetPolicyVersion"))?;
    let document = version.policy_version().and_then(|v| v.document()).map_or(Value::Null, policy_document);
    Ok(Some((
        arn,
        Resource::new(address)
            .attr("name", policy.policy_name().unwrap_or_default())
            .attr("path", policy.path().unwrap_or_default())
            .attr("document", document),
    )))
}

/// The bastion's EC2 resources, with the network's VPC and subnet ids they sit in.
struct Bastion {
    stack: String,
    groups: Vec<aws_sdk_ec2::types::SecurityGroup>,
    templates: Vec<(aws_sdk_ec2::types::LaunchTemplate, Option<aws_sdk_ec2::types::ResponseLaunchTemplateData>)>,
    instances: Vec<aws_sdk_ec2::types::Instance>,
    /// Volume id to whether it is encrypted.
    volumes: BTreeMap<String, bool>,
    /// The network's VPCs and subnets the above sit in, by id.
    network: BTreeMap<String, Address>,
}

fn stack_filter(stack: &str) -> Filter {
    Filter::builder().name(format!("tag:{STACK_TAG}")).values(stack).build()
}

async fn observe_bastion(clients: &Clients, stack: &str) -> Result<Bastion, CallError> {
    let ec2 = &clients.ec2;
    let live = Filter::builder()
        .name("instance-state-name")
        .values("pending")
        .values("running")
        .values("stopping")
        .values("stopped")
        .build();
    let (groups, templates, reservations) = tokio::try_join!(
        async {
            ec2.describe_security_groups()
                .filters(stack_filter(stack))
                .into_paginator()
                .items()
                .send()
                .collect::<Result<Vec<_>, _>>()
                .await
                .map_err(call_error("ec2:DescribeSecurityGroups"))
        },
        async {
            ec2.describe_launch_templates()
                .filters(stack_filter(stack))
                .into_paginator()
                .items()
                .send()
                .collect::<Result<Vec<_>, _>>()
                .await
                .map_err(call_error("ec2:DescribeLaunchTemplates"))
        },
        async {
            ec2.describe_instances()
                .filters(stack_filter(stack))
                .filters(live)
                .into_paginator()
                .items()
                .send()
                .collect::<Result<Vec<_>, _>>()
                .await
                .map_err(call_error("ec2:DescribeInstances"))
        },
    )?;
    let groups: Vec<_> = groups.into_iter().filter(|g| owned_here(g, stack).is_some()).collect();
    let templates: Vec<_> = templates.into_iter().filter(|t| owned_here(t, stack).is_some()).collect();
    let instances: Vec<_> = reservations
        .into_iter()
        .flat_map(|r| r.instances.unwrap_or_default())
        .filter(|i| owned_here(i, stack).is_some())
        .collect();
    let versions = futures_util::future::try_join_all(templates.iter().map(|template| async move {
        let id = template.launch_template_id().unwrap_or_default();
        let out = ec2
            .describe_launch_template_versions()
            .launch_template_id(id)
            .versions("$Default")
            .send()
            .await
            .map_err(call_error("ec2:DescribeLaunchTemplateVersions"))?;
        Ok::<_, CallError>(
            out.launch_template_versions.unwrap_or_default().into_iter().next().and_then(|v| v.launch_template_data),
        )
    }))
    .await?;
    let volume_ids: Vec<String> = instances
        .iter()
        .flat_map(|i| i.block_device_mappings())
        .filter_map(|m| m.ebs().and_then(|e| e.volume_id()).map(str::to_owned))
        .collect();
    let vpc_ids: BTreeSet<String> = groups.iter().filter_map(|g| g.vpc_id().map(str::to_owned)).collect();
    let subnet_ids: BTreeSet<String> = instances.iter().filter_map(|i| i.subnet_id().map(str::to_owned)).collect();
    let (volumes, vpcs, subnets) = tokio::try_join!(
        async {
            if volume_ids.is_empty() {
                return Ok(Vec::new());
            }
            ec2.describe_volumes()
                .set_volume_ids(Some(volume_ids.clone()))
                .send()
                .await
                .map(|out| out.volumes.unwrap_or_default())
                .map_err(call_error("ec2:DescribeVolumes"))
        },
        async {
            if vpc_ids.is_empty() {
                return Ok(Vec::new());
            }
            ec2.describe_vpcs()
                .set_vpc_ids(Some(vpc_ids.iter().cloned().collect()))
                .send()
                .await
                .map(|out| out.vpcs.unwrap_or_default())
                .map_err(call_error("ec2:DescribeVpcs"))
        },
        async {
            if subnet_ids.is_empty() {
                return Ok(Vec::new());
            }
            ec2.describe_subnets()
                .set_subnet_ids(Some(subnet_ids.iter().cloned().collect()))
                .send()
                .await
                .map(|out| out.subnets.unwrap_or_default())
                .map_err(call_error("ec2:DescribeSubnets"))
        },
    )?;
    let mut network = BTreeMap::new();
    for (id, address) in
        vpcs.iter().filter_map(|v| owned(v, stack)).chain(subnets.iter().filter_map(|s| owned(s, stack)))
    {
        network.insert(id.to_owned(), address);
    }
    Ok(Bastion {
        stack: stack.to_owned(),
        groups,
        templates: templates.into_iter().zip(versions).collect(),
        instances,
        volumes: volumes
            .iter()
            .filter_map(|v| Some((v.volume_id()?.to_owned(), v.encrypted().unwrap_or(false))))
            .collect(),
        network,
    })
}

/// One security-group permission per range, as `tcp/443 10.1.0.0/16`.
pub use enclave_aws::reconcile::rule_strings;

fn rules(permissions: &[aws_sdk_ec2::types::IpPermission]) -> Value {
    let mut all: Vec<String> = permissions.iter().flat_map(rule_strings).collect();
    all.sort();
    json!(all)
}

impl Bastion {
    /// The ids of everything owned here, with the network's.
    fn ids(&self) -> Vec<(String, Address)> {
        let stack = &self.stack;
        let mut out: Vec<(String, Address)> = self.network.iter().map(|(id, a)| (id.clone(), a.clone())).collect();
        out.extend(self.groups.iter().filter_map(|g| owned_here(g, stack)).map(|(id, a)| (id.to_owned(), a)));
        out.extend(self.templates.iter().filter_map(|(t, _)| owned_here(t, stack)).map(|(id, a)| (id.to_owned(), a)));
        out.extend(self.instances.iter().filter_map(|i| owned_here(i, stack)).map(|(id, a)| (id.to_owned(), a)));
        out
    }

    fn record(&self, refs: &BTreeMap<String, Address>, observed: &mut Observed) {
        let stack = &self.stack;
        let refer = |id: Option<&str>| -> Value {
            match id {
                Some(id) => refs.get(id).map_or_else(|| json!(id), |address| json!(address.to_string())),
                None => Value::Null,
            }
        };
        let refer_all = |ids: Vec<&str>| -> Value {
            let mut all: Vec<String> =
                ids.into_iter().map(|id| refer(Some(id)).as_str().unwrap_or(id).to_owned()).collect();
            all.sort();
            json!(all)
        };
        for group in &self.groups {
            let Some((id, address)) = owned_here(group, stack) else { continue };
            let mut resource = Resource::new(address)
                .attr("vpc", refer(group.vpc_id()))
                .attr("description", group.description().unwrap_or_default())
                .attr("ingress", rules(group.ip_permissions()))
                .attr("egress", rules(group.ip_permissions_egress()))
                .attr("tags", ec2_name_tag(group.tags()));
            if let Some(vpc) = group.vpc_id().and_then(|vpc| refs.get(vpc)) {
                resource = resource.after(vpc);
            }
            observed.record(id, resource);
        }
        for (template, data) in &self.templates {
            let Some((id, address)) = owned_here(template, stack) else { continue };
            let data = data.as_ref();
            let metadata = data.and_then(|d| d.metadata_options());
            let interface = data.and_then(|d| d.network_interfaces().first());
            let root = data.and_then(|d| d.block_device_mappings().first()).and_then(|m| m.ebs());
            let groups: Vec<&str> = match interface {
                Some(interface) => interface.groups().iter().map(String::as_str).collect(),
                None => data.map(|d| d.security_group_ids().iter().map(String::as_str).collect()).unwrap_or_default(),
            };
            let profile = data.and_then(|d| d.iam_instance_profile()).and_then(|p| p.arn().or(p.name()));
            let value = json!({
                "image": data.and_then(|d| d.image_id()),
                "instance_type": data.and_then(|d| d.instance_type()).map(|t| t.as_str().to_owned()),
                "key_name": data.and_then(|d| d.key_name()),
                "associate_public_ip_address": interface.and_then(|i| i.associate_public_ip_address()).unwrap_or(false),
                "metadata_options": {
                    "http_endpoint": metadata.and_then(|m| m.http_endpoint()).map_or("enabled", |e| e.as_str()),
                    "http_tokens": metadata.and_then(|m| m.http_tokens()).map_or("optional", |t| t.as_str()),
                    "http_put_response_hop_limit": metadata.and_then(|m| m.http_put_response_hop_limit()).unwrap_or(1),
                },
                "root_volume": {
                    "encrypted": root.and_then(|e| e.encrypted()).unwrap_or(false),
                    "volume_type": root.and_then(|e| e.volume_type()).map(|t| t.as_str().to_owned()),
                },
                "instance_profile": refer(profile),
                "security_groups": refer_all(groups),
            });
            observed.record(
                id,
                Resource::new(address)
                    .attr("name", template.launch_template_name().unwrap_or_default())
                    .attr("data", value)
                    .attr("tags", ec2_name_tag(template.tags())),
            );
        }
        for instance in &self.instances {
            let Some((id, address)) = owned_here(instance, stack) else { continue };
            let template =
                instance.tags().iter().find(|t| t.key() == Some("aws:ec2launchtemplate:id")).and_then(|t| t.value());
            let metadata = instance.metadata_options();
            let volumes: Vec<bool> = instance
                .block_device_mappings()
                .iter()
                .filter_map(|m| m.ebs().and_then(|e| e.volume_id()))
                .map(|volume| self.volumes.get(volume).copied().unwrap_or(false))
                .collect();
            let mut resource = Resource::new(address)
                .attr("launch_template", refer(template))
                .attr("subnet", refer(instance.subnet_id()))
                .attr("image", instance.image_id().unwrap_or_default())
                .attr("instance_type", instance.instance_type().map_or("", |t| t.as_str()))
                .attr("key_name", instance.key_name().map_or(Value::Null, |k| json!(k)))
                .attr("public_ip", instance.public_ip_address().is_some())
                .attr("instance_profile", refer(instance.iam_instance_profile().and_then(|p| p.arn())))
                .attr("root_volume_encrypted", !volumes.is_empty() && volumes.iter().all(|e| *e))
                .attr("http_tokens", metadata.and_then(|m| m.http_tokens()).map_or("optional", |t| t.as_str()))
                .attr(
                    "http_put_response_hop_limit",
                    metadata.and_then(|m| m.http_put_response_hop_limit()).unwrap_or(1),
                )
                .attr("security_groups", refer_all(instance_groups(instance)))
                .attr("tags", ec2_name_tag(instance.tags()));
            for dependency in [template, instance.subnet_id()].into_iter().flatten().filter_map(|id| refs.get(id)) {
                resource = resource.after(dependency);
            }
            observed.record(id, resource);
        }
    }
}

/// The groups of an instance: its primary interface's (what AWS also lists on the instance; moto
/// lists them only there).
fn instance_groups(instance: &aws_sdk_ec2::types::Instance) -> Vec<&str> {
    let primary = instance
        .network_interfaces()
        .iter()
        .find(|interface| interface.attachment().and_then(|a| a.device_index()) == Some(0))
        .or_else(|| instance.network_interfaces().first());
    match primary {
        Some(interface) if !interface.groups().is_empty() => {
            interface.groups().iter().filter_map(|g| g.group_id()).collect()
        }
        _ => instance.security_groups().iter().filter_map(|g| g.group_id()).collect(),
    }
}

struct TrailSeen {
    arn: String,
    address: Address,
    name: String,
    bucket: Option<String>,
    multi_region: bool,
    log_file_validation: bool,
    global_service_events: bool,
    kms_key: Option<String>,
    log_group: Option<String>,
    log_role: Option<String>,
    logging: bool,
}

async fn observe_trails(clients: &Clients, stack: &str) -> Result<Vec<TrailSeen>, CallError> {
    let cloudtrail = &clients.cloudtrail;
    let trails = cloudtrail
        .describe_trails()
        .include_shadow_trails(false)
        .send()
        .await
        .map_err(call_error("cloudtrail:DescribeTrails"))?
        .trail_list
        .unwrap_or_default();
    let arns: Vec<String> = trails.iter().filter_map(|t| t.trail_arn().map(str::to_owned)).collect();
    if arns.is_empty() {
        return Ok(Vec::new());
    }
    // ListTags takes at most 20 trails a call.
    let tag_lists = futures_util::future::try_join_all(arns.chunks(20).map(|chunk| async move {
        cloudtrail
            .list_tags()
            .set_resource_id_list(Some(chunk.to_vec()))
            .send()
            .await
            .map(|out| out.resource_tag_list.unwrap_or_default())
            .map_err(call_error("cloudtrail:ListTags"))
    }))
    .await?;
    let addresses: BTreeMap<String, Address> = tag_lists
        .into_iter()
        .flatten()
        .filter_map(|list| {
            let address = ours(stack, list.tags_list().iter().map(|t| (t.key(), t.value().unwrap_or_default())))?;
            Some((list.resource_id()?.to_owned(), address))
        })
        .collect();
    let ours: Vec<_> = trails
        .into_iter()
        .filter_map(|trail| {
            let address = addresses.get(trail.trail_arn()?)?.clone();
            Some((trail, address))
        })
        .collect();
    futures_util::future::try_join_all(ours.into_iter().map(|(trail, address)| async move {
        let arn = trail.trail_arn().unwrap_or_default().to_owned();
        let status =
            cloudtrail.get_trail_status().name(&arn).send().await.map_err(call_error("cloudtrail:GetTrailStatus"))?;
        Ok::<_, CallError>(TrailSeen {
            address,
            name: trail.name().unwrap_or_default().to_owned(),
            bucket: trail.s3_bucket_name().map(str::to_owned),
            multi_region: trail.is_multi_region_trail().unwrap_or(false),
            log_file_validation: trail.log_file_validation_enabled().unwrap_or(false),
            global_service_events: trail.include_global_service_events().unwrap_or(false),
            kms_key: trail.kms_key_id().map(str::to_owned),
            log_group: trail.cloud_watch_logs_log_group_arn().map(str::to_owned),
            log_role: trail.cloud_watch_logs_role_arn().map(str::to_owned),
            logging: status.is_logging().unwrap_or(false),
            arn,
        })
    }))
    .await
}

//! Observing the stack's registry and clusters in one account. The Resource Groups Tagging API
//! does not cover ECR or EKS in moto, so each is listed and read:
//! - repositories: one paged `ecr:DescribeRepositories`, then tags, lifecycle policy and
//!   repository policy per repository;
//! - roles: `iam:ListRoles` under the enclave path, then each role (tags, policies);
//! - launch templates: one tag-filtered `ec2:DescribeLaunchTemplates`, then the default version
//!   of each of ours;
//! - clusters: `eks:ListClusters`, `eks:DescribeCluster` each (tags come with it), then
//!   `eks:ListNodegroups` and `eks:DescribeNodegroup` for each of ours;
//! - OIDC providers: `iam:ListOpenIDConnectProviders`, then each (tags, URL, client ids).
//!
//! The account key's alias is read once (`kms:DescribeKey`) when something of ours may be
//! encrypted with it, to recognise that key. Ownership is checked here, on the client: a repository is ours
//! only when it carries [`enclave_core::address::STACK_TAG`] with this stack and an address of
//! the `deploy` component.

use std::collections::BTreeMap;

use enclave_aws::kms::KeyReader;
use enclave_aws::reconcile::{found, owned_address, policy_document};
use enclave_core::Address;
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

/// The stack's deploy resources in one account, as plan resources with their ids.
pub async fn observe(clients: &Clients, scope: Scope<'_>) -> Result<Observed, CallError> {
    // The account key is read once, when something of ours may be encrypted with it.
    let mut key = KeyReader::default();
    let mut observed = observe_repositories(clients, scope, &mut key).await?;
    observed.extend(observe_clusters(clients, scope, &mut key).await?);
    Ok(observed)
}

/// The stack's repositories in one account, as plan resources with their ids (names).
async fn observe_repositories(clients: &Clients, scope: Scope<'_>, key: &mut KeyReader) -> Result<Observed, CallError> {
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
        let encryption = repository.encryption_configuration();
        let kms_key = match encryption.and_then(|e| e.kms_key()) {
            Some(used) => Some(key.reference(&clients.kms, scope.stack, scope.account, used).await?),
            None => None,
        };
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

/// Whether `address` is of this domain, this account and `kind`.
fn is(address: &Address, scope: Scope<'_>, kind: Kind) -> bool {
    address.account() == scope.account && address.kind().parse::<Kind>() == Ok(kind)
}

/// Roles, launch templates, clusters, their node groups and OIDC providers.
async fn observe_clusters(clients: &Clients, scope: Scope<'_>, key: &mut KeyReader) -> Result<Observed, CallError> {
    let mut observed = Observed::default();
    // Roles under the enclave path (other domains' are skipped by their component).
    let mut roles: BTreeMap<String, Address> = BTreeMap::new();
    for (arn, resource) in enclave_aws::iam::observe_roles(&clients.iam, scope.stack, COMPONENT).await? {
        if !is(&resource.address, scope, Kind::IamRole) {
            continue;
        }
        roles.insert(arn.clone(), resource.address.clone());
        observed.record(&arn, resource);
    }

    // Launch templates, with their default version's data.
    let filter = aws_sdk_ec2::types::Filter::builder()
        .name(format!("tag:{}", enclave_core::address::STACK_TAG))
        .values(scope.stack)
        .build();
    let templates = clients
        .ec2
        .describe_launch_templates()
        .filters(filter)
        .send()
        .await
        .map_err(call_error("ec2:DescribeLaunchTemplates"))?;
    let mut template_ids: BTreeMap<String, Address> = BTreeMap::new();
    for template in templates.launch_templates() {
        let Some((id, address)) = enclave_aws::reconcile::owned(template, scope.stack) else { continue };
        if address.component() != COMPONENT || !is(&address, scope, Kind::LaunchTemplate) {
            continue;
        }
        let versions = clients
            .ec2
            .describe_launch_template_versions()
            .launch_template_id(id)
            .versions("$Default")
            .send()
            .await
            .map_err(call_error("ec2:DescribeLaunchTemplateVersions"))?;
        let data = versions.launch_template_versions().first().and_then(|v| v.launch_template_data());
        let metadata = data.and_then(|d| d.metadata_options());
        let volume = data.and_then(|d| d.block_device_mappings().first());
        let ebs = volume.and_then(|v| v.ebs());
        let resource =
            Resource::new(address.clone()).immutable("name", template.launch_template_name().unwrap_or_default()).attr(
                "data",
                json!({
                    "key_name": data.and_then(|d| d.key_name()),
                    "metadata_options": {
                        "http_endpoint": metadata.and_then(|m| m.http_endpoint()).map(|e| e.as_str()),
                        "http_tokens": metadata.and_then(|m| m.http_tokens()).map(|t| t.as_str()),
                        "http_put_response_hop_limit": metadata.and_then(|m| m.http_put_response_hop_limit()),
                    },
                    "root_volume": {
                        "device": volume.and_then(|v| v.device_name()),
                        "encrypted": ebs.and_then(|e| e.encrypted()),
                        "volume_type": ebs.and_then(|e| e.volume_type()).map(|t| t.as_str()),
                        "size_gib": ebs.and_then(|e| e.volume_size()),
                    }
                }),
            );
        template_ids.insert(id.to_owned(), address);
        observed.record(id, resource);
    }

    // Clusters and their node groups.
    let cluster_names = clients
        .eks
        .list_clusters()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(call_error("eks:ListClusters"))?;
    let mut issuers: BTreeMap<String, Address> = BTreeMap::new();
    for name in &cluster_names {
        let Some(out) = found(
            clients.eks.describe_cluster().name(name).send().await.map_err(call_error("eks:DescribeCluster")),
            Missing::Resource,
        )?
        else {
            continue;
        };
        let Some(cluster) = out.cluster() else { continue };
        let tags = cluster.tags().into_iter().flatten().map(|(k, v)| (k.as_str(), v.as_str()));
        let Some(address) = owned_address(scope.stack, COMPONENT, tags) else { continue };
        if !is(&address, scope, Kind::Cluster) {
            continue;
        }
        let encryption_key =
            match cluster.encryption_config().iter().find_map(|config| config.provider().and_then(|p| p.key_arn())) {
                Some(arn) => Some(key.reference(&clients.kms, scope.stack, scope.account, arn).await?),
                None => None,
            };
        let vpc = cluster.resources_vpc_config();
        let enabled: Vec<String> = cluster
            .logging()
            .map(|logging| logging.cluster_logging())
            .unwrap_or_default()
            .iter()
            .filter(|setup| setup.enabled() == Some(true))
            .flat_map(|setup| setup.types().iter().map(|t| t.as_str().to_owned()))
            .collect();
        let logging: Vec<&str> =
            crate::resources::LOG_TYPES.iter().copied().filter(|t| enabled.iter().any(|e| e == t)).collect();
        let role = cluster.role_arn().map(|arn| roles.get(arn).map_or_else(|| arn.to_owned(), ToString::to_string));
        if let Some(issuer) = cluster.identity().and_then(|i| i.oidc()).and_then(|o| o.issuer()) {
            issuers.insert(issuer.trim_start_matches("https://").to_owned(), address.clone());
        }
        let resource = Resource::new(address.clone())
            .immutable("name", name.as_str())
            .immutable("role", role)
            .immutable("encryption", json!({ "key": encryption_key }))
            .attr("version", cluster.version())
            .attr(
                "endpoint",
                json!({
                    "private": vpc.is_some_and(|v| v.endpoint_private_access()),
                    "public": vpc.is_some_and(|v| v.endpoint_public_access()),
                }),
            )
            .attr("logging", json!(logging));
        observed.record(name, resource);

        let groups = clients
            .eks
            .list_nodegroups()
            .cluster_name(name)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(call_error("eks:ListNodegroups"))?;
        for group_name in &groups {
            let Some(out) = found(
                clients
                    .eks
                    .describe_nodegroup()
                    .cluster_name(name)
                    .nodegroup_name(group_name)
                    .send()
                    .await
                    .map_err(call_error("eks:DescribeNodegroup")),
                Missing::Resource,
            )?
            else {
                continue;
            };
            let Some(group) = out.nodegroup() else { continue };
            let tags: BTreeMap<&str, &str> =
                group.tags().into_iter().flatten().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let Some(group_address) = owned_address(scope.stack, COMPONENT, tags.iter().map(|(k, v)| (*k, *v))) else {
                continue;
            };
            if !is(&group_address, scope, Kind::NodeGroup) {
                continue;
            }
            let discovery: BTreeMap<&str, &str> = tags
                .iter()
                .filter(|(key, _)| key.starts_with("k8s.io/cluster-autoscaler/"))
                .map(|(k, v)| (*k, *v))
                .collect();
            let scaling = group.scaling_config();
            let template = group
                .launch_template()
                .and_then(|t| t.id())
                .map(|id| template_ids.get(id).map_or_else(|| id.to_owned(), ToString::to_string));
            let node_role =
                group.node_role().map(|arn| roles.get(arn).map_or_else(|| arn.to_owned(), ToString::to_string));
            let resource = Resource::new(group_address)
                .immutable("name", group_name.as_str())
                .immutable("cluster", address.to_string())
                .immutable("node_role", node_role)
                .immutable("launch_template", template)
                .immutable("instance_types", json!(group.instance_types()))
                .attr(
                    "scaling",
                    json!({
                        "min": scaling.and_then(|s| s.min_size()),
                        "max": scaling.and_then(|s| s.max_size()),
                    }),
                )
                .attr("version", group.version())
                .attr("tags", json!(discovery));
            observed.record(&format!("{name}/{group_name}"), resource);
        }
        observe_cluster_extras(clients, scope, name, &address, &mut observed).await?;
    }

    // OIDC providers, matched to their cluster by issuer.
    let providers = clients
        .iam
        .list_open_id_connect_providers()
        .send()
        .await
        .map_err(call_error("iam:ListOpenIDConnectProviders"))?;
    for provider in providers.open_id_connect_provider_list() {
        let Some(arn) = provider.arn() else { continue };
        let Some(out) = found(
            clients
                .iam
                .get_open_id_connect_provider()
                .open_id_connect_provider_arn(arn)
                .send()
                .await
                .map_err(call_error("iam:GetOpenIDConnectProvider")),
            Missing::Entity,
        )?
        else {
            continue;
        };
        let Some(address) = owned_address(scope.stack, COMPONENT, out.tags().iter().map(|t| (t.key(), t.value())))
        else {
            continue;
        };
        if !is(&address, scope, Kind::OidcProvider) {
            continue;
        }
        let url = out.url().unwrap_or_default().trim_start_matches("https://").to_owned();
        let cluster = issuers.get(&url).map_or(url, ToString::to_string);
        let mut client_ids: Vec<&str> = out.client_id_list().iter().map(String::as_str).collect();
        client_ids.sort_unstable();
        observed
            .record(arn, Resource::new(address).immutable("cluster", cluster).attr("client_ids", json!(client_ids)));
    }
    Ok(observed)
}

/// A cluster's add-ons and access entries (with their access policy) that are ours.
async fn observe_cluster_extras(
    clients: &Clients,
    scope: Scope<'_>,
    cluster: &str,
    cluster_address: &Address,
    observed: &mut Observed,
) -> Result<(), CallError> {
    let eks = &clients.eks;
    let addons = eks
        .list_addons()
        .cluster_name(cluster)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(call_error("eks:ListAddons"))?;
    for name in &addons {
        let Some(out) = found(
            eks.describe_addon()
                .cluster_name(cluster)
                .addon_name(name)
                .send()
                .await
                .map_err(call_error("eks:DescribeAddon")),
            Missing::Resource,
        )?
        else {
            continue;
        };
        let Some(addon) = out.addon() else { continue };
        let tags = addon.tags().into_iter().flatten().map(|(k, v)| (k.as_str(), v.as_str()));
        let Some(address) = owned_address(scope.stack, COMPONENT, tags) else { continue };
        if !is(&address, scope, Kind::Addon) {
            continue;
        }
        let resource =
            Resource::new(address).immutable("name", name.as_str()).immutable("cluster", cluster_address.to_string());
        observed.record(&format!("{cluster}/{name}"), resource);
    }
    let entries = eks
        .list_access_entries()
        .cluster_name(cluster)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(call_error("eks:ListAccessEntries"))?;
    for principal in &entries {
        let Some(out) = found(
            eks.describe_access_entry()
                .cluster_name(cluster)
                .principal_arn(principal)
                .send()
                .await
                .map_err(call_error("eks:DescribeAccessEntry")),
            Missing::Resource,
        )?
        else {
            continue;
        };
        let Some(entry) = out.access_entry() else { continue };
        let tags = entry.tags().into_iter().flatten().map(|(k, v)| (k.as_str(), v.as_str()));
        let Some(address) = owned_address(scope.stack, COMPONENT, tags) else { continue };
        if !is(&address, scope, Kind::AccessEntry) {
            continue;
        }
        let policies = eks
            .list_associated_access_policies()
            .cluster_name(cluster)
            .principal_arn(principal)
            .send()
            .await
            .map_err(call_error("eks:ListAssociatedAccessPolicies"))?;
        let policy = match policies.associated_access_policies() {
            [] => Value::Null,
            [only] => {
                let mut namespaces: Vec<&str> = only
                    .access_scope()
                    .map(|scope| scope.namespaces())
                    .unwrap_or_default()
                    .iter()
                    .map(String::as_str)
                    .collect();
                namespaces.sort_unstable();
                json!({ "arn": only.policy_arn(), "namespaces": namespaces })
            }
            // More than one: whatever it is, not what the spec gives (one policy per role).
            several => json!(several.iter().filter_map(|p| p.policy_arn()).collect::<Vec<_>>()),
        };
        let resource = Resource::new(address)
            .immutable("cluster", cluster_address.to_string())
            .immutable("principal", principal.as_str())
            .attr("policy", policy);
        observed.record(&format!("{cluster}|{principal}"), resource);
    }
    Ok(())
}

//! The deploy model: what the spec asks of the registry and the clusters, with what the network
//! knows (which tiers route to an internet gateway) handed over by the binary, so that this
//! crate never depends on `enclave-net`.

use enclave_core::Address;
use enclave_core::names::{ROLE_PATH, node_role_name};
use enclave_core::region;
use enclave_core::spec::Spec;
use serde::Serialize;

/// The stack's registry and clusters.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeployModel {
    /// Stack name, carried by ownership tags.
    pub stack: String,
    /// Region.
    pub region: String,
    /// ARN partition of the region.
    pub partition: String,
    /// The registry, when the spec has one.
    pub registry: Option<Registry>,
    /// Every cluster, in spec order.
    pub clusters: Vec<Cluster>,
    /// Every app's image, in spec order.
    pub images: Vec<AppImage>,
}

/// The image an app runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AppImage {
    /// App name.
    pub app: String,
    /// The account its cluster runs in.
    pub account: String,
    /// The image reference.
    pub image: String,
}

/// The ECR registry of the stack: one repository per app, in one account.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Registry {
    /// Account name.
    pub account: String,
    /// 12-digit account id.
    pub account_id: String,
    /// `<account id>.dkr.ecr.<region>.amazonaws.com` (`.com.cn` in China).
    pub host: String,
    /// Scan on push.
    pub scan_on_push: bool,
    /// Immutable tags.
    pub immutable_tags: bool,
    /// Tagged images kept per repository.
    pub keep_tagged: u16,
    /// Days before an untagged image expires.
    pub untagged_expire_days: u16,
    /// Repository names (one per app), in spec order.
    pub repositories: Vec<String>,
    /// The node roles of the stack's clusters in other accounts: the only principals the
    /// repository policy lets pull. Nodes in the registry's own account pull through their
    /// role's IAM policy.
    pub pullers: Vec<String>,
}

/// Where the network puts a tier of an account.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TierPlacement {
    /// Whether the tier's route tables send traffic to an internet gateway.
    pub public: bool,
    /// Its subnets (net addresses), one per zone in use.
    pub subnets: Vec<Address>,
}

/// One EKS cluster.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cluster {
    /// Cluster name.
    pub name: String,
    /// Account name.
    pub account: String,
    /// 12-digit account id.
    pub account_id: String,
    /// Kubernetes version.
    pub version: String,
    /// Whether the API server is reachable from the internet.
    pub public_endpoint: bool,
    /// The subnets of the control plane's network interfaces (the cluster's tier).
    pub subnets: Vec<Address>,
    /// Managed node groups.
    pub node_groups: Vec<NodeGroup>,
    /// Roles given access to the Kubernetes API.
    pub access: Vec<AccessGrant>,
}

/// A role's access entry and access policy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AccessGrant {
    /// The role's name.
    pub role: String,
    /// The role's ARN (the entry's principal).
    pub principal: String,
    /// The access policy's ARN.
    pub policy: String,
    /// Namespaces it is limited to; empty for cluster-wide.
    pub namespaces: Vec<String>,
}

/// One managed node group.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodeGroup {
    /// Node group name.
    pub name: String,
    /// The tier its nodes run in.
    pub tier: String,
    /// Whether that tier's route tables send traffic to an internet gateway.
    pub public_tier: bool,
    /// Its subnets (net addresses).
    pub subnets: Vec<Address>,
    /// EC2 instance types.
    pub instance_types: Vec<String>,
    /// Fewest nodes.
    pub min: u16,
    /// Most nodes.
    pub max: u16,
    /// Nodes at creation (the Cluster Autoscaler owns the count afterwards).
    pub desired: u16,
}

/// The deploy model of `spec`; `tier(account, tier)` says where the network puts a tier of an
/// account (its subnets, and whether it routes to an internet gateway).
pub fn build(spec: &Spec, tier: &dyn Fn(&str, &str) -> TierPlacement) -> DeployModel {
    let region = spec.organization.region.to_string();
    let partition = region::partition(&region).to_owned();
    let account_id = |name: &str| spec.account(name).map(|account| account.id.to_string()).unwrap_or_default();
    let clusters: Vec<Cluster> = spec
        .clusters
        .iter()
        .map(|cluster| {
            let account = spec.account(cluster.account.as_str());
            let default_tier = cluster
                .tier
                .clone()
                .or_else(|| account.and_then(|account| account.network.tiers.first()).map(|tier| tier.name.clone()))
                .map(|tier| tier.to_string())
                .unwrap_or_default();
            Cluster {
                name: cluster.name.to_string(),
                account: cluster.account.to_string(),
                account_id: account_id(cluster.account.as_str()),
                version: cluster.version.clone(),
                public_endpoint: cluster.public_endpoint,
                subnets: tier(cluster.account.as_str(), &default_tier).subnets,
                node_groups: cluster
                    .node_groups
                    .iter()
                    .map(|group| {
                        let name = group.tier.as_ref().map_or_else(|| default_tier.clone(), ToString::to_string);
                        let placement = tier(cluster.account.as_str(), &name);
                        NodeGroup {
                            name: group.name.to_string(),
                            public_tier: placement.public,
                            subnets: placement.subnets,
                            tier: name,
                            instance_types: group.instance_types.clone(),
                            min: group.min,
                            max: group.max,
                            desired: group.desired,
                        }
                    })
                    .collect(),
                access: cluster
                    .access
                    .iter()
                    .map(|grant| AccessGrant {
                        role: grant.role.to_string(),
                        principal: format!(
                            "arn:{partition}:iam::{}:role/{}",
                            account_id(cluster.account.as_str()),
                            grant.role
                        ),
                        policy: format!("arn:{partition}:eks::aws:cluster-access-policy/{}", grant.policy.eks_name()),
                        namespaces: {
                            // Sorted, as EKS lists them.
                            let mut namespaces: Vec<String> =
                                grant.namespaces.iter().map(ToString::to_string).collect();
                            namespaces.sort();
                            namespaces
                        },
                    })
                    .collect(),
            }
        })
        .collect();
    let registry = spec.registry.as_ref().map(|registry| {
        let id = account_id(registry.account.as_str());
        Registry {
            account: registry.account.to_string(),
            host: format!("{id}.dkr.ecr.{region}.{}", region::dns_suffix(&region)),
            account_id: id,
            scan_on_push: registry.scan_on_push,
            immutable_tags: registry.immutable_tags,
            keep_tagged: registry.keep_tagged,
            untagged_expire_days: registry.untagged_expire_days,
            repositories: spec.apps.iter().map(|app| app.name.to_string()).collect(),
            pullers: clusters
                .iter()
                .filter(|cluster| cluster.account != registry.account.as_str())
                .map(|cluster| {
                    format!(
                        "arn:{partition}:iam::{}:role{ROLE_PATH}{}",
                        cluster.account_id,
                        node_role_name(&cluster.name)
                    )
                })
                .collect(),
        }
    });
    DeployModel {
        stack: spec.stack().to_string(),
        region,
        partition,
        registry,
        clusters,
        images: spec
            .apps
            .iter()
            .map(|app| AppImage {
                app: app.name.to_string(),
                account: spec
                    .clusters
                    .iter()
                    .find(|cluster| cluster.name == app.cluster)
                    .map(|cluster| cluster.account.to_string())
                    .unwrap_or_default(),
                image: app.image.clone(),
            })
            .collect(),
    }
}

/// An image reference split into its parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef<'a> {
    /// The registry host, when the reference names one (`a.dkr.ecr...`, `ghcr.io`).
    pub host: Option<&'a str>,
    /// The repository path.
    pub repository: &'a str,
    /// The tag.
    pub tag: Option<&'a str>,
    /// The digest (`sha256:...`).
    pub digest: Option<&'a str>,
}

/// Splits `image` as a container runtime does: the first path segment is a host when it has a
/// dot or a port or is `localhost`.
pub fn parse_image(image: &str) -> ImageRef<'_> {
    let (rest, digest) = match image.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (image, None),
    };
    let (host, path) = match rest.split_once('/') {
        Some((first, path)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            (Some(first), path)
        }
        _ => (None, rest),
    };
    let last = path.rfind('/').map_or(0, |slash| slash + 1);
    let (repository, tag) = match path[last..].split_once(':') {
        Some((name, tag)) => (&path[..last + name.len()], Some(tag)),
        None => (path, None),
    };
    ImageRef { host, repository, tag: tag.filter(|tag| !tag.is_empty()), digest }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_split_like_a_runtime_splits_them() {
        let ecr = parse_image("333333333333.dkr.ecr.eu-west-1.amazonaws.com/orders:1.4.2@sha256:abc");
        assert_eq!(ecr.host, Some("333333333333.dkr.ecr.eu-west-1.amazonaws.com"));
        assert_eq!((ecr.repository, ecr.tag, ecr.digest), ("orders", Some("1.4.2"), Some("sha256:abc")));
        let hub = parse_image("library/nginx");
        assert_eq!((hub.host, hub.repository, hub.tag), (None, "library/nginx", None));
        let port = parse_image("localhost:5000/team/app:2");
        assert_eq!((port.host, port.repository, port.tag), (Some("localhost:5000"), "team/app", Some("2")));
    }
}

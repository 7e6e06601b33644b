//! Deploy guardrails (`DEP001`...), over the deploy model: clusters reachable only from their
//! VPC, nodes only in private tiers, repositories that keep what was pushed and scan it, and
//! apps that run only images of the stack's registry, pinned. Our reference platform produces
//! no finding; the rules are the executable statement of that.

use enclave_core::Address;
use enclave_core::guardrail::{Hit, RuleSet, Severity};

use crate::model::{DeployModel, parse_image};
use crate::resources::COMPONENT;

/// Every deploy rule, in id order.
pub fn rules() -> RuleSet<DeployModel> {
    RuleSet::default()
        .with(PrivateEndpoint)
        .with(PrivateNodes)
        .with(ImmutableTags)
        .with(ScanOnPush)
        .with(ImagesFromTheRegistry)
        .with(ImagesPinned)
}

macro_rules! rule {
    ($name:ident, $id:literal, $($rule:tt)*) => {
        enclave_core::guardrail_rule!(impl for DeployModel, $name, $id, None, $($rule)*);
    };
}

fn at(account: &str, kind: &str, name: &str) -> Address {
    Address::new(account, COMPONENT, kind, name).unwrap_or_else(|error| panic!("internal address error: {error}"))
}

rule!(
    PrivateEndpoint,
    "DEP001",
    Severity::High,
    "every cluster's API server is reachable only from its VPC",
    "set `public_endpoint: false`; reach the API through Session Manager port forwarding",
    |model| {
        model
            .clusters
            .iter()
            .filter(|cluster| cluster.public_endpoint)
            .map(|cluster| {
                Hit::new(at(&cluster.account, "eks-cluster", &cluster.name), "the API server has a public endpoint")
            })
            .collect()
    }
);

rule!(
    PrivateNodes,
    "DEP002",
    Severity::High,
    "node groups run only in tiers with no route to an internet gateway",
    "place the node group in a private tier (its outbound traffic goes through NAT or endpoints)",
    |model| {
        model
            .clusters
            .iter()
            .flat_map(|cluster| cluster.node_groups.iter().map(move |group| (cluster, group)))
            .filter(|(_, group)| group.public_tier)
            .map(|(cluster, group)| {
                Hit::new(
                    at(&cluster.account, "node-group", &format!("{}-{}", cluster.name, group.name)),
                    format!("tier `{}` routes to an internet gateway", group.tier),
                )
            })
            .collect()
    }
);

rule!(
    ImmutableTags,
    "DEP003",
    Severity::Medium,
    "repositories refuse to move a pushed tag",
    "set `registry.immutable_tags: true` and give every build a new tag",
    |model| {
        model
            .registry
            .iter()
            .filter(|registry| !registry.immutable_tags)
            .flat_map(|registry| {
                registry.repositories.iter().map(|name| {
                    Hit::new(
                        at(&registry.account, "ecr-repository", name),
                        "tags are mutable: a deploy may not get what was tested",
                    )
                })
            })
            .collect()
    }
);

rule!(
    ScanOnPush,
    "DEP004",
    Severity::Medium,
    "repositories scan every image on push",
    "set `registry.scan_on_push: true`, and gate deploys with `enclave deploy scan-gate`",
    |model| {
        model
            .registry
            .iter()
            .filter(|registry| !registry.scan_on_push)
            .flat_map(|registry| {
                registry.repositories.iter().map(|name| {
                    Hit::new(at(&registry.account, "ecr-repository", name), "images are not scanned on push")
                })
            })
            .collect()
    }
);

rule!(
    ImagesFromTheRegistry,
    "DEP005",
    Severity::High,
    "apps run only images from the stack's own registry",
    "push the image to the stack's ECR repository for the app and name it from there",
    |model| {
        model
            .images
            .iter()
            .filter_map(|app| {
                let image = parse_image(&app.image);
                let expected = model.registry.as_ref().map(|registry| (registry.host.as_str(), app.app.as_str()));
                let message = match expected {
                    None => "the stack has no registry: the image comes from outside it".to_owned(),
                    Some((host, repository)) if image.host != Some(host) || image.repository != repository => {
                        format!("the image is not in the stack's repository {host}/{repository}")
                    }
                    Some(_) => return None,
                };
                Some(Hit::new(at(&app.account, "app", &app.app), message))
            })
            .collect()
    }
);

rule!(
    ImagesPinned,
    "DEP006",
    Severity::High,
    "every image names a tag other than `latest`, or a digest",
    "name the image by digest (`...@sha256:...`), or at least by a release tag",
    |model| {
        model
            .images
            .iter()
            .filter(|app| {
                let image = parse_image(&app.image);
                image.digest.is_none() && image.tag.is_none_or(|tag| tag == "latest")
            })
            .map(|app| {
                Hit::new(at(&app.account, "app", &app.app), "the image has no tag or digest: what runs may change")
            })
            .collect()
    }
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AppImage, Cluster, NodeGroup, Registry};

    fn model() -> DeployModel {
        DeployModel {
            stack: "acme".into(),
            region: "eu-west-1".into(),
            partition: "aws".into(),
            registry: Some(Registry {
                account: "prod".into(),
                account_id: "333333333333".into(),
                host: "333333333333.dkr.ecr.eu-west-1.amazonaws.com".into(),
                scan_on_push: true,
                immutable_tags: true,
                keep_tagged: 30,
                untagged_expire_days: 7,
                repositories: vec!["orders".into()],
                pullers: vec![],
            }),
            clusters: vec![Cluster {
                name: "main".into(),
                account: "prod".into(),
                account_id: "333333333333".into(),
                version: "1.33".into(),
                public_endpoint: false,
                subnets: vec![],
                node_groups: vec![NodeGroup {
                    name: "general".into(),
                    tier: "app".into(),
                    public_tier: false,
                    subnets: vec![],
                    instance_types: vec!["m6i.large".into()],
                    min: 1,
                    max: 3,
                    desired: 1,
                }],
                access: vec![],
            }],
            images: vec![AppImage {
                app: "orders".into(),
                account: "prod".into(),
                image: "333333333333.dkr.ecr.eu-west-1.amazonaws.com/orders:1.0@sha256:abc".into(),
            }],
        }
    }

    fn fired(model: &DeployModel) -> Vec<String> {
        rules().run(model).findings.iter().map(|f| format!("{} {}", f.rule, f.address)).collect()
    }

    #[test]
    fn a_private_platform_breaks_no_rule_and_each_rule_fires_on_its_own_fault() {
        assert_eq!(fired(&model()), Vec::<String>::new());
        let mut public = model();
        public.clusters[0].public_endpoint = true;
        assert_eq!(fired(&public), ["DEP001 prod/deploy/eks-cluster/main"]);
        let mut nodes = model();
        nodes.clusters[0].node_groups[0].public_tier = true;
        assert_eq!(fired(&nodes), ["DEP002 prod/deploy/node-group/main-general"]);
        let mut mutable = model();
        mutable.registry.as_mut().expect("registry").immutable_tags = false;
        mutable.registry.as_mut().expect("registry").scan_on_push = false;
        let mut rules = fired(&mutable);
        rules.sort();
        assert_eq!(rules, ["DEP003 prod/deploy/ecr-repository/orders", "DEP004 prod/deploy/ecr-repository/orders"]);
        let mut outside = model();
        outside.images[0].image = "ghcr.io/acme/orders:1.0".into();
        assert_eq!(fired(&outside), ["DEP005 prod/deploy/app/orders"]);
        outside.registry = None;
        assert_eq!(fired(&outside), ["DEP005 prod/deploy/app/orders"], "no registry at all");
        let mut floating = model();
        floating.images[0].image = "333333333333.dkr.ecr.eu-west-1.amazonaws.com/orders:latest".into();
        assert_eq!(fired(&floating), ["DEP006 prod/deploy/app/orders"]);
        floating.images[0].image = "333333333333.dkr.ecr.eu-west-1.amazonaws.com/orders".into();
        assert_eq!(fired(&floating), ["DEP006 prod/deploy/app/orders"]);
    }
}

//! The deploy model as plan resources: addresses `<account>/deploy/<kind>/<name>`, compared
//! attributes, and dependencies on other domains' resources (a repository after the account's
//! KMS key and its alias, made by the access domain): one plan spans every domain.

use enclave_core::Address;
use enclave_core::address::ADDRESS_TAG;
use enclave_core::iam::{aws_managed_policy, trust_policy};
use enclave_core::names::{
    ROLE_PATH, account_key_address, account_key_alias_address, node_group_discovery_tags, node_role_name,
};
use enclave_core::plan::Resource;
use serde_json::{Value, json};

use crate::kind::Kind;
use crate::model::{Cluster, DeployModel, Registry};

/// The component segment of every address this crate owns.
pub const COMPONENT: &str = "deploy";

/// The actions a node needs to pull an image.
pub const PULL_ACTIONS: [&str; 3] =
    ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"];

/// The address of `kind`/`name` in `account`'s deploy resources.
pub fn address(account: &str, kind: Kind, name: &str) -> Address {
    // Names are validated spec names; accounts too.
    Address::new(account, COMPONENT, kind.as_str(), name)
        .unwrap_or_else(|error| panic!("internal address error: {error}"))
}

/// Every deploy resource, each after the ones it needs.
pub fn desired(model: &DeployModel) -> Vec<Resource> {
    let mut out = Vec::new();
    if let Some(registry) = &model.registry {
        out.extend(repositories(registry));
    }
    for cluster in &model.clusters {
        out.extend(cluster_resources(model, cluster));
    }
    out
}

/// Every control-plane log type EKS has; all are enabled.
pub const LOG_TYPES: [&str; 5] = ["api", "audit", "authenticator", "controllerManager", "scheduler"];

/// The AWS-managed policies of a cluster's role.
pub const CLUSTER_POLICIES: [&str; 1] = ["AmazonEKSClusterPolicy"];

/// The AWS-managed policies of a node role: joining the cluster, pulling images, and the VPC
/// CNI's network interfaces. Nothing else.
pub const NODE_POLICIES: [&str; 3] =
    ["AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryReadOnly", "AmazonEKS_CNI_Policy"];

/// The managed add-ons of every cluster: the pod network, DNS, service routing and the Pod
/// Identity agent (the secrets domain's pod access).
pub const ADDONS: [&str; 4] = ["vpc-cni", "kube-proxy", "eks-pod-identity-agent", "coredns"];

/// The address name of a role's access entry on a cluster (address segments are lower case).
pub fn access_entry_name(cluster: &str, role: &str) -> String {
    let role: String = role
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c.to_ascii_lowercase() } else { '-' })
        .collect();
    format!("{cluster}-{role}")
}

/// The client id of every cluster's OIDC provider: STS, for IRSA.
pub const OIDC_CLIENT: &str = "sts.amazonaws.com";

/// The name of a cluster's role (under [`ROLE_PATH`]).
pub fn cluster_role_name(cluster: &str) -> String {
    format!("{cluster}-cluster")
}

/// What the cluster's role may do with the account key: encrypt and decrypt Kubernetes secrets
/// (envelope encryption through grants). The key is named by its address tag among the
/// account's keys: its ARN is not known before it exists.
pub fn cluster_key_policy(model: &DeployModel, cluster: &Cluster) -> Value {
    let account = cluster.account.as_str();
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "EncryptKubernetesSecretsWithTheAccountKey",
            "Effect": "Allow",
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey", "kms:CreateGrant"],
            "Resource": format!("arn:{}:kms:{}:{}:key/*", model.partition, model.region, cluster.account_id),
            "Condition": { "StringEquals": { format!("aws:ResourceTag/{ADDRESS_TAG}"): account_key_address(account).to_string() } }
        }]
    })
}

/// The launch template data of a node group: IMDSv2 only, one hop (pods cannot reach the node's
/// credentials), no key pair, an encrypted gp3 root volume. EKS chooses the image.
pub fn node_template_data() -> Value {
    json!({
        "key_name": null,
        "metadata_options": { "http_endpoint": "enabled", "http_tokens": "required", "http_put_response_hop_limit": 1 },
        "root_volume": { "device": "/dev/xvda", "encrypted": true, "volume_type": "gp3", "size_gib": 20 }
    })
}

fn cluster_resources(model: &DeployModel, cluster: &Cluster) -> Vec<Resource> {
    let account = cluster.account.as_str();
    let at = |kind: Kind, name: &str| address(account, kind, name);
    let key = account_key_address(account);
    let alias = account_key_alias_address(account);
    let role = at(Kind::IamRole, &cluster_role_name(&cluster.name));
    let node_role = at(Kind::IamRole, &node_role_name(&cluster.name));
    let eks = enclave_core::names::cluster_address(account, &cluster.name);
    // Sorted, as observation lists them.
    let managed = |names: &[&str]| {
        let mut arns: Vec<String> = names.iter().map(|name| aws_managed_policy(&model.partition, name)).collect();
        arns.sort();
        json!(arns)
    };
    let subnets = |subnets: &[Address]| json!(subnets.iter().map(ToString::to_string).collect::<Vec<_>>());
    let mut out = vec![
        Resource::new(role.clone())
            .immutable("name", cluster_role_name(&cluster.name))
            .immutable("path", ROLE_PATH)
            .attr("trust_policy", trust_policy("eks.amazonaws.com", None))
            .attr("managed_policies", managed(&CLUSTER_POLICIES))
            .attr("policy", cluster_key_policy(model, cluster)),
        Resource::new(node_role.clone())
            .immutable("name", node_role_name(&cluster.name))
            .immutable("path", ROLE_PATH)
            .attr("trust_policy", trust_policy("ec2.amazonaws.com", None))
            .attr("managed_policies", managed(&NODE_POLICIES))
            .attr("policy", Value::Null),
    ];
    let mut resource = Resource::new(eks.clone())
        .immutable("name", cluster.name.as_str())
        .immutable("role", role.to_string())
        // Envelope encryption of Kubernetes secrets (and all API data) with the account key.
        .immutable("encryption", json!({ "key": key.to_string() }))
        // The control plane's subnets are where it was made; EKS cannot move it to another VPC.
        .initial("subnets", subnets(&cluster.subnets))
        .attr("version", cluster.version.as_str())
        .attr("endpoint", json!({ "private": true, "public": cluster.public_endpoint }))
        .attr("logging", json!(LOG_TYPES))
        .after(&role)
        .after(&key)
        .after(&alias);
    for subnet in &cluster.subnets {
        resource = resource.after(subnet);
    }
    out.push(resource);
    out.push(
        Resource::new(enclave_core::names::oidc_provider_address(account, &cluster.name))
            .immutable("cluster", eks.to_string())
            .attr("client_ids", json!([OIDC_CLIENT]))
            .after(&eks),
    );
    let mut node_groups = Vec::new();
    for group in &cluster.node_groups {
        let name = format!("{}-{}", cluster.name, group.name);
        let template = at(Kind::LaunchTemplate, &name);
        out.push(
            Resource::new(template.clone())
                .immutable("name", format!("{}-{name}", model.stack))
                .attr("data", node_template_data()),
        );
        let mut resource = Resource::new(at(Kind::NodeGroup, &name))
            .immutable("name", group.name.as_str())
            .immutable("cluster", eks.to_string())
            .immutable("node_role", node_role.to_string())
            .immutable("launch_template", template.to_string())
            .immutable("instance_types", json!(group.instance_types))
            .initial("subnets", subnets(&group.subnets))
            .initial("desired_size", group.desired)
            .attr("scaling", json!({ "min": group.min, "max": group.max }))
            .attr("version", cluster.version.as_str())
            .attr("tags", json!(node_group_discovery_tags(&cluster.name)))
            .after(&eks)
            .after(&node_role)
            .after(&template);
        for subnet in &group.subnets {
            resource = resource.after(subnet);
        }
        node_groups.push(resource.address.clone());
        out.push(resource);
    }
    for addon in ADDONS {
        let mut resource = Resource::new(at(Kind::Addon, &format!("{}-{addon}", cluster.name)))
            .immutable("name", addon)
            .immutable("cluster", eks.to_string())
            .after(&eks);
        // DNS runs on nodes: it becomes ACTIVE only once there are some.
        if addon == "coredns" {
            for group in &node_groups {
                resource = resource.after(group);
            }
        }
        out.push(resource);
    }
    for grant in &cluster.access {
        out.push(
            Resource::new(at(Kind::AccessEntry, &access_entry_name(&cluster.name, &grant.role)))
                .immutable("cluster", eks.to_string())
                .immutable("principal", grant.principal.as_str())
                .attr("policy", json!({ "arn": grant.policy, "namespaces": grant.namespaces }))
                .after(&eks),
        );
    }
    out
}

/// The lifecycle policy of every repository: untagged images expire after the spec's days, and
/// only the spec's number of tagged images is kept.
pub fn lifecycle_policy(registry: &Registry) -> Value {
    json!({
        "rules": [
            {
                "rulePriority": 1,
                "description": format!("expire untagged images after {} days", registry.untagged_expire_days),
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": registry.untagged_expire_days
                },
                "action": { "type": "expire" }
            },
            {
                "rulePriority": 2,
                "description": format!("keep the last {} tagged images", registry.keep_tagged),
                "selection": {
                    "tagStatus": "tagged",
                    "tagPatternList": ["*"],
                    "countType": "imageCountMoreThan",
                    "countNumber": registry.keep_tagged
                },
                "action": { "type": "expire" }
            }
        ]
    })
}

/// The repository policy: only the node roles of the stack's clusters in other accounts may
/// pull, and nothing else. `None` when no other account runs a cluster (the registry account's
/// own nodes pull through their role's IAM policy).
///
/// The principals are the accounts, narrowed by `aws:PrincipalArn` to the exact node roles: a
/// repository policy naming a role directly is refused while the role does not exist yet, and
/// the roles come and go with their clusters.
pub fn repository_policy(registry: &Registry) -> Option<Value> {
    if registry.pullers.is_empty() {
        return None;
    }
    let mut accounts: Vec<String> = registry
        .pullers
        .iter()
        .filter_map(|arn| {
            let mut parts = arn.split(':');
            let partition = parts.nth(1)?;
            let account = parts.nth(2)?;
            Some(format!("arn:{partition}:iam::{account}:root"))
        })
        .collect();
    accounts.sort();
    accounts.dedup();
    Some(json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "NodeRolesOfTheStackPull",
            "Effect": "Allow",
            "Principal": { "AWS": accounts },
            "Action": PULL_ACTIONS,
            "Condition": { "ArnEquals": { "aws:PrincipalArn": registry.pullers } }
        }]
    }))
}

fn repositories(registry: &Registry) -> Vec<Resource> {
    let key = account_key_address(&registry.account);
    let alias = account_key_alias_address(&registry.account);
    let policy = repository_policy(registry).unwrap_or(Value::Null);
    registry
        .repositories
        .iter()
        .map(|name| {
            Resource::new(address(&registry.account, Kind::Repository, name))
                .immutable("name", name.as_str())
                .immutable("encryption", json!({ "type": "KMS", "kms_key": key.to_string() }))
                .attr("scan_on_push", registry.scan_on_push)
                .attr("tag_mutability", if registry.immutable_tags { "IMMUTABLE" } else { "MUTABLE" })
                .attr("lifecycle", lifecycle_policy(registry))
                .attr("policy", policy.clone())
                .after(&key)
                .after(&alias)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_only_attributes_are_the_ones_each_kind_declares() {
        let model = DeployModel {
            stack: "acme".into(),
            region: "eu-west-1".into(),
            partition: "aws".into(),
            registry: Some(registry(&[])),
            clusters: vec![Cluster {
                name: "main".into(),
                account: "prod".into(),
                account_id: "333333333333".into(),
                version: "1.33".into(),
                public_endpoint: false,
                subnets: vec![],
                node_groups: vec![crate::model::NodeGroup {
                    name: "general".into(),
                    tier: "app".into(),
                    public_tier: false,
                    subnets: vec![],
                    instance_types: vec!["m6i.large".into()],
                    min: 1,
                    max: 3,
                    desired: 2,
                }],
                access: vec![],
            }],
            images: vec![],
        };
        for resource in desired(&model) {
            let kind: Kind = resource.address.kind().parse().expect("a deploy kind");
            let declared: std::collections::BTreeSet<String> = kind.initial().iter().map(|s| (*s).to_owned()).collect();
            assert_eq!(resource.initial, declared, "{}", resource.address);
            for name in resource.attributes.keys() {
                let mutable = !resource.replace_on.contains(name) && !resource.initial.contains(name);
                assert_eq!(mutable, kind.updatable().contains(&name.as_str()), "{}: {name}", resource.address);
            }
        }
    }

    fn registry(pullers: &[&str]) -> Registry {
        Registry {
            account: "prod".into(),
            account_id: "333333333333".into(),
            host: "333333333333.dkr.ecr.eu-west-1.amazonaws.com".into(),
            scan_on_push: true,
            immutable_tags: true,
            keep_tagged: 30,
            untagged_expire_days: 7,
            repositories: vec!["orders".into()],
            pullers: pullers.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    #[test]
    fn only_the_other_accounts_node_roles_may_pull_and_only_pull() {
        let policy = repository_policy(&registry(&[
            "arn:aws:iam::111111111111:role/enclave/platform-dev-node",
            "arn:aws:iam::111111111111:role/enclave/batch-node",
        ]))
        .expect("a policy");
        let statement = &policy["Statement"][0];
        assert_eq!(statement["Principal"]["AWS"], json!(["arn:aws:iam::111111111111:root"]));
        assert_eq!(statement["Action"], json!(PULL_ACTIONS));
        assert_eq!(
            statement["Condition"]["ArnEquals"]["aws:PrincipalArn"],
            json!([
                "arn:aws:iam::111111111111:role/enclave/platform-dev-node",
                "arn:aws:iam::111111111111:role/enclave/batch-node"
            ])
        );
        assert_eq!(repository_policy(&registry(&[])), None, "no other account: no policy at all");
    }

    #[test]
    fn a_repository_is_encrypted_with_the_account_key_and_comes_after_it() {
        let resources = repositories(&registry(&[]));
        assert_eq!(resources[0].address.to_string(), "prod/deploy/ecr-repository/orders");
        assert_eq!(resources[0].attributes["encryption"]["kms_key"], "prod/access/kms-key/access");
        assert_eq!(resources[0].attributes["tag_mutability"], "IMMUTABLE");
        let lifecycle = &resources[0].attributes["lifecycle"]["rules"];
        assert_eq!(lifecycle[0]["selection"]["countNumber"], 7);
        assert_eq!(lifecycle[1]["selection"]["countNumber"], 30);
    }
}

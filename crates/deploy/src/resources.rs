//! The deploy model as plan resources: addresses `<account>/deploy/<kind>/<name>`, compared
//! attributes, and dependencies on other domains' resources (a repository after the account's
//! KMS key and its alias, made by the access domain): one plan spans every domain.

use enclave_core::Address;
use enclave_core::names::{account_key_address, account_key_alias_address};
use enclave_core::plan::Resource;
use serde_json::{Value, json};

use crate::kind::Kind;
use crate::model::{DeployModel, Registry};

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

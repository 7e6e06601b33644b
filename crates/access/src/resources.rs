//! The access model as plan resources: addresses `<account>/access/<kind>/<name>`, compared
//! attributes, and dependencies, some on the network's resources (the bastion after its subnet,
//! its group after the VPC): one plan spans both domains.

use enclave_core::Address;
use enclave_core::plan::Resource;
use serde_json::{Value, json};

use crate::kind::Kind;
use crate::model::{
    AccessModel, AccountAccess, SESSION_DOCUMENT, SSM_CORE_POLICY, instance_role_name, key_alias, people_policy_name,
    trail_role_name,
};
use crate::policy::{self, Arns};

pub use enclave_core::names::ROLE_PATH;

/// The component segment of every address this crate owns.
pub const COMPONENT: &str = "access";

/// The address of `kind`/`name` in `account`'s access resources.
pub fn address(account: &str, kind: Kind, name: &str) -> Address {
    // Names are fixed words of this crate; accounts are validated spec names.
    Address::new(account, COMPONENT, kind.as_str(), name)
        .unwrap_or_else(|error| panic!("internal address error: {error}"))
}

/// Every access resource of every account, each after the ones it needs.
pub fn desired(model: &AccessModel) -> Vec<Resource> {
    model.accounts.iter().flat_map(|account| account_resources(model, account)).collect()
}

/// The `Name` tag of an EC2 resource (the only tags compared besides ownership).
fn name_tag(account: &str, kind: Kind, name: &str) -> Value {
    json!({ "Name": format!("{account}-{kind}-{name}") })
}

/// A bucket with everything S3 offers to keep it private: public access blocked, versioning,
/// SSE-KMS with the access key, a policy, and expiry.
fn bucket(at: &dyn Fn(Kind, &str) -> Address, name: &str, bucket: &str, policy: Value, days: u16) -> Resource {
    let key = at(Kind::KmsKey, "access");
    Resource::new(at(Kind::Bucket, name))
        .immutable("name", bucket)
        .attr(
            "public_access_block",
            json!({
                "block_public_acls": true,
                "ignore_public_acls": true,
                "block_public_policy": true,
                "restrict_public_buckets": true
            }),
        )
        .attr("versioning", "Enabled")
        .attr("encryption", json!({ "algorithm": "aws:kms", "kms_key": key.to_string(), "bucket_key": true }))
        .attr("policy", policy)
        .attr("lifecycle", json!({ "expire_days": days, "noncurrent_expire_days": days }))
        .after(&key)
}

fn account_resources(model: &AccessModel, account: &AccountAccess) -> Vec<Resource> {
    let name = account.account.as_str();
    let at = |kind: Kind, resource: &str| address(name, kind, resource);
    let arns = Arns::of(model, account);
    let key = at(Kind::KmsKey, "access");
    let mut out = Vec::new();
    if account.needs_key() {
        out.push(
            Resource::new(key.clone())
                .attr(
                    "description",
                    format!(
                        "enclave {}: the account key (sessions, logs, trail, cluster secrets, images)",
                        model.stack
                    ),
                )
                .immutable("key_usage", "ENCRYPT_DECRYPT")
                .attr("rotation", true)
                .attr("policy", policy::key_policy(model, account)),
        );
        out.push(
            Resource::new(at(Kind::KmsAlias, "access"))
                .immutable("name", key_alias(&model.stack))
                .attr("target_key", key.to_string())
                .after(&key),
        );
    }
    if let Some(session) = &account.session {
        let group = at(Kind::LogGroup, "sessions");
        let bucket_address = at(Kind::Bucket, "sessions");
        let alias = at(Kind::KmsAlias, "access");
        out.push(
            Resource::new(group.clone())
                .immutable("name", session.log_group.clone())
                .attr("retention_days", session.log_retention_days)
                .attr("kms_key", key.to_string())
                .after(&key),
        );
        out.push(bucket(
            &at,
            "sessions",
            &session.bucket,
            policy::sessions_bucket_policy(&arns, session),
            session.log_retention_days,
        ));
        out.push(
            Resource::new(at(Kind::SessionDocument, "session-preferences"))
                .immutable("name", SESSION_DOCUMENT)
                .immutable("document_type", "Session")
                .attr("content", policy::session_document(model, session))
                .after(&bucket_address)
                .after(&group)
                .after(&alias),
        );
        let role = at(Kind::IamRole, "session-instance");
        out.push(
            Resource::new(role.clone())
                .immutable("name", instance_role_name(&model.stack))
                .immutable("path", ROLE_PATH)
                .attr("trust_policy", policy::trust_policy("ec2.amazonaws.com", None))
                .attr("managed_policies", json!([arns.aws_managed_policy(SSM_CORE_POLICY)]))
                .attr("policy", policy::instance_policy(&arns, session, &key))
                .after(&bucket_address)
                .after(&group)
                .after(&alias),
        );
        out.push(
            Resource::new(at(Kind::InstanceProfile, "session-instance"))
                .immutable("name", instance_role_name(&model.stack))
                .immutable("path", ROLE_PATH)
                .attr("role", role.to_string())
                .after(&role),
        );
        out.push(
            Resource::new(at(Kind::IamPolicy, "session-users"))
                .immutable("name", people_policy_name(&model.stack))
                .immutable("path", ROLE_PATH)
                .attr("document", policy::people_policy(model, &arns)),
        );
    }
    if let Some(bastion) = &account.bastion {
        let group = at(Kind::SecurityGroup, "bastion");
        let template = at(Kind::LaunchTemplate, "bastion");
        let profile = at(Kind::InstanceProfile, "session-instance");
        out.push(
            Resource::new(group.clone())
                .immutable("vpc", bastion.vpc.to_string())
                .immutable("description", "bastion: no inbound; HTTPS to the VPC's endpoints only")
                .attr("ingress", json!([]))
                .attr("egress", json!([format!("tcp/443 {}", bastion.vpc_cidr)]))
                .attr("tags", name_tag(name, Kind::SecurityGroup, "bastion"))
                .after(&bastion.vpc),
        );
        let metadata =
            json!({ "http_endpoint": "enabled", "http_tokens": "required", "http_put_response_hop_limit": 1 });
        out.push(
            Resource::new(template.clone())
                .immutable("name", format!("{}-bastion", model.stack))
                .attr(
                    "data",
                    json!({
                        "image": bastion.image.shown(),
                        "instance_type": bastion.instance_type,
                        "key_name": null,
                        "associate_public_ip_address": false,
                        "metadata_options": metadata,
                        "root_volume": { "encrypted": true, "volume_type": "gp3" },
                        "instance_profile": profile.to_string(),
                        "security_groups": [group.to_string()],
                    }),
                )
                .attr("tags", name_tag(name, Kind::LaunchTemplate, "bastion"))
                .after(&group)
                .after(&profile),
        );
        out.push(
            Resource::new(at(Kind::Instance, "bastion"))
                .immutable("launch_template", template.to_string())
                .immutable("subnet", bastion.subnet.to_string())
                .immutable("image", bastion.image.shown())
                .immutable("instance_type", bastion.instance_type.clone())
                .immutable("key_name", Value::Null)
                .immutable("public_ip", false)
                .immutable("instance_profile", profile.to_string())
                .immutable("root_volume_encrypted", true)
                .attr("http_tokens", "required")
                .attr("http_put_response_hop_limit", 1)
                .attr("security_groups", json!([group.to_string()]))
                .attr("tags", name_tag(name, Kind::Instance, "bastion"))
                .after(&template)
                .after(&bastion.subnet),
        );
    }
    if let Some(trail) = &account.trail {
        let group = at(Kind::LogGroup, "trail");
        let role = at(Kind::IamRole, "trail-logs");
        let bucket_address = at(Kind::Bucket, "trail");
        let alias = at(Kind::KmsAlias, "access");
        out.push(
            Resource::new(group.clone())
                .immutable("name", trail.log_group.clone())
                .attr("retention_days", trail.log_group_retention_days)
                .attr("kms_key", key.to_string())
                .after(&key),
        );
        out.push(bucket(&at, "trail", &trail.bucket, policy::trail_bucket_policy(&arns, trail), trail.retention_days));
        let trail_arn = arns.trail(&trail.name);
        out.push(
            Resource::new(role.clone())
                .immutable("name", trail_role_name(&model.stack))
                .immutable("path", ROLE_PATH)
                .attr("trust_policy", policy::trust_policy("cloudtrail.amazonaws.com", Some(&trail_arn)))
                .attr("managed_policies", json!([]))
                .attr("policy", policy::trail_logs_policy(&arns, trail))
                .after(&group),
        );
        out.push(
            Resource::new(at(Kind::Trail, "main"))
                .immutable("name", trail.name.clone())
                .attr("bucket", bucket_address.to_string())
                .attr("multi_region", trail.multi_region)
                .attr("log_file_validation", trail.log_file_validation)
                .attr("global_service_events", true)
                .attr("kms_key", alias.to_string())
                .attr("log_group", group.to_string())
                .attr("log_role", role.to_string())
                .attr("logging", true)
                .after(&bucket_address)
                .after(&alias)
                .after(&group)
                .after(&role),
        );
    }
    out
}

/// Every policy document among `resources` (IAM, key and bucket policies, trust policies):
/// the resource, the attribute holding it, and the document. The session preferences document
/// is not a policy and is left out.
pub fn policy_documents(resources: &[Resource]) -> Vec<(&Address, &'static str, &Value)> {
    resources
        .iter()
        .flat_map(|resource| {
            ["policy", "trust_policy", "document"].into_iter().filter_map(move |attribute| {
                let value = resource.attributes.get(attribute)?;
                value.get("Statement").is_some().then_some((&resource.address, attribute, value))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn model(bastion: bool, trail: bool) -> AccessModel {
        let mut spec = enclave_core::config::load_str(
            "spec.yaml",
            "organization: { name: acme, region: eu-west-1, stack: acme }\n\
             network: { azs: 2, tiers: [{ name: app, size: 20, slot: 0 }] }\n\
             accounts: [{ name: dev, id: \"111111111111\", environment: dev, vpc_cidr: 10.1.0.0/16 }]\n",
        )
        .expect("spec")
        .spec;
        spec.access.bastion.enabled = bastion;
        spec.audit.cloudtrail.enabled = trail;
        let placement = crate::model::Placement {
            account: "dev".into(),
            account_id: "111111111111".into(),
            vpc: "dev/net/vpc/main".parse().expect("address"),
            vpc_cidr: "10.1.0.0/16".into(),
            bastion_subnet: Some("dev/net/subnet/app-a".parse().expect("address")),
            image: crate::model::Image::Latest,
        };
        crate::model::build(&spec, &[placement])
    }

    #[test]
    fn every_attribute_is_updatable_or_immutable_and_every_kind_is_known() {
        for resource in desired(&model(true, true)) {
            let kind: Kind = resource.address.kind().parse().expect("an access kind");
            for attribute in resource.attributes.keys() {
                assert!(
                    kind.updatable().contains(&attribute.as_str()) || resource.replace_on.contains(attribute),
                    "{}: `{attribute}` is neither updatable nor immutable",
                    resource.address
                );
            }
        }
    }

    #[test]
    fn every_dependency_exists_in_access_or_is_a_network_resource() {
        let resources = desired(&model(true, true));
        let known: BTreeSet<String> = resources.iter().map(|r| r.address.to_string()).collect();
        for resource in &resources {
            for dependency in &resource.depends_on {
                assert!(
                    known.contains(&dependency.to_string()) || dependency.component() == "net",
                    "{} depends on unknown {dependency}",
                    resource.address
                );
            }
        }
        assert!(resources.iter().any(|r| r.depends_on.iter().any(|d| d.to_string() == "dev/net/subnet/app-a")));
    }

    #[test]
    fn what_is_disabled_is_not_built() {
        let kinds = |model: &AccessModel| -> BTreeSet<String> {
            desired(model).iter().map(|r| r.address.kind().to_owned()).collect()
        };
        let none = kinds(&model(false, false));
        assert!(!none.contains("instance") && !none.contains("trail"), "{none:?}");
        assert!(none.contains("ssm-document"), "the Session Manager baseline is on by default");
        let all = kinds(&model(true, true));
        assert!(all.contains("instance") && all.contains("trail"), "{all:?}");
    }
}

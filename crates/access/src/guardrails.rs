//! Access guardrails (`ACC001`...), over the desired resources of every domain: what makes the
//! platform reachable only through Session Manager and audited. They read resources by kind, so
//! a security group of the network opening SSH is caught as surely as one of ours; our own
//! builder produces no finding, and the rules are the executable statement of that.

use enclave_core::guardrail::{Hit, RuleSet, Severity};
use enclave_core::plan::Resource;
use serde_json::Value;

/// Every access rule, in id order.
pub fn rules() -> RuleSet<[Resource]> {
    RuleSet::default()
        .with(NoKeyPair)
        .with(NoPublicIp)
        .with(ImdsV2Required)
        .with(NoSshOrRdp)
        .with(TrailValidated)
        .with(TrailMultiRegion)
        .with(BucketPublicAccessBlocked)
        .with(NoWildcardPolicy)
}

macro_rules! rule {
    ($($rule:tt)*) => {
        enclave_core::guardrail_rule!(impl for [Resource], $($rule)*);
    };
}

fn of_kind<'a>(resources: &'a [Resource], kind: &'a str) -> impl Iterator<Item = &'a Resource> {
    resources.iter().filter(move |resource| resource.address.kind() == kind)
}

/// An attribute of an instance, or the same setting inside a launch template's `data`.
fn setting<'a>(resource: &'a Resource, instance: &str, template: &[&str]) -> Option<&'a Value> {
    match resource.address.kind() {
        "instance" => resource.attributes.get(instance),
        "launch-template" => template.iter().try_fold(resource.attributes.get("data")?, |value, key| value.get(key)),
        _ => None,
    }
}

fn machines(resources: &[Resource]) -> impl Iterator<Item = &Resource> {
    resources.iter().filter(|r| matches!(r.address.kind(), "instance" | "launch-template"))
}

rule!(
    NoKeyPair,
    "ACC001",
    None,
    Severity::High,
    "no instance or launch template names an SSH key pair",
    "remove the key pair; reach instances with `enclave access connect` (Session Manager)",
    |resources| {
        machines(resources)
            .filter(|r| setting(r, "key_name", &["key_name"]).is_some_and(|key| !key.is_null()))
            .map(|r| Hit::new(r.address.clone(), "names an SSH key pair"))
            .collect()
    }
);

rule!(
    NoPublicIp,
    "ACC002",
    Some("CKV_AWS_88"),
    Severity::Critical,
    "no instance has a public IP address",
    "launch in a private subnet without `associate_public_ip_address`",
    |resources| {
        machines(resources)
            .filter(|r| {
                setting(r, "public_ip", &["associate_public_ip_address"]).is_some_and(|v| v.as_bool() != Some(false))
            })
            .map(|r| Hit::new(r.address.clone(), "gets a public IP address"))
            .collect()
    }
);

rule!(
    ImdsV2Required,
    "ACC003",
    Some("CKV_AWS_79"),
    Severity::High,
    "every instance requires IMDSv2 tokens with a hop limit of 1",
    "set `http_tokens: required` and `http_put_response_hop_limit: 1`",
    |resources| {
        machines(resources)
            .filter(|r| {
                let tokens = setting(r, "http_tokens", &["metadata_options", "http_tokens"]);
                let hops =
                    setting(r, "http_put_response_hop_limit", &["metadata_options", "http_put_response_hop_limit"]);
                tokens.and_then(Value::as_str) != Some("required") || hops.and_then(Value::as_u64) != Some(1)
            })
            .map(|r| Hit::new(r.address.clone(), "allows IMDSv1 or more than one metadata hop"))
            .collect()
    }
);

/// Whether a rule string (`tcp/22 10.0.0.0/8`, `tcp/0-65535 ...`, `-1 ...`) admits `port`.
fn admits(rule: &str, port: u16) -> bool {
    let protocol_ports = rule.split_whitespace().next().unwrap_or_default();
    let (protocol, ports) = protocol_ports.split_once('/').unwrap_or((protocol_ports, ""));
    if protocol == "-1" || protocol == "all" {
        return true;
    }
    if protocol != "tcp" && protocol != "6" {
        return false;
    }
    let (from, to) = ports.split_once('-').unwrap_or((ports, ports));
    match (from.parse::<u16>(), to.parse::<u16>()) {
        (Ok(from), Ok(to)) => (from..=to).contains(&port),
        _ => true,
    }
}

rule!(
    NoSshOrRdp,
    "ACC004",
    Some("CKV_AWS_24"),
    Severity::Critical,
    "no security group admits SSH (22) or RDP (3389)",
    "remove the rule; Session Manager needs no inbound port",
    |resources| {
        resources
            .iter()
            .filter(|r| r.address.kind().ends_with("security-group"))
            .filter_map(|r| {
                let ingress = r.attributes.get("ingress")?.as_array()?;
                let open: Vec<&str> = ingress
                    .iter()
                    .filter_map(Value::as_str)
                    .filter(|rule| admits(rule, 22) || admits(rule, 3389))
                    .collect();
                (!open.is_empty()).then(|| Hit::new(r.address.clone(), "admits SSH or RDP"))
            })
            .collect()
    }
);

rule!(
    TrailValidated,
    "ACC005",
    Some("CKV_AWS_36"),
    Severity::High,
    "every trail validates its log files",
    "set `audit.cloudtrail.log_file_validation: true`",
    |resources| {
        of_kind(resources, "trail")
            .filter(|r| r.attributes.get("log_file_validation").and_then(Value::as_bool) != Some(true))
            .map(|r| Hit::new(r.address.clone(), "log file validation is off"))
            .collect()
    }
);

rule!(
    TrailMultiRegion,
    "ACC006",
    Some("CKV_AWS_67"),
    Severity::Medium,
    "every trail records every region",
    "set `audit.cloudtrail.multi_region: true`",
    |resources| {
        of_kind(resources, "trail")
            .filter(|r| r.attributes.get("multi_region").and_then(Value::as_bool) != Some(true))
            .map(|r| Hit::new(r.address.clone(), "records one region only"))
            .collect()
    }
);

rule!(
    BucketPublicAccessBlocked,
    "ACC007",
    Some("CKV2_AWS_6"),
    Severity::High,
    "every bucket blocks public access in all four ways",
    "set every public access block setting of the bucket to true",
    |resources| {
        of_kind(resources, "s3-bucket")
            .filter(|r| {
                let block = r.attributes.get("public_access_block");
                ["block_public_acls", "ignore_public_acls", "block_public_policy", "restrict_public_buckets"]
                    .iter()
                    .any(|setting| block.and_then(|b| b.get(setting)).and_then(Value::as_bool) != Some(true))
            })
            .map(|r| Hit::new(r.address.clone(), "does not block every kind of public access"))
            .collect()
    }
);

/// Actions we generate that AWS authorises per resource: `"Resource": "*"` with one of them is
/// always wider than needed.
const RESOURCE_LEVEL_PREFIXES: [&str; 5] = ["s3:", "logs:", "kms:", "ssm:", "secretsmanager:"];

fn strings(value: Option<&Value>) -> Vec<&str> {
    match value {
        Some(Value::String(text)) => vec![text.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// What is too wide in an identity policy `document`, if anything.
fn wildcard(document: &Value) -> Option<&'static str> {
    for statement in document.get("Statement").and_then(Value::as_array).into_iter().flatten() {
        if statement.get("Effect").and_then(Value::as_str) != Some("Allow") {
            continue;
        }
        let actions = strings(statement.get("Action"));
        if actions.iter().any(|action| *action == "*" || action.ends_with(":*")) {
            return Some("allows every action of a service");
        }
        let everywhere = strings(statement.get("Resource")).contains(&"*");
        // Describe and List calls of these services mostly have no resource-level permissions.
        let narrowable = |action: &&str| {
            RESOURCE_LEVEL_PREFIXES.iter().any(|p| action.starts_with(p))
                && !action
                    .split_once(':')
                    .is_some_and(|(_, name)| name.starts_with("Describe") || name.starts_with("List"))
        };
        if everywhere && actions.iter().any(narrowable) {
            return Some("allows on every resource what can be granted on one");
        }
    }
    None
}

rule!(
    NoWildcardPolicy,
    "ACC008",
    Some("CKV_AWS_355"),
    Severity::High,
    "IAM policies name their actions and resources, never `*` where a narrower one exists",
    "list the actions and the exact ARNs the principal needs",
    |resources| {
        resources
            .iter()
            .filter(|r| matches!(r.address.kind(), "iam-role" | "iam-policy"))
            .flat_map(|r| {
                ["policy", "document"]
                    .into_iter()
                    .filter_map(|attribute| wildcard(r.attributes.get(attribute)?))
                    .map(|why| Hit::new(r.address.clone(), why))
            })
            .collect()
    }
);

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn resource(address: &str) -> Resource {
        Resource::new(address.parse().expect("address"))
    }

    fn ids(resources: &[Resource]) -> Vec<String> {
        rules().run(resources).findings.into_iter().map(|f| format!("{} {}", f.rule, f.address)).collect()
    }

    #[test]
    fn rule_ids_are_unique() {
        let rules = rules();
        let infos = rules.infos();
        assert!(enclave_core::guardrail::duplicate_ids(infos.iter().map(|i| i.id)).is_empty());
    }

    #[test]
    fn each_rule_catches_what_it_names() {
        let resources = vec![
            resource("dev/access/instance/bastion")
                .attr("key_name", "ops")
                .attr("public_ip", true)
                .attr("http_tokens", "optional")
                .attr("http_put_response_hop_limit", 1),
            resource("dev/net/security-group/endpoints").attr("ingress", json!(["tcp/0-65535 10.0.0.0/8"])),
            resource("dev/access/security-group/rdp").attr("ingress", json!(["tcp/3389 10.1.0.0/16"])),
            resource("dev/access/security-group/https")
                .attr("ingress", json!(["tcp/443 10.1.0.0/16", "udp/22 10.0.0.0/8"])),
            resource("dev/access/trail/main").attr("multi_region", false).attr("log_file_validation", false),
            resource("dev/access/s3-bucket/logs").attr("public_access_block", json!({ "block_public_acls": true })),
            resource("dev/access/iam-role/wide").attr(
                "policy",
                json!({ "Statement": [{ "Effect": "Allow", "Action": "s3:PutObject", "Resource": "*" }] }),
            ),
            resource("dev/access/iam-policy/all").attr(
                "document",
                json!({ "Statement": [{ "Effect": "Allow", "Action": ["ec2:*"], "Resource": "arn:x" }] }),
            ),
        ];
        let mut found = ids(&resources);
        found.sort();
        assert_eq!(
            found,
            [
                "ACC001 dev/access/instance/bastion",
                "ACC002 dev/access/instance/bastion",
                "ACC003 dev/access/instance/bastion",
                "ACC004 dev/access/security-group/rdp",
                "ACC004 dev/net/security-group/endpoints",
                "ACC005 dev/access/trail/main",
                "ACC006 dev/access/trail/main",
                "ACC007 dev/access/s3-bucket/logs",
                "ACC008 dev/access/iam-policy/all",
                "ACC008 dev/access/iam-role/wide",
            ]
        );
    }
}

//! Cross-field validation of a deserialised [`Spec`]: what types alone cannot say.
//!
//! Every check returns [`Violation`]s with the field path; the loader turns paths into file,
//! line and column. Network layout checks that need the CIDR planner live in `enclave-net`.

use std::collections::HashMap;

use crate::config::suggestion;
use crate::error::Violation;
use crate::path;
use crate::region;
use crate::source::FieldPath;
use crate::spec::{Account, Destination, Name, NetworkSpec, SESSION_MANAGER_ENDPOINTS, Spec};

/// Retention periods CloudWatch Logs accepts, in days.
pub const LOG_RETENTION_DAYS: [u16; 22] =
    [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

/// Every cross-field problem in `spec`.
pub fn validate(spec: &Spec) -> Vec<Violation> {
    let mut violations = Vec::new();
    check_region(spec, &mut violations);
    check_accounts(spec, &mut violations);
    check_access(spec, &mut violations);
    check_clusters(spec, &mut violations);
    check_apps(spec, &mut violations);
    check_registry(spec, &mut violations);
    check_pipeline(spec, &mut violations);
    check_alerting(spec, &mut violations);
    violations
}

/// Where alerts go: receivers with exactly one channel, whose credentials are secrets of the
/// section; routes and the default naming receivers that exist and teams some app has.
fn check_alerting(spec: &Spec, violations: &mut Vec<Violation>) {
    let Some(alerting) = &spec.alerting else { return };
    let base = path!("alerting");
    duplicates(
        &alerting.receivers,
        |r| r.name.as_str(),
        |i| base.key("receivers").index(i).key("name"),
        "receiver",
        violations,
    );
    check_secret_list(&alerting.secrets, &base.key("secrets"), violations);
    for (index, secret) in alerting.secrets.iter().enumerate() {
        if secret.name.as_str() == crate::names::GRAFANA_ADMIN_SECRET {
            violations.push(Violation::new(
                base.key("secrets").index(index).key("name"),
                "this name is Grafana's generated admin password, kept beside the receivers' secrets",
            ));
        }
        if matches!(secret.source, crate::spec::SecretSource::Generate(_)) {
            violations.push(Violation::new(
                base.key("secrets").index(index).key("source").key("generate"),
                "a receiver's credential is the service's (a key, a webhook URL, a password): give it from `env` or `file`",
            ));
        }
    }
    let secret = |name: &Name, at: FieldPath, violations: &mut Vec<Violation>| match alerting
        .secrets
        .iter()
        .find(|s| &s.name == name)
    {
        None => violations.push(Violation::new(at, format!("no secret named `{name}` in `alerting.secrets`"))),
        Some(found) if found.keys_or_default().len() != 1 => violations.push(Violation::new(
            at,
            format!("secret `{name}` has several keys; a receiver reads one value (give it one key)"),
        )),
        Some(_) => {}
    };
    for (index, receiver) in alerting.receivers.iter().enumerate() {
        let at = base.key("receivers").index(index);
        let channels = [receiver.pagerduty.is_some(), receiver.slack.is_some(), receiver.email.is_some()];
        if channels.iter().filter(|set| **set).count() != 1 {
            violations.push(Violation::new(at.clone(), "give exactly one of `pagerduty`, `slack` and `email`"));
        }
        if let Some(pagerduty) = &receiver.pagerduty {
            secret(&pagerduty.routing_key_secret, at.key("pagerduty").key("routing_key_secret"), violations);
        }
        if let Some(slack) = &receiver.slack {
            secret(&slack.webhook_secret, at.key("slack").key("webhook_secret"), violations);
            let channel = slack.channel.as_str();
            if !(channel.starts_with('#') || channel.starts_with('@'))
                || channel.len() < 2
                || channel.contains(char::is_whitespace)
            {
                violations
                    .push(Violation::new(at.key("slack").key("channel"), "a Slack channel is `#name` (or `@user`)"));
            }
        }
        if let Some(email) = &receiver.email {
            for (field, address) in [("to", &email.to), ("from", &email.from)] {
                if address.split_once('@').is_none_or(|(user, host)| user.is_empty() || !host.contains('.')) {
                    violations.push(Violation::new(at.key("email").key(field), "not an e-mail address"));
                }
            }
            if email
                .smarthost
                .rsplit_once(':')
                .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
            {
                violations.push(Violation::new(at.key("email").key("smarthost"), "the relay is `host:port`"));
            }
            if let Some(password) = &email.password_secret {
                secret(password, at.key("email").key("password_secret"), violations);
                if email.username.is_none() {
                    violations.push(Violation::new(at.key("email").key("username"), "a password needs a `username`"));
                }
            }
        }
    }
    let receiver = |name: &Name, at: FieldPath, violations: &mut Vec<Violation>| {
        if !alerting.receivers.iter().any(|r| &r.name == name) {
            violations.push(Violation::new(at, format!("no receiver named `{name}`")));
        }
    };
    for (index, route) in alerting.routes.iter().enumerate() {
        let at = base.key("routes").index(index);
        receiver(&route.receiver, at.key("receiver"), violations);
        if let Some(team) = &route.team
            && !spec.apps.iter().any(|app| app.team.as_ref() == Some(team))
        {
            violations.push(Violation::new(
                at.key("team"),
                format!("no app has team `{team}` (`apps[].team`): the route would never match"),
            ));
        }
    }
    if let Some(default) = &alerting.default_receiver {
        receiver(default, base.key("default_receiver"), violations);
    }
    for (index, label) in alerting.group_by.iter().enumerate() {
        let valid = label.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            violations
                .push(Violation::new(base.key("group_by").index(index), "not a label name (`[a-zA-Z_][a-zA-Z0-9_]*`)"));
        }
    }
}

/// A cluster's add-ons: where the GitOps controller reads the rendered folder (no credentials in
/// the URL, a relative path), and sizes that make sense.
fn check_addons(spec: &Spec, index: usize, violations: &mut Vec<Violation>) {
    let addons = &spec.clusters[index].addons;
    let at = path!("clusters", index, "addons");
    duplicates(&addons.disabled, |a| a.as_str(), |i| at.key("disabled").index(i), "add-on", violations);
    if let Some(repository) = &addons.gitops.repository {
        let scheme = ["https://", "ssh://", "git@"].iter().find(|scheme| repository.starts_with(**scheme));
        match scheme {
            None => violations.push(Violation::new(
                at.key("gitops").key("repository"),
                "a Git repository URL (`https://`, `ssh://` or `git@host:path`)",
            )),
            Some(scheme) => {
                let rest = &repository[scheme.len()..];
                let authority = rest.split('/').next().unwrap_or_default();
                if *scheme != "git@" && authority.contains('@') {
                    violations.push(Violation::new(
                        at.key("gitops").key("repository"),
                        "no credentials in the URL (the GitOps controller's repository secret holds them)",
                    ));
                }
            }
        }
    }
    if let Some(folder) = &addons.gitops.path
        && (folder.is_empty() || folder.starts_with('/') || folder.split('/').any(|part| part == ".."))
    {
        violations.push(Violation::new(at.key("gitops").key("path"), "a relative path inside the repository"));
    }
    if addons.gitops.revision.trim().is_empty() {
        violations.push(Violation::new(at.key("gitops").key("revision"), "must not be empty"));
    }
    let sampling = addons.tracing.sampling_percent;
    if !(sampling > 0.0 && sampling <= 100.0) {
        violations.push(Violation::new(at.key("tracing").key("sampling_percent"), "a percentage above 0, at most 100"));
    }
    for (section, field, count) in [
        ("prometheus", "replicas", addons.prometheus.replicas),
        ("elasticsearch", "nodes", addons.elasticsearch.nodes),
        ("elasticsearch", "kibana_replicas", addons.elasticsearch.kibana_replicas),
    ] {
        if count == 0 {
            violations.push(Violation::new(at.key(section).key(field), "at least 1"));
        }
    }
}

fn check_pipeline(spec: &Spec, violations: &mut Vec<Violation>) {
    let Some(pipeline) = &spec.pipeline else { return };
    let part = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !pipeline.repository.split_once('/').is_some_and(|(owner, name)| part(owner) && part(name)) {
        violations.push(Violation::new(path!("pipeline", "repository"), "must be a GitHub repository `owner/name`"));
    }
    if !spec.clusters.iter().any(|cluster| cluster.name == pipeline.staging_cluster) {
        violations.push(Violation::new(
            path!("pipeline", "staging_cluster"),
            format!("no cluster named `{}`", pipeline.staging_cluster),
        ));
    }
    if spec.registry.is_none() {
        violations.push(Violation::new(path!("pipeline"), "needs a `registry` to push images to"));
    }
    // Commands become `run:` scripts: an expression there is evaluated before the shell sees it.
    let commands = [
        ("test", &pipeline.test),
        ("integration_test", &pipeline.integration_test),
        ("install_enclave", &pipeline.install_enclave),
        ("context", &pipeline.context),
        ("config", &pipeline.config),
        ("branch", &pipeline.branch),
    ];
    for (field, text) in commands {
        if text.trim().is_empty() {
            violations.push(Violation::new(path!("pipeline", field), "must not be empty"));
        } else if text.contains("${{") {
            violations.push(Violation::new(
                path!("pipeline", field),
                "must not hold a GitHub expression (`${{ }}`): workflows pass values through `env:` only",
            ));
        }
    }
    if pipeline.deploy_runner.is_empty() {
        violations.push(Violation::new(path!("pipeline", "deploy_runner"), "needs at least one runner label"));
    }
}

fn check_region(spec: &Spec, violations: &mut Vec<Violation>) {
    let code = spec.organization.region.as_str();
    if region::lookup(code).is_none() {
        let known: Vec<&str> = region::codes().collect();
        let hint = suggestion(code, &known).map(|best| format!(" (did you mean {best}?)")).unwrap_or_default();
        violations.push(Violation::new(path!("organization", "region"), format!("unknown region `{code}`{hint}")));
    }
}

/// Reports later duplicates of a key, naming the first occurrence.
fn duplicates<'a, T>(
    items: &'a [T],
    key: impl Fn(&'a T) -> &'a str,
    field: impl Fn(usize) -> FieldPath,
    what: &str,
    violations: &mut Vec<Violation>,
) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (index, item) in items.iter().enumerate() {
        let value = key(item);
        if let Some(first) = seen.get(value) {
            violations
                .push(Violation::new(field(index), format!("duplicate {what} `{value}` (also at index {first})")));
        } else {
            seen.insert(value, index);
        }
    }
}

fn check_accounts(spec: &Spec, violations: &mut Vec<Violation>) {
    if spec.accounts.is_empty() {
        violations.push(Violation::new(path!("accounts"), "at least one account is required"));
    }
    duplicates(&spec.accounts, |a| a.name.as_str(), |i| path!("accounts", i, "name"), "account name", violations);
    duplicates(&spec.accounts, |a| a.id.as_str(), |i| path!("accounts", i, "id"), "account id", violations);
    for (index, account) in spec.accounts.iter().enumerate() {
        let prefix = account.vpc_cidr.prefix_len();
        if !(16..=28).contains(&prefix) {
            violations.push(Violation::new(
                path!("accounts", index, "vpc_cidr"),
                format!("a VPC CIDR must be between /16 and /28, got /{prefix}"),
            ));
        }
        for other in spec.accounts.iter().take(index) {
            if account.vpc_cidr.overlaps(&other.vpc_cidr) {
                violations.push(Violation::new(
                    path!("accounts", index, "vpc_cidr"),
                    format!(
                        "{} overlaps account `{}` ({}); VPCs must not overlap so they can be peered or routed later",
                        account.vpc_cidr, other.name, other.vpc_cidr
                    ),
                ));
            }
        }
        check_network(spec, index, account, violations);
    }
}

fn check_network(spec: &Spec, index: usize, account: &Account, violations: &mut Vec<Violation>) {
    let network: &NetworkSpec = &account.network;
    let at = |field: &str| path!("accounts", index, "network", field);
    if network.azs == 0 {
        violations.push(Violation::new(at("azs"), "at least one availability zone is required"));
    }
    if let Some(region) = region::lookup(spec.organization.region.as_str())
        && usize::from(network.azs) > region.zone_count()
    {
        violations.push(Violation::new(
            at("azs"),
            format!("region {} has {} availability zones, {} requested", region.code, region.zone_count(), network.azs),
        ));
    }
    if !network.az_reserve.is_power_of_two() || network.az_reserve > 8 {
        violations.push(Violation::new(at("az_reserve"), format!("must be 1, 2, 4 or 8, got {}", network.az_reserve)));
    } else if network.azs > network.az_reserve {
        violations.push(Violation::new(
            at("az_reserve"),
            format!(
                "{} zones reserved per tier cannot hold the {} availability zones in use (az_reserve is fixed once the VPC exists)",
                network.az_reserve, network.azs
            ),
        ));
    }
    if network.tiers.is_empty() {
        violations.push(Violation::new(at("tiers"), "at least one subnet tier is required"));
    }
    duplicates(
        &network.tiers,
        |t| t.name.as_str(),
        |i| path!("accounts", index, "network", "tiers", i, "name"),
        "tier name",
        violations,
    );
    if network.tiers.iter().any(|tier| tier.name.as_str() == "egress") {
        let position = network.tiers.iter().position(|tier| tier.name.as_str() == "egress").unwrap_or_default();
        violations.push(Violation::new(
            path!("accounts", index, "network", "tiers", position, "name"),
            "`egress` is reserved for the NAT egress subnets",
        ));
    }
    let tier_exists = |name: &str| network.tiers.iter().any(|tier| tier.name.as_str() == name);
    if let Some(tier) = &network.endpoints.subnet_tier
        && !tier_exists(tier.as_str())
    {
        violations.push(Violation::new(
            path!("accounts", index, "network", "endpoints", "subnet_tier"),
            format!("no tier named `{tier}` in this account"),
        ));
    }
    duplicates(
        &network.endpoints.interface,
        |s| s.as_str(),
        |i| path!("accounts", index, "network", "endpoints", "interface", i),
        "interface endpoint",
        violations,
    );
    let mut gateways = network.endpoints.gateway.clone();
    gateways.sort();
    if gateways.windows(2).any(|pair| pair[0] == pair[1]) {
        violations.push(Violation::new(
            path!("accounts", index, "network", "endpoints", "gateway"),
            "duplicate gateway endpoint",
        ));
    }
    let required = required_interface_endpoints(spec, account);
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|required| !network.endpoints.interface.iter().any(|service| service.as_str() == *required))
        .collect();
    if !missing.is_empty() {
        violations.push(Violation::new(
            path!("accounts", index, "network", "endpoints", "interface"),
            format!(
                "missing interface endpoints this account needs: {} ({})",
                missing.join(", "),
                why_required(spec, account)
            ),
        ));
    }
    if network.nat == crate::spec::NatMode::None
        && spec.clusters.iter().any(|cluster| cluster.account == account.name)
        && !network.endpoints.gateway.contains(&crate::spec::GatewayService::S3)
    {
        violations.push(Violation::new(
            path!("accounts", index, "network", "endpoints", "gateway"),
            "an EKS cluster without NAT pulls image layers from S3: the s3 gateway endpoint is required",
        ));
    }
    if network.flow_logs.enabled && network.flow_logs.destination == crate::spec::FlowLogDestination::S3 {
        violations.push(Violation::new(
            path!("accounts", index, "network", "flow_logs", "destination"),
            "flow logs to s3 are not built yet (no bucket, policy or delivery): use cloud-watch-logs",
        ));
    }
    if network.flow_logs.enabled && !LOG_RETENTION_DAYS.contains(&network.flow_logs.retention_days) {
        violations.push(Violation::new(
            path!("accounts", index, "network", "flow_logs", "retention_days"),
            format!(
                "CloudWatch Logs does not accept {} days; pick one of {}",
                network.flow_logs.retention_days,
                LOG_RETENTION_DAYS.map(|d| d.to_string()).join(", ")
            ),
        ));
    }
    if spec.access.bastion.enabled
        && let Some(tier) = &spec.access.bastion.tier
        && !tier_exists(tier.as_str())
    {
        violations.push(Violation::new(
            path!("access", "bastion", "tier"),
            format!("no tier named `{tier}` in account `{}`", account.name),
        ));
    }
}

/// Interface endpoints EKS nodes need when the VPC has no internet egress.
pub const PRIVATE_CLUSTER_ENDPOINTS: [&str; 5] = ["ec2", "ecr.api", "ecr.dkr", "sts", "logs"];

/// The interface endpoints an account cannot work without: Session Manager's (when enabled)
/// and, in a VPC without NAT that hosts a cluster, what nodes and the Cluster Autoscaler call.
pub fn required_interface_endpoints(spec: &Spec, account: &Account) -> Vec<&'static str> {
    let mut required = Vec::new();
    if spec.access.session_manager.enabled {
        required.extend(SESSION_MANAGER_ENDPOINTS);
    }
    if account.network.nat == crate::spec::NatMode::None {
        let clusters: Vec<_> = spec.clusters.iter().filter(|cluster| cluster.account == account.name).collect();
        if !clusters.is_empty() {
            required.extend(PRIVATE_CLUSTER_ENDPOINTS);
        }
        if clusters.iter().any(|cluster| cluster.autoscaler.enabled) {
            required.push("autoscaling");
        }
    }
    required
}

fn why_required(spec: &Spec, account: &Account) -> &'static str {
    if account.network.nat == crate::spec::NatMode::None && spec.clusters.iter().any(|c| c.account == account.name) {
        "Session Manager, and EKS without NAT"
    } else {
        "Session Manager in a private VPC"
    }
}

/// The longest trail retention accepted: ten years, the longest any audit regime we know asks.
pub const MAX_TRAIL_RETENTION_DAYS: u16 = 3653;

fn check_access(spec: &Spec, violations: &mut Vec<Violation>) {
    let minutes = spec.access.session_manager.idle_timeout_minutes;
    if !(1..=60).contains(&minutes) {
        violations.push(Violation::new(
            path!("access", "session_manager", "idle_timeout_minutes"),
            format!("must be between 1 and 60 minutes, got {minutes}"),
        ));
    }
    let session = &spec.access.session_manager;
    if session.enabled && !LOG_RETENTION_DAYS.contains(&session.log_retention_days) {
        violations.push(Violation::new(
            path!("access", "session_manager", "log_retention_days"),
            format!(
                "CloudWatch Logs does not accept {} days; pick one of {}",
                session.log_retention_days,
                LOG_RETENTION_DAYS.map(|d| d.to_string()).join(", ")
            ),
        ));
    }
    let bastion = &spec.access.bastion;
    if bastion.enabled && !session.enabled {
        violations.push(Violation::new(
            path!("access", "bastion", "enabled"),
            "a bastion is reached only through Session Manager: enable `access.session_manager` too",
        ));
    }
    if let Some(ami) = &bastion.ami
        && !(ami.strip_prefix("ami-").is_some_and(|hex| {
            (8..=17).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        }))
    {
        violations
            .push(Violation::new(path!("access", "bastion", "ami"), "not an image id like `ami-0123456789abcdef0`"));
    }
    let instance_type = bastion.instance_type.as_str();
    if !instance_type.split_once('.').is_some_and(|(family, size)| {
        !family.is_empty()
            && !size.is_empty()
            && family.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && size.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    }) {
        violations.push(Violation::new(
            path!("access", "bastion", "instance_type"),
            "not an EC2 instance type like `t3.micro`",
        ));
    }
    let trail = &spec.audit.cloudtrail;
    if trail.enabled && !(1..=MAX_TRAIL_RETENTION_DAYS).contains(&trail.retention_days) {
        violations.push(Violation::new(
            path!("audit", "cloudtrail", "retention_days"),
            format!("must be between 1 and {MAX_TRAIL_RETENTION_DAYS} days (ten years), got {}", trail.retention_days),
        ));
    }
}

/// The oldest Kubernetes minor version EKS still runs: 1.32, as of 2026-11-30 (1.31's extended
/// support ended on 2026-11-26; each version gets 14 months of standard and 12 of extended
/// support). Raise it as versions leave extended support.
pub const EKS_OLDEST_MINOR: u32 = 32;

fn check_clusters(spec: &Spec, violations: &mut Vec<Violation>) {
    duplicates(&spec.clusters, |c| c.name.as_str(), |i| path!("clusters", i, "name"), "cluster name", violations);
    for (index, cluster) in spec.clusters.iter().enumerate() {
        check_addons(spec, index, violations);
        let account = spec.account(cluster.account.as_str());
        if account.is_none() {
            violations.push(Violation::new(
                path!("clusters", index, "account"),
                format!("no account named `{}`", cluster.account),
            ));
        }
        let version_ok = cluster
            .version
            .strip_prefix("1.")
            .is_some_and(|minor| !minor.is_empty() && minor.len() <= 2 && minor.bytes().all(|b| b.is_ascii_digit()));
        if !version_ok {
            violations.push(Violation::new(
                path!("clusters", index, "version"),
                "not a Kubernetes minor version like `1.33`".to_owned(),
            ));
        } else if cluster.version.strip_prefix("1.").and_then(|minor| minor.parse::<u32>().ok())
            < Some(EKS_OLDEST_MINOR)
        {
            violations.push(Violation::new(
                path!("clusters", index, "version"),
                format!(
                    "below the oldest version EKS still runs (1.{EKS_OLDEST_MINOR}, in extended support); \
                     choose 1.{EKS_OLDEST_MINOR} or newer"
                ),
            ));
        }
        if let (Some(account), Some(tier)) = (account, &cluster.tier)
            && !account.network.tiers.iter().any(|candidate| &candidate.name == tier)
        {
            violations.push(Violation::new(
                path!("clusters", index, "tier"),
                format!("no tier named `{tier}` in account `{}`", account.name),
            ));
        }
        duplicates(
            &cluster.access,
            |a| a.role.as_str(),
            |i| path!("clusters", index, "access", i, "role"),
            "access role",
            violations,
        );
        for (access_index, access) in cluster.access.iter().enumerate() {
            if access.policy == crate::spec::AccessPolicy::ClusterAdmin && !access.namespaces.is_empty() {
                violations.push(Violation::new(
                    path!("clusters", index, "access", access_index, "namespaces"),
                    "cluster-admin is cluster-wide; give `admin`, `edit` or `view` to limit a role to namespaces"
                        .to_owned(),
                ));
            }
        }
        duplicates(
            &cluster.node_groups,
            |g| g.name.as_str(),
            |i| path!("clusters", index, "node_groups", i, "name"),
            "node group",
            violations,
        );
        for (group_index, group) in cluster.node_groups.iter().enumerate() {
            let at = |field: &str| path!("clusters", index, "node_groups", group_index, field);
            if group.instance_types.is_empty() {
                violations.push(Violation::new(at("instance_types"), "at least one instance type is required"));
            }
            if let (Some(account), Some(tier)) = (account, &group.tier)
                && !account.network.tiers.iter().any(|candidate| &candidate.name == tier)
            {
                violations
                    .push(Violation::new(at("tier"), format!("no tier named `{tier}` in account `{}`", account.name)));
            }
            if group.max == 0 {
                violations.push(Violation::new(at("max"), "must be at least 1"));
            }
            if group.min > group.max {
                violations.push(Violation::new(at("min"), format!("min {} is above max {}", group.min, group.max)));
            } else if !(group.min..=group.max).contains(&group.desired) {
                violations.push(Violation::new(
                    at("desired"),
                    format!("desired {} is outside min {} and max {}", group.desired, group.min, group.max),
                ));
            }
        }
    }
}

fn check_apps(spec: &Spec, violations: &mut Vec<Violation>) {
    duplicates(&spec.apps, |a| a.name.as_str(), |i| path!("apps", i, "name"), "app name", violations);
    for (index, app) in spec.apps.iter().enumerate() {
        if !spec.clusters.iter().any(|cluster| cluster.name == app.cluster) {
            violations
                .push(Violation::new(path!("apps", index, "cluster"), format!("no cluster named `{}`", app.cluster)));
        }
        let image = app.image.as_str();
        let last = image.rsplit('/').next().unwrap_or(image);
        let pinned = image.contains("@sha256:")
            || last.split_once(':').is_some_and(|(_, tag)| !tag.is_empty() && tag != "latest");
        if !pinned {
            violations.push(Violation::new(
                path!("apps", index, "image"),
                "the image must carry a tag other than `latest` or a digest, so a deploy is reproducible".to_owned(),
            ));
        }
        if app.port == 0 {
            violations.push(Violation::new(path!("apps", index, "port"), "port 0 is not a valid container port"));
        }
        if crate::spec::Addon::ALL.iter().any(|addon| addon.namespaces().contains(&app.namespace().as_str())) {
            violations.push(Violation::new(
                path!("apps", index, "namespace"),
                format!(
                    "`{}` is an add-on's namespace (its admission exceptions would apply to the app)",
                    app.namespace()
                ),
            ));
        }
        let mesh = spec.clusters.iter().find(|c| c.name == app.cluster).and_then(|c| c.mesh.as_ref());
        if mesh.is_some_and(|mesh| &mesh.root_namespace == app.namespace()) {
            violations.push(Violation::new(
                path!("apps", index, "namespace"),
                "the mesh's root namespace holds mesh-wide policy, not apps (admission policy skips it)",
            ));
        }
        check_calls(spec, index, violations);
        check_secrets(spec, index, violations);
        check_rollout(spec, index, violations);
        check_resilience(spec, index, violations);
    }
    check_secret_namespaces(spec, violations);
}

/// Whether `name` is a portable environment variable name (`[A-Za-z_][A-Za-z0-9_]*`).
fn env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// An app's secrets: where values come from (never the spec itself), the keys its container
/// sees, rotation and recovery bounds. Messages name fields, never values.
fn check_secrets(spec: &Spec, index: usize, violations: &mut Vec<Violation>) {
    check_secret_list(&spec.apps[index].secrets, &path!("apps", index, "secrets"), violations);
}

/// A list of secrets at `base` (an app's, or the alert receivers').
fn check_secret_list(secrets: &[crate::spec::SecretSpec], base: &FieldPath, violations: &mut Vec<Violation>) {
    use crate::spec::SecretSource;
    duplicates(secrets, |s| s.name.as_str(), |i| base.index(i).key("name"), "secret", violations);
    for (secret_index, secret) in secrets.iter().enumerate() {
        let mut keys: HashMap<String, usize> = HashMap::new();
        let item = base.index(secret_index);
        let at = |field: &str| item.key(field);
        if secret.literal.is_some() {
            violations.push(Violation::new(
                at("value"),
                "a secret's value never goes in the spec (it would be kept in git and shown in reviews); \
                 give a `source`: `generate`, `env` (a variable's name) or `file` (a path)",
            ));
        }
        match &secret.source {
            SecretSource::Generate(generate) if !(16..=4096).contains(&generate.length) => {
                violations.push(Violation::new(item.key("source").key("generate").key("length"), {
                    "a generated value has 16 to 4096 characters".to_owned()
                }))
            }
            SecretSource::Env(variable) if !env_name(variable) => violations.push(Violation::new(
                item.key("source").key("env"),
                "not an environment variable name (`[A-Za-z_][A-Za-z0-9_]*`)",
            )),
            SecretSource::File(file) if file.trim().is_empty() => {
                violations.push(Violation::new(item.key("source").key("file"), "the path is empty"))
            }
            SecretSource::Generate(_) | SecretSource::Env(_) | SecretSource::File(_) => {}
        }
        for (key_index, key) in secret.keys_or_default().iter().enumerate() {
            let key_at = item.key("keys").index(key_index).key("key");
            let valid = !key.key.is_empty()
                && key.key.len() <= 253
                && !matches!(key.key.as_str(), "." | "..")
                && key.key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !valid {
                violations.push(Violation::new(
                    key_at.clone(),
                    "not a Secret key (`[-._a-zA-Z0-9]+`, at most 253 characters, not `.` or `..`)",
                ));
            }
            if let Some(first) = keys.get(&key.key) {
                violations.push(Violation::new(
                    key_at.clone(),
                    format!("duplicate key `{}` (also at index {first})", key.key),
                ));
            } else {
                keys.insert(key.key.clone(), key_index);
            }
            if key.property.is_some() && matches!(secret.source, SecretSource::Generate(_)) {
                violations.push(Violation::new(
                    item.key("keys").index(key_index).key("property"),
                    "a generated value is one string, without properties",
                ));
            }
        }
        if let Some(rotation) = &secret.rotation {
            if !(1..=1000).contains(&rotation.days) {
                violations.push(Violation::new(item.key("rotation").key("days"), "rotation takes 1 to 1000 days"));
            }
            if let Some(lambda) = &rotation.lambda {
                let parts: Vec<&str> = lambda.split(':').collect();
                let valid = parts.len() == 7
                    && parts[0] == "arn"
                    && parts[2] == "lambda"
                    && parts[4].len() == 12
                    && parts[4].chars().all(|c| c.is_ascii_digit())
                    && parts[5] == "function"
                    && !parts[6].is_empty();
                if !valid {
                    violations.push(Violation::new(
                        item.key("rotation").key("lambda"),
                        "not a Lambda function ARN (`arn:aws:lambda:<region>:<account>:function:<name>`)",
                    ));
                }
            }
        }
        if !(7..=30).contains(&secret.recovery_days) {
            violations.push(Violation::new(at("recovery_days"), "Secrets Manager keeps a deleted secret 7 to 30 days"));
        }
        if secret.refresh.seconds() < 60 {
            violations.push(Violation::new(at("refresh"), "refresh at most once a minute (`1m` or more)"));
        }
    }
}

/// An app's rollout analysis, with Argo's own bounds: measured at least once, at least a second
/// apart, and able to reach its limits within its count.
fn check_rollout(spec: &Spec, index: usize, violations: &mut Vec<Violation>) {
    let analysis = &spec.apps[index].rollout.analysis;
    let at = |field: &str| path!("apps", index, "rollout", "analysis", field);
    if analysis.count == 0 {
        violations.push(Violation::new(at("count"), "an analysis measures at least once"));
    }
    if analysis.interval.seconds() == 0 {
        violations.push(Violation::new(at("interval"), "measurements are at least 1s apart"));
    }
    if analysis.failure_limit >= analysis.count {
        violations.push(Violation::new(
            at("failure_limit"),
            format!(
                "with {} measurements a failure limit of {} can never fail the analysis",
                analysis.count, analysis.failure_limit
            ),
        ));
    }
    if analysis.inconclusive_limit > analysis.count {
        violations.push(Violation::new(at("inconclusive_limit"), "the limit exceeds the measurements"));
    }
}

/// The mesh's bounds on calls to an app: retries within the app's budget, each attempt able to
/// finish within the call's timeout, ejection shares that are percentages.
fn check_resilience(spec: &Spec, index: usize, violations: &mut Vec<Violation>) {
    let resilience = &spec.apps[index].resilience;
    let at = |fields: &[&str]| {
        let mut path = path!("apps", index, "resilience");
        for field in fields {
            path = path.key(*field);
        }
        path
    };
    let retries = &resilience.retries;
    if retries.attempts > resilience.retry_budget {
        violations.push(Violation::new(
            at(&["retry_budget"]),
            format!(
                "a retry budget of {} is below the mesh's {} retries (`retries.attempts`): raise the budget or \
                 retry less",
                resilience.retry_budget, retries.attempts
            ),
        ));
    }
    if retries.attempts > 0 && retries.retry_on.is_empty() {
        violations.push(Violation::new(at(&["retries", "retry_on"]), "retries need at least one condition"));
    }
    if retries.per_try_timeout.seconds() == 0 {
        violations.push(Violation::new(at(&["retries", "per_try_timeout"]), "an attempt needs at least 1s"));
    } else if retries.per_try_timeout > resilience.timeout {
        violations.push(Violation::new(
            at(&["retries", "per_try_timeout"]),
            format!(
                "an attempt of up to {} cannot fit in the call's timeout of {}",
                retries.per_try_timeout, resilience.timeout
            ),
        ));
    }
    let outlier = &resilience.outlier_detection;
    if !(1..=100).contains(&outlier.max_ejection_percent) {
        violations
            .push(Violation::new(at(&["outlier_detection", "max_ejection_percent"]), "a percentage from 1 to 100"));
    }
    if outlier.consecutive_5xx == 0 {
        violations
            .push(Violation::new(at(&["outlier_detection", "consecutive_5xx"]), "at least 1 error before an ejection"));
    }
    if resilience.connection_pool.max_connections == 0 {
        violations.push(Violation::new(at(&["connection_pool", "max_connections"]), "at least 1 connection"));
    }
}

/// Whether `path` is one Istio matches: `/exact`, `/prefix*` or `*suffix` (a lone `*` is "any
/// path", which an empty list already says).
fn mesh_path(path: &str) -> bool {
    let plain = |text: &str| !text.is_empty() && !text.contains('*') && !text.chars().any(char::is_whitespace);
    if let Some(prefix) = path.strip_suffix('*') {
        plain(prefix) && prefix.starts_with('/')
    } else if let Some(suffix) = path.strip_prefix('*') {
        plain(suffix)
    } else {
        plain(path) && path.starts_with('/')
    }
}

/// The External Secrets Operator reads an app's secrets as a service account of its namespace:
/// two apps with secrets in one namespace would read each other's.
fn check_secret_namespaces(spec: &Spec, violations: &mut Vec<Violation>) {
    let mut seen: HashMap<(&str, &str), &Name> = HashMap::new();
    for (index, app) in spec.apps.iter().enumerate() {
        if app.secrets.is_empty() {
            continue;
        }
        let key = (app.cluster.as_str(), app.namespace().as_str());
        if let Some(first) = seen.get(&key) {
            violations.push(Violation::new(
                path!("apps", index, "namespace"),
                format!(
                    "`{first}` also keeps secrets in namespace `{}`: apps with secrets each need their own \
                     namespace, or each could read the other's",
                    app.namespace()
                ),
            ));
        } else {
            seen.insert(key, &app.name);
        }
    }
}

/// Callers and dependencies: the edges the NetworkPolicies (and the mesh) allow, so each must
/// name something that exists, in reach, with both ends agreeing.
fn check_calls(spec: &Spec, index: usize, violations: &mut Vec<Violation>) {
    let app = &spec.apps[index];
    let peer = |name: &Name| spec.apps.iter().find(|other| &other.name == name);
    duplicates(&app.callers, |c| c.app.as_str(), |i| path!("apps", index, "callers", i, "app"), "caller", violations);
    for (caller_index, caller) in app.callers.iter().enumerate() {
        for (path_index, path) in caller.paths.iter().enumerate() {
            if !mesh_path(path) {
                violations.push(Violation::new(
                    path!("apps", index, "callers", caller_index, "paths", path_index),
                    "not a path Istio matches: `/exact`, `/prefix/*` or `*/suffix`",
                ));
            }
        }
        let at = path!("apps", index, "callers", caller_index, "app");
        match peer(&caller.app) {
            None => violations.push(Violation::new(at, format!("no app named `{}`", caller.app))),
            Some(other) if other.name == app.name => {
                violations.push(Violation::new(at, "an app does not list itself as a caller".to_owned()));
            }
            Some(other) if other.cluster != app.cluster => violations.push(Violation::new(
                at,
                format!(
                    "`{}` runs on cluster `{}`, not `{}`: callers share the cluster",
                    other.name, other.cluster, app.cluster
                ),
            )),
            Some(_) => {}
        }
    }
    let account = spec
        .clusters
        .iter()
        .find(|cluster| cluster.name == app.cluster)
        .and_then(|cluster| spec.account(cluster.account.as_str()));
    for (dep_index, dependency) in app.monitoring.dependencies.iter().enumerate() {
        let at = |field: &str| path!("apps", index, "monitoring", "dependencies", dep_index, field);
        if dependency.port == Some(0) {
            violations.push(Violation::new(at("port"), "port 0 is not a valid port"));
        }
        match &dependency.to {
            None => violations.push(Violation::new(
                at("name"),
                format!(
                    "dependency `{}` needs `to:` (an app, a tier or a CIDR) and a port: pods may only reach what is declared",
                    dependency.name
                ),
            )),
            Some(Destination::App(name)) => match peer(name) {
                None => violations.push(Violation::new(at("to"), format!("no app named `{name}`"))),
                Some(other) if other.name == app.name => {
                    violations.push(Violation::new(at("to"), "an app does not depend on itself".to_owned()));
                }
                Some(other) if other.cluster != app.cluster => violations.push(Violation::new(
                    at("to"),
                    format!("`{}` runs on cluster `{}`, not `{}`", other.name, other.cluster, app.cluster),
                )),
                Some(other) => {
                    if !other.callers.iter().any(|caller| caller.app == app.name) {
                        violations.push(Violation::new(
                            at("to"),
                            format!(
                                "`{}` does not list `{}` among its callers; add it there, so its ingress allows the call",
                                other.name, app.name
                            ),
                        ));
                    }
                    if dependency.port.is_some_and(|port| port != other.port) {
                        violations.push(Violation::new(
                            at("port"),
                            format!("`{}` serves only its traffic port {}", other.name, other.port),
                        ));
                    }
                }
            },
            Some(Destination::Tier(tier)) => {
                if let Some(account) = account
                    && !account.network.tiers.iter().any(|candidate| &candidate.name == tier)
                {
                    violations.push(Violation::new(
                        at("to"),
                        format!("no tier named `{tier}` in account `{}`", account.name),
                    ));
                }
                if dependency.port.is_none() {
                    violations.push(Violation::new(at("to"), "a tier or CIDR destination needs a `port`".to_owned()));
                }
            }
            Some(Destination::Cidr(_)) => {
                if dependency.port.is_none() {
                    violations.push(Violation::new(at("to"), "a tier or CIDR destination needs a `port`".to_owned()));
                }
            }
        }
    }
}

fn check_registry(spec: &Spec, violations: &mut Vec<Violation>) {
    let Some(registry) = &spec.registry else { return };
    if spec.account(registry.account.as_str()).is_none() {
        violations
            .push(Violation::new(path!("registry", "account"), format!("no account named `{}`", registry.account)));
    }
    if registry.keep_tagged == 0 {
        violations.push(Violation::new(path!("registry", "keep_tagged"), "must keep at least 1 tagged image"));
    }
    if registry.untagged_expire_days == 0 {
        violations.push(Violation::new(path!("registry", "untagged_expire_days"), "must be at least 1 day"));
    }
}

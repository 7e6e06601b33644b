//! Access against a real moto server (issue 12's "must hold" list): apply the reference platform
//! (net + access, 3 accounts) and check what exists in each account, converge (empty re-plan, no
//! mutating call on re-apply), detect and repair each hand change, destroy only what is ours
//! (decoys survive, only our buckets are emptied), keep reads flat as subnets grow, survive
//! seeded kill points without duplicates, and print the Session Manager command.
//!
//! Every test starts its own moto on a free loopback port; they are ignored (with a reason) so
//! that a plain `cargo test` needs nothing installed.

mod common;

use common::{applied, enclave, json_of, mutating, reference_dir, seeded};

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use enclave::cloud::{Cloud, CloudOptions};
use enclave::platform::Domain;
use enclave_access::clients::Clients;
use enclave_aws::moto::MotoServer;
use enclave_aws::{Aws, AwsOptions};
use enclave_core::reconcile::Quiet;
use serde_json::{Value, json};

const ROLE: &str = "OrganizationAccountAccessRole";
const STACK: &str = "acme-platform";
const ACCOUNTS: [(&str, &str); 3] = [("dev", "111111111111"), ("test", "222222222222"), ("prod", "333333333333")];

/// The access clients of a member account, straight to moto.
async fn clients(moto: &MotoServer, account_id: &str) -> Clients {
    let aws =
        Aws::from_config(moto.sdk_config("eu-west-1"), AwsOptions::new("eu-west-1", ROLE).endpoint(moto.endpoint()));
    let config = aws.account(account_id).await.expect("assume");
    Clients::new(&config, &aws.counter())
}

fn tag<'a>(tags: &'a [aws_sdk_ec2::types::Tag], key: &str) -> Option<&'a str> {
    tags.iter().find(|t| t.key() == Some(key)).and_then(|t| t.value())
}

/// Live (not terminated) instances of an account, any owner.
async fn instances(clients: &Clients) -> Vec<aws_sdk_ec2::types::Instance> {
    let out = clients.ec2.describe_instances().send().await.expect("instances");
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter(|i| {
            i.state().and_then(|s| s.name()).is_some_and(|n| !matches!(n.as_str(), "terminated" | "shutting-down"))
        })
        .cloned()
        .collect()
}

/// What could be duplicated in an account, counted without looking at tags.
#[derive(Debug, PartialEq, Eq)]
struct Inventory {
    instances: usize,
    trails: usize,
    keys: usize,
    buckets: usize,
    templates: usize,
}

async fn inventory(clients: &Clients) -> Inventory {
    let trails = clients.cloudtrail.describe_trails().send().await.expect("trails");
    let keys = clients.kms.list_keys().send().await.expect("keys");
    let mut live_keys = 0;
    for key in keys.keys() {
        let described = clients.kms.describe_key().key_id(key.key_id().unwrap_or_default()).send().await.expect("key");
        let metadata = described.key_metadata();
        let state = metadata.and_then(|m| m.key_state()).map(|s| s.as_str().to_owned());
        // moto makes its own default EBS key for encrypted volumes; ours say "enclave".
        let ours = metadata.and_then(|m| m.description()).is_some_and(|d| d.starts_with("enclave "));
        if ours && state.as_deref() != Some("PendingDeletion") {
            live_keys += 1;
        }
    }
    let buckets = clients.s3.list_buckets().send().await.expect("buckets");
    let templates = clients.ec2.describe_launch_templates().send().await.expect("templates");
    Inventory {
        instances: instances(clients).await.len(),
        trails: trails.trail_list().len(),
        keys: live_keys,
        buckets: buckets.buckets().iter().filter(|b| b.name().is_some_and(|n| n.starts_with(STACK))).count(),
        // The bastion's; the clusters' node templates are deploy's.
        templates: templates
            .launch_templates()
            .iter()
            .filter(|t| t.launch_template_name().is_some_and(|n| n.ends_with("-bastion")))
            .count(),
    }
}

async fn assert_no_duplicates(moto: &MotoServer) {
    for (name, id) in ACCOUNTS {
        let found = inventory(&clients(moto, id).await).await;
        assert_eq!(
            found,
            Inventory { instances: 1, trails: 1, keys: 1, buckets: 2, templates: 1 },
            "{name}: exactly one bastion, trail, key and template, and two buckets"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto_server; cargo xtask test installs it and runs this with --ignored"]
async fn reference_access_is_applied_as_specified_converges_and_drift_is_repaired() {
    let moto = MotoServer::start().expect("moto");
    let dir = reference_dir();
    let first = json_of(&["apply", "-c", &dir, "--yes"], moto.endpoint());
    assert_eq!(
        first["summary"]["create"], 224,
        "137 network, 45 access, 25 deploy and 17 secrets resources (the apps' 7; per cluster the monitoring \
         stack's four secrets and its role)"
    );
    assert_eq!(first["domains"], json!(["net", "access", "deploy", "secrets"]));

    for (name, id) in ACCOUNTS {
        let clients = clients(&moto, id).await;
        // One running bastion in an app-tier subnet: IMDSv2, no key, no public IP, a profile,
        // a group without ingress.
        let live = instances(&clients).await;
        assert_eq!(live.len(), 1, "{name}: one instance");
        let bastion = &live[0];
        assert_eq!(tag(bastion.tags(), "enclave:address"), Some(format!("{name}/access/instance/bastion").as_str()));
        let metadata = bastion.metadata_options().expect("metadata options");
        assert_eq!(metadata.http_tokens().map(|t| t.as_str()), Some("required"), "{name}: IMDSv2");
        assert_eq!(metadata.http_put_response_hop_limit(), Some(1));
        assert!(bastion.key_name().is_none(), "{name}: no key pair");
        assert!(bastion.public_ip_address().is_none(), "{name}: no public IP");
        assert!(
            bastion
                .iam_instance_profile()
                .and_then(|p| p.arn())
                .is_some_and(|a| a.ends_with("acme-platform-ssm-instance"))
        );
        let subnet = clients
            .ec2
            .describe_subnets()
            .subnet_ids(bastion.subnet_id().expect("subnet"))
            .send()
            .await
            .expect("subnet");
        assert_eq!(tag(subnet.subnets()[0].tags(), "enclave:tier"), Some("app"), "{name}: the app tier");
        let groups = clients
            .ec2
            .describe_security_groups()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("tag:enclave:address")
                    .values(format!("{name}/access/security-group/bastion"))
                    .build(),
            )
            .send()
            .await
            .expect("group");
        let group = &groups.security_groups()[0];
        assert!(group.ip_permissions().is_empty(), "{name}: no inbound rule");
        let egress: Vec<String> =
            group.ip_permissions_egress().iter().flat_map(enclave_aws::reconcile::rule_strings).collect();
        assert_eq!(egress.len(), 1, "{name}: one outbound rule");
        assert!(egress[0].starts_with("tcp/443 10."), "{name}: HTTPS to the VPC only: {egress:?}");

        // The session document: idle timeout, KMS, both log destinations.
        let document = clients.ssm.get_document().name("SSM-SessionManagerRunShell").send().await.expect("document");
        assert_eq!(document.document_type().map(|t| t.as_str()), Some("Session"));
        let content: Value = serde_json::from_str(document.content().expect("content")).expect("json");
        let inputs = &content["inputs"];
        assert_eq!(inputs["idleSessionTimeout"], "20", "{name}: the spec's idle timeout");
        assert_eq!(inputs["kmsKeyId"], "alias/enclave/acme-platform/access");
        assert_eq!(inputs["s3BucketName"], format!("acme-platform-{id}-eu-west-1-sessions"));
        assert_eq!(inputs["s3EncryptionEnabled"], true);
        assert_eq!(inputs["cloudWatchLogGroupName"], "/enclave/acme-platform/session-manager");
        assert_eq!(inputs["cloudWatchEncryptionEnabled"], true);

        // A trail that is logging, multi-region, validated, encrypted, delivering to CloudWatch.
        let trails = clients.cloudtrail.describe_trails().send().await.expect("trails");
        let trail = &trails.trail_list()[0];
        assert_eq!(trail.is_multi_region_trail(), Some(true));
        assert_eq!(trail.log_file_validation_enabled(), Some(true));
        assert!(trail.kms_key_id().is_some() && trail.cloud_watch_logs_role_arn().is_some());
        let status = clients
            .cloudtrail
            .get_trail_status()
            .name(trail.trail_arn().unwrap_or_default())
            .send()
            .await
            .expect("status");
        assert_eq!(status.is_logging(), Some(true), "{name}: logging");

        // Its bucket: private, versioned, encrypted with the key, CloudTrail-only writes over TLS.
        let bucket = format!("acme-platform-{id}-eu-west-1-trail");
        let block = clients.s3.get_public_access_block().bucket(&bucket).send().await.expect("block");
        let block = block.public_access_block_configuration().expect("configuration");
        assert_eq!(
            [
                block.block_public_acls(),
                block.ignore_public_acls(),
                block.block_public_policy(),
                block.restrict_public_buckets()
            ],
            [Some(true); 4]
        );
        let encryption = clients.s3.get_bucket_encryption().bucket(&bucket).send().await.expect("encryption");
        let rule = &encryption.server_side_encryption_configuration().expect("rules").rules()[0];
        let default = rule.apply_server_side_encryption_by_default().expect("default");
        assert_eq!(default.sse_algorithm().as_str(), "aws:kms");
        assert!(default.kms_master_key_id().is_some_and(|k| k.contains(":key/")));
        let policy = clients.s3.get_bucket_policy().bucket(&bucket).send().await.expect("policy");
        let policy: Value = serde_json::from_str(policy.policy().expect("text")).expect("json");
        let statements = policy["Statement"].as_array().expect("statements");
        assert!(
            statements
                .iter()
                .any(|s| s["Effect"] == "Deny" && s["Condition"]["Bool"]["aws:SecureTransport"] == "false")
        );
        let writes: Vec<&Value> = statements.iter().filter(|s| s["Action"] == "s3:PutObject").collect();
        assert!(
            !writes.is_empty()
                && writes.iter().all(|s| s["Principal"]["Service"] == "cloudtrail.amazonaws.com"
                    && s["Condition"]["StringEquals"]["aws:SourceArn"].is_string())
        );
    }
    // Versioning is read back through moto's misrooted answer (see observe.rs).
    let plan = json_of(&["plan", "-c", &dir], moto.endpoint());
    assert_eq!(plan["changes"], json!([]), "re-plan is empty: {plan:#}");
    let again = json_of(&["apply", "-c", &dir, "--yes"], moto.endpoint());
    assert_eq!(mutating(&again["calls"]), BTreeMap::new(), "re-apply makes no mutating call");
    assert_no_duplicates(&moto).await;

    // Hand changes, each detected by drift (exit 3) and repaired by apply: five in dev, the
    // trail deleted in test, the trail bucket's policy edited in prod.
    let dev = clients(&moto, "111111111111").await;
    let bastion = instances(&dev).await.remove(0);
    let instance = bastion.instance_id().expect("id");
    dev.ec2
        .modify_instance_metadata_options()
        .instance_id(instance)
        .http_tokens(aws_sdk_ec2::types::HttpTokensState::Optional)
        .send()
        .await
        .expect("IMDSv1 back on");
    dev.cloudtrail.stop_logging().name(STACK).send().await.expect("logging stopped");
    dev.cloudtrail.update_trail().name(STACK).enable_log_file_validation(false).send().await.expect("validation off");
    let group = bastion.network_interfaces()[0].groups()[0].group_id().expect("group").to_owned();
    dev.ec2
        .authorize_security_group_ingress()
        .group_id(&group)
        .ip_permissions(enclave_aws::reconcile::permission("tcp/22 0.0.0.0/0").expect("rule"))
        .send()
        .await
        .expect("SSH opened by hand");
    let document = dev.ssm.get_document().name("SSM-SessionManagerRunShell").send().await.expect("document");
    let edited = document.content().expect("content").replace("\"20\"", "\"480\"");
    let version = dev
        .ssm
        .update_document()
        .name("SSM-SessionManagerRunShell")
        .content(edited)
        .document_version("$LATEST")
        .send()
        .await
        .expect("edited")
        .document_description()
        .and_then(|d| d.document_version())
        .expect("version")
        .to_owned();
    dev.ssm
        .update_document_default_version()
        .name("SSM-SessionManagerRunShell")
        .document_version(version)
        .send()
        .await
        .expect("made the default");
    // And in the other accounts: test's trail deleted, prod's trail bucket policy edited.
    let test = clients(&moto, "222222222222").await;
    test.cloudtrail.delete_trail().name(STACK).send().await.expect("trail deleted by hand");
    let prod = clients(&moto, "333333333333").await;
    let loose = json!({
        "Version": "2012-10-17",
        "Statement": [{ "Effect": "Allow", "Principal": { "Service": "cloudtrail.amazonaws.com" }, "Action": "s3:PutObject",
                        "Resource": "arn:aws:s3:::acme-platform-333333333333-eu-west-1-trail/*" }]
    });
    prod.s3
        .put_bucket_policy()
        .bucket("acme-platform-333333333333-eu-west-1-trail")
        .policy(loose.to_string())
        .send()
        .await
        .expect("bucket policy edited by hand");

    let drift = enclave(&["drift", "-c", &dir, "--output", "json"], moto.endpoint());
    assert_eq!(drift.status.code(), Some(3), "{}", String::from_utf8_lossy(&drift.stderr));
    let drift: Value = serde_json::from_slice(&drift.stdout).expect("json");
    let changed: BTreeMap<String, BTreeSet<String>> = drift["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            let before = c["before"].as_object().cloned().unwrap_or_default();
            let after = c["after"].as_object().cloned().unwrap_or_default();
            let attributes = if c["action"] == "create" {
                BTreeSet::from(["create".to_owned()])
            } else {
                after.iter().filter(|(k, v)| before.get(*k) != Some(*v)).map(|(k, _)| k.clone()).collect()
            };
            (c["address"].as_str().unwrap_or_default().to_owned(), attributes)
        })
        .collect();
    let expected: BTreeMap<String, BTreeSet<String>> = [
        ("dev/access/instance/bastion", &["http_tokens"][..]),
        ("dev/access/trail/main", &["log_file_validation", "logging"][..]),
        ("dev/access/security-group/bastion", &["ingress"][..]),
        ("dev/access/ssm-document/session-preferences", &["content"][..]),
        ("prod/access/s3-bucket/trail", &["policy"][..]),
        ("test/access/trail/main", &["create"][..]),
    ]
    .into_iter()
    .map(|(address, attributes)| (address.to_owned(), attributes.iter().map(|a| (*a).to_owned()).collect()))
    .collect();
    assert_eq!(changed, expected, "every hand change, and nothing else");
    applied(&["apply", "-c", &dir, "--yes"], moto.endpoint());
    let after = enclave(&["drift", "-c", &dir], moto.endpoint());
    assert_eq!(after.status.code(), Some(0), "repaired: {}", String::from_utf8_lossy(&after.stdout));
    assert_eq!(
        instances(&dev).await[0].metadata_options().and_then(|m| m.http_tokens()).map(|t| t.as_str()),
        Some("required")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto_server; cargo xtask test installs it and runs this with --ignored"]
async fn destroy_removes_only_our_access_resources_and_empties_only_our_buckets() {
    let moto = MotoServer::start().expect("moto");
    let dir = reference_dir();
    applied(&["apply", "-c", &dir, "--yes"], moto.endpoint());
    let prod = clients(&moto, "333333333333").await;
    // Decoys: an untagged instance in a VPC of its own, a trail and a bucket (with an object)
    // without our tags, and an object in our own sessions bucket.
    let vpc = prod.ec2.create_vpc().cidr_block("172.31.0.0/16").send().await.expect("vpc");
    let vpc = vpc.vpc().and_then(|v| v.vpc_id()).expect("id").to_owned();
    let subnet = prod.ec2.create_subnet().vpc_id(&vpc).cidr_block("172.31.0.0/24").send().await.expect("subnet");
    let subnet = subnet.subnet().and_then(|s| s.subnet_id()).expect("id").to_owned();
    let decoy = prod
        .ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .min_count(1)
        .max_count(1)
        .subnet_id(&subnet)
        .send()
        .await
        .expect("decoy instance");
    let decoy = decoy.instances()[0].instance_id().expect("id").to_owned();
    let location = aws_sdk_s3::types::CreateBucketConfiguration::builder()
        .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
        .build();
    prod.s3
        .create_bucket()
        .bucket("someone-elses-logs")
        .create_bucket_configuration(location)
        .send()
        .await
        .expect("bucket");
    // Our bucket policy denies requests without TLS, and moto enforces that on its plain-HTTP
    // endpoint: the policy is removed by hand to put an object in.
    prod.s3
        .delete_bucket_policy()
        .bucket("acme-platform-333333333333-eu-west-1-sessions")
        .send()
        .await
        .expect("policy");
    for bucket in ["someone-elses-logs", "acme-platform-333333333333-eu-west-1-sessions"] {
        prod.s3
            .put_object()
            .bucket(bucket)
            .key("sessions/kept.log")
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b"log"))
            .send()
            .await
            .expect("object");
    }
    prod.cloudtrail
        .create_trail()
        .name("someone-elses-trail")
        .s3_bucket_name("someone-elses-logs")
        .send()
        .await
        .expect("trail");

    let destroyed = json_of(&["destroy", "-c", &dir, "--yes"], moto.endpoint());
    assert_eq!(destroyed["report"]["failed"], json!([]), "{destroyed:#}");
    assert_eq!(destroyed["summary"]["delete"], 224, "the registry, clusters and secrets went too");

    let live = instances(&prod).await;
    assert_eq!(
        live.iter().filter_map(|i| i.instance_id()).collect::<Vec<_>>(),
        [decoy.as_str()],
        "only the decoy runs"
    );
    let trails = prod.cloudtrail.describe_trails().send().await.expect("trails");
    assert_eq!(trails.trail_list().iter().filter_map(|t| t.name()).collect::<Vec<_>>(), ["someone-elses-trail"]);
    let buckets = prod.s3.list_buckets().send().await.expect("buckets");
    assert_eq!(buckets.buckets().iter().filter_map(|b| b.name()).collect::<Vec<_>>(), ["someone-elses-logs"]);
    let objects = prod.s3.list_objects_v2().bucket("someone-elses-logs").send().await.expect("objects");
    assert_eq!(objects.key_count(), Some(1), "a bucket not ours keeps its objects");
    for (name, id) in ACCOUNTS {
        let clients = clients(&moto, id).await;
        let tagged = clients
            .tagging
            .get_resources()
            .tag_filters(
                aws_sdk_resourcegroupstagging::types::TagFilter::builder().key("enclave:stack").values(STACK).build(),
            )
            .send()
            .await
            .expect("tagged");
        let access = tagged.resource_tag_mapping_list().iter().filter(|mapping| {
            mapping.tags().iter().any(|t| t.key() == "enclave:address" && t.value().contains("/access/"))
        });
        for mapping in access {
            let arn = mapping.resource_arn().unwrap_or_default();
            if arn.contains(":instance/") {
                // moto lists terminated instances (checked below); they are gone for good.
                continue;
            }
            assert!(arn.contains(":kms:"), "{name}: {arn} outlived destroy");
            let key = clients.kms.describe_key().key_id(arn).send().await.expect("key");
            assert_eq!(
                key.key_metadata().and_then(|m| m.key_state()).map(|s| s.as_str()),
                Some("PendingDeletion"),
                "{name}: the key is scheduled for deletion"
            );
        }
        let ours: Vec<_> =
            instances(&clients).await.into_iter().filter(|i| tag(i.tags(), "enclave:stack") == Some(STACK)).collect();
        assert!(ours.is_empty(), "{name}: every bastion is terminated");
        let role = clients.iam.get_role().role_name("acme-platform-ssm-instance").send().await;
        assert!(role.is_err(), "{name}: the instance role is gone");
    }
    let plan = json_of(&["destroy", "-c", &dir, "--yes"], moto.endpoint());
    assert_eq!(plan["changes"], json!([]), "nothing left to destroy");
}

fn flat_spec(tiers: usize) -> String {
    let tiers: Vec<String> = (0..tiers).map(|i| format!("{{ name: t{i}, size: 24, slot: {i} }}")).collect();
    format!(
        "organization: {{ name: acme, region: eu-west-1, stack: flat }}\n\
         network: {{ azs: 3, az_reserve: 4, nat: single, tiers: [{}], endpoints: {{ interface: [ssm, ssmmessages, ec2messages], gateway: [s3] }} }}\n\
         access: {{ session_manager: {{ enabled: true }}, bastion: {{ enabled: true, tier: t0 }} }}\n\
         audit: {{ cloudtrail: {{ enabled: true }} }}\n\
         accounts: [{{ name: dev, id: \"111111111111\", environment: dev, vpc_cidr: 10.1.0.0/16 }}]\n",
        tiers.join(", ")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto_server; cargo xtask test installs it and runs this with --ignored"]
async fn read_calls_for_a_converged_net_and_access_plan_do_not_grow_with_subnets() {
    let mut reads = Vec::new();
    for tiers in [2, 16] {
        let moto = MotoServer::start().expect("moto");
        let loaded = enclave_core::config::load_str("spec.yaml", &flat_spec(tiers)).expect("valid spec");
        let model = enclave_net::build(&loaded.spec).expect("fits");
        let workload_subnets = model.accounts[0].subnets.iter().filter(|s| s.tier != "egress").count();
        let options = CloudOptions {
            endpoint_url: Some(moto.endpoint().to_owned()),
            domains: BTreeSet::from([Domain::Net, Domain::Access]),
            spec: Some(loaded.spec.clone()),
            ..CloudOptions::default()
        };
        let cloud = Cloud::from_config(moto.sdk_config("eu-west-1"), model, ROLE, &options).await.expect("connects");
        let (plan, observed) = cloud.plan().await.expect("plans");
        let report = cloud.apply(&plan, &observed, 10, &Quiet).await.expect("applies");
        assert!(report.is_success(), "{report:#?}");
        let before = cloud.calls();
        let (plan, observed) = cloud.plan().await.expect("plans");
        assert!(plan.is_empty(), "{:#?}", plan.changes);
        let delta: BTreeMap<String, u64> = cloud
            .calls()
            .into_iter()
            .map(|(op, n)| {
                let was = before.get(&op).copied().unwrap_or(0);
                (op, n - was)
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        let access = observed.resources.iter().filter(|r| r.address.component() == "access").count();
        println!(
            "{workload_subnets} workload subnets, {} resources observed ({access} access): {} read calls {delta:?}",
            observed.resources.len(),
            delta.values().sum::<u64>()
        );
        reads.push((workload_subnets, delta));
    }
    assert_eq!(reads[0].0, 6);
    assert_eq!(reads[1].0, 48);
    assert_eq!(reads[0].1, reads[1].1, "the same reads for 6 and 48 subnets");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto_server; cargo xtask test installs it and runs this with --ignored"]
async fn killing_an_access_apply_at_seeded_points_and_rerunning_makes_no_duplicates() {
    let dir = reference_dir();
    let mut rng = seeded(20261130);
    // The access apply of the reference platform makes 114 mutating calls (S3's REST writes
    // included); the network is applied first, so every kill point lands in access.
    let points: Vec<u64> = (0..10).map(|_| 1 + rng() % 110).collect();
    for (run, point) in points.iter().enumerate() {
        let moto = MotoServer::start().expect("moto");
        applied(&["apply", "-c", &dir, "--only", "net", "--yes"], moto.endpoint());
        common::killed_at(moto.endpoint(), *point, &["apply", "-c", &dir, "--only", "access", "--yes"], run).await;
        applied(&["apply", "-c", &dir, "--yes"], moto.endpoint());
        let plan = json_of(&["plan", "-c", &dir], moto.endpoint());
        assert_eq!(plan["changes"], json!([]), "run {run} (kill at {point}): {plan:#}");
        assert_no_duplicates(&moto).await;
        println!("kill point {point}: re-run converged with no duplicate instance, trail, key, bucket or template");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto_server; cargo xtask test installs it and runs this with --ignored"]
async fn connect_prints_and_runs_the_session_command_for_each_account_bastion() {
    let moto = MotoServer::start().expect("moto");
    let dir = reference_dir();
    let before = enclave(&["access", "connect", "-c", &dir, "dev", "--print"], moto.endpoint());
    assert_eq!(before.status.code(), Some(1), "no bastion yet");
    assert!(String::from_utf8_lossy(&before.stderr).contains("no running bastion"));
    applied(&["apply", "-c", &dir, "--yes"], moto.endpoint());
    for (name, id) in ACCOUNTS {
        let bastion = instances(&clients(&moto, id).await).await.remove(0);
        let instance = bastion.instance_id().expect("id");
        let out = enclave(&["access", "connect", "-c", &dir, name, "--print"], moto.endpoint());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("aws ssm start-session --region eu-west-1 --target {instance}")
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("arn:aws:iam::{id}:role/{ROLE}")));
        let forward = json_of(
            &["access", "connect", "-c", &dir, name, "--print", "--port-forward", "db.internal:5432"],
            moto.endpoint(),
        );
        assert_eq!(forward["instance_id"], instance);
        assert_eq!(forward["role_arn"], format!("arn:aws:iam::{id}:role/{ROLE}"));
        let command: Vec<String> = serde_json::from_value(forward["command"].clone()).expect("command");
        assert_eq!(command[7..9], ["--document-name", "AWS-StartPortForwardingSessionToRemoteHost"]);
    }

    // Without --print, the command runs as the member role: a stand-in `aws` on PATH records
    // its arguments and which credentials it was handed (never their values).
    let bin = tempdir("connect");
    let record = bin.join("record.txt");
    let script = bin.join("aws");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\n[ -n \"$AWS_ACCESS_KEY_ID\" ] && [ -n \"$AWS_SECRET_ACCESS_KEY\" ] && [ -n \"$AWS_SESSION_TOKEN\" ] && echo credentials >> '{}'\nexit 0\n",
            record.display(),
            record.display()
        ),
    )
    .expect("script");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("executable");
    }
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let ran = common::enclave_against(&["access", "connect", "-c", &dir, "test"], moto.endpoint())
        .env("PATH", path)
        .output()
        .expect("runs");
    assert!(ran.status.success(), "{}", String::from_utf8_lossy(&ran.stderr));
    let recorded = std::fs::read_to_string(&record).expect("the stand-in ran");
    let test_bastion = instances(&clients(&moto, "222222222222").await).await.remove(0);
    let lines: Vec<&str> = recorded.lines().collect();
    assert_eq!(
        lines,
        [
            "ssm",
            "start-session",
            "--region",
            "eu-west-1",
            "--target",
            test_bastion.instance_id().expect("id"),
            "credentials"
        ],
        "the member role's temporary credentials are handed over"
    );
    let _ = std::fs::remove_dir_all(&bin);
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("enclave-access-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto_server; cargo xtask test installs it and runs this with --ignored"]
async fn a_newer_image_replaces_the_bastion_only_with_replace_bastion_or_a_pinned_ami() {
    let moto = MotoServer::start().expect("moto");
    let root = tempdir("image");
    let old = "ami-12c6146b";
    let pinned = reference_with_ami(&root.join("pinned"), Some(old));
    applied(&["apply", "-c", &pinned, "--account", "dev", "--yes"], moto.endpoint());
    let dev = clients(&moto, "111111111111").await;
    assert_eq!(instances(&dev).await[0].image_id(), Some(old));
    let latest = enclave_access::apply::latest_image(&dev).await.expect("the public parameter");
    assert_ne!(latest, old);

    // Unpinned: the running bastion keeps its image, and the plan says a newer one exists.
    let unpinned = reference_with_ami(&root.join("unpinned"), None);
    let plan = json_of(&["plan", "-c", &unpinned, "--account", "dev"], moto.endpoint());
    assert_eq!(plan["changes"], json!([]), "{plan:#}");
    assert_eq!(plan["newer_images"], json!([{ "account": "dev", "running": old, "latest": latest }]));
    let text = enclave(&["plan", "-c", &unpinned, "--account", "dev"], moto.endpoint());
    assert!(
        String::from_utf8_lossy(&text.stdout).contains(&format!("the bastion runs {old} and {latest} is the latest"))
    );

    // --replace-bastion: a replacement, shown with the image, then applied.
    let plan = json_of(&["plan", "-c", &unpinned, "--account", "dev", "--replace-bastion"], moto.endpoint());
    let actions: BTreeMap<String, String> = plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (c["address"].as_str().unwrap_or_default().to_owned(), c["action"].as_str().unwrap_or_default().to_owned())
        })
        .collect();
    assert_eq!(
        actions,
        BTreeMap::from([
            ("dev/access/instance/bastion".to_owned(), "replace".to_owned()),
            ("dev/access/launch-template/bastion".to_owned(), "update".to_owned()),
        ])
    );
    applied(&["apply", "-c", &unpinned, "--account", "dev", "--replace-bastion", "--yes"], moto.endpoint());
    let live = instances(&dev).await;
    assert_eq!(live.len(), 1, "the old bastion is gone");
    assert_eq!(live[0].image_id(), Some(latest.as_str()));
    assert_eq!(json_of(&["plan", "-c", &unpinned, "--account", "dev"], moto.endpoint())["changes"], json!([]));

    // Pinning another image replaces the bastion without the flag.
    let plan = json_of(&["plan", "-c", &pinned, "--account", "dev"], moto.endpoint());
    assert!(
        plan["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .any(|c| c["address"] == "dev/access/instance/bastion" && c["action"] == "replace"),
        "{plan:#}"
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// The access parts of a one-account spec that transitions change.
#[derive(Clone, Debug, PartialEq)]
struct AccessShape {
    session: bool,
    idle_minutes: u8,
    log_days: u16,
    bastion: Option<&'static str>,
    trail: bool,
}

impl AccessShape {
    fn base() -> AccessShape {
        AccessShape { session: true, idle_minutes: 20, log_days: 365, bastion: Some("app"), trail: true }
    }

    fn yaml(&self) -> String {
        format!(
            "organization: {{ name: acme, region: eu-west-1, stack: moves }}\n\
             network: {{ azs: 2, az_reserve: 4, nat: single, tiers: [{{ name: app, size: 22, slot: 0 }}, {{ name: data, size: 22, slot: 1 }}], endpoints: {{ interface: [ssm, ssmmessages, ec2messages, logs], gateway: [s3] }} }}\n\
             access:\n  session_manager: {{ enabled: {}, idle_timeout_minutes: {}, log_retention_days: {} }}\n  bastion: {{ enabled: {}, tier: {} }}\n\
             audit: {{ cloudtrail: {{ enabled: {} }} }}\n\
             accounts: [{{ name: dev, id: \"111111111111\", environment: dev, vpc_cidr: 10.1.0.0/16 }}]\n",
            self.session,
            self.idle_minutes,
            self.log_days,
            self.bastion.is_some(),
            self.bastion.unwrap_or("app"),
            self.trail
        )
    }

    /// What exists for it: live bastions (with their tier), trails, our live keys, our buckets.
    fn expected(&self) -> (Vec<String>, usize, usize, usize) {
        let bastions = self.bastion.map(|tier| vec![tier.to_owned()]).unwrap_or_default();
        let key = usize::from(self.session || self.trail);
        let buckets = usize::from(self.session) + usize::from(self.trail);
        (bastions, usize::from(self.trail), key, buckets)
    }
}

async fn converge_shape(moto: &MotoServer, shape: &AccessShape) {
    let loaded =
        enclave_core::config::load_str("spec.yaml", &shape.yaml()).unwrap_or_else(|e| panic!("{shape:?}: {e}"));
    let model = enclave_net::build(&loaded.spec).expect("fits");
    let options = CloudOptions {
        endpoint_url: Some(moto.endpoint().to_owned()),
        domains: BTreeSet::from([Domain::Net, Domain::Access]),
        spec: Some(loaded.spec.clone()),
        ..CloudOptions::default()
    };
    let cloud = Cloud::from_config(moto.sdk_config("eu-west-1"), model, ROLE, &options).await.expect("connects");
    let (plan, observed) = cloud.plan().await.expect("plans");
    let report = cloud.apply(&plan, &observed, 10, &Quiet).await.expect("applies");
    assert!(report.is_success(), "{shape:?}: {report:#?}");
    let (plan, _) = cloud.plan().await.expect("plans");
    assert!(plan.is_empty(), "{shape:?}: the next plan is empty: {:#?}", plan.changes);

    let dev = clients(moto, "111111111111").await;
    let mut bastions = Vec::new();
    for instance in instances(&dev).await.iter().filter(|i| tag(i.tags(), "enclave:stack") == Some("moves")) {
        let subnet = dev
            .ec2
            .describe_subnets()
            .subnet_ids(instance.subnet_id().unwrap_or_default())
            .send()
            .await
            .expect("subnet");
        bastions.push(tag(subnet.subnets()[0].tags(), "enclave:tier").unwrap_or_default().to_owned());
    }
    let trails = dev.cloudtrail.describe_trails().send().await.expect("trails").trail_list().len();
    let found = inventory(&dev).await;
    let buckets = dev
        .s3
        .list_buckets()
        .send()
        .await
        .expect("buckets")
        .buckets()
        .iter()
        .filter(|b| b.name().is_some_and(|n| n.starts_with("moves-")))
        .count();
    assert_eq!((bastions, trails, found.keys, buckets), shape.expected(), "{shape:?}: what exists");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto_server; cargo xtask test installs it and runs this with --ignored"]
async fn access_transitions_converge_in_one_apply_both_ways() {
    let base = AccessShape::base();
    let transitions: Vec<(&str, AccessShape)> = vec![
        ("bastion off", AccessShape { bastion: None, ..base.clone() }),
        ("bastion to the data tier", AccessShape { bastion: Some("data"), ..base.clone() }),
        ("trail off", AccessShape { trail: false, ..base.clone() }),
        ("idle timeout 45 minutes", AccessShape { idle_minutes: 45, ..base.clone() }),
        ("session logs kept 30 days", AccessShape { log_days: 30, ..base.clone() }),
        ("access off entirely", AccessShape { session: false, bastion: None, trail: false, ..base.clone() }),
    ];
    let moto = MotoServer::start().expect("moto");
    converge_shape(&moto, &base).await;
    for (name, shape) in &transitions {
        converge_shape(&moto, shape).await;
        converge_shape(&moto, &base).await;
        println!("{name}: there and back, one apply each, empty plans after");
    }
}

/// A copy of the reference config with the bastion's `ami` line set (or left out with `None`).
fn reference_with_ami(root: &Path, ami: Option<&str>) -> String {
    common::reference_with(root, "base/organization.yaml", |text| match ami {
        Some(ami) => text.replace("    tier: app\n", &format!("    tier: app\n    ami: {ami}\n")),
        None => text,
    })
}

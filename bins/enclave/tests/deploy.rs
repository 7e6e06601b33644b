//! The deploy domain against moto (what moto answers; the rest is in
//! `crates/deploy/tests/mocked.rs`): the reference platform's registry is applied with the
//! network and access in one plan, converges, has its drift repaired, survives being killed at
//! seeded points, and is destroyed without touching anyone else's repositories or deleting
//! images unless asked.

mod common;

use common::{applied, enclave, json_of, mutating, reference_dir, reference_with, seeded};

use std::collections::BTreeMap;

use aws_sdk_ecr::types::{ImageScanningConfiguration, ImageTagMutability, Tag};
use enclave_aws::moto::MotoServer;
use enclave_aws::proxy::{FaultProxy, Faults};
use enclave_aws::{Aws, AwsOptions};
use serde_json::{Value, json};

const ROLE: &str = "OrganizationAccountAccessRole";
const STACK: &str = "acme-platform";
const PROD: &str = "333333333333";
const REPOSITORIES: [&str; 3] = ["billing-worker", "orders", "reports"];

/// ECR and KMS of a member account, straight to moto.
async fn clients(moto: &MotoServer, account_id: &str) -> (aws_sdk_ecr::Client, aws_sdk_kms::Client) {
    let aws =
        Aws::from_config(moto.sdk_config("eu-west-1"), AwsOptions::new("eu-west-1", ROLE).endpoint(moto.endpoint()));
    let config = aws.account(account_id).await.expect("assume");
    (aws_sdk_ecr::Client::new(&config), aws_sdk_kms::Client::new(&config))
}

async fn eks_client(moto: &MotoServer, account_id: &str) -> aws_sdk_eks::Client {
    let aws =
        Aws::from_config(moto.sdk_config("eu-west-1"), AwsOptions::new("eu-west-1", ROLE).endpoint(moto.endpoint()));
    aws_sdk_eks::Client::new(&aws.account(account_id).await.expect("assume"))
}

async fn iam_ec2(moto: &MotoServer, account_id: &str) -> (aws_sdk_iam::Client, aws_sdk_ec2::Client) {
    let aws =
        Aws::from_config(moto.sdk_config("eu-west-1"), AwsOptions::new("eu-west-1", ROLE).endpoint(moto.endpoint()));
    let config = aws.account(account_id).await.expect("assume");
    (aws_sdk_iam::Client::new(&config), aws_sdk_ec2::Client::new(&config))
}

/// Every repository of an account, by name, any owner.
async fn repositories(ecr: &aws_sdk_ecr::Client) -> BTreeMap<String, aws_sdk_ecr::types::Repository> {
    let out = ecr.describe_repositories().send().await.expect("repositories");
    out.repositories().iter().map(|r| (r.repository_name().unwrap_or_default().to_owned(), r.clone())).collect()
}

/// Pushes a tiny image manifest as `repository:tag`.
async fn push(ecr: &aws_sdk_ecr::Client, repository: &str, tag: &str) {
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": { "mediaType": "application/vnd.docker.container.image.v1+json", "size": 7023,
                    "digest": "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7" },
        "layers": []
    });
    ecr.put_image()
        .repository_name(repository)
        .image_manifest(manifest.to_string())
        .image_tag(tag)
        .send()
        .await
        .expect("image pushed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto_server; cargo xtask test installs it and runs this with --ignored"]
async fn reference_registry_is_applied_as_specified_converges_and_drift_is_repaired() {
    let moto = MotoServer::start().expect("moto");
    let dir = reference_dir();
    let endpoint = moto.endpoint();
    let report = json_of(&["apply", "-c", &dir, "--yes"], endpoint);
    assert_eq!(report["report"]["failed"], json!([]), "{report:#}");
    assert_eq!(report["domains"], json!(["net", "access", "deploy", "secrets"]));

    let (ecr, kms) = clients(&moto, PROD).await;
    let key = kms.describe_key().key_id(format!("alias/enclave/{STACK}/access")).send().await.expect("the account key");
    let key_arn = key.key_metadata().and_then(|k| k.arn()).expect("arn").to_owned();
    let found = repositories(&ecr).await;
    assert_eq!(found.keys().map(String::as_str).collect::<Vec<_>>(), REPOSITORIES, "one repository per app");
    for (name, repository) in &found {
        assert_eq!(repository.image_tag_mutability(), Some(&ImageTagMutability::Immutable), "{name}");
        assert!(repository.image_scanning_configuration().is_some_and(|s| s.scan_on_push()), "{name}: scan on push");
        let encryption = repository.encryption_configuration().expect("encryption");
        assert_eq!(encryption.encryption_type().as_str(), "KMS", "{name}");
        let used = encryption.kms_key().unwrap_or_default();
        assert!(used == key_arn || used.ends_with(&format!("alias/enclave/{STACK}/access")), "{name}: {used}");
        let lifecycle = ecr.get_lifecycle_policy().repository_name(name).send().await.expect("lifecycle");
        let lifecycle: Value = serde_json::from_str(lifecycle.lifecycle_policy_text().unwrap_or("{}")).expect("json");
        assert_eq!(lifecycle["rules"][0]["selection"]["countNumber"], 7, "{name}: untagged after 7 days");
        assert_eq!(lifecycle["rules"][1]["selection"]["countNumber"], 30, "{name}: the last 30 tagged");
        let policy = ecr.get_repository_policy().repository_name(name).send().await.expect("policy");
        let policy: Value = serde_json::from_str(policy.policy_text().unwrap_or("{}")).expect("json");
        assert_eq!(
            policy["Statement"][0]["Condition"]["ArnEquals"]["aws:PrincipalArn"],
            json!(["arn:aws:iam::111111111111:role/enclave/platform-dev-node"]),
            "{name}: only dev's node role pulls"
        );
    }
    for other in ["111111111111", "222222222222"] {
        let (ecr, _) = clients(&moto, other).await;
        assert!(repositories(&ecr).await.is_empty(), "{other}: the registry lives in prod only");
    }

    let plan = json_of(&["plan", "-c", &dir], endpoint);
    assert_eq!(plan["changes"], json!([]), "converged: {plan:#}");
    let again = json_of(&["apply", "-c", &dir, "--yes"], endpoint);
    assert_eq!(mutating(&again["calls"]), BTreeMap::new(), "a converged apply changes nothing");

    // Drift: tags made mutable, scanning turned off, the lifecycle policy deleted, by hand.
    ecr.put_image_tag_mutability()
        .repository_name("orders")
        .image_tag_mutability(ImageTagMutability::Mutable)
        .send()
        .await
        .expect("mutable");
    // The SDK leaves `scanOnPush: false` out of the request (the default value), and moto
    // ignores an empty configuration: the body is written out in full, as the console sends it.
    ecr.put_image_scanning_configuration()
        .repository_name("reports")
        .image_scanning_configuration(ImageScanningConfiguration::builder().scan_on_push(false).build())
        .customize()
        .mutate_request(|request| {
            let body = r#"{"repositoryName":"reports","imageScanningConfiguration":{"scanOnPush":false}}"#;
            request.headers_mut().insert("content-length", body.len().to_string());
            *request.body_mut() = aws_smithy_types::body::SdkBody::from(body);
        })
        .send()
        .await
        .expect("no scan");
    ecr.delete_lifecycle_policy().repository_name("billing-worker").send().await.expect("no lifecycle");
    let drift = enclave(&["drift", "-c", &dir, "--only", "deploy", "--output", "json"], endpoint);
    assert_eq!(drift.status.code(), Some(3), "drift found: {}", String::from_utf8_lossy(&drift.stderr));
    let drift: Value = serde_json::from_slice(&drift.stdout).expect("json");
    let mut drifted: Vec<(String, String)> = drift["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .flat_map(|change| {
            let before = change["before"].as_object().cloned().unwrap_or_default();
            let after = change["after"].as_object().cloned().unwrap_or_default();
            let address = change["address"].as_str().unwrap_or_default().to_owned();
            after.into_iter().filter(move |(k, v)| before.get(k) != Some(v)).map(move |(k, _)| (address.clone(), k))
        })
        .collect();
    drifted.sort();
    assert_eq!(
        drifted,
        [
            ("prod/deploy/ecr-repository/billing-worker".to_owned(), "lifecycle".to_owned()),
            ("prod/deploy/ecr-repository/orders".to_owned(), "tag_mutability".to_owned()),
            ("prod/deploy/ecr-repository/reports".to_owned(), "scan_on_push".to_owned()),
        ],
        "{drift:#}"
    );
    let repair = json_of(&["apply", "-c", &dir, "--only", "deploy", "--yes"], endpoint);
    assert_eq!(
        mutating(&repair["calls"]),
        BTreeMap::from([
            ("ecr:PutImageScanningConfiguration".to_owned(), 1),
            ("ecr:PutImageTagMutability".to_owned(), 1),
            ("ecr:PutLifecyclePolicy".to_owned(), 1),
        ]),
        "exactly the drifted settings are put back"
    );
    let plan = json_of(&["plan", "-c", &dir], endpoint);
    assert_eq!(plan["changes"], json!([]), "repaired: {plan:#}");
    // Immutable tags hold for real: a second push of the same tag is refused.
    push(&ecr, "orders", "1.0.0").await;
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1,
                   "digest": "sha256:0000000000000000000000000000000000000000000000000000000000000001"}, "layers": []});
    let moved =
        ecr.put_image().repository_name("orders").image_manifest(manifest.to_string()).image_tag("1.0.0").send().await;
    assert!(moved.is_err(), "an immutable tag cannot move to another image");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto_server; cargo xtask test installs it and runs this with --ignored"]
async fn destroy_keeps_images_unless_forced_and_never_touches_other_repositories() {
    let moto = MotoServer::start().expect("moto");
    let dir = reference_dir();
    let endpoint = moto.endpoint();
    applied(&["apply", "-c", &dir, "--yes"], endpoint);
    let (ecr, _) = clients(&moto, PROD).await;
    // A decoy without tags, and one of another stack that claims our address.
    ecr.create_repository().repository_name("decoy").send().await.expect("decoy");
    let tag = |key: &str, value: &str| Tag::builder().key(key).value(value).build().expect("tag");
    ecr.create_repository()
        .repository_name("other-stack-orders")
        .tags(tag("enclave:stack", "someone-else"))
        .tags(tag("enclave:address", "prod/deploy/ecr-repository/orders"))
        .send()
        .await
        .expect("other stack's");
    push(&ecr, "orders", "1.4.2").await;

    let refused = enclave(&["destroy", "-c", &dir, "--only", "deploy", "--yes"], endpoint);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    let stdout = String::from_utf8_lossy(&refused.stdout);
    assert_eq!(refused.status.code(), Some(1), "{stdout}\n{stderr}");
    let said = format!("{stdout}{stderr}");
    assert!(said.contains("orders") && said.contains("--force-images"), "says which and how: {said}");
    let left: Vec<String> = repositories(&ecr).await.into_keys().collect();
    assert_eq!(left, ["decoy", "orders", "other-stack-orders"], "the empty ones went, orders kept its image");

    applied(&["destroy", "-c", &dir, "--only", "deploy", "--yes", "--force-images"], endpoint);
    let left: Vec<String> = repositories(&ecr).await.into_keys().collect();
    assert_eq!(left, ["decoy", "other-stack-orders"], "only ours were deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto_server; cargo xtask test installs it and runs this with --ignored"]
async fn killing_a_deploy_apply_at_seeded_points_and_rerunning_makes_no_duplicates() {
    let dir = reference_dir();
    let mut rng = seeded(20261130);
    // Calibration: a whole registry apply through the proxy, to place every kill point among
    // its writes (the role assumptions before them count as mutations to the proxy too).
    let moto = MotoServer::start().expect("moto");
    applied(&["apply", "-c", &dir, "--only", "net,access", "--yes"], moto.endpoint());
    let proxy = FaultProxy::start(moto.endpoint(), Faults::default()).await.expect("proxy");
    let report = json_of(&["apply", "-c", &dir, "--only", "deploy", "--yes"], &proxy.endpoint());
    let writes: u64 = mutating(&report["calls"]).values().sum();
    assert!(
        writes >= 30,
        "roles, templates, clusters, OIDC providers, node groups and repositories: {:#}",
        report["calls"]
    );
    let before = proxy.stats().mutations_forwarded - writes;
    drop(proxy);
    drop(moto);
    let points: Vec<u64> = (0..10).map(|_| before + 1 + rng() % writes).collect();
    for (run, point) in points.iter().enumerate() {
        let moto = MotoServer::start().expect("moto");
        applied(&["apply", "-c", &dir, "--only", "net,access", "--yes"], moto.endpoint());
        common::killed_at(moto.endpoint(), *point, &["apply", "-c", &dir, "--only", "deploy", "--yes"], run).await;
        applied(&["apply", "-c", &dir, "--yes"], moto.endpoint());
        let plan = json_of(&["plan", "-c", &dir], moto.endpoint());
        assert_eq!(plan["changes"], json!([]), "run {run} (kill at {point}): {plan:#}");
        let (ecr, _) = clients(&moto, PROD).await;
        let found: Vec<String> = repositories(&ecr).await.into_keys().collect();
        assert_eq!(found, REPOSITORIES, "run {run}: each repository once");
        for (account, cluster) in [(PROD, "platform-prod"), ("111111111111", "platform-dev")] {
            let eks = eks_client(&moto, account).await;
            let clusters = eks.list_clusters().send().await.expect("clusters");
            assert_eq!(clusters.clusters(), [cluster], "run {run}: one cluster in {account}");
            let groups = eks.list_nodegroups().cluster_name(cluster).send().await.expect("node groups");
            assert_eq!(groups.nodegroups(), ["general"], "run {run}: one node group");
            let (iam, ec2) = iam_ec2(&moto, account).await;
            let providers = iam.list_open_id_connect_providers().send().await.expect("providers");
            assert_eq!(providers.open_id_connect_provider_list().len(), 1, "run {run}: one OIDC provider");
            let templates = ec2.describe_launch_templates().send().await.expect("templates");
            let nodes = templates
                .launch_templates()
                .iter()
                .filter(|t| t.launch_template_name().is_some_and(|n| n.ends_with("-general")))
                .count();
            assert_eq!(nodes, 1, "run {run}: one node launch template");
        }
        println!(
            "kill point {point}: re-run converged with each repository, cluster, node group, provider and template once"
        );
    }
}

/// Tells moto what a scan of `repository:tag` in prod finds (its `moto-api` for ECR scan
/// results), through a plain HTTP/1.1 request on loopback.
fn set_scan_result(endpoint: &str, repository: &str, tag: &str, findings: Value) {
    use std::io::{Read, Write};
    let body = json!({
        "account_id": PROD,
        "region": "eu-west-1",
        "results": [{
            "registryId": PROD,
            "repositoryName": repository,
            "imageId": { "imageTag": tag },
            "imageScanStatus": { "status": "COMPLETE", "description": "The scan was completed successfully." },
            "imageScanFindings": { "findings": findings }
        }]
    })
    .to_string();
    let address = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(address).expect("moto listens");
    write!(
        stream,
        "POST /moto-api/static/ecr/scan-finding-results HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer");
    assert!(answer.starts_with("HTTP/1.1 201") || answer.starts_with("HTTP/1.0 201"), "{answer}");
}

fn finding(name: &str, severity: &str) -> Value {
    json!({
        "name": name,
        "uri": format!("https://nvd.nist.gov/vuln/detail/{name}"),
        "severity": severity,
        "attributes": [{ "key": "package_name", "value": "openssl" }]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto_server; cargo xtask test installs it and runs this with --ignored"]
async fn the_scan_gate_reads_findings_from_the_registry_and_fails_at_the_threshold() {
    let moto = MotoServer::start().expect("moto");
    let dir = reference_dir();
    let endpoint = moto.endpoint();
    applied(&["apply", "-c", &dir, "--only", "net,access,deploy", "--yes"], endpoint);
    let (ecr, _) = clients(&moto, PROD).await;
    for (repository, tag) in [("orders", "1.4.2"), ("billing-worker", "2.0.1"), ("reports", "0.9.0")] {
        push(&ecr, repository, tag).await;
    }
    let gate = |app: &str, tag: &str, extra: &[&str]| {
        let mut args = vec!["deploy", "scan-gate", "-c", &dir, "--app", app, "--tag", tag, "--wait-timeout", "5"];
        args.extend(extra);
        enclave(&args, endpoint)
    };
    let unscanned = gate("orders", "1.4.2", &[]);
    assert_eq!(unscanned.status.code(), Some(1), "no verdict without a scan");
    assert!(String::from_utf8_lossy(&unscanned.stderr).contains("no scan of this image"));

    set_scan_result(endpoint, "orders", "1.4.2", json!([]));
    set_scan_result(endpoint, "billing-worker", "2.0.1", json!([finding("CVE-2026-1000", "MEDIUM")]));
    set_scan_result(endpoint, "reports", "0.9.0", json!([finding("CVE-2026-2000", "CRITICAL")]));
    for (repository, tag) in [("orders", "1.4.2"), ("billing-worker", "2.0.1"), ("reports", "0.9.0")] {
        let image = aws_sdk_ecr::types::ImageIdentifier::builder().image_tag(tag).build();
        ecr.start_image_scan().repository_name(repository).image_id(image).send().await.expect("scan started");
    }

    let clean = gate("orders", "1.4.2", &[]);
    assert_eq!(clean.status.code(), Some(0), "{}", String::from_utf8_lossy(&clean.stdout));
    let medium = gate("billing-worker", "2.0.1", &[]);
    assert_eq!(medium.status.code(), Some(0), "a medium finding passes the default gate (high)");
    assert!(String::from_utf8_lossy(&medium.stdout).contains("CVE-2026-1000"), "but is listed");
    let strict = gate("billing-worker", "2.0.1", &["--fail-on", "medium"]);
    assert_eq!(strict.status.code(), Some(3), "and fails a medium gate");
    let critical = gate("reports", "0.9.0", &["--output", "json"]);
    assert_eq!(critical.status.code(), Some(3), "{}", String::from_utf8_lossy(&critical.stderr));
    let verdict: Value = serde_json::from_slice(&critical.stdout).expect("json");
    assert_eq!(verdict["passed"], false);
    assert_eq!(verdict["blocking"], 1);
    assert_eq!(verdict["findings"][0]["name"], "CVE-2026-2000");
    assert_eq!(verdict["findings"][0]["severity"], "critical");
    assert_eq!(verdict["image"], "333333333333.dkr.ecr.eu-west-1.amazonaws.com/reports:0.9.0");
    let unknown = gate("report", "0.9.0", &[]);
    assert_eq!(unknown.status.code(), Some(2), "an unknown app is bad input");
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("did you mean `reports`?"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto_server; cargo xtask test installs it and runs this with --ignored"]
async fn clusters_are_private_encrypted_logged_with_our_node_groups_and_drift_is_repaired() {
    let moto = MotoServer::start().expect("moto");
    let dir = reference_dir();
    let endpoint = moto.endpoint();
    applied(&["apply", "-c", &dir, "--yes"], endpoint);
    for (account, cluster, min, max) in [(PROD, "platform-prod", 3, 9), ("111111111111", "platform-dev", 1, 3)] {
        let eks = eks_client(&moto, account).await;
        let (iam, ec2) = iam_ec2(&moto, account).await;
        let (_, kms) = clients(&moto, account).await;
        let key = kms.describe_key().key_id(format!("alias/enclave/{STACK}/access")).send().await.expect("key");
        let key_arn = key.key_metadata().and_then(|k| k.arn()).expect("arn").to_owned();
        let described = eks.describe_cluster().name(cluster).send().await.expect("cluster");
        let found = described.cluster().expect("cluster");
        assert_eq!(found.version(), Some("1.33"), "{cluster}");
        let vpc = found.resources_vpc_config().expect("vpc config");
        assert!(vpc.endpoint_private_access() && !vpc.endpoint_public_access(), "{cluster}: private endpoint only");
        assert_eq!(vpc.subnet_ids().len(), 3, "{cluster}: the tier's subnets, one per zone");
        let encrypted: Vec<&str> =
            found.encryption_config().iter().filter_map(|c| c.provider().and_then(|p| p.key_arn())).collect();
        assert_eq!(encrypted, [key_arn.as_str()], "{cluster}: secrets encrypted with the account key");
        let logged: Vec<&str> = found
            .logging()
            .map(|l| l.cluster_logging())
            .unwrap_or_default()
            .iter()
            .filter(|s| s.enabled() == Some(true))
            .flat_map(|s| s.types().iter().map(|t| t.as_str()))
            .collect();
        assert_eq!(logged, ["api", "audit", "authenticator", "controllerManager", "scheduler"], "{cluster}");
        assert!(found.role_arn().is_some_and(|arn| arn.ends_with(&format!("role/enclave/{cluster}-cluster"))));
        let issuer = found.identity().and_then(|i| i.oidc()).and_then(|o| o.issuer()).expect("issuer");
        let providers = iam.list_open_id_connect_providers().send().await.expect("providers");
        let arn = providers.open_id_connect_provider_list()[0].arn().expect("arn").to_owned();
        let provider =
            iam.get_open_id_connect_provider().open_id_connect_provider_arn(&arn).send().await.expect("provider");
        assert_eq!(
            provider.url().map(|u| u.trim_start_matches("https://")),
            Some(issuer.trim_start_matches("https://")),
            "{cluster}: the provider trusts the cluster's issuer"
        );
        assert_eq!(provider.client_id_list(), ["sts.amazonaws.com"], "{cluster}: IRSA");

        let group =
            eks.describe_nodegroup().cluster_name(cluster).nodegroup_name("general").send().await.expect("group");
        let group = group.nodegroup().expect("node group");
        let scaling = group.scaling_config().expect("scaling");
        assert_eq!((scaling.min_size(), scaling.max_size()), (Some(min), Some(max)), "{cluster}");
        let tags = group.tags().cloned().unwrap_or_default();
        for (key, value) in enclave_core::names::node_group_discovery_tags(cluster) {
            assert_eq!(tags.get(&key), Some(&value), "{cluster}: the tag the Cluster Autoscaler discovers");
        }
        assert!(group.node_role().is_some_and(|arn| arn.ends_with(&format!("role/enclave/{cluster}-node"))));
        let attached =
            iam.list_attached_role_policies().role_name(format!("{cluster}-node")).send().await.expect("policies");
        let mut policies: Vec<&str> = attached.attached_policies().iter().filter_map(|p| p.policy_name()).collect();
        policies.sort_unstable();
        assert_eq!(
            policies,
            ["AmazonEC2ContainerRegistryReadOnly", "AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy"]
        );
        // moto reports `remoteAccess.ec2SshKey` for every node group; our launch template is the
        // truth about keys.
        let template_id = group.launch_template().and_then(|t| t.id()).expect("our launch template").to_owned();
        let versions = ec2
            .describe_launch_template_versions()
            .launch_template_id(&template_id)
            .versions("$Default")
            .send()
            .await
            .expect("template");
        let data = versions.launch_template_versions()[0].launch_template_data().expect("data");
        assert!(data.key_name().is_none(), "{cluster}: no SSH key");
        let metadata = data.metadata_options().expect("metadata");
        assert_eq!(metadata.http_tokens().map(|t| t.as_str()), Some("required"), "{cluster}: IMDSv2");
        assert_eq!(metadata.http_put_response_hop_limit(), Some(1), "{cluster}: pods cannot reach node credentials");
        assert_eq!(data.block_device_mappings()[0].ebs().and_then(|e| e.encrypted()), Some(true), "{cluster}");
        // Add-ons and access entries: moto answers 404; the proxy in front of it serves them.
        let mut addons = eks.list_addons().cluster_name(cluster).send().await.expect("add-ons").addons().to_vec();
        addons.sort();
        assert_eq!(addons, ["coredns", "eks-pod-identity-agent", "kube-proxy", "vpc-cni"], "{cluster}");
    }
    let eks = eks_client(&moto, PROD).await;
    let mut entries = eks
        .list_access_entries()
        .cluster_name("platform-prod")
        .send()
        .await
        .expect("entries")
        .access_entries()
        .to_vec();
    entries.sort();
    assert_eq!(
        entries,
        ["arn:aws:iam::333333333333:role/orders-developers", "arn:aws:iam::333333333333:role/platform-admins"]
    );
    let developers = "arn:aws:iam::333333333333:role/orders-developers";
    let policies = eks
        .list_associated_access_policies()
        .cluster_name("platform-prod")
        .principal_arn(developers)
        .send()
        .await
        .expect("policies");
    let policy = &policies.associated_access_policies()[0];
    assert_eq!(policy.policy_arn(), Some("arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy"));
    assert_eq!(policy.access_scope().map(|s| s.namespaces().to_vec()), Some(vec!["orders".to_owned()]));

    // The autoscaler moves the size: not drift. Someone opens the API server, and gives the
    // developers the whole cluster: drift, repaired.
    eks.update_nodegroup_config()
        .cluster_name("platform-prod")
        .nodegroup_name("general")
        .scaling_config(
            aws_sdk_eks::types::NodegroupScalingConfig::builder().min_size(3).max_size(9).desired_size(6).build(),
        )
        .send()
        .await
        .expect("scaled");
    let plan = json_of(&["plan", "-c", &dir], endpoint);
    assert_eq!(plan["changes"], json!([]), "a size the autoscaler chose is not drift: {plan:#}");
    eks.update_cluster_config()
        .name("platform-prod")
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .endpoint_public_access(true)
                .endpoint_private_access(true)
                .build(),
        )
        .send()
        .await
        .expect("opened");
    eks.associate_access_policy()
        .cluster_name("platform-prod")
        .principal_arn(developers)
        .policy_arn("arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy")
        .access_scope(
            aws_sdk_eks::types::AccessScope::builder().r#type(aws_sdk_eks::types::AccessScopeType::Cluster).build(),
        )
        .send()
        .await
        .expect("widened");
    let drift = enclave(&["drift", "-c", &dir, "--only", "deploy", "--output", "json"], endpoint);
    assert_eq!(drift.status.code(), Some(3), "{}", String::from_utf8_lossy(&drift.stderr));
    let drift: Value = serde_json::from_slice(&drift.stdout).expect("json");
    let mut drifted: Vec<(&str, &str)> = drift["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| (c["address"].as_str().unwrap_or_default(), c["reasons"][0]["attribute"].as_str().unwrap_or_default()))
        .collect();
    drifted.sort_unstable();
    assert_eq!(
        drifted,
        [
            ("prod/deploy/access-entry/platform-prod-orders-developers", "policy"),
            ("prod/deploy/eks-cluster/platform-prod", "endpoint"),
        ],
        "{drift:#}"
    );
    let repair = json_of(&["apply", "-c", &dir, "--only", "deploy", "--yes"], endpoint);
    assert_eq!(
        mutating(&repair["calls"]),
        BTreeMap::from([
            ("eks:AssociateAccessPolicy".to_owned(), 1),
            ("eks:DisassociateAccessPolicy".to_owned(), 1),
            ("eks:UpdateClusterConfig".to_owned(), 1),
        ])
    );
    let policies = eks
        .list_associated_access_policies()
        .cluster_name("platform-prod")
        .principal_arn(developers)
        .send()
        .await
        .expect("policies");
    let arns: Vec<&str> = policies.associated_access_policies().iter().filter_map(|p| p.policy_arn()).collect();
    assert_eq!(arns, ["arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy"], "back to editing one namespace");
    let described = eks.describe_cluster().name("platform-prod").send().await.expect("cluster");
    let vpc = described.cluster().and_then(|c| c.resources_vpc_config()).expect("vpc");
    assert!(!vpc.endpoint_public_access(), "closed again");
    let plan = json_of(&["plan", "-c", &dir], endpoint);
    assert_eq!(plan["changes"], json!([]), "repaired: {plan:#}");

    // Destroy: node groups before their cluster; an untagged decoy cluster stays.
    let (iam, ec2) = iam_ec2(&moto, PROD).await;
    let role = iam.get_role().role_name("platform-prod-cluster").send().await.expect("role");
    let subnets: Vec<String> = ec2
        .describe_subnets()
        .send()
        .await
        .expect("subnets")
        .subnets()
        .iter()
        .take(2)
        .filter_map(|s| s.subnet_id().map(str::to_owned))
        .collect();
    eks.create_cluster()
        .name("decoy")
        .role_arn(role.role().map(|r| r.arn()).unwrap_or_default())
        .resources_vpc_config(aws_sdk_eks::types::VpcConfigRequest::builder().set_subnet_ids(Some(subnets)).build())
        .send()
        .await
        .expect("decoy");
    let planned = json_of(&["plan", "-c", &dir, "--only", "deploy"], endpoint);
    assert_eq!(planned["changes"], json!([]), "a decoy is not ours: {planned:#}");
    let destroyed = json_of(&["destroy", "-c", &dir, "--only", "deploy", "--yes", "--force-images"], endpoint);
    assert_eq!(destroyed["report"]["failed"], json!([]), "{destroyed:#}");
    let order: Vec<&str> =
        destroyed["changes"].as_array().expect("changes").iter().filter_map(|c| c["address"].as_str()).collect();
    let at = |address: &str| order.iter().position(|a| *a == address).unwrap_or_else(|| panic!("{address}: {order:?}"));
    assert!(at("prod/deploy/node-group/platform-prod-general") < at("prod/deploy/eks-cluster/platform-prod"));
    assert!(at("prod/deploy/oidc-provider/platform-prod") < at("prod/deploy/eks-cluster/platform-prod"));
    assert!(at("prod/deploy/eks-addon/platform-prod-coredns") < at("prod/deploy/node-group/platform-prod-general"));
    assert!(at("prod/deploy/access-entry/platform-prod-platform-admins") < at("prod/deploy/eks-cluster/platform-prod"));
    let left = eks.list_clusters().send().await.expect("clusters");
    assert_eq!(left.clusters(), ["decoy"], "only ours were deleted");
}

/// A change to the text of the reference's clusters file.
type Edit = Box<dyn Fn(String) -> String>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto_server; cargo xtask test installs it and runs this with --ignored"]
async fn deploy_transitions_converge_in_one_apply_both_ways() {
    let moto = MotoServer::start().expect("moto");
    let endpoint = moto.endpoint();
    let root = std::env::temp_dir().join(format!("enclave-deploy-transitions-{}", std::process::id()));
    let reference = reference_dir();
    let transitions: Vec<(&str, Edit)> = vec![
        ("node group bounds", Box::new(|t| t.replace("min: 3, max: 9, desired: 3", "min: 2, max: 12, desired: 3"))),
        (
            "public endpoint on",
            Box::new(|t| {
                // platform-prod is the one cluster with a tier line.
                t.replacen("    tier: app\n", "    tier: app\n    public_endpoint: true\n", 1)
            }),
        ),
        (
            "a second node group",
            Box::new(|t| {
                t.replace(
                "      - { name: general, instance_types: [t3.large], min: 1, max: 3, desired: 1 }",
                "      - { name: general, instance_types: [t3.large], min: 1, max: 3, desired: 1 }\n      - { name: batch, instance_types: [c6i.large], min: 0, max: 4, desired: 0 }",
            )
            }),
        ),
        ("registry retention", Box::new(|t| t.replace("keep_tagged: 30", "keep_tagged: 10"))),
        (
            "repositories mutable and unscanned",
            Box::new(|t| {
                t.replace(
                    "  untagged_expire_days: 7",
                    "  untagged_expire_days: 7\n  immutable_tags: false\n  scan_on_push: false",
                )
            }),
        ),
    ];
    applied(&["apply", "-c", &reference, "--yes"], endpoint);
    for (index, (name, edit)) in transitions.iter().enumerate() {
        let changed = reference_with(&root.join(format!("t{index}")), "base/clusters.yaml", |text| {
            let edited = edit(text.clone());
            assert_ne!(edited, text, "{name}: the edit changes the spec");
            edited
        });
        for (direction, dir) in [("there", changed.as_str()), ("back", reference.as_str())] {
            let report = json_of(&["apply", "-c", dir, "--only", "deploy", "--yes"], endpoint);
            assert_eq!(report["report"]["failed"], json!([]), "{name} ({direction}): {report:#}");
            let plan = json_of(&["plan", "-c", dir], endpoint);
            assert_eq!(plan["changes"], json!([]), "{name} ({direction}) converges in one apply: {plan:#}");
        }
        println!("{name}: converged in one apply both ways");
    }
    let _ = std::fs::remove_dir_all(&root);
}

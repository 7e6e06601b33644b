//! What moto cannot show, against `aws-smithy-mocks`: scan findings (moto's scan on push
//! produces none), a scan still running, an image never scanned, and a repository name held by
//! someone else.

use std::time::Duration;

use aws_sdk_ecr::operation::describe_image_scan_findings::DescribeImageScanFindingsOutput;
use aws_sdk_ecr::types::{FindingSeverity, ImageScanFinding, ImageScanFindings, ImageScanStatus, ScanStatus};
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock};
use enclave_aws::reconcile::Waits;
use enclave_core::Address;
use enclave_core::plan::Attributes;
use enclave_core::reconcile::{Ids, Provider, Step};
use enclave_deploy::apply::Registry;
use enclave_deploy::clients::Clients;
use enclave_deploy::scan::{ScanError, Severity, scan_report};
use serde_json::json;

fn interceptor(rules: &[&Rule]) -> MockResponseInterceptor {
    rules.iter().fold(MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny), |i, rule| i.with_rule(rule))
}

macro_rules! client {
    ($service:ident, $rules:expr) => {
        $service::Client::from_conf(
            $service::Config::builder()
                .behavior_version_latest()
                .region($service::config::Region::new("eu-west-1"))
                .credentials_provider($service::config::Credentials::new("test", "test", None, None, "mock"))
                .http_client(create_mock_http_client())
                .interceptor(interceptor($rules))
                .build(),
        )
    };
}

fn clients(rules: &[&Rule]) -> Clients {
    Clients {
        ecr: client!(aws_sdk_ecr, rules),
        kms: client!(aws_sdk_kms, rules),
        eks: client!(aws_sdk_eks, rules),
        iam: client!(aws_sdk_iam, rules),
        ec2: client!(aws_sdk_ec2, rules),
    }
}

fn waits() -> Waits {
    Waits { timeout: Duration::from_secs(2), interval: Duration::from_millis(10) }
}

fn finding(name: &str, severity: FindingSeverity) -> ImageScanFinding {
    ImageScanFinding::builder()
        .name(name)
        .severity(severity)
        .uri(format!("https://nvd.nist.gov/vuln/detail/{name}"))
        .attributes(
            aws_sdk_ecr::types::Attribute::builder().key("package_name").value("openssl").build().expect("attr"),
        )
        .build()
}

fn scanned(status: ScanStatus, findings: Vec<ImageScanFinding>) -> DescribeImageScanFindingsOutput {
    DescribeImageScanFindingsOutput::builder()
        .repository_name("orders")
        .image_scan_status(ImageScanStatus::builder().status(status).description("mocked").build())
        .image_scan_findings(ImageScanFindings::builder().set_findings(Some(findings)).build())
        .build()
}

async fn report(findings: Vec<ImageScanFinding>) -> enclave_deploy::scan::ScanReport {
    let describe = mock!(aws_sdk_ecr::Client::describe_image_scan_findings)
        .match_requests(|request| {
            request.repository_name() == Some("orders")
                && request.image_id().and_then(|image| image.image_tag()) == Some("1.4.2")
        })
        .then_output(move || scanned(ScanStatus::Complete, findings.clone()));
    scan_report(&clients(&[&describe]), "orders", "1.4.2", waits()).await.expect("a verdict")
}

#[tokio::test]
async fn the_gate_passes_a_clean_image_and_a_medium_finding_and_stops_a_critical_one_at_high() {
    let clean = report(vec![]).await;
    assert!(clean.at_or_above(Severity::High).is_empty());
    assert!(clean.at_or_above(Severity::Informational).is_empty());

    let medium = report(vec![finding("CVE-2026-0001", FindingSeverity::Medium)]).await;
    assert!(medium.at_or_above(Severity::High).is_empty(), "medium passes the default gate");
    assert_eq!(medium.at_or_above(Severity::Medium).len(), 1, "and fails a stricter one");

    let critical = report(vec![
        finding("CVE-2026-0002", FindingSeverity::Low),
        finding("CVE-2026-0003", FindingSeverity::Critical),
    ])
    .await;
    let blocking = critical.at_or_above(Severity::High);
    assert_eq!(blocking.len(), 1);
    assert_eq!(blocking[0].name, "CVE-2026-0003");
    assert_eq!(blocking[0].package.as_deref(), Some("openssl"));
    assert_eq!(critical.findings[0].severity, Severity::Critical, "worst first");
}

#[tokio::test]
async fn a_running_scan_is_waited_for_and_a_missing_or_failed_one_is_no_verdict() {
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let calls = std::sync::Arc::new(calls);
    let counter = calls.clone();
    let describe = mock!(aws_sdk_ecr::Client::describe_image_scan_findings).then_output(move || {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if n < 2 {
            scanned(ScanStatus::InProgress, vec![])
        } else {
            scanned(ScanStatus::Complete, vec![finding("CVE-2026-0004", FindingSeverity::High)])
        }
    });
    let report = scan_report(&clients(&[&describe]), "orders", "1.4.2", waits()).await.expect("waited");
    assert_eq!(report.at_or_above(Severity::High).len(), 1);
    assert!(calls.load(std::sync::atomic::Ordering::SeqCst) >= 3, "polled until complete");

    let missing = mock!(aws_sdk_ecr::Client::describe_image_scan_findings).then_error(|| {
        aws_sdk_ecr::operation::describe_image_scan_findings::DescribeImageScanFindingsError::generic(
            aws_sdk_ecr::error::ErrorMetadata::builder().code("ScanNotFoundException").message("no scan").build(),
        )
    });
    let error = scan_report(&clients(&[&missing]), "orders", "1.4.2", waits()).await.expect_err("no scan");
    assert!(matches!(error, ScanError::NoScan { .. }), "{error}");

    let failed = mock!(aws_sdk_ecr::Client::describe_image_scan_findings)
        .then_output(|| scanned(ScanStatus::UnsupportedImage, vec![]));
    let error = scan_report(&clients(&[&failed]), "orders", "1.4.2", waits()).await.expect_err("failed");
    assert!(matches!(error, ScanError::Failed { .. }), "{error}");
}

#[tokio::test]
async fn a_repository_name_held_by_another_stack_is_never_taken_over() {
    let create = mock!(aws_sdk_ecr::Client::create_repository).then_error(|| {
        aws_sdk_ecr::operation::create_repository::CreateRepositoryError::generic(
            aws_sdk_ecr::error::ErrorMetadata::builder()
                .code("RepositoryAlreadyExistsException")
                .message("taken")
                .build(),
        )
    });
    let describe = mock!(aws_sdk_ecr::Client::describe_repositories).then_output(|| {
        aws_sdk_ecr::operation::describe_repositories::DescribeRepositoriesOutput::builder()
            .repositories(
                aws_sdk_ecr::types::Repository::builder()
                    .repository_name("orders")
                    .repository_arn("arn:aws:ecr:eu-west-1:333333333333:repository/orders")
                    .build(),
            )
            .build()
    });
    let tags = mock!(aws_sdk_ecr::Client::list_tags_for_resource).then_output(|| {
        let tag =
            |key: &str, value: &str| aws_sdk_ecr::types::Tag::builder().key(key).value(value).build().expect("tag");
        aws_sdk_ecr::operation::list_tags_for_resource::ListTagsForResourceOutput::builder()
            .tags(tag("enclave:stack", "someone-else"))
            .tags(tag("enclave:address", "prod/deploy/ecr-repository/orders"))
            .build()
    });
    let put = mock!(aws_sdk_ecr::Client::put_image_scanning_configuration).then_output(|| {
        aws_sdk_ecr::operation::put_image_scanning_configuration::PutImageScanningConfigurationOutput::builder().build()
    });
    let registry = Registry::new(
        "acme",
        "eu-west-1",
        [("prod".to_owned(), ("333333333333".to_owned(), clients(&[&create, &describe, &tags, &put])))].into(),
    )
    .waits(waits());
    let address: Address = "prod/deploy/ecr-repository/orders".parse().expect("address");
    let after: Attributes = serde_json::from_value(json!({
        "name": "orders",
        "encryption": { "type": "KMS", "kms_key": "prod/access/kms-key/access" },
        "scan_on_push": true,
        "tag_mutability": "IMMUTABLE",
        "lifecycle": null,
        "policy": null
    }))
    .expect("attributes");
    let error = registry.run(&Step::create(&address, &after), &Ids::default()).await.expect_err("refused");
    assert!(error.to_string().contains("without this stack's tags"), "{error}");
    assert_eq!(put.num_calls(), 0, "nothing of the other stack's repository was changed");
}

fn active_cluster() -> aws_sdk_eks::operation::describe_cluster::DescribeClusterOutput {
    aws_sdk_eks::operation::describe_cluster::DescribeClusterOutput::builder()
        .cluster(
            aws_sdk_eks::types::Cluster::builder()
                .name("main")
                .status(aws_sdk_eks::types::ClusterStatus::Active)
                .version("1.34")
                .build(),
        )
        .build()
}

fn provider(rules: &[&Rule]) -> Registry {
    Registry::new("acme", "eu-west-1", [("prod".to_owned(), ("333333333333".to_owned(), clients(rules)))].into())
        .waits(waits())
}

fn attributes(value: serde_json::Value) -> Attributes {
    serde_json::from_value(value).expect("attributes")
}

/// moto answers 404 to `UpdateClusterVersion` and `UpdateNodegroupVersion`: the in-place
/// upgrade, control plane first and waited for, then the node group, is shown here.
#[tokio::test]
async fn a_version_change_upgrades_the_control_plane_then_the_node_group_in_place() {
    let upgrade = mock!(aws_sdk_eks::Client::update_cluster_version)
        .match_requests(|request| request.name() == Some("main") && request.version() == Some("1.34"))
        .then_output(|| aws_sdk_eks::operation::update_cluster_version::UpdateClusterVersionOutput::builder().build());
    let updating = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = updating.clone();
    let describe = mock!(aws_sdk_eks::Client::describe_cluster).then_output(move || {
        // Two polls see the update running, then it is done.
        if seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2 {
            aws_sdk_eks::operation::describe_cluster::DescribeClusterOutput::builder()
                .cluster(
                    aws_sdk_eks::types::Cluster::builder()
                        .name("main")
                        .status(aws_sdk_eks::types::ClusterStatus::Updating)
                        .build(),
                )
                .build()
        } else {
            active_cluster()
        }
    });
    let group_upgrade = mock!(aws_sdk_eks::Client::update_nodegroup_version)
        .match_requests(|request| {
            request.cluster_name() == Some("main")
                && request.nodegroup_name() == Some("general")
                && request.version() == Some("1.34")
        })
        .then_output(|| {
            aws_sdk_eks::operation::update_nodegroup_version::UpdateNodegroupVersionOutput::builder().build()
        });
    let group = mock!(aws_sdk_eks::Client::describe_nodegroup).then_output(|| {
        aws_sdk_eks::operation::describe_nodegroup::DescribeNodegroupOutput::builder()
            .nodegroup(
                aws_sdk_eks::types::Nodegroup::builder()
                    .nodegroup_name("general")
                    .status(aws_sdk_eks::types::NodegroupStatus::Active)
                    .build(),
            )
            .build()
    });
    let registry = provider(&[&upgrade, &describe, &group_upgrade, &group]);

    let cluster: Address = "prod/deploy/eks-cluster/main".parse().expect("address");
    let endpoint = json!({ "private": true, "public": false });
    let logging = json!(["api", "audit", "authenticator", "controllerManager", "scheduler"]);
    let before = attributes(json!({ "name": "main", "version": "1.33", "endpoint": endpoint, "logging": logging }));
    let after = attributes(json!({ "name": "main", "version": "1.34", "endpoint": endpoint, "logging": logging }));
    let ids = Ids::new([(cluster.clone(), "main".to_owned())].into());
    let step = Step::update(&cluster, &before, &after);
    registry.run(&step, &ids).await.expect("upgraded");
    assert_eq!(upgrade.num_calls(), 1, "one in-place version update");
    assert!(updating.load(std::sync::atomic::Ordering::SeqCst) >= 3, "waited until ACTIVE again");

    let node_group: Address = "prod/deploy/node-group/main-general".parse().expect("address");
    let scaling = json!({ "min": 1, "max": 3 });
    let before = attributes(json!({ "name": "general", "version": "1.33", "scaling": scaling }));
    let after = attributes(json!({ "name": "general", "version": "1.34", "scaling": scaling }));
    let ids = Ids::new([(node_group.clone(), "main/general".to_owned())].into());
    let step = Step::update(&node_group, &before, &after);
    registry.run(&step, &ids).await.expect("upgraded");
    assert_eq!(group_upgrade.num_calls(), 1, "the node group follows its control plane");
}

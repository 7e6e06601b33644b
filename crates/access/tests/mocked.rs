//! What moto cannot answer, against `aws-smithy-mocks`: the Session Manager agent's status
//! (moto: 500), a trail whose delivery role is not visible to CloudTrail yet (moto never
//! refuses), a key already scheduled for deletion, names held by someone else, and the
//! bastion lookup skipping instances of other stacks.

use std::time::Duration;

use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock};
use enclave_access::apply::{Access, Account};
use enclave_access::clients::Clients;
use enclave_aws::reconcile::Waits;
use enclave_core::Address;
use enclave_core::plan::Attributes;
use enclave_core::reconcile::{Ids, Provider, Step};
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

/// Clients of account `dev` whose every service answers only from `rules`.
fn clients(rules: &[&Rule]) -> Clients {
    Clients {
        ec2: client!(aws_sdk_ec2, rules),
        iam: client!(aws_sdk_iam, rules),
        kms: client!(aws_sdk_kms, rules),
        logs: client!(aws_sdk_cloudwatchlogs, rules),
        s3: client!(aws_sdk_s3, rules),
        ssm: client!(aws_sdk_ssm, rules),
        cloudtrail: client!(aws_sdk_cloudtrail, rules),
        tagging: client!(aws_sdk_resourcegroupstagging, rules),
    }
}

fn access(rules: &[&Rule]) -> Access {
    let account = Account { clients: clients(rules), id: "111111111111".into() };
    Access::new("acme", "eu-west-1", [("dev".to_owned(), account)].into())
        .waits(Waits { timeout: Duration::from_millis(2_000), interval: Duration::from_millis(10) })
}

fn address(text: &str) -> Address {
    text.parse().expect("address")
}

fn attributes(value: serde_json::Value) -> Attributes {
    serde_json::from_value(value).expect("attributes")
}

fn ids(pairs: &[(&str, &str)]) -> Ids {
    Ids::new(pairs.iter().map(|(a, id)| (address(a), (*id).to_owned())).collect())
}

fn error(code: &str) -> aws_sdk_cloudtrail::error::ErrorMetadata {
    aws_sdk_cloudtrail::error::ErrorMetadata::builder().code(code).message(format!("mocked {code}")).build()
}

#[tokio::test]
async fn the_agent_status_is_read_from_systems_manager() {
    let describe = mock!(aws_sdk_ssm::Client::describe_instance_information)
        .match_requests(|request| {
            request.filters().iter().any(|f| f.key() == "InstanceIds" && f.values() == ["i-0bastion"])
        })
        .then_output(|| {
            aws_sdk_ssm::operation::describe_instance_information::DescribeInstanceInformationOutput::builder()
                .instance_information_list(
                    aws_sdk_ssm::types::InstanceInformation::builder()
                        .instance_id("i-0bastion")
                        .ping_status(aws_sdk_ssm::types::PingStatus::Online)
                        .build(),
                )
                .build()
        });
    let clients = clients(&[&describe]);
    let status = enclave_access::connect::agent_status(&clients, "i-0bastion").await.expect("answers");
    assert_eq!(status.as_deref(), Some("Online"));
    assert_eq!(describe.num_calls(), 1);
}

#[tokio::test]
async fn the_bastion_lookup_takes_only_this_stacks_bastion() {
    let tag = |key: &str, value: &str| aws_sdk_ec2::types::Tag::builder().key(key).value(value).build();
    let running =
        || aws_sdk_ec2::types::InstanceState::builder().name(aws_sdk_ec2::types::InstanceStateName::Running).build();
    let describe = mock!(aws_sdk_ec2::Client::describe_instances).then_output(move || {
        aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput::builder()
            .reservations(
                aws_sdk_ec2::types::Reservation::builder()
                    // Another stack's bastion at the same address (moto ignores tag filters).
                    .instances(
                        aws_sdk_ec2::types::Instance::builder()
                            .instance_id("i-other")
                            .state(running())
                            .tags(tag("enclave:stack", "other"))
                            .tags(tag("enclave:address", "dev/access/instance/bastion"))
                            .build(),
                    )
                    // This stack, but not the bastion.
                    .instances(
                        aws_sdk_ec2::types::Instance::builder()
                            .instance_id("i-worker")
                            .state(running())
                            .tags(tag("enclave:stack", "acme"))
                            .tags(tag("enclave:address", "dev/deploy/instance/worker"))
                            .build(),
                    )
                    .instances(
                        aws_sdk_ec2::types::Instance::builder()
                            .instance_id("i-ours")
                            .private_ip_address("10.1.0.10")
                            .state(running())
                            .tags(tag("enclave:stack", "acme"))
                            .tags(tag("enclave:address", "dev/access/instance/bastion"))
                            .build(),
                    )
                    .build(),
            )
            .build()
    });
    let clients = clients(&[&describe]);
    let bastion = enclave_access::connect::find_bastion(&clients, "acme", "dev").await.expect("answers");
    assert_eq!(
        bastion,
        Some(enclave_access::connect::Bastion { instance_id: "i-ours".into(), private_ip: Some("10.1.0.10".into()) })
    );
}

fn trail_step_attributes() -> Attributes {
    attributes(json!({
        "name": "acme",
        "bucket": "dev/access/s3-bucket/trail",
        "multi_region": true,
        "log_file_validation": true,
        "global_service_events": true,
        "kms_key": "dev/access/kms-alias/access",
        "log_group": "dev/access/log-group/trail",
        "log_role": "dev/access/iam-role/trail-logs",
        "logging": true,
    }))
}

fn trail_ids() -> Ids {
    ids(&[
        ("dev/access/s3-bucket/trail", "acme-111111111111-eu-west-1-trail"),
        ("dev/access/kms-alias/access", "alias/enclave/acme/access"),
        ("dev/access/log-group/trail", "/enclave/acme/cloudtrail"),
        ("dev/access/iam-role/trail-logs", "arn:aws:iam::111111111111:role/enclave/acme-cloudtrail-logs"),
    ])
}

#[tokio::test]
async fn a_trail_whose_delivery_role_is_not_visible_yet_is_created_once_it_is() {
    let create = mock!(aws_sdk_cloudtrail::Client::create_trail)
        .sequence()
        .error(|| {
            aws_sdk_cloudtrail::operation::create_trail::CreateTrailError::generic(error(
                "InvalidCloudWatchLogsRoleArnException",
            ))
        })
        .times(2)
        .output(|| {
            aws_sdk_cloudtrail::operation::create_trail::CreateTrailOutput::builder()
                .trail_arn("arn:aws:cloudtrail:eu-west-1:111111111111:trail/acme")
                .build()
        })
        .build();
    let start = mock!(aws_sdk_cloudtrail::Client::start_logging)
        .match_requests(|request| request.name() == Some("acme"))
        .then_output(|| aws_sdk_cloudtrail::operation::start_logging::StartLoggingOutput::builder().build());
    let access = access(&[&create, &start]);
    let trail = address("dev/access/trail/main");
    let after = trail_step_attributes();
    let id = access.run(&Step::create(&trail, &after), &trail_ids()).await.expect("created on the third try");
    assert_eq!(id.as_deref(), Some("arn:aws:cloudtrail:eu-west-1:111111111111:trail/acme"));
    assert_eq!(create.num_calls(), 3);
    assert_eq!(start.num_calls(), 1, "logging is started");
}

#[tokio::test]
async fn a_trail_of_the_same_name_without_our_tags_is_never_taken_over() {
    let create = mock!(aws_sdk_cloudtrail::Client::create_trail).then_error(|| {
        aws_sdk_cloudtrail::operation::create_trail::CreateTrailError::generic(error("TrailAlreadyExistsException"))
    });
    let tags = mock!(aws_sdk_cloudtrail::Client::list_tags).then_output(|| {
        aws_sdk_cloudtrail::operation::list_tags::ListTagsOutput::builder()
            .resource_tag_list(
                aws_sdk_cloudtrail::types::ResourceTag::builder()
                    .resource_id("arn:aws:cloudtrail:eu-west-1:111111111111:trail/acme")
                    .tags_list(
                        aws_sdk_cloudtrail::types::Tag::builder().key("team").value("security").build().expect("tag"),
                    )
                    .build(),
            )
            .build()
    });
    let update = mock!(aws_sdk_cloudtrail::Client::update_trail)
        .then_output(|| aws_sdk_cloudtrail::operation::update_trail::UpdateTrailOutput::builder().build());
    let access = access(&[&create, &tags, &update]);
    let trail = address("dev/access/trail/main");
    let after = trail_step_attributes();
    let error = access.run(&Step::create(&trail, &after), &trail_ids()).await.expect_err("refused");
    assert!(error.to_string().contains("exists without this stack's tags"), "{error}");
    assert_eq!(update.num_calls(), 0, "someone else's trail is left as it is");
}

#[tokio::test]
async fn a_key_already_scheduled_for_deletion_counts_as_deleted() {
    let schedule = mock!(aws_sdk_kms::Client::schedule_key_deletion)
        .match_requests(|request| request.key_id() == Some("1234abcd-12ab-34cd-56ef-1234567890ab"))
        .then_error(|| {
            aws_sdk_kms::operation::schedule_key_deletion::ScheduleKeyDeletionError::generic(
                aws_sdk_kms::error::ErrorMetadata::builder()
                    .code("KMSInvalidStateException")
                    .message("pending")
                    .build(),
            )
        });
    let access = access(&[&schedule]);
    let key = address("dev/access/kms-key/access");
    let before = attributes(json!({ "description": "enclave acme", "key_usage": "ENCRYPT_DECRYPT", "rotation": true }));
    let arn = "arn:aws:kms:eu-west-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    access.run(&Step::delete(&key, &before), &ids(&[("dev/access/kms-key/access", arn)])).await.expect("done");
    assert_eq!(schedule.num_calls(), 1);
}

#[tokio::test]
async fn a_bucket_name_held_by_another_account_fails_the_create_and_changes_nothing() {
    let create = mock!(aws_sdk_s3::Client::create_bucket).then_error(|| {
        aws_sdk_s3::operation::create_bucket::CreateBucketError::generic(
            aws_sdk_s3::error::ErrorMetadata::builder().code("BucketAlreadyExists").message("taken").build(),
        )
    });
    let tagging = mock!(aws_sdk_s3::Client::put_bucket_tagging)
        .then_output(|| aws_sdk_s3::operation::put_bucket_tagging::PutBucketTaggingOutput::builder().build());
    let access = access(&[&create, &tagging]);
    let bucket = address("dev/access/s3-bucket/trail");
    let after = attributes(json!({ "name": "acme-111111111111-eu-west-1-trail" }));
    let error = access.run(&Step::create(&bucket, &after), &Ids::default()).await.expect_err("refused");
    assert!(error.to_string().contains("s3:CreateBucket"), "{error}");
    assert_eq!(tagging.num_calls(), 0, "nothing is done to a bucket that is not ours");
}

#[tokio::test]
async fn a_replacement_bastion_is_launched_with_a_fresh_token_when_the_old_one_answers_with_its_terminated_predecessor()
{
    let state = |name| aws_sdk_ec2::types::InstanceState::builder().name(name).build();
    let run = mock!(aws_sdk_ec2::Client::run_instances)
        .sequence()
        .output(move || {
            // The token of the first bastion: EC2 replays that launch.
            aws_sdk_ec2::operation::run_instances::RunInstancesOutput::builder()
                .instances(
                    aws_sdk_ec2::types::Instance::builder()
                        .instance_id("i-old")
                        .state(state(aws_sdk_ec2::types::InstanceStateName::Terminated))
                        .build(),
                )
                .build()
        })
        .output(move || {
            aws_sdk_ec2::operation::run_instances::RunInstancesOutput::builder()
                .instances(
                    aws_sdk_ec2::types::Instance::builder()
                        .instance_id("i-new")
                        .state(state(aws_sdk_ec2::types::InstanceStateName::Pending))
                        .build(),
                )
                .build()
        })
        .build();
    let describe = mock!(aws_sdk_ec2::Client::describe_instances)
        .match_requests(|request| request.instance_ids() == ["i-new"])
        .then_output(move || {
            aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput::builder()
                .reservations(
                    aws_sdk_ec2::types::Reservation::builder()
                        .instances(
                            aws_sdk_ec2::types::Instance::builder()
                                .instance_id("i-new")
                                .state(state(aws_sdk_ec2::types::InstanceStateName::Running))
                                .build(),
                        )
                        .build(),
                )
                .build()
        });
    let access = access(&[&run, &describe]);
    let instance = address("dev/access/instance/bastion");
    let after = attributes(json!({
        "launch_template": "dev/access/launch-template/bastion",
        "subnet": "dev/net/subnet/data-a",
        "image": "ami-0123456789abcdef0",
        "instance_type": "t3.micro",
        "key_name": null,
        "public_ip": false,
        "instance_profile": "dev/access/instance-profile/session-instance",
        "root_volume_encrypted": true,
        "http_tokens": "required",
        "http_put_response_hop_limit": 1,
        "security_groups": ["dev/access/security-group/bastion"],
        "tags": { "Name": "dev-instance-bastion" },
    }));
    let known = ids(&[
        ("dev/access/launch-template/bastion", "lt-1"),
        ("dev/net/subnet/data-a", "subnet-1"),
        (
            "dev/access/instance-profile/session-instance",
            "arn:aws:iam::111111111111:instance-profile/enclave/acme-ssm-instance",
        ),
        ("dev/access/security-group/bastion", "sg-1"),
    ]);
    let id = access.run(&Step::create(&instance, &after), &known).await.expect("launched");
    assert_eq!(id.as_deref(), Some("i-new"));
    assert_eq!(run.num_calls(), 2, "a second launch, with another token");
}

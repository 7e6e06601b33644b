//! Error paths moto cannot produce, against `aws-smithy-mocks`: a NAT gateway that never
//! becomes available (the waiter gives up with what it waited for), `DependencyViolation` on
//! delete (retried until it clears; a VPC that stays blocked is reported with the untagged
//! resources in it), and creates that fail ambiguously (looked up by tag before any retry).

use std::time::Duration;

use aws_sdk_ec2::error::ErrorMetadata;
use aws_sdk_ec2::operation::create_vpc::{CreateVpcError, CreateVpcOutput};
use aws_sdk_ec2::operation::delete_subnet::{DeleteSubnetError, DeleteSubnetOutput};
use aws_sdk_ec2::operation::delete_vpc::DeleteVpcError;
use aws_sdk_ec2::types::{NatGateway, NatGatewayState, SecurityGroup, Subnet, Tag, Vpc};
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock};
use enclave_core::Address;
use enclave_core::plan::Attributes;
use enclave_core::reconcile::{Ids, Provider, Step};
use enclave_net::apply::{Network, Waits};
use enclave_net::clients::Clients;
use serde_json::json;

fn credentials() -> aws_sdk_ec2::config::Credentials {
    aws_sdk_ec2::config::Credentials::new("test", "test", None, None, "mock")
}

fn interceptor(rules: &[&Rule]) -> MockResponseInterceptor {
    rules.iter().fold(MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny), |i, rule| i.with_rule(rule))
}

/// A provider for account `dev` whose EC2 answers only from `rules`.
fn network(rules: &[&Rule]) -> Network {
    let region = aws_sdk_ec2::config::Region::new("eu-west-1");
    let ec2 = aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::Config::builder()
            .behavior_version_latest()
            .region(region.clone())
            .credentials_provider(credentials())
            .http_client(create_mock_http_client())
            .interceptor(interceptor(rules))
            .build(),
    );
    let logs = aws_sdk_cloudwatchlogs::Client::from_conf(
        aws_sdk_cloudwatchlogs::Config::builder()
            .behavior_version_latest()
            .region(region.clone())
            .credentials_provider(credentials())
            .http_client(create_mock_http_client())
            .build(),
    );
    let iam = aws_sdk_iam::Client::from_conf(
        aws_sdk_iam::Config::builder()
            .behavior_version_latest()
            .region(region)
            .credentials_provider(credentials())
            .http_client(create_mock_http_client())
            .build(),
    );
    Network::new("acme", [("dev".to_owned(), Clients { ec2, logs, iam })].into())
        .waits(Waits { timeout: Duration::from_millis(300), interval: Duration::from_millis(20) })
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

fn service_error(code: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(format!("mocked {code}")).build()
}

#[tokio::test]
async fn a_nat_gateway_that_stays_pending_times_out_saying_what_was_awaited() {
    let create = mock!(aws_sdk_ec2::Client::create_nat_gateway).then_output(|| {
        aws_sdk_ec2::operation::create_nat_gateway::CreateNatGatewayOutput::builder()
            .nat_gateway(NatGateway::builder().nat_gateway_id("nat-1").state(NatGatewayState::Pending).build())
            .build()
    });
    let describe = mock!(aws_sdk_ec2::Client::describe_nat_gateways).then_output(|| {
        aws_sdk_ec2::operation::describe_nat_gateways::DescribeNatGatewaysOutput::builder()
            .nat_gateways(NatGateway::builder().nat_gateway_id("nat-1").state(NatGatewayState::Pending).build())
            .build()
    });
    let network = network(&[&create, &describe]);
    let nat = address("dev/net/nat-gateway/a");
    let after = attributes(json!({
        "subnet": "dev/net/subnet/egress-a", "allocation": "dev/net/eip/nat-a", "connectivity_type": "public",
        "tags": { "Name": "dev-nat-gateway-a" },
    }));
    let step = Step::create(&nat, &after);
    let ids = ids(&[("dev/net/subnet/egress-a", "subnet-1"), ("dev/net/eip/nat-a", "eipalloc-1")]);
    let error = network.run(&step, &ids).await.expect_err("times out");
    assert!(
        error
            .to_string()
            .contains("timed out after 300ms waiting for NAT gateway nat-1 to be available (last state: pending)"),
        "{error}"
    );
    assert_eq!(create.num_calls(), 1);
    assert!(describe.num_calls() >= 5, "polled every interval: {}", describe.num_calls());
}

#[tokio::test]
async fn dependency_violation_on_delete_is_retried_until_it_clears() {
    let delete = mock!(aws_sdk_ec2::Client::delete_subnet)
        .sequence()
        .error(|| DeleteSubnetError::generic(service_error("DependencyViolation")))
        .times(2)
        .output(|| DeleteSubnetOutput::builder().build())
        .build();
    let network = network(&[&delete]);
    let subnet = address("dev/net/subnet/app-a");
    let before = attributes(json!({ "cidr_block": "10.1.0.0/20" }));
    let step = Step::delete(&subnet, &before);
    network.run(&step, &ids(&[("dev/net/subnet/app-a", "subnet-1")])).await.expect("deleted on the third try");
    assert_eq!(delete.num_calls(), 3);
}

#[tokio::test]
async fn a_vpc_held_by_untagged_resources_is_reported_with_them_and_they_are_left_alone() {
    let delete = mock!(aws_sdk_ec2::Client::delete_vpc)
        .then_error(|| DeleteVpcError::generic(service_error("DependencyViolation")));
    let subnets = mock!(aws_sdk_ec2::Client::describe_subnets).then_output(|| {
        aws_sdk_ec2::operation::describe_subnets::DescribeSubnetsOutput::builder()
            .subnets(Subnet::builder().subnet_id("subnet-squatter").vpc_id("vpc-1").cidr_block("10.1.200.0/24").build())
            .subnets(
                Subnet::builder()
                    .subnet_id("subnet-ours")
                    .vpc_id("vpc-1")
                    .tags(Tag::builder().key("enclave:stack").value("acme").build())
                    .build(),
            )
            .build()
    });
    let groups = mock!(aws_sdk_ec2::Client::describe_security_groups).then_output(|| {
        aws_sdk_ec2::operation::describe_security_groups::DescribeSecurityGroupsOutput::builder()
            .security_groups(
                SecurityGroup::builder().group_id("sg-default").vpc_id("vpc-1").group_name("default").build(),
            )
            .security_groups(
                SecurityGroup::builder().group_id("sg-squatter").vpc_id("vpc-1").group_name("theirs").build(),
            )
            .build()
    });
    let interfaces = mock!(aws_sdk_ec2::Client::describe_network_interfaces).then_output(|| {
        aws_sdk_ec2::operation::describe_network_interfaces::DescribeNetworkInterfacesOutput::builder().build()
    });
    let network = network(&[&delete, &subnets, &groups, &interfaces]);
    let vpc = address("dev/net/vpc/main");
    let before = attributes(json!({ "cidr_block": "10.1.0.0/16" }));
    let step = Step::delete(&vpc, &before);
    let error = network.run(&step, &ids(&[("dev/net/vpc/main", "vpc-1")])).await.expect_err("blocked");
    let message = error.to_string();
    assert!(message.contains("subnet subnet-squatter (10.1.200.0/24)"), "{message}");
    assert!(message.contains("security group sg-squatter"), "{message}");
    assert!(!message.contains("subnet-ours") && !message.contains("sg-default"), "{message}");
    assert!(message.contains("leaves alone"), "{message}");
    assert!(delete.num_calls() >= 2, "retried within the wait bound");
}

#[tokio::test]
async fn an_ambiguous_create_failure_adopts_what_the_lost_call_made_instead_of_duplicating() {
    // The first CreateVpc "fails" with a 500 after AWS made the VPC; the lookup by address tag
    // finds it, so no second CreateVpc is sent.
    let create =
        mock!(aws_sdk_ec2::Client::create_vpc).then_error(|| CreateVpcError::generic(service_error("InternalError")));
    let lookup = mock!(aws_sdk_ec2::Client::describe_vpcs).then_output(|| {
        aws_sdk_ec2::operation::describe_vpcs::DescribeVpcsOutput::builder()
            .vpcs(
                Vpc::builder()
                    .vpc_id("vpc-made")
                    .tags(Tag::builder().key("enclave:stack").value("acme").build())
                    .tags(Tag::builder().key("enclave:address").value("dev/net/vpc/main").build())
                    .build(),
            )
            // Moto ignores some tag filters: a VPC of another stack in the answer is not adopted.
            .vpcs(
                Vpc::builder()
                    .vpc_id("vpc-other-stack")
                    .tags(Tag::builder().key("enclave:stack").value("someone-else").build())
                    .tags(Tag::builder().key("enclave:address").value("dev/net/vpc/main").build())
                    .build(),
            )
            .build()
    });
    let modify = mock!(aws_sdk_ec2::Client::modify_vpc_attribute)
        .then_output(|| aws_sdk_ec2::operation::modify_vpc_attribute::ModifyVpcAttributeOutput::builder().build());
    let network = network(&[&create, &lookup, &modify]);
    let vpc = address("dev/net/vpc/main");
    let after = attributes(json!({
        "cidr_block": "10.1.0.0/16", "enable_dns_support": true, "enable_dns_hostnames": true,
        "tags": { "Name": "dev-vpc-main" },
    }));
    let step = Step::create(&vpc, &after);
    let id = network.run(&step, &Ids::default()).await.expect("adopted");
    assert_eq!(id.as_deref(), Some("vpc-made"));
    assert_eq!((create.num_calls(), lookup.num_calls()), (1, 1));
    assert_eq!(modify.num_calls(), 1, "hostnames turned on; support is on by default");
}

#[tokio::test]
async fn throttled_creates_are_retried_and_do_not_fail_the_step() {
    let create = mock!(aws_sdk_ec2::Client::create_vpc)
        .sequence()
        .error(|| CreateVpcError::generic(service_error("RequestLimitExceeded")))
        .times(3)
        .output(|| CreateVpcOutput::builder().vpc(Vpc::builder().vpc_id("vpc-new").build()).build())
        .build();
    let lookup = mock!(aws_sdk_ec2::Client::describe_vpcs)
        .then_output(|| aws_sdk_ec2::operation::describe_vpcs::DescribeVpcsOutput::builder().build());
    let modify = mock!(aws_sdk_ec2::Client::modify_vpc_attribute)
        .then_output(|| aws_sdk_ec2::operation::modify_vpc_attribute::ModifyVpcAttributeOutput::builder().build());
    let network = network(&[&create, &lookup, &modify]);
    let vpc = address("dev/net/vpc/main");
    let after =
        attributes(json!({ "cidr_block": "10.1.0.0/16", "enable_dns_support": true, "enable_dns_hostnames": false }));
    let step = Step::create(&vpc, &after);
    let id = network.run(&step, &Ids::default()).await.expect("created after throttling");
    assert_eq!(id.as_deref(), Some("vpc-new"));
    assert_eq!(create.num_calls(), 4);
    assert_eq!(modify.num_calls(), 0);
}

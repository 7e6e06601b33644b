//! Assume-role per account, endpoint override and call counting, against a real moto server.

use enclave_aws::moto::MotoServer;
use enclave_aws::{Aws, AwsOptions};

fn ec2(aws: &Aws, config: &aws_config::SdkConfig) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::from_conf(aws_sdk_ec2::config::Builder::from(config).interceptor(aws.counter()).build())
}

fn sts(aws: &Aws, config: &aws_config::SdkConfig) -> aws_sdk_sts::Client {
    aws_sdk_sts::Client::from_conf(aws_sdk_sts::config::Builder::from(config).interceptor(aws.counter()).build())
}

#[tokio::test]
#[ignore = "needs moto_server; cargo xtask test installs it and runs this with --ignored"]
async fn each_account_gets_its_own_assumed_role_once_and_calls_are_counted() {
    let moto = MotoServer::start().expect("moto starts");
    let options = AwsOptions::new("eu-west-1", "OrganizationAccountAccessRole").endpoint(moto.endpoint());
    let aws = Aws::from_config(moto.sdk_config("eu-west-1"), options);

    let dev = aws.account("111111111111").await.expect("assume into dev");
    let prod = aws.account("333333333333").await.expect("assume into prod");
    let _again = aws.account("111111111111").await.expect("cached");

    let identity = sts(&aws, &dev).get_caller_identity().send().await.expect("identity");
    assert_eq!(identity.account(), Some("111111111111"), "calls land in the account of the assumed role");
    assert!(identity.arn().unwrap_or_default().contains("OrganizationAccountAccessRole"), "{:?}", identity.arn());

    let created = ec2(&aws, &dev).create_vpc().cidr_block("10.1.0.0/16").send().await.expect("create VPC in dev");
    let vpc_id = created.vpc().and_then(|v| v.vpc_id()).expect("vpc id").to_owned();
    let in_dev = ec2(&aws, &dev).describe_vpcs().vpc_ids(&vpc_id).send().await.expect("describe in dev");
    assert_eq!(in_dev.vpcs().len(), 1);
    let in_prod = ec2(&aws, &prod).describe_vpcs().send().await.expect("describe in prod");
    assert!(in_prod.vpcs().iter().all(|v| v.vpc_id() != Some(vpc_id.as_str())), "accounts are isolated");

    let calls = aws.calls();
    println!("calls: {calls:?}");
    assert_eq!(calls.get("sts:AssumeRole"), Some(&2), "one AssumeRole per account for the whole run");
    assert_eq!(calls.get("ec2:DescribeVpcs"), Some(&2));
    assert_eq!(calls.get("ec2:CreateVpc"), Some(&1));
    assert_eq!(calls.get("sts:GetCallerIdentity"), Some(&1));
    assert_eq!(aws.counter().mutating(), 3, "AssumeRole twice and CreateVpc once");
}

#[tokio::test]
#[ignore = "needs moto_server; cargo xtask test installs it and runs this with --ignored"]
async fn an_unreachable_endpoint_fails_assume_role_with_the_role_in_the_message() {
    let moto = MotoServer::start().expect("moto starts");
    let mut options = AwsOptions::new("eu-west-1", "MissingRole").endpoint("http://127.0.0.1:9");
    options.max_attempts = 1;
    let aws = Aws::from_config(moto.sdk_config("eu-west-1"), options);
    let error = aws.account("222222222222").await.expect_err("no server on port 9");
    assert!(error.to_string().contains("arn:aws:iam::222222222222:role/MissingRole"), "{error}");
}

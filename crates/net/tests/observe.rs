//! Observation against a real moto server: only tagged resources of the stack are seen, in
//! one batched call per type however many subnets exist, and the plan against the spec says
//! what is missing and what differs.

use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use enclave_aws::moto::MotoServer;
use enclave_aws::{Aws, AwsOptions};
use enclave_core::plan::{self, Action};
use enclave_net::observe::{ADDRESS_TAG, STACK_TAG, TIER_TAG, observe};

fn tags(kind: ResourceType, stack: &str, address: &str, tier: Option<&str>) -> TagSpecification {
    let mut builder = TagSpecification::builder()
        .resource_type(kind)
        .tags(Tag::builder().key(STACK_TAG).value(stack).build())
        .tags(Tag::builder().key(ADDRESS_TAG).value(address).build())
        .tags(Tag::builder().key("Name").value(address.replace("/net/", "-").replace('/', "-")).build());
    if let Some(tier) = tier {
        builder = builder.tags(Tag::builder().key(TIER_TAG).value(tier).build());
    }
    builder.build()
}

#[tokio::test]
#[ignore = "needs moto_server; cargo xtask test installs it and runs this with --ignored"]
async fn observation_sees_only_the_stack_in_batched_calls_and_plans_the_difference() {
    let moto = MotoServer::start().expect("moto starts");
    let aws = Aws::from_config(
        moto.sdk_config("eu-west-1"),
        AwsOptions::new("eu-west-1", "OrganizationAccountAccessRole").endpoint(moto.endpoint()),
    );
    let config = aws.account("111111111111").await.expect("assume into dev");
    let clients = enclave_net::clients::Clients::new(&config, &aws.counter());
    let ec2 = clients.ec2.clone();

    // What an earlier apply left: the VPC, app-a at the right CIDR, app-b at a wrong one; plus
    // a decoy VPC and subnet without our tags, which must stay invisible.
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.1.0.0/16")
        .tag_specifications(tags(ResourceType::Vpc, "acme-platform", "dev/net/vpc/main", None))
        .send()
        .await
        .expect("vpc");
    let vpc_id = vpc.vpc().and_then(|v| v.vpc_id()).expect("id").to_owned();
    for (name, cidr, zone) in [("app-a", "10.1.0.0/20", "eu-west-1a"), ("app-b", "10.1.48.0/20", "eu-west-1b")] {
        ec2.create_subnet()
            .vpc_id(&vpc_id)
            .cidr_block(cidr)
            .availability_zone(zone)
            .tag_specifications(tags(
                ResourceType::Subnet,
                "acme-platform",
                &format!("dev/net/subnet/{name}"),
                Some("app"),
            ))
            .send()
            .await
            .expect("subnet");
    }
    let decoy = ec2.create_vpc().cidr_block("192.168.0.0/16").send().await.expect("decoy vpc");
    let decoy_id = decoy.vpc().and_then(|v| v.vpc_id()).expect("id").to_owned();
    ec2.create_subnet().vpc_id(&decoy_id).cidr_block("192.168.1.0/24").send().await.expect("decoy subnet");
    let other_stack = ec2
        .create_vpc()
        .cidr_block("10.9.0.0/16")
        .tag_specifications(tags(ResourceType::Vpc, "someone-else", "dev/net/vpc/main", None))
        .send()
        .await
        .expect("other stack");
    assert!(other_stack.vpc().is_some());
    for _ in 0..6 {
        ec2.create_subnet()
            .vpc_id(&decoy_id)
            .cidr_block(format!("192.168.{}.0/24", 10 + rand_suffix()))
            .send()
            .await
            .ok();
    }

    let before = aws.calls();
    let observed = observe(&clients, "acme-platform", "dev").await.expect("observe");
    let after = aws.calls();
    let delta = |key: &str| after.get(key).copied().unwrap_or(0) - before.get(key).copied().unwrap_or(0);
    println!(
        "observe calls: DescribeVpcs {} DescribeSubnets {} DescribeVpcAttribute {}",
        delta("ec2:DescribeVpcs"),
        delta("ec2:DescribeSubnets"),
        delta("ec2:DescribeVpcAttribute")
    );
    assert_eq!(
        (delta("ec2:DescribeVpcs"), delta("ec2:DescribeSubnets")),
        (1, 1),
        "one call per type, not per resource"
    );

    let addresses: Vec<String> = observed.resources.iter().map(|r| r.address.to_string()).collect();
    assert_eq!(
        addresses,
        ["dev/net/vpc/main", "dev/net/subnet/app-a", "dev/net/subnet/app-b"],
        "decoys and other stacks are invisible"
    );
    assert_eq!(observed.ids.get(&"dev/net/vpc/main".parse().expect("address")), Some(&vpc_id));

    // Plan the spec's VPC and subnets against what exists.
    let loaded = enclave_core::config::load_str(
        "spec.yaml",
        "organization: { name: acme, region: eu-west-1, stack: acme-platform }\n\
         network: { azs: 2, nat: none, tiers: [{ name: app, size: 20, slot: 0 }] }\n\
         accounts: [{ name: dev, id: \"111111111111\", environment: dev, vpc_cidr: 10.1.0.0/16 }]\n",
    )
    .expect("valid spec");
    let model = enclave_net::build(&loaded.spec).expect("fits");
    let desired: Vec<_> = enclave_net::resources::desired(&model)
        .into_iter()
        .filter(|r| r.address.kind() == "vpc" || r.address.kind() == "subnet")
        .collect();
    let plan = plan::diff(&desired, &observed.resources).expect("acyclic");
    let actions: Vec<(String, Action)> = plan.changes.iter().map(|c| (c.address.to_string(), c.action)).collect();
    assert_eq!(
        actions,
        [("dev/net/vpc/main".to_owned(), Action::Update), ("dev/net/subnet/app-b".to_owned(), Action::Replace)],
        "{plan:#?}"
    );
    // A new VPC has DNS hostnames off, as in AWS; private DNS of endpoints needs them on.
    assert_eq!(plan.changes[0].reasons[0].to_string(), "enable_dns_hostnames differs: false -> true");
    assert!(
        plan.changes[1]
            .reasons
            .iter()
            .any(|r| r.to_string() == "cidr_block differs: \"10.1.48.0/20\" -> \"10.1.16.0/20\" (forces replacement)")
    );
    assert_eq!(plan.unchanged, 1, "app-a matches");
}

/// A different third octet per decoy subnet, without a random-number dependency.
fn rand_suffix() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

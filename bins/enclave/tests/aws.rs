//! The network reconciler against a real moto server (issue 3's "must hold" list): apply the
//! reference platform to three accounts, converge, keep reads flat as subnets grow, detect
//! drift, destroy only what is ours, and survive faults and kills without duplicates.
//!
//! Every test starts its own moto (`MOTO_SERVER`, installed by `cargo xtask test`) on a free
//! loopback port; they are ignored (with a reason) so that a plain `cargo test` needs nothing
//! installed.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_ec2::types::Filter;
use enclave::cloud::{Cloud, CloudOptions};
use enclave_aws::moto::MotoServer;
use enclave_aws::proxy::{FaultProxy, Faults};
use enclave_aws::{Aws, AwsOptions};
use enclave_core::plan::Action;
use enclave_core::reconcile::Quiet;
use enclave_net::NetworkModel;

const ROLE: &str = "OrganizationAccountAccessRole";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn reference() -> NetworkModel {
    let (_, model) = enclave::load(&enclave_core::LoadOptions::new(repo().join("fixtures/reference"))).expect("loads");
    model
}

fn model_from(text: &str) -> NetworkModel {
    let loaded = enclave_core::config::load_str("spec.yaml", text).expect("valid spec");
    enclave_net::build(&loaded.spec).expect("fits")
}

async fn cloud(moto: &MotoServer, endpoint: &str, model: NetworkModel) -> Cloud {
    let options = CloudOptions { endpoint_url: Some(endpoint.to_owned()), ..CloudOptions::default() };
    Cloud::from_config(moto.sdk_config("eu-west-1"), model, ROLE, &options).await.expect("connects")
}

/// Plans and applies; panics with the report when a step fails.
async fn converge(cloud: &Cloud, parallelism: usize) {
    let (plan, observed) = cloud.plan().await.expect("plans");
    let report = cloud.apply(&plan, &observed, parallelism, &Quiet).await.expect("records the accounts");
    assert!(report.is_success(), "{report:#?}");
}

/// EC2 in one account, straight to moto, for checking what exists.
async fn ec2(moto: &MotoServer, account_id: &str) -> aws_sdk_ec2::Client {
    let aws =
        Aws::from_config(moto.sdk_config("eu-west-1"), AwsOptions::new("eu-west-1", ROLE).endpoint(moto.endpoint()));
    let config = aws.account(account_id).await.expect("assume");
    aws_sdk_ec2::Client::new(&config)
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

/// Everything in an account that could be duplicated, counted without looking at tags.
#[derive(Debug, PartialEq, Eq)]
struct Inventory {
    vpcs: usize,
    subnets: usize,
    nat_gateways: usize,
    endpoints: BTreeMap<String, usize>,
    internet_gateways: usize,
    route_tables: usize,
    flow_logs: usize,
}

async fn inventory(ec2: &aws_sdk_ec2::Client, cidr: &str) -> Inventory {
    let vpcs = ec2.describe_vpcs().filters(filter("cidr", cidr)).send().await.expect("vpcs");
    let ids: Vec<String> = vpcs.vpcs().iter().filter_map(|v| v.vpc_id()).map(str::to_owned).collect();
    let in_vpcs = || Filter::builder().name("vpc-id").set_values(Some(ids.clone())).build();
    let subnets = ec2.describe_subnets().filters(in_vpcs()).send().await.expect("subnets");
    let nats = ec2.describe_nat_gateways().filter(in_vpcs()).send().await.expect("nats");
    let endpoints = ec2.describe_vpc_endpoints().filters(in_vpcs()).send().await.expect("endpoints");
    let gateways = ec2
        .describe_internet_gateways()
        .filters(filter("attachment.vpc-id", ids.first().map_or("none", |s| s)))
        .send()
        .await;
    let tables = ec2.describe_route_tables().filters(in_vpcs()).send().await.expect("tables");
    let flow_logs =
        ec2.describe_flow_logs().filter(filter("resource-id", ids.first().map_or("none", |s| s))).send().await;
    let mut by_service = BTreeMap::new();
    for endpoint in endpoints.vpc_endpoints() {
        if endpoint.state().is_some_and(|s| s.as_str().eq_ignore_ascii_case("deleted")) {
            continue;
        }
        let service = endpoint.service_name().unwrap_or_default().rsplit("eu-west-1.").next().unwrap_or_default();
        *by_service.entry(service.to_owned()).or_insert(0) += 1;
    }
    Inventory {
        vpcs: ids.len(),
        subnets: subnets.subnets().len(),
        nat_gateways: nats
            .nat_gateways()
            .iter()
            .filter(|n| n.state().is_some_and(|s| matches!(s.as_str(), "pending" | "available")))
            .count(),
        endpoints: by_service,
        internet_gateways: gateways.map(|g| g.internet_gateways().len()).unwrap_or(0),
        // Each VPC also has its main route table, which enclave leaves alone.
        route_tables: tables.route_tables().len(),
        flow_logs: flow_logs.map(|f| f.flow_logs().len()).unwrap_or(0),
    }
}

/// What the spec says each account must hold.
fn expected(model: &NetworkModel) -> BTreeMap<String, Inventory> {
    model
        .accounts
        .iter()
        .map(|network| {
            let mut endpoints = BTreeMap::new();
            for endpoint in &network.endpoints {
                endpoints.insert(endpoint.service.clone(), 1);
            }
            (
                network.account.clone(),
                Inventory {
                    vpcs: 1,
                    subnets: network.subnets.len(),
                    nat_gateways: network.nat_gateways.len(),
                    endpoints,
                    internet_gateways: usize::from(network.internet_gateway),
                    route_tables: network.route_tables.len() + 1,
                    flow_logs: usize::from(network.flow_log.is_some()),
                },
            )
        })
        .collect()
}

async fn assert_no_duplicates(moto: &MotoServer, model: &NetworkModel) {
    let wanted = expected(model);
    for network in &model.accounts {
        let found = inventory(&ec2(moto, &network.account_id).await, &network.vpc.cidr.to_string()).await;
        assert_eq!(&found, &wanted[&network.account], "account {}", network.account);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto_server; cargo xtask test installs it and runs this with --ignored"]
async fn reference_platform_applies_to_three_accounts_and_converges() {
    let moto = MotoServer::start().expect("moto");
    let model = reference();
    let cloud = cloud(&moto, moto.endpoint(), model.clone()).await;
    converge(&cloud, 10).await;

    for network in &model.accounts {
        let ec2 = ec2(&moto, &network.account_id).await;
        let found = inventory(&ec2, &network.vpc.cidr.to_string()).await;
        let tiers = network.subnets.iter().map(|s| s.tier.as_str()).collect::<std::collections::BTreeSet<_>>().len();
        assert_eq!(found.vpcs, 1, "{}: exactly its VPC CIDR", network.account);
        assert_eq!(found.subnets, 3 * tiers, "{}: 3 x tiers subnets", network.account);
        let services: Vec<&String> = found.endpoints.keys().collect();
        let mut wanted: Vec<&String> = network.endpoints.iter().map(|e| &e.service).collect();
        wanted.sort();
        assert_eq!(services, wanted, "{}: the endpoints in the spec", network.account);
        // No route table associated with a workload subnet routes to an internet gateway.
        let tables = ec2.describe_route_tables().send().await.expect("tables");
        let workload: Vec<String> = ec2
            .describe_subnets()
            .filters(filter("tag:enclave:stack", "acme-platform"))
            .send()
            .await
            .expect("subnets")
            .subnets()
            .iter()
            .filter(|s| s.tags().iter().any(|t| t.key() == Some("enclave:tier") && t.value() != Some("egress")))
            .filter_map(|s| s.subnet_id().map(str::to_owned))
            .collect();
        assert_eq!(workload.len(), network.subnets.iter().filter(|s| s.tier != "egress").count());
        for table in tables.route_tables() {
            let serves_workload =
                table.associations().iter().any(|a| a.subnet_id().is_some_and(|s| workload.iter().any(|w| w == s)));
            if serves_workload {
                assert!(
                    table.routes().iter().all(|r| !r.gateway_id().is_some_and(|g| g.starts_with("igw-"))),
                    "{}: workload route table {:?} routes to an internet gateway",
                    network.account,
                    table.route_table_id()
                );
            }
        }
    }

    // Apply twice: the second plan is empty and the second apply makes no mutating call.
    let before = cloud.calls();
    let (plan, observed) = cloud.plan().await.expect("plans");
    assert!(plan.is_empty(), "second plan: {:#?}", plan.changes);
    let report = cloud.apply(&plan, &observed, 10, &Quiet).await.expect("records the accounts");
    assert!(report.done.is_empty() && report.is_success());
    let after = cloud.calls();
    let mutating: Vec<(&String, u64)> = after
        .iter()
        .map(|(op, n)| (op, n - before.get(op).copied().unwrap_or(0)))
        .filter(|(op, n)| {
            *n > 0 && !["Describe", "Get", "List"].iter().any(|r| op.split(':').nth(1).unwrap_or("").starts_with(r))
        })
        .collect();
    assert!(mutating.is_empty(), "second apply mutated: {mutating:?}");
    assert_no_duplicates(&moto, &model).await;
}

fn tiers_spec(stack: &str, tiers: usize) -> String {
    let tiers: Vec<String> = (0..tiers).map(|i| format!("{{ name: t{i}, size: 24, slot: {i} }}")).collect();
    format!(
        "organization: {{ name: acme, region: eu-west-1, stack: {stack} }}\n\
         network: {{ azs: 3, az_reserve: 4, nat: single, tiers: [{}], endpoints: {{ interface: [ssm, ssmmessages, ec2messages], gateway: [s3] }} }}\n\
         accounts: [{{ name: dev, id: \"111111111111\", environment: dev, vpc_cidr: 10.1.0.0/16 }}]\n",
        tiers.join(", ")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto_server; cargo xtask test installs it and runs this with --ignored"]
async fn read_calls_for_a_converged_plan_do_not_grow_with_subnets() {
    let mut reads = Vec::new();
    for tiers in [2, 16] {
        let moto = MotoServer::start().expect("moto");
        let model = model_from(&tiers_spec("flat", tiers));
        let workload_subnets = model.accounts[0].subnets.iter().filter(|s| s.tier != "egress").count();
        let cloud = cloud(&moto, moto.endpoint(), model).await;
        converge(&cloud, 10).await;
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
        println!(
            "{workload_subnets} workload subnets, {} resources observed: {} read calls {delta:?}",
            observed.resources.len(),
            delta.values().sum::<u64>()
        );
        reads.push((workload_subnets, delta));
    }
    assert_eq!(reads[0].0, 6);
    assert_eq!(reads[1].0, 48);
    assert_eq!(reads[0].1, reads[1].1, "the same reads for 6 and 48 subnets");
}

fn enclave(args: &[&str], endpoint: &str) -> std::process::Output {
    common::enclave_against(args, endpoint).output().expect("enclave runs")
}

fn reference_dir() -> String {
    repo().join("fixtures/reference").to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto_server; cargo xtask test installs it and runs this with --ignored"]
async fn drift_is_detected_for_each_kind_of_hand_change_and_apply_repairs_it() {
    let moto = MotoServer::start().expect("moto");
    let dir = reference_dir();
    // Without --yes and without a terminal to ask on, apply refuses (exit 2) and changes nothing.
    let unconfirmed = enclave(&["apply", "-c", &dir, "--account", "dev"], moto.endpoint());
    assert_eq!(unconfirmed.status.code(), Some(2), "{}", String::from_utf8_lossy(&unconfirmed.stderr));
    assert!(String::from_utf8_lossy(&unconfirmed.stderr).contains("refusing to apply without --yes"));
    let untouched = ec2(&moto, "111111111111").await;
    let vpcs =
        untouched.describe_vpcs().filters(filter("tag:enclave:stack", "acme-platform")).send().await.expect("vpcs");
    assert!(vpcs.vpcs().is_empty(), "nothing was applied");
    let applied = enclave(&["apply", "-c", &dir, "--account", "dev", "--yes"], moto.endpoint());
    assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr));
    let clean = enclave(&["drift", "-c", &dir, "--account", "dev"], moto.endpoint());
    assert_eq!(clean.status.code(), Some(0), "{}", String::from_utf8_lossy(&clean.stdout));

    let ec2 = ec2(&moto, "111111111111").await;
    let ours = filter("tag:enclave:stack", "acme-platform");
    let tagged = |address: &str| filter("tag:enclave:address", address);
    // 1. A subnet deleted by hand.
    let subnet =
        ec2.describe_subnets().filters(ours.clone()).filters(tagged("dev/net/subnet/data-b")).send().await.expect("s");
    let subnet_id = subnet.subnets()[0].subnet_id().expect("id").to_owned();
    let tables =
        ec2.describe_route_tables().filters(filter("association.subnet-id", &subnet_id)).send().await.expect("t");
    for association in tables.route_tables().iter().flat_map(|t| t.associations()) {
        if association.subnet_id() == Some(subnet_id.as_str()) {
            ec2.disassociate_route_table()
                .association_id(association.route_table_association_id().expect("id"))
                .send()
                .await
                .expect("disassociate");
        }
    }
    ec2.delete_subnet().subnet_id(&subnet_id).send().await.expect("delete subnet");
    // 2. A route to the internet gateway added by hand on a private route table.
    let igw = ec2.describe_internet_gateways().filters(ours.clone()).send().await.expect("igw");
    let igw_id = igw.internet_gateways()[0].internet_gateway_id().expect("id").to_owned();
    let private = ec2
        .describe_route_tables()
        .filters(ours.clone())
        .filters(tagged("dev/net/route-table/private-a"))
        .send()
        .await
        .expect("t");
    let private_id = private.route_tables()[0].route_table_id().expect("id").to_owned();
    ec2.create_route()
        .route_table_id(&private_id)
        .destination_cidr_block("198.51.100.0/24")
        .gateway_id(&igw_id)
        .send()
        .await
        .expect("route");
    // 3. A tag removed.
    let vpc = ec2.describe_vpcs().filters(ours.clone()).send().await.expect("vpc");
    let vpc_id = vpc.vpcs()[0].vpc_id().expect("id").to_owned();
    ec2.delete_tags()
        .resources(&vpc_id)
        .tags(aws_sdk_ec2::types::Tag::builder().key("Name").build())
        .send()
        .await
        .expect("untag");
    // 4. The endpoint list changed: one endpoint deleted by hand.
    let sts = ec2
        .describe_vpc_endpoints()
        .filters(ours.clone())
        .filters(tagged("dev/net/vpc-endpoint/sts"))
        .send()
        .await
        .expect("e");
    ec2.delete_vpc_endpoints()
        .vpc_endpoint_ids(sts.vpc_endpoints()[0].vpc_endpoint_id().expect("id"))
        .send()
        .await
        .expect("delete endpoint");

    let drift = enclave(&["drift", "-c", &dir, "--account", "dev", "--output", "json"], moto.endpoint());
    assert_eq!(drift.status.code(), Some(3), "drift exits 3: {}", String::from_utf8_lossy(&drift.stderr));
    let report: serde_json::Value = serde_json::from_slice(&drift.stdout).expect("json");
    assert_eq!(report["drift"], true);
    let changes: BTreeMap<String, (String, String)> = report["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            let reasons: Vec<String> = c["reasons"]
                .as_array()
                .expect("reasons")
                .iter()
                .map(|r| r["attribute"].as_str().unwrap_or(r["kind"].as_str().unwrap_or_default()).to_owned())
                .collect();
            (
                c["address"].as_str().expect("address").to_owned(),
                (c["action"].as_str().expect("action").to_owned(), reasons.join(",")),
            )
        })
        .collect();
    println!("drift: {changes:#?}");
    assert_eq!(changes["dev/net/subnet/data-b"], ("create".into(), "missing".into()));
    assert_eq!(changes["dev/net/route/private-a-198-51-100-0-24"], ("delete".into(), "not_in_spec".into()));
    assert_eq!(changes["dev/net/vpc/main"], ("update".into(), "tags".into()));
    assert_eq!(changes["dev/net/vpc-endpoint/sts"], ("create".into(), "missing".into()));
    assert!(report["calls"]["ec2:DescribeVpcs"].as_u64().is_some(), "JSON carries the call counts");

    let text = enclave(&["drift", "-c", &dir, "--account", "dev", "--compact"], moto.endpoint());
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("dev/net/route/private-a-198-51-100-0-24"), "{text}");

    let repaired = enclave(&["apply", "-c", &dir, "--account", "dev", "--yes"], moto.endpoint());
    assert!(repaired.status.success(), "{}", String::from_utf8_lossy(&repaired.stderr));
    let clean = enclave(&["drift", "-c", &dir, "--account", "dev"], moto.endpoint());
    assert_eq!(clean.status.code(), Some(0), "{}", String::from_utf8_lossy(&clean.stdout));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto_server; cargo xtask test installs it and runs this with --ignored"]
async fn destroy_removes_what_the_stack_owns_and_leaves_decoys_alone() {
    let moto = MotoServer::start().expect("moto");
    let model = reference();
    let cloud = cloud(&moto, moto.endpoint(), model.clone()).await;
    converge(&cloud, 10).await;
    // Decoys without our tags in every account: a VPC with a subnet.
    let mut decoys = Vec::new();
    for network in &model.accounts {
        let ec2 = ec2(&moto, &network.account_id).await;
        let vpc = ec2.create_vpc().cidr_block("192.168.0.0/16").send().await.expect("decoy vpc");
        let vpc_id = vpc.vpc().and_then(|v| v.vpc_id()).expect("id").to_owned();
        let subnet =
            ec2.create_subnet().vpc_id(&vpc_id).cidr_block("192.168.1.0/24").send().await.expect("decoy subnet");
        decoys.push((
            network.account_id.clone(),
            vpc_id,
            subnet.subnet().and_then(|s| s.subnet_id()).expect("id").to_owned(),
        ));
    }
    // And, in prod, an untagged subnet inside our VPC: it blocks the VPC's deletion and must be
    // reported, not deleted.
    let prod = ec2(&moto, "333333333333").await;
    let our_vpc = prod.describe_vpcs().filters(filter("tag:enclave:stack", "acme-platform")).send().await.expect("vpc");
    let our_vpc_id = our_vpc.vpcs()[0].vpc_id().expect("id").to_owned();
    let squatter =
        prod.create_subnet().vpc_id(&our_vpc_id).cidr_block("10.3.200.0/24").send().await.expect("squatter subnet");
    let squatter_id = squatter.subnet().and_then(|s| s.subnet_id()).expect("id").to_owned();

    let options = CloudOptions {
        endpoint_url: Some(moto.endpoint().to_owned()),
        waits: enclave_net::apply::Waits { timeout: Duration::from_secs(2), interval: Duration::from_millis(200) },
        ..CloudOptions::default()
    };
    let cloud =
        Cloud::from_config(moto.sdk_config("eu-west-1"), model.clone(), ROLE, &options).await.expect("connects");
    let (plan, observed) = cloud.destroy_plan().await.expect("plans");
    assert!(plan.changes.iter().all(|c| c.action == Action::Delete));
    assert_eq!(plan.changes.len(), observed.resources.len());
    let report = cloud.apply(&plan, &observed, 10, &Quiet).await.expect("records the accounts");
    assert_eq!(report.failed.len(), 1, "{report:#?}");
    assert_eq!(report.failed[0].address.to_string(), "prod/net/vpc/main");
    let message = report.failed[0].error.as_deref().unwrap_or_default();
    assert!(message.contains(&squatter_id) && message.contains("leaves alone"), "{message}");

    let (left, remaining) = cloud.destroy_plan().await.expect("plans");
    let left: Vec<String> = left.changes.iter().map(|c| c.address.to_string()).collect();
    assert_eq!(left, ["prod/net/vpc/main"], "everything else owned is gone");
    assert_eq!(remaining.resources.len(), 1);
    for (account_id, vpc_id, subnet_id) in &decoys {
        let ec2 = ec2(&moto, account_id).await;
        let vpcs = ec2.describe_vpcs().vpc_ids(vpc_id).send().await.expect("decoy vpc still there");
        assert_eq!(vpcs.vpcs().len(), 1);
        let subnets = ec2.describe_subnets().subnet_ids(subnet_id).send().await.expect("decoy subnet still there");
        assert_eq!(subnets.subnets().len(), 1);
    }
    let squatter = prod.describe_subnets().subnet_ids(&squatter_id).send().await.expect("squatter still there");
    assert_eq!(squatter.subnets().len(), 1);

    // Once the owner removes their subnet, destroy finishes.
    prod.delete_subnet().subnet_id(&squatter_id).send().await.expect("owner cleans up");
    let (plan, observed) = cloud.destroy_plan().await.expect("plans");
    assert!(cloud.apply(&plan, &observed, 10, &Quiet).await.expect("records the accounts").is_success());
    assert!(cloud.destroy_plan().await.expect("plans").0.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto_server; cargo xtask test installs it and runs this with --ignored"]
async fn apply_converges_through_throttling_500s_and_dropped_connections_without_duplicates() {
    let moto = MotoServer::start().expect("moto");
    let model = reference();
    let faults = Faults { seed: 7, throttle: 0.08, server_error: 0.08, drop: 0.08, ..Faults::default() };
    let proxy = FaultProxy::start(moto.endpoint(), faults).await.expect("proxy");
    let cloud = cloud(&moto, &proxy.endpoint(), model.clone()).await;
    converge(&cloud, 10).await;
    let stats = proxy.stats();
    println!("fault proxy: {stats:?}");
    assert!(stats.throttled > 5 && stats.server_errors > 5 && stats.dropped > 5, "faults were injected: {stats:?}");
    // Straight to moto: converged, and nothing exists twice.
    let direct = self::cloud(&moto, moto.endpoint(), model.clone()).await;
    let (plan, _) = direct.plan().await.expect("plans");
    assert!(plan.is_empty(), "{:#?}", plan.changes);
    assert_no_duplicates(&moto, &model).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto_server; cargo xtask test installs it and runs this with --ignored"]
async fn killing_apply_at_seeded_points_and_rerunning_converges_without_duplicates() {
    let model = reference();
    let dir = reference_dir();
    let mut rng = fastrand_seeded(20261127);
    // The reference apply makes 162 mutating calls (AssumeRole included); kill points spread over them.
    let points: Vec<u64> = (0..10).map(|_| 1 + rng() % 160).collect();
    for (run, point) in points.iter().enumerate() {
        let moto = MotoServer::start().expect("moto");
        common::killed_at(moto.endpoint(), *point, &["apply", "-c", &dir, "--yes"], run).await;
        let rerun = enclave(&["apply", "-c", &dir, "--yes"], moto.endpoint());
        assert!(rerun.status.success(), "run {run} (kill at {point}): {}", String::from_utf8_lossy(&rerun.stderr));
        let plan = enclave(&["plan", "-c", &dir, "--output", "json"], moto.endpoint());
        let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).expect("json");
        assert_eq!(plan["changes"].as_array().map(Vec::len), Some(0), "run {run} (kill at {point}): {plan:#}");
        assert_no_duplicates(&moto, &model).await;
        println!("kill point {point}: re-run converged with no duplicates");
    }
}

/// A small seeded generator (xorshift64*), so the kill points are the same on every machine.
fn fastrand_seeded(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed.max(1);
    move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

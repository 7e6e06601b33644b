//! The offline plan of the reference platform, for every overlay combination, is a reviewed
//! contract: a change in what enclave would create shows up as a snapshot diff.

use enclave_core::plan::{self, Action, TextOptions};
use enclave_tests::{load, workspace};
use serde::Serialize;

const COMBINATIONS: &[&[&str]] =
    &[&[], &["client-a"], &["client-b"], &["staging"], &["client-a", "staging"], &["client-b", "staging"]];

#[derive(Serialize)]
struct Snapshot {
    stack: String,
    region: String,
    summary: plan::Summary,
    resources: Vec<Line>,
}

#[derive(Serialize)]
struct Line {
    address: String,
    action: Action,
    attributes: serde_json::Value,
}

fn offline_plan(overlays: &[&str]) -> (enclave_net::NetworkModel, plan::Plan) {
    let (_, model) = load(&workspace().join("fixtures/reference"), overlays).expect("reference spec is valid");
    let plan = plan::diff(&enclave_net::resources::desired(&model), &[]).expect("acyclic");
    (model, plan)
}

#[test]
fn offline_plans_of_every_overlay_combination_match_their_snapshots() {
    for overlays in COMBINATIONS {
        let (model, plan) = offline_plan(overlays);
        assert!(plan.changes.iter().all(|c| c.action == Action::Create), "offline plans only create");
        let snapshot = Snapshot {
            stack: model.stack.clone(),
            region: model.region.clone(),
            summary: plan.summary(),
            resources: plan
                .changes
                .iter()
                .map(|c| Line {
                    address: c.address.to_string(),
                    action: c.action,
                    attributes: serde_json::to_value(c.after.clone().unwrap_or_default()).expect("json"),
                })
                .collect(),
        };
        let name =
            if overlays.is_empty() { "reference".to_owned() } else { format!("reference+{}", overlays.join("+")) };
        insta::assert_yaml_snapshot!(name, snapshot);
    }
}

#[test]
fn offline_plan_text_reads_like_terraform() {
    let (model, plan) = offline_plan(&["staging"]);
    let accounts = model.accounts.iter().map(|n| (n.account.clone(), n.account_id.clone())).collect();
    let text = plan::render_text(&plan, &TextOptions { color: false, accounts, attributes: false });
    insta::assert_snapshot!("reference+staging.txt", text);
}

#[test]
fn overlays_change_what_the_reference_platform_builds() {
    let subnets = |overlays: &[&str]| {
        let (model, _) = offline_plan(overlays);
        model
            .accounts
            .iter()
            .map(|n| (n.account.clone(), n.subnets.len(), n.nat_gateways.len(), n.endpoints.len()))
            .collect::<Vec<_>>()
    };
    let base = subnets(&[]);
    assert_eq!(base.iter().map(|(name, ..)| name.as_str()).collect::<Vec<_>>(), ["dev", "test", "prod"]);
    assert!(base.iter().all(|(_, subnets, ..)| *subnets == 9), "3 tiers (app, data, egress) x 3 AZs: {base:?}");
    let client_a = subnets(&["client-a"]);
    assert_eq!(
        client_a[2],
        ("prod".to_owned(), 6, 0, 12),
        "client-a: prod has no NAT and no egress tier, and four more endpoints (kms, secretsmanager, ec2, autoscaling)"
    );
    let client_b = subnets(&["client-b"]);
    assert_eq!(client_b.iter().map(|(name, ..)| name.as_str()).collect::<Vec<_>>(), ["dev", "prod"]);
    let staging = subnets(&["staging"]);
    assert_eq!(staging[3], ("staging".to_owned(), 6, 1, 8), "staging: two AZs, single NAT");
}

#[test]
fn reordering_the_spec_changes_no_address_or_cidr() {
    let (_, plan) = offline_plan(&[]);
    let dir = tempdir();
    let base = workspace().join("fixtures/reference/base");
    std::fs::create_dir_all(dir.join("base")).expect("mkdir");
    // The same spec with tiers and accounts listed in reverse order.
    for entry in std::fs::read_dir(&base).expect("base") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        let text = match path.file_name().and_then(|n| n.to_str()) {
            Some("network.yaml") => text.replace(
                "    - { name: app, size: 20, slot: 0 }    # 10.x.0.0/18 block: /20 per AZ\n    - { name: data, size: 22, slot: 4 }   # 10.x.64.0/20 block: /22 per AZ\n",
                "    - { name: data, size: 22, slot: 4 }\n    - { name: app, size: 20, slot: 0 }\n",
            ),
            _ => text,
        };
        std::fs::write(dir.join("base").join(path.file_name().expect("name")), text).expect("write");
    }
    let (_, reordered_model) = load(&dir, &[]).expect("valid");
    assert_eq!(reordered_model.accounts[0].subnets[0].tier, "data", "the copy really is reordered");
    let reordered = plan::diff(&enclave_net::resources::desired(&reordered_model), &[]).expect("acyclic");
    let key = |p: &plan::Plan| {
        let mut lines: Vec<String> = p.changes.iter().map(|c| format!("{} {:?}", c.address, c.after)).collect();
        lines.sort();
        lines
    };
    assert_eq!(key(&plan), key(&reordered));
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("enclave-reorder-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn the_spec_schema_is_a_reviewed_contract() {
    let schema = schemars::schema_for!(enclave_core::Spec);
    insta::assert_json_snapshot!("spec.schema", schema);
}

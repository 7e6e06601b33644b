//! Plan and drift text of the changes users make most, as reviewed snapshots: a policy change,
//! a tag change, a subnet list change and an account removed. Every domain of the reference
//! platform is in the plan, as `enclave plan` and `enclave drift` show it; JSON documents and
//! lists are structural diffs with only the changed parts marked, and no line is wider than 160
//! characters.
//!
//! A plan here is the desired resources of a changed spec against those of the reference (what
//! `enclave plan` computes after the reference was applied); a drift is the reference against
//! observed resources someone changed by hand (what `enclave drift` computes). Both render
//! through `plan::render_text` with the options the CLI uses.

use std::path::{Path, PathBuf};

use enclave_core::plan::{self, Plan, Resource, TextOptions};
use enclave_secrets::values::Values;
use enclave_tests::{load, workspace};
use serde_json::{Value, json};

/// The reference platform copied to a temporary folder with `edits` (file, text, replacement)
/// applied; each text must be there.
fn variant(name: &str, edits: &[(&str, &str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("enclave-plan-text-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy(&workspace().join("fixtures/reference"), &dir);
    for (file, from, to) in edits {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains(from), "{file} holds {from:?}");
        std::fs::write(&path, text.replacen(from, to, 1)).expect("write");
    }
    dir
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

struct Platform {
    desired: Vec<Resource>,
    accounts: Vec<(String, String)>,
}

/// Every domain's desired resources of the spec in `dir`, with secret values from `values`
/// (the reference's, so generated secrets keep their value across the two specs).
fn platform(dir: &Path, values: Option<&Values>) -> (Platform, Values) {
    let (loaded, model) = load(dir, &[]).expect("valid spec");
    let resolved = enclave::secret_values(&loaded, dir).expect("secret values");
    let values = values.cloned().unwrap_or(resolved);
    let domains = enclave::platform::selected(&loaded.spec, &[]);
    let desired =
        enclave::platform::desired(&loaded.spec, &model, &domains, &|_| enclave_access::Image::Latest, &values);
    let accounts = model
        .accounts
        .iter()
        .map(|network| (network.account.clone(), format!("{}, {}", network.account_id, network.vpc.cidr)))
        .collect();
    (Platform { desired, accounts }, values)
}

fn text(plan: &Plan, accounts: &[(String, String)]) -> String {
    let text = plan::render_text(plan, &TextOptions { color: false, accounts: accounts.to_vec(), attributes: true });
    for line in text.lines() {
        assert!(line.chars().count() <= 160, "a line of {} characters: {line}", line.chars().count());
    }
    text
}

/// The reference platform's plan after `edits`, as `enclave plan` shows it.
fn plan_after(name: &str, edits: &[(&str, &str, &str)]) -> String {
    let reference = workspace().join("fixtures/reference");
    let (before, values) = platform(&reference, None);
    let dir = variant(name, edits);
    let (after, _) = platform(&dir, Some(&values));
    std::fs::remove_dir_all(&dir).expect("cleanup");
    let plan = plan::diff(&after.desired, &before.desired).expect("acyclic");
    assert!(!plan.is_empty(), "{name} changes something");
    text(&plan, &after.accounts)
}

/// The reference platform's drift when someone changed `address` by hand, as `enclave drift`
/// shows it.
fn drift_after(address: &str, change: impl FnOnce(&mut plan::Attributes)) -> String {
    let (reference, _) = platform(&workspace().join("fixtures/reference"), None);
    let mut observed = reference.desired.clone();
    let resource = observed.iter_mut().find(|r| r.address.to_string() == address).expect("the resource exists");
    change(&mut resource.attributes);
    let plan = plan::diff(&reference.desired, &observed).expect("acyclic");
    assert_eq!(plan.changes.len(), 1, "one resource drifted");
    text(&plan, &reference.accounts)
}

#[test]
fn a_policy_change() {
    // The orders app no longer reads the payment provider's key: its secret goes, and its
    // role's policy loses the secret's ARN.
    let plan = plan_after(
        "policy",
        &[(
            "base/clusters.yaml",
            "      - name: payments-api-key\n        source: { file: secrets/payments-api-key.json }\n        keys:\n          - { key: id, property: id }\n          - { key: key, property: key }\n        refresh: 15m\n",
            "",
        )],
    );
    insta::assert_snapshot!("policy-change.plan.txt", plan);
    // Someone widened the KMS key policy by hand: an extra statement, and one action more.
    let drift = drift_after("dev/access/kms-key/access", |attributes| {
        let policy = attributes.get_mut("policy").expect("a key policy");
        let statements = policy["Statement"].as_array_mut().expect("statements");
        statements[0]["Action"].as_array_mut().expect("actions").push(json!("kms:*"));
        statements.push(json!({"Sid": "Contractor", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::444444444444:root"}, "Action": "kms:Decrypt", "Resource": "*"}));
    });
    insta::assert_snapshot!("policy-change.drift.txt", drift);
}

#[test]
fn a_tag_change() {
    // Someone renamed the dev VPC and tagged it with an owner in the console.
    let drift = drift_after("dev/net/vpc/main", |attributes| {
        let tags = attributes.get_mut("tags").and_then(Value::as_object_mut).expect("tags");
        tags.insert("Name".into(), json!("dev-vpc-renamed"));
        tags.insert("owner".into(), json!("bob"));
    });
    insta::assert_snapshot!("tag-change.drift.txt", drift);
}

#[test]
fn a_subnet_list_change() {
    // Interface endpoints move from the app tier's subnets to the data tier's.
    let plan = plan_after("subnets", &[("base/network.yaml", "    subnet_tier: app\n", "    subnet_tier: data\n")]);
    insta::assert_snapshot!("subnet-list-change.plan.txt", plan);
    // Someone detached one subnet from the SSM endpoint.
    let drift = drift_after("prod/net/vpc-endpoint/ssm", |attributes| {
        let subnets = attributes.get_mut("subnets").and_then(Value::as_array_mut).expect("subnets");
        subnets.remove(1);
    });
    insta::assert_snapshot!("subnet-list-change.drift.txt", drift);
}

#[test]
fn an_account_removed() {
    // The test account leaves the platform: its resources are deleted and the other accounts'
    // policies stop naming it.
    let plan = plan_after(
        "account-removed",
        &[(
            "base/accounts.yaml",
            "  - name: test\n    id: \"222222222222\"\n    environment: test\n    vpc_cidr: 10.2.0.0/16\n",
            "",
        )],
    );
    assert!(plan.contains("- test/net/vpc/main"), "the test account's resources are deleted");
    assert!(
        plan.lines().any(|line| line.trim() == "- \"222222222222\","),
        "a policy's account list loses the test account: {plan}"
    );
    insta::assert_snapshot!("account-removed.plan.txt", plan);
}

//! The secrets domain against moto (what moto answers; rotation and what moto lacks are in
//! `crates/secrets/tests/mocked.rs`): the reference platform's secrets are applied with every
//! other domain in one plan, once each, encrypted with the account key, tagged, readable by
//! their app's role only; a converged apply writes nothing; a changed value is one new version;
//! hand edits are found and repaired; destroy schedules deletion and leaves others' secrets
//! alone; kills at seeded points never make a second secret or version.

mod common;

use common::{applied, enclave, enclave_against, json_of, mutating, reference_dir, reference_with, seeded};

use std::collections::BTreeMap;
use std::path::Path;

use enclave_aws::moto::MotoServer;
use enclave_aws::proxy::{FaultProxy, Faults};
use enclave_aws::{Aws, AwsOptions};
use serde_json::{Value, json};

const ROLE: &str = "OrganizationAccountAccessRole";
const STACK: &str = "acme-platform";
const PROD: &str = "333333333333";
const DEV: &str = "111111111111";
const PROD_SECRETS: [&str; 2] =
    ["acme-platform/prod/orders/database-password", "acme-platform/prod/orders/payments-api-key"];
/// The monitoring stack's secrets in prod: the alert receivers' credentials and Grafana's
/// generated admin password, read by one role.
const PROD_MONITORING_SECRETS: [&str; 4] = [
    "acme-platform/prod/monitoring-platform-prod/grafana-admin-password",
    "acme-platform/prod/monitoring-platform-prod/pagerduty-routing-key",
    "acme-platform/prod/monitoring-platform-prod/slack-payments-webhook",
    "acme-platform/prod/monitoring-platform-prod/smtp-password",
];
const TOKEN_ENV: &str = "ENCLAVE_TEST_QUEUE_TOKEN";

/// Every secret of prod, in name order.
fn all_prod_secrets(extra: &[&'static str]) -> Vec<&'static str> {
    let mut all: Vec<&str> = PROD_SECRETS.iter().chain(&PROD_MONITORING_SECRETS).chain(extra).copied().collect();
    all.sort_unstable();
    all
}

struct Member {
    secrets: aws_sdk_secretsmanager::Client,
    iam: aws_sdk_iam::Client,
    kms: aws_sdk_kms::Client,
    eks: aws_sdk_eks::Client,
}

async fn member(moto: &MotoServer, account_id: &str) -> Member {
    let aws =
        Aws::from_config(moto.sdk_config("eu-west-1"), AwsOptions::new("eu-west-1", ROLE).endpoint(moto.endpoint()));
    let config = aws.account(account_id).await.expect("assume");
    Member {
        secrets: aws_sdk_secretsmanager::Client::new(&config),
        iam: aws_sdk_iam::Client::new(&config),
        kms: aws_sdk_kms::Client::new(&config),
        eks: aws_sdk_eks::Client::new(&config),
    }
}

/// Every secret of an account (scheduled for deletion too), by name.
async fn secrets(
    sm: &aws_sdk_secretsmanager::Client,
) -> BTreeMap<String, aws_sdk_secretsmanager::types::SecretListEntry> {
    let out = sm.list_secrets().include_planned_deletion(true).send().await.expect("secrets");
    out.secret_list().iter().map(|s| (s.name().unwrap_or_default().to_owned(), s.clone())).collect()
}

async fn versions(sm: &aws_sdk_secretsmanager::Client, name: &str) -> usize {
    sm.list_secret_version_ids().secret_id(name).send().await.expect("versions").versions().len()
}

/// The reference with one more secret of orders, read from [`TOKEN_ENV`].
fn with_env_secret(root: &std::path::Path) -> String {
    reference_with(root, "base/clusters.yaml", |text| {
        text.replace(
            "        refresh: 15m\n",
            "        refresh: 15m\n      - name: queue-token\n        source: { env: ENCLAVE_TEST_QUEUE_TOKEN }\n",
        )
    })
}

fn run_with_token(args: &[&str], endpoint: &str, token: &str) -> Value {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    let out = enclave_against(&all, endpoint).env(TOKEN_ENV, token).output().expect("enclave runs");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto_server; cargo xtask test installs it and runs this with --ignored"]
async fn secrets_are_made_once_encrypted_tagged_and_private_converge_and_drift_is_repaired() {
    let moto = MotoServer::start().expect("moto");
    let endpoint = moto.endpoint();
    let root = std::env::temp_dir().join(format!("enclave-secrets-{}", std::process::id()));
    let dir = with_env_secret(&root);
    let report = run_with_token(&["apply", "-c", &dir, "--yes"], endpoint, "first-token-value");
    assert_eq!(report["report"]["failed"], json!([]), "{report:#}");
    assert_eq!(report["domains"], json!(["net", "access", "deploy", "secrets"]));

    let prod = member(&moto, PROD).await;
    let key = prod.kms.describe_key().key_id(format!("alias/enclave/{STACK}/access")).send().await.expect("key");
    let key_arn = key.key_metadata().and_then(|k| k.arn()).expect("arn").to_owned();
    let found = secrets(&prod.secrets).await;
    let mut names: Vec<&str> = PROD_SECRETS.to_vec();
    names.push("acme-platform/prod/orders/queue-token");
    names.sort_unstable();
    assert_eq!(
        found.keys().map(String::as_str).collect::<Vec<_>>(),
        all_prod_secrets(&["acme-platform/prod/orders/queue-token"]),
        "one secret per entry"
    );
    let monitoring_role = "arn:aws:iam::333333333333:role/enclave/platform-prod-monitoring-secrets";
    for name in PROD_MONITORING_SECRETS {
        let policy = prod.secrets.get_resource_policy().secret_id(name).send().await.expect("policy");
        let policy: Value = serde_json::from_str(policy.resource_policy().unwrap_or("{}")).expect("json");
        assert_eq!(policy["Statement"][0]["Principal"]["AWS"], json!(monitoring_role), "{name}: only its role reads");
    }
    let role_arn = "arn:aws:iam::333333333333:role/enclave/platform-prod-orders-secrets";
    for (name, secret) in found.iter().filter(|(name, _)| names.contains(&name.as_str())) {
        let used = secret.kms_key_id().unwrap_or_default();
        assert!(used == key_arn || used.ends_with(&format!("alias/enclave/{STACK}/access")), "{name}: {used}");
        let tags: BTreeMap<&str, &str> =
            secret.tags().iter().filter_map(|t| Some((t.key()?, t.value().unwrap_or_default()))).collect();
        assert_eq!(tags.get("enclave:stack"), Some(&STACK), "{name}");
        assert!(tags.get("enclave:address").is_some_and(|a| a.starts_with("prod/secrets/secret/orders-")), "{name}");
        let policy = prod.secrets.get_resource_policy().secret_id(name).send().await.expect("policy");
        let policy: Value = serde_json::from_str(policy.resource_policy().unwrap_or("{}")).expect("json");
        assert_eq!(policy["Statement"][0]["Principal"]["AWS"], json!(role_arn), "{name}: only orders' role reads");
        assert_eq!(policy["Statement"].as_array().map(Vec::len), Some(1), "{name}");
        assert_eq!(versions(&prod.secrets, name).await, 1, "{name}: one version");
    }
    let value = prod.secrets.get_secret_value().secret_id(PROD_SECRETS[0]).send().await.expect("value");
    let generated = value.secret_string().unwrap_or_default();
    assert!(generated.len() == 40 && generated.chars().all(|c| c.is_ascii_alphanumeric()), "40 generated characters");

    // IRSA: the role trusts the cluster's OIDC provider for exactly orders' reader.
    let role = prod.iam.get_role().role_name("platform-prod-orders-secrets").send().await.expect("role");
    let trust = role.role().and_then(|r| r.assume_role_policy_document()).expect("trust");
    let trust = enclave_aws::reconcile::policy_document(trust);
    let providers = prod.iam.list_open_id_connect_providers().send().await.expect("providers");
    let provider = providers.open_id_connect_provider_list()[0].arn().expect("arn").to_owned();
    let issuer = provider.split_once(":oidc-provider/").expect("issuer").1.to_owned();
    let statement = &trust["Statement"][0];
    assert_eq!(statement["Principal"]["Federated"], json!(provider));
    assert_eq!(statement["Action"], "sts:AssumeRoleWithWebIdentity");
    assert_eq!(
        statement["Condition"]["StringEquals"][format!("{issuer}:sub")],
        "system:serviceaccount:orders:secrets-reader"
    );
    assert_eq!(statement["Condition"]["StringEquals"][format!("{issuer}:aud")], "sts.amazonaws.com");

    // Pod Identity in dev: the operator's service account is associated with its role.
    let dev = member(&moto, DEV).await;
    let associations =
        dev.eks.list_pod_identity_associations().cluster_name("platform-dev").send().await.expect("associations");
    assert_eq!(associations.associations().len(), 1);
    assert_eq!(associations.associations()[0].service_account(), Some("external-secrets"));
    assert_eq!(secrets(&dev.secrets).await.len(), 1 + 4, "reports' signing key, the monitoring stack's four");

    let plan = run_with_token(&["plan", "-c", &dir, "--only", "secrets"], endpoint, "first-token-value");
    assert_eq!(plan["changes"], json!([]), "converged: {plan:#}");
    println!("converged `plan --only secrets` calls: {}", plan["calls"]);
    let plan = run_with_token(&["plan", "-c", &dir], endpoint, "first-token-value");
    assert_eq!(plan["changes"], json!([]), "converged: {plan:#}");
    let again = run_with_token(&["apply", "-c", &dir, "--yes"], endpoint, "first-token-value");
    assert_eq!(mutating(&again["calls"]), BTreeMap::new(), "a converged apply writes nothing");

    // A new value in the environment: one new version, nothing else.
    let changed = run_with_token(&["apply", "-c", &dir, "--yes"], endpoint, "second-token-value");
    assert_eq!(
        mutating(&changed["calls"]),
        BTreeMap::from([("secrets-manager:PutSecretValue".to_owned(), 1)]),
        "{:#}",
        changed["calls"]
    );
    assert_eq!(versions(&prod.secrets, "acme-platform/prod/orders/queue-token").await, 2);
    let plan = run_with_token(&["plan", "-c", &dir], endpoint, "second-token-value");
    assert_eq!(plan["changes"], json!([]), "converged again: {plan:#}");
    assert!(!plan.to_string().contains("second-token-value"), "no value in a plan");

    // Drift by hand: the policy opened to another role, the key swapped for the default one.
    let name = PROD_SECRETS[1];
    let foreign = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::333333333333:role/someone"}, "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]});
    prod.secrets
        .put_resource_policy()
        .secret_id(name)
        .resource_policy(foreign.to_string())
        .send()
        .await
        .expect("policy");
    let other_key = prod.kms.create_key().send().await.expect("key");
    let other_key = other_key.key_metadata().map(|k| k.key_id().to_owned()).expect("id");
    prod.secrets.update_secret().secret_id(PROD_SECRETS[0]).kms_key_id(&other_key).send().await.expect("key swapped");
    let drift = enclave_against(&["drift", "-c", &dir, "--only", "secrets", "--output", "json"], endpoint)
        .env(TOKEN_ENV, "second-token-value")
        .output()
        .expect("drift runs");
    assert_eq!(drift.status.code(), Some(3), "drift found: {}", String::from_utf8_lossy(&drift.stderr));
    let drift: Value = serde_json::from_slice(&drift.stdout).expect("json");
    let mut drifted: Vec<(String, String)> = drift["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .flat_map(|change| {
            let address = change["address"].as_str().unwrap_or_default().to_owned();
            change["reasons"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |reason| (address.clone(), reason["attribute"].as_str().unwrap_or_default().to_owned()))
        })
        .collect();
    drifted.sort();
    assert_eq!(
        drifted,
        [
            ("prod/secrets/secret/orders-database-password".to_owned(), "key".to_owned()),
            ("prod/secrets/secret/orders-payments-api-key".to_owned(), "policy".to_owned()),
        ]
    );
    let repaired = run_with_token(&["apply", "-c", &dir, "--yes"], endpoint, "second-token-value");
    assert_eq!(repaired["report"]["failed"], json!([]), "{repaired:#}");
    let plan = run_with_token(&["plan", "-c", &dir], endpoint, "second-token-value");
    assert_eq!(plan["changes"], json!([]), "repaired: {plan:#}");
    assert_eq!(versions(&prod.secrets, PROD_SECRETS[0]).await, 1, "a key change writes no version");

    // Destroy: ours scheduled for deletion with the 7-day window; a secret of someone else stays.
    prod.secrets.create_secret().name("someone-elses").secret_string("x").send().await.expect("decoy");
    let destroyed = json_of(&["destroy", "-c", &dir, "--only", "secrets", "--yes"], endpoint);
    assert_eq!(destroyed["report"]["failed"], json!([]), "{destroyed:#}");
    let after = secrets(&prod.secrets).await;
    for name in names.iter().chain(&PROD_MONITORING_SECRETS) {
        assert!(after[*name].deleted_date().is_some(), "{name}: scheduled for deletion");
    }
    assert!(after["someone-elses"].deleted_date().is_none(), "the decoy is left alone");
    let plan = json_of(&["destroy", "-c", &dir, "--only", "secrets"], endpoint);
    assert_eq!(plan["changes"], json!([]), "nothing of ours is left to delete: {plan:#}");

    // Applied again: restored, not made twice; the generated value is the one made first.
    let restored = run_with_token(&["apply", "-c", &dir, "--yes"], endpoint, "second-token-value");
    assert_eq!(restored["report"]["failed"], json!([]), "{restored:#}");
    let again = secrets(&prod.secrets).await;
    for name in names.iter().chain(&PROD_MONITORING_SECRETS) {
        assert!(again[*name].deleted_date().is_none(), "{name} restored: {restored:#}");
    }
    let value = prod.secrets.get_secret_value().secret_id(PROD_SECRETS[0]).send().await.expect("value");
    assert_eq!(value.secret_string(), Some(generated), "a generated value is never replaced");
    let plan = run_with_token(&["plan", "-c", &dir], endpoint, "second-token-value");
    assert_eq!(plan["changes"], json!([]), "converged after the restore: {plan:#}");
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto_server; cargo xtask test installs it and runs this with --ignored"]
async fn killing_a_secrets_apply_at_seeded_points_never_makes_a_second_secret_or_version() {
    let dir = reference_dir();
    let mut rng = seeded(20261130);
    let moto = MotoServer::start().expect("moto");
    applied(&["apply", "-c", &dir, "--only", "net,access,deploy", "--yes"], moto.endpoint());
    let proxy = FaultProxy::start(moto.endpoint(), Faults::default()).await.expect("proxy");
    let report = json_of(&["apply", "-c", &dir, "--only", "secrets", "--yes"], &proxy.endpoint());
    let writes: u64 = mutating(&report["calls"]).values().sum();
    assert!(writes >= 10, "roles, policies, secrets, their policies, an association: {:#}", report["calls"]);
    let before = proxy.stats().mutations_forwarded - writes;
    drop(proxy);
    drop(moto);
    // Ten distinct points among the writes (every write, when there are no more than ten).
    let mut points: Vec<u64> = Vec::new();
    while points.len() < 10.min(writes as usize) {
        let point = before + 1 + rng() % writes;
        if !points.contains(&point) {
            points.push(point);
        }
    }
    println!("{writes} writes in a secrets apply; killing at {points:?}");
    for (run, point) in points.iter().enumerate() {
        let moto = MotoServer::start().expect("moto");
        applied(&["apply", "-c", &dir, "--only", "net,access,deploy", "--yes"], moto.endpoint());
        common::killed_at(moto.endpoint(), *point, &["apply", "-c", &dir, "--only", "secrets", "--yes"], run).await;
        applied(&["apply", "-c", &dir, "--yes"], moto.endpoint());
        let plan = json_of(&["plan", "-c", &dir], moto.endpoint());
        assert_eq!(plan["changes"], json!([]), "run {run} (kill at {point}): {plan:#}");
        let prod = member(&moto, PROD).await;
        let found = secrets(&prod.secrets).await;
        assert_eq!(
            found.keys().map(String::as_str).collect::<Vec<_>>(),
            all_prod_secrets(&[]),
            "run {run}: each secret once"
        );
        for name in all_prod_secrets(&[]) {
            assert_eq!(versions(&prod.secrets, name).await, 1, "run {run}: {name} has one version");
        }
        let dev = member(&moto, DEV).await;
        let associations =
            dev.eks.list_pod_identity_associations().cluster_name("platform-dev").send().await.expect("associations");
        assert_eq!(associations.associations().len(), 1, "run {run}: one association");
        println!("kill point {point}: re-run converged with each secret, version and association once");
    }
}

#[test]
fn an_unreadable_source_file_is_an_input_error_naming_the_field_and_the_file() {
    let root = std::env::temp_dir().join(format!("enclave-secrets-file-{}", std::process::id()));
    let dir = reference_with(&root, "base/clusters.yaml", |text| {
        text.replace("secrets/payments-api-key.json", "secrets/missing.json")
    });
    let out = enclave(&["plan", "-c", &dir], "http://127.0.0.1:9");
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("clusters.yaml") && stderr.contains("source.file") && stderr.contains("missing.json"),
        "{stderr}"
    );
    let offline = std::process::Command::new(env!("CARGO_BIN_EXE_enclave"))
        .args(["plan", "--offline", "-c", &dir])
        .output()
        .expect("runs");
    assert_eq!(offline.status.code(), Some(2), "offline plans read values too");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_missing_environment_variable_is_an_input_error_naming_the_field_not_a_value() {
    let root = std::env::temp_dir().join(format!("enclave-secrets-env-{}", std::process::id()));
    let dir = with_env_secret(&root);
    let out = enclave(&["plan", "-c", &dir], "http://127.0.0.1:9");
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("clusters.yaml") && stderr.contains(TOKEN_ENV), "{stderr}");
    let _ = std::fs::remove_dir_all(&root);
}

/// Canaries through every source; none may appear in any output.
const ENV_CANARY: &str = "canary-env-5d1e77";
const FILE_CANARY: &str = "canary-file-93b0c4";
const SEALED_CANARY: &str = "canary-sealed-2a6f18";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto_server; cargo xtask test installs it and runs this with --ignored"]
async fn no_secret_value_reaches_any_output_even_at_trace_level() {
    let moto = MotoServer::start().expect("moto");
    let endpoint = moto.endpoint();
    let root = std::env::temp_dir().join(format!("enclave-leak-{}", std::process::id()));
    let dir = with_env_secret(&root);
    std::fs::write(
        root.join("secrets/payments-api-key.json"),
        format!(r#"{{"id": "{FILE_CANARY}-id", "key": "{FILE_CANARY}-key"}}"#),
    )
    .expect("file source");
    let mut outputs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut run = |name: &str, args: &[&str], endpoint: &str| -> std::process::Output {
        // Commands without AWS take no endpoint.
        let mut command = if endpoint.is_empty() {
            std::process::Command::new(env!("CARGO_BIN_EXE_enclave"))
        } else {
            enclave_against(args, endpoint)
        };
        if endpoint.is_empty() {
            command.args(args);
        }
        let out = command.env(TOKEN_ENV, ENV_CANARY).env("RUST_LOG", "trace").output().expect("enclave runs");
        outputs.push((format!("{name} stdout"), out.stdout.clone()));
        outputs.push((format!("{name} stderr"), out.stderr.clone()));
        out
    };
    run("offline plan", &["plan", "--offline", "-c", &dir], endpoint);
    run("offline plan json", &["plan", "--offline", "-c", &dir, "--output", "json"], endpoint);
    let applied = run("apply", &["apply", "-c", &dir, "--yes", "--output", "json"], endpoint);
    assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr).lines().last().unwrap_or(""));
    let trace = String::from_utf8_lossy(&applied.stderr);
    assert!(trace.contains("TRACE") && trace.contains("CreateSecret"), "the apply logged at trace level");
    run("plan", &["plan", "-c", &dir], endpoint);
    // Drift on the value itself: a new value by hand, found by digest, shown as (sensitive).
    let prod = member(&moto, PROD).await;
    prod.secrets
        .put_secret_value()
        .secret_id("acme-platform/prod/orders/queue-token")
        .secret_string("changed-by-hand")
        .send()
        .await
        .expect("hand change");
    let drift = run("drift", &["drift", "-c", &dir, "--output", "json"], endpoint);
    assert_eq!(drift.status.code(), Some(3), "the value drifted");
    let drift: Value = serde_json::from_slice(&drift.stdout).expect("json");
    assert!(drift.to_string().contains("(sensitive)"), "the drifted value is shown as (sensitive)");
    assert!(!drift.to_string().contains("changed-by-hand"), "not even the hand-set value");
    run("drift text", &["drift", "-c", &dir], endpoint);
    run("repair", &["apply", "-c", &dir, "--yes"], endpoint);
    // A failing apply: a secret of the same name that is not ours blocks the create.
    let queue = "acme-platform/prod/orders/queue-token";
    run("destroy", &["destroy", "-c", &dir, "--only", "secrets", "--yes", "--force-delete-secrets"], endpoint);
    prod.secrets.create_secret().name(queue).secret_string("someone-elses").send().await.expect("squatter");
    let failing = run("failing apply", &["apply", "-c", &dir, "--yes"], endpoint);
    assert_eq!(failing.status.code(), Some(1), "{}", String::from_utf8_lossy(&failing.stderr));
    assert!(String::from_utf8_lossy(&failing.stdout).contains("without this stack's tags"));
    let generated = prod
        .secrets
        .get_secret_value()
        .secret_id("acme-platform/prod/orders/database-password")
        .send()
        .await
        .expect("generated value");
    let generated = generated.secret_string().expect("value").to_owned();
    // Render and seal.
    let rendered = root.join("rendered");
    let render = run("render", &["render", "-c", &dir, "--out", &rendered.to_string_lossy()], "");
    assert!(render.status.success(), "{}", String::from_utf8_lossy(&render.stderr));
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: s, namespace: orders}}\nstringData: {{v: {SEALED_CANARY}}}\n"
    );
    std::fs::write(root.join("secret.yaml"), secret).expect("written");
    let cert = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sealed-secrets-cert.pem");
    let sealed = run(
        "seal",
        &["seal", "--cert", &cert.to_string_lossy(), "-f", &root.join("secret.yaml").to_string_lossy()],
        "",
    );
    assert!(sealed.status.success(), "{}", String::from_utf8_lossy(&sealed.stderr));
    let mut files = Vec::new();
    collect(&rendered, &mut files);
    let snapshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/tests/snapshots");
    collect(&snapshots, &mut files);
    collect(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots"), &mut files);
    for file in files {
        let bytes = std::fs::read(&file).expect("readable");
        outputs.push((file.display().to_string(), bytes));
    }
    for canary in [ENV_CANARY, FILE_CANARY, SEALED_CANARY, generated.as_str()] {
        for (name, bytes) in &outputs {
            let text = String::from_utf8_lossy(bytes);
            assert!(!text.contains(canary), "a secret value in {name}");
        }
    }
    println!("{} outputs checked for 4 canaries: none found", outputs.len());
    let _ = std::fs::remove_dir_all(&root);
}

fn collect(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}

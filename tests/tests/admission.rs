//! The Gatekeeper templates, evaluated for real: regorus (Microsoft's Rego interpreter) runs each
//! template's Rego with its library, in Gatekeeper's input shape (`input.review.object`,
//! `input.parameters`).
//!
//! - Each template refuses its `fixtures/admission/<template>/violating.json` and admits its
//!   `compliant.json`, and `enclave check`'s rule of the same meaning agrees on both.
//! - Over every object of `fixtures/corpus/k8s` (388 files from three public projects), for every
//!   rule with an `enclave check` counterpart, the Rego verdict equals `enclave check`'s; each
//!   difference is listed below with its reason, and a listed difference that no longer occurs
//!   fails too. The agreement table is printed (`--nocapture`).
//! - Every rendered bundle of the reference platform (each overlay) violates none of its own
//!   Constraints, matched the way Gatekeeper matches them (kinds with their API group,
//!   `namespaces`, `excludedNamespaces`), and neither do the Pods its Deployments make.

use std::collections::{BTreeMap, BTreeSet};

use enclave_access::admission::{self, Template};
use enclave_check::manifest;
use enclave_check::rules::{self, Verdict};
use enclave_tests::{load, workspace};
use serde_json::{Value, json};

/// A template loaded into a regorus engine.
struct Judge {
    engine: regorus::Engine,
    package: String,
}

impl Judge {
    fn new(template: &Template) -> Judge {
        let mut engine = regorus::Engine::new();
        // Gatekeeper (OPA) makes a failing builtin undefined instead of aborting the evaluation.
        engine.set_strict_builtin_errors(false);
        let package = engine
            .add_policy(format!("{}.rego", template.kind), template.rego.to_owned())
            .unwrap_or_else(|error| panic!("{}: the Rego does not load: {error}", template.kind));
        engine
            .add_policy("lib.rego".to_owned(), admission::LIB.to_owned())
            .unwrap_or_else(|error| panic!("the library does not load: {error}"));
        Judge { engine, package }
    }

    /// The messages of every violation of `object` under `parameters`.
    fn violations(&mut self, object: &Value, parameters: &Value) -> Vec<String> {
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let review = json!({
            "kind": {"group": group, "version": version, "kind": object["kind"]},
            "operation": "CREATE",
            "name": object["metadata"]["name"],
            "namespace": object["metadata"]["namespace"],
            "object": object,
        });
        let input = json!({"review": review, "parameters": parameters});
        self.engine.set_input(regorus::Value::from(input));
        let result = self
            .engine
            .eval_rule(format!("{}.violation", self.package))
            .unwrap_or_else(|error| panic!("{}: evaluation failed: {error}", self.package));
        let set = result.as_set().unwrap_or_else(|error| panic!("{}: violation is not a set: {error}", self.package));
        set.iter().map(|item| item["msg"].as_string().map(|m| m.to_string()).unwrap_or_default()).collect()
    }
}

fn rule(id: &str) -> &'static rules::Rule {
    rules::all().iter().find(|rule| rule.info.id == id).unwrap_or_else(|| panic!("no enclave check rule {id}"))
}

/// `enclave check`'s verdict: `Some(failed)`, or `None` where the rule does not apply.
fn ours(id: &str, object: &manifest::Object) -> Option<bool> {
    match rule(id).evaluate(object) {
        Verdict::Fail(_) => Some(true),
        Verdict::Pass | Verdict::Unknown => Some(false),
        Verdict::NotApplicable => None,
    }
}

fn objects_of(name: &str, text: String) -> Vec<manifest::Object> {
    manifest::parse(&enclave_check::Source::new(name.to_owned(), text)).objects
}

#[test]
fn each_template_refuses_its_violating_fixture_and_admits_its_compliant_one() {
    let inputs = admission::AdmissionInputs {
        app_namespaces: vec!["orders".to_owned()],
        registries: vec!["333333333333.dkr.ecr.eu-west-1.amazonaws.com/".to_owned()],
        ..admission::AdmissionInputs::default()
    };
    for template in admission::templates() {
        let constraint = admission::constraints("acme", &template, &inputs).remove(0);
        let parameters = constraint.spec.parameters.clone().unwrap_or_else(|| json!({}));
        let mut judge = Judge::new(&template);
        let folder = workspace().join("fixtures/admission").join(template.kind.to_lowercase());
        for (file, refused) in [("violating.json", true), ("compliant.json", false)] {
            let path = folder.join(file);
            let text = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("{} is missing", path.display()));
            let object: Value = serde_json::from_str(&text).expect("JSON");
            let found = judge.violations(&object, &parameters);
            assert_eq!(!found.is_empty(), refused, "{} {file}: {found:?}", template.kind);
            // The rules of the same meaning, with the parameters that make the template each one.
            for (id, check_parameters) in template.checks {
                let theirs = !judge.violations(&object, &check_parameters()).is_empty();
                for object in objects_of(file, text.clone()) {
                    if let Some(failed) = ours(id, &object) {
                        assert_eq!(failed, theirs, "{} {file}: {id} says failed={failed}", template.kind);
                    }
                }
            }
        }
    }
}

/// Where the Rego and `enclave check` differ on the corpus: (file, object, rule, the Rego's
/// verdict, why).
const DIFFERENCES: &[(&str, &str, &str, bool, &str)] = &[];

#[test]
fn rego_verdicts_equal_enclave_checks_on_the_corpus() {
    let corpus = workspace().join("fixtures/corpus/k8s");
    let sources = enclave_check::read_sources(std::slice::from_ref(&corpus)).expect("the corpus reads");
    let mut judges: Vec<(Template, Judge)> = admission::templates()
        .into_iter()
        .map(|template| {
            let judge = Judge::new(&template);
            (template, judge)
        })
        .collect();
    // (agree, differ, refused by both)
    let mut table: BTreeMap<(&str, &str), (usize, usize, usize)> = BTreeMap::new();
    let mut differences = BTreeSet::new();
    for source in &sources {
        let file = source.name.strip_prefix(&corpus.display().to_string()).unwrap_or(&source.name).to_owned();
        for object in manifest::parse(source).objects {
            if !object.is_resource() {
                continue;
            }
            let json = object.node.to_json();
            let id_of = format!("{}/{}", object.kind(), object.name.as_deref().unwrap_or("-"));
            for (template, judge) in &mut judges {
                for (id, parameters) in template.checks {
                    let Some(failed) = ours(id, &object) else { continue };
                    let rego = !judge.violations(&json, &parameters()).is_empty();
                    let entry = table.entry((template.kind, id)).or_default();
                    if rego == failed {
                        entry.0 += 1;
                        entry.2 += usize::from(rego);
                    } else {
                        entry.1 += 1;
                        differences.insert((file.clone(), id_of.clone(), (*id).to_owned(), rego));
                    }
                }
            }
        }
    }
    println!("| template | enclave check rule | agree (both refuse) | differ |\n|---|---|---|---|");
    for ((kind, id), (agree, differ, refused)) in &table {
        println!("| {kind} | {id} | {agree} ({refused}) | {differ} |");
        assert!(*refused > 0, "{kind}/{id}: nothing in the corpus is refused, the comparison proves little");
    }
    let (agree, differ): (usize, usize) = table.values().fold((0, 0), |(a, d), (x, y, _)| (a + x, d + y));
    println!("total: {agree} agree, {differ} differ ({:.2}%)", 100.0 * agree as f64 / (agree + differ) as f64);
    let listed: BTreeSet<(String, String, String, bool)> = DIFFERENCES
        .iter()
        .map(|(file, object, id, rego, _)| ((*file).to_owned(), (*object).to_owned(), (*id).to_owned(), *rego))
        .collect();
    let unexpected: Vec<_> = differences.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&differences).collect();
    assert!(
        unexpected.is_empty() && stale.is_empty(),
        "unlisted differences (file, object, rule, Rego refuses): {unexpected:#?}\nlisted but gone: {stale:#?}"
    );
    assert!(agree * 100 >= (agree + differ) * 99, "at least 99% of verdicts agree");
    assert!(agree > 2_000, "the comparison compared too little: {agree}");
}

/// Whether a Constraint's `match` selects `object` (Gatekeeper's rules: every matcher given
/// must pass; a kind entry matches when its groups and kinds contain the object's; namespace
/// lists compare the object's namespace, and an object with none is never excluded).
fn matches(constraint: &Value, object: &Value) -> bool {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let group = api_version.split_once('/').map_or("", |(group, _)| group);
    let kind = object["kind"].as_str().unwrap_or_default();
    let list = |value: &Value| -> Vec<String> {
        value.as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect()
    };
    let spec = &constraint["spec"]["match"];
    let kinds = spec["kinds"].as_array().cloned().unwrap_or_default();
    let kind_ok = kinds.is_empty()
        || kinds.iter().any(|entry| {
            let groups = list(&entry["apiGroups"]);
            let names = list(&entry["kinds"]);
            (groups.is_empty() || groups.iter().any(|g| g == group || g == "*"))
                && (names.is_empty() || names.iter().any(|k| k == kind || k == "*"))
        });
    let namespace = object["metadata"]["namespace"].as_str();
    let included = list(&spec["namespaces"]);
    let excluded = list(&spec["excludedNamespaces"]);
    let namespace_ok = namespace.is_none_or(|ns| {
        (included.is_empty() || included.iter().any(|n| n == ns)) && !excluded.iter().any(|n| n == ns)
    });
    kind_ok && namespace_ok
}

/// The Pod a Deployment's ReplicaSet creates, as admission sees it.
fn pod_of(deployment: &Value) -> Value {
    let template = &deployment["spec"]["template"];
    let mut metadata = template["metadata"].clone();
    metadata["name"] = json!(format!("{}-pod", deployment["metadata"]["name"].as_str().unwrap_or_default()));
    metadata["namespace"] = deployment["metadata"]["namespace"].clone();
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]})
}

#[test]
fn rendered_bundles_violate_none_of_their_constraints() {
    let templates: BTreeMap<String, Template> =
        admission::templates().into_iter().map(|template| (template.kind.to_owned(), template)).collect();
    for overlays in [&[][..], &["client-a"], &["client-b"], &["staging"]] {
        let (loaded, _) = load(&workspace().join("fixtures/reference"), overlays).expect("valid reference spec");
        for cluster in enclave::render(&loaded.spec).expect("renders") {
            let at = format!("{overlays:?} {}", cluster.cluster);
            let mut objects: Vec<Value> = cluster.bundle.objects().iter().map(|o| o.value().clone()).collect();
            let pods: Vec<Value> = objects.iter().filter(|o| o["kind"] == "Deployment").map(pod_of).collect();
            objects.extend(pods);
            let constraints: Vec<&Value> =
                objects.iter().filter(|o| o["apiVersion"] == "constraints.gatekeeper.sh/v1beta1").collect();
            let rendered: BTreeSet<&str> = constraints.iter().filter_map(|c| c["kind"].as_str()).collect();
            assert_eq!(rendered.len(), templates.len(), "{at}: a Constraint per template");
            let mut checked = 0;
            for constraint in constraints {
                let kind = constraint["kind"].as_str().unwrap_or_default();
                let template = &templates[kind];
                assert!(
                    objects
                        .iter()
                        .any(|o| o["kind"] == "ConstraintTemplate" && o["metadata"]["name"] == kind.to_lowercase()),
                    "{at}: {kind} has its template"
                );
                let mut judge = Judge::new(template);
                let parameters = constraint["spec"].get("parameters").cloned().unwrap_or_else(|| json!({}));
                for object in objects.iter().filter(|object| matches(constraint, object)) {
                    checked += 1;
                    let found = judge.violations(object, &parameters);
                    assert!(
                        found.is_empty(),
                        "{at}: {kind} refuses {} {}/{}: {found:?}",
                        object["kind"],
                        object["metadata"]["namespace"],
                        object["metadata"]["name"]
                    );
                }
            }
            assert!(checked > 20, "{at}: only {checked} objects were matched");
        }
    }
}

#[test]
fn the_match_semantics_select_what_gatekeeper_would() {
    let constraint = json!({"spec": {"match": {
        "kinds": [{"apiGroups": ["apps"], "kinds": ["Deployment"]}],
        "excludedNamespaces": ["kube-system"]}}});
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"namespace": "orders"}});
    assert!(matches(&constraint, &deployment));
    let system = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"namespace": "kube-system"}});
    assert!(!matches(&constraint, &system));
    let old = json!({"apiVersion": "extensions/v1beta1", "kind": "Deployment", "metadata": {"namespace": "orders"}});
    assert!(!matches(&constraint, &old), "the group must match too");
}

//! Everything rendered for every cluster (scaling and monitoring objects, rule files, promtool
//! tests, dashboards, Filebeat inputs), for the reference platform and its overlays, is a
//! reviewed contract. (`cargo xtask test` also has kubernetes-validate, the CRD schemas and
//! promtool judge all of it.)

use enclave_tests::{load, workspace};

#[test]
fn rendered_bundles_of_every_cluster_match_their_snapshots() {
    for overlays in [&[][..], &["client-a"], &["client-b"], &["staging"]] {
        let (loaded, _) = load(&workspace().join("fixtures/reference"), overlays).expect("valid reference spec");
        assert!(!loaded.spec.clusters.is_empty());
        for cluster in enclave::render(&loaded.spec).expect("renders") {
            let prefix = if overlays.is_empty() { "reference".to_owned() } else { overlays.join("+") };
            let name = format!("{prefix}+{}", cluster.cluster);
            // The add-ons' GitOps objects have their own snapshots (`tests/addons.rs`).
            let mut text = String::new();
            for object in cluster.bundle.objects() {
                if matches!(object.kind(), "Application" | "HelmRelease" | "HelmRepository") {
                    continue;
                }
                text.push_str("---\n");
                text.push_str(&enclave_core::bundle::to_yaml(object.value()));
            }
            for artifact in &cluster.artifacts {
                text.push_str(&format!("--- # file {}\n{}", artifact.path, artifact.content));
            }
            insta::assert_snapshot!(name, text);
        }
    }
}

#[test]
fn delivery_workflows_of_every_overlay_match_their_snapshots() {
    for overlays in [&[][..], &["client-a"], &["client-b"], &["staging"]] {
        let (loaded, network) = load(&workspace().join("fixtures/reference"), overlays).expect("valid reference spec");
        let deploy = enclave::platform::deploy_model(&loaded.spec, &network);
        let workflows = enclave_deploy::pipeline::workflows(&loaded.spec, &deploy).expect("a pipeline section");
        assert_eq!(workflows.len(), loaded.spec.apps.len(), "one workflow per app");
        let prefix = if overlays.is_empty() { "reference".to_owned() } else { overlays.join("+") };
        let text: String = workflows
            .iter()
            .map(|(file, workflow)| format!("--- # file {file}\n{}", enclave_deploy::pipeline::to_yaml(workflow)))
            .collect();
        insta::assert_snapshot!(format!("{prefix}+pipeline"), text);
    }
}

#[test]
fn every_fixture_app_gets_a_budget_and_its_autoscalers() {
    let (loaded, _) = load(&workspace().join("fixtures/reference"), &[]).expect("valid reference spec");
    for app in &loaded.spec.apps {
        let cluster = loaded.spec.clusters.iter().find(|c| c.name == app.cluster).expect("cluster");
        let bundle = enclave_scaling::render::render_cluster(&loaded.spec, cluster).expect("renders");
        let has = |kind: &str| bundle.objects().iter().any(|o| o.kind() == kind && o.name() == app.name.as_str());
        assert!(has("PodDisruptionBudget"), "{}: PDB", app.name);
        assert_eq!(has("HorizontalPodAutoscaler"), app.autoscaling.is_some(), "{}: HPA", app.name);
        assert_eq!(has("VerticalPodAutoscaler"), app.vpa.is_some(), "{}: VPA", app.name);
    }
}

#[test]
fn rendered_objects_pass_enclave_check_rules_and_strict_schema() {
    for overlays in [&[][..], &["client-a"], &["client-b"], &["staging"]] {
        let (loaded, _) = load(&workspace().join("fixtures/reference"), overlays).expect("valid reference spec");
        for cluster in enclave::render(&loaded.spec).expect("renders") {
            let source =
                enclave_check::Source::new(format!("{overlays:?}/{}", cluster.cluster), cluster.bundle.to_yaml());
            let report = enclave_check::check(&[source], &enclave_check::Options::default());
            assert_eq!(report.findings, [], "{overlays:?} {}", cluster.cluster);
            assert_eq!(report.summary.schema_invalid, 0);
            assert!(report.summary.schema_valid > 5, "the schema judged the bundle");
            for accepted in &report.suppressed {
                assert!(accepted.reason.len() > 20, "every accepted finding says why: {accepted:?}");
            }
        }
    }
}

#[test]
fn every_autoscaler_budget_and_monitor_targets_a_rendered_workload() {
    for overlays in [&[][..], &["client-a"], &["client-b"], &["staging"]] {
        let (loaded, _) = load(&workspace().join("fixtures/reference"), overlays).expect("valid reference spec");
        for cluster in enclave::render(&loaded.spec).expect("renders") {
            let objects = cluster.bundle.objects();
            let find = |kind: &str, namespace: &str, name: &str| {
                objects.iter().find(|o| o.kind() == kind && o.namespace() == namespace && o.name() == name)
            };
            for app in loaded.spec.apps.iter().filter(|a| a.cluster.as_str() == cluster.cluster) {
                let ns = app.namespace().as_str();
                let at = format!("{overlays:?} {}/{}", cluster.cluster, app.name);
                assert!(objects.iter().any(|o| o.kind() == "Namespace" && o.name() == ns), "{at}: its namespace");
                let deployment =
                    find("Deployment", ns, app.name.as_str()).unwrap_or_else(|| panic!("{at}: Deployment"));
                let pod_labels = &deployment.value()["spec"]["template"]["metadata"]["labels"];
                let matches = |selector: &serde_json::Value| {
                    selector.as_object().is_some_and(|labels| labels.iter().all(|(k, v)| &pod_labels[k] == v))
                };
                if let Some(hpa) = find("HorizontalPodAutoscaler", ns, app.name.as_str()) {
                    assert_eq!(hpa.value()["spec"]["scaleTargetRef"]["kind"], "Deployment", "{at}");
                    assert_eq!(hpa.value()["spec"]["scaleTargetRef"]["name"], app.name.as_str(), "{at}");
                    assert!(deployment.value()["spec"]["replicas"].is_null(), "{at}: the HPA owns the count");
                }
                let pdb = find("PodDisruptionBudget", ns, app.name.as_str()).unwrap_or_else(|| panic!("{at}: PDB"));
                assert!(matches(&pdb.value()["spec"]["selector"]["matchLabels"]), "{at}: the PDB selects its pods");
                let service = find("Service", ns, &format!("{}-metrics", app.name)).unwrap_or_else(|| panic!("{at}"));
                assert!(matches(&service.value()["spec"]["selector"]), "{at}: the metrics Service selects its pods");
                let monitor = objects
                    .iter()
                    .find(|o| o.kind() == "ServiceMonitor" && o.name() == app.name.as_str())
                    .unwrap_or_else(|| panic!("{at}: ServiceMonitor"));
                let port = &monitor.value()["spec"]["endpoints"][0]["port"];
                assert_eq!(&service.value()["spec"]["ports"][0]["name"], port, "{at}: the scraped port exists");
                let selects = monitor.value()["spec"]["selector"]["matchLabels"].as_object().expect("labels");
                assert!(selects.iter().all(|(k, v)| &service.value()["metadata"]["labels"][k] == v), "{at}");
                let traffic = find("Service", ns, app.name.as_str()).unwrap_or_else(|| panic!("{at}: Service"));
                assert_eq!(traffic.value()["spec"]["ports"].as_array().map(Vec::len), Some(1), "{at}: traffic only");
                assert_eq!(traffic.value()["spec"]["type"], "ClusterIP", "{at}");
            }
        }
    }
}

#[test]
fn every_namespace_denies_by_default_and_every_call_is_allowed_at_both_ends_only() {
    for overlays in [&[][..], &["client-a"], &["client-b"], &["staging"]] {
        let (loaded, _) = load(&workspace().join("fixtures/reference"), overlays).expect("valid reference spec");
        for cluster in enclave::render(&loaded.spec).expect("renders") {
            let objects = cluster.bundle.objects();
            let policy = |namespace: &str, name: &str| {
                objects
                    .iter()
                    .find(|o| o.kind() == "NetworkPolicy" && o.namespace() == namespace && o.name() == name)
                    .map(|o| o.value().clone())
            };
            // A peer (namespaceSelector + podSelector) that selects `app`'s pods.
            let selects = |peers: &serde_json::Value, app: &enclave_core::spec::AppSpec| {
                peers.as_array().into_iter().flatten().any(|peer| {
                    peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] == app.namespace().as_str()
                        && peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == app.name.as_str()
                })
            };
            let apps: Vec<_> = loaded.spec.apps.iter().filter(|a| a.cluster.as_str() == cluster.cluster).collect();
            for app in &apps {
                let at = format!("{overlays:?} {}/{}", cluster.cluster, app.name);
                let ns = app.namespace().as_str();
                let deny = policy(ns, "default-deny").unwrap_or_else(|| panic!("{at}: default deny"));
                assert_eq!(deny["spec"]["podSelector"], serde_json::json!({}), "{at}: every pod");
                let own = policy(ns, app.name.as_str()).unwrap_or_else(|| panic!("{at}: its policy"));
                assert_eq!(own["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"], app.name.as_str());
                for rule in own["spec"]["ingress"].as_array().expect("ingress") {
                    assert!(rule["from"].as_array().is_some_and(|from| !from.is_empty()), "{at}: never from anyone");
                }
                for rule in own["spec"]["egress"].as_array().expect("egress") {
                    assert!(rule["to"].as_array().is_some_and(|to| !to.is_empty()), "{at}: never to anywhere");
                }
                for other in &apps {
                    let calls = app.callers.iter().any(|caller| caller.app == other.name);
                    let theirs = policy(other.namespace().as_str(), other.name.as_str()).expect("policy");
                    let admitted =
                        own["spec"]["ingress"].as_array().expect("ingress").iter().any(|r| selects(&r["from"], other));
                    let reaches =
                        theirs["spec"]["egress"].as_array().expect("egress").iter().any(|r| selects(&r["to"], app));
                    assert_eq!(admitted, calls, "{at}: admits {} exactly when it is a caller", other.name);
                    assert_eq!(reaches, calls, "{at}: {} reaches it exactly when it is a caller", other.name);
                }
            }
        }
    }
}

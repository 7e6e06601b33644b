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
            let mut text = cluster.bundle.to_yaml();
            for artifact in &cluster.artifacts {
                text.push_str(&format!("--- # file {}\n{}", artifact.path, artifact.content));
            }
            insta::assert_snapshot!(name, text);
        }
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

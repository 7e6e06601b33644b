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

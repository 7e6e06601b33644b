//! Every cluster's rendered scaling objects, for the reference platform and its overlays, are
//! reviewed contracts. (`cargo xtask test` also has kubernetes-validate and the VPA CRD schema
//! judge every one of them strictly.)

use enclave_tests::{load, workspace};

#[test]
fn rendered_bundles_of_every_cluster_match_their_snapshots() {
    for overlays in [&[][..], &["client-a"], &["client-b"], &["staging"]] {
        let (loaded, _) = load(&workspace().join("fixtures/reference"), overlays).expect("valid reference spec");
        assert!(!loaded.spec.clusters.is_empty());
        for cluster in &loaded.spec.clusters {
            let bundle = enclave_scaling::render::render_cluster(&loaded.spec, cluster).expect("renders");
            let name = format!(
                "{}+{}",
                if overlays.is_empty() { "reference".to_owned() } else { overlays.join("+") },
                cluster.name
            );
            insta::assert_snapshot!(name, bundle.to_yaml());
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

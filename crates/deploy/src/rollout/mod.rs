//! Blue-green rollouts (issue 15, first slice): the pure decision making, with Argo Rollouts'
//! semantics. [`analysis`] judges measurements and metrics as an AnalysisRun does;
//! [`bluegreen`] is the rollout's state machine; [`strategy`] builds an app's strategy from its
//! spec (`rollout`) and the analysis queries `enclave-monitor` writes from its alert thresholds.
//! [`cluster`] (feature `cluster`) drives a rollout on a cluster with kube-rs.

pub mod analysis;
pub mod bluegreen;
#[cfg(feature = "cluster")]
pub mod cluster;

use enclave_core::spec::RolloutSpec;

use crate::model::{Registry, parse_image};

use analysis::{Condition, Metric, Provider};
use bluegreen::Strategy;

/// The strategy of an app: `spec` (its `rollout` block) with `metrics`, each `(name, query,
/// threshold)` where at most the threshold is good (the error rate and p95 latency the app's
/// alerts use, from `enclave_monitor::render::analysis_queries`), and the health gate on the
/// readiness path `readiness` (through the preview Service), measured before the switch,
/// after it, or both, as the spec says.
pub fn strategy(spec: &RolloutSpec, metrics: &[(String, String, f64)], readiness: &str) -> Strategy {
    let health = Metric {
        name: "health".to_owned(),
        provider: Provider::Readiness(readiness.to_owned()),
        interval_seconds: spec.analysis.interval.seconds(),
        count: Some(spec.analysis.count),
        success: Some(Condition::AtLeast(1.0)),
        failure: None,
        failure_limit: spec.analysis.failure_limit,
        inconclusive_limit: spec.analysis.inconclusive_limit,
        consecutive_error_limit: spec.analysis.consecutive_error_limit,
    };
    let analysis: Vec<Metric> = std::iter::once(health)
        .chain(metrics.iter().map(|(name, query, threshold)| Metric {
            name: name.clone(),
            provider: Provider::Prometheus(query.clone()),
            interval_seconds: spec.analysis.interval.seconds(),
            count: Some(spec.analysis.count),
            success: Some(Condition::AtMost(*threshold)),
            failure: None,
            failure_limit: spec.analysis.failure_limit,
            inconclusive_limit: spec.analysis.inconclusive_limit,
            consecutive_error_limit: spec.analysis.consecutive_error_limit,
        }))
        .collect();
    Strategy {
        auto_promotion: spec.auto_promotion,
        auto_promotion_seconds: spec.auto_promotion_after.map(|d| d.seconds()),
        scale_down_delay_seconds: spec.scale_down_delay.seconds(),
        abort_scale_down_delay_seconds: spec.abort_scale_down_delay.map(|d| d.seconds()),
        pre_promotion: if spec.pre_promotion { analysis.clone() } else { Vec::new() },
        post_promotion: if spec.post_promotion { analysis } else { Vec::new() },
    }
}

/// Where the driver puts the revision's hash in a query: the analysis of `app` measures the
/// Pods `<app>-REVISION-...`, one revision's.
pub const REVISION_PLACEHOLDER: &str = "$revision";

/// Why an image cannot be rolled out for `app`: it must come from the app's repository in the
/// stack's registry, with a tag or a digest, never `latest`.
pub fn check_image(registry: Option<&Registry>, app: &str, image: &str) -> Result<(), String> {
    let Some(registry) = registry else {
        return Err("the spec has no `registry`: rollouts take images from the stack's registry only".to_owned());
    };
    let parsed = parse_image(image);
    let expected = format!("{}/{app}", registry.host);
    if parsed.host != Some(registry.host.as_str()) || parsed.repository != app {
        return Err(format!("the image is not in the stack's registry: `{app}` takes images from {expected}"));
    }
    match (parsed.tag, parsed.digest) {
        (None, None) => Err(format!("the image names no tag or digest: use {expected}:<tag> or @sha256:<digest>")),
        (Some("latest"), None) => Err("`latest` is not a version: roll out a tag or a digest".to_owned()),
        // A tag, or a digest (which pins even `latest`).
        (Some(_), None) | (_, Some(_)) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use enclave_core::spec::PromDuration;

    #[test]
    fn the_spec_and_the_alert_thresholds_make_the_strategy() {
        let metrics =
            vec![("error-rate".to_owned(), "q".to_owned(), 0.05), ("latency-p95".to_owned(), "p".to_owned(), 2.0)];
        let defaults = strategy(&RolloutSpec::default(), &metrics, "/health/ready");
        assert!(defaults.auto_promotion);
        assert_eq!((defaults.scale_down_delay_seconds, defaults.abort_scale_down_delay_seconds), (30, None));
        assert_eq!(defaults.pre_promotion.len(), 3, "the health gate and two metrics");
        assert_eq!(defaults.post_promotion, defaults.pre_promotion);
        let health = &defaults.pre_promotion[0];
        assert_eq!(health.provider, Provider::Readiness("/health/ready".into()));
        assert_eq!(health.judge(&analysis::Measurement::Value(0.0)), analysis::Phase::Failed);
        let error_rate = &defaults.pre_promotion[1];
        assert_eq!((error_rate.count, error_rate.failure_limit, error_rate.interval_seconds), (Some(5), 1, 30));
        assert_eq!(error_rate.judge(&analysis::Measurement::Value(0.071)), analysis::Phase::Failed);
        assert_eq!(error_rate.judge(&analysis::Measurement::Value(0.05)), analysis::Phase::Successful);
        let manual = RolloutSpec {
            auto_promotion: false,
            abort_scale_down_delay: Some(PromDuration(0)),
            post_promotion: false,
            ..RolloutSpec::default()
        };
        let manual = strategy(&manual, &metrics, "/health/ready");
        assert!(!manual.auto_promotion && manual.post_promotion.is_empty());
        assert_eq!(manual.abort_scale_down_delay_seconds, Some(0));
    }

    #[test]
    fn only_the_apps_own_repository_in_the_stack_registry_with_a_version() {
        let registry = Registry {
            account: "shared".into(),
            account_id: "111111111111".into(),
            host: "111111111111.dkr.ecr.eu-west-1.amazonaws.com".into(),
            scan_on_push: true,
            immutable_tags: true,
            keep_tagged: 10,
            untagged_expire_days: 7,
            repositories: vec!["orders".into(), "reports".into()],
            pullers: Vec::new(),
        };
        let host = &registry.host;
        assert_eq!(check_image(Some(&registry), "orders", &format!("{host}/orders:1.1")), Ok(()));
        assert_eq!(check_image(Some(&registry), "orders", &format!("{host}/orders@sha256:{}", "a".repeat(64))), Ok(()));
        for bad in [format!("{host}/reports:1.1"), "docker.io/library/orders:1.1".into(), "orders:1.1".into()] {
            let why = check_image(Some(&registry), "orders", &bad).expect_err("not the stack's");
            assert!(why.contains("not in the stack's registry"), "{why}");
        }
        assert!(check_image(Some(&registry), "orders", &format!("{host}/orders:latest")).is_err());
        assert!(check_image(Some(&registry), "orders", &format!("{host}/orders")).is_err());
        assert!(check_image(None, "orders", &format!("{host}/orders:1.1")).is_err());
    }
}

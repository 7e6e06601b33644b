//! Blue-green rollouts (issue 15, first slice): the pure decision making, with Argo Rollouts'
//! semantics. [`analysis`] judges measurements and metrics as an AnalysisRun does;
//! [`bluegreen`] is the rollout's state machine; [`strategy`] builds an app's strategy from its
//! spec (`rollout`) and the analysis queries `enclave-monitor` writes from its alert thresholds.
//! Driving a cluster (kube-rs) and the `enclave rollout` commands come next.

pub mod analysis;
pub mod bluegreen;

use enclave_core::spec::RolloutSpec;

use analysis::{Condition, Metric};
use bluegreen::Strategy;

/// The strategy of an app: `spec` (its `rollout` block) with `metrics`, each `(name, query,
/// threshold)` where at most the threshold is good (the error rate and p95 latency the app's
/// alerts use, from `enclave_monitor::render::analysis_queries`), measured before the switch,
/// after it, or both, as the spec says.
pub fn strategy(spec: &RolloutSpec, metrics: &[(String, String, f64)]) -> Strategy {
    let analysis: Vec<Metric> = metrics
        .iter()
        .map(|(name, query, threshold)| Metric {
            name: name.clone(),
            query: query.clone(),
            interval_seconds: spec.analysis.interval.seconds(),
            count: Some(spec.analysis.count),
            success: Some(Condition::AtMost(*threshold)),
            failure: None,
            failure_limit: spec.analysis.failure_limit,
            inconclusive_limit: spec.analysis.inconclusive_limit,
            consecutive_error_limit: spec.analysis.consecutive_error_limit,
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use enclave_core::spec::PromDuration;

    #[test]
    fn the_spec_and_the_alert_thresholds_make_the_strategy() {
        let metrics =
            vec![("error-rate".to_owned(), "q".to_owned(), 0.05), ("latency-p95".to_owned(), "p".to_owned(), 2.0)];
        let defaults = strategy(&RolloutSpec::default(), &metrics);
        assert!(defaults.auto_promotion);
        assert_eq!((defaults.scale_down_delay_seconds, defaults.abort_scale_down_delay_seconds), (30, None));
        assert_eq!(defaults.pre_promotion.len(), 2);
        assert_eq!(defaults.post_promotion, defaults.pre_promotion);
        let error_rate = &defaults.pre_promotion[0];
        assert_eq!((error_rate.count, error_rate.failure_limit, error_rate.interval_seconds), (Some(5), 1, 30));
        assert_eq!(error_rate.judge(&analysis::Measurement::Value(0.071)), analysis::Phase::Failed);
        assert_eq!(error_rate.judge(&analysis::Measurement::Value(0.05)), analysis::Phase::Successful);
        let manual = RolloutSpec {
            auto_promotion: false,
            abort_scale_down_delay: Some(PromDuration(0)),
            post_promotion: false,
            ..RolloutSpec::default()
        };
        let manual = strategy(&manual, &metrics);
        assert!(!manual.auto_promotion && manual.post_promotion.is_empty());
        assert_eq!(manual.abort_scale_down_delay_seconds, Some(0));
    }
}

//! The simulator replays the documented scenario the way upstream's controller would.

use std::path::{Path, PathBuf};

use enclave_core::config::read_typed;
use enclave_scaling::hpa::simulate::{self, Options, SimulateError, Step};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/scaling/spike").join(name)
}

fn replay(hpa: &str) -> Vec<Step> {
    let hpa: HorizontalPodAutoscaler = read_typed(&fixture(hpa)).expect("valid HPA");
    let trace = simulate::read_trace(&fixture("trace.csv")).expect("valid trace");
    let options = Options { request: Some("500m".parse().expect("quantity")), ..Options::default() };
    simulate::simulate(&hpa, &trace, &options).expect("replays")
}

#[test]
fn a_spike_scales_up_within_one_sync_period_and_the_drop_is_held_for_the_300s_window() {
    let steps = replay("hpa.yaml");
    let (spike, drop) = (60.0, 300.0);
    let first_up = steps.iter().find(|s| s.desired_replicas > s.replicas).expect("scales up");
    assert!(first_up.time_s >= spike && first_up.time_s <= spike + 15.0, "scale-up at {} s", first_up.time_s);
    let first_down = steps.iter().find(|s| s.desired_replicas < s.replicas).expect("scales down");
    assert!(
        first_down.time_s >= drop + 300.0 && first_down.time_s <= drop + 315.0,
        "scale-down at {} s, expected when the 300 s window has passed",
        first_down.time_s
    );
    assert!(
        steps.iter().filter(|s| s.time_s > drop && s.time_s < drop + 300.0).all(|s| s.desired_replicas == s.replicas)
    );
    // Without behavior, the legacy cap allows at most max(2x, 4) per sync.
    for step in &steps {
        assert!(step.desired_replicas <= (2 * step.replicas).max(4), "{step:?}");
    }
    let peak = steps.iter().map(|s| s.desired_replicas).max().unwrap_or_default();
    assert_eq!(peak, 12, "4200m over 70% of 500m needs 12 pods");
}

#[test]
fn behavior_policies_pace_both_directions() {
    let steps = replay("behavior-hpa.yaml");
    // Scale-up: selectPolicy Min of (2 pods, 100%) per 30 s means at most 2 pods in any 30 s.
    for (index, step) in steps.iter().enumerate() {
        let window_start = step.time_s - 30.0;
        let added: i32 = steps[..=index]
            .iter()
            .filter(|s| s.time_s > window_start && s.desired_replicas > s.replicas)
            .map(|s| s.desired_replicas - s.replicas)
            .sum();
        assert!(added <= 2, "{added} pods added in the 30 s before {} s", step.time_s);
        let removed: i32 = steps[..=index]
            .iter()
            .filter(|s| s.time_s > step.time_s - 60.0 && s.desired_replicas < s.replicas)
            .map(|s| s.replicas - s.desired_replicas)
            .sum();
        assert!(removed <= 1, "{removed} pods removed in the 60 s before {} s", step.time_s);
    }
    let first_down = steps.iter().find(|s| s.desired_replicas < s.replicas).expect("scales down");
    assert!(
        first_down.time_s >= 300.0 + 105.0,
        "120 s window (strict) before the first scale-down: {}",
        first_down.time_s
    );
}

#[test]
fn utilization_targets_need_a_request() {
    let hpa: HorizontalPodAutoscaler = read_typed(&fixture("hpa.yaml")).expect("valid HPA");
    let trace = simulate::read_trace(&fixture("trace.csv")).expect("valid trace");
    let error = simulate::simulate(&hpa, &trace, &Options::default()).unwrap_err();
    assert!(error.to_string().contains("--request"), "{error}");
}

#[test]
fn malformed_traces_name_file_and_line() {
    let dir = std::env::temp_dir().join(format!("enclave-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let cases = [
        ("time,usage\n0,1\n", 1, "must name `time_s` and `total_usage`"),
        ("time_s,total_usage\n0,1\n15,abc\n", 3, "total_usage: `abc` is not a non-negative number"),
        ("time_s,total_usage\n0,1\n0,2\n", 3, "time_s must increase"),
        ("time_s,total_usage,colour\n0,1,red\n", 1, "unknown column `colour`"),
        ("time_s,total_usage\n", 2, "no rows"),
    ];
    for (index, (text, line, message)) in cases.iter().enumerate() {
        let path = dir.join(format!("trace-{index}.csv"));
        std::fs::write(&path, text).expect("write");
        match simulate::read_trace(&path) {
            Err(SimulateError::Trace { line: got, message: text, .. }) => {
                assert_eq!(got, *line, "{message}");
                assert!(text.contains(message), "{text}");
            }
            other => panic!("expected a trace error for {message}, got {other:?}"),
        }
    }
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn unready_and_missing_pods_follow_upstream_rules() {
    let dir = std::env::temp_dir().join(format!("enclave-trace-unready-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let path = dir.join("trace.csv");
    // Four pods, two unready: the two ready ones carry 2000m, 200% of their 500m requests
    // (ratio 2.86). On a scale-up upstream counts unready pods as idle: 2000m over four pods is
    // 100%, ratio 1.43, so 6 replicas rather than the 12 the ready pods alone suggest.
    std::fs::write(&path, "time_s,total_usage,unready_pods,missing_pods\n0,2000,2,0\n15,2000,0,1\n").expect("write");
    let hpa: HorizontalPodAutoscaler = read_typed(&fixture("hpa.yaml")).expect("valid HPA");
    let trace = simulate::read_trace(&path).expect("valid");
    let options =
        Options { request: Some("500m".parse().expect("q")), initial_replicas: Some(4), ..Options::default() };
    let steps = simulate::simulate(&hpa, &trace, &options).expect("replays");
    assert_eq!(steps[0].ready_replicas, 2);
    assert_eq!((steps[0].utilization, steps[0].desired_replicas), (200.0, 6), "{:?}", steps[0]);
    // Next sync: six pods, the two new ones still starting, one ready pod without a metric.
    // The three measured pods run at 100% (ratio 1.43), but counting the missing and starting
    // pods as idle gives 50%: the direction flips, so upstream holds at the current 6.
    assert_eq!((steps[1].replicas, steps[1].ready_replicas), (6, 4));
    assert_eq!((steps[1].utilization, steps[1].proposal), (100.0, Some(6)), "{:?}", steps[1]);
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

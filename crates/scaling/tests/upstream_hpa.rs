//! Kubernetes' own HPA test tables, ported as data: `pkg/controller/podautoscaler`
//! `replica_calculator_test.go` and `horizontal_test.go`. Inputs and expected replicas are
//! upstream's; the names are upstream's test (or subtest) names.
//!
//! Upstream fixtures give every pod two containers with the same request and usage, so a
//! pod's request and usage are twice the per-container numbers written in the tables; the
//! `raw` averages below are therefore `2 x` upstream's per-container value. Times: upstream's
//! zero time (year 1) is `ZERO`, a "hot" pod started now, a "cool" one three minutes ago; the
//! tests run with a 2-minute CPU initialization period and a 10-second readiness delay.

// The tables are tuples on purpose: one row per upstream case, read left to right.
#![allow(clippy::type_complexity)]

use enclave_scaling::hpa::calculator::{
    self, Metrics, Phase, Pod, ReadyCondition, Resource, Sample, Settings, Tolerances,
};
use enclave_scaling::hpa::controller::{
    Behavior, Bounds, Controller, Limit, Policy, Rules, ScaleEvent, Select, convert_with_rules, scale_down_limit,
    scale_up_limit,
};

const ZERO: f64 = -1.0e11;
const HOT: f64 = 0.0;
const COOL: f64 = -180.0;

fn settings(tolerances: (f64, f64)) -> Settings {
    Settings {
        tolerances: Tolerances { scale_down: tolerances.0, scale_up: tolerances.1 },
        cpu_initialization_period: 120.0,
        initial_readiness_delay: 10.0,
    }
}

/// One replica-calculator case over CPU utilization.
struct Cpu {
    name: &'static str,
    current: i32,
    /// Per-container requests, one per listed pod (pods listed = requests.len()).
    requests: &'static [i64],
    /// Per-container usage; pods past the end have no metric. Extra entries belong to no pod.
    levels: &'static [i64],
    ready: &'static [bool],
    phase: &'static [Phase],
    start: &'static [f64],
    deleted: &'static [bool],
    target: i32,
    tolerances: (f64, f64),
    expected: (i32, i64, i64),
}

const DEFAULT: Cpu = Cpu {
    name: "",
    current: 0,
    requests: &[],
    levels: &[],
    ready: &[],
    phase: &[],
    start: &[],
    deleted: &[],
    target: 0,
    tolerances: (0.1, 0.1),
    expected: (0, 0, 0),
};

fn pods_and_metrics(case: &Cpu) -> (Vec<Pod>, Metrics) {
    let pods = (0..case.requests.len())
        .map(|i| Pod {
            name: format!("test-pod-{i}"),
            phase: case.phase.get(i).copied().unwrap_or(Phase::Running),
            deleting: case.deleted.get(i).copied().unwrap_or(false),
            start_time: Some(case.start.get(i).copied().unwrap_or(ZERO)),
            ready: Some(ReadyCondition { ready: case.ready.get(i).copied().unwrap_or(true), last_transition: ZERO }),
            request: Some(2 * case.requests[i]),
        })
        .collect();
    let metrics = case
        .levels
        .iter()
        .enumerate()
        .map(|(i, level)| (format!("test-pod-{i}"), Sample { value: 2 * level, timestamp: ZERO, window: 60.0 }))
        .collect();
    (pods, metrics)
}

const F: bool = false;
const T: bool = true;
const RUN: Phase = Phase::Running;
const PEND: Phase = Phase::Pending;
const FAIL: Phase = Phase::Failed;

#[rustfmt::skip]
const CPU_CASES: &[Cpu] = &[
    Cpu { name: "R1 scale up", current: 3, requests: &[1000; 3], levels: &[300, 500, 700], target: 30, expected: (5, 50, 1000), ..DEFAULT },
    Cpu { name: "R3 scale up: unready pod scales less", current: 3, requests: &[1000; 3], levels: &[300, 500, 700], ready: &[F, T, T], target: 30, expected: (4, 60, 1200), ..DEFAULT },
    Cpu { name: "R5 scale up: hot-CPU pod scales less", current: 3, requests: &[1000; 3], levels: &[300, 500, 700], start: &[HOT, COOL, COOL], target: 30, expected: (4, 60, 1200), ..DEFAULT },
    Cpu { name: "R6 no scale: unready pods ignored", current: 3, requests: &[1000; 3], levels: &[400, 500, 700], ready: &[T, F, F], target: 30, expected: (3, 40, 800), ..DEFAULT },
    Cpu { name: "R7 no scale: hot-CPU pods ignored", current: 3, requests: &[1000; 3], levels: &[400, 500, 700], ready: &[T, F, F], start: &[COOL, HOT, HOT], target: 30, expected: (3, 40, 800), ..DEFAULT },
    Cpu { name: "R8 scale up: failed pods ignored", current: 2, requests: &[1000; 4], levels: &[500, 700], ready: &[T, T, F, F], phase: &[RUN, RUN, FAIL, FAIL], target: 30, expected: (4, 60, 1200), ..DEFAULT },
    Cpu { name: "R11 scale up: pods being deleted are ignored", current: 2, requests: &[1000; 4], levels: &[500, 700], ready: &[T, T, F, F], deleted: &[F, F, T, T], target: 30, expected: (4, 60, 1200), ..DEFAULT },
    Cpu { name: "R13 scale down", current: 5, requests: &[1000; 5], levels: &[100, 300, 500, 250, 250], target: 50, expected: (3, 28, 560), ..DEFAULT },
    Cpu { name: "R15 scale down: exclude unready pods", current: 5, requests: &[1000; 5], levels: &[100, 300, 500, 250, 250], ready: &[T, T, T, F, F], target: 50, expected: (2, 30, 600), ..DEFAULT },
    Cpu { name: "R17 scale down: exclude unscheduled pods", current: 5, requests: &[1000; 5], levels: &[100], ready: &[T, F, F, F, F], phase: &[RUN, PEND, PEND, PEND, PEND], target: 50, expected: (1, 10, 200), ..DEFAULT },
    Cpu { name: "R18 scale down: pending pods with metrics are still unready", current: 5, requests: &[1000; 5], levels: &[100, 300, 500, 250, 250], ready: &[T, F, F, F, F], phase: &[RUN, PEND, PEND, PEND, PEND], target: 50, expected: (1, 10, 200), ..DEFAULT },
    Cpu { name: "R19 scale down: ignore hot-CPU pods", current: 5, requests: &[1000; 5], levels: &[100, 300, 500, 250, 250], start: &[COOL, COOL, COOL, HOT, HOT], target: 50, expected: (2, 30, 600), ..DEFAULT },
    Cpu { name: "R21 scale down: failed pods ignored", current: 5, requests: &[1000; 7], levels: &[100, 300, 500, 250, 250], ready: &[T, T, T, T, T, F, F], phase: &[RUN, RUN, RUN, RUN, RUN, FAIL, FAIL], target: 50, expected: (3, 28, 560), ..DEFAULT },
    Cpu { name: "R23 scale down: pods being deleted are ignored", current: 5, requests: &[1000; 7], levels: &[100, 300, 500, 250, 250], ready: &[T, T, T, T, T, F, F], deleted: &[F, F, F, F, F, T, T], target: 50, expected: (3, 28, 560), ..DEFAULT },
    Cpu { name: "R25 TestReplicaCalcTolerance", current: 3, requests: &[900, 1000, 1100], levels: &[1010, 1030, 1020], target: 100, expected: (3, 102, 2040), ..DEFAULT },
    Cpu { name: "R26 outside of a 0% tolerance", current: 3, requests: &[900, 1000, 1100], levels: &[909, 1010, 1111], target: 100, tolerances: (0.0, 0.0), expected: (4, 101, 2020), ..DEFAULT },
    Cpu { name: "R27 within a 200% scale-up tolerance", current: 3, requests: &[900, 1000, 1100], levels: &[1890, 1910, 1900], target: 100, tolerances: (0.1, 2.0), expected: (3, 190, 3800), ..DEFAULT },
    Cpu { name: "R28 outside an 8% scale-up tolerance", current: 3, requests: &[900, 1000, 1100], levels: &[1100, 1080, 1090], target: 100, tolerances: (2.0, 0.08), expected: (4, 109, 2180), ..DEFAULT },
    Cpu { name: "R29 within a 36% scale-down tolerance", current: 3, requests: &[900, 1000, 1100], levels: &[660, 640, 650], target: 100, tolerances: (0.36, 0.1), expected: (3, 65, 1300), ..DEFAULT },
    Cpu { name: "R30 outside a 34% scale-down tolerance", current: 3, requests: &[900, 1000, 1100], levels: &[660, 640, 650], target: 100, tolerances: (0.34, 0.1), expected: (2, 65, 1300), ..DEFAULT },
    Cpu { name: "R31 TestReplicaCalcSuperfluousMetrics", current: 4, requests: &[1000; 4], levels: &[4000, 9500, 3000, 7000, 3200, 2000], target: 100, expected: (24, 587, 11750), ..DEFAULT },
    Cpu { name: "R32 TestReplicaCalcMissingMetrics", current: 4, requests: &[1000; 4], levels: &[400, 95], target: 100, expected: (3, 24, 495), ..DEFAULT },
    Cpu { name: "R33 TestReplicaCalcMissingMetricsNoChangeEq", current: 2, requests: &[1000; 2], levels: &[1000], target: 100, expected: (2, 100, 2000), ..DEFAULT },
    Cpu { name: "R34 TestReplicaCalcMissingMetricsNoChangeGt", current: 2, requests: &[1000; 2], levels: &[1900], target: 100, expected: (2, 190, 3800), ..DEFAULT },
    Cpu { name: "R35 TestReplicaCalcMissingMetricsNoChangeLt", current: 2, requests: &[1000; 2], levels: &[600], target: 100, expected: (2, 60, 1200), ..DEFAULT },
    Cpu { name: "R36 TestReplicaCalcMissingMetricsUnreadyChange", current: 3, requests: &[1000; 3], levels: &[100, 450], ready: &[F, T, T], target: 50, expected: (3, 45, 900), ..DEFAULT },
    Cpu { name: "R37 TestReplicaCalcMissingMetricsHotCpuNoChange", current: 3, requests: &[1000; 3], levels: &[100, 450], start: &[HOT, COOL, COOL], target: 50, expected: (3, 45, 900), ..DEFAULT },
    Cpu { name: "R38 TestReplicaCalcMissingMetricsUnreadyScaleUp", current: 3, requests: &[1000; 3], levels: &[100, 2000], ready: &[F, T, T], target: 50, expected: (4, 200, 4000), ..DEFAULT },
    Cpu { name: "R39 TestReplicaCalcMissingMetricsHotCpuScaleUp", current: 3, requests: &[1000; 3], levels: &[100, 2000], ready: &[F, T, T], start: &[HOT, COOL, COOL], target: 50, expected: (4, 200, 4000), ..DEFAULT },
    Cpu { name: "R40 TestReplicaCalcMissingMetricsUnreadyScaleDown", current: 4, requests: &[1000; 4], levels: &[100, 100, 100], ready: &[F, T, T, T], target: 50, expected: (3, 10, 200), ..DEFAULT },
    Cpu { name: "R41 TestReplicaCalcMissingMetricsScaleDownTargetOver100", current: 4, requests: &[1000, 1000, 2000, 2000], levels: &[200, 100, 100], ready: &[F, T, T, T], target: 300, expected: (2, 6, 200), ..DEFAULT },
    Cpu { name: "R42 TestReplicaCalcDuringRollingUpdateWithMaxSurge", current: 2, requests: &[1000; 3], levels: &[100, 100], target: 50, expected: (2, 10, 200), ..DEFAULT },
    Cpu { name: "R43a computed tolerance, target 56", current: 10, requests: &[400, 200, 310, 290, 302, 298, 301, 299, 300, 300], levels: &[150; 10], target: 56, expected: (9, 50, 300), ..DEFAULT },
    Cpu { name: "R43b computed tolerance, target 55", current: 10, requests: &[400, 200, 310, 290, 302, 298, 301, 299, 300, 300], levels: &[150; 10], target: 55, expected: (10, 50, 300), ..DEFAULT },
];

#[test]
fn replica_calculator_matches_upstream_cpu_utilization_cases() {
    let mut failures = Vec::new();
    for case in CPU_CASES {
        let (pods, metrics) = pods_and_metrics(case);
        let result = calculator::resource_utilization(
            case.current,
            &pods,
            &metrics,
            Resource::Cpu,
            case.target,
            &settings(case.tolerances),
        );
        match result {
            Ok(p) if (p.replicas, p.utilization, p.raw_average) == case.expected => {}
            other => failures.push(format!("{}: expected {:?}, got {other:?}", case.name, case.expected)),
        }
    }
    assert!(failures.is_empty(), "{} of {} cases differ:\n{}", failures.len(), CPU_CASES.len(), failures.join("\n"));
    println!("{} upstream CPU utilization cases reproduced", CPU_CASES.len());
}

#[test]
fn replica_calculator_errors_match_upstream() {
    let pods: Vec<Pod> = (0..3).map(|i| Pod::running(format!("test-pod-{i}"), 2000)).collect();
    // R44 TestReplicaCalcEmptyMetrics
    let error = calculator::resource_utilization(4, &pods, &Metrics::new(), Resource::Cpu, 100, &settings((0.1, 0.1)));
    assert_eq!(error, Err(calculator::CalcError::EmptyMetrics));
    // R45 TestReplicaCalcEmptyCPURequest
    let no_request = [Pod { request: None, ..Pod::running("test-pod-0", 0) }];
    let metrics: Metrics = [("test-pod-0".to_owned(), Sample { value: 400, timestamp: ZERO, window: 60.0 })].into();
    let error = calculator::resource_utilization(1, &no_request, &metrics, Resource::Cpu, 100, &settings((0.1, 0.1)));
    assert!(matches!(error, Err(calculator::CalcError::MissingRequest { .. })), "{error:?}");
    // R46 TestReplicaCalcDisjointResourcesMetrics
    let pods = [Pod::running("test-pod-0", 2000)];
    let metrics: Metrics =
        [("an-older-pod-name".to_owned(), Sample { value: 200, timestamp: ZERO, window: 60.0 })].into();
    let error = calculator::resource_utilization(1, &pods, &metrics, Resource::Cpu, 100, &settings((0.1, 0.1)));
    assert_eq!(error, Err(calculator::CalcError::NoMatchingMetrics));
}

/// Pods-metric (`AverageValue` per pod) cases: values are per pod, readiness is ignored.
struct PodsCase {
    name: &'static str,
    current: i32,
    pods: usize,
    levels: &'static [i64],
    ready: &'static [bool],
    start: &'static [f64],
    target: i64,
    tolerances: (f64, f64),
    expected: (i32, i64),
}

#[rustfmt::skip]
const PODS_CASES: &[PodsCase] = &[
    PodsCase { name: "P1 TestReplicaCalcScaleUpCM", current: 3, pods: 3, levels: &[20000, 10000, 30000], ready: &[], start: &[], target: 15000, tolerances: (0.1, 0.1), expected: (4, 20000) },
    PodsCase { name: "P2 TestReplicaCalcScaleUpCMUnreadyHotCpuNoLessScale", current: 3, pods: 3, levels: &[50000, 10000, 30000], ready: &[T, T, F], start: &[COOL, COOL, HOT], target: 15000, tolerances: (0.1, 0.1), expected: (6, 30000) },
    PodsCase { name: "P3 TestReplicaCalcScaleUpCMUnreadyHotCpuScaleWouldScaleDown", current: 3, pods: 3, levels: &[50000, 15000, 30000], ready: &[F, T, F], start: &[HOT, COOL, HOT], target: 15000, tolerances: (0.1, 0.1), expected: (7, 31666) },
    PodsCase { name: "P4 TestReplicaCalcScaleDownCM", current: 5, pods: 5, levels: &[12000; 5], ready: &[], start: &[], target: 20000, tolerances: (0.1, 0.1), expected: (3, 12000) },
    PodsCase { name: "P5 TestReplicaCalcToleranceCM", current: 3, pods: 3, levels: &[20000, 21000, 21000], ready: &[], start: &[], target: 20000, tolerances: (0.1, 0.1), expected: (3, 20666) },
    PodsCase { name: "P6 TestReplicaCalcConfigurableToleranceCM", current: 3, pods: 3, levels: &[20000, 21000, 21000], ready: &[], start: &[], target: 20000, tolerances: (0.1, 0.01), expected: (4, 20666) },
    PodsCase { name: "P7 TestPlainMetricReplicaCalcMissingMetricsNoChangeEq", current: 5, pods: 5, levels: &[20000, 19000, 21000], ready: &[], start: &[], target: 20000, tolerances: (0.1, 0.1), expected: (5, 20000) },
    PodsCase { name: "P8 TestReplicaCalcDuringRollingUpdateWithMaxSurgeCM", current: 2, pods: 3, levels: &[10000, 10000], ready: &[], start: &[], target: 17000, tolerances: (0.1, 0.1), expected: (2, 10000) },
    PodsCase { name: "P9 TestReplicaCalcScaleUpCMExternal (pods metric)", current: 1, pods: 1, levels: &[8600], ready: &[], start: &[], target: 4400, tolerances: (0.1, 0.1), expected: (2, 8600) },
];

#[test]
fn replica_calculator_matches_upstream_pods_metric_cases() {
    let mut failures = Vec::new();
    for case in PODS_CASES {
        let pods: Vec<Pod> = (0..case.pods)
            .map(|i| Pod {
                start_time: Some(case.start.get(i).copied().unwrap_or(ZERO)),
                ready: Some(ReadyCondition {
                    ready: case.ready.get(i).copied().unwrap_or(true),
                    last_transition: ZERO,
                }),
                ..Pod::running(format!("test-pod-{i}"), 1000)
            })
            .collect();
        let metrics: Metrics = case
            .levels
            .iter()
            .enumerate()
            .map(|(i, value)| (format!("test-pod-{i}"), Sample { value: *value, timestamp: ZERO, window: 60.0 }))
            .collect();
        match calculator::average_value(case.current, &pods, &metrics, None, case.target, &settings(case.tolerances)) {
            Ok(p) if (p.replicas, p.utilization) == case.expected => {}
            other => failures.push(format!("{}: expected {:?}, got {other:?}", case.name, case.expected)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn ready_pods(count: usize, ready: &[bool]) -> Vec<Pod> {
    (0..count)
        .map(|i| Pod {
            ready: Some(ReadyCondition { ready: ready.get(i).copied().unwrap_or(true), last_transition: ZERO }),
            ..Pod::running(format!("test-pod-{i}"), 1000)
        })
        .collect()
}

#[test]
fn replica_calculator_matches_upstream_object_and_external_cases() {
    let s = |tolerances| settings(tolerances);
    let d = (0.1, 0.1);
    let value =
        |name: &str, current: i32, usage: i64, target: i64, ready: &[bool], tolerances, expected: (i32, i64)| {
            let pods = ready_pods(usize::try_from(current).expect("small"), ready);
            let p = calculator::value(current, usage, target, &pods, &s(tolerances)).expect("proposal");
            assert_eq!((p.replicas, p.utilization), expected, "{name}");
        };
    value("O1 TestReplicaCalcScaleUpCMObject", 3, 20000, 15000, &[], d, (4, 20000));
    value("O2 TestReplicaCalcScaleUpCMObjectIgnoresUnreadyPods", 3, 50000, 10000, &[F, T, F], d, (5, 50000));
    value("O3 TestReplicaCalcScaleDownCMObject", 5, 12000, 20000, &[], d, (3, 12000));
    value("O4 TestReplicaCalcToleranceCMObject", 3, 20666, 20000, &[], d, (3, 20666));
    value("O5 TestReplicaCalcConfigurableToleranceCMObject", 3, 20666, 20000, &[], (0.1, 0.01), (4, 20666));
    value("O10 TestReplicaCalcScaleUpOverflow", 3, i64::MAX, 1, &[], d, (i32::MAX, i64::MAX));
    value("E1 TestReplicaCalcScaleUpCMExternalIgnoresUnreadyPods", 3, 8600, 4400, &[F, T, F], d, (2, 8600));
    value("E2 TestReplicaCalcScaleDownCMExternal", 5, 8600, 14334, &[], d, (3, 8600));
    value("E3 TestReplicaCalcToleranceCMExternal", 3, 8600, 8888, &[], d, (3, 8600));
    value("E4 TestReplicaCalcConfigurableToleranceCMExternal", 3, 8900, 8800, &[], (0.1, 0.01), (4, 8900));
    let sum = [i64::MAX / 2 + 1, i64::MAX / 2 + 1].iter().fold(0i64, |a, b| a.saturating_add(*b));
    value("E11 TestReplicaCalcExternalMetricUsageOverflow", 3, sum, i64::MAX, &[], d, (3, i64::MAX));

    let per_pod = |name: &str, current: i32, usage: i64, target: i64, tolerances, expected: (i32, i64)| {
        let p = calculator::value_per_pod(current, usage, target, &s(tolerances));
        assert_eq!((p.replicas, p.utilization), expected, "{name}");
    };
    per_pod("O6 TestReplicaCalcScaleUpCMPerPodObject", 3, 20000, 5000, d, (4, 6667));
    per_pod("O7 TestReplicaCalcScaleDownPerPodCMObject", 5, 6000, 2000, d, (3, 1200));
    per_pod("O8 TestReplicaCalcTolerancePerPodCMObject", 4, 20166, 5000, d, (4, 5042));
    per_pod("O9 TestReplicaCalcConfigurableTolerancePerPodCMObject", 4, 20208, 5000, (0.1, 0.01), (5, 5052));
    per_pod("E5 TestReplicaCalcScaleUpPerPodCMExternal", 3, 8600, 2150, d, (4, 2867));
    per_pod("E6 TestReplicaCalcScaleDownPerPodCMExternal", 5, 8600, 2867, d, (3, 1720));
    per_pod("E7 TestReplicaCalcTolerancePerPodCMExternal", 3, 8600, 2900, d, (3, 2867));
    per_pod("E8 TestReplicaCalcConfigurableTolerancePerPodCMExternal", 3, 8600, 2800, (0.1, 0.01), (4, 2867));
    per_pod("E9 TestExternalPerPodMetricReplicaOverflow", 1, i64::MAX, 1, d, (i32::MAX, i64::MAX));
    per_pod("E10 TestExternalPerPodMetricUsageOverflow", 1, i64::MAX, i64::MAX, d, (1, i64::MAX));
}

// ---- horizontal_test.go -------------------------------------------------------------------

const NOW: f64 = 100_000.0;

#[test]
fn legacy_rules_match_upstream_convert_desired_replicas_with_rules() {
    #[rustfmt::skip]
    let cases = [
        ("L1 within range", 5, 7, 3, 8, 7, Limit::DesiredWithinRange),
        ("L2 below minReplicas", 3, 1, 2, 8, 2, Limit::TooFewReplicas),
        ("L3 zeroed within range", 1, 0, 0, 10, 0, Limit::DesiredWithinRange),
        ("L4 maxReplicas below scaleUpLimit", 20, 1000, 1, 10, 10, Limit::TooManyReplicas),
        ("L5 scaleUpLimit below maxReplicas", 3, 1000, 1, 2000, 6, Limit::ScaleUpLimit),
    ];
    for (name, current, desired, min, max, expected, limit) in cases {
        assert_eq!(convert_with_rules(current, desired, min, max), (expected, limit), "{name}");
    }
}

#[test]
fn legacy_stabilization_matches_upstream_normalize_desired_replicas() {
    #[rustfmt::skip]
    let cases: [(&str, &[(i32, f64)], i32, i32, usize); 5] = [
        ("LS1 empty log", &[], 5, 5, 1),
        ("LS2 stabilize", &[(4, 120.0), (5, 60.0)], 3, 5, 3),
        ("LS3 no stabilize", &[(1, 120.0), (2, 60.0)], 3, 3, 3),
        ("LS4 no stabilize - old recommendations", &[(10, 600.0), (9, 540.0)], 3, 3, 2),
        ("LS5 stabilize - old recommendations", &[(10, 600.0), (4, 60.0), (5, 120.0), (9, 540.0)], 3, 5, 4),
    ];
    for (name, history, prenormalized, expected, length) in cases {
        let history: Vec<(i32, f64)> = history.iter().map(|(v, age)| (*v, NOW - age)).collect();
        let mut controller = Controller::new().with_recommendations(&history);
        assert_eq!(controller.stabilize_legacy(NOW, prenormalized), expected, "{name}");
        assert_eq!(controller.recommendations().len(), length, "{name}");
    }
}

#[test]
fn behavior_stabilization_matches_upstream() {
    #[rustfmt::skip]
    let cases: [(&str, &[(i32, f64)], i32, i32, i32, i32, i32, &[i32]); 11] = [
        ("B1 empty recommendations for scaling down", &[], 100, 5, 0, 0, 5, &[5]),
        ("B2 simple scale down stabilization", &[(4, 120.0), (5, 60.0)], 100, 3, 0, 180, 5, &[4, 5, 3]),
        ("B3 simple scale up stabilization", &[(4, 120.0), (5, 60.0)], 1, 7, 300, 0, 4, &[4, 5, 7]),
        ("B4 no scale down stabilization", &[(1, 120.0), (2, 60.0)], 100, 3, 300, 0, 3, &[1, 2, 3]),
        ("B5 no scale up stabilization", &[(4, 120.0), (5, 60.0)], 1, 3, 0, 300, 3, &[4, 5, 3]),
        ("B6 no scale down stabilization, reuse recommendation element", &[(10, 600.0), (9, 540.0)], 100, 3, 0, 0, 3, &[10, 3]),
        ("B7 no scale up stabilization, reuse recommendation element", &[(10, 600.0), (9, 540.0)], 1, 100, 0, 0, 100, &[10, 100]),
        ("B8 scale down stabilization, reuse one obsolete element", &[(10, 600.0), (4, 60.0), (5, 120.0), (9, 540.0)], 100, 3, 0, 180, 5, &[10, 4, 5, 3]),
        ("B9 scale up stabilization, reuse one obsolete element", &[(10, 6000.0), (6, 60.0), (5, 120.0), (9, 180.0)], 1, 100, 300, 0, 5, &[100, 6, 5, 9]),
        ("B10 do not scale up when the prenormalized recommendation goes down", &[(2, 6000.0), (3, 180.0)], 2, 1, 300, 300, 2, &[]),
        ("B11 do not scale down when the prenormalized recommendation goes up", &[(2, 6000.0), (1, 180.0)], 2, 3, 300, 300, 2, &[]),
    ];
    for (name, history, current, desired, up, down, expected, stored) in cases {
        let history: Vec<(i32, f64)> = history.iter().map(|(v, age)| (*v, NOW - age)).collect();
        let mut controller = Controller::new().with_recommendations(&history);
        assert_eq!(controller.stabilize_with_behavior(NOW, current, desired, up, down), expected, "{name}");
        if !stored.is_empty() {
            assert_eq!(controller.recommendations(), stored, "{name}: history");
        }
    }
}

/// Upstream's `generateScalingRules(pods, podsPeriod, percent, percentPeriod, window)`.
fn generated(pods: i32, pods_period: i32, percent: i32, percent_period: i32, window: i32) -> Rules {
    let mut policies = Vec::new();
    if pods != 0 {
        policies.push(Policy::Pods { value: pods, period: pods_period });
    }
    if percent != 0 {
        policies.push(Policy::Percent { value: percent, period: percent_period });
    }
    Rules { stabilization_window: window, select: Select::Max, policies, tolerance: None }
}

/// Upstream's `generateEventsUniformDistribution`: event `i` is `period - seg*(i+1) + seg/2`
/// seconds old, `seg = period / n`.
fn uniform(changes: &[i32], period: i32) -> Vec<ScaleEvent> {
    let n = i32::try_from(changes.len()).expect("small");
    changes
        .iter()
        .enumerate()
        .map(|(i, change)| {
            let seg = period / n;
            let age = period - seg * (i32::try_from(i).expect("small") + 1) + seg / 2;
            ScaleEvent { change: *change, at: NOW - f64::from(age), outdated: false }
        })
        .collect()
}

fn at_age(changes: &[(i32, i32)]) -> Vec<ScaleEvent> {
    changes
        .iter()
        .map(|(change, age)| ScaleEvent { change: *change, at: NOW - f64::from(*age), outdated: false })
        .collect()
}

#[test]
fn behavior_rate_limits_match_upstream_scaling_with_rules() {
    let up = Rules::default_scale_up;
    let down = Rules::default_scale_down;
    let none: Vec<ScaleEvent> = Vec::new();
    let e3 = || uniform(&[1, 5, 9], 120);
    let e4 = || uniform(&[8, 12, 9, 11], 120);
    use Limit::*;
    #[rustfmt::skip]
    let cases: Vec<(&str, i32, i32, i32, i32, Rules, Rules, Vec<ScaleEvent>, Vec<ScaleEvent>, i32, Limit)> = vec![
        ("S1 within range", 5, 7, 3, 8, up(), down(), none.clone(), none.clone(), 7, DesiredWithinRange),
        ("S2 below minReplicas", 3, 1, 2, 8, up(), down(), none.clone(), none.clone(), 2, TooFewReplicas),
        ("S3 within range when minReplicas is 0", 1, 0, 0, 10, up(), down(), none.clone(), none.clone(), 0, DesiredWithinRange),
        ("S4 maxReplicas below scaleUpLimit", 20, 1000, 1, 10, up(), down(), none.clone(), none.clone(), 10, TooManyReplicas),
        ("S5 desired above the maximum", 100, 1000, 100, 150, up(), down(), none.clone(), none.clone(), 150, TooManyReplicas),
        ("S6 scaleUpLimit with user policies", 3, 1000, 1, 2000, generated(0, 0, 1, 60, 0), down(), none.clone(), none.clone(), 4, ScaleUpLimit),
        ("S8 scaleUp with default behavior", 10, 50, 1, 1000, up(), down(), none.clone(), none.clone(), 20, ScaleUpLimit),
        ("S9 pods policy larger than percent policy", 10, 500, 1, 1000, generated(100, 60, 100, 60, 0), down(), none.clone(), none.clone(), 110, ScaleUpLimit),
        ("S10 percent policy larger than pods policy", 10, 500, 1, 1000, generated(2, 60, 100, 60, 0), down(), none.clone(), none.clone(), 20, ScaleUpLimit),
        ("S11 MaxReplicas limitation with large pod policy", 10, 50, 1, 1000, generated(100, 60, 0, 0, 0), down(), none.clone(), none.clone(), 50, DesiredWithinRange),
        ("S12 MaxReplicas limitation with large pods policy", 10, 50, 1, 1000, generated(10000, 60, 0, 0, 0), down(), none.clone(), none.clone(), 50, DesiredWithinRange),
        ("S13 pod policy limitation", 10, 50, 1, 1000, generated(30, 60, 0, 0, 0), down(), none.clone(), none.clone(), 40, ScaleUpLimit),
        ("S14 percent policy limitation", 10, 50, 1, 1000, generated(0, 0, 200, 60, 0), down(), none.clone(), none.clone(), 30, ScaleUpLimit),
        ("S15 scaleDown percent larger than pods", 100, 2, 1, 1000, up(), generated(20, 60, 1, 60, 300), none.clone(), none.clone(), 80, ScaleDownLimit),
        ("S16 scaleDown pods larger than percent", 100, 2, 1, 1000, up(), generated(2, 60, 1, 60, 300), none.clone(), none.clone(), 98, ScaleDownLimit),
        ("S17 MinReplicas=nil with large pod policy", 10, 0, 1, 1000, up(), generated(100, 60, 0, 0, 300), none.clone(), none.clone(), 1, TooFewReplicas),
        ("S18 MinReplicas with large pod policy", 10, 0, 1, 1000, up(), generated(100, 60, 0, 0, 300), none.clone(), none.clone(), 1, TooFewReplicas),
        ("S19 MinReplicas with large percent policy", 10, 2, 5, 1000, up(), generated(0, 0, 100, 60, 300), none.clone(), none.clone(), 5, TooFewReplicas),
        ("S20 scaleDown pod policy limitation", 10, 2, 1, 1000, up(), generated(5, 60, 0, 0, 300), none.clone(), none.clone(), 5, ScaleDownLimit),
        ("S21 scaleDown percent policy limitation", 10, 5, 1, 1000, up(), generated(0, 0, 50, 60, 300), none.clone(), none.clone(), 5, DesiredWithinRange),
        ("S22 MaxReplicas with large pod policy and events", 100, 500, 1, 200, generated(300, 60, 0, 0, 0), down(), e3(), none.clone(), 200, TooManyReplicas),
        ("S23 MaxReplicas with large percent policy and events", 100, 500, 1, 200, generated(0, 0, 10000, 60, 0), down(), e3(), none.clone(), 200, TooManyReplicas),
        ("S24 recent scale-up events hold at current", 100, 500, 1, 1000, generated(5, 120, 0, 0, 0), down(), e3(), none.clone(), 100, ScaleUpLimit),
        ("S25 pod policy and previous scale-up events", 100, 500, 1, 1000, generated(150, 120, 0, 0, 0), down(), e3(), none.clone(), 235, ScaleUpLimit),
        ("S26 percent policy and previous scale-up events", 100, 500, 1, 1000, generated(0, 0, 200, 120, 0), down(), e3(), none.clone(), 255, ScaleUpLimit),
        ("S27 percent policy with previous up and down events", 6, 24, 1, 1000, generated(0, 0, 300, 300, 0), down(), at_age(&[(4, 60)]), at_age(&[(2, 60)]), 16, ScaleUpLimit),
        ("S28 scaleDown default policy and previous events", 10, 5, 1, 1000, up(), down(), none.clone(), e3(), 5, DesiredWithinRange),
        ("S29 MinReplicas=nil, large pod policy, previous events", 100, 0, 1, 1000, up(), generated(115, 120, 0, 0, 300), none.clone(), e3(), 1, TooFewReplicas),
        ("S30 MinReplicas, large pod policy, previous events", 100, 0, 5, 1000, up(), generated(130, 120, 0, 0, 300), none.clone(), e3(), 5, TooFewReplicas),
        ("S31 MinReplicas, large percent policy, previous events", 100, 2, 5, 1000, up(), generated(0, 0, 100, 120, 300), none.clone(), e3(), 5, TooFewReplicas),
        ("S32 pod policy limitation and previous events", 100, 2, 1, 1000, up(), generated(5, 120, 0, 0, 300), none.clone(), e3(), 100, ScaleDownLimit),
        ("S33 percent policy limitation and previous events", 100, 0, 1, 1000, up(), generated(0, 0, 50, 120, 300), none.clone(), uniform(&[2, 4, 6], 120), 56, ScaleDownLimit),
        ("S34 percent policy with previous up and down events", 10, 1, 1, 1000, up(), generated(0, 0, 50, 180, 0), at_age(&[(2, 60)]), at_age(&[(4, 60)]), 6, ScaleDownLimit),
        ("S35 previous events prevent further scale down", 100, 0, 1, 1000, up(), generated(0, 0, 10, 120, 300), none.clone(), uniform(&[10, 10, 10], 120), 100, ScaleDownLimit),
        ("S36 previous events still allow more scale down", 10, 5, 1, 1000, up(), generated(0, 0, 1000, 120, 300), none.clone(), uniform(&[10, 10, 10], 120), 5, DesiredWithinRange),
        ("S37 outdated events, one policy, up", 100, 200, 1, 1000, generated(1000, 60, 0, 0, 0), down(), e4(), none.clone(), 200, DesiredWithinRange),
        ("S38 events not outdated for two policies, up", 100, 200, 1, 1000, generated(1000, 120, 100, 60, 0), down(), e4(), none.clone(), 200, DesiredWithinRange),
        ("S39 events outdated for two policies, up", 100, 200, 1, 1000, generated(1000, 30, 100, 60, 0), down(), e4(), none.clone(), 200, DesiredWithinRange),
        ("S40 outdated events, one policy, down", 100, 5, 1, 1000, up(), generated(1000, 60, 0, 0, 300), none.clone(), e4(), 5, DesiredWithinRange),
        ("S41 events not outdated for two policies, down", 100, 5, 1, 1000, up(), generated(1000, 120, 100, 60, 300), none.clone(), e4(), 5, DesiredWithinRange),
        ("S42 events outdated for two policies, down", 100, 5, 1, 1000, up(), generated(1000, 30, 100, 60, 300), none.clone(), e4(), 5, DesiredWithinRange),
    ];
    let count = cases.len();
    for (name, current, desired, min, max, scale_up, scale_down, up_events, down_events, expected, limit) in cases {
        let behavior = Behavior { scale_up, scale_down };
        let bounds = Bounds { min_replicas: min, max_replicas: max, behavior: Some(behavior.clone()) };
        let controller = Controller::new().with_events(up_events, down_events);
        assert_eq!(
            controller.convert_with_behavior_rate(NOW, current, desired, &bounds, &behavior),
            (expected, limit),
            "{name}"
        );
    }
    println!("{count} upstream TestScalingWithRules cases reproduced");
}

#[test]
fn policy_selection_min_matches_upstream_limit_helpers() {
    let rules = Rules {
        stabilization_window: 300,
        select: Select::Min,
        policies: vec![Policy::Pods { value: 2, period: 60 }, Policy::Percent { value: 50, period: 60 }],
        tolerance: None,
    };
    assert_eq!(scale_up_limit(NOW, 1, &[], &[], &rules), 2, "C1 TestCalculateScaleUpLimitWithScalingRules");
    assert_eq!(scale_down_limit(NOW, 5, &[], &[], &rules), 3, "C2 TestCalculateScaleDownLimitWithBehaviors");
    let disabled = Rules { select: Select::Disabled, ..rules };
    assert_eq!(scale_up_limit(NOW, 7, &[], &[], &disabled), 7, "Disabled holds the current count");
    assert_eq!(scale_down_limit(NOW, 7, &[], &[], &disabled), 7, "Disabled holds the current count");
}

#[test]
fn scale_event_bookkeeping_matches_upstream_store_scale_events() {
    #[rustfmt::skip]
    let cases: [(&str, &[(i32, i32)], Option<Rules>, i32, &[(i32, bool)]); 8] = [
        ("SE1 empty entries with default behavior", &[], None, 0, &[]),
        ("SE2 empty entries with two-policy behavior", &[], Some(generated(10, 60, 100, 60, 0)), 0, &[(5, false)]),
        ("SE3 outdated entry kept untouched without behavior", &[(7, 61)], None, 0, &[(7, false)]),
        ("SE4 outdated entry replaced with behavior", &[(7, 61)], Some(generated(10, 60, 100, 60, 0)), 0, &[(5, false)]),
        ("SE5 actual entry not touched with behavior", &[(7, 58)], Some(generated(10, 60, 100, 60, 0)), 7, &[(7, false), (5, false)]),
        ("SE6 two entries, one replaced", &[(7, 61), (6, 59)], Some(generated(10, 60, 0, 0, 0)), 6, &[(5, false), (6, false)]),
        ("SE7 policies with different periods", &[(8, 29), (6, 59), (7, 61), (9, 61)], Some(generated(10, 60, 100, 30, 0)), 14, &[(8, false), (6, false), (7, true), (5, false)]),
        ("SE8 two entries, both actual", &[(7, 58), (6, 59)], Some(generated(10, 120, 100, 30, 0)), 13, &[(7, false), (6, false), (5, false)]),
    ];
    for (name, previous, rules, in_last_minute, after) in cases {
        for scale_up in [true, false] {
            let events = at_age(previous);
            let behavior = rules.clone().map(|rules| {
                if scale_up {
                    Behavior { scale_up: rules, ..Behavior::default() }
                } else {
                    Behavior { scale_down: rules, ..Behavior::default() }
                }
            });
            let mut controller = if scale_up {
                Controller::new().with_events(events.clone(), Vec::new())
            } else {
                Controller::new().with_events(Vec::new(), events.clone())
            };
            let recent: i32 = events.iter().filter(|e| e.at > NOW - 60.0).map(|e| e.change).sum();
            assert_eq!(recent, in_last_minute, "{name}");
            controller.store_scale_event(NOW, behavior.as_ref(), 10, if scale_up { 15 } else { 5 });
            let stored = if scale_up { &controller.scale_up_events } else { &controller.scale_down_events };
            let stored: Vec<(i32, bool)> = stored.iter().map(|e| (e.change, e.outdated)).collect();
            assert_eq!(stored, after, "{name} ({})", if scale_up { "up" } else { "down" });
        }
    }
}

/// Full reconciles from `horizontal_test.go`: metrics through the calculator, then the
/// controller, with upstream's 5-minute downscale window.
#[test]
fn full_reconciles_match_upstream_controller_tests() {
    let cpu = |current: i32, levels: &[i64], requests: &[i64], target: i32| {
        let pods: Vec<Pod> =
            requests.iter().enumerate().map(|(i, r)| Pod::running(format!("test-pod-{i}"), *r)).collect();
        let metrics: Metrics = levels
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("test-pod-{i}"), Sample { value: *v, timestamp: ZERO, window: 60.0 }))
            .collect();
        move || {
            calculator::resource_utilization(current, &pods, &metrics, Resource::Cpu, target, &settings((0.1, 0.1)))
                .map(|p| p.replicas)
        }
    };
    let legacy = |min, max| Bounds { min_replicas: min, max_replicas: max, behavior: None };
    let fresh = || Controller::new().with_recommendations(&[]);

    let h1 = Controller::new().reconcile(NOW, 1, &legacy(2, 6), cpu(1, &[0; 4], &[1000; 4], 50)).expect("decision");
    assert_eq!((h1.replicas, h1.limit), (2, Limit::TooFewReplicas), "H1 TestScaleUpRCImmediately");
    let h2 = Controller::new()
        .reconcile(NOW, 6, &legacy(2, 5), cpu(6, &[8000, 9500, 1000], &[900, 1000, 1100], 50))
        .expect("decision");
    assert_eq!((h2.replicas, h2.limit), (5, Limit::TooManyReplicas), "H2 TestScaleDownRCImmediately");
    let up_cap = Behavior { scale_up: generated(0, 0, 700, 60, 0), ..Behavior::default() };
    let h3 = fresh()
        .reconcile(
            NOW,
            3,
            &Bounds { min_replicas: 1, max_replicas: 100, behavior: Some(up_cap.clone()) },
            cpu(3, &[100, 200, 300], &[100; 3], 10),
        )
        .expect("decision");
    assert_eq!((h3.replicas, h3.limit), (24, Limit::ScaleUpLimit), "H3 TestUpscaleCap");
    let h4 = fresh()
        .reconcile(
            NOW,
            3,
            &Bounds { min_replicas: 1, max_replicas: 20, behavior: Some(up_cap) },
            cpu(3, &[100, 200, 300], &[100; 3], 10),
        )
        .expect("decision");
    assert_eq!((h4.replicas, h4.limit), (20, Limit::TooManyReplicas), "H4 TestUpscaleCapGreaterThanMaxReplicas");
    let h5 = Controller::new().reconcile(NOW, 4, &legacy(1, 8), cpu(4, &[500; 5], &[1000; 5], 50)).expect("decision");
    assert_eq!(h5.replicas, 4, "H5 TestMoreReplicasThanSpecNoScale");
    let h6 = Controller::new()
        .with_recommendations(&[(10, NOW - 600.0), (4, NOW - 60.0)])
        .reconcile(NOW, 4, &legacy(1, 5), cpu(4, &[50; 3], &[100; 3], 100))
        .expect("decision");
    assert_eq!(h6.replicas, 4, "H6 TestStabilizeDownscale");
    let h7_behavior = Behavior { scale_up: generated(0, 0, 100, 15, 30), ..Behavior::default() };
    let h7 = fresh()
        .reconcile(
            NOW,
            5,
            &Bounds { min_replicas: 2, max_replicas: 6, behavior: Some(h7_behavior) },
            cpu(5, &[100, 300, 500, 250, 250], &[1000; 5], 50),
        )
        .expect("decision");
    assert_eq!(h7.replicas, 3, "H7 TestScaleDownWithScalingRules");
    let h8 = Controller::new()
        .reconcile(NOW, 4, &legacy(2, 6), cpu(4, &[4000, 9500, 3000, 7000, 3200, 2000], &[1000; 4], 100))
        .expect("decision");
    assert_eq!((h8.replicas, h8.limit), (6, Limit::TooManyReplicas), "H8 TestSuperfluousMetrics");
    let h9 = fresh().reconcile(NOW, 4, &legacy(2, 6), cpu(4, &[400, 95], &[1000; 4], 100)).expect("decision");
    assert_eq!(h9.replicas, 3, "H9 TestMissingMetrics");
}

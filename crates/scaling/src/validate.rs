//! What a spec must not ask of the scalers.

use enclave_core::spec::{IntOrPercent, ResourceName, ScalingRules, Spec, VpaMode};
use enclave_core::{FieldPath, Violation, path};

/// Every scaling problem in `spec`, with field paths.
pub fn validate(spec: &Spec) -> Vec<Violation> {
    let mut violations = Vec::new();
    for (index, app) in spec.apps.iter().enumerate() {
        let resources = &app.resources;
        if resources.requests.cpu > resources.limits.cpu {
            violations.push(Violation::new(
                path!("apps", index, "resources", "requests", "cpu"),
                format!("request {} is above the limit {}", resources.requests.cpu, resources.limits.cpu),
            ));
        }
        if resources.requests.memory > resources.limits.memory {
            violations.push(Violation::new(
                path!("apps", index, "resources", "requests", "memory"),
                format!("request {} is above the limit {}", resources.requests.memory, resources.limits.memory),
            ));
        }
        if let Some(autoscaling) = &app.autoscaling {
            let hpa = |field: &str| path!("apps", index, "autoscaling", field);
            if autoscaling.min_replicas == 0 {
                violations.push(Violation::new(
                    hpa("min_replicas"),
                    "must be at least 1 (scale-to-zero needs an alpha feature gate)",
                ));
            }
            if autoscaling.max_replicas < autoscaling.min_replicas.max(1) {
                violations.push(Violation::new(
                    hpa("max_replicas"),
                    format!(
                        "max_replicas {} is below min_replicas {}",
                        autoscaling.max_replicas, autoscaling.min_replicas
                    ),
                ));
            }
            let metric_count = usize::from(autoscaling.cpu_utilization.is_some())
                + usize::from(autoscaling.memory_utilization.is_some())
                + autoscaling.pods_metrics.len()
                + autoscaling.external_metrics.len();
            if metric_count == 0 {
                violations.push(Violation::new(
                    path!("apps", index, "autoscaling"),
                    "an autoscaler needs a metric: cpu_utilization, memory_utilization, pods_metrics or external_metrics",
                ));
            }
            for (field, value) in [
                ("cpu_utilization", autoscaling.cpu_utilization),
                ("memory_utilization", autoscaling.memory_utilization),
            ] {
                if value == Some(0) {
                    violations.push(Violation::new(hpa(field), "a utilization target must be above 0%"));
                }
            }
            if let Some(behavior) = &autoscaling.behavior {
                for (direction, rules) in [("scale_up", &behavior.scale_up), ("scale_down", &behavior.scale_down)] {
                    if let Some(rules) = rules {
                        check_rules(
                            rules,
                            &path!("apps", index, "autoscaling", "behavior", direction),
                            &mut violations,
                        );
                    }
                }
            }
            if let Some(vpa) = app.vpa.as_ref().filter(|vpa| vpa.mode != VpaMode::Off) {
                let contested: Vec<String> = vpa
                    .controlled_resources
                    .iter()
                    .filter(|resource| match resource {
                        ResourceName::Cpu => autoscaling.cpu_utilization.is_some(),
                        ResourceName::Memory => autoscaling.memory_utilization.is_some(),
                    })
                    .map(ToString::to_string)
                    .collect();
                if !contested.is_empty() {
                    violations.push(Violation::new(
                        path!("apps", index, "vpa", "controlled_resources"),
                        format!(
                            "the VPA would change {} requests that the HPA scales on: the two would fight; remove {} from controlled_resources, set the VPA mode to off, or scale on a custom metric",
                            contested.join(" and "),
                            contested.join(" and ")
                        ),
                    ));
                }
            }
        }
        if let Some(vpa) = &app.vpa {
            if vpa.controlled_resources.is_empty() {
                violations.push(Violation::new(
                    path!("apps", index, "vpa", "controlled_resources"),
                    "must name cpu, memory or both",
                ));
            }
            if let (Some(min), Some(max)) = (&vpa.min_allowed, &vpa.max_allowed)
                && (min.cpu > max.cpu || min.memory > max.memory)
            {
                violations.push(Violation::new(
                    path!("apps", index, "vpa", "min_allowed"),
                    "min_allowed is above max_allowed",
                ));
            }
        }
        let disruption = &app.disruption;
        match (&disruption.min_available, &disruption.max_unavailable) {
            (Some(_), Some(_)) => violations.push(Violation::new(
                path!("apps", index, "disruption"),
                "set min_available or max_unavailable, not both",
            )),
            (None, None) => violations
                .push(Violation::new(path!("apps", index, "disruption"), "set min_available or max_unavailable")),
            (Some(IntOrPercent::Int(count)), None) => {
                let fewest = app.autoscaling.as_ref().map_or(app.replicas, |a| a.min_replicas);
                if *count >= u32::from(fewest) {
                    violations.push(Violation::new(
                        path!("apps", index, "disruption", "min_available"),
                        format!("min_available {count} with as few as {fewest} replicas blocks every node drain"),
                    ));
                }
            }
            (None, Some(IntOrPercent::Int(0) | IntOrPercent::Percent(0))) => violations.push(Violation::new(
                path!("apps", index, "disruption", "max_unavailable"),
                "max_unavailable 0 blocks every node drain",
            )),
            _ => {}
        }
    }
    for (index, app) in spec.apps.iter().enumerate() {
        check_app_extras(spec, index, app, &mut violations);
    }
    for (index, cluster) in spec.clusters.iter().enumerate() {
        let role = crate::render::autoscaler_role_name(cluster);
        if cluster.autoscaler.enabled && role.len() > 64 {
            violations.push(Violation::new(
                path!("clusters", index, "name"),
                format!(
                    "the autoscaler's IAM role `{role}` would exceed IAM's 64 characters; shorten the cluster name"
                ),
            ));
        }
        let scale_down = &cluster.autoscaler.scale_down;
        if !(1..=100).contains(&scale_down.utilization_threshold_percent) {
            violations.push(Violation::new(
                path!("clusters", index, "autoscaler", "scale_down", "utilization_threshold_percent"),
                "must be between 1 and 100",
            ));
        }
        if !cluster.autoscaler.version.starts_with('v') {
            violations.push(Violation::new(
                path!("clusters", index, "autoscaler", "version"),
                "not an image tag like `v1.33.0`".to_owned(),
            ));
        }
    }
    violations
}

/// Namespaces enclave must not put quotas or apps in.
const SYSTEM_NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];

/// The longest scrape interval accepted (the rendered scrape timeout and rule tests multiply it).
const MAX_SCRAPE_INTERVAL_SECONDS: u64 = 3600;
/// The longest `for:` of an alert accepted (rule tests multiply it too).
const MAX_ALERT_FOR_SECONDS: u64 = 7 * 86_400;

fn check_app_extras(spec: &Spec, index: usize, app: &enclave_core::spec::AppSpec, violations: &mut Vec<Violation>) {
    let namespace = app.namespace().as_str();
    if SYSTEM_NAMESPACES.contains(&namespace) {
        let field = if app.namespace.is_some() { "namespace" } else { "name" };
        violations.push(Violation::new(
            path!("apps", index, field),
            format!("namespace `{namespace}` belongs to the cluster: apps get their own namespace (it receives a quota sized to them)"),
        ));
    }
    if matches!(app.disruption.min_available, Some(IntOrPercent::Percent(100))) {
        violations.push(Violation::new(
            path!("apps", index, "disruption", "min_available"),
            "100% available blocks every node drain",
        ));
    }
    let monitoring = &app.monitoring;
    if monitoring.port == app.port || monitoring.port == 0 {
        violations.push(Violation::new(
            path!("apps", index, "monitoring", "port"),
            format!("the internal port must differ from the traffic port {} (and not be 0): probes and metrics stay off the routed port", app.port),
        ));
    }
    if monitoring.scrape_interval.seconds() == 0 {
        violations.push(Violation::new(path!("apps", index, "monitoring", "scrape_interval"), "must be at least 1s"));
    } else if monitoring.scrape_interval.seconds() > MAX_SCRAPE_INTERVAL_SECONDS {
        violations.push(Violation::new(
            path!("apps", index, "monitoring", "scrape_interval"),
            "must be at most 1h: series scraped less often go stale between scrapes",
        ));
    }
    let durations = [
        ("service_down_for", monitoring.alerts.service_down_for),
        ("error_rate_for", monitoring.alerts.error_rate_for),
        ("database_failure_for", monitoring.alerts.database_failure_for),
        ("latency_for", monitoring.alerts.latency_for),
        ("resource_for", monitoring.alerts.resource_for),
    ];
    for (field, duration) in durations {
        if duration.seconds() > MAX_ALERT_FOR_SECONDS {
            violations.push(Violation::new(
                path!("apps", index, "monitoring", "alerts", field),
                "must be at most 7d: an alert that waits longer never pages anyone in time",
            ));
        }
    }
    if monitoring.health.failure_threshold == 0 {
        violations.push(Violation::new(
            path!("apps", index, "monitoring", "health", "failure_threshold"),
            "must be at least 1",
        ));
    }
    for (field, seconds) in
        [("period", monitoring.health.period.seconds()), ("timeout", monitoring.health.timeout.seconds())]
    {
        if seconds == 0 {
            violations.push(Violation::new(path!("apps", index, "monitoring", "health", field), "must be at least 1s"));
        }
    }
    let alerts = &monitoring.alerts;
    for (field, value) in [
        ("error_rate_percent", alerts.error_rate_percent),
        ("cpu_throttling_percent", alerts.cpu_throttling_percent),
        ("memory_limit_percent", alerts.memory_limit_percent),
    ] {
        if value.is_nan() || value <= 0.0 || value > 100.0 {
            violations.push(Violation::new(
                path!("apps", index, "monitoring", "alerts", field),
                format!("must be above 0 and at most 100, got {value}"),
            ));
        }
    }
    if alerts.latency_p95_seconds.is_nan() || alerts.latency_p95_seconds <= 0.0 {
        violations.push(Violation::new(
            path!("apps", index, "monitoring", "alerts", "latency_p95_seconds"),
            "must be above 0",
        ));
    }
    // prometheus-adapter serves one query per metric name and cluster.
    if let Some(autoscaling) = &app.autoscaling {
        for (kind, metrics) in
            [("pods_metrics", &autoscaling.pods_metrics), ("external_metrics", &autoscaling.external_metrics)]
        {
            for (metric_index, metric) in metrics.iter().enumerate() {
                let clash =
                    spec.apps.iter().take(index).filter(|other| other.cluster == app.cluster).find_map(|other| {
                        let others = other.autoscaling.as_ref()?;
                        others
                            .pods_metrics
                            .iter()
                            .chain(&others.external_metrics)
                            .find(|m| m.name == metric.name && (m.series != metric.series || m.query != metric.query))
                            .map(|_| other.name.clone())
                    });
                if let Some(other) = clash {
                    violations.push(Violation::new(
                        path!("apps", index, "autoscaling", kind, metric_index, "name"),
                        format!("app `{other}` on the same cluster defines metric `{}` with another series or query; give one a different name", metric.name),
                    ));
                }
            }
        }
    }
}

fn check_rules(rules: &ScalingRules, at: &FieldPath, violations: &mut Vec<Violation>) {
    if rules.stabilization_window_seconds.is_some_and(|seconds| seconds > 3600) {
        violations.push(Violation::new(at.key("stabilization_window_seconds"), "must be at most 3600 seconds"));
    }
    for (index, policy) in rules.policies.iter().enumerate() {
        let policy_at = at.key("policies").index(index);
        if policy.value == 0 {
            violations.push(Violation::new(policy_at.key("value"), "must be above 0"));
        }
        if !(1..=1800).contains(&policy.period_seconds) {
            violations.push(Violation::new(policy_at.key("period_seconds"), "must be between 1 and 1800 seconds"));
        }
    }
}

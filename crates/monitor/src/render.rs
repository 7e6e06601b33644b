//! What enclave renders to watch an app: alert rules (as a `PrometheusRule` and as a plain
//! rule file with promtool unit tests), a `ServiceMonitor`, a Grafana dashboard, a Filebeat
//! input, and the app's Kubernetes probes.
//!
//! Metric names are the ones [`crate::metrics`] exports (`http_requests_total`,
//! `http_request_duration_seconds`, `dependency_up`) plus the standard ones of cAdvisor,
//! kube-state-metrics and cert-manager. Alerts select the app by `job` (the Service name, which
//! a `ServiceMonitor` uses as the job) or by `namespace` and a `<app>-` pod prefix.

use std::collections::BTreeMap;

use enclave_core::bundle::Artifact;
use enclave_core::spec::{AlertSeverity, AppSpec, DependencyKind};
use k8s_openapi::api::core::v1::{ConfigMap, HTTPGetAction, Probe};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;

/// Name of the Service port the ServiceMonitor scrapes: the app's internal port
/// (`monitoring.port`), never the `http` port traffic is routed to (defined once, in core).
pub use enclave_core::names::METRICS_PORT_NAME;

/// A Prometheus rule group file (`groups:`), the format `promtool check rules` reads.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RuleFile {
    /// Groups.
    pub groups: Vec<RuleGroup>,
}

/// A rule group.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RuleGroup {
    /// Group name.
    pub name: String,
    /// Alerting rules.
    pub rules: Vec<AlertRule>,
}

/// An alerting rule.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlertRule {
    /// Alert name.
    pub alert: String,
    /// PromQL condition.
    pub expr: String,
    /// How long the condition must hold.
    #[serde(rename = "for")]
    pub for_: String,
    /// `severity`, `service` and, when the app has one, `team`.
    pub labels: BTreeMap<String, String>,
    /// `summary` and `description`.
    pub annotations: BTreeMap<String, String>,
}

fn alert(
    app: &AppSpec,
    name: &str,
    severity: AlertSeverity,
    expr: String,
    for_: String,
    summary: &str,
    description: String,
) -> AlertRule {
    let mut labels = BTreeMap::from([
        ("severity".to_owned(), severity.as_str().to_owned()),
        ("service".to_owned(), app.name.to_string()),
    ]);
    if let Some(team) = &app.team {
        // Alertmanager routes by it (`alerting.routes[].team`).
        labels.insert("team".to_owned(), team.to_string());
    }
    AlertRule {
        alert: name.to_owned(),
        expr,
        for_,
        labels,
        annotations: BTreeMap::from([
            ("summary".to_owned(), format!("{}: {summary}", app.name)),
            ("description".to_owned(), description),
        ]),
    }
}

/// The share of 5xx responses over 5 minutes of the series `selector` picks (`job="orders"`),
/// summed by `by`: the error-rate alert's expression and the rollout analysis's query.
pub fn error_rate_expr(selector: &str, by: &str) -> String {
    format!(
        "sum by ({by}) (rate(http_requests_total{{{selector},status=~\"5..\"}}[5m])) / sum by ({by}) (rate(http_requests_total{{{selector}}}[5m]))"
    )
}

/// The p95 request latency over 5 minutes of the series `selector` picks, by `by`: the latency
/// alert's expression and the rollout analysis's query.
pub fn latency_p95_expr(selector: &str, by: &str) -> String {
    format!(
        "histogram_quantile(0.95, sum by ({by}, le) (rate(http_request_duration_seconds_bucket{{{selector}}}[5m])))"
    )
}

/// The rollout analysis of `app` on the pods `pod_regex` matches (one version's): its error
/// rate and p95 latency, one number each, with the alert thresholds that judge them
/// (`(name, query, threshold)`; at most the threshold is good).
pub fn analysis_queries(app: &AppSpec, pod_regex: &str) -> Vec<(String, String, f64)> {
    let t = &app.monitoring.alerts;
    let selector = format!("namespace=\"{}\",pod=~\"{pod_regex}\"", app.namespace());
    vec![
        (
            "error-rate".to_owned(),
            // No 5xx series at all is a rate of 0 while requests arrive (no requests: no data).
            format!(
                "sum({}) or (0 * sum(rate(http_requests_total{{{selector}}}[5m])))",
                error_rate_expr(&selector, "namespace")
            ),
            t.error_rate_percent / 100.0,
        ),
        ("latency-p95".to_owned(), format!("max({})", latency_p95_expr(&selector, "namespace")), t.latency_p95_seconds),
    ]
}

/// The alerts of the seed's table for one app, with the spec's thresholds.
pub fn alert_rules(app: &AppSpec) -> RuleFile {
    let t = &app.monitoring.alerts;
    let job = app.name.as_str();
    let ns = app.namespace().as_str();
    // The container is named after the app: `pod=~"<app>-.*"` would also match `<app>-worker`.
    let pods = format!("namespace=\"{ns}\",container=\"{job}\"");
    let mut rules = vec![
        alert(
            app,
            "ServiceDown",
            AlertSeverity::Critical,
            // No target answering, or no target at all (pods pending, selector mismatch).
            format!("(sum by (job) (up{{job=\"{job}\"}}) == 0) or absent(up{{job=\"{job}\"}})"),
            t.service_down_for.to_string(),
            "service down",
            format!("No instance of {{{{ $labels.job }}}} has answered a scrape for {}.", t.service_down_for),
        ),
        alert(
            app,
            "InstanceDown",
            AlertSeverity::Warning,
            format!("up{{job=\"{job}\"}} == 0"),
            t.service_down_for.to_string(),
            "instance down",
            format!("{{{{ $labels.instance }}}} has not answered a scrape for {}.", t.service_down_for),
        ),
        alert(
            app,
            "HighErrorRate",
            AlertSeverity::Critical,
            format!("{} > {}", error_rate_expr(&format!("job=\"{job}\""), "job"), t.error_rate_percent / 100.0),
            t.error_rate_for.to_string(),
            "high error rate",
            format!("More than {}% of requests to {{{{ $labels.job }}}} fail.", t.error_rate_percent),
        ),
        alert(
            app,
            "HighLatencyP95",
            AlertSeverity::Warning,
            format!("{} > {}", latency_p95_expr(&format!("job=\"{job}\""), "job"), t.latency_p95_seconds),
            t.latency_for.to_string(),
            "high p95 latency",
            format!("p95 latency of {{{{ $labels.job }}}} is above {} s.", t.latency_p95_seconds),
        ),
        alert(
            app,
            "PodOOMKilled",
            AlertSeverity::Critical,
            format!(
                "(kube_pod_container_status_last_terminated_reason{{{pods},reason=\"OOMKilled\"}} == 1) and on (namespace, pod, container) (increase(kube_pod_container_status_restarts_total{{{pods}}}[10m]) > 0)"
            ),
            "0s".to_owned(),
            "container killed for exceeding its memory limit",
            "{{ $labels.pod }}/{{ $labels.container }} was OOMKilled and restarted.".to_owned(),
        ),
        alert(
            app,
            "CPUThrottlingHigh",
            AlertSeverity::Warning,
            format!(
                "sum by (namespace, pod, container) (increase(container_cpu_cfs_throttled_periods_total{{{pods}}}[5m])) / sum by (namespace, pod, container) (increase(container_cpu_cfs_periods_total{{{pods}}}[5m])) > {}",
                t.cpu_throttling_percent / 100.0
            ),
            t.resource_for.to_string(),
            "CPU throttled",
            format!(
                "{{{{ $labels.pod }}}}/{{{{ $labels.container }}}} is throttled in more than {}% of CPU periods.",
                t.cpu_throttling_percent
            ),
        ),
        alert(
            app,
            "MemoryNearLimit",
            AlertSeverity::Warning,
            format!(
                "max by (namespace, pod, container) (container_memory_working_set_bytes{{{pods}}}) / max by (namespace, pod, container) (kube_pod_container_resource_limits{{{pods},resource=\"memory\"}}) > {}",
                t.memory_limit_percent / 100.0
            ),
            t.resource_for.to_string(),
            "memory near its limit",
            format!(
                "{{{{ $labels.pod }}}}/{{{{ $labels.container }}}} uses more than {}% of its memory limit.",
                t.memory_limit_percent
            ),
        ),
        alert(
            app,
            "ScalingEvent",
            AlertSeverity::Warning,
            format!(
                "changes(kube_horizontalpodautoscaler_status_current_replicas{{namespace=\"{ns}\",horizontalpodautoscaler=\"{job}\"}}[10m]) > 0"
            ),
            "0s".to_owned(),
            "autoscaler changed the replica count",
            "HPA {{ $labels.horizontalpodautoscaler }} changed the replica count in the last 10 minutes.".to_owned(),
        ),
        alert(
            app,
            "CertificateExpiringSoon",
            AlertSeverity::Warning,
            format!(
                "(certmanager_certificate_expiration_timestamp_seconds{{namespace=\"{ns}\"}} - time()) < {} * 86400",
                t.certificate_days
            ),
            "0s".to_owned(),
            "certificate expires soon",
            format!("Certificate {{{{ $labels.name }}}} expires within {} days.", t.certificate_days),
        ),
    ];
    if app.monitoring.dependencies.iter().any(|d| d.kind == DependencyKind::Database) {
        rules.insert(
            3,
            alert(
                app,
                "DatabaseConnectionFailures",
                AlertSeverity::Critical,
                format!("max by (job, dependency) (dependency_up{{job=\"{job}\",kind=\"database\"}}) == 0"),
                t.database_failure_for.to_string(),
                "database unreachable",
                format!(
                    "Dependency {{{{ $labels.dependency }}}} has failed every check for {}.",
                    t.database_failure_for
                ),
            ),
        );
    }
    RuleFile { groups: vec![RuleGroup { name: format!("{job}.rules"), rules }] }
}

/// `monitoring.coreos.com/v1` PrometheusRule, as the CRD defines it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusRule {
    api_version: &'static str,
    kind: &'static str,
    metadata: ObjectMeta,
    spec: RuleFile,
}

fn labels(stack: &str, app: &AppSpec, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), app.name.to_string()),
        ("app.kubernetes.io/component".to_owned(), component.to_owned()),
        ("app.kubernetes.io/part-of".to_owned(), stack.to_owned()),
        ("app.kubernetes.io/managed-by".to_owned(), "enclave".to_owned()),
    ])
}

fn meta(stack: &str, app: &AppSpec, name: String, component: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(app.namespace().to_string()),
        labels: Some(labels(stack, app, component)),
        ..ObjectMeta::default()
    }
}

/// The app's alerts as a PrometheusRule.
pub fn prometheus_rule(stack: &str, app: &AppSpec) -> PrometheusRule {
    PrometheusRule {
        api_version: "monitoring.coreos.com/v1",
        kind: "PrometheusRule",
        metadata: meta(stack, app, format!("{}-alerts", app.name), "monitoring"),
        spec: alert_rules(app),
    }
}

/// `monitoring.coreos.com/v1` ServiceMonitor, as the CRD defines it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceMonitor {
    api_version: &'static str,
    kind: &'static str,
    metadata: ObjectMeta,
    spec: ServiceMonitorSpec,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct ServiceMonitorSpec {
    selector: LabelSelector,
    endpoints: Vec<ScrapeEndpoint>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct ScrapeEndpoint {
    port: String,
    path: String,
    interval: String,
    scrape_timeout: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    scheme: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_config: Option<TlsConfig>,
}

/// A scrape through the mesh's mutual TLS, with the certificates Istio's sidecar writes for
/// Prometheus (`enclave_core::names::PROMETHEUS_MESH_CERTS`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct TlsConfig {
    ca_file: String,
    cert_file: String,
    key_file: String,
    // Istio's workload certificates name SPIFFE identities, not DNS names: the chain is
    // verified against the mesh's root, the name is not (Istio's recipe).
    insecure_skip_verify: bool,
}

/// How Prometheus reaches an app's metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scrape {
    /// Plain HTTP (no mesh, or an app without the sidecar).
    Plain,
    /// HTTPS with the mesh's certificates (a STRICT mutual TLS app).
    MeshTls,
}

/// Scrapes the app's `metrics` port (the internal one), through the mesh's mutual TLS when
/// `scrape` says so.
pub fn service_monitor(stack: &str, app: &AppSpec, scrape: Scrape) -> ServiceMonitor {
    let interval = app.monitoring.scrape_interval;
    let timeout = enclave_core::spec::PromDuration((interval.seconds().saturating_mul(2) / 3).max(1));
    ServiceMonitor {
        api_version: "monitoring.coreos.com/v1",
        kind: "ServiceMonitor",
        metadata: meta(stack, app, app.name.to_string(), "monitoring"),
        spec: ServiceMonitorSpec {
            selector: LabelSelector { match_labels: Some(app.selector()), ..LabelSelector::default() },
            endpoints: vec![ScrapeEndpoint {
                port: METRICS_PORT_NAME.to_owned(),
                path: app.monitoring.metrics_path.clone(),
                interval: interval.to_string(),
                scrape_timeout: timeout.to_string(),
                scheme: (scrape == Scrape::MeshTls).then(|| "https".to_owned()),
                tls_config: (scrape == Scrape::MeshTls).then(|| {
                    let file = |name: &str| format!("{}/{name}", enclave_core::names::PROMETHEUS_MESH_CERTS);
                    TlsConfig {
                        ca_file: file("root-cert.pem"),
                        cert_file: file("cert-chain.pem"),
                        key_file: file("key.pem"),
                        insecure_skip_verify: true,
                    }
                }),
            }],
        },
    }
}

/// The three probes of the app's container, on its internal port: startup (tolerates
/// `startup_within`), liveness (`/health/live`) and readiness (`/health/ready`).
pub fn probes(app: &AppSpec) -> (Probe, Probe, Probe) {
    let timing = &app.monitoring.health;
    let seconds = |d: enclave_core::spec::PromDuration| i32::try_from(d.seconds()).unwrap_or(i32::MAX).max(1);
    let probe = |path: &str, failure_threshold: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::Int(i32::from(app.monitoring.port)),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(seconds(timing.period)),
        timeout_seconds: Some(seconds(timing.timeout)),
        failure_threshold: Some(failure_threshold),
        ..Probe::default()
    };
    let startup_failures = (seconds(timing.startup_within) + seconds(timing.period) - 1) / seconds(timing.period);
    (
        probe("/health/startup", startup_failures.max(1)),
        probe("/health/live", i32::from(timing.failure_threshold)),
        probe("/health/ready", i32::from(timing.failure_threshold)),
    )
}

fn panel(id: u32, title: &str, unit: &str, grid: (u32, u32), targets: &[(&str, &str)]) -> serde_json::Value {
    serde_json::json!({
        "id": id,
        "type": "timeseries",
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 12, "x": grid.0, "y": grid.1},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": targets.iter().enumerate().map(|(i, (expr, legend))| serde_json::json!({
            "refId": char::from(b'A' + u8::try_from(i).unwrap_or(0)).to_string(),
            "expr": expr,
            "legendFormat": legend,
        })).collect::<Vec<_>>(),
    })
}

/// A Grafana dashboard: RED per route, then pod CPU, memory and restarts.
pub fn dashboard(app: &AppSpec) -> serde_json::Value {
    let job = app.name.as_str();
    let ns = app.namespace().as_str();
    let pods = format!("namespace=\"{ns}\",container=\"{job}\"");
    let rate = format!("sum by (route) (rate(http_requests_total{{job=\"{job}\"}}[5m]))");
    let errors = format!(
        "sum by (route) (rate(http_requests_total{{job=\"{job}\",status=~\"5..\"}}[5m])) / sum by (route) (rate(http_requests_total{{job=\"{job}\"}}[5m]))"
    );
    let p95 = format!(
        "histogram_quantile(0.95, sum by (route, le) (rate(http_request_duration_seconds_bucket{{job=\"{job}\"}}[5m])))"
    );
    let cpu = format!("sum by (pod) (rate(container_cpu_usage_seconds_total{{{pods}}}[5m]))");
    let memory = format!("sum by (pod) (container_memory_working_set_bytes{{{pods}}})");
    let restarts = format!("sum by (pod) (increase(kube_pod_container_status_restarts_total{{{pods}}}[1h]))");
    serde_json::json!({
        "uid": format!("enclave-{job}"),
        "title": format!("{job} (enclave)"),
        "tags": ["enclave", job],
        "timezone": "utc",
        "schemaVersion": 39,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"}]},
        "panels": [
            panel(1, "Requests per second", "reqps", (0, 0), &[(&rate, "{{route}}")]),
            panel(2, "Error ratio (5xx)", "percentunit", (12, 0), &[(&errors, "{{route}}")]),
            panel(3, "Latency p95", "s", (0, 8), &[(&p95, "{{route}}")]),
            panel(4, "CPU per pod", "cores", (12, 8), &[(&cpu, "{{pod}}")]),
            panel(5, "Memory per pod", "bytes", (0, 16), &[(&memory, "{{pod}}")]),
            panel(6, "Restarts per pod (1h)", "short", (12, 16), &[(&restarts, "{{pod}}")]),
        ],
    })
}

/// The dashboard as a ConfigMap the Grafana sidecar loads (`grafana_dashboard: "1"`).
pub fn dashboard_config_map(stack: &str, app: &AppSpec) -> ConfigMap {
    let mut metadata = meta(stack, app, format!("{}-dashboard", app.name), "monitoring");
    if let Some(labels) = metadata.labels.as_mut() {
        labels.insert("grafana_dashboard".to_owned(), "1".to_owned());
    }
    ConfigMap {
        metadata,
        data: Some(BTreeMap::from([(format!("{}.json", app.name), pretty(&dashboard(app)))])),
        ..ConfigMap::default()
    }
}

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default() + "\n"
}

/// A Filebeat `filestream` input for the app's container logs: the container runtime's
/// envelope, then the JSON lines of [`crate::logging`] decoded into the event.
pub fn filebeat_input(app: &AppSpec) -> serde_json::Value {
    let job = app.name.as_str();
    let ns = app.namespace().as_str();
    serde_json::json!([{
        "type": "filestream",
        "id": format!("{ns}-{job}"),
        // Container log files are `<pod>_<namespace>_<container>-<id>.log`; the container is
        // named after the app.
        "paths": [format!("/var/log/containers/*_{ns}_{job}-*.log")],
        "parsers": [
            {"container": {"stream": "all", "format": "auto"}},
            {"ndjson": {"target": "", "message_key": "message", "overwrite_keys": true, "add_error_key": true, "expand_keys": true}},
        ],
        "processors": [
            {"add_kubernetes_metadata": {"host": "${NODE_NAME}", "matchers": [{"logs_path": {"logs_path": "/var/log/containers/"}}]}},
        ],
        "fields": {"service": job, "namespace": ns},
        "fields_under_root": true,
    }])
}

/// promtool unit tests for every alert of [`alert_rules`]. For each: a series that crosses the
/// threshold by 10%, with the alert absent one interval before its `for` has passed and firing
/// exactly when it has; and a series 10% below the threshold that never fires.
pub fn rule_tests(app: &AppSpec, rule_file_name: &str) -> serde_json::Value {
    let job = app.name.to_string();
    let ns = app.namespace().to_string();
    let t = &app.monitoring.alerts;
    let minutes = |d: enclave_core::spec::PromDuration| d.seconds().div_ceil(60);
    let rules = alert_rules(app);
    let rule = |name: &str| rules.groups[0].rules.iter().find(|r| r.alert == name).cloned();
    // The expected alert: the series' labels plus the rule's, and the rule's annotations with
    // `$labels` filled in, as Prometheus would expand them.
    let expect = |name: &str, labels: serde_json::Value| {
        let rule = rule(name);
        let mut labels = labels;
        labels["severity"] = serde_json::json!(rule.as_ref().map(|r| r.labels["severity"].clone()));
        labels["service"] = serde_json::json!(job);
        if let Some(team) = &app.team {
            labels["team"] = serde_json::json!(team.to_string());
        }
        let annotations: BTreeMap<String, String> = rule
            .map(|r| r.annotations.iter().map(|(key, template)| (key.clone(), expand(template, &labels))).collect())
            .unwrap_or_default();
        serde_json::json!({"exp_labels": labels, "exp_annotations": annotations})
    };
    let inputs = |series: &[(String, String)]| {
        series.iter().map(|(s, v)| serde_json::json!({"series": s, "values": v})).collect::<Vec<_>>()
    };
    // Fires when it has held for `for`: absent at `fires_at - 1`, firing at `fires_at` (minutes).
    let case = |name: &str, series: Vec<(String, String)>, fires_at: u64, labels: serde_json::Value| {
        serde_json::json!({
            "interval": "1m",
            "input_series": inputs(&series),
            "alert_rule_test": [
                {"eval_time": format!("{}m", fires_at.saturating_sub(1)), "alertname": name, "exp_alerts": []},
                {"eval_time": format!("{fires_at}m"), "alertname": name, "exp_alerts": [expect(name, labels)]},
            ],
        })
    };
    let quiet = |name: &str, series: Vec<(String, String)>, at: u64| {
        serde_json::json!({
            "interval": "1m",
            "input_series": inputs(&series),
            "alert_rule_test": [{"eval_time": format!("{at}m"), "alertname": name, "exp_alerts": []}],
        })
    };
    let pod = format!("{job}-7d9f-abcde");
    let pod_labels = serde_json::json!({"namespace": ns, "pod": pod, "container": job});
    let pod_series =
        |metric: &str, extra: &str| format!("{metric}{{namespace=\"{ns}\",pod=\"{pod}\",container=\"{job}\"{extra}}}");
    let span = 90u64;
    let mut tests = Vec::new();

    // Down: `up` drops to 0 at minute 2; the service alert fires `for` later, and so does the
    // per-instance one. With no target at all (nothing scraped), the service alert fires too.
    let down = minutes(t.service_down_for);
    let up = |value: &str| vec![(format!("up{{job=\"{job}\",instance=\"10.0.0.1:8080\"}}"), value.to_owned())];
    tests.push(case("ServiceDown", up(&format!("1 1 0x{span}")), 2 + down, serde_json::json!({"job": job})));
    tests.push(quiet("ServiceDown", up(&format!("1x{span}")), 2 + down));
    tests.push(case(
        "ServiceDown",
        vec![("up{job=\"another-service\",instance=\"10.0.0.9:8080\"}".to_owned(), format!("1x{span}"))],
        down,
        serde_json::json!({"job": job}),
    ));
    tests.push(case(
        "InstanceDown",
        up(&format!("1 1 0x{span}")),
        2 + down,
        serde_json::json!({"job": job, "instance": "10.0.0.1:8080"}),
    ));
    tests.push(quiet("InstanceDown", up(&format!("1x{span}")), 2 + down));

    // Error rate: 1000 requests a minute, 10% above or below the threshold failing. `rate` has
    // two samples from minute 1, when the condition starts to hold.
    let errors_for = minutes(t.error_rate_for);
    let requests = |share: f64| {
        let bad = (1000.0 * share / 100.0).round() as u64;
        vec![
            (
                format!("http_requests_total{{job=\"{job}\",route=\"/orders\",method=\"GET\",status=\"200\"}}"),
                format!("0+{}x{span}", 1000 - bad),
            ),
            (
                format!("http_requests_total{{job=\"{job}\",route=\"/orders\",method=\"GET\",status=\"500\"}}"),
                format!("0+{bad}x{span}"),
            ),
        ]
    };
    tests.push(case(
        "HighErrorRate",
        requests(t.error_rate_percent * 1.1),
        1 + errors_for,
        serde_json::json!({"job": job}),
    ));
    tests.push(quiet("HighErrorRate", requests(t.error_rate_percent * 0.9), 1 + errors_for));

    // Latency: p95 at 1.1x or 0.95x the threshold (linear interpolation within buckets).
    let latency_for = minutes(t.latency_for);
    let threshold = t.latency_p95_seconds;
    let histogram = |counts: [u64; 3]| {
        let bucket = |le: String, count: u64| {
            (
                format!(
                    "http_request_duration_seconds_bucket{{job=\"{job}\",route=\"/orders\",method=\"GET\",le=\"{le}\"}}"
                ),
                format!("0+{count}x{span}"),
            )
        };
        vec![
            bucket(format!("{}", threshold / 2.0), counts[0]),
            bucket(format!("{threshold}"), counts[1]),
            bucket(format!("{}", threshold * 1.2), counts[2]),
            bucket("+Inf".to_owned(), 100),
        ]
    };
    tests.push(case("HighLatencyP95", histogram([0, 90, 100]), 1 + latency_for, serde_json::json!({"job": job})));
    tests.push(quiet("HighLatencyP95", histogram([86, 96, 100]), 1 + latency_for));

    // Database: the dependency check fails from the second interval.
    if let Some(dependency) = app.monitoring.dependencies.iter().find(|d| d.kind == DependencyKind::Database) {
        let database_for = t.database_failure_for.seconds();
        let interval = database_for.clamp(1, 60);
        let steps = database_for.div_ceil(interval);
        let series = format!(
            "dependency_up{{job=\"{job}\",dependency=\"{}\",kind=\"database\",instance=\"10.0.0.1:8080\"}}",
            dependency.name
        );
        let fires = steps.saturating_add(2).saturating_mul(interval);
        tests.push(serde_json::json!({
            "interval": format!("{interval}s"),
            "input_series": [{"series": series, "values": format!("1 1 0x{}", steps + 10)}],
            "alert_rule_test": [
                {"eval_time": format!("{}s", fires - 1), "alertname": "DatabaseConnectionFailures", "exp_alerts": []},
                {"eval_time": format!("{fires}s"), "alertname": "DatabaseConnectionFailures",
                 "exp_alerts": [expect("DatabaseConnectionFailures", serde_json::json!({"job": job, "dependency": dependency.name.to_string()}))]},
            ],
        }));
        tests.push(serde_json::json!({
            "interval": format!("{interval}s"),
            "input_series": [{"series": series, "values": format!("1x{}", steps + 10)}],
            "alert_rule_test": [{"eval_time": format!("{fires}s"), "alertname": "DatabaseConnectionFailures", "exp_alerts": []}],
        }));
    }

    // OOMKilled: the container restarts at minute 3 after an OOM kill.
    let oom = |restarts: &str| {
        vec![
            (
                pod_series("kube_pod_container_status_last_terminated_reason", ",reason=\"OOMKilled\""),
                format!("1x{span}"),
            ),
            (pod_series("kube_pod_container_status_restarts_total", ""), restarts.to_owned()),
        ]
    };
    let mut oom_labels = pod_labels.clone();
    oom_labels["reason"] = serde_json::json!("OOMKilled");
    tests.push(case("PodOOMKilled", oom(&format!("0 0 0 1x{span}")), 3, oom_labels));
    tests.push(quiet("PodOOMKilled", oom(&format!("0x{span}")), 4));

    // CPU throttling: throttled periods 10% above or below the threshold's share.
    let resource_for = minutes(t.resource_for);
    let throttled = |percent: f64| {
        vec![
            (pod_series("container_cpu_cfs_periods_total", ""), format!("0+1000x{span}")),
            (
                pod_series("container_cpu_cfs_throttled_periods_total", ""),
                format!("0+{}x{span}", (10.0 * percent).round().min(1000.0) as u64),
            ),
        ]
    };
    tests.push(case(
        "CPUThrottlingHigh",
        throttled(t.cpu_throttling_percent * 1.1),
        1 + resource_for,
        pod_labels.clone(),
    ));
    tests.push(quiet("CPUThrottlingHigh", throttled(t.cpu_throttling_percent * 0.9), 1 + resource_for));

    // Memory: working set halfway between the threshold and the limit, or 10% below it.
    let limit = 1_073_741_824u64;
    let memory = |share: f64| {
        vec![
            (pod_series("kube_pod_container_resource_limits", ",resource=\"memory\""), format!("{limit}x{span}")),
            (
                pod_series("container_memory_working_set_bytes", ""),
                format!("{}x{span}", (limit as f64 * share).round() as u64),
            ),
        ]
    };
    let near = (t.memory_limit_percent + (100.0 - t.memory_limit_percent) / 2.0) / 100.0;
    tests.push(case("MemoryNearLimit", memory(near), resource_for, pod_labels.clone()));
    tests.push(quiet("MemoryNearLimit", memory(t.memory_limit_percent * 0.9 / 100.0), resource_for));

    // Scaling: replicas go from 3 to 5 at minute 3.
    let hpa = format!(
        "kube_horizontalpodautoscaler_status_current_replicas{{namespace=\"{ns}\",horizontalpodautoscaler=\"{job}\"}}"
    );
    tests.push(case(
        "ScalingEvent",
        vec![(hpa.clone(), format!("3 3 3 5x{span}"))],
        3,
        serde_json::json!({"namespace": ns, "horizontalpodautoscaler": job}),
    ));
    tests.push(quiet("ScalingEvent", vec![(hpa, format!("3x{span}"))], 4));

    // Certificates: expiry (seconds since the epoch, where promtool's clock starts) a day inside
    // or a day outside the window.
    let cert = |days: u64| {
        vec![(
            format!("certmanager_certificate_expiration_timestamp_seconds{{namespace=\"{ns}\",name=\"{job}-tls\"}}"),
            format!("{}x{span}", days * 86_400),
        )]
    };
    let window = u64::from(t.certificate_days);
    tests.push(serde_json::json!({
        "interval": "1m",
        "input_series": inputs(&cert(window.saturating_sub(1))),
        "alert_rule_test": [{"eval_time": "1m", "alertname": "CertificateExpiringSoon",
            "exp_alerts": [expect("CertificateExpiringSoon", serde_json::json!({"namespace": ns, "name": format!("{job}-tls")}))]}],
    }));
    tests.push(quiet("CertificateExpiringSoon", cert(window + 2), 1));

    serde_json::json!({"rule_files": [rule_file_name], "evaluation_interval": "1m", "tests": tests})
}

/// Expands `{{ $labels.name }}` in an annotation template, as Prometheus does.
fn expand(template: &str, labels: &serde_json::Value) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{ $labels.") {
        out.push_str(&rest[..start]);
        let after = &rest[start + "{{ $labels.".len()..];
        let Some(end) = after.find(" }}") else { break };
        out.push_str(labels[&after[..end]].as_str().unwrap_or_default());
        rest = &after[end + " }}".len()..];
    }
    out.push_str(rest);
    out
}

fn to_value(object: &impl Serialize) -> serde_json::Value {
    // Our own structs always serialise.
    serde_json::to_value(object).unwrap_or_default()
}

/// Every monitoring object and file of one app.
pub fn render_app(stack: &str, app: &AppSpec, scrape: Scrape) -> (Vec<serde_json::Value>, Vec<Artifact>) {
    let objects = vec![
        to_value(&prometheus_rule(stack, app)),
        to_value(&service_monitor(stack, app, scrape)),
        to_value(&dashboard_config_map(stack, app)),
    ];
    let ns = app.namespace().as_str();
    let rules_name = format!("{}.rules.yml", app.name);
    let artifacts = vec![
        Artifact::new(format!("{ns}/{rules_name}"), enclave_core::bundle::to_yaml(&alert_rules(app))),
        Artifact::new(
            format!("{ns}/{}.rules.test.yml", app.name),
            enclave_core::bundle::to_yaml(&rule_tests(app, &rules_name)),
        ),
        Artifact::new(format!("{ns}/{}-dashboard.json", app.name), pretty(&dashboard(app))),
        Artifact::new(format!("{ns}/filebeat-{}.yml", app.name), enclave_core::bundle::to_yaml(&filebeat_input(app))),
    ];
    (objects, artifacts)
}

#[cfg(test)]
mod tests {
    use enclave_core::config;

    use super::*;

    fn app(extra: &str) -> AppSpec {
        let text = format!(
            "organization: {{ name: acme, region: eu-west-1 }}\nnetwork: {{ tiers: [{{ name: app, size: 20, slot: 0 }}] }}\n\
             accounts: [{{ name: prod, id: \"333333333333\", environment: prod, vpc_cidr: 10.3.0.0/16 }}]\n\
             clusters: [{{ name: main, account: prod, version: \"1.33\" }}]\n\
             apps:\n  - name: orders\n    cluster: main\n    image: orders:1.0.0\n    port: 8080\n{extra}"
        );
        config::load_str("spec.yaml", &text).expect("valid").spec.apps.remove(0)
    }

    #[test]
    fn the_rollout_analysis_asks_what_the_alerts_ask_of_one_version_only() {
        let app = app("    monitoring: { alerts: { error_rate_percent: 2.5, latency_p95_seconds: 0.5 } }\n");
        let queries = analysis_queries(&app, "orders-green-.*");
        let names: Vec<&str> = queries.iter().map(|(name, _, _)| name.as_str()).collect();
        assert_eq!(names, ["error-rate", "latency-p95"]);
        assert_eq!((queries[0].2, queries[1].2), (0.025, 0.5), "the alert thresholds judge the analysis");
        for (_, query, _) in &queries {
            assert!(query.contains(r#"namespace="orders",pod=~"orders-green-.*""#), "{query}");
        }
        let rules = serde_json::to_value(alert_rules(&app)).expect("json");
        let exprs: Vec<&str> = rules["groups"][0]["rules"]
            .as_array()
            .expect("rules")
            .iter()
            .filter_map(|rule| rule["expr"].as_str())
            .collect();
        let error_rate = error_rate_expr(r#"job="orders""#, "job");
        assert!(exprs.iter().any(|e| e.starts_with(&error_rate)), "one expression for both: {exprs:?}");
    }

    #[test]
    fn probes_follow_the_health_timing() {
        let app = app(
            "    monitoring: { health: { startup_within: 95s, period: 10s, timeout: 3s, failure_threshold: 4 } }\n",
        );
        let (startup, liveness, readiness) = probes(&app);
        assert_eq!(startup.failure_threshold, Some(10), "95 s of 10 s periods, rounded up");
        assert_eq!(liveness.http_get.as_ref().and_then(|g| g.path.clone()).as_deref(), Some("/health/live"));
        assert_eq!(readiness.http_get.as_ref().and_then(|g| g.path.clone()).as_deref(), Some("/health/ready"));
        assert_eq!((readiness.timeout_seconds, readiness.failure_threshold), (Some(3), Some(4)));
        assert_eq!(liveness.http_get.map(|g| g.port), Some(IntOrString::Int(9090)), "the internal port, not traffic's");
    }

    #[test]
    fn thresholds_come_from_the_spec_and_the_database_alert_only_with_a_database() {
        let plain = alert_rules(&app(""));
        assert!(!plain.groups[0].rules.iter().any(|r| r.alert == "DatabaseConnectionFailures"));
        let tuned = alert_rules(&app(
            "    monitoring:\n      dependencies: [{ name: db, kind: database, to: { tier: app }, port: 5432 }]\n      alerts: { error_rate_percent: 2.5, latency_p95_seconds: 0.5, service_down_for: 2m }\n",
        ));
        let rule = |name: &str| tuned.groups[0].rules.iter().find(|r| r.alert == name).cloned().expect("rule");
        assert!(rule("HighErrorRate").expr.ends_with("> 0.025"), "{}", rule("HighErrorRate").expr);
        assert!(rule("HighLatencyP95").expr.ends_with("> 0.5"));
        assert_eq!(rule("ServiceDown").for_, "2m");
        assert_eq!(rule("DatabaseConnectionFailures").labels["severity"], "critical");
    }

    #[test]
    fn annotation_templates_expand_labels_like_prometheus() {
        let labels = serde_json::json!({"pod": "orders-1", "container": "app"});
        assert_eq!(expand("{{ $labels.pod }}/{{ $labels.container }} restarted", &labels), "orders-1/app restarted");
    }
}

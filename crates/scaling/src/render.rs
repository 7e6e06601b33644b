//! Typed rendering of every scaling object from the spec.

use std::collections::BTreeMap;

use enclave_core::bundle::{Bundle, BundleError};
use enclave_core::spec::{
    AppSpec, Autoscaling, ClusterSpec, ControlledValues, CustomMetric, IntOrPercent, PolicyKind, ResourceName,
    ScalingRules, SelectPolicy, Spec, VpaMode,
};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, ExternalMetricSource, HPAScalingPolicy, HPAScalingRules, HorizontalPodAutoscaler,
    HorizontalPodAutoscalerBehavior, HorizontalPodAutoscalerSpec, MetricIdentifier, MetricSpec, MetricTarget,
    PodsMetricSource, ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, Container, ContainerPort, HTTPGetAction, LimitRange, LimitRangeItem, LimitRangeSpec,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceQuota, ResourceQuotaSpec, ResourceRequirements,
    SeccompProfile, SecurityContext, ServiceAccount, TopologySpreadConstraint,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;

/// Namespace of the Cluster Autoscaler.
pub const AUTOSCALER_NAMESPACE: &str = "kube-system";
/// The Cluster Autoscaler's name (Deployment, ServiceAccount, RBAC objects).
pub const AUTOSCALER_NAME: &str = "cluster-autoscaler";
/// The port the Cluster Autoscaler serves metrics and health checks on.
pub const AUTOSCALER_METRICS_PORT: u16 = 8085;

/// The labels that select the Cluster Autoscaler's pods.
pub fn autoscaler_selector() -> BTreeMap<String, String> {
    BTreeMap::from([("app.kubernetes.io/name".to_owned(), AUTOSCALER_NAME.to_owned())])
}

/// Namespace of prometheus-adapter and its rules.
pub const ADAPTER_NAMESPACE: &str = enclave_core::names::MONITORING_NAMESPACE;
/// The ConfigMap of prometheus-adapter's rules (its chart's `rules.existing`).
pub const ADAPTER_RULES: &str = "prometheus-adapter-rules";
/// Default prometheus-adapter query: a per-second rate over two minutes.
pub const DEFAULT_METRICS_QUERY: &str = "sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)";

fn labels(stack: &str, name: &str, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), name.to_owned()),
        ("app.kubernetes.io/component".to_owned(), component.to_owned()),
        ("app.kubernetes.io/part-of".to_owned(), stack.to_owned()),
        ("app.kubernetes.io/managed-by".to_owned(), "enclave".to_owned()),
    ])
}

fn meta(name: &str, namespace: Option<&str>, labels: BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: namespace.map(str::to_owned),
        labels: Some(labels),
        ..ObjectMeta::default()
    }
}

fn quantity(value: &enclave_core::spec::Quantity) -> Quantity {
    Quantity(value.to_string())
}

/// Every scaling object of one cluster: per-app HPA, VPA and PDB, per-namespace quota and limit
/// range, the Cluster Autoscaler and the prometheus-adapter rules.
pub fn render_cluster(spec: &Spec, cluster: &ClusterSpec) -> Result<Bundle, BundleError> {
    let stack = spec.stack().as_str();
    let apps: Vec<&AppSpec> = spec.apps.iter().filter(|app| app.cluster == cluster.name).collect();
    let mut bundle = Bundle::default();
    for app in &apps {
        if let Some(autoscaling) = &app.autoscaling {
            bundle.push(&horizontal_pod_autoscaler(stack, app, autoscaling))?;
        }
        if let Some(vpa) = vertical_pod_autoscaler(stack, app) {
            bundle.push(&vpa)?;
        }
        bundle.push(&pod_disruption_budget(stack, app))?;
    }
    let mut namespaces: Vec<&str> = apps.iter().map(|app| app.namespace().as_str()).collect();
    namespaces.sort_unstable();
    namespaces.dedup();
    for namespace in namespaces {
        let members: Vec<&AppSpec> = apps.iter().copied().filter(|app| app.namespace().as_str() == namespace).collect();
        bundle.push(&resource_quota(stack, namespace, &members))?;
        bundle.push(&limit_range(stack, namespace, &members))?;
    }
    if let Some(account) = spec.account(cluster.account.as_str())
        && cluster.autoscaler.enabled
    {
        bundle.extend(cluster_autoscaler(stack, cluster, account.id.as_str(), spec.organization.region.as_str())?)?;
    }
    if apps.iter().any(|app| {
        app.autoscaling.as_ref().is_some_and(|a| !a.pods_metrics.is_empty() || !a.external_metrics.is_empty())
    }) {
        bundle.push(&adapter_rules(stack, &apps))?;
    }
    Ok(bundle)
}

/// The app's `autoscaling/v2` HorizontalPodAutoscaler.
pub fn horizontal_pod_autoscaler(stack: &str, app: &AppSpec, autoscaling: &Autoscaling) -> HorizontalPodAutoscaler {
    let mut metrics = Vec::new();
    let resource = |name: &str, percent: u16| MetricSpec {
        type_: "Resource".into(),
        resource: Some(ResourceMetricSource {
            name: name.into(),
            target: MetricTarget {
                type_: "Utilization".into(),
                average_utilization: Some(i32::from(percent)),
                ..MetricTarget::default()
            },
        }),
        ..MetricSpec::default()
    };
    if let Some(percent) = autoscaling.cpu_utilization {
        metrics.push(resource("cpu", percent));
    }
    if let Some(percent) = autoscaling.memory_utilization {
        metrics.push(resource("memory", percent));
    }
    let average = |metric: &CustomMetric| MetricTarget {
        type_: "AverageValue".into(),
        average_value: Some(quantity(&metric.target_average)),
        ..MetricTarget::default()
    };
    for metric in &autoscaling.pods_metrics {
        metrics.push(MetricSpec {
            type_: "Pods".into(),
            pods: Some(PodsMetricSource {
                metric: MetricIdentifier { name: metric.name.to_string(), selector: None },
                target: average(metric),
            }),
            ..MetricSpec::default()
        });
    }
    for metric in &autoscaling.external_metrics {
        metrics.push(MetricSpec {
            type_: "External".into(),
            external: Some(ExternalMetricSource {
                metric: MetricIdentifier { name: metric.name.to_string(), selector: None },
                target: average(metric),
            }),
            ..MetricSpec::default()
        });
    }
    let rules = |rules: &ScalingRules| HPAScalingRules {
        stabilization_window_seconds: rules.stabilization_window_seconds.map(|s| i32::try_from(s).unwrap_or(i32::MAX)),
        select_policy: rules.select_policy.map(|policy| {
            match policy {
                SelectPolicy::Max => "Max",
                SelectPolicy::Min => "Min",
                SelectPolicy::Disabled => "Disabled",
            }
            .to_owned()
        }),
        policies: (!rules.policies.is_empty()).then(|| {
            rules
                .policies
                .iter()
                .map(|policy| HPAScalingPolicy {
                    type_: match policy.kind {
                        PolicyKind::Pods => "Pods".into(),
                        PolicyKind::Percent => "Percent".into(),
                    },
                    value: i32::try_from(policy.value).unwrap_or(i32::MAX),
                    period_seconds: i32::try_from(policy.period_seconds).unwrap_or(i32::MAX),
                })
                .collect()
        }),
        tolerance: None,
    };
    let behavior = autoscaling.behavior.as_ref().map(|behavior| HorizontalPodAutoscalerBehavior {
        scale_up: behavior.scale_up.as_ref().map(rules),
        scale_down: behavior.scale_down.as_ref().map(rules),
    });
    HorizontalPodAutoscaler {
        metadata: meta(
            app.name.as_str(),
            Some(app.namespace().as_str()),
            labels(stack, app.name.as_str(), "autoscaling"),
        ),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name: app.name.to_string(),
            },
            min_replicas: Some(i32::from(autoscaling.min_replicas)),
            max_replicas: i32::from(autoscaling.max_replicas),
            metrics: Some(metrics),
            behavior,
        }),
        status: None,
    }
}

/// `autoscaling.k8s.io/v1` VerticalPodAutoscaler, as the CRD defines it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerticalPodAutoscaler {
    api_version: &'static str,
    kind: &'static str,
    metadata: ObjectMeta,
    spec: VpaObjectSpec,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct VpaObjectSpec {
    target_ref: CrossVersionObjectReference,
    update_policy: VpaUpdatePolicy,
    resource_policy: VpaResourcePolicy,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct VpaUpdatePolicy {
    update_mode: &'static str,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct VpaResourcePolicy {
    container_policies: Vec<VpaContainerPolicy>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct VpaContainerPolicy {
    container_name: String,
    controlled_resources: Vec<String>,
    controlled_values: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    min_allowed: Option<BTreeMap<String, Quantity>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_allowed: Option<BTreeMap<String, Quantity>>,
}

fn pair(pair: &enclave_core::spec::ResourcePair) -> BTreeMap<String, Quantity> {
    BTreeMap::from([("cpu".to_owned(), quantity(&pair.cpu)), ("memory".to_owned(), quantity(&pair.memory))])
}

/// The app's VerticalPodAutoscaler, when the spec asks for one.
pub fn vertical_pod_autoscaler(stack: &str, app: &AppSpec) -> Option<VerticalPodAutoscaler> {
    let vpa = app.vpa.as_ref()?;
    Some(VerticalPodAutoscaler {
        api_version: "autoscaling.k8s.io/v1",
        kind: "VerticalPodAutoscaler",
        metadata: meta(
            app.name.as_str(),
            Some(app.namespace().as_str()),
            labels(stack, app.name.as_str(), "autoscaling"),
        ),
        spec: VpaObjectSpec {
            target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name: app.name.to_string(),
            },
            update_policy: VpaUpdatePolicy {
                update_mode: match vpa.mode {
                    VpaMode::Off => "Off",
                    VpaMode::Initial => "Initial",
                    VpaMode::Recreate => "Recreate",
                    VpaMode::Auto => "Auto",
                },
            },
            resource_policy: VpaResourcePolicy {
                container_policies: vec![VpaContainerPolicy {
                    container_name: app.name.to_string(),
                    controlled_resources: vpa.controlled_resources.iter().map(ToString::to_string).collect(),
                    controlled_values: match vpa.controlled_values {
                        ControlledValues::RequestsOnly => "RequestsOnly",
                        ControlledValues::RequestsAndLimits => "RequestsAndLimits",
                    },
                    min_allowed: vpa.min_allowed.as_ref().map(pair),
                    max_allowed: vpa.max_allowed.as_ref().map(pair),
                }],
            },
        },
    })
}

fn int_or_string(value: &IntOrPercent) -> IntOrString {
    match value {
        IntOrPercent::Int(count) => IntOrString::Int(i32::try_from(*count).unwrap_or(i32::MAX)),
        IntOrPercent::Percent(percent) => IntOrString::String(format!("{percent}%")),
    }
}

/// The app's PodDisruptionBudget.
pub fn pod_disruption_budget(stack: &str, app: &AppSpec) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: meta(
            app.name.as_str(),
            Some(app.namespace().as_str()),
            labels(stack, app.name.as_str(), "availability"),
        ),
        spec: Some(PodDisruptionBudgetSpec {
            min_available: app.disruption.min_available.as_ref().map(int_or_string),
            max_unavailable: app.disruption.max_unavailable.as_ref().map(int_or_string),
            selector: Some(LabelSelector { match_labels: Some(app.selector()), ..LabelSelector::default() }),
            // Pods that never became healthy may always be evicted: a crash-looping rollout must
            // not block node drains.
            unhealthy_pod_eviction_policy: Some("AlwaysAllow".into()),
        }),
        status: None,
    }
}

/// Spread across zones (hard) and nodes (soft), so one zone or node failure takes at most a
/// share of the replicas. The deploy crate puts these in the app's pod template.
pub fn topology_spread(app: &AppSpec) -> Vec<TopologySpreadConstraint> {
    let selector = LabelSelector { match_labels: Some(app.selector()), ..LabelSelector::default() };
    vec![
        TopologySpreadConstraint {
            max_skew: 1,
            topology_key: "topology.kubernetes.io/zone".into(),
            when_unsatisfiable: "DoNotSchedule".into(),
            label_selector: Some(selector.clone()),
            // Only pods of the same revision count, so a rollout does not skew the spread.
            match_label_keys: Some(vec!["pod-template-hash".into()]),
            ..TopologySpreadConstraint::default()
        },
        TopologySpreadConstraint {
            max_skew: 1,
            topology_key: "kubernetes.io/hostname".into(),
            when_unsatisfiable: "ScheduleAnyway".into(),
            label_selector: Some(selector),
            ..TopologySpreadConstraint::default()
        },
    ]
}

/// Most pods an app can run at once: its ceiling plus a 25% rolling-update surge.
pub fn pod_budget(app: &AppSpec) -> i128 {
    let ceiling = i128::from(app.autoscaling.as_ref().map_or(app.replicas, |a| a.max_replicas));
    ceiling + (ceiling + 3) / 4
}

/// The most one pod of `app` may request and be limited to for `resource`, in milli-units:
/// the spec's values, raised to what an active VPA may set (its `max_allowed`, and limits in
/// proportion when it controls both).
pub fn resource_ceiling(app: &AppSpec, resource: ResourceName) -> (i128, i128) {
    let pick = |pair: &enclave_core::spec::ResourcePair| match resource {
        ResourceName::Cpu => pair.cpu.milli(),
        ResourceName::Memory => pair.memory.milli(),
    };
    let request = pick(&app.resources.requests);
    let limit = pick(&app.resources.limits);
    let vpa = app.vpa.as_ref().filter(|vpa| vpa.mode != VpaMode::Off && vpa.controlled_resources.contains(&resource));
    let Some(max_request) = vpa.and_then(|vpa| vpa.max_allowed.as_ref()).map(pick).filter(|max| *max > request) else {
        return (request, limit);
    };
    let scales_limits = vpa.is_some_and(|vpa| vpa.controlled_values == ControlledValues::RequestsAndLimits);
    let ceiling_limit =
        if scales_limits && request > 0 { limit * max_request / request } else { limit.max(max_request) };
    (max_request, ceiling_limit)
}

fn sum(members: &[&AppSpec], pick: impl Fn(&AppSpec) -> i128) -> i128 {
    members.iter().map(|app| pick(app) * pod_budget(app)).sum()
}

/// A quota sized to what the namespace's apps may use at their ceiling (max replicas plus
/// surge, at the largest requests and limits a VPA may set), so a runaway app or a bad
/// autoscaler cannot exhaust the cluster, and the autoscalers can still reach their maximum.
pub fn resource_quota(stack: &str, namespace: &str, members: &[&AppSpec]) -> ResourceQuota {
    let cpu = |millis: i128| Quantity(enclave_core::spec::Quantity::from_millicores(millis).to_string());
    let memory = |milli_bytes: i128| Quantity(enclave_core::spec::Quantity::from_bytes(milli_bytes / 1000).to_string());
    let hard = BTreeMap::from([
        ("requests.cpu".to_owned(), cpu(sum(members, |a| resource_ceiling(a, ResourceName::Cpu).0))),
        ("requests.memory".to_owned(), memory(sum(members, |a| resource_ceiling(a, ResourceName::Memory).0))),
        ("limits.cpu".to_owned(), cpu(sum(members, |a| resource_ceiling(a, ResourceName::Cpu).1))),
        ("limits.memory".to_owned(), memory(sum(members, |a| resource_ceiling(a, ResourceName::Memory).1))),
        ("pods".to_owned(), Quantity(members.iter().map(|a| pod_budget(a)).sum::<i128>().to_string())),
    ]);
    ResourceQuota {
        metadata: meta("enclave-quota", Some(namespace), labels(stack, namespace, "quota")),
        spec: Some(ResourceQuotaSpec { hard: Some(hard), ..ResourceQuotaSpec::default() }),
        status: None,
    }
}

/// Defaults for containers that declare no resources (never above the ceiling, which the API
/// server would reject), and a per-container ceiling that leaves room for every app's limits
/// and what its VPA may set.
pub fn limit_range(stack: &str, namespace: &str, members: &[&AppSpec]) -> LimitRange {
    let ceiling =
        |resource: ResourceName| members.iter().map(|app| resource_ceiling(app, resource).1).max().unwrap_or(0);
    let (max_cpu, max_memory) = (ceiling(ResourceName::Cpu), ceiling(ResourceName::Memory));
    let cpu = |millis: i128| Quantity(enclave_core::spec::Quantity::from_millicores(millis).to_string());
    let memory = |milli_bytes: i128| Quantity(enclave_core::spec::Quantity::from_bytes(milli_bytes / 1000).to_string());
    let mebibytes = |n: i128| n * (1 << 20) * 1000;
    let default_cpu = 500.min(max_cpu);
    let default_memory = mebibytes(256).min(max_memory);
    let item = LimitRangeItem {
        type_: "Container".into(),
        default: Some(BTreeMap::from([
            ("cpu".to_owned(), cpu(default_cpu)),
            ("memory".to_owned(), memory(default_memory)),
        ])),
        default_request: Some(BTreeMap::from([
            ("cpu".to_owned(), cpu(100.min(default_cpu))),
            ("memory".to_owned(), memory(mebibytes(128).min(default_memory))),
        ])),
        max: Some(BTreeMap::from([("cpu".to_owned(), cpu(max_cpu)), ("memory".to_owned(), memory(max_memory))])),
        ..LimitRangeItem::default()
    };
    LimitRange {
        metadata: meta("enclave-limits", Some(namespace), labels(stack, namespace, "quota")),
        spec: Some(LimitRangeSpec { limits: vec![item] }),
    }
}

/// Tags a node group (auto scaling group) needs so the Cluster Autoscaler discovers it.
pub fn node_group_tags(cluster: &ClusterSpec) -> BTreeMap<String, String> {
    enclave_core::names::node_group_discovery_tags(cluster.name.as_str())
}

/// The IAM role the Cluster Autoscaler assumes through IRSA.
pub fn autoscaler_role_arn(cluster: &ClusterSpec, account_id: &str, region: &str) -> String {
    format!("arn:{}:iam::{account_id}:role/{}", partition(region), autoscaler_role_name(cluster))
}

/// The IAM role name of a cluster's autoscaler (validated to fit IAM's 64 characters).
pub fn autoscaler_role_name(cluster: &ClusterSpec) -> String {
    enclave_core::names::service_account_role_name(cluster.name.as_str(), "cluster-autoscaler")
}

pub use enclave_core::region::partition;

/// The Cluster Autoscaler's command-line flags.
pub fn autoscaler_args(cluster: &ClusterSpec) -> Vec<String> {
    let settings = &cluster.autoscaler;
    let mut args = vec![
        "--cloud-provider=aws".to_owned(),
        format!("--namespace={AUTOSCALER_NAMESPACE}"),
        format!(
            "--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,k8s.io/cluster-autoscaler/{}",
            cluster.name
        ),
        format!("--expander={}", settings.expander),
        format!("--balance-similar-node-groups={}", settings.balance_similar_node_groups),
        "--skip-nodes-with-local-storage=false".to_owned(),
        format!("--scale-down-enabled={}", settings.scale_down.enabled),
    ];
    if settings.scale_down.enabled {
        args.push(format!("--scale-down-delay-after-add={}m", settings.scale_down.delay_after_add_minutes));
        args.push(format!("--scale-down-unneeded-time={}m", settings.scale_down.unneeded_minutes));
        let threshold = f64::from(settings.scale_down.utilization_threshold_percent) / 100.0;
        args.push(format!("--scale-down-utilization-threshold={threshold}"));
    }
    args.push("--stderrthreshold=info".to_owned());
    args.push("--v=4".to_owned());
    args
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(groups.iter().map(|g| (*g).to_owned()).collect()),
        resources: Some(resources.iter().map(|r| (*r).to_owned()).collect()),
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        ..PolicyRule::default()
    }
}

fn named_rule(groups: &[&str], resources: &[&str], names: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        resource_names: Some(names.iter().map(|n| (*n).to_owned()).collect()),
        ..rule(groups, resources, verbs)
    }
}

/// Service account (IRSA), least-privilege RBAC and the Deployment of the Cluster Autoscaler.
pub fn cluster_autoscaler(
    stack: &str,
    cluster: &ClusterSpec,
    account_id: &str,
    region: &str,
) -> Result<Bundle, BundleError> {
    const NAME: &str = AUTOSCALER_NAME;
    let ns = Some(AUTOSCALER_NAMESPACE);
    let object_labels = || labels(stack, NAME, "cluster-autoscaler");
    let service_account = ServiceAccount {
        metadata: ObjectMeta {
            annotations: Some(BTreeMap::from([(
                "eks.amazonaws.com/role-arn".to_owned(),
                autoscaler_role_arn(cluster, account_id, region),
            )])),
            ..meta(NAME, ns, object_labels())
        },
        ..ServiceAccount::default()
    };
    let read = ["watch", "list", "get"];
    let cluster_role = ClusterRole {
        metadata: meta(NAME, None, object_labels()),
        rules: Some(vec![
            rule(&[""], &["events", "endpoints"], &["create", "patch"]),
            rule(&[""], &["pods/eviction"], &["create"]),
            rule(&[""], &["pods/status"], &["update"]),
            named_rule(&[""], &["endpoints"], &[NAME], &["get", "update"]),
            rule(&[""], &["nodes"], &["watch", "list", "get", "update"]),
            rule(
                &[""],
                &[
                    "namespaces",
                    "pods",
                    "services",
                    "replicationcontrollers",
                    "persistentvolumeclaims",
                    "persistentvolumes",
                ],
                &read,
            ),
            rule(&["extensions"], &["replicasets", "daemonsets"], &read),
            rule(&["policy"], &["poddisruptionbudgets"], &["watch", "list"]),
            rule(&["apps"], &["statefulsets", "replicasets", "daemonsets"], &read),
            rule(&["storage.k8s.io"], &["storageclasses", "csinodes", "csidrivers", "csistoragecapacities"], &read),
            rule(&["batch"], &["jobs", "cronjobs"], &read),
            rule(&["coordination.k8s.io"], &["leases"], &["create"]),
            named_rule(&["coordination.k8s.io"], &["leases"], &[NAME], &["get", "update"]),
        ]),
        ..ClusterRole::default()
    };
    let role = Role {
        metadata: meta(NAME, ns, object_labels()),
        rules: Some(vec![
            rule(&[""], &["configmaps"], &["create", "list", "watch"]),
            named_rule(
                &[""],
                &["configmaps"],
                &["cluster-autoscaler-status", "cluster-autoscaler-priority-expander"],
                &["delete", "get", "update", "watch"],
            ),
        ]),
    };
    let subject = Subject {
        kind: "ServiceAccount".into(),
        name: NAME.into(),
        namespace: Some(AUTOSCALER_NAMESPACE.into()),
        ..Subject::default()
    };
    let cluster_role_binding = ClusterRoleBinding {
        metadata: meta(NAME, None, object_labels()),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: NAME.into(),
        },
        subjects: Some(vec![subject.clone()]),
    };
    let role_binding = RoleBinding {
        metadata: meta(NAME, ns, object_labels()),
        role_ref: RoleRef { api_group: "rbac.authorization.k8s.io".into(), kind: "Role".into(), name: NAME.into() },
        subjects: Some(vec![subject]),
    };
    let selector = autoscaler_selector();
    let resources =
        BTreeMap::from([("cpu".to_owned(), Quantity("100m".into())), ("memory".to_owned(), Quantity("600Mi".into()))]);
    let probe = |path: &str| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::Int(i32::from(AUTOSCALER_METRICS_PORT)),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(10),
        ..Probe::default()
    };
    let container = Container {
        name: NAME.into(),
        image: Some(format!("registry.k8s.io/autoscaling/cluster-autoscaler:{}", cluster.autoscaler.version)),
        image_pull_policy: Some("Always".into()),
        command: Some(vec!["./cluster-autoscaler".into()]),
        args: Some(autoscaler_args(cluster)),
        ports: Some(vec![ContainerPort {
            name: Some("metrics".into()),
            container_port: i32::from(AUTOSCALER_METRICS_PORT),
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        resources: Some(ResourceRequirements {
            requests: Some(resources.clone()),
            limits: Some(resources),
            ..ResourceRequirements::default()
        }),
        liveness_probe: Some(probe("/health-check")),
        readiness_probe: Some(probe("/health-check")),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            privileged: Some(false),
            run_as_non_root: Some(true),
            run_as_user: Some(65534),
            capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), ..Capabilities::default() }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    };
    // Accepted `enclave check` findings, with the reason, where reviewers read them.
    let accepted = "K8S038=it calls the Kubernetes API to watch pods and scale nodes, \
                    K8S043=pinned by the version tag the spec names (no registry lookup at render time)";
    let deployment = Deployment {
        metadata: ObjectMeta {
            annotations: Some(BTreeMap::from([("enclave.dev/skip".to_owned(), accepted.to_owned())])),
            ..meta(NAME, ns, object_labels())
        },
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            selector: LabelSelector { match_labels: Some(selector.clone()), ..LabelSelector::default() },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(selector), ..ObjectMeta::default() }),
                spec: Some(PodSpec {
                    service_account_name: Some(NAME.into()),
                    priority_class_name: Some("system-cluster-critical".into()),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(65534),
                        fs_group: Some(65534),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".into(),
                            ..SeccompProfile::default()
                        }),
                        ..PodSecurityContext::default()
                    }),
                    containers: vec![container],
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    };
    let mut bundle = Bundle::default();
    bundle.push(&service_account)?;
    bundle.push(&cluster_role)?;
    bundle.push(&role)?;
    bundle.push(&cluster_role_binding)?;
    bundle.push(&role_binding)?;
    bundle.push(&deployment)?;
    Ok(bundle)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AdapterConfig {
    rules: Vec<AdapterRule>,
    external_rules: Vec<AdapterRule>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AdapterRule {
    series_query: String,
    resources: AdapterResources,
    name: AdapterName,
    metrics_query: String,
}

#[derive(Serialize)]
struct AdapterResources {
    overrides: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Serialize)]
struct AdapterName {
    matches: String,
    #[serde(rename = "as")]
    rename: String,
}

fn adapter_rule(metric: &CustomMetric, per_pod: bool) -> AdapterRule {
    let resource = |name: &str| (name.to_owned(), BTreeMap::from([("resource".to_owned(), name.to_owned())]));
    let mut overrides = BTreeMap::from([resource("namespace")]);
    let series_query = if per_pod {
        overrides.insert(resource("pod").0, resource("pod").1);
        format!("{{__name__=\"{}\",namespace!=\"\",pod!=\"\"}}", metric.series)
    } else {
        format!("{{__name__=\"{}\",namespace!=\"\"}}", metric.series)
    };
    AdapterRule {
        series_query,
        resources: AdapterResources { overrides },
        name: AdapterName { matches: format!("^{}$", metric.series), rename: metric.name.to_string() },
        metrics_query: metric.query.clone().unwrap_or_else(|| DEFAULT_METRICS_QUERY.to_owned()),
    }
}

/// prometheus-adapter rules serving every custom and external metric the cluster's HPAs use,
/// as the ConfigMap the adapter mounts (`config.yaml`).
pub fn adapter_rules(stack: &str, apps: &[&AppSpec]) -> ConfigMap {
    let mut config = AdapterConfig { rules: Vec::new(), external_rules: Vec::new() };
    let mut seen = std::collections::BTreeSet::new();
    for autoscaling in apps.iter().filter_map(|app| app.autoscaling.as_ref()) {
        for metric in &autoscaling.pods_metrics {
            if seen.insert(("pods", metric.name.to_string())) {
                config.rules.push(adapter_rule(metric, true));
            }
        }
        for metric in &autoscaling.external_metrics {
            if seen.insert(("external", metric.name.to_string())) {
                config.external_rules.push(adapter_rule(metric, false));
            }
        }
    }
    ConfigMap {
        metadata: meta(ADAPTER_RULES, Some(ADAPTER_NAMESPACE), labels(stack, "prometheus-adapter", "metrics")),
        data: Some(BTreeMap::from([("config.yaml".to_owned(), enclave_core::bundle::to_yaml(&config))])),
        ..ConfigMap::default()
    }
}

#[cfg(test)]
mod tests {
    use enclave_core::config;

    use super::*;

    fn spec() -> Spec {
        config::load_str(
            "spec.yaml",
            r#"
organization: { name: acme, region: eu-west-1 }
network: { tiers: [{ name: app, size: 20, slot: 0 }] }
accounts: [{ name: prod, id: "333333333333", environment: prod, vpc_cidr: 10.3.0.0/16 }]
clusters: [{ name: main, account: prod, version: "1.33" }]
apps:
  - name: web
    cluster: main
    image: web:1.0.0
    port: 8080
    resources: { requests: { cpu: 250m, memory: 256Mi }, limits: { cpu: "1", memory: 512Mi } }
    autoscaling: { min_replicas: 2, max_replicas: 8, cpu_utilization: 70 }
  - name: api
    cluster: main
    namespace: web
    image: api:1.0.0
    port: 8080
    replicas: 3
"#,
        )
        .expect("valid")
        .spec
    }

    #[test]
    fn quotas_cover_every_app_at_its_ceiling_plus_surge() {
        let spec = spec();
        let members: Vec<&AppSpec> = spec.apps.iter().collect();
        // web: 8 + 2 surge = 10 pods; api: 3 + 1 surge = 4 pods (both default or explicit resources).
        assert_eq!(pod_budget(members[0]), 10);
        assert_eq!(pod_budget(members[1]), 4);
        let quota = resource_quota("acme", "web", &members);
        let hard = quota.spec.and_then(|s| s.hard).expect("hard limits");
        assert_eq!(hard["pods"].0, "14");
        assert_eq!(hard["requests.cpu"].0, "2900m", "10 x 250m + 4 x 100m");
        assert_eq!(hard["limits.memory"].0, "6Gi", "10 x 512Mi + 4 x 256Mi");
    }

    #[test]
    fn the_autoscaler_discovers_node_groups_by_tag_and_balances_zones() {
        let spec = spec();
        let cluster = &spec.clusters[0];
        let args = autoscaler_args(cluster);
        assert!(
            args.contains(
                &"--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,k8s.io/cluster-autoscaler/main"
                    .to_owned()
            )
        );
        assert!(args.contains(&"--balance-similar-node-groups=true".to_owned()));
        assert!(args.contains(&"--expander=least-waste".to_owned()));
        assert!(args.contains(&"--scale-down-utilization-threshold=0.5".to_owned()));
        let tags = node_group_tags(cluster);
        assert_eq!(tags["k8s.io/cluster-autoscaler/main"], "owned");
        assert_eq!(tags["k8s.io/cluster-autoscaler/enabled"], "true");
        let bundle = cluster_autoscaler("acme", cluster, "333333333333", "eu-west-1").expect("renders");
        let account = &bundle.objects()[0];
        assert_eq!(account.kind(), "ServiceAccount");
        assert_eq!(
            account.value()["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
            "arn:aws:iam::333333333333:role/main-cluster-autoscaler"
        );
    }

    #[test]
    fn cluster_autoscaler_rbac_has_no_wildcards() {
        let spec = spec();
        let bundle = cluster_autoscaler("acme", &spec.clusters[0], "333333333333", "eu-west-1").expect("renders");
        for object in bundle.objects().iter().filter(|o| o.kind().ends_with("Role")) {
            let text = object.value().to_string();
            assert!(!text.contains("\"*\""), "{object} grants a wildcard: {text}");
        }
    }

    #[test]
    fn topology_spread_is_hard_across_zones_and_soft_across_nodes() {
        let spec = spec();
        let constraints = topology_spread(&spec.apps[0]);
        assert_eq!(constraints[0].topology_key, "topology.kubernetes.io/zone");
        assert_eq!(constraints[0].when_unsatisfiable, "DoNotSchedule");
        assert_eq!(constraints[1].when_unsatisfiable, "ScheduleAnyway");
        let selector = constraints[0].label_selector.as_ref().and_then(|s| s.match_labels.clone()).expect("selector");
        assert_eq!(selector, spec.apps[0].selector());
    }
}

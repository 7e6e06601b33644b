//! The manifest rules: each with a stable id, a severity, the Checkov check it corresponds to
//! and a one-line remediation.
//!
//! Verdicts follow Checkov's Kubernetes checks (3.3.30) wherever a rule maps to one, including
//! when a check has no verdict (`Unknown`, e.g. a container check on a pod with no
//! containers); the differences are chosen and listed in `tests/corpus.rs`.

use std::sync::LazyLock;

use enclave_core::guardrail::Severity;
use enclave_core::yaml::{Node, Value};
use regex::Regex;

use crate::RuleInfo;
use crate::manifest::{Object, at, str_at};

/// One problem a rule found in an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// The container it is about, when it is about one.
    pub container: Option<String>,
    /// 1-based line of the offending value (or of what lacks it).
    pub line: u32,
    /// What is wrong.
    pub message: String,
}

/// A rule's verdict on one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The rule does not apply to this kind.
    NotApplicable,
    /// The rule applies but cannot decide (no containers, a value of the wrong type).
    Unknown,
    /// Checked and fine.
    Pass,
    /// Broken, with every place it is broken.
    Fail(Vec<Hit>),
}

/// What a rule looks at.
#[derive(Clone, Copy)]
enum Scope {
    /// Each container (and init container, unless `main_only`) of a pod template.
    Container { main_only: bool, check: fn(&Container<'_>) -> Outcome },
    /// The pod spec of a workload (`{}` when the kind holds none where expected).
    Pod(fn(&Object, Option<&Node>) -> Outcome),
    /// The whole object.
    Object(fn(&Object) -> Outcome),
}

/// One check's result before it is attached to a place.
enum Outcome {
    Pass,
    Unknown,
    Fail(String),
    FailAt(u32, String),
}

/// A container with what its checks read.
pub struct Container<'a> {
    /// The container mapping.
    node: &'a Node,
    /// The pod template's metadata (Checkov passes it for label-based checks).
    metadata: Option<&'a Node>,
}

impl Container<'_> {
    fn get(&self, key: &str) -> Option<&Node> {
        self.node.get(key)
    }

    fn security(&self, key: &str) -> Option<&Node> {
        at(self.get("securityContext"), &[key])
    }

    fn capabilities(&self, key: &str) -> Option<&Node> {
        at(self.get("securityContext"), &["capabilities", key])
    }
}

/// A manifest rule: what reports say about it, and what it looks at.
pub struct Rule {
    /// Id, name, Checkov id, severity, summary and remediation.
    pub info: RuleInfo,
    kinds: &'static [&'static str],
    scope: Scope,
}

impl Rule {
    /// Evaluates the rule on one object.
    pub fn evaluate(&self, object: &Object) -> Verdict {
        if !self.kinds.contains(&object.kind()) || !object.is_resource() {
            return Verdict::NotApplicable;
        }
        match self.scope {
            Scope::Object(check) => single(check(object), object.line(), None),
            Scope::Pod(check) => {
                let spec = object.pod_template().and_then(|(spec, _)| spec).filter(|spec| truthy(Some(spec)));
                single(check(object, spec), spec.map_or(object.line(), |s| s.span.line), None)
            }
            Scope::Container { main_only, check } => {
                let Some((Some(spec), metadata)) = object.pod_template() else {
                    return Verdict::Unknown;
                };
                let mut hits = Vec::new();
                let mut passed = false;
                let kinds: &[&str] = if main_only { &["containers"] } else { &["containers", "initContainers"] };
                for key in kinds {
                    let containers = match spec.get(key).map(|c| &c.value) {
                        Some(Value::Seq(items)) => items,
                        _ => continue,
                    };
                    for node in containers {
                        let container = Container { node, metadata };
                        let name = str_at(Some(node), "name").map(str::to_owned);
                        match check(&container) {
                            Outcome::Pass => passed = true,
                            Outcome::Unknown => {}
                            Outcome::Fail(message) => {
                                hits.push(Hit { container: name, line: node.span.line, message });
                            }
                            Outcome::FailAt(line, message) => hits.push(Hit { container: name, line, message }),
                        }
                    }
                }
                if !hits.is_empty() {
                    Verdict::Fail(hits)
                } else if passed {
                    Verdict::Pass
                } else {
                    Verdict::Unknown
                }
            }
        }
    }
}

fn single(outcome: Outcome, line: u32, container: Option<String>) -> Verdict {
    match outcome {
        Outcome::Pass => Verdict::Pass,
        Outcome::Unknown => Verdict::Unknown,
        Outcome::Fail(message) => Verdict::Fail(vec![Hit { container, line, message }]),
        Outcome::FailAt(line, message) => Verdict::Fail(vec![Hit { container, line, message }]),
    }
}

/// Python's truthiness, which Checkov's checks lean on: null, `false`, `0`, `""`, `[]` and `{}`
/// are all "not set".
fn truthy(node: Option<&Node>) -> bool {
    match node.map(|n| &n.value) {
        None | Some(Value::Null) => false,
        Some(Value::Bool(value)) => *value,
        Some(Value::Int(value)) => *value != 0,
        Some(Value::Float(value)) => *value != 0.0,
        Some(Value::String(value)) => !value.is_empty(),
        Some(Value::Seq(items)) => !items.is_empty(),
        Some(Value::Map(entries)) => !entries.is_empty(),
    }
}

fn is_false(node: Option<&Node>) -> bool {
    matches!(node.map(|n| &n.value), Some(Value::Bool(false)))
}

fn as_str(node: Option<&Node>) -> Option<&str> {
    match &node?.value {
        Value::String(value) => Some(value),
        _ => None,
    }
}

fn has_key(node: Option<&Node>, key: &str) -> bool {
    node.and_then(|n| n.get(key)).is_some()
}

fn line_of(node: Option<&Node>, fallback: u32) -> u32 {
    node.map_or(fallback, |n| n.span.line)
}

/// The line of `key` in `parent`: a block mapping or list value starts a line below its key,
/// and the key is where a reader looks.
fn key_line(parent: Option<&Node>, key: &str, fallback: u32) -> u32 {
    parent
        .and_then(Node::as_map)
        .and_then(|entries| entries.iter().find(|entry| entry.key == key))
        .map_or(fallback, |entry| entry.key_span.line)
}

fn strings(node: Option<&Node>) -> impl Iterator<Item = &str> {
    let items: &[Node] = match node.map(|n| &n.value) {
        Some(Value::Seq(items)) => items,
        _ => &[],
    };
    items.iter().filter_map(|item| as_str(Some(item)))
}

/// Checkov's image reference pattern: optional first path segment, repository, optional tag.
static IMAGE: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::unwrap_used)] // a constant pattern
    Regex::new(r"(?:[^\s/]+/)?([^\s:]+):?(\S*)").unwrap()
});

/// The tag of an image reference (`""` when there is none), or `None` when it is not one.
fn image_tag(image: &str) -> Option<&str> {
    IMAGE.captures(image).and_then(|captures| captures.get(2)).map(|tag| tag.as_str())
}

const POD_KINDS: &[&str] =
    &["Pod", "Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "ReplicationController", "Job", "CronJob"];
const CONTAINER_KINDS: &[&str] = &[
    "CronJob",
    "Pod",
    "PodTemplate",
    "Deployment",
    "DeploymentConfig",
    "DaemonSet",
    "Job",
    "ReplicaSet",
    "ReplicationController",
    "StatefulSet",
];
const LONG_RUNNING_KINDS: &[&str] = &[
    "Pod",
    "PodTemplate",
    "Deployment",
    "DeploymentConfig",
    "DaemonSet",
    "ReplicaSet",
    "ReplicationController",
    "StatefulSet",
];
const NAMESPACED_KINDS: &[&str] = &[
    "Pod",
    "Deployment",
    "DaemonSet",
    "StatefulSet",
    "ReplicaSet",
    "ReplicationController",
    "Job",
    "CronJob",
    "Service",
    "Secret",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ConfigMap",
    "Ingress",
];

fn probe(container: &Container<'_>, key: &str) -> Outcome {
    if truthy(container.get(key)) { Outcome::Pass } else { Outcome::Fail(format!("no {key}")) }
}

fn resource(container: &Container<'_>, section: &str, resource: &str, strict_section: bool) -> Outcome {
    let resources = container.get("resources");
    if truthy(resources) {
        if !matches!(resources.map(|r| &r.value), Some(Value::Map(_))) {
            return Outcome::Unknown;
        }
        let values = at(resources, &[section]);
        if strict_section && !matches!(values.map(|v| &v.value), Some(Value::Map(_))) {
            return Outcome::Unknown;
        }
        if truthy(at(values, &[resource])) {
            return Outcome::Pass;
        }
    }
    Outcome::FailAt(
        key_line(Some(container.node), "resources", container.node.span.line),
        format!("no resources.{section}.{resource}"),
    )
}

fn image_tag_fixed(container: &Container<'_>) -> Outcome {
    let image = container.get("image");
    if !truthy(image) {
        return Outcome::Fail("no image".into());
    }
    let Some(reference) = as_str(image).filter(|i| !i.trim().is_empty()) else { return Outcome::Unknown };
    if reference.contains('@') {
        return Outcome::Pass;
    }
    match image_tag(reference) {
        None => Outcome::Unknown,
        Some("" | "latest") => Outcome::FailAt(line_of(image, 0), format!("image `{reference}` has no fixed tag")),
        Some(_) => Outcome::Pass,
    }
}

fn image_pull_policy(container: &Container<'_>) -> Outcome {
    let image = container.get("image");
    if !truthy(image) {
        return Outcome::Fail("no image".into());
    }
    let Some(reference) = as_str(image).filter(|i| !i.trim().is_empty()) else { return Outcome::Unknown };
    let (reference, has_digest) = match reference.split_once('@') {
        Some((name, _)) => (name, true),
        None => (reference, false),
    };
    match container.get("imagePullPolicy") {
        None => {
            if IMAGE.find_iter(reference).count() != 1 {
                return Outcome::Unknown;
            }
            match image_tag(reference) {
                Some("" | "latest") => Outcome::Pass,
                _ if has_digest => Outcome::Pass,
                _ => Outcome::FailAt(line_of(image, 0), "imagePullPolicy is not set (defaults to IfNotPresent)".into()),
            }
        }
        Some(policy) if !has_digest && as_str(Some(policy)) != Some("Always") => {
            Outcome::FailAt(policy.span.line, "imagePullPolicy is not Always".into())
        }
        Some(_) => Outcome::Pass,
    }
}

fn privileged(container: &Container<'_>) -> Outcome {
    let value = container.security("privileged");
    if truthy(value) { Outcome::FailAt(line_of(value, 0), "runs privileged".into()) } else { Outcome::Pass }
}

fn privilege_escalation(container: &Container<'_>) -> Outcome {
    let value = container.security("allowPrivilegeEscalation");
    if is_false(value) {
        Outcome::Pass
    } else {
        Outcome::FailAt(line_of(value, container.node.span.line), "allowPrivilegeEscalation is not false".into())
    }
}

fn read_only_root(container: &Container<'_>) -> Outcome {
    let value = container.security("readOnlyRootFilesystem");
    if truthy(value) {
        Outcome::Pass
    } else {
        Outcome::FailAt(line_of(value, container.node.span.line), "root filesystem is writable".into())
    }
}

fn added_capabilities(container: &Container<'_>) -> Outcome {
    let add = container.capabilities("add");
    let line = key_line(at(container.get("securityContext"), &["capabilities"]), "add", 0);
    if truthy(add) { Outcome::FailAt(line, "adds capabilities".into()) } else { Outcome::Pass }
}

fn drops(container: &Container<'_>, names: &[&str]) -> bool {
    let drop = container.capabilities("drop");
    truthy(drop) && strings(drop).any(|dropped| names.iter().any(|name| dropped.contains(name)))
}

fn net_raw(container: &Container<'_>) -> Outcome {
    if drops(container, &["ALL", "all", "NET_RAW"]) {
        Outcome::Pass
    } else {
        Outcome::Fail("NET_RAW is not dropped".into())
    }
}

fn all_capabilities_dropped(container: &Container<'_>) -> Outcome {
    if drops(container, &["ALL", "all"]) {
        Outcome::Pass
    } else {
        Outcome::Fail("capabilities are not dropped (ALL)".into())
    }
}

fn sys_admin(container: &Container<'_>) -> Outcome {
    let add = container.capabilities("add");
    if truthy(add) && strings(add).any(|cap| cap == "SYS_ADMIN") {
        let line = key_line(at(container.get("securityContext"), &["capabilities"]), "add", 0);
        Outcome::FailAt(line, "adds SYS_ADMIN".into())
    } else {
        Outcome::Pass
    }
}

fn host_port(container: &Container<'_>) -> Outcome {
    let ports = container.get("ports");
    if truthy(ports)
        && let Some(Value::Seq(ports)) = ports.map(|p| &p.value)
    {
        for port in ports {
            if let Some(host_port) = port.get("hostPort") {
                return Outcome::FailAt(host_port.span.line, "binds a hostPort".into());
            }
        }
    }
    Outcome::Pass
}

fn container_security_context(container: &Container<'_>) -> Outcome {
    if truthy(container.get("securityContext")) { Outcome::Pass } else { Outcome::Fail("no securityContext".into()) }
}

fn dashboard(container: &Container<'_>) -> Outcome {
    let image = container.get("image");
    if truthy(image) {
        match as_str(image) {
            None => return Outcome::Fail("image is not a string".into()),
            Some(image) if image.contains("kubernetes-dashboard") || image.contains("kubernetesui") => {
                return Outcome::Fail(format!("runs the Kubernetes dashboard ({image})"));
            }
            Some(_) => {}
        }
    }
    let labels = at(container.metadata, &["labels"]);
    if truthy(labels) {
        let label = if has_key(labels, "app") { "app" } else { "k8s-app" };
        if str_at(labels, label) == Some("kubernetes-dashboard") {
            return Outcome::Fail(format!("labelled {label}=kubernetes-dashboard"));
        }
    }
    Outcome::Pass
}

fn tiller(container: &Container<'_>) -> Outcome {
    if as_str(container.get("image")).is_some_and(|image| image.contains("tiller")) {
        return Outcome::Fail("runs Tiller (Helm v2)".into());
    }
    let labels = at(container.metadata, &["labels"]);
    if truthy(labels) {
        if str_at(labels, "app") == Some("helm") {
            return Outcome::Fail("labelled app=helm".into());
        }
        if str_at(labels, "name") == Some("tiller") {
            return Outcome::Fail("labelled name=tiller".into());
        }
    }
    Outcome::Pass
}

fn secrets_in_env(container: &Container<'_>) -> Outcome {
    let env = container.get("env");
    if truthy(env)
        && let Some(Value::Seq(variables)) = env.map(|e| &e.value)
    {
        for variable in variables {
            if !matches!(variable.value, Value::Map(_)) {
                return Outcome::Unknown;
            }
            let value_from = variable.get("valueFrom");
            if truthy(value_from) && has_key(value_from, "secretKeyRef") {
                let name = str_at(Some(variable), "name").unwrap_or("?");
                return Outcome::FailAt(variable.span.line, format!("secret in environment variable {name}"));
            }
        }
    }
    let env_from = container.get("envFrom");
    if truthy(env_from)
        && let Some(Value::Seq(sources)) = env_from.map(|e| &e.value)
    {
        for source in sources {
            if has_key(Some(source), "secretRef") {
                return Outcome::FailAt(source.span.line, "secret loaded into the environment (envFrom)".into());
            }
        }
    }
    Outcome::Pass
}

fn image_digest(container: &Container<'_>) -> Outcome {
    match container.get("image") {
        Some(image) if as_str(Some(image)).is_some_and(|i| i.contains('@')) => Outcome::Pass,
        Some(image) => Outcome::FailAt(image.span.line, "image is not pinned by digest".into()),
        None => Outcome::Fail("no image".into()),
    }
}

fn host_namespace(spec: Option<&Node>, key: &str) -> Outcome {
    let value = at(spec, &[key]);
    if truthy(value) { Outcome::FailAt(line_of(value, 0), format!("{key} is true")) } else { Outcome::Pass }
}

fn docker_socket(_: &Object, spec: Option<&Node>) -> Outcome {
    let Some(volumes) = at(spec, &["volumes"]) else { return Outcome::Pass };
    let Value::Seq(volumes) = &volumes.value else { return Outcome::Unknown };
    for volume in volumes {
        let host_path = volume.get("hostPath");
        if truthy(host_path) && str_at(host_path, "path") == Some("/var/run/docker.sock") {
            return Outcome::FailAt(volume.span.line, "mounts the docker socket".into());
        }
    }
    Outcome::Pass
}

fn pod_security_context(_: &Object, spec: Option<&Node>) -> Outcome {
    if truthy(at(spec, &["securityContext"])) {
        Outcome::Pass
    } else {
        Outcome::Fail("the pod has no securityContext".into())
    }
}

fn service_account_token(_: &Object, spec: Option<&Node>) -> Outcome {
    if spec.is_some_and(|spec| !matches!(spec.value, Value::Map(_))) {
        return Outcome::Unknown;
    }
    if is_false(at(spec, &["automountServiceAccountToken"])) {
        Outcome::Pass
    } else {
        Outcome::Fail("the service-account token is mounted (automountServiceAccountToken is not false)".into())
    }
}

/// `PASSED`/`FAILED`/`ABSENT` of Checkov's root checks, for `runAsNonRoot`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Set {
    Passed,
    Failed,
    Absent,
}

fn run_as_non_root(node: &Node) -> Set {
    let context = node.get("securityContext");
    if truthy(context) && has_key(context, "runAsNonRoot") {
        if truthy(at(context, &["runAsNonRoot"])) { Set::Passed } else { Set::Failed }
    } else {
        Set::Absent
    }
}

fn run_as_user(node: &Node, at_least: i64) -> Set {
    let context = node.get("securityContext");
    if !truthy(context) || !has_key(context, "runAsUser") {
        return Set::Absent;
    }
    // Python's bool is an int, so `runAsUser: true` counts as 1 for Checkov.
    match at(context, &["runAsUser"]).map(|n| &n.value) {
        Some(Value::Int(uid)) if *uid >= at_least => Set::Passed,
        Some(Value::Bool(value)) if i64::from(*value) >= at_least => Set::Passed,
        _ => Set::Failed,
    }
}

fn containers(spec: &Node) -> Option<&[Node]> {
    match spec.get("containers").map(|c| &c.value) {
        None => Some(&[]),
        Some(Value::Seq(items)) => Some(items),
        Some(_) => None,
    }
}

fn non_root(_: &Object, spec: Option<&Node>) -> Outcome {
    let failed = Outcome::Fail("may run as root (no runAsNonRoot: true or runAsUser > 0)".into());
    let Some(spec) = spec.filter(|s| matches!(s.value, Value::Map(_))) else { return failed };
    let Some(containers) = containers(spec) else { return Outcome::Unknown };
    let (pod_non_root, pod_user) = (run_as_non_root(spec), run_as_user(spec, 1));
    let ok = if pod_non_root == Set::Passed {
        containers
            .iter()
            .all(|c| !(run_as_non_root(c) == Set::Failed && matches!(run_as_user(c, 1), Set::Failed | Set::Absent)))
    } else if pod_user == Set::Passed {
        containers.iter().all(|c| run_as_user(c, 1) != Set::Failed)
    } else {
        containers.iter().all(|c| run_as_non_root(c) == Set::Passed || run_as_user(c, 1) == Set::Passed)
    };
    if ok { Outcome::Pass } else { failed }
}

fn high_uid(_: &Object, spec: Option<&Node>) -> Outcome {
    let failed = Outcome::Fail("does not run as a UID of 10000 or more".into());
    let Some(spec) = spec.filter(|s| matches!(s.value, Value::Map(_))) else { return failed };
    if is_false(spec.get("hostUsers")) {
        return Outcome::Pass;
    }
    let Some(containers) = containers(spec) else { return Outcome::Unknown };
    let ok = if run_as_user(spec, 10_000) == Set::Passed {
        containers.iter().all(|c| run_as_user(c, 10_000) != Set::Failed)
    } else {
        !containers.is_empty() && containers.iter().all(|c| run_as_user(c, 10_000) == Set::Passed)
    };
    if ok { Outcome::Pass } else { failed }
}

/// `seccompProfile.type` of the pod or of every container: `Some(true)` when it is
/// RuntimeDefault everywhere it decides, `Some(false)` when one is something else.
fn seccomp_profiles(spec: Option<&Node>) -> Option<bool> {
    let profile = as_str(at(spec, &["securityContext", "seccompProfile", "type"])).filter(|p| !p.is_empty());
    if let Some(profile) = profile {
        return Some(profile == "RuntimeDefault");
    }
    let containers = at(spec, &["containers"]).filter(|c| truthy(Some(c)))?;
    let containers: Vec<&Node> = match &containers.value {
        Value::Seq(items) => items.iter().collect(),
        _ => vec![containers],
    };
    let mut passed = 0;
    for container in &containers {
        if let Some(profile) =
            as_str(at(Some(container), &["securityContext", "seccompProfile", "type"])).filter(|p| !p.is_empty())
        {
            if profile != "RuntimeDefault" {
                return Some(false);
            }
            passed += 1;
        }
    }
    (passed == containers.len()).then_some(true)
}

fn seccomp(object: &Object, _: Option<&Node>) -> Outcome {
    let failed = Outcome::Fail("no RuntimeDefault seccomp profile".into());
    let spec = object.node.get("spec");
    let mut metadata = None;
    match object.kind() {
        "Pod" => {
            if let Some(verdict) = seccomp_profiles(spec) {
                return if verdict { Outcome::Pass } else { failed };
            }
            metadata = object.metadata();
        }
        "Deployment" | "StatefulSet" | "DaemonSet" | "Job" | "ReplicaSet" => {
            if let Some(verdict) = seccomp_profiles(at(spec, &["template", "spec"])) {
                return if verdict { Outcome::Pass } else { failed };
            }
            metadata = at(spec, &["template", "metadata"]).filter(|m| truthy(Some(m))).or(object.metadata());
        }
        "CronJob" => {
            let template = at(spec, &["jobTemplate", "spec", "template"]);
            if let Some(inner) = at(template, &["spec"]) {
                if has_key(Some(inner), "metadata") {
                    metadata = inner.get("metadata");
                } else if has_key(Some(inner), "securityContext")
                    && as_str(at(Some(inner), &["securityContext", "seccompProfile", "type"])) == Some("RuntimeDefault")
                {
                    return Outcome::Pass;
                }
            }
            if has_key(template, "metadata") {
                metadata = at(template, &["metadata"]);
            }
        }
        _ => metadata = at(spec, &["template", "metadata"]).filter(|m| truthy(Some(m))),
    }
    if let Some(Value::Map(annotations)) = at(metadata, &["annotations"]).map(|a| &a.value) {
        for entry in annotations {
            if entry.key.contains("seccomp.security.alpha.kubernetes.io/pod")
                && as_str(Some(&entry.value))
                    .is_some_and(|v| v.contains("docker/default") || v.contains("runtime/default"))
            {
                return Outcome::Pass;
            }
        }
    }
    failed
}

fn default_namespace(object: &Object) -> Outcome {
    let metadata = object.metadata();
    if truthy(metadata) {
        if has_key(metadata, "namespace") && str_at(metadata, "namespace") != Some("default") {
            return Outcome::Pass;
        }
        match (object.kind(), object.name.as_deref()) {
            ("ServiceAccount", Some("default")) | ("Service", Some("kubernetes")) => return Outcome::Pass,
            _ => {}
        }
    }
    Outcome::Fail("in the default namespace".into())
}

fn default_service_account(object: &Object) -> Outcome {
    if object.name.as_deref() == Some("default") && !is_false(object.node.get("automountServiceAccountToken")) {
        Outcome::Fail("the default service account mounts its token (automountServiceAccountToken is not false)".into())
    } else {
        Outcome::Pass
    }
}

fn default_service_account_binding(object: &Object) -> Outcome {
    if let Some(Value::Seq(subjects)) = object.node.get("subjects").map(|s| &s.value) {
        for subject in subjects {
            if str_at(Some(subject), "kind") == Some("ServiceAccount")
                && str_at(Some(subject), "name") == Some("default")
            {
                return Outcome::FailAt(subject.span.line, "binds a role to a default service account".into());
            }
        }
    }
    Outcome::Pass
}

fn wildcard_rbac(object: &Object) -> Outcome {
    let Some(Value::Seq(rules)) = object.node.get("rules").map(|r| &r.value) else { return Outcome::Pass };
    for rule in rules {
        for field in ["apiGroups", "resources", "verbs"] {
            if strings(rule.get(field)).any(|value| value.contains('*')) {
                return Outcome::FailAt(rule.span.line, format!("grants `*` in {field}"));
            }
        }
    }
    Outcome::Pass
}

macro_rules! container {
    ($check:expr) => {
        Scope::Container { main_only: false, check: $check }
    };
}

/// Every manifest rule, in id order.
pub fn all() -> &'static [Rule] {
    &RULES
}

/// The rule with `id` (ours or Checkov's).
pub fn find(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|rule| rule.info.id == id || rule.info.checkov_id == Some(id) || rule.info.name == id)
}

static RULES: [Rule; 35] = [
    Rule {
        info: RuleInfo {
            id: "K8S008",
            name: "liveness-probe",
            checkov_id: Some("CKV_K8S_8"),
            severity: Severity::Low,
            summary: "Long-running containers have a liveness probe",
            remediation: "add a livenessProbe so the kubelet restarts a hung container",
        },
        kinds: LONG_RUNNING_KINDS,
        scope: Scope::Container { main_only: true, check: |c| probe(c, "livenessProbe") },
    },
    Rule {
        info: RuleInfo {
            id: "K8S009",
            name: "readiness-probe",
            checkov_id: Some("CKV_K8S_9"),
            severity: Severity::Low,
            summary: "Long-running containers have a readiness probe",
            remediation: "add a readinessProbe so traffic only reaches ready pods",
        },
        kinds: LONG_RUNNING_KINDS,
        scope: Scope::Container { main_only: true, check: |c| probe(c, "readinessProbe") },
    },
    Rule {
        info: RuleInfo {
            id: "K8S010",
            name: "cpu-requests",
            checkov_id: Some("CKV_K8S_10"),
            severity: Severity::Low,
            summary: "Containers request CPU",
            remediation: "set resources.requests.cpu",
        },
        kinds: CONTAINER_KINDS,
        scope: container!(|c| resource(c, "requests", "cpu", true)),
    },
    Rule {
        info: RuleInfo {
            id: "K8S011",
            name: "cpu-limits",
            checkov_id: Some("CKV_K8S_11"),
            severity: Severity::Low,
            summary: "Containers have a CPU limit",
            remediation: "set resources.limits.cpu",
        },
        kinds: CONTAINER_KINDS,
        scope: container!(|c| resource(c, "limits", "cpu", false)),
    },
    Rule {
        info: RuleInfo {
            id: "K8S012",
            name: "memory-requests",
            checkov_id: Some("CKV_K8S_12"),
            severity: Severity::Low,
            summary: "Containers request memory",
            remediation: "set resources.requests.memory",
        },
        kinds: CONTAINER_KINDS,
        scope: container!(|c| resource(c, "requests", "memory", true)),
    },
    Rule {
        info: RuleInfo {
            id: "K8S013",
            name: "memory-limits",
            checkov_id: Some("CKV_K8S_13"),
            severity: Severity::Medium,
            summary: "Containers have a memory limit",
            remediation: "set resources.limits.memory so one container cannot starve the node",
        },
        kinds: CONTAINER_KINDS,
        scope: container!(|c| resource(c, "limits", "memory", false)),
    },
    Rule {
        info: RuleInfo {
            id: "K8S014",
            name: "image-tag",
            checkov_id: Some("CKV_K8S_14"),
            severity: Severity::Medium,
            summary: "Images have a fixed tag (not latest, not blank)",
            remediation: "pin the image to a version tag or a digest",
        },
        kinds: CONTAINER_KINDS,
        scope: container!(image_tag_fixed),
    },
    Rule {
        info: RuleInfo {
            id: "K8S015",
            name: "image-pull-policy",
            checkov_id: Some("CKV_K8S_15"),
            severity: Severity::Low,
            summary: "Image pull policy is Always (or the image is pinned by digest)",
            remediation: "set imagePullPolicy: Always, or pin the image by digest",
        },
        kinds: CONTAINER_KINDS,
        scope: container!(image_pull_policy),
    },
    Rule {
        info: RuleInfo {
            id: "K8S016",
            name: "privileged",
            checkov_id: Some("CKV_K8S_16"),
            severity: Severity::Critical,
            summary: "Containers are not privileged",
            remediation: "remove securityContext.privileged; grant the one capability needed instead",
        },
        kinds: CONTAINER_KINDS,
        scope: container!(privileged),
    },
    Rule {
        info: RuleInfo {
            id: "K8S017",
            name: "host-pid",
            checkov_id: Some("CKV_K8S_17"),
            severity: Severity::High,
            summary: "Pods do not share the host's process ID namespace",
            remediation: "remove hostPID: true",
        },
        kinds: POD_KINDS,
        scope: Scope::Pod(|_, spec| host_namespace(spec, "hostPID")),
    },
    Rule {
        info: RuleInfo {
            id: "K8S018",
            name: "host-ipc",
            checkov_id: Some("CKV_K8S_18"),
            severity: Severity::High,
            summary: "Pods do not share the host's IPC namespace",
            remediation: "remove hostIPC: true",
        },
        kinds: POD_KINDS,
        scope: Scope::Pod(|_, spec| host_namespace(spec, "hostIPC")),
    },
    Rule {
        info: RuleInfo {
            id: "K8S019",
            name: "host-network",
            checkov_id: Some("CKV_K8S_19"),
            severity: Severity::High,
            summary: "Pods do not share the host's network namespace",
            remediation: "remove hostNetwork: true; expose the pod through a Service",
        },
        kinds: POD_KINDS,
        scope: Scope::Pod(|_, spec| host_namespace(spec, "hostNetwork")),
    },
    Rule {
        info: RuleInfo {
            id: "K8S020",
            name: "privilege-escalation",
            checkov_id: Some("CKV_K8S_20"),
            severity: Severity::Medium,
            summary: "Containers forbid privilege escalation",
            remediation: "set securityContext.allowPrivilegeEscalation: false",
        },
        kinds: CONTAINER_KINDS,
        scope: container!(privilege_escalation),
    },
    Rule {
        info: RuleInfo {
            id: "K8S021",
            name: "default-namespace",
            checkov_id: Some("CKV_K8S_21"),
            severity: Severity::Low,
            summary: "Objects are not in the default namespace",
            remediation: "set metadata.namespace to the application's namespace",
        },
        kinds: NAMESPACED_KINDS,
        scope: Scope::Object(default_namespace),
    },
    Rule {
        info: RuleInfo {
            id: "K8S022",
            name: "read-only-root-filesystem",
            checkov_id: Some("CKV_K8S_22"),
            severity: Severity::Medium,
            summary: "Containers have a read-only root filesystem",
            remediation: "set securityContext.readOnlyRootFilesystem: true; mount an emptyDir where writes are needed",
        },
        kinds: CONTAINER_KINDS,
        scope: container!(read_only_root),
    },
    Rule {
        info: RuleInfo {
            id: "K8S023",
            name: "non-root",
            checkov_id: Some("CKV_K8S_23"),
            severity: Severity::Medium,
            summary: "Containers do not run as root",
            remediation: "set runAsNonRoot: true (or a non-zero runAsUser) on the pod or every container",
        },
        kinds: POD_KINDS,
        scope: Scope::Pod(non_root),
    },
    Rule {
        info: RuleInfo {
            id: "K8S025",
            name: "added-capabilities",
            checkov_id: Some("CKV_K8S_25"),
            severity: Severity::Medium,
            summary: "Containers add no capabilities",
            remediation: "remove securityContext.capabilities.add, or suppress with the reason for each one",
        },
        kinds: CONTAINER_KINDS,
        scope: container!(added_capabilities),
    },
    Rule {
        info: RuleInfo {
            id: "K8S026",
            name: "host-port",
            checkov_id: Some("CKV_K8S_26"),
            severity: Severity::Medium,
            summary: "Containers bind no hostPort",
            remediation: "remove hostPort; expose the port through a Service",
        },
        kinds: CONTAINER_KINDS,
        scope: container!(host_port),
    },
    Rule {
        info: RuleInfo {
            id: "K8S027",
            name: "docker-socket",
            checkov_id: Some("CKV_K8S_27"),
            severity: Severity::Critical,
            summary: "Pods do not mount the docker socket",
            remediation: "remove the hostPath volume for /var/run/docker.sock",
        },
        kinds: POD_KINDS,
        scope: Scope::Pod(docker_socket),
    },
    Rule {
        info: RuleInfo {
            id: "K8S028",
            name: "net-raw",
            checkov_id: Some("CKV_K8S_28"),
            severity: Severity::Medium,
            summary: "Containers drop NET_RAW",
            remediation: "add NET_RAW (or ALL) to securityContext.capabilities.drop",
        },
        kinds: CONTAINER_KINDS,
        scope: container!(net_raw),
    },
    Rule {
        info: RuleInfo {
            id: "K8S029",
            name: "pod-security-context",
            checkov_id: Some("CKV_K8S_29"),
            severity: Severity::Low,
            summary: "Pods have a security context",
            remediation: "set spec.securityContext (runAsNonRoot, seccompProfile, fsGroup)",
        },
        kinds: POD_KINDS,
        scope: Scope::Pod(pod_security_context),
    },
    Rule {
        info: RuleInfo {
            id: "K8S030",
            name: "container-security-context",
            checkov_id: Some("CKV_K8S_30"),
            severity: Severity::Low,
            summary: "Containers have a security context",
            remediation: "set securityContext on every container",
        },
        kinds: CONTAINER_KINDS,
        scope: container!(container_security_context),
    },
    Rule {
        info: RuleInfo {
            id: "K8S031",
            name: "seccomp",
            checkov_id: Some("CKV_K8S_31"),
            severity: Severity::Medium,
            summary: "Pods use the RuntimeDefault seccomp profile",
            remediation: "set spec.securityContext.seccompProfile.type: RuntimeDefault",
        },
        kinds: POD_KINDS,
        scope: Scope::Pod(seccomp),
    },
    Rule {
        info: RuleInfo {
            id: "K8S033",
            name: "kubernetes-dashboard",
            checkov_id: Some("CKV_K8S_33"),
            severity: Severity::High,
            summary: "The Kubernetes dashboard is not deployed",
            remediation: "remove the dashboard; use kubectl with short-lived credentials",
        },
        kinds: CONTAINER_KINDS,
        scope: container!(dashboard),
    },
    Rule {
        info: RuleInfo {
            id: "K8S034",
            name: "tiller",
            checkov_id: Some("CKV_K8S_34"),
            severity: Severity::High,
            summary: "Tiller (Helm v2) is not deployed",
            remediation: "remove Tiller; Helm 3 needs no in-cluster component",
        },
        kinds: CONTAINER_KINDS,
        scope: container!(tiller),
    },
    Rule {
        info: RuleInfo {
            id: "K8S035",
            name: "secrets-in-env",
            checkov_id: Some("CKV_K8S_35"),
            severity: Severity::Medium,
            summary: "Secrets are mounted as files, not environment variables",
            remediation: "mount the secret as a volume; environment variables leak into logs and child processes",
        },
        kinds: CONTAINER_KINDS,
        scope: container!(secrets_in_env),
    },
    Rule {
        info: RuleInfo {
            id: "K8S037",
            name: "capabilities-dropped",
            checkov_id: Some("CKV_K8S_37"),
            severity: Severity::Medium,
            summary: "Containers drop all capabilities",
            remediation: "set securityContext.capabilities.drop: [ALL] and add back only what is needed",
        },
        kinds: CONTAINER_KINDS,
        scope: container!(all_capabilities_dropped),
    },
    Rule {
        info: RuleInfo {
            id: "K8S038",
            name: "service-account-token",
            checkov_id: Some("CKV_K8S_38"),
            severity: Severity::Medium,
            summary: "Pods mount a service-account token only when they use the API",
            remediation: "set automountServiceAccountToken: false unless the pod calls the Kubernetes API",
        },
        kinds: POD_KINDS,
        scope: Scope::Pod(service_account_token),
    },
    Rule {
        info: RuleInfo {
            id: "K8S039",
            name: "sys-admin",
            checkov_id: Some("CKV_K8S_39"),
            severity: Severity::High,
            summary: "Containers do not add CAP_SYS_ADMIN",
            remediation: "remove SYS_ADMIN from securityContext.capabilities.add",
        },
        kinds: CONTAINER_KINDS,
        scope: container!(sys_admin),
    },
    Rule {
        info: RuleInfo {
            id: "K8S040",
            name: "high-uid",
            checkov_id: Some("CKV_K8S_40"),
            severity: Severity::Low,
            summary: "Containers run as a UID of 10000 or more (or in a user namespace)",
            remediation: "set runAsUser to 10000 or more, or hostUsers: false",
        },
        kinds: POD_KINDS,
        scope: Scope::Pod(high_uid),
    },
    Rule {
        info: RuleInfo {
            id: "K8S041",
            name: "default-service-account",
            checkov_id: Some("CKV_K8S_41"),
            severity: Severity::Medium,
            summary: "Default service accounts do not mount their token",
            remediation: "set automountServiceAccountToken: false on the default ServiceAccount",
        },
        kinds: &["ServiceAccount"],
        scope: Scope::Object(default_service_account),
    },
    Rule {
        info: RuleInfo {
            id: "K8S042",
            name: "default-service-account-binding",
            checkov_id: Some("CKV_K8S_42"),
            severity: Severity::Medium,
            summary: "No role is bound to a default service account",
            remediation: "bind the role to a dedicated service account",
        },
        kinds: &["RoleBinding", "ClusterRoleBinding"],
        scope: Scope::Object(default_service_account_binding),
    },
    Rule {
        info: RuleInfo {
            id: "K8S043",
            name: "image-digest",
            checkov_id: Some("CKV_K8S_43"),
            severity: Severity::Low,
            summary: "Images are pinned by digest",
            remediation: "reference the image as name@sha256:...",
        },
        kinds: CONTAINER_KINDS,
        scope: container!(image_digest),
    },
    Rule {
        info: RuleInfo {
            id: "K8S049",
            name: "wildcard-rbac",
            checkov_id: Some("CKV_K8S_49"),
            severity: Severity::High,
            summary: "Roles grant no `*` in apiGroups, resources or verbs",
            remediation: "list the API groups, resources and verbs the role needs",
        },
        kinds: &["Role", "ClusterRole"],
        scope: Scope::Object(wildcard_rbac),
    },
    Rule {
        info: RuleInfo {
            id: "K8S100",
            name: "service-exposure",
            checkov_id: None,
            severity: Severity::High,
            summary: "Services are not exposed to the internet (LoadBalancer or NodePort)",
            remediation: "use ClusterIP behind an internal ingress, or an internal load balancer annotation",
        },
        kinds: &["Service"],
        scope: Scope::Object(service_exposure),
    },
];

/// Annotations that make a cloud load balancer internal.
const INTERNAL_LB_ANNOTATIONS: &[(&str, &str)] = &[
    ("service.beta.kubernetes.io/aws-load-balancer-internal", "true"),
    ("service.beta.kubernetes.io/aws-load-balancer-scheme", "internal"),
    ("networking.gke.io/load-balancer-type", "Internal"),
    ("cloud.google.com/load-balancer-type", "Internal"),
    ("service.beta.kubernetes.io/azure-load-balancer-internal", "true"),
];

fn service_exposure(object: &Object) -> Outcome {
    let kind = object.node.get("spec").and_then(|spec| spec.get("type"));
    match as_str(kind) {
        Some("NodePort") => Outcome::FailAt(line_of(kind, 0), "NodePort opens a port on every node".into()),
        Some("LoadBalancer") => {
            let annotations = at(object.metadata(), &["annotations"]);
            let internal = INTERNAL_LB_ANNOTATIONS
                .iter()
                .any(|(key, value)| str_at(annotations, key).is_some_and(|v| v.eq_ignore_ascii_case(value)));
            if internal {
                Outcome::Pass
            } else {
                Outcome::FailAt(
                    line_of(kind, 0),
                    "LoadBalancer without an internal-scheme annotation faces the internet".into(),
                )
            }
        }
        _ => Outcome::Pass,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Source, parse};

    /// The verdict of `rule` on the first object of `yaml`: pass, fail, unknown or n/a.
    fn verdict(rule: &str, yaml: &str) -> &'static str {
        let parsed = parse(&Source::new("t.yaml", yaml));
        match find(rule).expect("a rule").evaluate(&parsed.objects[0]) {
            Verdict::Pass => "pass",
            Verdict::Fail(_) => "fail",
            Verdict::Unknown => "unknown",
            Verdict::NotApplicable => "n/a",
        }
    }

    fn pod(container: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p, namespace: x}}\nspec:\n  containers:\n  - {container}\n"
        )
    }

    #[test]
    fn container_rules_follow_checkovs_verdicts() {
        let cases = [
            ("K8S016", "{name: c, securityContext: {privileged: true}}", "fail"),
            ("K8S016", "{name: c, securityContext: {privileged: false}}", "pass"),
            ("K8S014", "{name: c, image: nginx}", "fail"),
            ("K8S014", "{name: c, image: 'nginx:latest'}", "fail"),
            ("K8S014", "{name: c, image: 'nginx:1.27'}", "pass"),
            ("K8S014", "{name: c, image: 'localhost:5000/nginx'}", "fail"),
            ("K8S014", "{name: c, image: 'localhost:5000/nginx:1.27'}", "pass"),
            ("K8S014", "{name: c, image: 'nginx@sha256:abc'}", "pass"),
            ("K8S014", "{name: c, image: 42}", "unknown"),
            ("K8S015", "{name: c, image: 'nginx:1.27'}", "fail"),
            ("K8S015", "{name: c, image: nginx}", "pass"),
            ("K8S015", "{name: c, image: 'nginx:1.27', imagePullPolicy: IfNotPresent}", "fail"),
            ("K8S015", "{name: c, image: 'nginx:1.27', imagePullPolicy: Always}", "pass"),
            ("K8S015", "{name: c, image: 'nginx@sha256:abc', imagePullPolicy: IfNotPresent}", "pass"),
            ("K8S010", "{name: c, resources: {}}", "fail"),
            ("K8S010", "{name: c, resources: {limits: {cpu: 1}}}", "unknown"),
            ("K8S010", "{name: c, resources: {requests: {cpu: 100m}}}", "pass"),
            ("K8S011", "{name: c, resources: {requests: {cpu: 1}}}", "fail"),
            ("K8S020", "{name: c}", "fail"),
            ("K8S020", "{name: c, securityContext: {allowPrivilegeEscalation: false}}", "pass"),
            ("K8S028", "{name: c, securityContext: {capabilities: {drop: [NET_RAW]}}}", "pass"),
            ("K8S028", "{name: c, securityContext: {capabilities: {drop: [ALL]}}}", "pass"),
            ("K8S028", "{name: c, securityContext: {capabilities: {drop: [CHOWN]}}}", "fail"),
            ("K8S037", "{name: c, securityContext: {capabilities: {drop: [NET_RAW]}}}", "fail"),
            ("K8S039", "{name: c, securityContext: {capabilities: {add: [SYS_ADMIN]}}}", "fail"),
            ("K8S025", "{name: c, securityContext: {capabilities: {add: [NET_BIND_SERVICE]}}}", "fail"),
            ("K8S026", "{name: c, ports: [{containerPort: 80, hostPort: 80}]}", "fail"),
            ("K8S035", "{name: c, env: [{name: P, valueFrom: {secretKeyRef: {name: s, key: p}}}]}", "fail"),
            ("K8S035", "{name: c, envFrom: [{secretRef: {name: s}}]}", "fail"),
            ("K8S035", "{name: c, env: [{name: P, valueFrom: {configMapKeyRef: {name: s, key: p}}}]}", "pass"),
            ("K8S033", "{name: c, image: 'kubernetesui/dashboard:v2'}", "fail"),
            ("K8S034", "{name: c, image: 'gcr.io/kubernetes-helm/tiller:v2.16'}", "fail"),
            ("K8S043", "{name: c, image: 'nginx:1.27'}", "fail"),
        ];
        for (rule, container, expected) in cases {
            assert_eq!(verdict(rule, &pod(container)), expected, "{rule} on {container}");
        }
    }

    #[test]
    fn yaml_is_read_as_kubernetes_reads_it_booleans_and_merge_keys() {
        assert_eq!(verdict("K8S022", &pod("{name: c, securityContext: {readOnlyRootFilesystem: no}}")), "fail");
        assert_eq!(verdict("K8S020", &pod("{name: c, securityContext: {allowPrivilegeEscalation: off}}")), "pass");
        let merged = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nx-defaults: &hardened {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true}\nspec:\n  containers:\n  - name: c\n    securityContext:\n      <<: *hardened\n      privileged: false\n";
        assert_eq!(verdict("K8S020", merged), "pass");
        assert_eq!(verdict("K8S022", merged), "pass");
    }

    #[test]
    fn findings_point_at_the_key_of_a_block_value() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    resources:\n      limits:\n        cpu: 1\n    securityContext:\n      capabilities:\n        add:\n        - SYS_ADMIN\n";
        let parsed = parse(&Source::new("t.yaml", text));
        let line = |rule: &str| match find(rule).expect("rule").evaluate(&parsed.objects[0]) {
            Verdict::Fail(hits) => hits[0].line,
            other => panic!("{rule}: {other:?}"),
        };
        assert_eq!((line("K8S013"), line("K8S039"), line("K8S025")), (7, 12, 12));
    }

    #[test]
    fn init_containers_count_except_for_probes_and_job_pods_need_no_probes() {
        let init = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  initContainers:\n  - {name: i, securityContext: {privileged: true}}\n  containers:\n  - {name: c, livenessProbe: {exec: {command: [x]}}}\n";
        assert_eq!(verdict("K8S016", init), "fail");
        assert_eq!(verdict("K8S008", init), "pass");
        let job = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template:\n    spec:\n      containers:\n      - {name: c}\n";
        assert_eq!(verdict("K8S008", job), "n/a");
        assert_eq!(verdict("K8S016", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {}\n"), "unknown");
    }

    #[test]
    fn pod_rules_read_the_template_of_every_workload_kind() {
        let cron = "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          hostNetwork: true\n          containers: [{name: c}]\n";
        assert_eq!(verdict("K8S019", cron), "fail");
        let deployment = |spec: &str| {
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: d}}\nspec:\n  template:\n    spec: {spec}\n"
            )
        };
        assert_eq!(
            verdict("K8S023", &deployment("{securityContext: {runAsNonRoot: true}, containers: [{name: c}]}")),
            "pass"
        );
        assert_eq!(verdict("K8S023", &deployment("{containers: [{name: c}]}")), "fail");
        assert_eq!(
            verdict(
                "K8S023",
                &deployment(
                    "{securityContext: {runAsNonRoot: true}, containers: [{name: c, securityContext: {runAsNonRoot: false}}]}"
                )
            ),
            "fail"
        );
        assert_eq!(
            verdict("K8S040", &deployment("{securityContext: {runAsUser: 10001}, containers: [{name: c}]}")),
            "pass"
        );
        assert_eq!(
            verdict("K8S040", &deployment("{securityContext: {runAsUser: 1000}, containers: [{name: c}]}")),
            "fail"
        );
        assert_eq!(verdict("K8S040", &deployment("{hostUsers: false, containers: [{name: c}]}")), "pass");
        assert_eq!(
            verdict(
                "K8S031",
                &deployment("{securityContext: {seccompProfile: {type: RuntimeDefault}}, containers: [{name: c}]}")
            ),
            "pass"
        );
        assert_eq!(
            verdict(
                "K8S031",
                &deployment("{securityContext: {seccompProfile: {type: Unconfined}}, containers: [{name: c}]}")
            ),
            "fail"
        );
        assert_eq!(
            verdict("K8S038", &deployment("{automountServiceAccountToken: false, containers: [{name: c}]}")),
            "pass"
        );
        assert_eq!(
            verdict(
                "K8S027",
                &deployment("{volumes: [{name: d, hostPath: {path: /var/run/docker.sock}}], containers: [{name: c}]}")
            ),
            "fail"
        );
        let rc = "apiVersion: v1\nkind: ReplicationController\nmetadata: {name: r}\nspec:\n  template:\n    metadata:\n      annotations: {seccomp.security.alpha.kubernetes.io/pod: runtime/default}\n    spec: {containers: [{name: c}]}\n";
        assert_eq!(verdict("K8S031", rc), "pass");
    }

    #[test]
    fn object_rules_cover_namespaces_service_accounts_rbac_and_exposure() {
        assert_eq!(verdict("K8S021", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n"), "fail");
        assert_eq!(verdict("K8S021", "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: shop}\n"), "pass");
        assert_eq!(verdict("K8S021", "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default}\n"), "pass");
        assert_eq!(verdict("K8S041", "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default}\n"), "fail");
        assert_eq!(
            verdict(
                "K8S041",
                "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default}\nautomountServiceAccountToken: false\n"
            ),
            "pass"
        );
        let binding = "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: b}\nsubjects: [{kind: ServiceAccount, name: default}]\n";
        assert_eq!(verdict("K8S042", binding), "fail");
        let role = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: r}\nrules:\n- {apiGroups: [''], resources: [pods], verbs: [get]}\n- {apiGroups: [apps], resources: ['*'], verbs: [get]}\n";
        assert_eq!(verdict("K8S049", role), "fail", "a wildcard in any rule, not only the first");
        let service = |extra: &str| {
            format!("apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n{extra}spec: {{type: LoadBalancer}}\n")
        };
        assert_eq!(verdict("K8S100", &service("")), "fail");
        assert_eq!(
            verdict(
                "K8S100",
                &service("  annotations: {service.beta.kubernetes.io/aws-load-balancer-scheme: internal}\n")
            ),
            "pass"
        );
    }

    #[test]
    fn every_rule_has_a_unique_id_and_a_remediation() {
        let duplicates = enclave_core::guardrail::duplicate_ids(all().iter().map(|rule| rule.info.id));
        assert!(duplicates.is_empty(), "reused rule ids: {duplicates:?}");
        assert!(all().iter().all(|rule| !rule.info.remediation.is_empty() && !rule.info.summary.is_empty()));
    }
}

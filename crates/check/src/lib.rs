//! `enclave-check`: guardrails over Kubernetes manifests anyone wrote, and over enclave's own
//! plans, through one engine.
//!
//! It reads every YAML document of files, folders or stdin ([`manifest`]), expands `List`s,
//! finds the pod template in every workload kind, and runs:
//! - the manifest [`rules`]: each with a stable id, a severity, the Checkov check it corresponds
//!   to (`CKV_K8S_8` to `CKV_K8S_43` where they apply, and `CKV_K8S_49`) and a one-line
//!   remediation, with Checkov's verdicts on every overlapping check;
//! - strict [`schema`] validation against the Kubernetes OpenAPI definitions of a pinned version,
//!   bundled so it works offline.
//!
//! Findings can be accepted by annotation, for the object or for one container, or by a
//! [`Baseline`] file ([`suppress`]), and are rendered as text, JSON or SARIF 2.1.0 ([`report`]).
//! Findings of other guardrails (the network rules of `enclave-net` over a plan) enter the same
//! [`Report`] as [`Finding`]s, so they share suppression, baselines, output and exit codes.
//!
//! It is not a cluster client and does not evaluate admission policies: it reads files.
//!
//! ```
//! use enclave_check::{Options, Source, check};
//! use enclave_core::guardrail::Severity;
//!
//! let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  containers:\n  - name: app\n    image: nginx:1.27\n    securityContext: {privileged: true}\n";
//! let report = check(&[Source::new("pod.yaml", pod)], &Options::default());
//! let privileged = report.findings.iter().find(|f| f.rule == "K8S016").expect("a finding");
//! assert_eq!((privileged.line, privileged.container.as_deref()), (10, Some("app")));
//! assert_eq!(privileged.checkov_id.as_deref(), Some("CKV_K8S_16"));
//! assert!(report.fails(Severity::High));
//! ```
#![deny(missing_docs)]

use std::path::PathBuf;

use enclave_core::guardrail::Severity;
use serde::{Deserialize, Serialize};

pub mod manifest;
pub mod report;
pub mod rules;
pub mod schema;
pub mod suppress;

pub use manifest::{Object, Source, read_sources};
pub use report::Format;
pub use suppress::{Baseline, Suppressions};

/// What can go wrong reading inputs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or folder could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A manifest is binary or not UTF-8: where, as `file:line:column`, and the byte offset.
    #[error("{message}")]
    NotText {
        /// The file, line, column and byte offset of the first bad byte (never the bytes).
        message: String,
    },
    /// A baseline file is not a baseline.
    #[error("{} is not a baseline file", path.display())]
    Baseline {
        /// The path.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Id of the finding for a file that is not valid YAML.
pub const YAML_RULE: &str = "YAML001";
/// Id of the finding for a duplicate key (the last one is what consumers see).
pub const DUPLICATE_KEY_RULE: &str = "YAML002";
/// Id of schema violations.
pub const SCHEMA_RULE: &str = "SCHEMA001";

/// A rule's description, for reports and SARIF: manifest rules, the YAML and schema checks, and
/// any domain's guardrails (one type for all, from `enclave-core`).
pub use enclave_core::guardrail::RuleInfo;

/// Files that are not YAML.
const YAML_INFO: RuleInfo = RuleInfo {
    id: YAML_RULE,
    name: "yaml-syntax",
    checkov_id: None,
    // Nothing else in the file was checked: no threshold may let that pass.
    severity: Severity::Critical,
    summary: "Files are valid YAML",
    remediation: "fix the syntax at the reported line; nothing else in the file was checked",
};

/// Duplicate keys.
const DUPLICATE_KEY_INFO: RuleInfo = RuleInfo {
    id: DUPLICATE_KEY_RULE,
    name: "yaml-duplicate-key",
    checkov_id: None,
    severity: Severity::Medium,
    summary: "Mappings have no duplicate keys",
    remediation: "remove one of the two keys: YAML forbids duplicates and tools disagree on which one wins",
};

/// Schema violations.
const SCHEMA_INFO: RuleInfo = RuleInfo {
    id: SCHEMA_RULE,
    name: "kubernetes-schema",
    checkov_id: None,
    severity: Severity::High,
    summary: "Objects match the Kubernetes OpenAPI schema strictly (no unknown fields)",
    remediation: "fix the field named in the message; the API server would reject or silently drop it",
};

/// Every rule this crate reports under: the manifest rules, then YAML and schema.
pub fn catalogue() -> Vec<RuleInfo> {
    let mut rules: Vec<RuleInfo> = rules::all().iter().map(|rule| rule.info.clone()).collect();
    rules.extend([YAML_INFO, DUPLICATE_KEY_INFO, SCHEMA_INFO]);
    rules
}

/// One problem, located.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Rule id (`K8S016`, `SCHEMA001`, `NET003`).
    pub rule: String,
    /// Rule name (`privileged`; empty when the rule has none).
    pub rule_name: String,
    /// The Checkov check it corresponds to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkov_id: Option<String>,
    /// Severity.
    pub severity: Severity,
    /// File, as given.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// Object kind.
    pub kind: Option<String>,
    /// Object namespace, as written (`None` when it is not set).
    pub namespace: Option<String>,
    /// Object name.
    pub name: Option<String>,
    /// Container, when the finding is about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub remediation: String,
}

impl Finding {
    /// The findings of any domain's guardrails (a `guardrail::Report` over its model), with
    /// each rule's metadata from `rules` and each address placed by `place` at a file and line
    /// (the spec entry it comes from). The resource's kind, account and name fill `kind`,
    /// `namespace` and `name`.
    pub fn from_guardrails(
        report: &enclave_core::guardrail::Report,
        rules: &[RuleInfo],
        place: impl Fn(&enclave_core::Address) -> (String, u32),
    ) -> Vec<Finding> {
        report
            .findings
            .iter()
            .map(|finding| {
                let info = rules.iter().find(|rule| rule.id == finding.rule);
                let (file, line) = place(&finding.address);
                Finding {
                    rule: finding.rule.clone(),
                    rule_name: info.map(|rule| rule.name.to_owned()).unwrap_or_default(),
                    checkov_id: info.and_then(|rule| rule.checkov_id).map(str::to_owned),
                    severity: finding.severity,
                    file,
                    line,
                    kind: Some(finding.address.kind().to_owned()),
                    namespace: Some(finding.address.account().to_owned()),
                    name: Some(finding.address.name().to_owned()),
                    container: None,
                    message: format!("{}: {}", finding.address, finding.message),
                    remediation: info.map(|rule| rule.remediation.to_owned()).unwrap_or_default(),
                }
            })
            .collect()
    }

    /// A finding of `rule` about `object`.
    fn about(rule: &RuleInfo, object: Option<&Object>, file: &str, line: u32, message: String) -> Self {
        Finding {
            rule: rule.id.to_owned(),
            rule_name: rule.name.to_owned(),
            checkov_id: rule.checkov_id.map(str::to_owned),
            severity: rule.severity,
            file: file.to_owned(),
            line,
            kind: object.and_then(|o| o.kind.clone()),
            namespace: object.and_then(|o| o.namespace.clone()),
            name: object.and_then(|o| o.name.clone()),
            container: None,
            message,
            remediation: rule.remediation.to_owned(),
        }
    }
}

/// A finding accepted by an annotation, with the reason given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppressed {
    /// The finding.
    #[serde(flatten)]
    pub finding: Finding,
    /// The reason written in the annotation.
    pub reason: String,
}

/// Counts of what was read and validated.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Files read.
    pub files: usize,
    /// Non-empty YAML documents.
    pub documents: usize,
    /// Kubernetes objects (`List` items counted one by one).
    pub objects: usize,
    /// Objects valid against their schema.
    pub schema_valid: usize,
    /// Objects that break their schema.
    pub schema_invalid: usize,
    /// Objects whose kind has no bundled schema (custom resources), not validated.
    pub schema_unknown: usize,
    /// Documents skipped because they are not Kubernetes objects (no `apiVersion`, no `kind`).
    pub not_kubernetes: usize,
}

impl std::ops::AddAssign for Summary {
    fn add_assign(&mut self, other: Summary) {
        self.files += other.files;
        self.documents += other.documents;
        self.objects += other.objects;
        self.schema_valid += other.schema_valid;
        self.schema_invalid += other.schema_invalid;
        self.schema_unknown += other.schema_unknown;
        self.not_kubernetes += other.not_kubernetes;
    }
}

/// What to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Run the manifest rules.
    pub rules: bool,
    /// Validate against the bundled schema.
    pub schema: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { rules: true, schema: true }
    }
}

/// The outcome of a check.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Active findings, by file, line and rule.
    pub findings: Vec<Finding>,
    /// Findings accepted by annotation.
    pub suppressed: Vec<Suppressed>,
    /// Findings accepted by the baseline.
    pub baselined: Vec<Finding>,
    /// What was read.
    pub summary: Summary,
}

impl Report {
    /// Whether an active finding reaches `threshold`.
    pub fn fails(&self, threshold: Severity) -> bool {
        self.findings.iter().any(|finding| finding.severity >= threshold)
    }

    /// Moves the findings `baseline` accepts from `findings` to `baselined`.
    pub fn apply_baseline(&mut self, baseline: &Baseline) {
        let (accepted, active) = std::mem::take(&mut self.findings).into_iter().partition(|f| baseline.contains(f));
        self.findings = active;
        self.baselined = accepted;
    }

    /// Moves the findings `accepted` gives a reason for from `findings` to `suppressed` (an
    /// exception accepted elsewhere than in the object's own annotations, such as the spec's
    /// node-agent exceptions).
    pub fn accept(&mut self, accepted: impl Fn(&Finding) -> Option<String>) {
        let mut active = Vec::new();
        for finding in std::mem::take(&mut self.findings) {
            match accepted(&finding) {
                Some(reason) => self.suppressed.push(Suppressed { finding, reason }),
                None => active.push(finding),
            }
        }
        self.findings = active;
    }

    /// Adds findings from another guardrail (they keep their own rules and places).
    pub fn extend(&mut self, findings: impl IntoIterator<Item = Finding>) {
        self.findings.extend(findings);
        sort(&mut self.findings);
    }

    fn merge(&mut self, other: Report) {
        self.findings.extend(other.findings);
        self.suppressed.extend(other.suppressed);
        self.summary += other.summary;
    }
}

fn order(a: &Finding, b: &Finding) -> std::cmp::Ordering {
    // Total: workers finish in any order, the report must not.
    (&a.file, a.line, &a.rule, &a.container, &a.message).cmp(&(&b.file, b.line, &b.rule, &b.container, &b.message))
}

fn sort(findings: &mut [Finding]) {
    findings.sort_by(order);
}

/// Checks every source: rules and schema per `options`. Sources are spread over the machine's
/// cores, each worker taking the next unchecked file (files differ a lot in size, so fixed
/// shares would leave one core with most of the work); the schema bundle is read meanwhile. The
/// report is the same whatever the number of cores.
pub fn check(sources: &[Source], options: &Options) -> Report {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(sources.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut report = Report::default();
    let parts: Vec<Report> = std::thread::scope(|scope| {
        if options.schema {
            scope.spawn(|| {
                let _ = schema::bundled();
            });
        }
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut acc = Report::default();
                    while let Some(source) = sources.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) {
                        acc.merge(check_source(source, options));
                    }
                    acc
                })
            })
            .collect();
        // A panic is a bug: it must end the run, not drop that worker's files from the report.
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    });
    for part in parts {
        report.merge(part);
    }
    sort(&mut report.findings);
    report.suppressed.sort_by(|a, b| order(&a.finding, &b.finding));
    report
}

fn check_source(source: &Source, options: &Options) -> Report {
    let mut report = Report { summary: Summary { files: 1, ..Summary::default() }, ..Report::default() };
    let parsed = manifest::parse(source);
    report.summary.documents = parsed.documents;
    report.summary.objects = parsed.objects.len();
    if let Some(error) = &parsed.error {
        let message = format!("not valid YAML at column {}: {}", error.column, error.message);
        report.findings.push(Finding::about(&YAML_INFO, None, &source.name, error.line, message));
        return report;
    }
    for duplicate in &parsed.duplicates {
        let message = format!("{} (the last one is used)", duplicate.message);
        report.findings.push(Finding::about(&DUPLICATE_KEY_INFO, None, &source.name, duplicate.line, message));
    }
    report.summary.not_kubernetes = parsed.not_objects.len();
    for object in &parsed.objects {
        let mut findings = Vec::new();
        if options.rules {
            for rule in rules::all() {
                if let rules::Verdict::Fail(hits) = rule.evaluate(object) {
                    for hit in hits {
                        let mut finding = Finding::about(&rule.info, Some(object), &source.name, hit.line, hit.message);
                        finding.container = hit.container;
                        findings.push(finding);
                    }
                }
            }
        }
        if options.schema {
            match schema::bundled().validate(object) {
                schema::Validation::Valid => report.summary.schema_valid += 1,
                schema::Validation::NoSchema => report.summary.schema_unknown += 1,
                schema::Validation::Invalid(violations) => {
                    report.summary.schema_invalid += 1;
                    for violation in violations {
                        let message = format!("{}: {}", violation.path, violation.message);
                        let meta = &SCHEMA_INFO;
                        findings.push(Finding::about(meta, Some(object), &source.name, violation.line, message));
                    }
                }
            }
        }
        if findings.is_empty() {
            continue;
        }
        let suppressions = Suppressions::of(object);
        for finding in findings {
            match suppressions.reason(&finding) {
                Some(reason) => report.suppressed.push(Suppressed { reason: reason.to_owned(), finding }),
                None => report.findings.push(finding),
            }
        }
    }
    report
}

//! Rendering a [`Report`]: text for people, JSON for programs, SARIF 2.1.0 for code scanning.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::str::FromStr;

use enclave_core::guardrail::Severity;
use serde_sarif::sarif;

use crate::suppress::Fingerprint;
use crate::{Finding, Report, RuleInfo};

/// An output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Grouped by file, with line numbers.
    Text,
    /// The [`Report`] as JSON.
    Json,
    /// SARIF 2.1.0.
    Sarif,
}

impl FromStr for Format {
    type Err = String;
    fn from_str(value: &str) -> Result<Self, String> {
        match value {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            "sarif" => Ok(Format::Sarif),
            other => Err(format!("unknown format `{other}`; expected text, json or sarif")),
        }
    }
}

/// Renders `report`; `rules` describes every rule its findings may name.
pub fn render(report: &Report, format: Format, rules: &[RuleInfo]) -> String {
    match format {
        Format::Text => text(report),
        Format::Json => {
            let mut json = serde_json::to_string_pretty(report).unwrap_or_default();
            json.push('\n');
            json
        }
        Format::Sarif => {
            let mut json = serde_json::to_string_pretty(&sarif(report, rules)).unwrap_or_default();
            json.push('\n');
            json
        }
    }
}

fn object_label(finding: &Finding) -> String {
    let mut label = String::new();
    if let Some(kind) = &finding.kind {
        label.push_str(kind);
        label.push(' ');
    }
    if let Some(namespace) = &finding.namespace {
        let _ = write!(label, "{namespace}/");
    }
    label.push_str(finding.name.as_deref().unwrap_or("-"));
    if let Some(container) = &finding.container {
        let _ = write!(label, " container {container}");
    }
    label
}

/// Findings grouped by file, each with its line, severity, rule, object and message, then the
/// remediation of every rule that fired, then the totals.
fn text(report: &Report) -> String {
    let mut out = String::new();
    let mut current: Option<&str> = None;
    let mut fired: BTreeMap<&str, &str> = BTreeMap::new();
    for finding in &report.findings {
        if current != Some(finding.file.as_str()) {
            if current.is_some() {
                out.push('\n');
            }
            let _ = writeln!(out, "{}", finding.file);
            current = Some(&finding.file);
        }
        let checkov = finding.checkov_id.as_deref().map(|id| format!(" ({id})")).unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:>5}  {:<8} {}{checkov}  {}: {}",
            finding.line,
            finding.severity.to_string(),
            finding.rule,
            object_label(finding),
            finding.message
        );
        fired.insert(&finding.rule, &finding.remediation);
    }
    if !fired.is_empty() {
        out.push_str("\nHow to fix:\n");
        for (rule, remediation) in &fired {
            let _ = writeln!(out, "  {rule}: {remediation}");
        }
    }
    let mut counts: BTreeMap<std::cmp::Reverse<Severity>, usize> = BTreeMap::new();
    for finding in &report.findings {
        *counts.entry(std::cmp::Reverse(finding.severity)).or_default() += 1;
    }
    let by_severity: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {}", s.0)).collect();
    let summary = &report.summary;
    let _ = writeln!(
        out,
        "\n{} finding{}{} in {} file{}, {} object{}; {} suppressed by annotation, {} accepted by the baseline",
        report.findings.len(),
        if report.findings.len() == 1 { "" } else { "s" },
        if by_severity.is_empty() { String::new() } else { format!(" ({})", by_severity.join(", ")) },
        summary.files,
        if summary.files == 1 { "" } else { "s" },
        summary.objects,
        if summary.objects == 1 { "" } else { "s" },
        report.suppressed.len(),
        report.baselined.len(),
    );
    if summary.schema_valid + summary.schema_invalid + summary.schema_unknown > 0 {
        let _ = writeln!(
            out,
            "schema (Kubernetes {}): {} valid, {} invalid, {} without a schema (custom resources, not validated)",
            crate::schema::KUBERNETES_VERSION,
            summary.schema_valid,
            summary.schema_invalid,
            summary.schema_unknown
        );
    }
    if summary.not_kubernetes > 0 {
        let _ = writeln!(
            out,
            "skipped {} document{} that are not Kubernetes objects (no apiVersion and no kind)",
            summary.not_kubernetes,
            if summary.not_kubernetes == 1 { "" } else { "s" }
        );
    }
    out
}

fn result_level(severity: Severity) -> sarif::ResultLevel {
    match severity {
        Severity::Critical | Severity::High => sarif::ResultLevel::Error,
        Severity::Medium => sarif::ResultLevel::Warning,
        Severity::Low | Severity::Info => sarif::ResultLevel::Note,
    }
}

/// A relative path as a URI reference: characters that would end or escape it are encoded.
fn uri(path: &str) -> String {
    let mut uri = String::with_capacity(path.len());
    for byte in path.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => uri.push(byte as char),
            b'\\' => uri.push('/'),
            _ => {
                let _ = write!(uri, "%{byte:02X}");
            }
        }
    }
    uri
}

/// A stable fingerprint for code scanning to track a finding across runs.
fn fingerprint(finding: &Finding) -> String {
    let print = Fingerprint::of(finding);
    let key = serde_json::to_string(&print).unwrap_or_default();
    // FNV-1a: stable across platforms and releases, unlike `DefaultHasher`.
    let hash = key
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3));
    format!("{hash:016x}")
}

fn result(finding: &Finding, index: &BTreeMap<&str, usize>, suppression: Option<(&str, &str)>) -> sarif::Result {
    let region = sarif::Region::builder().start_line(i64::from(finding.line.max(1))).build();
    let location = sarif::Location::builder()
        .physical_location(
            sarif::PhysicalLocation::builder()
                .artifact_location(sarif::ArtifactLocation::builder().uri(uri(&finding.file)).build())
                .region(region)
                .build(),
        )
        .build();
    let mut properties = BTreeMap::new();
    properties.insert("severity".to_owned(), serde_json::Value::from(finding.severity.to_string()));
    for (key, value) in [
        ("kind", &finding.kind),
        ("namespace", &finding.namespace),
        ("name", &finding.name),
        ("container", &finding.container),
    ] {
        if let Some(value) = value {
            properties.insert(key.to_owned(), serde_json::Value::from(value.as_str()));
        }
    }
    let text = format!("{}: {}", object_label(finding), finding.message);
    let mut fingerprints = BTreeMap::new();
    fingerprints.insert("enclaveFinding/v1".to_owned(), fingerprint(finding));
    let builder = sarif::Result::builder()
        .rule_id(finding.rule.clone())
        .rule_index(index.get(finding.rule.as_str()).map_or(-1, |i| *i as i64))
        .level(result_level(finding.severity))
        .message(sarif::Message::builder().text(text).build())
        .locations(vec![location])
        .partial_fingerprints(fingerprints)
        .properties(sarif::PropertyBag::builder().additional_properties(properties).build());
    match suppression {
        None => builder.build(),
        Some((kind, justification)) => builder
            .suppressions(vec![
                sarif::Suppression::builder().kind(serde_json::Value::from(kind)).justification(justification).build(),
            ])
            .build(),
    }
}

/// The report as one SARIF run; suppressed and baselined findings are kept, marked as such, so
/// code scanning shows them as dismissed rather than forgetting them.
fn sarif(report: &Report, rules: &[RuleInfo]) -> sarif::Sarif {
    let index: BTreeMap<&str, usize> = rules.iter().enumerate().map(|(i, rule)| (rule.id, i)).collect();
    let descriptors: Vec<sarif::ReportingDescriptor> = rules
        .iter()
        .map(|rule| {
            let mut properties = BTreeMap::new();
            properties.insert("severity".to_owned(), serde_json::Value::from(rule.severity.to_string()));
            if let Some(checkov) = rule.checkov_id {
                properties.insert("checkov_id".to_owned(), serde_json::Value::from(checkov));
            }
            let mut descriptor = sarif::ReportingDescriptor::builder()
                .id(rule.id)
                .name(rule.name)
                .short_description(sarif::MultiformatMessageString::builder().text(rule.summary).build())
                .help(sarif::MultiformatMessageString::builder().text(rule.remediation).build())
                .default_configuration(
                    sarif::ReportingConfiguration::builder()
                        .level(serde_json::to_value(result_level(rule.severity)).unwrap_or_default())
                        .build(),
                )
                .properties(sarif::PropertyBag::builder().additional_properties(properties).build())
                .build();
            // SARIF wants a name only when it differs from the id; guardrails without one omit it.
            if rule.name.is_empty() {
                descriptor.name = None;
            }
            descriptor
        })
        .collect();
    let mut results: Vec<sarif::Result> = report.findings.iter().map(|f| result(f, &index, None)).collect();
    results.extend(report.suppressed.iter().map(|s| result(&s.finding, &index, Some(("inSource", &s.reason)))));
    results.extend(
        report.baselined.iter().map(|f| result(f, &index, Some(("external", "accepted by the baseline file")))),
    );
    let driver = sarif::ToolComponent::builder()
        .name("enclave")
        .semantic_version(env!("CARGO_PKG_VERSION"))
        .information_uri("https://example.invalid/enclave")
        .rules(descriptors)
        .build();
    let run = sarif::Run::builder().tool(sarif::Tool::builder().driver(driver).build()).results(results).build();
    sarif::Sarif::builder().version(serde_json::Value::from("2.1.0")).schema(sarif::SCHEMA_URL).runs(vec![run]).build()
}

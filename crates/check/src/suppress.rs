//! Accepting findings on purpose: annotations on the object (for the whole object or for one
//! container) and a baseline file of findings that already existed.

use std::collections::BTreeSet;
use std::path::Path;

use enclave_core::yaml::Value;
use serde::{Deserialize, Serialize};

use crate::manifest::{Object, at};
use crate::{Error, Finding, Result};

/// Annotation that skips rules for the whole object: `enclave.dev/skip: "K8S020=reason, ..."`.
pub const SKIP_ANNOTATION: &str = enclave_core::exception::CHECK_SKIP_ANNOTATION;
/// Prefix of the per-container annotation: `skip.enclave.dev/<container>: "K8S022=reason"`.
pub const CONTAINER_SKIP_PREFIX: &str = "skip.enclave.dev/";
/// Checkov's own skip annotations, honoured for the whole object (`checkov.io/skip1: CKV_K8S_20=reason`).
const CHECKOV_SKIP_PREFIXES: &[&str] = &["checkov.io/skip", "bridgecrew.io/skip", "cortex.io/skip"];

/// One accepted rule: which rule, for which container (all when `None`), and why.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Skip {
    rule: String,
    container: Option<String>,
    reason: String,
}

/// The skips an object declares, in its own metadata or its pod template's.
#[derive(Clone, Debug, Default)]
pub struct Suppressions {
    skips: Vec<Skip>,
}

impl Suppressions {
    /// Reads the annotations of `object` and of its pod template, if it has one.
    pub fn of(object: &Object) -> Self {
        let mut skips = Vec::new();
        let template_metadata = object.pod_template().and_then(|(_, metadata)| metadata);
        let own = object.metadata();
        for metadata in [own, template_metadata].into_iter().flatten() {
            let Some(Value::Map(annotations)) = at(Some(metadata), &["annotations"]).map(|a| &a.value) else {
                continue;
            };
            for entry in annotations {
                let Value::String(value) = &entry.value.value else { continue };
                let container = if let Some(name) = entry.key.strip_prefix(CONTAINER_SKIP_PREFIX) {
                    Some(name.to_owned())
                } else if entry.key == SKIP_ANNOTATION
                    || CHECKOV_SKIP_PREFIXES.iter().any(|prefix| entry.key.contains(prefix))
                {
                    None
                } else {
                    continue;
                };
                for item in value.split(',').map(str::trim).filter(|item| !item.is_empty()) {
                    let (rule, reason) = item.split_once('=').unwrap_or((item, "no reason given"));
                    skips.push(Skip {
                        rule: rule.trim().to_owned(),
                        container: container.clone(),
                        reason: reason.trim().to_owned(),
                    });
                }
            }
        }
        Suppressions { skips }
    }

    /// The reason `finding` is accepted, if it is. A skip names the rule by our id, its name or
    /// its Checkov id.
    pub fn reason(&self, finding: &Finding) -> Option<&str> {
        self.skips
            .iter()
            .find(|skip| {
                let rule_matches = skip.rule == finding.rule
                    || skip.rule == finding.rule_name
                    || finding.checkov_id.as_deref() == Some(skip.rule.as_str());
                let container_matches =
                    skip.container.is_none() || skip.container.as_deref() == finding.container.as_deref();
                rule_matches && container_matches
            })
            .map(|skip| skip.reason.as_str())
    }
}

/// What identifies a finding across edits: no line, so moving code around does not resurrect
/// accepted findings. Manifest rules are told apart by object and container; findings of other
/// rules (schema, duplicate keys, network) also by their message, which names the field or the
/// resource, so accepting one does not accept the next one on the same object.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Rule id.
    pub rule: String,
    /// File, as given on the command line.
    pub file: String,
    /// Object kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Object namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Object name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// What tells apart two findings of one rule on one object, when the object and container
    /// do not (the message of schema, YAML and network findings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Fingerprint {
    /// The fingerprint of `finding`.
    pub fn of(finding: &Finding) -> Self {
        let manifest_rule = crate::rules::find(&finding.rule).is_some_and(|rule| rule.info.id == finding.rule);
        Fingerprint {
            rule: finding.rule.clone(),
            file: finding.file.trim_start_matches("./").to_owned(),
            kind: finding.kind.clone(),
            namespace: finding.namespace.clone(),
            name: finding.name.clone(),
            container: finding.container.clone(),
            detail: (!manifest_rule).then(|| finding.message.clone()),
        }
    }
}

/// Findings accepted as they were when the baseline was written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    /// Format version, 1.
    pub version: u32,
    /// The accepted findings.
    pub findings: BTreeSet<Fingerprint>,
}

impl Baseline {
    /// A baseline accepting every one of `findings`, except files that are not YAML: nothing in
    /// them was checked, so they can never be accepted.
    pub fn of<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> Self {
        let findings = findings.into_iter().filter(|finding| finding.rule != crate::YAML_RULE);
        Baseline { version: 1, findings: findings.map(Fingerprint::of).collect() }
    }

    /// Reads a baseline file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.to_owned(), source })?;
        serde_json::from_str(&text).map_err(|source| Error::Baseline { path: path.to_owned(), source })
    }

    /// The baseline as pretty JSON, one fingerprint per entry, sorted.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Whether `finding` was accepted.
    pub fn contains(&self, finding: &Finding) -> bool {
        self.findings.contains(&Fingerprint::of(finding))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Options, Source, check};

    #[test]
    fn baselines_tell_schema_findings_apart_and_never_accept_broken_yaml() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: x, colour: blue}\n";
        let report = check(&[Source::new("./a.yaml", text)], &Options::default());
        let baseline = Baseline::of(&report.findings);
        let edited = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: x, colour: blue, size: 3}\n";
        let mut later = check(&[Source::new("a.yaml", edited)], &Options::default());
        later.apply_baseline(&baseline);
        let messages: Vec<&str> = later.findings.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(messages, ["metadata.size: unknown field `size`"]);
        assert_eq!(later.baselined.len(), 1, "the known problem stays accepted, file named either way");

        let broken = check(&[Source::new("b.yaml", "a: [\n")], &Options::default());
        assert_eq!(broken.findings[0].rule, crate::YAML_RULE);
        assert!(Baseline::of(&broken.findings).findings.is_empty());
    }
}

//! The guardrail framework: rules with stable ids that inspect a subject and report findings.
//!
//! Rules are written in the crate that owns the subject (`enclave-net` checks the network
//! model); this module only defines what a rule and a finding are, and runs rule sets.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::address::Address;

/// How bad a finding is. Ordered: `Info < Low < Medium < High < Critical`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Hardening.
    Low,
    /// Weakens a control.
    Medium,
    /// Breaks a control.
    High,
    /// Opens a path an attacker can use.
    Critical,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        })
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(value: &str) -> Result<Self, String> {
        match value {
            "info" => Ok(Severity::Info),
            "low" => Ok(Severity::Low),
            "medium" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            _ => Err("unknown severity; expected info, low, medium, high or critical".to_owned()),
        }
    }
}

/// What a rule is, for reports and SARIF: the one metadata type every guardrail shares, the
/// manifest rules of `enclave check` and every domain's rules alike, so any domain's findings
/// reach `enclave check`, its JSON and its SARIF without a bridge of their own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleInfo {
    /// Stable id (`NET001`, `K8S016`), never reused for another meaning.
    pub id: &'static str,
    /// Short name (empty when the rule has none).
    pub name: &'static str,
    /// The corresponding Checkov check, where there is one.
    pub checkov_id: Option<&'static str>,
    /// Severity of its findings.
    pub severity: Severity,
    /// One line on what it requires.
    pub summary: &'static str,
    /// One line on how to fix a finding.
    pub remediation: &'static str,
}

/// One problem a rule found.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Finding {
    /// The rule's stable id (`NET001`).
    pub rule: String,
    /// The rule's severity.
    pub severity: Severity,
    /// The resource the finding is about.
    pub address: Address,
    /// What is wrong, for a reader.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {} {}: {}", self.severity, self.rule, self.address, self.message)
    }
}

/// A rule's hit before the rule's metadata is attached: where, and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// What it is about.
    pub address: Address,
    /// What is wrong.
    pub message: String,
}

impl Hit {
    /// A hit on `address`.
    pub fn new(address: Address, message: impl Into<String>) -> Self {
        Hit { address, message: message.into() }
    }
}

/// The ids that occur more than once in `ids`, wherever they are (not only next to each other),
/// each once, sorted. Rule catalogues test with it that no id is reused.
pub fn duplicate_ids<'a>(ids: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = std::collections::BTreeSet::new();
    let mut duplicates = std::collections::BTreeSet::new();
    for id in ids {
        if !seen.insert(id) {
            duplicates.insert(id);
        }
    }
    duplicates.into_iter().collect()
}

/// Declares a guardrail: a unit struct `$name` implementing [`Rule`] over `$subject`, with its
/// static [`RuleInfo`]. Every domain writes its rules with it (through a one-line local macro
/// naming its subject):
///
/// ```
/// use enclave_core::Address;
/// use enclave_core::guardrail::{Hit, Rule, Severity};
/// enclave_core::guardrail_rule!(impl for [u32], NoZero, "EX001", None, Severity::Low,
///     "no value is zero", "use 1 or more", |values| {
///         let at = Address::new("prod", "example", "value", "zero").expect("an address");
///         values.iter().filter(|v| **v == 0).map(|_| Hit::new(at.clone(), "zero")).collect()
///     });
/// assert_eq!(NoZero.info().id, "EX001");
/// assert_eq!(NoZero.check(&[1, 0]).len(), 1);
/// ```
#[macro_export]
macro_rules! guardrail_rule {
    (impl $(<$lifetime:lifetime>)? for $subject:ty, $name:ident, $id:literal, $checkov:expr, $severity:expr,
     $summary:literal, $remediation:literal, |$model:ident| $body:block) => {
        #[doc = $summary]
        #[derive(Clone, Copy, Debug, Default)]
        pub struct $name;

        impl $(<$lifetime>)? $crate::guardrail::Rule<$subject> for $name {
            fn info(&self) -> &'static $crate::guardrail::RuleInfo {
                static INFO: $crate::guardrail::RuleInfo = $crate::guardrail::RuleInfo {
                    id: $id,
                    name: "",
                    checkov_id: $checkov,
                    severity: $severity,
                    summary: $summary,
                    remediation: $remediation,
                };
                &INFO
            }
            fn check(&self, $model: &$subject) -> Vec<$crate::guardrail::Hit> $body
        }
    };
}

/// A guardrail over subjects of type `T`.
pub trait Rule<T: ?Sized>: Send + Sync {
    /// What the rule is: id, name, Checkov id, severity, summary, remediation.
    fn info(&self) -> &'static RuleInfo;
    /// Everything in `subject` that breaks the rule.
    fn check(&self, subject: &T) -> Vec<Hit>;

    /// Stable id, never reused for another meaning.
    fn id(&self) -> &'static str {
        self.info().id
    }
    /// Severity of every finding of this rule.
    fn severity(&self) -> Severity {
        self.info().severity
    }
    /// One line on what the rule requires.
    fn summary(&self) -> &'static str {
        self.info().summary
    }
    /// One line on how to fix a finding.
    fn remediation(&self) -> &'static str {
        self.info().remediation
    }
}

/// An ordered collection of rules over one subject type.
pub struct RuleSet<T: ?Sized> {
    rules: Vec<Box<dyn Rule<T>>>,
}

impl<T: ?Sized> Default for RuleSet<T> {
    fn default() -> Self {
        RuleSet { rules: Vec::new() }
    }
}

impl<T: ?Sized> RuleSet<T> {
    /// Adds a rule.
    #[must_use]
    pub fn with(mut self, rule: impl Rule<T> + 'static) -> Self {
        self.rules.push(Box::new(rule));
        self
    }

    /// The rules, in order.
    pub fn rules(&self) -> impl Iterator<Item = &dyn Rule<T>> {
        self.rules.iter().map(|rule| rule.as_ref())
    }

    /// What every rule is, in order: for `enclave check --list-rules`, reports and SARIF.
    pub fn infos(&self) -> Vec<RuleInfo> {
        self.rules.iter().map(|rule| rule.info().clone()).collect()
    }

    /// Runs every rule; findings are sorted by severity (worst first), then rule and address.
    pub fn run(&self, subject: &T) -> Report {
        let findings: Vec<Finding> = self
            .rules
            .iter()
            .flat_map(|rule| {
                rule.check(subject).into_iter().map(move |hit| Finding {
                    rule: rule.id().to_owned(),
                    severity: rule.severity(),
                    address: hit.address,
                    message: hit.message,
                })
            })
            .collect();
        let mut report = Report { findings };
        report.sort();
        report
    }
}

/// The findings of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Findings, worst first.
    pub findings: Vec<Finding>,
}

impl Report {
    /// Findings at or above `threshold`.
    pub fn at_or_above(&self, threshold: Severity) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |finding| finding.severity >= threshold)
    }

    /// Whether any finding reaches `threshold`.
    pub fn fails(&self, threshold: Severity) -> bool {
        self.at_or_above(threshold).next().is_some()
    }

    /// Adds the findings of `other` (another domain's rules), keeping the report's order.
    pub fn merge(&mut self, other: Report) {
        self.findings.extend(other.findings);
        self.sort();
    }

    /// Worst first, then by rule and address.
    fn sort(&mut self) {
        self.findings.sort_by(|a, b| {
            b.severity.cmp(&a.severity).then_with(|| (&a.rule, &a.address).cmp(&(&b.rule, &b.address)))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Odd;
    static ODD: RuleInfo = RuleInfo {
        id: "T001",
        name: "even",
        checkov_id: None,
        severity: Severity::High,
        summary: "numbers are even",
        remediation: "add one",
    };
    impl Rule<[i32]> for Odd {
        fn info(&self) -> &'static RuleInfo {
            &ODD
        }
        fn check(&self, subject: &[i32]) -> Vec<Hit> {
            subject
                .iter()
                .filter(|n| *n % 2 != 0)
                .map(|n| Hit::new(format!("dev/test/number/n{n}").parse().expect("address"), "odd"))
                .collect()
        }
    }

    #[test]
    fn rule_sets_attach_rule_metadata_and_threshold_by_severity() {
        let report = RuleSet::default().with(Odd).run(&[1, 2, 3][..]);
        assert_eq!(report.findings.len(), 2);
        assert_eq!(report.findings[0].to_string(), "[high] T001 dev/test/number/n1: odd");
        assert_eq!(RuleSet::default().with(Odd).infos(), std::slice::from_ref(&ODD));
        assert!(report.fails(Severity::Medium));
        assert!(!report.fails(Severity::Critical));
    }

    #[test]
    fn duplicate_ids_are_found_wherever_they_are() {
        // `dedup()` on this unsorted list would have found nothing: the two K8S008 are apart.
        assert_eq!(duplicate_ids(["K8S008", "K8S009", "K8S008", "NET001"]), ["K8S008"]);
        assert!(duplicate_ids(["NET001", "NET002"]).is_empty());
    }
}

//! Scan finding severities, in ECR's words (pure: the CLI parses `--fail-on` without the SDK).

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// How severe a finding is, in ECR's words; ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// `INFORMATIONAL` or `UNDEFINED`.
    Informational,
    /// `LOW`.
    Low,
    /// `MEDIUM`.
    Medium,
    /// `HIGH`.
    High,
    /// `CRITICAL`.
    Critical,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 5] =
        [Severity::Informational, Severity::Low, Severity::Medium, Severity::High, Severity::Critical];

    /// Its name in lower case.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Informational => "informational",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// ECR's severity text (any case); anything unknown counts as informational.
    pub fn from_ecr(text: &str) -> Severity {
        text.parse().unwrap_or(Severity::Informational)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text that names no severity.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a severity (informational, low, medium, high, critical)")]
pub struct UnknownSeverity;

impl FromStr for Severity {
    type Err = UnknownSeverity;
    fn from_str(text: &str) -> Result<Self, UnknownSeverity> {
        let lower = text.to_ascii_lowercase();
        if lower == "undefined" {
            return Ok(Severity::Informational);
        }
        Severity::ALL.into_iter().find(|severity| severity.as_str() == lower).ok_or(UnknownSeverity)
    }
}

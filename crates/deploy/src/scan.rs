//! The scan gate: an image's scan findings from ECR (basic and enhanced scanning), waited for
//! while the scan runs, and judged against a severity threshold. `enclave deploy scan-gate`
//! exits 3 when any finding is at or above it.

use aws_sdk_ecr::types::{ImageIdentifier, ScanStatus};
use enclave_aws::reconcile::{self as toolkit, WaitState, Waits, found};
use serde::Serialize;

use crate::clients::{CallError, Clients, Missing, call_error};

pub use crate::severity::{Severity, UnknownSeverity};

/// One finding of a scan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The vulnerability (`CVE-2024-1234`).
    pub name: String,
    /// Its severity.
    pub severity: Severity,
    /// The affected package, when the scan names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// Where to read about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
}

/// An image's completed scan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ScanReport {
    /// Repository name.
    pub repository: String,
    /// The image's tag.
    pub tag: String,
    /// Every finding, worst first.
    pub findings: Vec<Finding>,
}

impl ScanReport {
    /// The findings at or above `threshold`.
    pub fn at_or_above(&self, threshold: Severity) -> Vec<&Finding> {
        self.findings.iter().filter(|finding| finding.severity >= threshold).collect()
    }
}

/// Why no verdict could be reached.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// ECR has no such image, or no scan of it (is scan on push on?).
    #[error("{repository}:{tag}: no scan of this image (is it pushed, and is scan on push on?)")]
    NoScan {
        /// Repository name.
        repository: String,
        /// Tag.
        tag: String,
    },
    /// The scan itself failed or the image cannot be scanned.
    #[error("{repository}:{tag}: the scan ended {status}: {reason}")]
    Failed {
        /// Repository name.
        repository: String,
        /// Tag.
        tag: String,
        /// The scan status.
        status: String,
        /// ECR's description.
        reason: String,
    },
    /// A call failed.
    #[error(transparent)]
    Call(#[from] CallError),
}

/// The findings of `repository:tag`, once its scan is complete (waited for within `waits`).
pub async fn scan_report(
    clients: &Clients,
    repository: &str,
    tag: &str,
    waits: Waits,
) -> Result<ScanReport, ScanError> {
    let no_scan = || ScanError::NoScan { repository: repository.to_owned(), tag: tag.to_owned() };
    let image = ImageIdentifier::builder().image_tag(tag).build();
    let describe = |token: Option<String>| {
        clients
            .ecr
            .describe_image_scan_findings()
            .repository_name(repository)
            .image_id(image.clone())
            .set_next_token(token)
            .max_results(1000)
            .send()
    };
    let address = enclave_core::Address::new("registry", "deploy", "ecr-repository", repository)
        .map_err(|error| CallError::enclave(error.to_string()))?;
    let status = std::sync::Mutex::new(None);
    toolkit::wait(&address, &format!("the scan of {repository}:{tag}"), waits, || async {
        let out = found(describe(None).await.map_err(call_error("ecr:DescribeImageScanFindings")), Missing::Image)?;
        let Some(out) = out else {
            return Ok(WaitState::Done);
        };
        let state = out.image_scan_status().and_then(|s| s.status()).cloned();
        let reason = out.image_scan_status().and_then(|s| s.description()).unwrap_or_default().to_owned();
        let done = match &state {
            Some(ScanStatus::InProgress | ScanStatus::Pending) => WaitState::Pending(format!("{state:?}")),
            _ => WaitState::Done,
        };
        if let Ok(mut status) = status.lock() {
            *status = Some((state, reason));
        }
        Ok(done)
    })
    .await?;
    let (state, reason) = status.into_inner().ok().flatten().ok_or_else(no_scan)?;
    match state {
        Some(ScanStatus::Complete | ScanStatus::Active) => {}
        None => return Err(no_scan()),
        Some(other) => {
            return Err(ScanError::Failed {
                repository: repository.to_owned(),
                tag: tag.to_owned(),
                status: other.as_str().to_owned(),
                reason,
            });
        }
    }
    let mut findings = Vec::new();
    let mut token = None;
    loop {
        let out = describe(token).await.map_err(call_error("ecr:DescribeImageScanFindings"))?;
        if let Some(scan) = out.image_scan_findings() {
            for finding in scan.findings() {
                let package = finding
                    .attributes()
                    .iter()
                    .find(|attribute| attribute.key() == "package_name")
                    .and_then(|attribute| attribute.value())
                    .map(str::to_owned);
                findings.push(Finding {
                    name: finding.name().unwrap_or("unnamed").to_owned(),
                    severity: Severity::from_ecr(finding.severity().map_or("", |s| s.as_str())),
                    package,
                    uri: finding.uri().map(str::to_owned),
                });
            }
            for finding in scan.enhanced_findings() {
                let details = finding.package_vulnerability_details();
                findings.push(Finding {
                    name: details
                        .and_then(|d| d.vulnerability_id())
                        .or(finding.title())
                        .unwrap_or("unnamed")
                        .to_owned(),
                    severity: Severity::from_ecr(finding.severity().unwrap_or_default()),
                    package: details
                        .and_then(|d| d.vulnerable_packages().first())
                        .and_then(|package| package.name())
                        .map(str::to_owned),
                    uri: details.and_then(|d| d.source_url()).map(str::to_owned),
                });
            }
        }
        token = out.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.name.cmp(&b.name)));
    Ok(ScanReport { repository: repository.to_owned(), tag: tag.to_owned(), findings })
}

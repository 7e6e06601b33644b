//! What users see: errors with their cause, invalid input with file, line and field, JSON for
//! machines, guardrail findings.

use std::io::Write;
use std::process::ExitCode;

use anstyle::{AnsiColor, Style};
use enclave_core::Diagnostic;
use enclave_core::guardrail::{Report, Severity};
use serde::Serialize;

use crate::cli::Output;

/// Prints `error` and its whole cause chain, each text once (a cause whose text its parent
/// already shows is left out), then a hint where one is known; returns `code`.
pub(crate) fn report_error(error: &anyhow::Error, code: u8) -> ExitCode {
    let mut stderr = anstream::stderr();
    let _ = write!(stderr, "{}", error_text(error));
    if let Some(hint) = hint(error) {
        let bold = Style::new().bold();
        let _ = writeln!(stderr, "{}hint:{} {hint}", bold.render(), bold.render_reset());
    }
    ExitCode::from(code)
}

/// `error:` and the first message, then one `caused by:` line per cause not already shown.
fn error_text(error: &anyhow::Error) -> String {
    let mut shown: Vec<String> = Vec::new();
    for cause in error.chain() {
        // Some causes carry URLs of their own (credential providers' endpoints): no user-info.
        let text = enclave_core::redact::url_credentials(&cause.to_string());
        if !text.is_empty() && !shown.iter().any(|earlier| earlier.contains(&text)) {
            shown.push(text);
        }
    }
    let mut out = String::new();
    for (index, text) in shown.iter().enumerate() {
        let label = if index == 0 {
            format!("{}error:{}", red().render(), red().render_reset())
        } else {
            "  caused by:".to_owned()
        };
        out.push_str(&format!("{label} {text}\n"));
    }
    out
}

/// The first hint any error of the chain has.
fn hint(error: &anyhow::Error) -> Option<String> {
    error.chain().find_map(|cause| {
        #[cfg(feature = "cloud")]
        {
            if let Some(aws) = cause.downcast_ref::<enclave_aws::Error>() {
                return aws.hint();
            }
            if let Some(cloud) = cause.downcast_ref::<enclave::cloud::CloudError>() {
                return cloud.hint();
            }
            if let Some(call) = cause.downcast_ref::<enclave_aws::reconcile::CallError>() {
                return call.hint();
            }
        }
        let _ = cause;
        None
    })
}

pub(crate) fn red() -> Style {
    Style::new().bold().fg_color(Some(AnsiColor::Red.into()))
}

pub(crate) fn report_invalid(diagnostics: &[Diagnostic], output: Output) {
    match output {
        Output::Json => {
            let errors: Vec<serde_json::Value> = diagnostics
                .iter()
                .map(|d| {
                    serde_json::json!({
                        "file": d.span.as_ref().map(|s| s.file.to_string()),
                        "line": d.span.as_ref().map(|s| s.line),
                        "column": d.span.as_ref().map(|s| s.column),
                        "path": d.path.to_string(),
                        "message": d.message,
                    })
                })
                .collect();
            print_json(&serde_json::json!({ "valid": false, "errors": errors }));
        }
        Output::Text => {
            let mut stderr = anstream::stderr();
            for diagnostic in diagnostics {
                let _ = writeln!(stderr, "{}error:{} {diagnostic}", red().render(), red().render_reset());
            }
            let count = diagnostics.len();
            let _ = writeln!(
                stderr,
                "{count} error{} in the spec; nothing was planned or applied",
                if count == 1 { "" } else { "s" }
            );
        }
    }
}

pub(crate) fn print_json(value: &impl Serialize) {
    let mut stdout = std::io::stdout().lock();
    let _ = serde_json::to_writer_pretty(&mut stdout, value);
    let _ = writeln!(stdout);
}

pub(crate) fn print_findings(out: &mut impl Write, report: &Report, rules: usize) {
    let count = report.findings.len();
    let _ = writeln!(out, "guardrails: {rules} rules, {count} finding{}", if count == 1 { "" } else { "s" });
    for finding in &report.findings {
        let color = match finding.severity {
            Severity::Critical | Severity::High => AnsiColor::Red,
            Severity::Medium => AnsiColor::Yellow,
            Severity::Low | Severity::Info => AnsiColor::Cyan,
        };
        let style = Style::new().fg_color(Some(color.into()));
        let _ = writeln!(
            out,
            "  {}[{}]{} {} {}: {}",
            style.render(),
            finding.severity,
            style.render_reset(),
            finding.rule,
            finding.address,
            finding.message
        );
    }
}

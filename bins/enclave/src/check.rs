//! `enclave check`: manifests and the spec's guardrails, in text, JSON or SARIF.

use std::io::Write;

use crate::cli::{CheckArgs, Output, SpecArgs};
use crate::{Failure, load};

pub(crate) fn check(args: &CheckArgs) -> Result<(), Failure> {
    let mut rules = enclave_check::catalogue();
    rules.extend(enclave::guardrail_rule_infos());
    if args.list_rules {
        for rule in &rules {
            println!(
                "{:<10} {:<11} {:<8} {}",
                rule.id,
                rule.checkov_id.unwrap_or("-"),
                rule.severity.to_string(),
                rule.summary
            );
        }
        return Ok(());
    }
    if args.paths.is_empty() && args.config.is_none() {
        return Err(Failure::Usage(anyhow::anyhow!(
            "nothing to check: give manifest paths (or `-` for stdin) and/or --config DIR"
        )));
    }
    let sources = enclave_check::read_sources(&args.paths).map_err(|e| Failure::Usage(e.into()))?;
    if !args.paths.is_empty() && sources.is_empty() {
        return Err(Failure::Usage(anyhow::anyhow!("no .yaml, .yml or .json file under the given paths")));
    }
    let options = enclave_check::Options { rules: !args.schema_only, schema: !args.no_schema };
    let mut report = enclave_check::check(&sources, &options);
    if let Some(dir) = &args.config {
        let spec = SpecArgs { dir: dir.clone(), overlays: args.overlays.clone() };
        let (loaded, model) = load(&spec, Output::Text)?;
        if !args.schema_only {
            report.extend(enclave::guardrail_findings(&loaded, &model));
        }
        // The node agents' accepted exceptions (Falco, Filebeat, node exporter, Istio's CNI), each
        // in its own namespace: what their needs trip there is reported as accepted, with why.
        let exceptions: Vec<enclave_core::exception::Exception> =
            loaded.spec.clusters.iter().flat_map(enclave_deploy::addons::exceptions).collect();
        report.accept(|finding| {
            let namespace = finding.namespace.as_deref()?;
            exceptions
                .iter()
                .find(|e| {
                    e.namespace == namespace
                        && e.access.iter().any(|a| a.check_rules().contains(&finding.rule.as_str()))
                })
                .map(|e| format!("accepted exception of add-on {} ({}): {}", e.addon, e.workload, e.reason))
        });
    }
    if let Some(path) = &args.write_baseline {
        let baseline = enclave_check::Baseline::of(&report.findings);
        std::fs::write(path, baseline.to_json())
            .map_err(|e| Failure::Runtime(anyhow::anyhow!("cannot write {}: {e}", path.display())))?;
        eprintln!("wrote {} accepted findings to {}", baseline.findings.len(), path.display());
        return Ok(());
    }
    if let Some(path) = &args.baseline {
        let baseline = enclave_check::Baseline::load(path).map_err(|e| Failure::Usage(e.into()))?;
        report.apply_baseline(&baseline);
    }
    let text = enclave_check::report::render(&report, args.format, &rules);
    match &args.out {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| Failure::Runtime(anyhow::anyhow!("cannot write {}: {e}", path.display())))?,
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .map_err(|e| Failure::Runtime(anyhow::anyhow!("cannot write the report: {e}")))?;
        }
    }
    if report.fails(args.fail_on) { Err(Failure::Findings) } else { Ok(()) }
}

//! The commands that need no cloud: `validate`, `plan --offline`, `diagram`, `render`.

use std::io::Write;
use std::path::PathBuf;

use anstyle::Style;
use enclave_core::guardrail::Severity;
use enclave_core::plan::{self, Plan, TextOptions};

use crate::cli::{CloudArgs, DiagramFormat, Output, SpecArgs};
use crate::output::{print_findings, print_json};
use crate::{Failure, invalid, load};

pub(crate) fn validate(args: &SpecArgs, output: Output, fail_on: Severity) -> Result<(), Failure> {
    let (loaded, model) = load(args, output)?;
    let rules = enclave::platform::rule_infos();
    let report = enclave::platform::guardrails(&loaded.spec, &model);
    let failing = report.fails(fail_on);
    match output {
        Output::Json => print_json(&serde_json::json!({
            "valid": true,
            "stack": model.stack,
            "region": model.region,
            "overlays": args.overlays,
            "files": loaded.files,
            "accounts": enclave::account_summaries(&loaded, &model),
            "rules": rules.len(),
            "findings": report.findings,
            "fail_on": fail_on,
            "failed": failing,
        })),
        Output::Text => {
            let mut out = anstream::stdout();
            let bold = Style::new().bold();
            let overlays = if args.overlays.is_empty() { "none".to_owned() } else { args.overlays.join(" + ") };
            let _ = writeln!(
                out,
                "{}valid{}: stack {} in {}, {} files, overlays: {overlays}",
                bold.render(),
                bold.render_reset(),
                model.stack,
                model.region,
                loaded.files.len()
            );
            for summary in enclave::account_summaries(&loaded, &model) {
                let _ = writeln!(
                    out,
                    "  {:<10} {}  {:<14} {} AZs  nat {:<7} {:>2} subnets  {:>2} endpoints",
                    summary.name,
                    summary.id,
                    summary.vpc_cidr,
                    summary.zones.len(),
                    summary.nat,
                    summary.subnets,
                    summary.endpoints
                );
            }
            print_findings(&mut out, &report, rules.len());
        }
    }
    if failing { Err(Failure::Findings) } else { Ok(()) }
}

pub(crate) fn plan_offline(args: &SpecArgs, cloud: &CloudArgs, compact: bool) -> Result<(), Failure> {
    let output = cloud.output;
    let (loaded, mut model) = load(args, output)?;
    enclave::select_account(&loaded, &mut model, cloud.account.as_deref()).map_err(|e| invalid(e, output))?;
    let domains = enclave::platform::selected(&loaded.spec, &cloud.only);
    let values = if domains.contains(&enclave::platform::Domain::Secrets) {
        enclave::secret_values(&loaded, &args.dir).map_err(|e| invalid(e, output))?
    } else {
        enclave_secrets::values::Values::default()
    };
    let desired =
        enclave::platform::desired(&loaded.spec, &model, &domains, &|_| enclave_access::Image::Latest, &values);
    let plan: Plan = plan::diff(&desired, &[]).map_err(|cycle| Failure::Runtime(cycle.into()))?;
    let findings = enclave::platform::guardrails(&loaded.spec, &model);
    let accounts: Vec<(String, String)> = model
        .accounts
        .iter()
        .map(|network| (network.account.clone(), format!("{}, {}", network.account_id, network.vpc.cidr)))
        .collect();
    match output {
        Output::Json => print_json(&serde_json::json!({
            "format_version": 1,
            "mode": "offline",
            "domains": domains,
            "stack": model.stack,
            "region": model.region,
            "overlays": args.overlays,
            "accounts": enclave::account_summaries(&loaded, &model),
            "changes": plan.changes,
            "summary": plan.summary(),
            "findings": findings.findings,
        })),
        Output::Text => {
            let mut out = anstream::stdout();
            let _ = writeln!(
                out,
                "Offline plan for stack {} in {} ({}): nothing was observed, so everything in the spec is shown as a \
                 create.\n",
                model.stack,
                model.region,
                domains.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            );
            let text = plan::render_text(&plan, &TextOptions { color: true, accounts, attributes: !compact });
            let _ = out.write_all(text.as_bytes());
            let _ = writeln!(out);
            print_findings(&mut out, &findings, enclave::platform::rule_infos().len());
        }
    }
    Ok(())
}

pub(crate) fn policies(args: &SpecArgs, out: &std::path::Path) -> Result<(), Failure> {
    let (loaded, model) = load(args, Output::Text)?;
    let domains = std::collections::BTreeSet::from([
        enclave::platform::Domain::Access,
        enclave::platform::Domain::Deploy,
        enclave::platform::Domain::Secrets,
    ]);
    let resources = enclave::platform::desired(
        &loaded.spec,
        &model,
        &domains,
        &|_| enclave_access::Image::Latest,
        &enclave_secrets::values::Values::default(),
    );
    let documents = enclave_access::resources::policy_documents(&resources);
    std::fs::create_dir_all(out)
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("cannot create {}: {e}", out.display())))?;
    for (address, attribute, document) in &documents {
        // Address segments are [a-z0-9.-]: the file name cannot leave `out`.
        let name =
            format!("{}-{}-{}-{}.json", address.account(), address.kind(), address.name(), attribute.replace('_', "-"));
        let text = serde_json::to_string_pretty(document).map_err(|e| Failure::Runtime(e.into()))?;
        std::fs::write(out.join(&name), text + "\n")
            .map_err(|e| Failure::Runtime(anyhow::anyhow!("cannot write {name}: {e}")))?;
    }
    eprintln!("wrote {} policies to {}", documents.len(), out.display());
    Ok(())
}

pub(crate) fn diagram(args: &SpecArgs, format: DiagramFormat, out: Option<&std::path::Path>) -> Result<(), Failure> {
    let (loaded, model) = load(args, Output::Text)?;
    let spec = &loaded.spec;
    let organization = spec.organization.name.to_string();
    let access = enclave::platform::Domain::Access
        .enabled(spec)
        .then(|| enclave::platform::access_model(spec, &model, &|_| enclave_access::Image::Latest));
    let deploy = enclave::platform::Domain::Deploy.enabled(spec).then(|| enclave::platform::deploy_model(spec, &model));
    let inputs = enclave::diagram::Inputs {
        organization: &organization,
        network: &model,
        access: access.as_ref(),
        deploy: deploy.as_ref(),
        apps: &spec.apps,
    };
    let bytes = match format {
        DiagramFormat::Mermaid => enclave::diagram::mermaid(&inputs).into_bytes(),
        DiagramFormat::Dot => enclave::diagram::dot(&inputs).into_bytes(),
        DiagramFormat::Svg => enclave::diagram::svg(&inputs).into_bytes(),
        DiagramFormat::Png => {
            if out.is_none() && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                return Err(Failure::Usage(anyhow::anyhow!("--format png writes binary data: name a file with --out")));
            }
            enclave::diagram::png(&inputs, 1.0).map_err(|e| Failure::Runtime(e.into()))?
        }
    };
    match out {
        Some(path) => std::fs::write(path, &bytes)
            .map_err(|e| Failure::Runtime(anyhow::anyhow!("cannot write {}: {e}", path.display())))?,
        None => std::io::stdout().write_all(&bytes).map_err(|e| Failure::Runtime(e.into()))?,
    }
    Ok(())
}

pub(crate) fn render(args: &SpecArgs, out: &std::path::Path, output: Output) -> Result<(), Failure> {
    let (loaded, _) = load(args, output)?;
    let mut written = Vec::new();
    for cluster in enclave::render(&loaded.spec).map_err(|e| Failure::Runtime(e.into()))? {
        let dir = out.join(&cluster.cluster);
        let mut files = Vec::new();
        for artifact in &cluster.artifacts {
            files.push(artifact.write_to(&dir).map_err(|e| Failure::Runtime(e.into()))?);
        }
        files.extend(cluster.bundle.write_to(&dir).map_err(|e| Failure::Runtime(e.into()))?);
        written.push((cluster.cluster, cluster.bundle, files));
    }
    let all: Vec<PathBuf> = written.iter().flat_map(|(_, _, files)| files.iter().cloned()).collect();
    let pruned = enclave::prune_previous_render(out, &all)
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("cannot prune {}: {e}", out.display())))?;
    match output {
        Output::Json => print_json(&serde_json::json!({
            "clusters": written.iter().map(|(name, bundle, files)| serde_json::json!({
                "cluster": name,
                "objects": bundle.objects().iter().map(ToString::to_string).collect::<Vec<_>>(),
                "files": files,
            })).collect::<Vec<_>>(),
            "removed": pruned,
        })),
        Output::Text => {
            let mut stdout = anstream::stdout();
            for (name, bundle, files) in &written {
                let _ = writeln!(stdout, "cluster {name}: {} objects, {} files", bundle.len(), files.len());
                for object in bundle.objects() {
                    let _ = writeln!(stdout, "  {object}");
                }
                for file in files.iter().filter(|f| f.extension().is_none_or(|e| e != "yaml")) {
                    let _ = writeln!(stdout, "  file {}", file.display());
                }
            }
            let total: usize = written.iter().map(|(_, bundle, _)| bundle.len()).sum();
            for file in &pruned {
                let _ = writeln!(stdout, "  removed {} (no longer rendered)", file.display());
            }
            let _ = writeln!(stdout, "wrote {total} objects under {}", out.display());
        }
    }
    Ok(())
}

/// `enclave render pipeline`: each app's delivery workflow, `OUT/deliver-<app>.yml`. Only
/// those files are written; nothing else in OUT is touched.
pub(crate) fn pipeline(args: &SpecArgs, out: &std::path::Path, output: Output) -> Result<(), Failure> {
    let (loaded, model) = load(args, output)?;
    let deploy = enclave::platform::deploy_model(&loaded.spec, &model);
    let workflows = enclave_deploy::pipeline::workflows(&loaded.spec, &deploy)
        .map_err(|error| crate::usage_error(error.to_string(), output))?;
    std::fs::create_dir_all(out)
        .map_err(|e| Failure::Usage(anyhow::anyhow!("cannot create {}: {e}", out.display())))?;
    let mut written = Vec::new();
    for (name, workflow) in &workflows {
        let path = out.join(name);
        std::fs::write(&path, enclave_deploy::pipeline::to_yaml(workflow))
            .map_err(|e| Failure::Runtime(anyhow::anyhow!("cannot write {}: {e}", path.display())))?;
        written.push(path);
    }
    match output {
        Output::Json => print_json(&serde_json::json!({ "files": written })),
        Output::Text => {
            let mut stdout = anstream::stdout();
            for path in &written {
                let _ = writeln!(stdout, "wrote {}", path.display());
            }
        }
    }
    Ok(())
}

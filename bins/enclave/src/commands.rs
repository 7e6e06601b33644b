//! `plan`, `apply`, `drift` and `destroy` against AWS: load, connect, observe, print the plan,
//! then (for apply and destroy) carry it out with progress.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use enclave::cloud::{Cloud, CloudOptions, RemovedAccounts};
use enclave_core::Address;
use enclave_core::plan::{self, Plan, TextOptions};
use enclave_core::reconcile::{Operation, Progress, Report};
use enclave_net::apply::Waits;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::{CloudArgs, Output, SpecArgs};
use crate::output::print_json;
use crate::{Failure, invalid, load, usage_error};

/// What the command does with the plan.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Mode {
    /// Print it.
    Plan,
    /// Carry it out.
    Apply { yes: bool, parallelism: usize },
    /// Print it and exit 3 when it is not empty.
    Drift,
    /// Plan the deletion of everything owned, and carry it out.
    Destroy { yes: bool, parallelism: usize },
}

impl Mode {
    fn verb(self) -> &'static str {
        match self {
            Mode::Plan => "plan",
            Mode::Apply { .. } => "apply",
            Mode::Drift => "drift",
            Mode::Destroy { .. } => "destroy",
        }
    }
}

/// What a command was doing and where, for the first line of its error: the operation, account
/// and cause follow in the chain.
fn doing(command: &str, endpoint: Option<&str>, region: &str) -> String {
    // `--endpoint-url`, else the SDK's own variable, else AWS.
    let from_env = std::env::var("AWS_ENDPOINT_URL").ok().filter(|url| !url.is_empty());
    let endpoint = endpoint.or(from_env.as_deref()).map_or_else(
        || "AWS's own endpoints".to_owned(),
        |url| format!("AWS endpoint {}", enclave_core::redact::url_credentials(url)),
    );
    format!("{command} failed ({endpoint}, region {region})")
}

/// A runtime failure with `what` (from [`doing`]) in front of its cause.
fn failed<E: Into<anyhow::Error>>(what: &str) -> impl FnOnce(E) -> Failure + '_ {
    move |error| Failure::Runtime(error.into().context(what.to_owned()))
}

pub(crate) fn run(spec: &SpecArgs, args: &CloudArgs, mode: Mode, compact: bool) -> Result<(), Failure> {
    let (loaded, mut model) = load(spec, args.output)?;
    enclave::select_account(&loaded, &mut model, args.account.as_deref()).map_err(|e| invalid(e, args.output))?;
    let domains = enclave::platform::selected(&loaded.spec, &args.only);
    if domains.is_empty() {
        return Err(usage_error(
            "nothing to reconcile: the spec enables none of the domains --only names".to_owned(),
            args.output,
        ));
    }
    // Secret values are read where the spec says, before anything is observed: a missing
    // variable or file is an input error (exit 2). Destroy needs none.
    let secret_values =
        if domains.contains(&enclave::platform::Domain::Secrets) && !matches!(mode, Mode::Destroy { .. }) {
            enclave::secret_values(&loaded, &spec.dir).map_err(|e| invalid(e, args.output))?
        } else {
            enclave_secrets::values::Values::default()
        };
    let options = CloudOptions {
        endpoint_url: args.endpoint_url.clone(),
        waits: Waits { timeout: Duration::from_secs(args.wait_timeout), ..Waits::default() },
        removed_accounts: if args.account.is_some() {
            RemovedAccounts::Ignore
        } else if args.keep_removed_accounts {
            RemovedAccounts::Keep
        } else {
            RemovedAccounts::Delete
        },
        domains,
        spec: Some(loaded.spec.clone()),
        replace_bastion: args.replace_bastion,
        force_images: args.force_images,
        secret_values,
        force_delete_secrets: args.force_delete_secrets,
    };
    let role = loaded.spec.organization.assume_role.to_string();
    // Guardrails over what the plan builds (`validate` and `enclave check -c` report the same).
    let findings = matches!(mode, Mode::Plan).then(|| enclave::platform::guardrails(&loaded.spec, &model));
    let what = doing(mode.verb(), args.endpoint_url.as_deref(), &model.region);
    let runtime = crate::runtime()?;
    runtime.block_on(async {
        let cloud = Cloud::connect(model, &role, &options).await.map_err(failed(&what))?;
        let (plan, observed) = match mode {
            Mode::Destroy { .. } => cloud.destroy_plan().await,
            _ => cloud.plan().await,
        }
        .map_err(failed(&what))?;
        let observe_calls = cloud.calls();
        let mut accounts: Vec<(String, String)> = cloud
            .model()
            .accounts
            .iter()
            .map(|network| (network.account.clone(), format!("{}, {}", network.account_id, network.vpc.cidr)))
            .collect();
        accounts.extend(
            cloud.removed_accounts().iter().map(|removed| (removed.name.clone(), format!("{}, removed from the spec", removed.id))),
        );
        let text = args.output == Output::Text;
        if text {
            let mut out = anstream::stdout();
            let _ = writeln!(
                out,
                "{} for stack {} in {}: {} resources observed in {} account{}.\n",
                match mode {
                    Mode::Drift => "Drift check",
                    Mode::Destroy { .. } => "Destroy plan",
                    _ => "Plan",
                },
                cloud.model().stack,
                cloud.model().region,
                observed.resources.len(),
                accounts.len(),
                if accounts.len() == 1 { "" } else { "s" }
            );
            for removed in cloud.removed_accounts() {
                let count = plan.for_account(&removed.name).count();
                let _ = writeln!(
                    out,
                    "Account {} ({}) is no longer in the spec: its {count} resource{} carrying this stack's tags {} \
                     deleted (keep them with --keep-removed-accounts).",
                    removed.name,
                    removed.id,
                    if count == 1 { "" } else { "s" },
                    if matches!(mode, Mode::Apply { .. } | Mode::Destroy { .. }) { "are" } else { "would be" },
                );
            }
            for kept in cloud.kept_accounts() {
                let _ = writeln!(
                    out,
                    "Account {} ({}) is no longer in the spec and is kept (--keep-removed-accounts): its resources stay \
                     as they are and it stays in the stack's record.",
                    kept.name, kept.id
                );
            }
            for newer in cloud.newer_images() {
                let _ = writeln!(
                    out,
                    "Account {}: the bastion runs {} and {} is the latest Amazon Linux 2023 image; it is kept \
                     (replace it with --replace-bastion, or pin an image with access.bastion.ami).",
                    newer.account, newer.running, newer.latest
                );
            }
            if !cloud.removed_accounts().is_empty() || !cloud.kept_accounts().is_empty() || !cloud.newer_images().is_empty() {
                let _ = writeln!(out);
            }
            if plan.is_empty() {
                let _ = writeln!(
                    out,
                    "{}",
                    match mode {
                        Mode::Drift => "No drift: every account matches the spec.",
                        Mode::Destroy { .. } => "Nothing to destroy: no resource carries this stack's tags.",
                        _ => "No changes: every account matches the spec.",
                    }
                );
            } else {
                let rendered = plan::render_text(
                    &plan,
                    &TextOptions { color: true, accounts: accounts.clone(), attributes: !compact },
                );
                let _ = out.write_all(rendered.as_bytes());
            }
        }
        let report = match mode {
            Mode::Apply { yes, parallelism } | Mode::Destroy { yes, parallelism } if !plan.is_empty() => {
                confirm(mode, yes, &plan, args.output)?;
                let progress = Bars::new(args.output);
                let report = match mode {
                    Mode::Destroy { .. } => cloud.destroy(&plan, &observed, parallelism, &progress).await,
                    _ => cloud.apply(&plan, &observed, parallelism, &progress).await,
                };
                progress.finish();
                Some(report.map_err(failed(&what))?)
            }
            Mode::Apply { .. } => {
                // Nothing to change, but the record of managed accounts is brought up to date (a
                // stack applied before the record existed gets one), so that removing an account
                // from the spec later is noticed.
                cloud.apply(&plan, &observed, 1, &crate::commands::Silent).await.map_err(failed(&what))?;
                None
            }
            _ => None,
        };
        let calls = cloud.calls();
        if text {
            if let Some(report) = &report {
                print_report(mode, report);
            }
            if let Some(findings) = &findings {
                let mut out = anstream::stdout();
                let _ = writeln!(out);
                crate::output::print_findings(&mut out, findings, enclave::platform::rule_infos().len());
            }
            if args.stats {
                print_calls(&observe_calls, &calls);
            }
        } else {
            print_json(&serde_json::json!({
                "format_version": 1,
                "command": mode.verb(),
                "stack": cloud.model().stack,
                "region": cloud.model().region,
                "accounts": cloud.model().accounts.iter().map(|network| &network.account).collect::<Vec<_>>(),
                "removed_accounts": cloud.removed_accounts(),
                "kept_accounts": cloud.kept_accounts(),
                "domains": cloud.domains(),
                "findings": findings.as_ref().map(|report| &report.findings),
                "newer_images": cloud.newer_images(),
                "observed": observed.resources.len(),
                "changes": plan.changes,
                "summary": plan.summary(),
                "drift": matches!(mode, Mode::Drift) && !plan.is_empty(),
                "report": report,
                "calls": calls,
            }));
        }
        if let Some(report) = report
            && !report.is_success()
        {
            return Err(Failure::Runtime(anyhow::anyhow!(
                "{} step{} failed and {} were skipped; run `enclave {}` again after fixing the cause: it resumes \
                 from what exists",
                report.failed.len(),
                if report.failed.len() == 1 { "" } else { "s" },
                report.skipped.len(),
                mode.verb()
            )));
        }
        if matches!(mode, Mode::Drift) && !plan.is_empty() {
            return Err(Failure::Findings);
        }
        Ok(())
    })
}

fn confirm(mode: Mode, yes: bool, plan: &Plan, output: Output) -> Result<(), Failure> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(usage_error(
            format!("refusing to {} without --yes: stdin is not a terminal to ask on", mode.verb()),
            output,
        ));
    }
    let mut stderr = std::io::stderr();
    let _ = write!(stderr, "\n{}. {} these changes? Only `yes` is accepted: ", plan.summary(), mode.verb());
    let _ = stderr.flush();
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(Failure::Runtime(anyhow::anyhow!("{} cancelled; nothing was changed", mode.verb())))
    }
}

fn print_report(mode: Mode, report: &Report) {
    let mut out = anstream::stdout();
    let _ = writeln!(
        out,
        "\n{}: {} done, {} failed, {} skipped.",
        mode.verb(),
        report.done.len(),
        report.failed.len(),
        report.skipped.len()
    );
    for failed in &report.failed {
        let _ = writeln!(
            out,
            "  failed: {} {}: {}",
            failed.operation,
            failed.address,
            failed.error.as_deref().unwrap_or_default()
        );
    }
}

fn print_calls(observe: &BTreeMap<String, u64>, all: &BTreeMap<String, u64>) {
    let mut err = anstream::stderr();
    let reads: u64 = observe.values().sum();
    let total: u64 = all.values().sum();
    let _ = writeln!(err, "\nAWS calls: {total} in all, {reads} to observe and plan");
    for (operation, count) in all {
        let _ = writeln!(err, "  {operation:<40} {count:>5}");
    }
}

/// Progress that shows nothing (an empty plan).
pub(crate) struct Silent;

impl Progress for Silent {}

/// Progress bars per account on a terminal, plain lines otherwise.
struct Bars {
    multi: Option<MultiProgress>,
    bars: Mutex<BTreeMap<String, ProgressBar>>,
}

impl Bars {
    fn new(output: Output) -> Bars {
        let terminal = std::io::stderr().is_terminal() && output == Output::Text;
        Bars {
            multi: terminal.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            bars: Mutex::new(BTreeMap::new()),
        }
    }

    fn bar(&self, address: &Address) -> Option<ProgressBar> {
        self.bars.lock().ok()?.get(address.account()).cloned()
    }

    fn finish(&self) {
        if let Ok(bars) = self.bars.lock() {
            for bar in bars.values() {
                bar.finish_with_message("done");
            }
        }
    }
}

impl Progress for Bars {
    fn planned(&self, per_account: &BTreeMap<String, usize>) {
        let Some(multi) = &self.multi else { return };
        let style =
            ProgressStyle::with_template("{prefix:>10} [{bar:32.cyan/blue}] {pos:>3}/{len:3} {elapsed:>4} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
        if let Ok(mut bars) = self.bars.lock() {
            for (account, steps) in per_account {
                let bar = multi.add(ProgressBar::new(*steps as u64));
                bar.set_style(style.clone());
                bar.set_prefix(account.clone());
                bars.insert(account.clone(), bar);
            }
        }
    }

    fn started(&self, address: &Address, operation: Operation) {
        if let Some(bar) = self.bar(address) {
            bar.set_message(format!("{operation} {}/{}", address.kind(), address.name()));
        }
    }

    fn finished(&self, address: &Address, operation: Operation, elapsed: Duration, error: Option<&str>) {
        match (&self.multi, self.bar(address)) {
            (Some(multi), Some(bar)) => {
                bar.inc(1);
                if let Some(error) = error {
                    let _ = multi.println(format!("failed: {operation} {address}: {error}"));
                }
            }
            _ => {
                let status = match error {
                    None => "ok".to_owned(),
                    Some(error) => format!("FAILED: {error}"),
                };
                eprintln!("{operation:>6} {address} {status} ({:.1}s)", elapsed.as_secs_f64());
            }
        }
    }

    fn skipped(&self, address: &Address, operation: Operation) {
        match self.bar(address) {
            Some(bar) => bar.inc(1),
            None => eprintln!("{operation:>6} {address} skipped (a dependency failed)"),
        }
    }
}

/// `enclave access connect`: the stack's running bastion in `account`, and the Session Manager
/// command that reaches it, printed (`--print`) or run as the member role (its temporary
/// credentials handed to the AWS CLI in the environment, never printed).
pub(crate) fn connect(
    spec: &SpecArgs,
    account: &str,
    forward: Option<&enclave_access::connect::PortForward>,
    print: bool,
    endpoint_url: Option<String>,
    output: Output,
) -> Result<(), Failure> {
    use aws_config::SdkConfig;
    use aws_credential_types::provider::ProvideCredentials;

    let (loaded, mut model) = load(spec, output)?;
    enclave::select_account(&loaded, &mut model, Some(account)).map_err(|e| invalid(e, output))?;
    let member =
        model.accounts.first().ok_or_else(|| Failure::Runtime(anyhow::anyhow!("no account {account}")))?.clone();
    let stack = model.stack.clone();
    let region = model.region.clone();
    let what = doing("access connect", endpoint_url.as_deref(), &region);
    let runtime = crate::runtime()?;
    let (bastion, agent, config, role): (_, _, SdkConfig, String) = runtime.block_on(async {
        let mut options = enclave_aws::AwsOptions::new(&region, loaded.spec.organization.assume_role.as_str());
        options.endpoint_url = endpoint_url;
        let aws = enclave_aws::Aws::connect(options).await.map_err(failed(&what))?;
        let config = aws.account(&member.account_id).await.map_err(failed(&what))?;
        let clients = enclave_access::clients::Clients::new(&config, &aws.counter());
        let bastion =
            enclave_access::connect::find_bastion(&clients, &stack, &member.account).await.map_err(failed(&what))?;
        let agent = match &bastion {
            Some(bastion) => Some(enclave_access::connect::agent_status(&clients, &bastion.instance_id).await),
            None => None,
        };
        Ok::<_, Failure>((bastion, agent, config, aws.role_arn(&member.account_id)))
    })?;
    let Some(bastion) = bastion else {
        return Err(Failure::Runtime(anyhow::anyhow!(
            "account {account} has no running bastion of stack {stack}: enable access.bastion and run `enclave apply`"
        )));
    };
    match agent {
        Some(Ok(Some(status))) if status == "Online" => {}
        Some(Ok(Some(status))) => eprintln!(
            "warning: the Session Manager agent on {} reports {status}; the session may not open",
            bastion.instance_id
        ),
        Some(Ok(None)) => eprintln!(
            "warning: Systems Manager does not list {} yet (its agent registers a minute or two after launch)",
            bastion.instance_id
        ),
        Some(Err(error)) => eprintln!(
            "warning: could not read the agent status of {} ({} failed); trying the session anyway",
            bastion.instance_id,
            error.operation().unwrap_or("ssm:DescribeInstanceInformation")
        ),
        None => {}
    }
    let command = enclave_access::connect::session_command(&region, &bastion.instance_id, forward);
    if print {
        if output == Output::Json {
            print_json(&serde_json::json!({
                "format_version": 1,
                "account": member.account,
                "account_id": member.account_id,
                "region": region,
                "role_arn": role,
                "instance_id": bastion.instance_id,
                "command": command,
            }));
        } else {
            eprintln!("# account {} ({}), as {role}:", member.account, member.account_id);
            println!("{}", enclave_access::connect::shell_line(&command));
        }
        return Ok(());
    }
    let credentials = runtime
        .block_on(async {
            match config.credentials_provider() {
                Some(provider) => provider.provide_credentials().await.map(Some),
                None => Ok(None),
            }
        })
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("cannot read the credentials of {role}: {e}")))?;
    let mut child = std::process::Command::new(&command[0]);
    child.args(&command[1..]).env_remove("AWS_PROFILE");
    if let Some(credentials) = credentials {
        child
            .env("AWS_ACCESS_KEY_ID", credentials.access_key_id())
            .env("AWS_SECRET_ACCESS_KEY", credentials.secret_access_key());
        match credentials.session_token() {
            Some(token) => child.env("AWS_SESSION_TOKEN", token),
            None => child.env_remove("AWS_SESSION_TOKEN"),
        };
    }
    eprintln!("Connecting to {} in account {} as {role} ...", bastion.instance_id, member.account);
    let status = child.status().map_err(|error| {
        if error.kind() == std::io::ErrorKind::NotFound {
            Failure::Runtime(anyhow::anyhow!(
                "`aws` was not found: the AWS CLI and its Session Manager plugin open the session; \
                 `enclave access connect {account} --print` shows the command"
            ))
        } else {
            Failure::Runtime(anyhow::anyhow!("cannot run `aws`: {error}"))
        }
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(Failure::Runtime(anyhow::anyhow!("`aws ssm start-session` ended with {status}")))
    }
}

/// `enclave deploy scan-gate`: the scan findings of `app`'s image `tag` in the stack's registry,
/// judged at `fail_on` (exit 3 when any finding reaches it).
pub(crate) fn scan_gate(
    spec: &SpecArgs,
    app: &str,
    tag: &str,
    fail_on: enclave_deploy::scan::Severity,
    wait_timeout: u64,
    endpoint_url: Option<String>,
    output: Output,
) -> Result<(), Failure> {
    let (loaded, model) = load(spec, output)?;
    let Some(registry) = enclave::platform::deploy_model(&loaded.spec, &model).registry else {
        return Err(usage_error(
            "the spec has no `registry`: there is no repository to read scans from".into(),
            output,
        ));
    };
    if !registry.repositories.iter().any(|name| name == app) {
        let known: Vec<&str> = registry.repositories.iter().map(String::as_str).collect();
        let hint = enclave_core::config::suggestion(app, &known)
            .map(|best| format!(" (did you mean {best}?)"))
            .unwrap_or_default();
        return Err(usage_error(format!("no app named `{app}` in the spec{hint}"), output));
    }
    let what = doing("deploy scan-gate", endpoint_url.as_deref(), &model.region);
    let runtime = crate::runtime()?;
    let report = runtime.block_on(async {
        let mut options = enclave_aws::AwsOptions::new(&model.region, loaded.spec.organization.assume_role.as_str());
        options.endpoint_url = endpoint_url;
        let aws = enclave_aws::Aws::connect(options).await.map_err(failed(&what))?;
        let config = aws.account(&registry.account_id).await.map_err(failed(&what))?;
        let clients = enclave_deploy::clients::Clients::new(&config, &aws.counter());
        let waits = Waits { timeout: Duration::from_secs(wait_timeout), ..Waits::default() };
        enclave_deploy::scan::scan_report(&clients, app, tag, waits).await.map_err(failed(&what))
    })?;
    let blocking = report.at_or_above(fail_on);
    match output {
        Output::Json => print_json(&serde_json::json!({
            "format_version": 1,
            "command": "deploy scan-gate",
            "app": app,
            "image": format!("{}/{}:{tag}", registry.host, app),
            "fail_on": fail_on,
            "passed": blocking.is_empty(),
            "blocking": blocking.len(),
            "findings": report.findings,
        })),
        Output::Text => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "{}/{app}:{tag}: {} finding(s), {} at or above {fail_on}",
                registry.host,
                report.findings.len(),
                blocking.len()
            );
            for finding in &report.findings {
                let mark = if finding.severity >= fail_on { "x" } else { " " };
                let _ = writeln!(
                    out,
                    "  {mark} {:<13} {:<20} {}{}",
                    finding.severity.as_str(),
                    finding.name,
                    finding.package.as_deref().unwrap_or("-"),
                    finding.uri.as_deref().map(|uri| format!("  {uri}")).unwrap_or_default()
                );
            }
            let verdict = if blocking.is_empty() { "passed" } else { "failed" };
            let _ = writeln!(out, "scan gate {verdict} (--fail-on {fail_on})");
        }
    }
    if blocking.is_empty() { Ok(()) } else { Err(Failure::Findings) }
}

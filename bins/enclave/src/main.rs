//! The `enclave` command line: a switchboard over the library crates.
//!
//! Parses arguments, calls one library function per command, prints the result as text or
//! JSON and maps the outcome to an exit code: 0 ok, 1 runtime failure, 2 invalid input or
//! usage, 3 drift or findings present.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anstyle::{AnsiColor, Style};
use clap::{Parser, Subcommand, ValueEnum};
use enclave_core::guardrail::{Report, Severity};
use enclave_core::plan::{self, Plan, TextOptions};
use enclave_core::{Diagnostic, Error, LoadOptions, Loaded};
use enclave_net::NetworkModel;
use serde::Serialize;

#[cfg(feature = "cloud")]
mod commands;

/// Declare a private-subnet, multi-account AWS platform and plan it.
#[derive(Debug, Parser)]
#[command(name = "enclave", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load and validate the spec, then run the network guardrails.
    Validate {
        #[command(flatten)]
        spec: SpecArgs,
        /// Output format.
        #[arg(long, short, value_enum, default_value_t = Output::Text)]
        output: Output,
        /// Exit 3 when a guardrail finding at or above this severity exists.
        #[arg(long, default_value = "high", value_parser = parse_severity)]
        fail_on: Severity,
    },
    /// Show what enclave would create, change or delete, from what exists in every account.
    Plan {
        #[command(flatten)]
        spec: SpecArgs,
        /// Plan without credentials: nothing is observed, everything in the spec is a create.
        #[arg(long)]
        offline: bool,
        #[command(flatten)]
        cloud: CloudArgs,
        /// Text output: one line per resource, without attributes.
        #[arg(long)]
        compact: bool,
    },
    /// Plan, then create, change and delete until every account matches the spec.
    Apply {
        #[command(flatten)]
        spec: SpecArgs,
        #[command(flatten)]
        cloud: CloudArgs,
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// Compare every account with the spec; exit 3 with the differences when reality drifted.
    Drift {
        #[command(flatten)]
        spec: SpecArgs,
        #[command(flatten)]
        cloud: CloudArgs,
        /// Text output: one line per resource, without attributes.
        #[arg(long)]
        compact: bool,
    },
    /// Delete everything this stack owns (tagged with it), dependants first.
    Destroy {
        #[command(flatten)]
        spec: SpecArgs,
        #[command(flatten)]
        cloud: CloudArgs,
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// Draw the organization's network: accounts, VPCs, AZs, tiers, NAT and endpoints.
    Diagram {
        #[command(flatten)]
        spec: SpecArgs,
        /// Picture format (svg needs Graphviz's `dot`).
        #[arg(long, value_enum, default_value_t = DiagramFormat::Mermaid)]
        format: DiagramFormat,
        /// Write to this file instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Write every rendered Kubernetes object of the spec as YAML files under OUT.
    Render {
        #[command(flatten)]
        spec: SpecArgs,
        /// Output folder: `OUT/<cluster>/<namespace or _cluster>/<kind>-<name>.yaml`.
        #[arg(long, value_name = "OUT")]
        out: PathBuf,
        /// Output format of the summary.
        #[arg(long, short, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Scaling tools.
    Scaling {
        #[command(subcommand)]
        command: ScalingCommand,
    },
    /// Print the JSON Schema of the spec, for editor completion and validation.
    Schema,
    /// Check Kubernetes manifests and the spec's network against the guardrails, with strict
    /// schema validation; exit 3 when a finding reaches --fail-on.
    Check(CheckArgs),
}

#[derive(Debug, clap::Args)]
struct CheckArgs {
    /// Manifests: YAML files, folders (read recursively) or `-` for stdin (kustomize or Helm
    /// output piped in).
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Also check this spec's network (config folder with base/ and overlays/).
    #[arg(long = "config", short = 'c', value_name = "DIR")]
    config: Option<PathBuf>,
    /// Overlay of --config; repeat to stack them.
    #[arg(long = "overlay", value_name = "NAME", requires = "config")]
    overlays: Vec<String>,
    /// Output format.
    #[arg(long, short = 'f', default_value = "text", value_parser = parse_format)]
    format: enclave_check::Format,
    /// Exit 3 when an active finding at or above this severity exists.
    #[arg(long, default_value = "info", value_parser = parse_severity)]
    fail_on: Severity,
    /// Accept the findings recorded in this baseline file.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// Record every active finding in this baseline file, then exit 0.
    #[arg(long, value_name = "FILE", conflicts_with = "baseline")]
    write_baseline: Option<PathBuf>,
    /// Skip schema validation.
    #[arg(long, conflicts_with = "schema_only")]
    no_schema: bool,
    /// Only validate against the schema.
    #[arg(long)]
    schema_only: bool,
    /// Write the report to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// List the rules (id, Checkov id, severity, summary) and exit.
    #[arg(long)]
    list_rules: bool,
}

fn parse_format(value: &str) -> Result<enclave_check::Format, String> {
    value.parse()
}

#[derive(Debug, Subcommand)]
enum ScalingCommand {
    /// Replay an HPA over a load trace with the upstream algorithm; writes timeline.csv and
    /// chart.svg to OUT.
    Simulate {
        /// The HorizontalPodAutoscaler manifest (autoscaling/v2).
        #[arg(long, value_name = "HPA.yaml")]
        hpa: PathBuf,
        /// CSV with header `time_s,total_usage[,unready_pods][,missing_pods]`.
        #[arg(long, value_name = "TRACE.csv")]
        trace: PathBuf,
        /// Output folder.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// The pod's request of the target resource (needed for Utilization targets), e.g. 500m.
        #[arg(long, value_name = "QUANTITY")]
        request: Option<String>,
        /// Replicas at time 0 (default: minReplicas).
        #[arg(long, value_name = "N")]
        initial_replicas: Option<i32>,
        /// Seconds from pod creation to Ready.
        #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
        readiness_delay: f64,
        /// The metric the trace measures, when the HPA has several.
        #[arg(long, value_name = "NAME")]
        metric: Option<String>,
        /// Output format of the summary.
        #[arg(long, short, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

#[derive(Debug, clap::Args)]
struct SpecArgs {
    /// Config folder holding `base/` and `overlays/<name>/`.
    #[arg(long = "config", short = 'c', value_name = "DIR", default_value = "configs")]
    dir: PathBuf,
    /// Overlay to apply on top of base; repeat to stack them in order.
    #[arg(long = "overlay", value_name = "NAME")]
    overlays: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct CloudArgs {
    /// Limit to one account.
    #[arg(long, value_name = "NAME")]
    account: Option<String>,
    /// Send every AWS call here (moto, a proxy); `AWS_ENDPOINT_URL` works too.
    #[arg(long, value_name = "URL")]
    endpoint_url: Option<String>,
    /// Print the AWS calls made, by operation (always included in JSON output).
    #[arg(long)]
    stats: bool,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = Output::Text)]
    output: Output,
    /// Give up waiting for a NAT gateway, an endpoint or a blocked delete after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    wait_timeout: u64,
    /// Leave the resources of accounts removed from the spec where they are (they stay in the
    /// stack's record, and every plan says so) instead of planning their deletion.
    #[arg(long)]
    keep_removed_accounts: bool,
}

/// Flags of the commands that change things (`apply`, `destroy`).
#[derive(Debug, clap::Args)]
struct ChangeArgs {
    /// Go ahead without asking (required when stdin is not a terminal).
    #[arg(long)]
    yes: bool,
    /// Steps in flight at once, across accounts.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=100))]
    parallelism: u16,
    /// Text output: one line per resource, without attributes.
    #[arg(long)]
    compact: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum DiagramFormat {
    Mermaid,
    Dot,
    Svg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

fn parse_severity(value: &str) -> Result<Severity, String> {
    value.parse()
}

/// How a command ended, beyond success.
enum Failure {
    /// Bad input: exit 2.
    Invalid { diagnostics: Vec<Diagnostic>, output: Output },
    /// Findings or drift: exit 3 (already printed).
    Findings,
    /// Bad usage that is not a spec error (a path that cannot be read): exit 2.
    Usage(anyhow::Error),
    /// Anything else: exit 1.
    Runtime(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure::Runtime(error)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Invalid { diagnostics, output }) => {
            report_invalid(&diagnostics, output);
            ExitCode::from(2)
        }
        Err(Failure::Findings) => ExitCode::from(3),
        Err(Failure::Usage(error)) => report_error(&error, 2),
        Err(Failure::Runtime(error)) => report_error(&error, 1),
    }
}

fn report_error(error: &anyhow::Error, code: u8) -> ExitCode {
    let mut stderr = anstream::stderr();
    let _ = writeln!(stderr, "{}error:{} {error:#}", red().render(), red().render_reset());
    ExitCode::from(code)
}

fn red() -> Style {
    Style::new().bold().fg_color(Some(AnsiColor::Red.into()))
}

fn report_invalid(diagnostics: &[Diagnostic], output: Output) {
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

fn print_json(value: &impl Serialize) {
    let mut stdout = std::io::stdout().lock();
    let _ = serde_json::to_writer_pretty(&mut stdout, value);
    let _ = writeln!(stdout);
}

fn invalid(error: Error, output: Output) -> Failure {
    match error {
        Error::Invalid { diagnostics } => Failure::Invalid { diagnostics, output },
        // A file or folder the user named cannot be read: their input, exit 2.
        read @ Error::Read { .. } => Failure::Usage(read.into()),
        other => Failure::Runtime(other.into()),
    }
}

/// Loads the layered spec and builds the network model: every input error surfaces here,
/// before anything else happens.
fn load(args: &SpecArgs, output: Output) -> Result<(Loaded, NetworkModel), Failure> {
    let options = LoadOptions { dir: args.dir.clone(), overlays: args.overlays.clone() };
    enclave::load(&options).map_err(|e| invalid(e, output))
}

fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Validate { spec, output, fail_on } => validate(&spec, output, fail_on),
        Command::Plan { spec, offline: true, cloud, compact } => {
            plan_offline(&spec, cloud.account.as_deref(), cloud.output, compact)
        }
        #[cfg(feature = "cloud")]
        Command::Plan { spec, offline: false, cloud: args, compact } => {
            commands::run(&spec, &args, commands::Mode::Plan, compact)
        }
        #[cfg(feature = "cloud")]
        Command::Apply { spec, cloud: args, change } => commands::run(
            &spec,
            &args,
            commands::Mode::Apply { yes: change.yes, parallelism: change.parallelism.into() },
            change.compact,
        ),
        #[cfg(feature = "cloud")]
        Command::Drift { spec, cloud: args, compact } => commands::run(&spec, &args, commands::Mode::Drift, compact),
        #[cfg(feature = "cloud")]
        Command::Destroy { spec, cloud: args, change } => commands::run(
            &spec,
            &args,
            commands::Mode::Destroy { yes: change.yes, parallelism: change.parallelism.into() },
            change.compact,
        ),
        #[cfg(not(feature = "cloud"))]
        Command::Plan { .. } | Command::Apply { .. } | Command::Drift { .. } | Command::Destroy { .. } => Err(
            Failure::Usage(anyhow::anyhow!("this enclave was built without the `cloud` feature; use `plan --offline`")),
        ),
        Command::Diagram { spec, format, out } => diagram(&spec, format, out.as_deref()),
        Command::Schema => {
            print_json(&schemars::schema_for!(enclave_core::Spec));
            Ok(())
        }
        Command::Render { spec, out, output } => render(&spec, &out, output),
        Command::Check(args) => check(&args),
        Command::Scaling {
            command:
                ScalingCommand::Simulate { hpa, trace, out, request, initial_replicas, readiness_delay, metric, output },
        } => simulate(&hpa, &trace, &out, request, initial_replicas, readiness_delay, metric, output),
    }
}

fn check(args: &CheckArgs) -> Result<(), Failure> {
    let mut rules = enclave_check::catalogue();
    rules.extend(enclave::network_rule_infos());
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
            report.extend(enclave::network_findings(&loaded, &model));
        }
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

fn diagram(args: &SpecArgs, format: DiagramFormat, out: Option<&std::path::Path>) -> Result<(), Failure> {
    let (loaded, model) = load(args, Output::Text)?;
    let organization = loaded.spec.organization.name.to_string();
    let text = match format {
        DiagramFormat::Mermaid => enclave::diagram::mermaid(&model, &organization),
        DiagramFormat::Dot | DiagramFormat::Svg => enclave::diagram::dot(&model, &organization),
    };
    let bytes = if format == DiagramFormat::Svg {
        let mut child = std::process::Command::new("dot")
            .arg("-Tsvg")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| {
                Failure::Runtime(anyhow::anyhow!(
                    "--format svg needs Graphviz's `dot` on PATH ({e}); --format dot or mermaid work without it"
                ))
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(text.as_bytes()).map_err(|e| Failure::Runtime(e.into()))?;
        }
        let output = child.wait_with_output().map_err(|e| Failure::Runtime(e.into()))?;
        if !output.status.success() {
            return Err(Failure::Runtime(anyhow::anyhow!("dot failed: {}", String::from_utf8_lossy(&output.stderr))));
        }
        output.stdout
    } else {
        text.into_bytes()
    };
    match out {
        Some(path) => std::fs::write(path, &bytes)
            .map_err(|e| Failure::Runtime(anyhow::anyhow!("cannot write {}: {e}", path.display())))?,
        None => std::io::stdout().write_all(&bytes).map_err(|e| Failure::Runtime(e.into()))?,
    }
    Ok(())
}

fn usage_error(message: String, output: Output) -> Failure {
    Failure::Invalid {
        diagnostics: vec![Diagnostic { span: None, path: enclave_core::FieldPath::root(), message }],
        output,
    }
}

fn render(args: &SpecArgs, out: &std::path::Path, output: Output) -> Result<(), Failure> {
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

#[allow(clippy::too_many_arguments)]
fn simulate(
    hpa_path: &std::path::Path,
    trace_path: &std::path::Path,
    out: &std::path::Path,
    request: Option<String>,
    initial_replicas: Option<i32>,
    readiness_delay: f64,
    metric: Option<String>,
    output: Output,
) -> Result<(), Failure> {
    use enclave_scaling::hpa::{chart, simulate};
    let hpa: k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler =
        enclave_core::config::read_typed(hpa_path).map_err(|e| invalid(e, output))?;
    let trace = simulate::read_trace(trace_path).map_err(|e| usage_error(e.to_string(), output))?;
    let request = request
        .map(|text| text.parse::<enclave_core::spec::Quantity>())
        .transpose()
        .map_err(|e| usage_error(format!("--request: {e}"), output))?;
    if request.as_ref().is_some_and(|q| q.milli() <= 0) {
        return Err(usage_error("--request must be above zero".into(), output));
    }
    let options = simulate::Options { request, initial_replicas, readiness_delay: Some(readiness_delay), metric };
    let steps = simulate::simulate(&hpa, &trace, &options)
        .map_err(|e| usage_error(format!("{}: {e}", hpa_path.display()), output))?;
    std::fs::create_dir_all(out)
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("cannot create {}: {e}", out.display())))?;
    let timeline = out.join("timeline.csv");
    simulate::write_timeline(&steps, &timeline).map_err(|e| Failure::Runtime(e.into()))?;
    let chart_path = out.join("chart.svg");
    let target = simulate::target_line(&hpa, &options);
    let unit = if options.request.is_some() { "utilization (% of request)" } else { "metric value" };
    chart::draw_svg(&steps, target, unit, &chart_path).map_err(|e| Failure::Runtime(e.into()))?;
    let changes: Vec<&simulate::Step> = steps.iter().filter(|s| s.desired_replicas != s.replicas).collect();
    let peak = steps.iter().map(|s| s.desired_replicas.max(s.replicas)).max().unwrap_or(0);
    match output {
        Output::Json => print_json(&serde_json::json!({
            "timeline": timeline,
            "chart": chart_path,
            "syncs": steps.len(),
            "peak_replicas": peak,
            "changes": changes,
        })),
        Output::Text => {
            let mut stdout = anstream::stdout();
            let _ = writeln!(
                stdout,
                "{} syncs over {} s, peak {peak} replicas",
                steps.len(),
                steps.last().map_or(0.0, |s| s.time_s)
            );
            for step in changes {
                let _ = writeln!(
                    stdout,
                    "  t={:>5}s  {:>3} -> {:<3} {:<18} utilization {}",
                    step.time_s, step.replicas, step.desired_replicas, step.reason, step.utilization
                );
            }
            let _ = writeln!(stdout, "wrote {} and {}", timeline.display(), chart_path.display());
        }
    }
    Ok(())
}

fn validate(args: &SpecArgs, output: Output, fail_on: Severity) -> Result<(), Failure> {
    let (loaded, model) = load(args, output)?;
    let rules = enclave_net::guardrails::rules();
    let report = rules.run(&model);
    let failing = report.fails(fail_on);
    match output {
        Output::Json => print_json(&serde_json::json!({
            "valid": true,
            "stack": model.stack,
            "region": model.region,
            "overlays": args.overlays,
            "files": loaded.files,
            "accounts": enclave::account_summaries(&loaded, &model),
            "rules": rules.rules().count(),
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
            print_findings(&mut out, &report, rules.rules().count());
        }
    }
    if failing { Err(Failure::Findings) } else { Ok(()) }
}

fn print_findings(out: &mut impl Write, report: &Report, rules: usize) {
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

fn plan_offline(args: &SpecArgs, account: Option<&str>, output: Output, compact: bool) -> Result<(), Failure> {
    let (loaded, mut model) = load(args, output)?;
    enclave::select_account(&loaded, &mut model, account).map_err(|e| invalid(e, output))?;
    let desired = enclave_net::resources::desired(&model);
    let plan: Plan = plan::diff(&desired, &[]).map_err(|cycle| Failure::Runtime(cycle.into()))?;
    let accounts: Vec<(String, String)> = model
        .accounts
        .iter()
        .map(|network| (network.account.clone(), format!("{}, {}", network.account_id, network.vpc.cidr)))
        .collect();
    match output {
        Output::Json => print_json(&serde_json::json!({
            "format_version": 1,
            "mode": "offline",
            "stack": model.stack,
            "region": model.region,
            "overlays": args.overlays,
            "accounts": enclave::account_summaries(&loaded, &model),
            "changes": plan.changes,
            "summary": plan.summary(),
        })),
        Output::Text => {
            let mut out = anstream::stdout();
            let _ = writeln!(
                out,
                "Offline plan for stack {} in {}: nothing was observed, so everything in the spec is shown as a create.\n",
                model.stack, model.region
            );
            let text = plan::render_text(&plan, &TextOptions { color: true, accounts, attributes: !compact });
            let _ = out.write_all(text.as_bytes());
        }
    }
    Ok(())
}

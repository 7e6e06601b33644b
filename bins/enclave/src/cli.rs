//! The command line's shape: every command, argument and flag, as clap types. Checks that
//! need more than clap (a known account, a readable file) happen once, in the library.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use enclave_core::guardrail::Severity;

/// Declare a private-subnet, multi-account AWS platform and plan it.
#[derive(Debug, Parser)]
#[command(name = "enclave", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
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
    /// Seal a Kubernetes Secret for the sealed-secrets controller (what kubeseal writes, byte
    /// for byte compatible): only the controller can open it, so it can sit in git.
    Seal(SealArgs),
    /// Open a SealedSecret with the controller's private key (recovery; what `kubeseal
    /// --recovery-unseal` does): prints the Secret.
    Unseal(UnsealArgs),
    /// Roll a new image of an app out blue-green on its cluster, analysed against the app's own
    /// alert thresholds, with automatic rollback; the state lives in the cluster.
    Rollout {
        #[command(subcommand)]
        command: RolloutCommand,
    },
    /// Draw the platform: accounts stacked, each with its VPC (AZs, tiers, NAT, endpoints),
    /// access (bastion, session logs, trail), clusters with node groups and apps, and the
    /// registry; with a legend.
    Diagram {
        #[command(flatten)]
        spec: SpecArgs,
        /// Picture format; svg and png are drawn by enclave itself (png needs --out on a terminal).
        #[arg(long, value_enum, default_value_t = DiagramFormat::Mermaid)]
        format: DiagramFormat,
        /// Write to this file instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Write every rendered Kubernetes object of the spec as YAML files under OUT
    /// (`render pipeline`: the delivery workflows instead).
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Render {
        #[command(subcommand)]
        what: Option<RenderCommand>,
        #[command(flatten)]
        spec: SpecArgs,
        /// Output folder: `OUT/<cluster>/<namespace or _cluster>/<kind>-<name>.yaml`.
        #[arg(long, value_name = "OUT", required = true)]
        out: Option<PathBuf>,
        /// Output format of the summary.
        #[arg(long, short, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Access tools.
    Access {
        #[command(subcommand)]
        command: AccessCommand,
    },
    /// Deploy tools.
    Deploy {
        #[command(subcommand)]
        command: DeployCommand,
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

#[derive(Debug, Subcommand)]
pub(crate) enum AccessCommand {
    /// Write every IAM, key, bucket, repository and trust policy the spec's access and deploy
    /// resources carry, one JSON file each (`<account>-<kind>-<name>-<attribute>.json`), for
    /// review or a policy linter.
    Policies {
        #[command(flatten)]
        spec: SpecArgs,
        /// Output folder (created if needed; nothing is written outside it).
        #[arg(long, value_name = "OUT")]
        out: PathBuf,
    },
    /// Open a Session Manager session on an account's bastion (a shell, or a forwarded port):
    /// finds the stack's running bastion and runs `aws ssm start-session` as the member role.
    /// No SSH anywhere.
    Connect {
        #[command(flatten)]
        spec: SpecArgs,
        /// The account (its name in the spec).
        #[arg(value_name = "ACCOUNT")]
        account: String,
        /// Forward local port PORT to HOST:PORT through the bastion instead of opening a shell.
        #[arg(long, value_name = "HOST:PORT")]
        port_forward: Option<enclave_access::connect::PortForward>,
        /// Print the command instead of running it.
        #[arg(long)]
        print: bool,
        /// Send every AWS call here (moto, a proxy); `AWS_ENDPOINT_URL` works too.
        #[arg(long, value_name = "URL")]
        endpoint_url: Option<String>,
        /// Output format (with --print).
        #[arg(long, short, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct CheckArgs {
    /// Manifests: YAML files, folders (read recursively) or `-` for stdin (kustomize or Helm
    /// output piped in).
    #[arg(value_name = "PATH")]
    pub(crate) paths: Vec<PathBuf>,
    /// Also check this spec's network (config folder with base/ and overlays/).
    #[arg(long = "config", short = 'c', value_name = "DIR")]
    pub(crate) config: Option<PathBuf>,
    /// Overlay of --config; repeat to stack them.
    #[arg(long = "overlay", value_name = "NAME", requires = "config")]
    pub(crate) overlays: Vec<String>,
    /// Output format.
    #[arg(long, short = 'f', default_value = "text", value_parser = parse_format)]
    pub(crate) format: enclave_check::Format,
    /// Exit 3 when an active finding at or above this severity exists.
    #[arg(long, default_value = "info", value_parser = parse_severity)]
    pub(crate) fail_on: Severity,
    /// Accept the findings recorded in this baseline file.
    #[arg(long, value_name = "FILE")]
    pub(crate) baseline: Option<PathBuf>,
    /// Record every active finding in this baseline file, then exit 0.
    #[arg(long, value_name = "FILE", conflicts_with = "baseline")]
    pub(crate) write_baseline: Option<PathBuf>,
    /// Skip schema validation.
    #[arg(long, conflicts_with = "schema_only")]
    pub(crate) no_schema: bool,
    /// Only validate against the schema.
    #[arg(long)]
    pub(crate) schema_only: bool,
    /// Write the report to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
    /// List the rules (id, Checkov id, severity, summary) and exit.
    #[arg(long)]
    pub(crate) list_rules: bool,
}

pub(crate) fn parse_format(value: &str) -> Result<enclave_check::Format, String> {
    value.parse()
}

#[derive(Debug, Subcommand)]
pub(crate) enum ScalingCommand {
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

#[derive(Debug, Subcommand)]
pub(crate) enum DeployCommand {
    /// Read an image's scan findings from the stack's registry (waiting while the scan runs) and
    /// exit 3 when any finding is at or above --fail-on, listing them.
    ScanGate {
        #[command(flatten)]
        spec: SpecArgs,
        /// The app whose repository holds the image.
        #[arg(long, value_name = "NAME")]
        app: String,
        /// The image's tag.
        #[arg(long, value_name = "TAG")]
        tag: String,
        /// The lowest severity that fails the gate.
        #[arg(long, value_name = "SEVERITY", default_value = "high", value_parser = parse_scan_severity)]
        fail_on: enclave_deploy::severity::Severity,
        /// Give up waiting for a running scan after this many seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 600)]
        wait_timeout: u64,
        /// Send every AWS call here (moto, a proxy); `AWS_ENDPOINT_URL` works too.
        #[arg(long, value_name = "URL")]
        endpoint_url: Option<String>,
        /// Output format.
        #[arg(long, short, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

pub(crate) fn parse_scan_severity(value: &str) -> Result<enclave_deploy::severity::Severity, String> {
    value.parse().map_err(|error: enclave_deploy::severity::UnknownSeverity| error.to_string())
}

/// What `enclave render` writes besides the cluster bundles.
#[derive(Debug, Subcommand)]
pub(crate) enum RenderCommand {
    /// The delivery pipeline: one GitHub Actions workflow per app, `OUT/deliver-<app>.yml`
    /// (other files in OUT are left alone).
    Pipeline {
        #[command(flatten)]
        spec: SpecArgs,
        /// Output folder, usually `.github/workflows`.
        #[arg(long, value_name = "OUT")]
        out: PathBuf,
        /// Output format of the summary.
        #[arg(long, short, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

/// `enclave rollout` subcommands. Every one but `status` drives the rollout (this process is
/// its controller while it runs) until it is stable, rolled back or waits for a person.
#[derive(Debug, Subcommand)]
pub(crate) enum RolloutCommand {
    /// Start rolling out IMAGE (from the stack's registry) beside the running version.
    Start {
        #[command(flatten)]
        rollout: RolloutArgs,
        /// The new image: `<registry>/<app>:<tag>` or `@sha256:...`.
        #[arg(long, value_name = "IMAGE")]
        image: String,
    },
    /// Show the rollout: phase, both versions' readiness, analysis measurements, decisions.
    /// Exit 3 when it was rolled back, is inconclusive, or the serving version lacks ready Pods.
    Status {
        #[command(flatten)]
        rollout: RolloutArgs,
        /// Keep showing it as it changes (until interrupted or settled).
        #[arg(long)]
        watch: bool,
        /// Output format.
        #[arg(long, short, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Switch traffic to the new version now (or re-run an inconclusive analysis).
    Promote {
        #[command(flatten)]
        rollout: RolloutArgs,
    },
    /// Switch traffic back to the stable version and stop the rollout.
    Abort {
        #[command(flatten)]
        rollout: RolloutArgs,
    },
    /// During a rollout, back to the stable version at once; after one, roll the previous
    /// version out again.
    Undo {
        #[command(flatten)]
        rollout: RolloutArgs,
    },
    /// Go on driving a rollout whose `enclave` process was stopped.
    Resume {
        #[command(flatten)]
        rollout: RolloutArgs,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct RolloutArgs {
    #[command(flatten)]
    pub(crate) spec: SpecArgs,
    /// The app.
    #[arg(long, value_name = "NAME")]
    pub(crate) app: String,
    /// Kubeconfig file (else `KUBECONFIG`, else `~/.kube/config`, else in-cluster).
    #[arg(long, value_name = "FILE")]
    pub(crate) kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (else its current one).
    #[arg(long, value_name = "NAME")]
    pub(crate) context: Option<String>,
    /// Prometheus's URL; else through the API server's proxy to
    /// `monitoring/prometheus-operated:9090`.
    #[arg(long, value_name = "URL")]
    pub(crate) prometheus_url: Option<String>,
    /// Return once the step is recorded, without driving the rollout.
    #[arg(long)]
    pub(crate) no_wait: bool,
    /// Give up driving after this many seconds (the rollout stays where it is; `resume` goes on).
    #[arg(long, value_name = "SECONDS", default_value_t = 1800)]
    pub(crate) timeout: u64,
}

#[derive(Debug, clap::Args)]
pub(crate) struct SpecArgs {
    /// Config folder holding `base/` and `overlays/<name>/`.
    #[arg(long = "config", short = 'c', value_name = "DIR", default_value = "configs")]
    pub(crate) dir: PathBuf,
    /// Overlay to apply on top of base; repeat to stack them in order.
    #[arg(long = "overlay", value_name = "NAME")]
    pub(crate) overlays: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct CloudArgs {
    /// Limit to one account.
    #[arg(long, value_name = "NAME")]
    pub(crate) account: Option<String>,
    /// Limit to these domains (comma-separated); the others are neither planned nor changed.
    /// Default: every domain the spec enables.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "DOMAINS")]
    pub(crate) only: Vec<enclave::platform::Domain>,
    /// Send every AWS call here (moto, a proxy); `AWS_ENDPOINT_URL` works too.
    #[arg(long, value_name = "URL")]
    pub(crate) endpoint_url: Option<String>,
    /// Print the AWS calls made, by operation (always included in JSON output).
    #[arg(long)]
    pub(crate) stats: bool,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = Output::Text)]
    pub(crate) output: Output,
    /// Give up waiting for a NAT gateway, an endpoint or a blocked delete after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub(crate) wait_timeout: u64,
    /// Leave the resources of accounts removed from the spec where they are (they stay in the
    /// stack's record, and every plan says so) instead of planning their deletion.
    #[arg(long)]
    pub(crate) keep_removed_accounts: bool,
    /// Replace running bastions with the latest Amazon Linux 2023 image when theirs is older
    /// (without it, a running bastion keeps its image and the plan notes the newer one).
    #[arg(long)]
    pub(crate) replace_bastion: bool,
    /// Let an apply or destroy delete ECR repositories that still hold images, with their
    /// images (without it, such a delete fails and names the repository).
    #[arg(long)]
    pub(crate) force_images: bool,
    /// Delete secrets at once instead of scheduling their deletion with the recovery window
    /// the spec gives (7 days by default); nothing can restore them afterwards.
    #[arg(long)]
    pub(crate) force_delete_secrets: bool,
}

/// Flags of the commands that change things (`apply`, `destroy`).
#[derive(Debug, clap::Args)]
pub(crate) struct ChangeArgs {
    /// Go ahead without asking (required when stdin is not a terminal).
    #[arg(long)]
    pub(crate) yes: bool,
    /// Steps in flight at once, across accounts.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub(crate) parallelism: u16,
    /// Text output: one line per resource, without attributes.
    #[arg(long)]
    pub(crate) compact: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum DiagramFormat {
    /// A Mermaid flowchart (GitHub and GitLab render it in Markdown).
    Mermaid,
    /// Graphviz DOT.
    Dot,
    /// SVG, laid out by enclave.
    Svg,
    /// PNG, rendered from the SVG by enclave (resvg, embedded font).
    Png,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    Text,
    Json,
}

pub(crate) fn parse_severity(value: &str) -> Result<Severity, String> {
    value.parse()
}

/// How sealed a secret is: who may open it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum SealScope {
    /// Only under its name, in its namespace (the default).
    Strict,
    /// Under any name in its namespace.
    NamespaceWide,
    /// Anywhere (a guardrail warns).
    ClusterWide,
}

/// Format of sealed and unsealed objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ObjectFormat {
    /// Indented JSON (kubeseal's default).
    Json,
    /// YAML.
    Yaml,
}

/// `enclave seal`.
#[derive(Debug, clap::Args)]
pub(crate) struct SealArgs {
    /// The controller's certificate (`kubeseal --fetch-cert`, or the `tls.crt` of its key).
    #[arg(long, value_name = "CERT.pem")]
    pub(crate) cert: PathBuf,
    /// Who may open it; else the Secret's scope annotation; else strict.
    #[arg(long, value_enum)]
    pub(crate) scope: Option<SealScope>,
    /// The namespace, when the Secret names none (it must agree when it does).
    #[arg(long, short = 'n', value_name = "NAMESPACE")]
    pub(crate) namespace: Option<String>,
    /// The name, instead of the Secret's.
    #[arg(long, value_name = "NAME")]
    pub(crate) name: Option<String>,
    /// The Secret (YAML or JSON); `-` or nothing reads stdin. With `--re-encrypt`, SealedSecrets.
    #[arg(long = "file", short = 'f', value_name = "FILE")]
    pub(crate) file: Option<PathBuf>,
    /// Add the Secret's keys to this SealedSecret file (rewritten in place), keeping its others.
    #[arg(long, value_name = "FILE", conflicts_with = "re_encrypt")]
    pub(crate) merge_into: Option<PathBuf>,
    /// Open SealedSecrets with `--key` (the old private key) and seal them again for `--cert`
    /// (a rotated controller key), keeping name, namespace and scope.
    #[arg(long, requires = "key")]
    pub(crate) re_encrypt: bool,
    /// The private key opening what `--re-encrypt` reads (PEM, or the controller's key Secret).
    #[arg(long, value_name = "KEY.pem")]
    pub(crate) key: Option<PathBuf>,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = ObjectFormat::Json)]
    pub(crate) output: ObjectFormat,
}

/// `enclave unseal`.
#[derive(Debug, clap::Args)]
pub(crate) struct UnsealArgs {
    /// The controller's private key(s): PEM, or its key Secrets (`kubectl get secret -n
    /// sealed-secrets -l sealedsecrets.bitnami.com/sealed-secrets-key -o yaml`; the add-on runs
    /// the controller in `sealed-secrets`).
    #[arg(long, value_name = "KEY.pem", required = true)]
    pub(crate) key: Vec<PathBuf>,
    /// The SealedSecret (YAML or JSON); `-` or nothing reads stdin.
    #[arg(long = "file", short = 'f', value_name = "FILE")]
    pub(crate) file: Option<PathBuf>,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = ObjectFormat::Json)]
    pub(crate) output: ObjectFormat,
}

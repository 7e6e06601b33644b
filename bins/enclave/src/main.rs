//! The `enclave` command line: a switchboard over the library crates.
//!
//! Parses arguments (`cli`), calls one library function per command (`offline`: validate,
//! offline plans, diagram, render; `commands`: plan, apply, drift and destroy against AWS;
//! `check`; `scaling`), prints the result as text or JSON (`output`) and maps the outcome to an
//! exit code: 0 ok, 1 runtime failure, 2 invalid input or usage, 3 drift or findings present.

use std::process::ExitCode;

use clap::Parser;
use enclave_core::{Diagnostic, Error, LoadOptions, Loaded};
use enclave_net::NetworkModel;

mod check;
mod cli;
#[cfg(feature = "cloud")]
mod commands;
mod offline;
mod output;
#[cfg(feature = "cluster")]
mod rollout;
mod scaling;
mod seal;

use cli::{AccessCommand, Cli, Command, DeployCommand, Output, RenderCommand, ScalingCommand, SpecArgs};
use output::{report_error, report_invalid};

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
    // Diagnostics of enclave and the AWS SDK on stderr when `RUST_LOG` asks for them
    // (`RUST_LOG=enclave=debug,aws_smithy_runtime=trace`); nothing otherwise. Sensitive values
    // never reach a log line: they are `Secret`s, and the SDK redacts its sensitive fields.
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
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
        Command::Validate { spec, output, fail_on } => offline::validate(&spec, output, fail_on),
        Command::Plan { spec, offline: true, cloud, compact } => offline::plan_offline(&spec, &cloud, compact),
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
        Command::Seal(args) => seal::seal(&args),
        Command::Unseal(args) => seal::unseal(&args),
        #[cfg(feature = "cluster")]
        Command::Rollout { command } => rollout::run(command),
        #[cfg(not(feature = "cluster"))]
        Command::Rollout { .. } => Err(Failure::Usage(anyhow::anyhow!(
            "this enclave was built without the `cluster` feature; `rollout` needs it"
        ))),
        Command::Diagram { spec, format, out } => offline::diagram(&spec, format, out.as_deref()),
        Command::Schema => {
            output::print_json(&schemars::schema_for!(enclave_core::Spec));
            Ok(())
        }
        Command::Render { what: Some(RenderCommand::Pipeline { spec, out, output }), .. } => {
            offline::pipeline(&spec, &out, output)
        }
        Command::Render { what: None, spec, out, output } => match out {
            Some(out) => offline::render(&spec, &out, output),
            None => Err(Failure::Usage(anyhow::anyhow!("`render` needs `--out DIR`"))),
        },
        Command::Check(args) => check::check(&args),
        Command::Access { command: AccessCommand::Policies { spec, out } } => offline::policies(&spec, &out),
        #[cfg(feature = "cloud")]
        Command::Access {
            command: AccessCommand::Connect { spec, account, port_forward, print, endpoint_url, output },
        } => commands::connect(&spec, &account, port_forward.as_ref(), print, endpoint_url, output),
        #[cfg(not(feature = "cloud"))]
        Command::Access { command: AccessCommand::Connect { .. } } => Err(Failure::Usage(anyhow::anyhow!(
            "this enclave was built without the `cloud` feature; `access connect` needs it"
        ))),
        #[cfg(feature = "cloud")]
        Command::Deploy {
            command: DeployCommand::ScanGate { spec, app, tag, fail_on, wait_timeout, endpoint_url, output },
        } => commands::scan_gate(&spec, &app, &tag, fail_on, wait_timeout, endpoint_url, output),
        #[cfg(not(feature = "cloud"))]
        Command::Deploy { command: DeployCommand::ScanGate { .. } } => Err(Failure::Usage(anyhow::anyhow!(
            "this enclave was built without the `cloud` feature; `deploy scan-gate` needs it"
        ))),
        Command::Scaling {
            command:
                ScalingCommand::Simulate { hpa, trace, out, request, initial_replicas, readiness_delay, metric, output },
        } => scaling::simulate(&hpa, &trace, &out, request, initial_replicas, readiness_delay, metric, output),
    }
}

/// The async runtime of the commands that call AWS or a cluster: two workers.
#[cfg(any(feature = "cloud", feature = "cluster"))]
fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(e.into()))
}

fn usage_error(message: String, output: Output) -> Failure {
    Failure::Invalid {
        diagnostics: vec![Diagnostic { span: None, path: enclave_core::FieldPath::root(), message }],
        output,
    }
}

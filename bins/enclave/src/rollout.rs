//! `enclave rollout`: blue-green rollouts of an app on its cluster, driven by this process
//! (`enclave_deploy::rollout::cluster`), from the spec's `rollout` block and the app's alert
//! thresholds.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use enclave_core::names::METRICS_PORT_NAME;
use enclave_deploy::rollout::analysis::Measurement;
use enclave_deploy::rollout::bluegreen::{Event, Pause, Rollout, Step};
use enclave_deploy::rollout::cluster::{self, Driver, Prometheus, Status, Target, revision_hash, settled};
use enclave_deploy::rollout::{REVISION_PLACEHOLDER, check_image, strategy};

use crate::cli::{Output, RolloutArgs, RolloutCommand};
use crate::{Failure, load, usage_error};

/// What a command does to the rollout before driving it.
enum Intent {
    Start(String),
    Promote,
    Abort,
    Undo,
    Resume,
}

pub(crate) fn run(command: RolloutCommand) -> Result<(), Failure> {
    let (args, intent, status) = match command {
        RolloutCommand::Start { rollout, image } => (rollout, Some(Intent::Start(image)), None),
        RolloutCommand::Promote { rollout } => (rollout, Some(Intent::Promote), None),
        RolloutCommand::Abort { rollout } => (rollout, Some(Intent::Abort), None),
        RolloutCommand::Undo { rollout } => (rollout, Some(Intent::Undo), None),
        RolloutCommand::Resume { rollout } => (rollout, Some(Intent::Resume), None),
        RolloutCommand::Status { rollout, watch, output } => (rollout, None, Some((watch, output))),
    };
    let output = status.map_or(Output::Text, |(_, output)| output);
    let (loaded, model) = load(&args.spec, output)?;
    let spec = &loaded.spec;
    let Some(app) = spec.apps.iter().find(|app| app.name.as_str() == args.app) else {
        let known: Vec<&str> = spec.apps.iter().map(|app| app.name.as_str()).collect();
        let hint = enclave_core::config::suggestion(&args.app, &known)
            .map(|best| format!(" (did you mean {best}?)"))
            .unwrap_or_default();
        return Err(usage_error(format!("no app named `{}` in the spec{hint}", args.app), output));
    };
    let registry = enclave::platform::deploy_model(spec, &model).registry;
    if let Some(Intent::Start(image)) = &intent {
        check_image(registry.as_ref(), app.name.as_str(), image)
            .map_err(|why| usage_error(format!("`--image` for {}: {why}", app.name), output))?;
    }
    // Images print without the registry host, which every one of them shares.
    let short = Short(registry.map(|r| format!("{}/", r.host)).unwrap_or_default());
    let pods = format!("{}-{REVISION_PLACEHOLDER}-.*", app.name);
    let readiness = enclave_monitor::render::probes(app).2.http_get.and_then(|g| g.path).unwrap_or_default();
    let target = Target {
        app: app.name.to_string(),
        namespace: app.namespace().to_string(),
        health_port: (METRICS_PORT_NAME.to_owned(), app.monitoring.port),
        strategy: strategy(&app.rollout, &enclave_monitor::render::analysis_queries(app, &pods), &readiness),
        // In a mesh cluster (with the app's sidecar) the VirtualService's weights switch traffic.
        mesh: app.mesh.sidecar && spec.clusters.iter().any(|c| c.name == app.cluster && c.mesh.is_some()),
    };
    let prometheus = match &args.prometheus_url {
        Some(url) => Prometheus::Url(url.clone()),
        None => Prometheus::Service {
            namespace: "monitoring".into(),
            name: "prometheus-operated".into(),
            port: "9090".into(),
        },
    };
    let runtime = crate::runtime()?;
    runtime.block_on(async {
        let client = client(&args).await.map_err(Failure::Runtime)?;
        let driver = Driver::new(client, target, prometheus);
        match (intent, status) {
            (Some(intent), _) => drive(&driver, intent, &args, &short).await,
            (None, Some((watch, output))) => show(&driver, watch, output, &short).await,
            (None, None) => Ok(()),
        }
    })
}

async fn client(args: &RolloutArgs) -> anyhow::Result<kube::Client> {
    let options = kube::config::KubeConfigOptions { context: args.context.clone(), ..Default::default() };
    let config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read the kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options).await?
        }
        None if args.context.is_some() => kube::Config::from_kubeconfig(&options).await?,
        None => kube::Config::infer().await.context("no cluster to talk to (no kubeconfig, not in a cluster)")?,
    };
    kube::Client::try_from(config).context("cannot make a Kubernetes client")
}

fn failure(error: cluster::Error) -> Failure {
    match error {
        // The cluster lacks what the spec promised, or its Deployment cannot roll out: the
        // user's input, exit 2.
        error @ (cluster::Error::NoReadinessProbe { .. }
        | cluster::Error::NotDeployed { .. }
        | cluster::Error::NoVirtualService { .. }) => Failure::Usage(error.into()),
        other => Failure::Runtime(other.into()),
    }
}

/// Shortens texts for people: the registry host (this prefix) is dropped from image names.
struct Short(String);

impl Short {
    fn text(&self, text: &str) -> String {
        if self.0.is_empty() { text.to_owned() } else { text.replace(&self.0, "") }
    }
}

async fn drive(driver: &Driver, intent: Intent, args: &RolloutArgs, short: &Short) -> Result<(), Failure> {
    // One read of the state: what `undo` goes back to, and the decisions not to print again.
    let state = driver.load().await.map_err(failure)?.map(|(rollout, _)| rollout);
    let event = match intent {
        Intent::Start(image) => Some(Event::Image(image)),
        Intent::Promote => Some(Event::Promote),
        Intent::Abort => Some(Event::Abort),
        Intent::Undo => {
            let Some(rollout) = &state else {
                return Err(Failure::Usage(anyhow::anyhow!("no rollout of {} yet: nothing to undo", args.app)));
            };
            let back =
                if rollout.desired != rollout.stable { Some(rollout.stable.clone()) } else { rollout.previous.clone() };
            let Some(back) = back else {
                return Err(Failure::Usage(anyhow::anyhow!("{} has no previous version to go back to", args.app)));
            };
            Some(Event::Image(back))
        }
        Intent::Resume => None,
    };
    let mut shown = state.map_or(0, |rollout| rollout.decisions.len());
    let started = std::time::Instant::now();
    let mut print = |rollout: &Rollout| {
        let mut out = anstream::stdout().lock();
        for decision in rollout.decisions.iter().skip(shown) {
            let line = format!("{}: {}", decision.what, decision.why);
            let _ = writeln!(out, "[{:>4}s] {}", started.elapsed().as_secs(), short.text(&line));
        }
        shown = rollout.decisions.len();
    };
    if let Some(event) = event {
        let rollout = driver.submit(event).await.map_err(failure)?;
        print(&rollout);
    }
    if args.no_wait {
        return Ok(());
    }
    let rollout = driver.drive(Duration::from_secs(args.timeout), &mut print).await.map_err(failure)?;
    print(&rollout);
    conclude(&rollout, &args.app, short)
}

/// Exit 0 when stable or waiting for a promotion, 3 when rolled back or inconclusive, 1 when
/// the time ran out first.
fn conclude(rollout: &Rollout, app: &str, short: &Short) -> Result<(), Failure> {
    let mut out = anstream::stdout().lock();
    match &rollout.step {
        Step::Healthy => {
            let _ = writeln!(out, "{app}: {} serves", short.text(&rollout.stable));
            Ok(())
        }
        Step::Paused { pause: Pause::Promotion } => {
            let _ = writeln!(out, "{app}: {} waits for `enclave rollout promote`", short.text(&rollout.desired));
            Ok(())
        }
        Step::Aborted { .. } => {
            let _ = writeln!(out, "{app}: rolled back; {} serves", short.text(&rollout.stable));
            Err(Failure::Findings)
        }
        Step::Paused { pause: Pause::Inconclusive { .. } } => {
            let _ =
                writeln!(out, "{app}: analysis inconclusive: `enclave rollout promote` re-runs it, `abort` rolls back");
            Err(Failure::Findings)
        }
        Step::Progressing
        | Step::Analysis { .. }
        | Step::ScaleDownDelay { .. }
        | Step::Paused { pause: Pause::AutoPromotion { .. } } => Err(Failure::Runtime(anyhow::anyhow!(
            "{app}: still rolling out when the time ran out; `enclave rollout resume --app {app}` goes on"
        ))),
    }
}

async fn show(driver: &Driver, watch: bool, output: Output, short: &Short) -> Result<(), Failure> {
    let mut last = None;
    loop {
        let Some(status) = driver.status().await.map_err(failure)? else {
            return Err(Failure::Usage(anyhow::anyhow!(
                "no rollout of this app yet: `enclave rollout start` begins one"
            )));
        };
        let text = match output {
            Output::Json => serde_json::to_string_pretty(&status).map_err(|e| Failure::Runtime(e.into()))?,
            Output::Text => short.text(&render(&status)),
        };
        if last.as_ref() != Some(&text) {
            let _ = writeln!(anstream::stdout().lock(), "{text}");
            last = Some(text);
        }
        if !watch || settled(&status.rollout) {
            return healthy(&status);
        }
        driver.wait(&status.rollout).await.map_err(failure)?;
    }
}

/// `status`'s verdict, like `kubectl rollout status`: exit 3 when the rollout was rolled back
/// or is inconclusive, or the version the active Service selects lacks ready Pods.
fn healthy(status: &Status) -> Result<(), Failure> {
    let serving = status.active_selects.as_ref().and_then(|image| status.revisions.iter().find(|r| &r.image == image));
    let ready = serving.is_some_and(|r| r.wanted > 0 && r.ready >= r.wanted);
    match &status.rollout.step {
        Step::Aborted { .. } | Step::Paused { pause: Pause::Inconclusive { .. } } => Err(Failure::Findings),
        Step::Healthy
        | Step::Progressing
        | Step::Analysis { .. }
        | Step::Paused { pause: Pause::Promotion | Pause::AutoPromotion { .. } }
        | Step::ScaleDownDelay { .. } => {
            if ready {
                Ok(())
            } else {
                Err(Failure::Findings)
            }
        }
    }
}

/// Seconds from now to `at` (the rollout's clock: seconds since the epoch), 0 when past.
fn seconds_until(at: u64) -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    at.saturating_sub(now)
}

/// The text view of `status`.
pub(crate) fn render(status: &Status) -> String {
    let rollout = &status.rollout;
    let phase = match &rollout.step {
        Step::Healthy => "Healthy".to_owned(),
        Step::Progressing => "Progressing: the new version scales up".to_owned(),
        Step::Analysis { stage } => format!("Analysis ({stage})"),
        Step::Paused { pause: Pause::Promotion } => "Paused: waiting for `promote`".to_owned(),
        Step::Paused { pause: Pause::AutoPromotion { until } } => {
            format!("Paused: promoted in {} s", seconds_until(*until))
        }
        Step::Paused { pause: Pause::Inconclusive { stage } } => format!("Paused: {stage} analysis inconclusive"),
        Step::ScaleDownDelay { until } => {
            format!("Promoted: the previous version is scaled down in {} s", seconds_until(*until))
        }
        Step::Aborted { .. } => "Aborted: rolled back".to_owned(),
    };
    let mut lines = vec![format!("Phase:    {phase}")];
    let mut revision = |role: &str, image: &str| {
        let hash = revision_hash(image);
        let found = status.revisions.iter().find(|r| r.image == image);
        let ready = match found {
            None => "not deployed".to_owned(),
            Some(r) if r.wanted == 0 => "scaled down".to_owned(),
            Some(r) => format!("{}/{} ready", r.ready, r.wanted),
        };
        let mut serving = Vec::new();
        if status.active_selects.as_deref() == Some(image) {
            serving.push("active");
        }
        if status.preview_selects.as_deref() == Some(image) {
            serving.push("preview");
        }
        let serving = if serving.is_empty() { String::new() } else { format!("  <- {}", serving.join(", ")) };
        lines.push(format!("{role:<9} {image} ({hash})  {ready}{serving}"));
    };
    revision("Stable:", &rollout.stable);
    if rollout.desired != rollout.stable {
        revision("New:", &rollout.desired);
    }
    if !rollout.analysis.is_empty() {
        lines.push("Analysis:".to_owned());
        for (name, state) in &rollout.analysis {
            // Repeats fold: `error (no data ...) x7`.
            let mut values: Vec<(String, usize)> = Vec::new();
            for (measurement, phase) in &state.measurements {
                let shown = match measurement {
                    Measurement::Value(v) => format!("{v:.4} {phase}"),
                    Measurement::Error(why) => format!("error ({why})"),
                };
                match values.last_mut() {
                    Some((last, count)) if *last == shown => *count += 1,
                    Some(_) | None => values.push((shown, 1)),
                }
            }
            let values: Vec<String> = values
                .into_iter()
                .map(|(shown, count)| if count > 1 { format!("{shown} x{count}") } else { shown })
                .collect();
            lines.push(format!("  {name:<12} {}", values.join(", ")));
        }
    }
    lines.push("Decisions:".to_owned());
    for decision in rollout.decisions.iter().rev().take(8).rev() {
        lines.push(format!("  {}: {}", decision.what, decision.why));
    }
    lines.join("\n")
}

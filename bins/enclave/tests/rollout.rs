//! `enclave rollout` end to end: the CLI, through a kubeconfig, against the fake API server on
//! loopback (`enclave-fake-kube`), whose kubelet runs each image's Pods as real `example-service`
//! processes and probes their readiness, with a real Prometheus scraping those Pods (found
//! through a file the test keeps in step with the Pods) and reached through the API server's
//! Service proxy, as in a cluster.
//!
//! The scenarios (ignored by default: they need `prometheus`, which `cargo xtask test`
//! installs; the bad-input tests need nothing and always run): a healthy new version is
//! promoted; a failing one never gets traffic; one failing after the switch is rolled back; a
//! killed CLI resumes. Each asserts which revision the active Service selected at each step and
//! that the active Service never lacked a ready Pod (the fake records every change that leaves
//! it without one).

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use enclave_deploy::rollout::cluster::revision_hash;
use enclave_fake_kube::cluster::{Backend, Kubelet};
use enclave_fake_kube::{Fake, Kind};
use serde_json::{Value, json};

mod common;

const REGISTRY: &str = "333333333333.dkr.ecr.eu-west-1.amazonaws.com";
const NAMESPACE: &str = "orders";

/// Kills the process when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free loopback port")
}

fn image(tag: &str) -> String {
    format!("{REGISTRY}/orders:{tag}")
}

/// The reference config with orders running `orders:1.0` and its rollout tuned for a test: six
/// measurements 1 s apart, 2 s scale-down delays, patience for Prometheus's first samples. The
/// cluster's mesh is off: these tests switch the active Service (the mesh's switch, by the
/// VirtualService's weights, is `crates/deploy/tests/cluster.rs`'s).
fn config(root: &Path) -> String {
    common::reference_with(root, "base/clusters.yaml", |text| {
        let anchor = "  - name: orders\n";
        assert!(text.contains(anchor), "orders is in base/clusters.yaml");
        assert!(text.contains("    mesh: {}\n"), "platform-prod has a mesh");
        let text = text.replacen("    mesh: {}\n", "", 1);
        let image = text.lines().find(|l| l.contains("/orders:")).expect("the orders image").to_owned();
        text.replacen(&image, &format!("    image: {}", self::image("1.0")), 1).replacen(
            anchor,
            "  - name: orders\n    rollout:\n      scale_down_delay: 2s\n      abort_scale_down_delay: 2s\n      analysis: { interval: 1s, count: 6, consecutive_error_limit: 10 }\n",
            1,
        )
    })
}

/// The orders app of the config.
fn orders(dir: &str) -> enclave_core::spec::AppSpec {
    let options = enclave_core::LoadOptions { dir: dir.into(), overlays: Vec::new() };
    let (loaded, _) = enclave::load(&options).expect("the config loads");
    loaded.spec.apps.into_iter().find(|app| app.name.as_str() == "orders").expect("orders")
}

/// The app's Deployment and Service as the bundle renders them.
fn seed(fake: &Fake, app: &enclave_core::spec::AppSpec, probes: bool) {
    let inputs = enclave_deploy::workload::PodInputs {
        probes: enclave_monitor::render::probes(app),
        ..enclave_deploy::workload::PodInputs::default()
    };
    let mut deployment =
        serde_json::to_value(enclave_deploy::workload::deployment("acme", app, &inputs)).expect("json");
    deployment["metadata"]["labels"]["enclave.dev/app"] = json!("orders");
    if !probes {
        deployment["spec"]["template"]["spec"]["containers"][0].as_object_mut().map(|c| c.remove("readinessProbe"));
    }
    fake.put(Kind::Deployment, deployment);
    let service = serde_json::to_value(enclave_deploy::workload::traffic_service("acme", app)).expect("json");
    fake.put(Kind::Service, service);
}

fn example_service() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_enclave")).with_file_name("example-service");
    assert!(path.is_file(), "{} is built by `cargo test --workspace`", path.display());
    path
}

/// An `example-service` for one image, failing `bug` percent of lookups.
fn backend(bug: u8) -> (Running, Backend, u16) {
    let (traffic, internal) = (free_port(), free_port());
    let child = Command::new(example_service())
        .args(["--listen", &format!("127.0.0.1:{traffic}"), "--internal-listen", &format!("127.0.0.1:{internal}")])
        .args(["--admin", "--health-refresh-seconds", "1", "--bug-percent", &bug.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("example-service starts");
    let ports = BTreeMap::from([("http".to_owned(), traffic), ("metrics".to_owned(), internal)]);
    (Running(child), Backend { ip: "127.0.0.1".into(), ports }, internal)
}

fn post(url: &str) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let status = agent.post(url).send_empty().map(|r| r.status().as_u16()).unwrap_or(0);
    assert_eq!(status, 200, "POST {url}");
}

/// A cluster: the fake on loopback with a kubeconfig, the kubelet, Prometheus as a Service in
/// `monitoring`, and traffic through the active and preview Services all along.
struct Cluster {
    fake: Fake,
    kubeconfig: PathBuf,
    config: String,
    _kubelet: Kubelet,
    _prometheus: Option<Running>,
    _tasks: Vec<tokio::task::JoinHandle<()>>,
    _dir: PathBuf,
}

impl Cluster {
    async fn new(name: &str, with_prometheus: bool, probes: bool) -> Cluster {
        let dir = std::env::temp_dir().join(format!("enclave-rollout-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let config = config(&dir.join("config"));
        let fake = Fake::new();
        let addr = fake.serve().await.expect("served");
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(&kubeconfig, Fake::kubeconfig(addr, NAMESPACE)).expect("kubeconfig");
        seed(&fake, &orders(&config), probes);
        let kubelet = Kubelet::start(&fake, NAMESPACE, Duration::from_millis(200));
        let mut tasks = Vec::new();
        let prometheus = with_prometheus.then(|| {
            let (running, task) = prometheus(&fake, &dir);
            tasks.push(task);
            running
        });
        // Traffic: through the active and the preview Service, as callers and testers would.
        let base = format!("http://{addr}/api/v1/namespaces/{NAMESPACE}/services");
        tasks.push(tokio::spawn(async move {
            loop {
                for service in ["orders:http", "orders-preview:http"] {
                    let url = format!("{base}/{service}/proxy/orders/1");
                    let _ = tokio::task::spawn_blocking(move || {
                        enclave_fake_kube::plain_http::http_get(&url, Duration::from_secs(2))
                    })
                    .await;
                }
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
        }));
        Cluster { fake, kubeconfig, config, _kubelet: kubelet, _prometheus: prometheus, _tasks: tasks, _dir: dir }
    }

    fn enclave(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_enclave"));
        command
            .args(["rollout"])
            .args(args)
            .args(["--app", "orders", "--config", &self.config])
            .args(["--kubeconfig", &self.kubeconfig.to_string_lossy()]);
        command
    }

    async fn run(&self, args: &[&str]) -> std::process::Output {
        let mut command = self.enclave(args);
        tokio::task::spawn_blocking(move || command.output().expect("enclave runs")).await.expect("joined")
    }

    fn state(&self) -> Option<Value> {
        let map = self.fake.get(Kind::ConfigMap, NAMESPACE, "orders-rollout")?;
        serde_json::from_str(map["data"]["state"].as_str()?).ok()
    }

    /// The revisions the active Service selected, in order (each once per run of changes).
    fn active_history(&self) -> Vec<String> {
        let mut selected: Vec<String> = Vec::new();
        for change in self.fake.history() {
            if change.key != (Kind::Service, NAMESPACE.to_owned(), "orders".to_owned()) {
                continue;
            }
            let revision =
                change.object["spec"]["selector"]["enclave.dev/revision"].as_str().unwrap_or("template").to_owned();
            if selected.last() != Some(&revision) {
                selected.push(revision);
            }
        }
        selected
    }

    fn replicas(&self, image: &str) -> Option<u64> {
        let name = format!("orders-{}", revision_hash(image));
        self.fake.get(Kind::Deployment, NAMESPACE, &name)?["spec"]["replicas"].as_u64()
    }

    /// Starts guarding the active Service once it has a ready Pod.
    async fn guard_active(&self) {
        let began = Instant::now();
        while self.fake.endpoints(NAMESPACE, "orders", None).is_empty() {
            assert!(began.elapsed() < Duration::from_secs(20), "the template's Pod never became ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.fake.guard(NAMESPACE, "orders");
    }
}

/// Prometheus scraping every Pod of the app (a file_sd file kept in step with the fake's Pods),
/// as a Service `monitoring/prometheus-operated` whose Pod is the process.
fn prometheus(fake: &Fake, dir: &Path) -> (Running, tokio::task::JoinHandle<()>) {
    let port = free_port();
    let targets = dir.join("targets.json");
    std::fs::write(&targets, "[]").expect("targets");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: pods\n    file_sd_configs:\n      - files: ['{}']\n        refresh_interval: 1s\n",
        targets.display()
    );
    std::fs::write(dir.join("prometheus.yml"), config).expect("config");
    let binary = std::env::var_os("ENCLAVE_PROMETHEUS").map_or_else(|| PathBuf::from("prometheus"), PathBuf::from);
    let child = Command::new(binary)
        .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus starts (ENCLAVE_PROMETHEUS)");
    fake.put(
        Kind::Service,
        json!({"metadata": {"name": "prometheus-operated", "namespace": "monitoring"},
               "spec": {"selector": {"app": "prometheus"}, "ports": [{"name": "web", "port": 9090, "targetPort": "web"}]}}),
    );
    fake.put(
        Kind::Pod,
        json!({"metadata": {"name": "prometheus-0", "namespace": "monitoring", "labels": {"app": "prometheus"}},
               "spec": {"containers": [{"name": "prometheus", "ports": [{"name": "web", "containerPort": port}]}]},
               "status": {"podIP": "127.0.0.1", "conditions": [{"type": "Ready", "status": "True"}]}}),
    );
    let fake = fake.clone();
    let task = tokio::spawn(async move {
        loop {
            let groups: Vec<Value> = fake
                .list(Kind::Pod, NAMESPACE)
                .iter()
                .filter_map(|pod| {
                    let ip = pod["status"]["podIP"].as_str()?;
                    let port = pod["spec"]["containers"][0]["ports"]
                        .as_array()?
                        .iter()
                        .find(|p| p["name"] == "metrics")?["containerPort"]
                        .as_u64()?;
                    Some(json!({"targets": [format!("{ip}:{port}")], "labels": {
                        "namespace": NAMESPACE, "pod": pod["metadata"]["name"], "container": "orders",
                    }}))
                })
                .collect();
            let _ = std::fs::write(&targets, serde_json::to_string(&groups).unwrap_or_default());
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    (Running(child), task)
}

fn text(output: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// Blue (1.0, healthy) serving, green (`tag`) with `bug` percent failures; returns the
/// cluster and green's backend (for switching its bug on).
async fn blue_and_green(name: &str, tag: &str, bug: u8) -> (Cluster, Vec<Running>, u16) {
    let cluster = Cluster::new(name, true, true).await;
    let (blue, blue_backend, _) = backend(0);
    let (green, green_backend, green_internal) = backend(bug);
    assert_eq!(orders(&cluster.config).image, image("1.0"));
    cluster._kubelet.run(&image("1.0"), blue_backend);
    cluster._kubelet.run(&image(tag), green_backend);
    cluster.guard_active().await;
    (cluster, vec![blue, green], green_internal)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs prometheus (cargo xtask test installs it)"]
async fn a_healthy_version_is_analysed_promoted_and_the_old_one_scaled_down() {
    let (cluster, _processes, _) = blue_and_green("healthy", "1.1", 0).await;
    let out = cluster.run(&["start", "--image", &image("1.1")]).await;
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(shown.contains("pre-promotion analysis successful"), "{shown}");
    assert!(shown.contains("post-promotion analysis successful"), "{shown}");
    let (blue, green) = (revision_hash(&image("1.0")), revision_hash(&image("1.1")));
    assert_eq!(cluster.active_history(), ["template", blue.as_str(), green.as_str()]);
    assert_eq!(cluster.fake.gaps().len(), 0, "the active Service never lacked a ready Pod: {:?}", cluster.fake.gaps());
    assert_eq!(cluster.replicas(&image("1.0")), Some(0), "blue scaled down after its delay");
    let state = cluster.state().expect("state");
    assert_eq!(state["step"]["phase"], "healthy");
    let status = cluster.run(&["status"]).await;
    let shown = text(&status);
    assert!(status.status.success() && shown.contains("Phase:    Healthy") && shown.contains("<- active"), "{shown}");
    let json = cluster.run(&["status", "--output", "json"]).await;
    let json: Value = serde_json::from_slice(&json.stdout).expect("status as JSON");
    assert_eq!(json["active_selects"], image("1.1"));
    assert_eq!(json["rollout"]["step"]["phase"], "healthy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs prometheus (cargo xtask test installs it)"]
async fn a_version_failing_its_pre_promotion_analysis_never_gets_traffic() {
    let (cluster, _processes, _) = blue_and_green("pre", "1.2", 50).await;
    let out = cluster.run(&["start", "--image", &image("1.2")]).await;
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(3), "rolled back: {shown}");
    assert!(shown.contains("pre-promotion analysis failed") && shown.contains("error-rate"), "{shown}");
    let blue = revision_hash(&image("1.0"));
    assert_eq!(cluster.active_history(), ["template", blue.as_str()], "green was never active");
    let green_served = cluster
        .fake
        .proxied()
        .iter()
        .filter(|p| p.service == "orders/orders")
        .any(|p| p.pod.as_deref().is_some_and(|pod| pod.contains(&revision_hash(&image("1.2")))));
    assert!(!green_served, "no request through the active Service reached green");
    assert_eq!(cluster.fake.gaps().len(), 0, "{:?}", cluster.fake.gaps());
    assert_eq!(cluster.replicas(&image("1.2")), Some(0), "green scaled down after the abort delay");
    let status = cluster.run(&["status"]).await;
    let view = text(&status);
    assert_eq!(status.status.code(), Some(3), "status says the rollout was rolled back: {view}");
    assert!(view.contains("Phase:    Aborted") && view.contains("error-rate") && view.contains("failed"), "{view}");
    eprintln!("$ enclave rollout start ...\n{shown}\n$ enclave rollout status ...\n{view}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs prometheus (cargo xtask test installs it)"]
async fn a_version_failing_after_the_switch_is_rolled_back_to_blue() {
    let (cluster, _processes, green_internal) = blue_and_green("post", "1.3", 0).await;
    let mut command = cluster.enclave(&["start", "--image", &image("1.3")]);
    let running = tokio::task::spawn_blocking(move || command.output().expect("enclave runs"));
    // Once green serves, its bug starts.
    let began = Instant::now();
    while cluster.state().is_none_or(|s| s["step"]["stage"] != "post-promotion") {
        assert!(began.elapsed() < Duration::from_secs(60), "never reached the post-promotion analysis");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    post(&format!("http://127.0.0.1:{green_internal}/admin/bug/100"));
    let output = running.await.expect("joined");
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(3), "{shown}");
    assert!(shown.contains("post-promotion analysis failed"), "{shown}");
    let (blue, green) = (revision_hash(&image("1.0")), revision_hash(&image("1.3")));
    assert_eq!(cluster.active_history(), ["template", blue.as_str(), green.as_str(), blue.as_str()]);
    assert_eq!(cluster.fake.gaps().len(), 0, "{:?}", cluster.fake.gaps());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs prometheus (cargo xtask test installs it)"]
async fn a_killed_rollout_resumes_where_it_was() {
    let (cluster, _processes, _) = blue_and_green("kill", "1.4", 0).await;
    let mut child =
        cluster.enclave(&["start", "--image", &image("1.4")]).stdout(Stdio::null()).spawn().expect("spawned");
    let began = Instant::now();
    loop {
        let measured = cluster.state().is_some_and(|s| {
            s["step"]["stage"] == "pre-promotion"
                && s["analysis"]
                    .as_object()
                    .is_some_and(|a| a.values().any(|m| !m["measurements"].as_array().is_none_or(Vec::is_empty)))
        });
        if measured {
            break;
        }
        assert!(began.elapsed() < Duration::from_secs(60), "never measured");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().expect("killed");
    let _ = child.wait();
    let before = cluster.state().expect("state");
    assert_eq!(before["step"]["stage"], "pre-promotion", "the state kept where it was");
    let out = cluster.run(&["resume"]).await;
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    let after = cluster.state().expect("state");
    assert_eq!(after["stable"], image("1.4"));
    let decisions = after["decisions"].as_array().expect("decisions");
    let started = decisions
        .iter()
        .filter(|d| d["what"].as_str().is_some_and(|w| w.starts_with("rollout of") && w.contains("1.4")))
        .count();
    assert_eq!(started, 1, "resumed, not restarted");
    assert_eq!(cluster.fake.gaps().len(), 0, "{:?}", cluster.fake.gaps());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_exit_2_with_the_reason() {
    let cluster = Cluster::new("bad", false, false).await;
    let cases: [(&[&str], &str); 3] = [
        (&["start", "--image", &image("1.1")], "no readiness probe"),
        (&["start", "--image", "docker.io/library/orders:1.1"], "not in the stack's registry"),
        (&["start", "--image", &format!("{REGISTRY}/orders:latest")], "`latest` is not a version"),
    ];
    for (args, why) in cases {
        let out = cluster.run(args).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(why), "{args:?}: {}", text(&out));
    }
    let mut unknown = Command::new(env!("CARGO_BIN_EXE_enclave"));
    unknown.args(["rollout", "start", "--app", "order", "--image", &image("1.1"), "--config", &cluster.config]);
    let out = unknown.output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("no app named `order`") && text(&out).contains("did you mean `orders`"),
        "{}",
        text(&out)
    );
    assert!(cluster.state().is_none(), "nothing was written");
}

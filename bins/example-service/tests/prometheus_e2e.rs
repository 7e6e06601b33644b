//! End to end with real processes: Prometheus scrapes the example service on loopback with
//! enclave's generated alert rules loaded; the database is broken and the test watches, through
//! Prometheus's HTTP API, the metric change and the database alert going pending then firing,
//! while readiness turns unavailable and liveness stays up.
//!
//! Needs the `prometheus` binary (Debian package `prometheus`); `cargo xtask test` installs it
//! and runs this test with `--ignored`.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the process when dropped, so a failing test leaves nothing running.
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

fn http_get(url: &str) -> Option<(u16, String)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(2)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent.get(url).call().ok()?;
    let status = response.status().as_u16();
    let mut body = String::new();
    response.body_mut().as_reader().read_to_string(&mut body).ok()?;
    Some((status, body))
}

fn http_post(url: &str) -> u16 {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    agent.post(url).send_empty().map(|r| r.status().as_u16()).unwrap_or(0)
}

/// Polls `probe` every 250 ms until it returns `Some`, or fails after `limit`.
fn wait_for<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Option<T>) -> (T, Duration) {
    let began = Instant::now();
    loop {
        if let Some(value) = probe() {
            return (value, began.elapsed());
        }
        assert!(began.elapsed() < limit, "gave up waiting {limit:?} for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn prometheus_binary() -> PathBuf {
    std::env::var_os("ENCLAVE_PROMETHEUS").map_or_else(|| PathBuf::from("prometheus"), PathBuf::from)
}

fn query(prometheus: &str, promql: &str) -> Option<f64> {
    let encoded: String = promql
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    let (_, body) = http_get(&format!("{prometheus}/api/v1/query?query={encoded}"))?;
    let json: serde_json::Value = serde_json::from_str(&body).ok()?;
    json["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

fn alert_state(prometheus: &str, name: &str) -> Option<String> {
    let (_, body) = http_get(&format!("{prometheus}/api/v1/alerts"))?;
    let json: serde_json::Value = serde_json::from_str(&body).ok()?;
    json["data"]["alerts"]
        .as_array()?
        .iter()
        .find(|alert| alert["labels"]["alertname"] == name)
        .and_then(|alert| alert["state"].as_str().map(str::to_owned))
}

/// The alert rules enclave renders for an `orders` app whose database alert waits 5 s.
fn rules(dir: &Path) -> PathBuf {
    let loaded = enclave_core::config::load_str(
        "e2e.yaml",
        r#"
organization: { name: acme, region: eu-west-1 }
network: { tiers: [{ name: app, size: 20, slot: 0 }] }
accounts: [{ name: prod, id: "333333333333", environment: prod, vpc_cidr: 10.3.0.0/16 }]
clusters: [{ name: main, account: prod, version: "1.33" }]
apps:
  - name: orders
    cluster: main
    image: orders:1.0.0
    port: 8080
    monitoring:
      scrape_interval: 1s
      dependencies: [{ name: database, kind: database, to: { cidr: 10.9.0.0/16 }, port: 5432 }]
      alerts: { database_failure_for: 5s }
"#,
    )
    .expect("valid spec");
    let rules = enclave_monitor_rules(&loaded.spec.apps[0]);
    let path = dir.join("orders.rules.yml");
    std::fs::write(&path, rules).expect("write rules");
    path
}

fn enclave_monitor_rules(app: &enclave_core::spec::AppSpec) -> String {
    let (_, artifacts) = enclave_monitor::render::render_app("acme", app, enclave_monitor::render::Scrape::Plain);
    artifacts
        .into_iter()
        .find(|a| a.path.ends_with(".rules.yml") && !a.path.ends_with(".test.yml"))
        .expect("rule file")
        .content
}

#[test]
#[ignore = "needs the prometheus binary; cargo xtask test installs it and runs this with --ignored"]
fn prometheus_sees_the_database_fail_and_fires_the_alert() {
    let dir = std::env::temp_dir().join(format!("enclave-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let traffic_port = free_port();
    let service_port = free_port();
    let prometheus_port = free_port();
    let service = format!("http://127.0.0.1:{service_port}");
    let prometheus = format!("http://127.0.0.1:{prometheus_port}");

    let _service = Running(
        Command::new(env!("CARGO_BIN_EXE_example-service"))
            .args(["--listen", &format!("127.0.0.1:{traffic_port}")])
            .args([
                "--internal-listen",
                &format!("127.0.0.1:{service_port}"),
                "--admin",
                "--health-refresh-seconds",
                "1",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("example-service starts"),
    );
    wait_for("the service to be ready", Duration::from_secs(20), || {
        http_get(&format!("{service}/health/ready")).filter(|(code, _)| *code == 200)
    });

    let rules = rules(&dir);
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\nrule_files: [{}]\nscrape_configs:\n  - job_name: orders\n    static_configs: [{{ targets: ['127.0.0.1:{service_port}'] }}]\n",
            rules.display()
        ),
    )
    .expect("write config");
    let _prometheus = Running(
        Command::new(prometheus_binary())
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prometheus_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts (is it installed? cargo xtask test installs it)"),
    );
    wait_for("prometheus to be ready", Duration::from_secs(30), || {
        http_get(&format!("{prometheus}/-/ready")).filter(|(code, _)| *code == 200)
    });
    let up = r#"dependency_up{job="orders",dependency="database"}"#;
    let (_, took) = wait_for("a scrape showing the database up", Duration::from_secs(30), || {
        query(&prometheus, up).filter(|v| *v == 1.0)
    });
    println!("scraped dependency_up=1 after {took:?}");
    assert_eq!(alert_state(&prometheus, "DatabaseConnectionFailures"), None, "no alert while the database answers");

    assert_eq!(http_post(&format!("{service}/admin/database/down")), 200);
    let broke = Instant::now();
    wait_for("readiness to fail", Duration::from_secs(10), || {
        http_get(&format!("{service}/health/ready")).filter(|(code, _)| *code == 503)
    });
    assert_eq!(http_get(&format!("{service}/health/live")).map(|(code, _)| code), Some(200), "liveness stays up");

    let (_, took) = wait_for("Prometheus to see dependency_up=0", Duration::from_secs(20), || {
        query(&prometheus, up).filter(|v| *v == 0.0)
    });
    println!("Prometheus saw dependency_up=0 {took:?} after the break");
    let (_, took) = wait_for("the alert to be pending", Duration::from_secs(20), || {
        alert_state(&prometheus, "DatabaseConnectionFailures").filter(|s| s == "pending")
    });
    println!("DatabaseConnectionFailures pending {took:?} later");
    let (_, took) = wait_for("the alert to fire", Duration::from_secs(30), || {
        alert_state(&prometheus, "DatabaseConnectionFailures").filter(|s| s == "firing")
    });
    println!("DatabaseConnectionFailures firing {took:?} later ({:?} after the break)", broke.elapsed());
    assert!(broke.elapsed() >= Duration::from_secs(5), "not before the rule's 5 s `for`");

    let _ = std::fs::remove_dir_all(&dir);
}

//! The rollout driver in process: kube-rs over the fake API server's `tower::Service`
//! (`kube::Client::new`), Pods run by the fake kubelet against small HTTP backends whose
//! readiness the test switches. The health gate is the only analysis here (Prometheus is in
//! `bins/enclave/tests/rollout.rs`): manual promotion, abort during the analysis, going back to
//! the previous version, and the same through the mesh's VirtualService weights.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use enclave_deploy::mesh::SLOT_LABEL;
use enclave_deploy::rollout::analysis::{Condition, Metric, Provider};
use enclave_deploy::rollout::bluegreen::{Event, Pause, Step, Strategy};
use enclave_deploy::rollout::cluster::{Driver, Prometheus, REVISION_LABEL, Target, revision_hash};
use enclave_fake_kube::cluster::{Backend, Kubelet};
use enclave_fake_kube::{Fake, Kind};
use serde_json::json;

const NS: &str = "shop";

/// An HTTP backend answering 200 to everything while `healthy`, else 503.
fn backend() -> (Backend, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bound");
    let port = listener.local_addr().expect("addr").port();
    let healthy = Arc::new(AtomicBool::new(true));
    let flag = Arc::clone(&healthy);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            // The whole request head, then the answer.
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let status = if flag.load(Ordering::SeqCst) { "200 OK" } else { "503 Service Unavailable" };
            let _ = write!(stream, "HTTP/1.0 {status}\r\nContent-Length: 2\r\n\r\nok");
        }
    });
    let ports = BTreeMap::from([("http".to_owned(), port), ("metrics".to_owned(), port)]);
    (Backend { ip: "127.0.0.1".into(), ports }, healthy)
}

fn seed(fake: &Fake, image: &str) {
    fake.put(
        Kind::Deployment,
        json!({
            "metadata": {"name": "orders", "namespace": NS, "labels": {"app": "orders", "enclave.dev/app": "orders"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "orders"}},
                     "template": {"metadata": {"labels": {"app": "orders"}}, "spec": {"containers": [{
                         "name": "orders", "image": image,
                         "ports": [{"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 9090}],
                         "readinessProbe": {"httpGet": {"path": "/health/ready", "port": 9090}},
                     }]}}},
        }),
    );
    fake.put(
        Kind::Service,
        json!({"metadata": {"name": "orders", "namespace": NS},
               "spec": {"selector": {"app": "orders"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}),
    );
}

fn strategy(auto_promotion: bool, count: u32) -> Strategy {
    let health = Metric {
        name: "health".into(),
        provider: Provider::Readiness("/health/ready".into()),
        interval_seconds: 1,
        count: Some(count),
        success: Some(Condition::AtLeast(1.0)),
        failure: None,
        failure_limit: 0,
        inconclusive_limit: 0,
        consecutive_error_limit: 4,
    };
    Strategy {
        auto_promotion,
        auto_promotion_seconds: None,
        scale_down_delay_seconds: 1,
        abort_scale_down_delay_seconds: Some(1),
        pre_promotion: vec![health.clone()],
        post_promotion: vec![health],
    }
}

fn driver(fake: &Fake, strategy: Strategy) -> Driver {
    let target = Target {
        app: "orders".into(),
        namespace: NS.into(),
        health_port: ("metrics".into(), 9090),
        strategy,
        mesh: false,
    };
    Driver::new(fake.client(), target, Prometheus::Url("http://127.0.0.1:9".into()))
}

fn active(fake: &Fake) -> Option<String> {
    fake.get(Kind::Service, NS, "orders")?["spec"]["selector"][REVISION_LABEL].as_str().map(str::to_owned)
}

fn replicas(fake: &Fake, image: &str) -> Option<u64> {
    fake.get(Kind::Deployment, NS, &format!("orders-{}", revision_hash(image)))?["spec"]["replicas"].as_u64()
}

/// Until the active Service has a ready Pod; then every later change that leaves it without one is a gap.
async fn guard(fake: &Fake) {
    for _ in 0..100 {
        if !fake.endpoints(NS, "orders", None).is_empty() {
            fake.guard(NS, "orders");
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the template's Pods never became ready");
}

/// A cluster running `orders:1` (the template) with backends for `orders:1` and `orders:2`,
/// the active Service guarded; the switch of green's readiness.
async fn cluster() -> (Fake, Kubelet, Arc<AtomicBool>) {
    cluster_with(|_| {}).await
}

/// The same, with `setup` run on the seeded cluster before the active Service is guarded.
async fn cluster_with(setup: impl FnOnce(&Fake)) -> (Fake, Kubelet, Arc<AtomicBool>) {
    let fake = Fake::new();
    let kubelet = Kubelet::start(&fake, NS, Duration::from_millis(100));
    let (blue, _) = backend();
    let (green, green_healthy) = backend();
    kubelet.run("orders:1", blue);
    kubelet.run("orders:2", green);
    seed(&fake, "orders:1");
    setup(&fake);
    guard(&fake).await;
    (fake, kubelet, green_healthy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_promotion_switches_traffic_and_the_previous_version_can_come_back() {
    let (fake, _kubelet, _) = cluster().await;
    let driver = driver(&fake, strategy(false, 2));
    driver.submit(Event::Image("orders:2".into())).await.expect("started");
    let paused = driver.drive(Duration::from_secs(30), |_| {}).await.expect("driven");
    assert_eq!(paused.step, Step::Paused { pause: Pause::Promotion }, "{:?}", paused.decisions);
    assert_eq!(active(&fake), Some(revision_hash("orders:1")), "no traffic before the promotion");
    assert_eq!(
        fake.get(Kind::Deployment, NS, "orders").expect("template")["spec"]["replicas"],
        0,
        "the template steps aside"
    );
    driver.submit(Event::Promote).await.expect("promoted");
    let done = driver.drive(Duration::from_secs(30), |_| {}).await.expect("driven");
    assert_eq!((done.step.clone(), done.stable.as_str()), (Step::Healthy, "orders:2"), "{:?}", done.decisions);
    assert_eq!(active(&fake), Some(revision_hash("orders:2")));
    assert_eq!(replicas(&fake, "orders:1"), Some(0), "blue scaled down after its delay");
    assert_eq!(done.previous.as_deref(), Some("orders:1"));
    // Back to the previous version: a rollout of it like any other.
    driver.submit(Event::Image("orders:1".into())).await.expect("started");
    driver.drive(Duration::from_secs(30), |_| {}).await.expect("driven");
    driver.submit(Event::Promote).await.expect("promoted");
    let back = driver.drive(Duration::from_secs(30), |_| {}).await.expect("driven");
    assert_eq!(back.stable, "orders:1");
    assert_eq!(active(&fake), Some(revision_hash("orders:1")));
    assert!(fake.gaps().is_empty(), "{:?}", fake.gaps());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_during_the_analysis_keeps_traffic_on_blue_and_green_goes_after_its_delay() {
    let (fake, _kubelet, _) = cluster().await;
    let driver = driver(&fake, strategy(true, 30));
    driver.submit(Event::Image("orders:2".into())).await.expect("started");
    let running = driver.drive(Duration::from_secs(3), |_| {}).await.expect("driven");
    assert!(matches!(running.step, Step::Analysis { .. }), "{:?}", running.step);
    let aborted = driver.submit(Event::Abort).await.expect("aborted");
    assert!(matches!(aborted.step, Step::Aborted { .. }));
    assert_eq!(active(&fake), Some(revision_hash("orders:1")));
    let settled = driver.drive(Duration::from_secs(30), |_| {}).await.expect("driven");
    assert_eq!(settled.step, Step::Aborted { scale_down_at: None });
    assert_eq!(replicas(&fake, "orders:2"), Some(0), "green scaled down after the abort delay");
    assert!(fake.gaps().is_empty(), "{:?}", fake.gaps());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn green_losing_readiness_after_the_switch_is_rolled_back_and_no_switch_makes_a_gap() {
    let (fake, _kubelet, green_healthy) = cluster().await;
    let driver = driver(&fake, strategy(true, 5));
    driver.submit(Event::Image("orders:2".into())).await.expect("started");
    let flipped = Arc::new(AtomicBool::new(false));
    let done = driver
        .drive(Duration::from_secs(60), |rollout| {
            if rollout.step == (Step::Analysis { stage: enclave_deploy::rollout::bluegreen::Stage::PostPromotion })
                && !flipped.swap(true, Ordering::SeqCst)
            {
                green_healthy.store(false, Ordering::SeqCst);
            }
        })
        .await
        .expect("driven");
    assert!(flipped.load(Ordering::SeqCst), "reached the post-promotion analysis");
    assert!(matches!(done.step, Step::Aborted { .. }), "{:?}", done.decisions);
    assert_eq!(active(&fake), Some(revision_hash("orders:1")), "traffic back on blue");
    // Green's Pods went unready while it served: that window is the gap the health gate closes.
    // No switch of the Service ever made one (it only ever moved to a version with a ready Pod).
    let gaps = fake.gaps();
    assert!(!gaps.is_empty(), "green's readiness loss left the active Service without a ready Pod");
    assert!(gaps.iter().all(|g| !g.cause.contains("Service \"orders\"")), "never a switch: {gaps:?}");
    assert!(!fake.endpoints(NS, "orders", None).is_empty(), "blue serves again");
}

/// The app in a mesh: the template's Pods in the `blue` slot, and the VirtualService and
/// DestinationRule `enclave_deploy::mesh` renders for it (all traffic on `blue`).
fn mesh(fake: &Fake) {
    let mut template = fake.get(Kind::Deployment, NS, "orders").expect("template");
    template["spec"]["template"]["metadata"]["labels"][SLOT_LABEL] = json!("blue");
    fake.put(Kind::Deployment, template);
    let host = format!("orders.{NS}.svc.cluster.local");
    let subset = |slot: &str| json!({"name": slot, "labels": {SLOT_LABEL: slot}});
    fake.put(
        Kind::DestinationRule,
        json!({"metadata": {"name": "orders", "namespace": NS},
               "spec": {"host": host, "subsets": [subset("blue"), subset("green")]}}),
    );
    let route = |slot: &str, weight: u32| json!({"destination": {"host": host, "subset": slot, "port": {"number": 80}}, "weight": weight});
    fake.put(
        Kind::VirtualService,
        json!({"metadata": {"name": "orders", "namespace": NS},
               "spec": {"hosts": [host], "http": [{"name": "primary", "route": [route("blue", 100), route("green", 0)],
                        "timeout": "15s", "retries": {"attempts": 1}}]}}),
    );
}

fn weights(fake: &Fake) -> Vec<(String, u64)> {
    let service = fake.get(Kind::VirtualService, NS, "orders").expect("VirtualService");
    service["spec"]["http"][0]["route"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            (d["destination"]["subset"].as_str().unwrap_or_default().to_owned(), d["weight"].as_u64().unwrap_or(0))
        })
        .collect()
}

fn slot_of(fake: &Fake, image: &str) -> Option<String> {
    let deployment = fake.get(Kind::Deployment, NS, &format!("orders-{}", revision_hash(image)))?;
    deployment["spec"]["template"]["metadata"]["labels"][SLOT_LABEL].as_str().map(str::to_owned)
}

/// Which revisions the mesh sends the active Service's traffic to, by their Pods' names.
fn routed(fake: &Fake) -> BTreeSet<String> {
    fake.endpoints(NS, "orders", None)
        .into_iter()
        .map(|(pod, _)| pod.trim_start_matches("orders-").split('-').next().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_mesh_the_virtual_service_moves_traffic_between_the_slots() {
    let (fake, _kubelet, _) = cluster_with(mesh).await;
    let target = Target {
        app: "orders".into(),
        namespace: NS.into(),
        health_port: ("metrics".into(), 9090),
        strategy: strategy(false, 2),
        mesh: true,
    };
    let driver = Driver::new(fake.client(), target, Prometheus::Url("http://127.0.0.1:9".into()));
    driver.submit(Event::Image("orders:2".into())).await.expect("started");
    let paused = driver.drive(Duration::from_secs(30), |_| {}).await.expect("driven");
    assert_eq!(paused.step, Step::Paused { pause: Pause::Promotion }, "{:?}", paused.decisions);
    // Green runs in the other slot; the active Service selects every revision, and the mesh
    // still sends everything to blue.
    assert_eq!(slot_of(&fake, "orders:1").as_deref(), Some("blue"));
    assert_eq!(slot_of(&fake, "orders:2").as_deref(), Some("green"));
    let service = fake.get(Kind::Service, NS, "orders").expect("Service");
    assert!(service["spec"]["selector"].get(REVISION_LABEL).is_none(), "{service}");
    assert_eq!(weights(&fake), [("blue".to_owned(), 100), ("green".to_owned(), 0)]);
    assert_eq!(routed(&fake), BTreeSet::from([revision_hash("orders:1")]), "no traffic to green before the promotion");

    driver.submit(Event::Promote).await.expect("promoted");
    let done = driver.drive(Duration::from_secs(30), |_| {}).await.expect("driven");
    assert_eq!((done.step.clone(), done.stable.as_str()), (Step::Healthy, "orders:2"), "{:?}", done.decisions);
    assert_eq!(weights(&fake), [("blue".to_owned(), 0), ("green".to_owned(), 100)]);
    assert_eq!(routed(&fake), BTreeSet::from([revision_hash("orders:2")]));
    assert_eq!(replicas(&fake, "orders:1"), Some(0), "blue scaled down after its delay");
    let status = driver.status().await.expect("status").expect("a rollout");
    assert_eq!(status.active_selects.as_deref(), Some("orders:2"));

    // The next version takes the slot green does not use: blue again.
    driver.submit(Event::Image("orders:1".into())).await.expect("started");
    driver.drive(Duration::from_secs(30), |_| {}).await.expect("driven");
    assert_eq!(slot_of(&fake, "orders:1").as_deref(), Some("blue"));
    driver.submit(Event::Promote).await.expect("promoted");
    let back = driver.drive(Duration::from_secs(30), |_| {}).await.expect("driven");
    assert_eq!(back.stable, "orders:1");
    assert_eq!(weights(&fake), [("blue".to_owned(), 100), ("green".to_owned(), 0)]);
    assert!(fake.gaps().is_empty(), "no switch left the mesh without a ready Pod: {:?}", fake.gaps());
}

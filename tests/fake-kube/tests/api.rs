//! The fake API server through kube-rs, in process (`kube::Client::new` over its router): each
//! modelled behaviour as a real client sees it, so a test that relies on one relies on
//! something checked.

use enclave_fake_kube::{Fake, Kind};
use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;

fn config_map(name: &str, value: &str) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "shop", "labels": {"app": "orders"}},
        "data": {"state": value},
    }))
    .expect("a ConfigMap")
}

#[tokio::test]
async fn create_get_replace_with_optimistic_concurrency_and_delete() {
    let fake = Fake::new();
    let maps: Api<ConfigMap> = Api::namespaced(fake.client(), "shop");
    let created = maps.create(&PostParams::default(), &config_map("state", "one")).await.expect("created");
    let version = created.metadata.resource_version.clone().expect("a version");
    let again = maps.create(&PostParams::default(), &config_map("state", "one")).await;
    assert!(matches!(again, Err(kube::Error::Api(s)) if s.code == 409), "already exists");
    let mut newer = config_map("state", "two");
    newer.metadata.resource_version = Some(version.clone());
    maps.replace("state", &PostParams::default(), &newer).await.expect("replaced at its version");
    let mut stale = config_map("state", "three");
    stale.metadata.resource_version = Some(version);
    let conflict = maps.replace("state", &PostParams::default(), &stale).await;
    assert!(matches!(conflict, Err(kube::Error::Api(s)) if s.is_conflict()), "a stale version is refused");
    let read = maps.get("state").await.expect("read");
    assert_eq!(read.data.and_then(|d| d.get("state").cloned()).as_deref(), Some("two"));
    maps.delete("state", &DeleteParams::default()).await.expect("deleted");
    assert!(maps.get_opt("state").await.expect("read").is_none());
    let missing = maps.get("state").await;
    assert!(matches!(missing, Err(kube::Error::Api(s)) if s.is_not_found()));
}

#[tokio::test]
async fn server_side_apply_creates_then_merges_and_keeps_the_status() {
    let fake = Fake::new();
    let deployments: Api<Deployment> = Api::namespaced(fake.client(), "shop");
    let apply = PatchParams::apply("enclave").force();
    let body = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "orders", "namespace": "shop", "labels": {"app": "orders"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "orders"}},
                 "template": {"metadata": {"labels": {"app": "orders"}}, "spec": {"containers": [{"name": "orders", "image": "orders:1"}]}}},
    });
    let created = deployments.patch("orders", &apply, &Patch::Apply(&body)).await.expect("applied");
    assert_eq!(created.metadata.generation, Some(1));
    // The controller's status survives a later apply of the spec.
    fake.put_status(Kind::Deployment, "shop", "orders", json!({"readyReplicas": 2}));
    let scaled = deployments
        .patch("orders", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 3}})))
        .await
        .expect("merged");
    assert_eq!(scaled.spec.and_then(|s| s.replicas), Some(3));
    assert_eq!(scaled.status.and_then(|s| s.ready_replicas), Some(2), "status kept");
    assert_eq!(scaled.metadata.generation, Some(2), "a spec change bumps the generation");
    let without_manager = deployments.patch("orders", &PatchParams::default(), &Patch::Apply(&body)).await;
    assert!(without_manager.is_err(), "apply needs a field manager");
}

#[tokio::test]
async fn lists_filter_by_label_and_watches_replay_from_a_version() {
    let fake = Fake::new();
    let maps: Api<ConfigMap> = Api::namespaced(fake.client(), "shop");
    maps.create(&PostParams::default(), &config_map("a", "1")).await.expect("a");
    let mut other = config_map("b", "1");
    other.metadata.labels = Some([("app".to_owned(), "reports".to_owned())].into());
    maps.create(&PostParams::default(), &other).await.expect("b");
    let listed = maps.list(&ListParams::default().labels("app=orders")).await.expect("listed");
    assert_eq!(listed.items.len(), 1);
    let version = listed.metadata.resource_version.expect("a list version");
    maps.patch("a", &PatchParams::default(), &Patch::Merge(json!({"data": {"state": "2"}}))).await.expect("changed");
    maps.patch("b", &PatchParams::default(), &Patch::Merge(json!({"data": {"state": "2"}}))).await.expect("changed");
    let params = WatchParams::default().labels("app=orders").timeout(1);
    let events: Vec<WatchEvent<ConfigMap>> =
        maps.watch(&params, &version).await.expect("watch").try_collect().await.expect("events");
    let modified: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            WatchEvent::Modified(map) => map.metadata.name.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(modified, ["a"], "only the change after the version, only the selected object");
    // Live events arrive on an open watch.
    let mut live = maps.watch(&WatchParams::default().timeout(5), &fake_version(&fake)).await.expect("watch").boxed();
    maps.delete("a", &DeleteParams::default()).await.expect("deleted");
    let next = live.next().await.expect("an event").expect("ok");
    assert!(matches!(next, WatchEvent::Deleted(map) if map.metadata.name.as_deref() == Some("a")));
}

fn fake_version(fake: &Fake) -> String {
    fake.history().last().map_or_else(|| "0".to_owned(), |c| c.version.to_string())
}

#[tokio::test]
async fn the_service_proxy_reaches_only_ready_pods_and_gaps_are_recorded() {
    let fake = Fake::new();
    let services: Api<Service> = Api::namespaced(fake.client(), "shop");
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "orders", "namespace": "shop"},
        "spec": {"selector": {"app": "orders"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }))
    .expect("a Service");
    services.create(&PostParams::default(), &service).await.expect("created");
    let pod = |ready: &str| {
        json!({"metadata": {"name": "orders-1", "namespace": "shop", "labels": {"app": "orders"}},
               "spec": {"containers": [{"name": "orders", "ports": [{"name": "http", "containerPort": 1}]}]},
               "status": {"podIP": "127.0.0.1", "conditions": [{"type": "Ready", "status": ready}]}})
    };
    fake.put(Kind::Pod, pod("True"));
    assert_eq!(fake.endpoints("shop", "orders", Some("http")).len(), 1);
    fake.guard("shop", "orders");
    assert!(fake.gaps().is_empty());
    fake.put(Kind::Pod, pod("False"));
    assert_eq!(fake.gaps().len(), 1, "the change that left it without a ready Pod");
    let request = http::Request::get("/api/v1/namespaces/shop/services/orders:http/proxy/health")
        .body(Vec::new())
        .expect("request");
    let answer = fake.client().request_text(request).await;
    assert!(matches!(answer, Err(kube::Error::Api(s)) if s.code == 503), "no ready endpoint: 503");
}

//! A fake Kubernetes API server for enclave's tests (no API server can be installed here).
//!
//! One in-memory store of objects behind the REST paths kube-rs uses, as an axum `Router`: a
//! `tower::Service` handed to `kube::Client::new` for in-process tests, and the same router served
//! over HTTP on loopback with a kubeconfig for the CLI. What it models:
//!
//! - kinds: Deployments and ReplicaSets (`apps/v1`), Services, Pods and ConfigMaps (`v1`),
//!   VirtualServices and DestinationRules (`networking.istio.io/v1`), namespaced;
//! - get; list with `labelSelector` (equality terms) and `fieldSelector=metadata.name=`; watch
//!   from a `resourceVersion` (every event since, then live; none or `0`: the current objects as
//!   `ADDED` first) with `timeoutSeconds`; create (409 when it exists); replace with optimistic
//!   concurrency (409 when `metadata.resourceVersion` is stale); server-side apply (create or
//!   merge), JSON merge patch and JSON patch; delete; the `status` subresource (writes to the main
//!   resource keep the stored status, as a real server does for these kinds);
//! - `resourceVersion` and `generation` (bumped when anything but status and metadata changes);
//! - the Service proxy (`.../services/NAME[:PORT]/proxy/PATH`) to a ready Pod the Service
//!   selects, by the Pod's IP and the named or numbered target port, as the API server proxies
//!   to an endpoint; 503 when no Pod is ready. When a VirtualService names the Service
//!   (`<name>.<namespace>.svc.cluster.local` among its hosts), the proxy routes as the mesh would
//!   for all-or-nothing weights: only to the Pods of the subsets its first route weighs above 0
//!   (their labels from the DestinationRule of the same host). Proxied traffic in the fake stands
//!   for the mesh's callers; a real API server's Service proxy bypasses the mesh.
//!
//! What it does not model, so no test may claim it: authentication and RBAC, admission
//! (defaulting, validation, Pod Security), field ownership in server-side apply (no
//! `managedFields`, no conflicts: an apply merges the sent fields over the stored object, lists
//! replaced whole), strategic merge patch, watch bookmarks and history compaction (410 Gone),
//! garbage collection by owner references, Endpoints/EndpointSlices objects, graceful pod
//! termination, and every controller: Pods, readiness and Deployment status come from the
//! test's [`cluster::Kubelet`], which stands in for the Deployment controller and the kubelet.

pub mod cluster;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use http::{Method, StatusCode, header};
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// A kind the fake stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `apps/v1` Deployment.
    Deployment,
    /// `apps/v1` ReplicaSet.
    ReplicaSet,
    /// `v1` Service.
    Service,
    /// `v1` Pod.
    Pod,
    /// `v1` ConfigMap.
    ConfigMap,
    /// `networking.istio.io/v1` VirtualService.
    VirtualService,
    /// `networking.istio.io/v1` DestinationRule.
    DestinationRule,
}

impl Kind {
    const ALL: [Kind; 7] = [
        Kind::Deployment,
        Kind::ReplicaSet,
        Kind::Service,
        Kind::Pod,
        Kind::ConfigMap,
        Kind::VirtualService,
        Kind::DestinationRule,
    ];

    /// `(API prefix, apiVersion, kind, plural)`.
    fn names(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            Kind::Deployment => ("/apis/apps/v1", "apps/v1", "Deployment", "deployments"),
            Kind::ReplicaSet => ("/apis/apps/v1", "apps/v1", "ReplicaSet", "replicasets"),
            Kind::Service => ("/api/v1", "v1", "Service", "services"),
            Kind::Pod => ("/api/v1", "v1", "Pod", "pods"),
            Kind::ConfigMap => ("/api/v1", "v1", "ConfigMap", "configmaps"),
            Kind::VirtualService => {
                ("/apis/networking.istio.io/v1", "networking.istio.io/v1", "VirtualService", "virtualservices")
            }
            Kind::DestinationRule => {
                ("/apis/networking.istio.io/v1", "networking.istio.io/v1", "DestinationRule", "destinationrules")
            }
        }
    }

    /// Whether writes to the object keep its stored status (a `status` subresource).
    fn has_status(self) -> bool {
        match self {
            Kind::Deployment
            | Kind::ReplicaSet
            | Kind::Service
            | Kind::Pod
            | Kind::VirtualService
            | Kind::DestinationRule => true,
            Kind::ConfigMap => false,
        }
    }
}

/// Where an object is.
pub type Key = (Kind, String, String);

/// A change to the store, as a watch reports it.
#[derive(Clone, Debug)]
pub struct Change {
    /// The store's resourceVersion after it.
    pub version: u64,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub kind: &'static str,
    /// What changed.
    pub key: Key,
    /// The object after the change (before it, for `DELETED`).
    pub object: Value,
}

/// A request the Service proxy forwarded (or could not).
#[derive(Clone, Debug)]
pub struct Proxied {
    /// When, since the fake started.
    pub at: Duration,
    /// `namespace/service`.
    pub service: String,
    /// The Pod that answered; `None`: no ready Pod (503).
    pub pod: Option<String>,
    /// The status code returned.
    pub status: u16,
}

/// A Service a test guards: every moment it has no ready backend is recorded.
#[derive(Clone, Debug)]
pub struct Gap {
    /// The store's resourceVersion of the change that left it without one.
    pub version: u64,
    /// `namespace/service`.
    pub service: String,
    /// The change.
    pub cause: String,
}

#[derive(Default)]
struct Store {
    version: u64,
    objects: BTreeMap<Key, Value>,
    log: Vec<Change>,
    proxied: Vec<Proxied>,
    guarded: Vec<(String, String)>,
    gaps: Vec<Gap>,
    uid: u64,
    next_backend: usize,
}

/// The fake API server: cheap to clone, every clone the same store.
#[derive(Clone)]
pub struct Fake {
    store: Arc<Mutex<Store>>,
    changes: broadcast::Sender<Change>,
    started: Instant,
    http: plain_http::Client,
}

pub mod plain_http {
    //! A plain HTTP client for the Service proxy and the kubelet's probes.
    use std::time::Duration;

    /// Forwards proxied requests.
    #[derive(Clone)]
    pub struct Client(pub(crate) Duration);

    impl Client {
        pub(crate) async fn get(&self, url: &str) -> Result<(u16, bytes::Bytes), String> {
            let url = url.to_owned();
            let timeout = self.0;
            tokio::task::spawn_blocking(move || http_get(&url, timeout).map(|(code, body)| (code, body.into())))
                .await
                .map_err(|e| e.to_string())?
        }
    }

    pub(crate) fn url_addr(url: &str) -> Option<std::net::SocketAddr> {
        let rest = url.strip_prefix("http://")?;
        let host = rest.split('/').next()?;
        host.parse().ok()
    }

    /// HTTP/1.0 GET over a socket: enough for the apps' health and metrics endpoints and
    /// Prometheus's query API, with no client library to pull in.
    pub fn http_get(url: &str, timeout: Duration) -> Result<(u16, Vec<u8>), String> {
        use std::io::{Read, Write};
        let addr = url_addr(url).ok_or("bad address")?;
        let rest = url.strip_prefix("http://").unwrap_or(url);
        let path = rest.find('/').map_or("/", |i| &rest[i..]);
        let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
        // One write: a server that answers after the first packet must have the whole request.
        let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).map_err(|e| e.to_string())?;
        let split = response.windows(4).position(|w| w == b"\r\n\r\n").ok_or("no header end")?;
        let head = String::from_utf8_lossy(&response[..split]);
        let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or("no status")?;
        Ok((status, response[split + 4..].to_vec()))
    }
}

impl Default for Fake {
    fn default() -> Self {
        Fake::new()
    }
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code.as_u16(),
    });
    respond(code, &body)
}

fn respond(code: StatusCode, body: &Value) -> Response {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap_or_default()
}

/// Equality terms of a label selector (`a=b,c==d`); `None` when a term is not equality-based.
fn parse_selector(text: &str) -> Option<Vec<(String, String)>> {
    text.split(',')
        .filter(|t| !t.is_empty())
        .map(|term| {
            let (key, value) = term.split_once("==").or_else(|| term.split_once('='))?;
            (!key.ends_with('!')).then(|| (key.trim().to_owned(), value.trim().to_owned()))
        })
        .collect()
}

fn labels_match(object: &Value, terms: &[(String, String)]) -> bool {
    terms.iter().all(|(k, v)| object["metadata"]["labels"][k].as_str() == Some(v))
}

/// Whether the map `selector` (a Service's) selects `object` (a Pod).
fn selects(selector: &serde_json::Map<String, Value>, object: &Value) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| object["metadata"]["labels"][k] == *v)
}

fn pod_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
        && pod["metadata"]["deletionTimestamp"].is_null()
}

fn query_params(request: &Request) -> BTreeMap<String, String> {
    request
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), percent_decode(v)))
        .collect()
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(&text.replace('+', " ")).decode_utf8_lossy().into_owned()
}

/// A parsed request path.
enum Target {
    Collection { kind: Kind, namespace: String },
    Object { kind: Kind, namespace: String, name: String, status: bool },
    Proxy { namespace: String, service: String, port: Option<String>, path: String },
    Version,
}

fn parse_path(path: &str) -> Option<Target> {
    if path == "/version" {
        return Some(Target::Version);
    }
    for kind in Kind::ALL {
        let (prefix, _, _, plural) = kind.names();
        let Some(rest) = path.strip_prefix(prefix).and_then(|r| r.strip_prefix("/namespaces/")) else { continue };
        let parts: Vec<&str> = rest.splitn(5, '/').collect();
        if parts.get(1) != Some(&plural) {
            continue;
        }
        let namespace = parts[0].to_owned();
        return match parts.as_slice() {
            [_, _] => Some(Target::Collection { kind, namespace }),
            [_, _, name] => Some(Target::Object { kind, namespace, name: (*name).to_owned(), status: false }),
            [_, _, name, "status"] => Some(Target::Object { kind, namespace, name: (*name).to_owned(), status: true }),
            [_, _, service, "proxy", rest @ ..] if kind == Kind::Service => {
                let (service, port) = match service.split_once(':') {
                    Some((s, p)) => (s.to_owned(), Some(p.to_owned())),
                    None => ((*service).to_owned(), None),
                };
                Some(Target::Proxy { namespace, service, port, path: format!("/{}", rest.join("/")) })
            }
            _ => None,
        };
    }
    None
}

impl Fake {
    /// An empty cluster.
    pub fn new() -> Self {
        let (changes, _) = broadcast::channel(4096);
        Fake {
            store: Arc::new(Mutex::new(Store::default())),
            changes,
            started: Instant::now(),
            http: plain_http::Client(Duration::from_secs(5)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The router: a `tower::Service` for `kube::Client::new`, or for `axum::serve`.
    pub fn router(&self) -> Router {
        Router::new().fallback(handle).with_state(self.clone())
    }

    /// A kube-rs client of this fake, in process.
    pub fn client(&self) -> kube::Client {
        kube::Client::new(self.router(), "default")
    }

    /// Serves the fake over HTTP on a free loopback port until the runtime ends.
    pub async fn serve(&self) -> std::io::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let router = self.router();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Ok(addr)
    }

    /// A kubeconfig for the fake served at `addr`, with `namespace` as the context's default.
    pub fn kubeconfig(addr: SocketAddr, namespace: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\nclusters:\n- name: fake\n  cluster:\n    server: http://{addr}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: tester\n    namespace: {namespace}\n\
             users:\n- name: tester\n  user:\n    token: not-a-real-token\n"
        )
    }

    /// The stored object, if any.
    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<Value> {
        self.lock().objects.get(&(kind, namespace.to_owned(), name.to_owned())).cloned()
    }

    /// Every stored object of `kind` in `namespace`.
    pub fn list(&self, kind: Kind, namespace: &str) -> Vec<Value> {
        self.lock()
            .objects
            .iter()
            .filter(|((k, ns, _), _)| *k == kind && ns == namespace)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Stores `object` as is (apiVersion and kind filled), as a controller would write it.
    pub fn put(&self, kind: Kind, object: Value) {
        let mut store = self.lock();
        self.write(&mut store, kind, object, "test");
    }

    /// Sets the status of a stored object (as a controller writes the `status` subresource,
    /// leaving whatever else changed meanwhile); nothing when it is gone.
    pub fn put_status(&self, kind: Kind, namespace: &str, name: &str, status: Value) {
        let mut store = self.lock();
        let Some(mut object) = store.objects.get(&(kind, namespace.to_owned(), name.to_owned())).cloned() else {
            return;
        };
        object["status"] = status;
        self.write(&mut store, kind, object, "status");
    }

    /// Deletes an object, as a controller would.
    pub fn remove(&self, kind: Kind, namespace: &str, name: &str) {
        let mut store = self.lock();
        self.delete(&mut store, (kind, namespace.to_owned(), name.to_owned()), "test");
    }

    /// Every change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// Every change so far, oldest first.
    pub fn history(&self) -> Vec<Change> {
        self.lock().log.clone()
    }

    /// Every request the Service proxy handled.
    pub fn proxied(&self) -> Vec<Proxied> {
        self.lock().proxied.clone()
    }

    /// From now on, records every change that leaves `namespace/service` without a ready Pod.
    pub fn guard(&self, namespace: &str, service: &str) {
        let mut store = self.lock();
        store.guarded.push((namespace.to_owned(), service.to_owned()));
        self.check_guards(&mut store, "guard set");
    }

    /// The recorded gaps.
    pub fn gaps(&self) -> Vec<Gap> {
        self.lock().gaps.clone()
    }

    /// The ready Pods `namespace/service` selects, with the address its port `port` (name or
    /// number; `None`: its only port) reaches on each.
    pub fn endpoints(&self, namespace: &str, service: &str, port: Option<&str>) -> Vec<(String, SocketAddr)> {
        endpoints(&self.lock(), namespace, service, port)
    }

    fn check_guards(&self, store: &mut Store, cause: &str) {
        let version = store.version;
        let empty: Vec<String> = store
            .guarded
            .iter()
            .filter(|(ns, name)| endpoints(store, ns, name, None).is_empty())
            .map(|(ns, name)| format!("{ns}/{name}"))
            .collect();
        for service in empty {
            store.gaps.push(Gap { version, service, cause: cause.to_owned() });
        }
    }

    fn write(&self, store: &mut Store, kind: Kind, mut object: Value, cause: &str) -> Value {
        let (_, api_version, kind_name, _) = kind.names();
        object["apiVersion"] = json!(api_version);
        object["kind"] = json!(kind_name);
        let namespace = object["metadata"]["namespace"].as_str().unwrap_or("default").to_owned();
        let name = object["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        object["metadata"]["namespace"] = json!(namespace);
        let key = (kind, namespace, name);
        store.version += 1;
        let version = store.version;
        let previous = store.objects.get(&key).cloned();
        let event = match &previous {
            Some(old) => {
                object["metadata"]["uid"] = old["metadata"]["uid"].clone();
                object["metadata"]["creationTimestamp"] = old["metadata"]["creationTimestamp"].clone();
                let generation = old["metadata"]["generation"].as_u64().unwrap_or(1);
                let changed = old.get("spec") != object.get("spec");
                object["metadata"]["generation"] = json!(if changed { generation + 1 } else { generation });
                "MODIFIED"
            }
            None => {
                store.uid += 1;
                object["metadata"]["uid"] = json!(format!("00000000-0000-4000-8000-{:012}", store.uid));
                object["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
                object["metadata"]["generation"] = json!(1);
                "ADDED"
            }
        };
        object["metadata"]["resourceVersion"] = json!(version.to_string());
        store.objects.insert(key.clone(), object.clone());
        let change = Change { version, kind: event, key, object: object.clone() };
        store.log.push(change.clone());
        let _ = self.changes.send(change);
        self.check_guards(store, &format!("{cause}: {event} {kind_name} {}", object["metadata"]["name"]));
        object
    }

    fn delete(&self, store: &mut Store, key: Key, cause: &str) -> Option<Value> {
        let object = store.objects.remove(&key)?;
        store.version += 1;
        let change = Change { version: store.version, kind: "DELETED", key: key.clone(), object: object.clone() };
        store.log.push(change.clone());
        let _ = self.changes.send(change);
        self.check_guards(store, &format!("{cause}: DELETED {:?} {}", key.0, key.2));
        Some(object)
    }

    async fn proxy(&self, namespace: &str, service: &str, port: Option<&str>, path: &str) -> Response {
        let picked = {
            let mut store = self.lock();
            let ready = endpoints(&store, namespace, service, port);
            if ready.is_empty() {
                let at = self.started.elapsed();
                store.proxied.push(Proxied { at, service: format!("{namespace}/{service}"), pod: None, status: 503 });
                None
            } else {
                store.next_backend = store.next_backend.wrapping_add(1);
                Some(ready[store.next_backend % ready.len()].clone())
            }
        };
        let Some((pod, addr)) = picked else {
            return status(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                &format!("no endpoints available for service \"{service}\""),
            );
        };
        let answer = self.http.get(&format!("http://{addr}{path}")).await;
        let code = answer.as_ref().map_or(502, |(code, _)| *code);
        let at = self.started.elapsed();
        self.lock().proxied.push(Proxied {
            at,
            service: format!("{namespace}/{service}"),
            pod: Some(pod),
            status: code,
        });
        match answer {
            Ok((code, body)) => Response::builder().status(code).body(Body::from(body)).unwrap_or_default(),
            Err(error) => {
                status(StatusCode::BAD_GATEWAY, "BadGateway", &format!("error trying to reach service: {error}"))
            }
        }
    }
}

/// The label sets of the subsets the mesh sends `namespace/service`'s traffic to: those its
/// VirtualService's first route weighs above 0, as its DestinationRule defines them. `None`
/// when no VirtualService names the Service (the Service's own selector decides).
fn mesh_subsets(store: &Store, namespace: &str, service: &str) -> Option<Vec<serde_json::Map<String, Value>>> {
    let host = format!("{service}.{namespace}.svc.cluster.local");
    let of_host = |kind: Kind, field: &str| {
        store.objects.iter().find(|((k, ns, _), object)| {
            *k == kind
                && ns == namespace
                && match &object["spec"][field] {
                    Value::Array(hosts) => hosts.iter().any(|h| h == host.as_str()),
                    other => *other == host.as_str(),
                }
        })
    };
    let (_, virtual_service) = of_host(Kind::VirtualService, "hosts")?;
    let rule = of_host(Kind::DestinationRule, "host").map(|(_, rule)| rule);
    let weighted: Vec<&str> = virtual_service["spec"]["http"][0]["route"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|destination| destination["weight"].as_u64().unwrap_or(100) > 0)
        .filter_map(|destination| destination["destination"]["subset"].as_str())
        .collect();
    Some(
        weighted
            .iter()
            .filter_map(|name| {
                let subsets = rule?["spec"]["subsets"].as_array()?;
                let subset = subsets.iter().find(|subset| subset["name"] == *name)?;
                subset["labels"].as_object().cloned()
            })
            .collect(),
    )
}

fn endpoints(store: &Store, namespace: &str, service: &str, port: Option<&str>) -> Vec<(String, SocketAddr)> {
    let Some(svc) = store.objects.get(&(Kind::Service, namespace.to_owned(), service.to_owned())) else {
        return Vec::new();
    };
    let Some(selector) = svc["spec"]["selector"].as_object() else { return Vec::new() };
    let ports = svc["spec"]["ports"].as_array().cloned().unwrap_or_default();
    let chosen = match port {
        Some(p) => ports
            .iter()
            .find(|sp| sp["name"].as_str() == Some(p) || sp["port"].as_u64().is_some_and(|n| n.to_string() == p)),
        None => ports.first(),
    };
    let Some(chosen) = chosen else { return Vec::new() };
    let target = if chosen["targetPort"].is_null() { chosen["port"].clone() } else { chosen["targetPort"].clone() };
    let routed = mesh_subsets(store, namespace, service);
    store
        .objects
        .iter()
        .filter(|((kind, ns, _), pod)| {
            *kind == Kind::Pod && ns == namespace && selects(selector, pod) && pod_ready(pod)
        })
        .filter(|(_, pod)| routed.as_ref().is_none_or(|subsets| subsets.iter().any(|labels| selects(labels, pod))))
        .filter_map(|((_, _, name), pod)| {
            let ip = pod["status"]["podIP"].as_str()?;
            let number = match &target {
                Value::Number(n) => n.as_u64(),
                Value::String(named) => pod["spec"]["containers"]
                    .as_array()?
                    .iter()
                    .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
                    .find(|p| p["name"].as_str() == Some(named))
                    .and_then(|p| p["containerPort"].as_u64()),
                _ => None,
            }?;
            let addr = format!("{ip}:{number}").parse().ok()?;
            Some((name.clone(), addr))
        })
        .collect()
}

async fn handle(State(fake): State<Fake>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let Some(target) = parse_path(&path) else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("the server could not find the requested resource ({path})"),
        );
    };
    let params = query_params(&request);
    let method = request.method().clone();
    let content_type =
        request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let body = match axum::body::to_bytes(request.into_body(), 16 << 20).await {
        Ok(body) => body,
        Err(error) => return status(StatusCode::BAD_REQUEST, "BadRequest", &error.to_string()),
    };
    match target {
        Target::Version => respond(
            StatusCode::OK,
            &json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0-fake", "platform": "linux/amd64"}),
        ),
        Target::Proxy { namespace, service, port, path } => {
            if method != Method::GET {
                return status(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "the fake proxies GET only");
            }
            let path = match params.is_empty() {
                true => path,
                false => {
                    let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", percent_encode(v))).collect();
                    format!("{path}?{}", query.join("&"))
                }
            };
            fake.proxy(&namespace, &service, port.as_deref(), &path).await
        }
        Target::Collection { kind, namespace } => match method {
            Method::GET if params.get("watch").is_some_and(|w| w == "true" || w == "1") => {
                watch(&fake, kind, &namespace, &params)
            }
            Method::GET => list(&fake, kind, &namespace, &params),
            Method::POST => {
                let Ok(mut object) = serde_json::from_slice::<Value>(&body) else {
                    return status(StatusCode::BAD_REQUEST, "BadRequest", "the body is not JSON");
                };
                let name = object["metadata"]["name"].as_str().unwrap_or_default().to_owned();
                object["metadata"]["namespace"] = json!(namespace);
                let mut store = fake.lock();
                if store.objects.contains_key(&(kind, namespace.clone(), name.clone())) {
                    let plural = kind.names().3;
                    return status(
                        StatusCode::CONFLICT,
                        "AlreadyExists",
                        &format!("{plural} \"{name}\" already exists"),
                    );
                }
                let stored = fake.write(&mut store, kind, object, "create");
                respond(StatusCode::CREATED, &stored)
            }
            _ => status(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "not on a collection"),
        },
        Target::Object { kind, namespace, name, status: subresource } => {
            object(&fake, kind, namespace, name, subresource, &method, &content_type, &params, &body)
        }
    }
}

fn percent_encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn not_found(kind: Kind, name: &str) -> Response {
    let (_, _, _, plural) = kind.names();
    status(StatusCode::NOT_FOUND, "NotFound", &format!("{plural} \"{name}\" not found"))
}

#[allow(clippy::too_many_arguments)]
fn object(
    fake: &Fake,
    kind: Kind,
    namespace: String,
    name: String,
    subresource: bool,
    method: &Method,
    content_type: &str,
    params: &BTreeMap<String, String>,
    body: &Bytes,
) -> Response {
    let key = (kind, namespace.clone(), name.clone());
    let mut store = fake.lock();
    let current = store.objects.get(&key).cloned();
    let incoming = || serde_json::from_slice::<Value>(body);
    // Writes to the main resource keep the stored status; writes to `status` change only it.
    let settle = |mut new: Value, old: Option<&Value>| -> Value {
        if kind.has_status() {
            match (subresource, old) {
                (true, Some(old)) => {
                    let mut kept = old.clone();
                    kept["status"] = new["status"].take();
                    return kept;
                }
                (false, Some(old)) if !old["status"].is_null() => new["status"] = old["status"].clone(),
                (false, _) => {
                    if let Some(map) = new.as_object_mut() {
                        map.remove("status");
                    }
                }
                (true, None) => {}
            }
        }
        new["metadata"]["namespace"] = json!(namespace);
        new["metadata"]["name"] = json!(name);
        new
    };
    match *method {
        Method::GET => match current {
            Some(object) => respond(StatusCode::OK, &object),
            None => not_found(kind, &name),
        },
        Method::DELETE => match fake.delete(&mut store, key, "delete") {
            Some(object) => respond(StatusCode::OK, &object),
            None => not_found(kind, &name),
        },
        Method::PUT => {
            let Ok(new) = incoming() else { return status(StatusCode::BAD_REQUEST, "BadRequest", "not JSON") };
            let Some(old) = current else { return not_found(kind, &name) };
            let sent = new["metadata"]["resourceVersion"].as_str().map(str::to_owned);
            if sent.as_deref().is_some_and(|v| Some(v) != old["metadata"]["resourceVersion"].as_str()) {
                let plural = kind.names().3;
                return status(
                    StatusCode::CONFLICT,
                    "Conflict",
                    &format!(
                        "Operation cannot be fulfilled on {plural} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
                    ),
                );
            }
            let stored = fake.write(&mut store, kind, settle(new, Some(&old)), "replace");
            respond(StatusCode::OK, &stored)
        }
        Method::PATCH => {
            let Ok(patch) = incoming() else { return status(StatusCode::BAD_REQUEST, "BadRequest", "not JSON") };
            let merged = match content_type {
                "application/apply-patch+yaml" => {
                    if params.get("fieldManager").is_none_or(String::is_empty) {
                        return status(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            "Invalid",
                            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                        );
                    }
                    let mut base = current.clone().unwrap_or_else(|| json!({}));
                    json_patch::merge(&mut base, &patch);
                    base
                }
                "application/merge-patch+json" => {
                    let Some(mut base) = current.clone() else { return not_found(kind, &name) };
                    json_patch::merge(&mut base, &patch);
                    base
                }
                "application/json-patch+json" => {
                    let Some(mut base) = current.clone() else { return not_found(kind, &name) };
                    let Ok(operations) = serde_json::from_value::<json_patch::Patch>(patch) else {
                        return status(StatusCode::BAD_REQUEST, "BadRequest", "not a JSON patch");
                    };
                    if let Err(error) = json_patch::patch(&mut base, &operations) {
                        return status(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", &error.to_string());
                    }
                    base
                }
                other => {
                    return status(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        "UnsupportedMediaType",
                        &format!("the fake does not model the patch type {other:?}"),
                    );
                }
            };
            let created = current.is_none();
            let stored = fake.write(&mut store, kind, settle(merged, current.as_ref()), "patch");
            respond(if created { StatusCode::CREATED } else { StatusCode::OK }, &stored)
        }
        _ => status(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "unsupported method"),
    }
}

/// The filter of a list or watch.
struct Filter {
    kind: Kind,
    namespace: String,
    labels: Vec<(String, String)>,
    name: Option<String>,
}

impl Filter {
    /// The filter, or why the fake cannot apply it (a 400).
    fn new(kind: Kind, namespace: &str, params: &BTreeMap<String, String>) -> Result<Filter, &'static str> {
        let labels = match params.get("labelSelector") {
            Some(text) => parse_selector(text).ok_or("the fake models equality-based label selectors only")?,
            None => Vec::new(),
        };
        let name = match params.get("fieldSelector") {
            Some(text) => Some(
                text.strip_prefix("metadata.name=")
                    .map(str::to_owned)
                    .ok_or("the fake models fieldSelector=metadata.name= only")?,
            ),
            None => None,
        };
        Ok(Filter { kind, namespace: namespace.to_owned(), labels, name })
    }

    fn matches(&self, key: &Key, object: &Value) -> bool {
        key.0 == self.kind
            && key.1 == self.namespace
            && self.name.as_ref().is_none_or(|n| *n == key.2)
            && labels_match(object, &self.labels)
    }
}

fn list(fake: &Fake, kind: Kind, namespace: &str, params: &BTreeMap<String, String>) -> Response {
    let filter = match Filter::new(kind, namespace, params) {
        Ok(filter) => filter,
        Err(why) => return status(StatusCode::BAD_REQUEST, "BadRequest", why),
    };
    let store = fake.lock();
    let items: Vec<Value> =
        store.objects.iter().filter(|(key, object)| filter.matches(key, object)).map(|(_, v)| v.clone()).collect();
    let (_, api_version, kind_name, _) = kind.names();
    respond(
        StatusCode::OK,
        &json!({
            "apiVersion": api_version, "kind": format!("{kind_name}List"),
            "metadata": {"resourceVersion": store.version.to_string()}, "items": items,
        }),
    )
}

fn watch(fake: &Fake, kind: Kind, namespace: &str, params: &BTreeMap<String, String>) -> Response {
    let filter = match Filter::new(kind, namespace, params) {
        Ok(filter) => filter,
        Err(why) => return status(StatusCode::BAD_REQUEST, "BadRequest", why),
    };
    let timeout = params.get("timeoutSeconds").and_then(|t| t.parse().ok()).unwrap_or(290u64);
    let since = params.get("resourceVersion").and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // Subscribe under the lock, so nothing falls between the backlog and the live events.
    let (backlog, live, last) = {
        let store = fake.lock();
        let backlog: Vec<(String, Value)> = if since == 0 {
            store
                .objects
                .iter()
                .filter(|(key, object)| filter.matches(key, object))
                .map(|(_, object)| ("ADDED".to_owned(), object.clone()))
                .collect()
        } else {
            store
                .log
                .iter()
                .filter(|c| c.version > since && filter.matches(&c.key, &c.object))
                .map(|c| (c.kind.to_owned(), c.object.clone()))
                .collect()
        };
        (backlog, fake.changes.subscribe(), store.version)
    };
    let backlog = futures_util::stream::iter(backlog);
    let live = tokio_stream::wrappers::BroadcastStream::new(live).filter_map(move |change| {
        let event = change.ok().filter(|c| c.version > last && filter.matches(&c.key, &c.object));
        std::future::ready(event.map(|c| (c.kind.to_owned(), c.object)))
    });
    let events = backlog.chain(live).map(|(kind, object)| {
        Ok::<_, std::convert::Infallible>(format!("{}\n", json!({"type": kind, "object": object})))
    });
    let deadline = tokio::time::sleep(Duration::from_secs(timeout));
    let events = events.take_until(deadline);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(events))
        .unwrap_or_default()
}

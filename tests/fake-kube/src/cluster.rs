//! What stands in for the Deployment controller and the kubelet: for every Deployment, Pods of
//! its template at its replica count, each "running" a real process (a [`Backend`] per image:
//! its loopback address and the port behind each container port name); readiness from real
//! HTTP probes of the template's readiness probe; the Deployment's status from its Pods.
//!
//! Not modelled: ReplicaSets in between (Pods belong to the Deployment directly), rolling
//! updates within one Deployment, scheduling, image pulls (an image without a backend stays
//! unready), restarts, graceful termination (a Pod scaled away is gone at once).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::{Fake, Kind, plain_http};

/// A process a Pod of an image runs as.
#[derive(Clone, Debug)]
pub struct Backend {
    /// Its IP (a loopback address).
    pub ip: String,
    /// The port behind each of the template's container port names.
    pub ports: BTreeMap<String, u16>,
}

/// The simulated controllers, running until dropped.
pub struct Kubelet {
    backends: Arc<Mutex<BTreeMap<String, Backend>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Kubelet {
    /// Starts reconciling every `period` in `namespace`.
    pub fn start(fake: &Fake, namespace: &str, period: Duration) -> Kubelet {
        let backends = Arc::new(Mutex::new(BTreeMap::new()));
        let shared = Arc::clone(&backends);
        let fake = fake.clone();
        let namespace = namespace.to_owned();
        let task = tokio::spawn(async move {
            loop {
                let known = shared.lock().map(|b| b.clone()).unwrap_or_default();
                let fake = fake.clone();
                let namespace = namespace.clone();
                let _ = tokio::task::spawn_blocking(move || reconcile(&fake, &namespace, &known)).await;
                tokio::time::sleep(period).await;
            }
        });
        Kubelet { backends, task }
    }

    /// Pods of `image` run as `backend` from now on.
    pub fn run(&self, image: &str, backend: Backend) {
        if let Ok(mut backends) = self.backends.lock() {
            backends.insert(image.to_owned(), backend);
        }
    }
}

fn owned_by(pod: &Value, deployment: &str) -> bool {
    pod["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|o| o.iter().any(|r| r["kind"] == "Deployment" && r["name"] == deployment))
}

/// The backend port behind template container port `number`.
fn port_by_number(template: &Value, backend: &Backend, number: u64) -> Option<u16> {
    let name = template["spec"]["containers"][0]["ports"]
        .as_array()?
        .iter()
        .find(|p| p["containerPort"].as_u64() == Some(number))?["name"]
        .as_str()?
        .to_owned();
    backend.ports.get(&name).copied()
}

fn pod_for(deployment: &Value, name: &str, backend: Option<&Backend>) -> Value {
    let template = &deployment["spec"]["template"];
    let mut spec = template["spec"].clone();
    if let (Some(backend), Some(containers)) = (backend, spec["containers"].as_array_mut()) {
        for container in containers {
            for port in container["ports"].as_array_mut().into_iter().flatten() {
                if let Some(actual) = port["name"].as_str().and_then(|n| backend.ports.get(n)) {
                    port["containerPort"] = json!(actual);
                }
            }
        }
    }
    json!({
        "metadata": {
            "name": name,
            "namespace": deployment["metadata"]["namespace"],
            "labels": template["metadata"]["labels"],
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "Deployment",
                "name": deployment["metadata"]["name"], "uid": deployment["metadata"]["uid"],
            }],
        },
        "spec": spec,
        "status": {
            "phase": if backend.is_some() { "Running" } else { "Pending" },
            "podIP": backend.map(|b| b.ip.clone()),
            "conditions": [{"type": "Ready", "status": "False"}],
        },
    })
}

fn probe_ready(deployment: &Value, backend: Option<&Backend>) -> bool {
    let Some(backend) = backend else { return false };
    let template = &deployment["spec"]["template"];
    let probe = &template["spec"]["containers"][0]["readinessProbe"]["httpGet"];
    let Some(path) = probe["path"].as_str() else {
        // No readiness probe: ready once running, as the kubelet does.
        return true;
    };
    let port = match &probe["port"] {
        Value::Number(n) => n.as_u64().and_then(|n| port_by_number(template, backend, n)),
        Value::String(name) => backend.ports.get(name).copied(),
        _ => None,
    };
    let Some(port) = port else { return false };
    plain_http::http_get(&format!("http://{}:{port}{path}", backend.ip), Duration::from_secs(1))
        .is_ok_and(|(code, _)| (200..400).contains(&code))
}

/// A short hash of a Pod template, as the Deployment controller's `pod-template-hash`: Pods
/// keep their names while only the replica count changes.
fn template_hash(template: &Value) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    template.to_string().hash(&mut hasher);
    format!("{:x}", hasher.finish() & 0xf_ffff)
}

fn reconcile(fake: &Fake, namespace: &str, backends: &BTreeMap<String, Backend>) {
    let pods = fake.list(Kind::Pod, namespace);
    for deployment in fake.list(Kind::Deployment, namespace) {
        let name = deployment["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        let wanted = deployment["spec"]["replicas"].as_u64().unwrap_or(1);
        let image = deployment["spec"]["template"]["spec"]["containers"][0]["image"].as_str().unwrap_or_default();
        let backend = backends.get(image);
        let generation = deployment["metadata"]["generation"].as_u64().unwrap_or(1);
        let hash = template_hash(&deployment["spec"]["template"]);
        let mut ready = 0;
        let mut existing = 0;
        for i in 0..wanted {
            let pod_name = format!("{name}-{hash}-{i}");
            let mut pod = match fake.get(Kind::Pod, namespace, &pod_name) {
                // Started once its image has a backend (the image "pulled").
                Some(pod) if !(pod["status"]["podIP"].is_null() && backend.is_some()) => pod,
                Some(_) | None => {
                    let pod = pod_for(&deployment, &pod_name, backend);
                    fake.put(Kind::Pod, pod.clone());
                    pod
                }
            };
            existing += 1;
            let is_ready = probe_ready(&deployment, backend);
            let shown = if is_ready { "True" } else { "False" };
            if pod["status"]["conditions"][0]["status"] != shown {
                pod["status"]["conditions"] = json!([{"type": "Ready", "status": shown}]);
                fake.put_status(Kind::Pod, namespace, &pod_name, pod["status"].take());
            }
            ready += u64::from(is_ready);
        }
        // Pods of other generations or above the count go.
        for pod in pods.iter().filter(|p| owned_by(p, &name)) {
            let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
            let keep = (0..wanted).any(|i| pod_name == format!("{name}-{hash}-{i}"));
            if !keep {
                fake.remove(Kind::Pod, namespace, pod_name);
            }
        }
        let status = json!({
            "observedGeneration": generation, "replicas": existing, "updatedReplicas": existing,
            "readyReplicas": ready, "availableReplicas": ready,
        });
        if deployment["status"] != status {
            fake.put_status(Kind::Deployment, namespace, &name, status);
        }
    }
    // Pods of deleted Deployments go too.
    for pod in pods {
        let owner = pod["metadata"]["ownerReferences"][0]["name"].as_str().unwrap_or_default();
        if !owner.is_empty() && fake.get(Kind::Deployment, namespace, owner).is_none() {
            fake.remove(Kind::Pod, namespace, pod["metadata"]["name"].as_str().unwrap_or_default());
        }
    }
}

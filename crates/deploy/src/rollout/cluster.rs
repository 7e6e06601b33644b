//! Driving a blue-green rollout on a cluster with kube-rs (feature `cluster`).
//!
//! Nothing is installed in the cluster: while an `enclave rollout` command runs, it is the
//! controller. Its state is the [`Rollout`] kept in the ConfigMap `<app>-rollout` (replaced with
//! optimistic concurrency: two processes never both write a step), so a killed process resumes
//! where it was on the next command. Each pass is level-triggered, like a controller's
//! reconcile: [`Driver::converge`] makes the cluster what the state says (server-side apply with
//! field manager `enclave`), then readiness, due measurements and the clock become [`Event`]s;
//! between passes it waits on watches of the app's Deployments and its state, or the next
//! deadline.
//!
//! On the cluster, each revision (image) is a Deployment `<app>-<hash>` made from the app's own
//! Deployment (the one the bundle renders, the template), whose Pods carry the label
//! `enclave.dev/revision: <hash>`; the active Service `<app>` (the bundle's) and the preview
//! Service `<app>-preview` select a revision by that label. The template is scaled to zero once
//! a revision serves, its replica count kept in an annotation. A Service is never switched to a
//! revision with no ready Pod, and a revision a Service selects is never scaled down.
//!
//! With the mesh ([`Target::mesh`]), the switch is the mesh's instead: each revision's Pods
//! carry a slot (`enclave.dev/slot`: the active revision keeps its own, every other revision up
//! takes the other one), the active Service selects every revision, and the VirtualService
//! `<app>` sends all traffic to the active revision's slot (its `blue` and `green` subsets,
//! `enclave_deploy::mesh`), moved only once a Pod of that revision is ready.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams, WatchParams,
};
use serde::Serialize;
use serde_json::{Value, json};

use super::analysis::{Measurement, Provider};
use super::bluegreen::{Event, Pause, Rollout, Stage, Step, Strategy};
use crate::mesh::{SLOT_LABEL, Slot};

/// The label naming a revision on its Deployment and Pods.
pub const REVISION_LABEL: &str = "enclave.dev/revision";
/// The annotation keeping the template's replica count while it is scaled to zero.
pub const REPLICAS_ANNOTATION: &str = "enclave.dev/replicas";
/// The field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "enclave";

/// Why driving a rollout failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A call to the Kubernetes API failed.
    #[error("{operation}")]
    Kube {
        /// What was being done.
        operation: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// The app's Deployment (the template) is not on the cluster.
    #[error("the Deployment {namespace}/{name} is not on the cluster: apply the app's bundle first")]
    NotDeployed {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// The app's Deployment has no readiness probe: nothing would tell when green can serve.
    #[error(
        "the Deployment {namespace}/{name} has no readiness probe: a blue-green rollout needs one to know when the new version can take traffic"
    )]
    NoReadinessProbe {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// The cluster's mesh routes the app, but its VirtualService is not on the cluster.
    #[error(
        "the VirtualService {namespace}/{name} is not on the cluster: apply the app's bundle rendered with the cluster's mesh on"
    )]
    NoVirtualService {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// The state in the ConfigMap cannot be read.
    #[error("the rollout state in {namespace}/{name} cannot be read")]
    State {
        /// Namespace.
        namespace: String,
        /// ConfigMap.
        name: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

fn kube(operation: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let operation = operation.into();
    move |source| Error::Kube { operation, source }
}

/// The revision's short name: 10 hex digits of the image's FNV-1a hash (stable across builds,
/// unlike std's hasher).
pub fn revision_hash(image: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in image.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:010x}", hash >> 24)
}

/// Where Prometheus answers queries.
#[derive(Clone, Debug)]
pub enum Prometheus {
    /// Through the API server's Service proxy: `namespace/service:port`.
    Service {
        /// Namespace.
        namespace: String,
        /// Service.
        name: String,
        /// Port name or number.
        port: String,
    },
    /// Directly at a URL (`http://prometheus:9090`).
    Url(String),
}

/// The app a driver rolls out.
#[derive(Clone, Debug)]
pub struct Target {
    /// App name: its Deployment (the template) and active Service.
    pub app: String,
    /// Namespace.
    pub namespace: String,
    /// The name and number of the app's internal port (readiness), on the preview Service.
    pub health_port: (String, u16),
    /// How it rolls out.
    pub strategy: Strategy,
    /// Whether the cluster's mesh routes the app: traffic moves by the weights of its
    /// VirtualService between the `blue` and `green` slots, not by the active Service's selector.
    pub mesh: bool,
}

impl Target {
    fn preview(&self) -> String {
        format!("{}-preview", self.app)
    }

    fn state_name(&self) -> String {
        format!("{}-rollout", self.app)
    }

    fn revision_name(&self, image: &str) -> String {
        format!("{}-{}", self.app, revision_hash(image))
    }
}

/// One revision as the cluster shows it.
#[derive(Clone, Debug, Serialize)]
pub struct Revision {
    /// Image.
    pub image: String,
    /// Deployment.
    pub deployment: String,
    /// Wanted Pods.
    pub wanted: u32,
    /// Ready Pods.
    pub ready: u32,
}

/// What `status` shows: the state and the cluster.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    /// The rollout's state.
    pub rollout: Rollout,
    /// Every revision Deployment of the app.
    pub revisions: Vec<Revision>,
    /// The image the active Service selects on the cluster (`None`: the template's Pods).
    pub active_selects: Option<String>,
    /// The image the preview Service selects.
    pub preview_selects: Option<String>,
}

/// Drives one app's rollout.
pub struct Driver {
    client: kube::Client,
    target: Target,
    prometheus: Prometheus,
    clock: fn() -> u64,
}

fn system_clock() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Whether a command that drives the rollout can stop: it is healthy, rolled back, or waits for
/// a person, with nothing pending on the clock.
pub fn settled(rollout: &Rollout) -> bool {
    let idle = rollout.scale_downs.is_empty();
    match &rollout.step {
        Step::Healthy | Step::Aborted { scale_down_at: None } => idle,
        Step::Paused { pause: Pause::Promotion | Pause::Inconclusive { .. } } => true,
        Step::Aborted { scale_down_at: Some(_) }
        | Step::Paused { pause: Pause::AutoPromotion { .. } }
        | Step::Progressing
        | Step::Analysis { .. }
        | Step::ScaleDownDelay { .. } => false,
    }
}

impl Driver {
    /// A driver of `target` through `client`, measuring with `prometheus`, on the system clock.
    pub fn new(client: kube::Client, target: Target, prometheus: Prometheus) -> Self {
        Driver { client, target, prometheus, clock: system_clock }
    }

    fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), &self.target.namespace)
    }

    fn services(&self) -> Api<Service> {
        Api::namespaced(self.client.clone(), &self.target.namespace)
    }

    fn config_maps(&self) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), &self.target.namespace)
    }

    /// The app's Deployments: the template and every revision (label `enclave.dev/app`).
    async fn app_deployments(&self) -> Result<Vec<Deployment>, Error> {
        let t = &self.target;
        let listed = self
            .deployments()
            .list(&ListParams::default().labels(&format!("enclave.dev/app={}", t.app)))
            .await
            .map_err(kube(format!("listing the Deployments of {}", t.app)))?;
        Ok(listed.items)
    }

    fn virtual_services(&self) -> Api<DynamicObject> {
        let kind = GroupVersionKind::gvk("networking.istio.io", "v1", "VirtualService");
        let resource = ApiResource::from_gvk_with_plural(&kind, "virtualservices");
        Api::namespaced_with(self.client.clone(), &self.target.namespace, &resource)
    }

    /// The app's VirtualService, with the slot all traffic goes to (none while it is split).
    async fn virtual_service(&self) -> Result<(DynamicObject, Option<Slot>), Error> {
        let t = &self.target;
        let service = self
            .virtual_services()
            .get_opt(&t.app)
            .await
            .map_err(kube(format!("reading VirtualService {}/{}", t.namespace, t.app)))?
            .ok_or_else(|| Error::NoVirtualService { namespace: t.namespace.clone(), name: t.app.clone() })?;
        let slot = weighted_slot(&service.data);
        Ok((service, slot))
    }

    /// Mesh routing: the active Service selects every revision, and the VirtualService sends all
    /// traffic to the active revision's slot once one of its Pods is ready. Returns the revision
    /// traffic goes to.
    async fn route(
        &self,
        rollout: &Rollout,
        slots: &BTreeMap<String, Slot>,
        active: &Service,
        listed: &[Deployment],
    ) -> Result<Option<String>, Error> {
        let t = &self.target;
        let selector = active.spec.as_ref().and_then(|s| s.selector.as_ref());
        if selector.is_some_and(|selector| selector.contains_key(REVISION_LABEL)) {
            let patch = json!({"spec": {"selector": {REVISION_LABEL: null}}});
            self.services()
                .patch(&t.app, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(kube(format!("widening Service {}/{} to every revision", t.namespace, t.app)))?;
        }
        let (service, mut weighted) = self.virtual_service().await?;
        let wanted = revision_hash(&rollout.active);
        let wanted_slot = slots.get(&wanted).copied().unwrap_or(Slot::Blue);
        let wanted_ready = self.ready(&t.revision_name(&rollout.active)).await?.is_some_and(|(ready, _)| ready > 0);
        if weighted != Some(wanted_slot) && wanted_ready {
            let mut http = service.data["spec"]["http"].clone();
            for route in http.as_array_mut().into_iter().flatten() {
                for destination in route["route"].as_array_mut().into_iter().flatten() {
                    let to_wanted = destination["destination"]["subset"] == wanted_slot.as_str();
                    destination["weight"] = json!(if to_wanted { 100 } else { 0 });
                }
            }
            let patch = json!({"spec": {"http": http}});
            self.virtual_services()
                .patch(&t.app, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(kube(format!("switching VirtualService {}/{}", t.namespace, t.app)))?;
            weighted = Some(wanted_slot);
        }
        let Some(slot) = weighted else { return Ok(None) };
        if wanted_slot == slot && wanted_ready {
            return Ok(Some(wanted));
        }
        // Still served by another revision running in that slot; none: by the template's Pods.
        let running = listed.iter().filter(|d| d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0) > 0);
        Ok(running
            .filter_map(|d| Some((revision_of(d)?, pod_slot(d)?)))
            .find(|(hash, candidate)| *candidate == slot && *hash != wanted)
            .map(|(hash, _)| hash))
    }

    /// The app's own Deployment, checked: it exists and has a readiness probe.
    pub async fn template(&self) -> Result<Deployment, Error> {
        let t = &self.target;
        let template = self
            .deployments()
            .get_opt(&t.app)
            .await
            .map_err(kube(format!("reading Deployment {}/{}", t.namespace, t.app)))?
            .ok_or_else(|| Error::NotDeployed { namespace: t.namespace.clone(), name: t.app.clone() })?;
        let probed = template
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|p| p.containers.first())
            .is_some_and(|c| c.readiness_probe.is_some());
        if !probed {
            return Err(Error::NoReadinessProbe { namespace: t.namespace.clone(), name: t.app.clone() });
        }
        Ok(template)
    }

    /// The state and its resourceVersion, if a rollout was ever started.
    pub async fn load(&self) -> Result<Option<(Rollout, String)>, Error> {
        let t = &self.target;
        let name = t.state_name();
        let Some(map) = self
            .config_maps()
            .get_opt(&name)
            .await
            .map_err(kube(format!("reading ConfigMap {}/{name}", t.namespace)))?
        else {
            return Ok(None);
        };
        let version = map.metadata.resource_version.clone().unwrap_or_default();
        let text = map.data.as_ref().and_then(|d| d.get("state")).cloned().unwrap_or_default();
        let rollout = serde_json::from_str(&text).map_err(|source| Error::State {
            namespace: t.namespace.clone(),
            name: name.clone(),
            source,
        })?;
        Ok(Some((rollout, version)))
    }

    /// Writes the state; `false` when another process changed it since `version` was read.
    async fn save(&self, rollout: &Rollout, version: Option<&str>) -> Result<bool, Error> {
        let t = &self.target;
        let name = t.state_name();
        let text = serde_json::to_string_pretty(rollout).map_err(|source| Error::State {
            namespace: t.namespace.clone(),
            name: name.clone(),
            source,
        })?;
        let mut map: ConfigMap = serde_json::from_value(json!({
            "metadata": {
                "name": name, "namespace": t.namespace,
                "labels": {"app.kubernetes.io/managed-by": "enclave", "enclave.dev/app": t.app},
            },
            "data": {"state": text},
        }))
        .map_err(|source| Error::State { namespace: t.namespace.clone(), name: name.clone(), source })?;
        let written = match version {
            Some(version) => {
                map.metadata.resource_version = Some(version.to_owned());
                self.config_maps().replace(&name, &PostParams::default(), &map).await
            }
            None => self.config_maps().create(&PostParams::default(), &map).await,
        };
        match written {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.is_conflict() || status.code == 409 => Ok(false),
            Err(source) => Err(Error::Kube { operation: format!("writing ConfigMap {}/{name}", t.namespace), source }),
        }
    }

    /// The state, or a new one for the image the template runs (the first rollout of the app).
    async fn current(&self) -> Result<(Rollout, Option<String>), Error> {
        if let Some((rollout, version)) = self.load().await? {
            return Ok((rollout, Some(version)));
        }
        let template = self.template().await?;
        let image = first_image(&template).unwrap_or_default();
        let mut rollout = Rollout::new(&image);
        rollout.since = (self.clock)();
        rollout.decisions.push(super::bluegreen::Decision {
            at: rollout.since,
            what: format!("took over {}", self.target.app),
            why: format!("{image} (the Deployment's image) is the stable revision"),
        });
        Ok((rollout, None))
    }

    /// Handles a person's or the pipeline's `event`, saved before anything changes on the
    /// cluster; retried on the newest state when another process wrote meanwhile.
    pub async fn submit(&self, event: Event) -> Result<Rollout, Error> {
        self.template().await?;
        loop {
            let (mut rollout, version) = self.current().await?;
            rollout.handle(&self.target.strategy, event.clone(), (self.clock)());
            if self.save(&rollout, version.as_deref()).await? {
                self.converge(&rollout).await?;
                return Ok(rollout);
            }
        }
    }

    async fn ready(&self, name: &str) -> Result<Option<(u32, u32)>, Error> {
        let deployment = self
            .deployments()
            .get_opt(name)
            .await
            .map_err(kube(format!("reading Deployment {}/{name}", self.target.namespace)))?;
        Ok(deployment.map(|d| {
            let wanted = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let ready = d.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0);
            (u32::try_from(ready).unwrap_or(0), u32::try_from(wanted).unwrap_or(0))
        }))
    }

    /// Makes the cluster what `rollout` says: revisions up scaled up first, Services switched
    /// only to a revision with a ready Pod, then revisions no Service selects scaled down.
    pub async fn converge(&self, rollout: &Rollout) -> Result<(), Error> {
        let t = &self.target;
        let template = self.template().await?;
        let annotated = template
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REPLICAS_ANNOTATION))
            .and_then(|r| r.parse::<i32>().ok());
        let replicas = match template.spec.as_ref().and_then(|s| s.replicas) {
            Some(0) | None => annotated.unwrap_or(1),
            Some(n) => n,
        };
        let apply = PatchParams::apply(FIELD_MANAGER).force();
        let listed = self.app_deployments().await?;
        let slots = slots(&listed, &template, rollout);
        for image in &rollout.up {
            let slot = if t.mesh { slots.get(&revision_hash(image)).copied() } else { None };
            let revision = revision_deployment(&template, t, image, replicas, slot);
            let name = t.revision_name(image);
            self.deployments()
                .patch(&name, &apply, &Patch::Apply(&revision))
                .await
                .map_err(kube(format!("applying Deployment {}/{name}", t.namespace)))?;
        }
        // The Services: only to a revision that can serve.
        let active = self
            .services()
            .get_opt(&t.app)
            .await
            .map_err(kube(format!("reading Service {}/{}", t.namespace, t.app)))?;
        let Some(active) = active else {
            return Err(Error::NotDeployed { namespace: t.namespace.clone(), name: t.app.clone() });
        };
        let serving = if t.mesh {
            self.route(rollout, &slots, &active, &listed).await?
        } else {
            let mut serving = active.spec.as_ref().and_then(|s| s.selector.as_ref()?.get(REVISION_LABEL).cloned());
            let wanted = revision_hash(&rollout.active);
            if serving.as_deref() != Some(&wanted)
                && self.ready(&t.revision_name(&rollout.active)).await?.is_some_and(|(ready, _)| ready > 0)
            {
                let mut selector = active.spec.as_ref().and_then(|s| s.selector.clone()).unwrap_or_default();
                selector.insert(REVISION_LABEL.to_owned(), wanted.clone());
                let patch = json!({"spec": {"selector": selector}});
                self.services()
                    .patch(&t.app, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(kube(format!("switching Service {}/{}", t.namespace, t.app)))?;
                serving = Some(wanted);
            }
            serving
        };
        let preview = preview_service(&active, t, &revision_hash(&rollout.preview));
        self.services().patch(&t.preview(), &apply, &Patch::Apply(&preview)).await.map_err(kube(format!(
            "applying Service {}/{}",
            t.namespace,
            t.preview()
        )))?;
        // Scale-downs: revisions not up, never the one serving; the template once a revision serves.
        let scale = |replicas: i32, annotations: Option<Value>| {
            let mut patch = json!({"spec": {"replicas": replicas}});
            if let Some(annotations) = annotations {
                patch["metadata"] = json!({"annotations": annotations});
            }
            patch
        };
        let up: Vec<String> = rollout.up.iter().map(|image| revision_hash(image)).collect();
        for deployment in listed {
            let labels = deployment.metadata.labels.clone().unwrap_or_default();
            let Some(hash) = labels.get(REVISION_LABEL) else { continue };
            let running = deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0) > 0;
            if running && !up.contains(hash) && serving.as_ref() != Some(hash) {
                let name = deployment.metadata.name.clone().unwrap_or_default();
                self.deployments()
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&scale(0, None)))
                    .await
                    .map_err(kube(format!("scaling down Deployment {}/{name}", t.namespace)))?;
            }
        }
        if serving.is_some() && template.spec.as_ref().and_then(|s| s.replicas) != Some(0) {
            let patch = scale(0, Some(json!({REPLICAS_ANNOTATION: replicas.to_string()})));
            self.deployments()
                .patch(&t.app, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(kube(format!("scaling down the template {}/{}", t.namespace, t.app)))?;
        }
        Ok(())
    }

    /// Takes one measurement of `provider`.
    /// `revision` is the hash of the revision analysed, for the query's placeholder.
    async fn measure(&self, provider: &Provider, revision: &str) -> Measurement {
        match provider {
            Provider::Readiness(_) if self.target.mesh => {
                // In a mesh the API server's proxy (outside the mesh) cannot pass STRICT mutual
                // TLS: the kubelet's probes (which the sidecar forwards to the app) decide, as the
                // revision's ready Pods.
                let name = format!("{}-{revision}", self.target.app);
                match self.ready(&name).await {
                    Ok(Some((ready, wanted))) if wanted > 0 && ready >= wanted => Measurement::Value(1.0),
                    Ok(_) => Measurement::Value(0.0),
                    Err(error) => Measurement::Error(format!("readiness of {name}: {error}")),
                }
            }
            Provider::Readiness(path) => {
                let t = &self.target;
                let uri = format!(
                    "/api/v1/namespaces/{}/services/{}:{}/proxy{path}",
                    t.namespace,
                    t.preview(),
                    t.health_port.0
                );
                match self.proxy_get(&uri).await {
                    Ok(_) => Measurement::Value(1.0),
                    Err(kube::Error::Api(_)) => Measurement::Value(0.0),
                    Err(error) => Measurement::Error(format!("readiness through {}: {error}", t.preview())),
                }
            }
            Provider::Prometheus(query) => {
                match self.query(&query.replace(super::REVISION_PLACEHOLDER, revision)).await {
                    Ok(value) => value,
                    Err(why) => Measurement::Error(why),
                }
            }
        }
    }

    async fn proxy_get(&self, uri: &str) -> Result<String, kube::Error> {
        let request = http::Request::get(uri).body(Vec::new()).map_err(kube::Error::HttpError)?;
        self.client.request_text(request).await
    }

    async fn query(&self, query: &str) -> Result<Measurement, String> {
        let encoded = percent_encoding::utf8_percent_encode(query, percent_encoding::NON_ALPHANUMERIC).to_string();
        let text = match &self.prometheus {
            Prometheus::Service { namespace, name, port } => self
                .proxy_get(&format!(
                    "/api/v1/namespaces/{namespace}/services/{name}:{port}/proxy/api/v1/query?query={encoded}"
                ))
                .await
                .map_err(|e| format!("Prometheus through {namespace}/{name}: {e}"))?,
            Prometheus::Url(url) => {
                let url = format!("{}/api/v1/query?query={encoded}", url.trim_end_matches('/'));
                tokio::task::spawn_blocking(move || {
                    ureq::get(&url)
                        .call()
                        .map_err(|e| e.to_string())?
                        .body_mut()
                        .read_to_string()
                        .map_err(|e| e.to_string())
                })
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("Prometheus: {e}"))?
            }
        };
        Ok(parse_query_result(&text))
    }

    /// The state and what the cluster shows.
    pub async fn status(&self) -> Result<Option<Status>, Error> {
        let t = &self.target;
        let Some((rollout, _)) = self.load().await? else { return Ok(None) };
        let listed = self.app_deployments().await?;
        let mut images = BTreeMap::new();
        let revisions: Vec<Revision> = listed
            .iter()
            .filter_map(|d| {
                let hash = d.metadata.labels.as_ref()?.get(REVISION_LABEL)?.clone();
                let image = first_image(d)?;
                images.insert(hash, image.clone());
                Some(Revision {
                    image,
                    deployment: d.metadata.name.clone().unwrap_or_default(),
                    wanted: d.spec.as_ref().and_then(|s| s.replicas).and_then(|r| u32::try_from(r).ok()).unwrap_or(0),
                    ready: d
                        .status
                        .as_ref()
                        .and_then(|s| s.ready_replicas)
                        .and_then(|r| u32::try_from(r).ok())
                        .unwrap_or(0),
                })
            })
            .collect();
        let selects = |service: Option<Service>| {
            service
                .and_then(|s| s.spec?.selector?.get(REVISION_LABEL).cloned())
                .and_then(|hash| images.get(&hash).cloned())
        };
        let active = self.services().get_opt(&t.app).await.map_err(kube("reading the active Service"))?;
        let preview = self.services().get_opt(&t.preview()).await.map_err(kube("reading the preview Service"))?;
        let active_selects = if t.mesh {
            // The revision in the slot the VirtualService sends traffic to: the active one when
            // it is there, else the running one that is.
            let (_, weighted) = self.virtual_service().await?;
            let in_slot = |d: &&Deployment| weighted.is_some() && pod_slot(d) == weighted;
            let active_hash = revision_hash(&rollout.active);
            let serving = listed
                .iter()
                .filter(in_slot)
                .find(|d| revision_of(d).as_deref() == Some(active_hash.as_str()))
                .or_else(|| {
                    listed.iter().filter(in_slot).find(|d| d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0) > 0)
                });
            serving.and_then(first_image)
        } else {
            selects(active)
        };
        Ok(Some(Status { active_selects, preview_selects: selects(preview), revisions, rollout }))
    }

    /// Drives the rollout until [`settled`] (or `max` elapses), calling `progress` after every
    /// change of state. Returns the last state.
    pub async fn drive(&self, max: Duration, mut progress: impl FnMut(&Rollout)) -> Result<Rollout, Error> {
        let deadline = tokio::time::Instant::now() + max;
        let t = &self.target;
        loop {
            let (mut rollout, version) = self.current().await?;
            self.converge(&rollout).await?;
            let before = rollout.clone();
            let now = (self.clock)();
            // Readiness of the wanted revision.
            if let Some((ready, wanted)) = self.ready(&t.revision_name(&rollout.desired)).await? {
                let revision = rollout.desired.clone();
                rollout.handle(&t.strategy, Event::Available { revision, ready, wanted }, now);
            }
            // Due measurements of the running analysis.
            if let Step::Analysis { stage } = rollout.step {
                for metric in metrics(&t.strategy, stage) {
                    if rollout.step != (Step::Analysis { stage }) {
                        break;
                    }
                    let last = rollout.analysis.get(&metric.name).and_then(|s| s.last_at);
                    let due = last.map_or(rollout.since, |at| at + metric.interval_seconds);
                    let done = rollout.analysis.get(&metric.name).is_some_and(|s| metric.assess(s, false).completed());
                    if due <= now && !done {
                        let measurement = self.measure(&metric.provider, &revision_hash(&rollout.desired)).await;
                        let event = Event::Measured { stage, metric: metric.name.clone(), measurement };
                        rollout.handle(&t.strategy, event, (self.clock)());
                    }
                }
            }
            rollout.handle(&t.strategy, Event::Tick, (self.clock)());
            if rollout != before {
                if !self.save(&rollout, version.as_deref()).await? {
                    continue;
                }
                self.converge(&rollout).await?;
                progress(&rollout);
            }
            if settled(&rollout) || tokio::time::Instant::now() >= deadline {
                return Ok(rollout);
            }
            self.wait(&rollout).await?;
        }
    }

    /// Until something of the app changes on the cluster (its Deployments or its state, by
    /// watches) or the rollout's next deadline, at most 2 s.
    pub async fn wait(&self, rollout: &Rollout) -> Result<(), Error> {
        let now = (self.clock)();
        let mut next = now + 2;
        if let Step::Analysis { stage } = rollout.step {
            for metric in metrics(&self.target.strategy, stage) {
                let last = rollout.analysis.get(&metric.name).and_then(|s| s.last_at);
                next = next.min(last.map_or(now, |at| at + metric.interval_seconds));
            }
        }
        for at in rollout.scale_downs.values() {
            next = next.min(*at);
        }
        if let Step::Paused { pause: Pause::AutoPromotion { until } } | Step::ScaleDownDelay { until } = rollout.step {
            next = next.min(until);
        }
        let sleep = Duration::from_millis(next.saturating_sub(now).saturating_mul(1000).max(200));
        // Watch from the versions just listed: only changes after them wake the driver.
        let selector = format!("enclave.dev/app={}", self.target.app);
        let list = ListParams::default().labels(&selector);
        let params = WatchParams::default().labels(&selector).timeout(5);
        let seen = |list: kube::core::ObjectList<kube::core::PartialObjectMeta<Deployment>>| {
            list.metadata.resource_version.unwrap_or_default()
        };
        let version = seen(self.deployments().list_metadata(&list).await.map_err(kube("listing the Deployments"))?);
        let deployments =
            self.deployments().watch(&params, &version).await.map_err(kube("watching the Deployments"))?;
        let version = self
            .config_maps()
            .list_metadata(&list)
            .await
            .map_err(kube("listing the rollout state"))?
            .metadata
            .resource_version
            .unwrap_or_default();
        let states = self.config_maps().watch(&params, &version).await.map_err(kube("watching the rollout state"))?;
        let mut changes =
            futures_util::stream::select(deployments.map_ok(|_| ()).boxed(), states.map_ok(|_| ()).boxed());
        tokio::select! {
            () = tokio::time::sleep(sleep) => {}
            _ = changes.next() => {}
        }
        Ok(())
    }
}

fn metrics(strategy: &Strategy, stage: Stage) -> Vec<super::analysis::Metric> {
    match stage {
        Stage::PrePromotion => strategy.pre_promotion.clone(),
        Stage::PostPromotion => strategy.post_promotion.clone(),
    }
}

/// One number from a Prometheus `/api/v1/query` answer; an empty result, a NaN (no requests to
/// measure) or an error is an error measurement.
pub fn parse_query_result(text: &str) -> Measurement {
    let Ok(answer) = serde_json::from_str::<Value>(text) else {
        return Measurement::Error("Prometheus answered something else than JSON".to_owned());
    };
    if answer["status"] != "success" {
        return Measurement::Error(format!("Prometheus: {}", answer["error"].as_str().unwrap_or("query failed")));
    }
    let data = &answer["data"];
    let value = match data["resultType"].as_str() {
        Some("vector") => {
            let results = data["result"].as_array().cloned().unwrap_or_default();
            match results.as_slice() {
                [] => return Measurement::Error("no data: the query matched no series yet".to_owned()),
                [one] => one["value"][1].clone(),
                _ => return Measurement::Error(format!("the query returned {} series, not one", results.len())),
            }
        }
        Some("scalar") => data["result"][1].clone(),
        other => return Measurement::Error(format!("unexpected result type {other:?}")),
    };
    match value.as_str().map(str::parse::<f64>) {
        Some(Ok(number)) if number.is_finite() => Measurement::Value(number),
        Some(Ok(_)) => Measurement::Error("not a number (no requests to measure)".to_owned()),
        Some(Err(_)) | None => Measurement::Error("the value is not a number".to_owned()),
    }
}

fn first_image(deployment: &Deployment) -> Option<String> {
    deployment.spec.as_ref()?.template.spec.as_ref()?.containers.first()?.image.clone()
}

/// The revision a Deployment runs.
fn revision_of(deployment: &Deployment) -> Option<String> {
    deployment.metadata.labels.as_ref()?.get(REVISION_LABEL).cloned()
}

/// The mesh slot of a Deployment's Pods.
fn pod_slot(deployment: &Deployment) -> Option<Slot> {
    let labels = deployment.spec.as_ref()?.template.metadata.as_ref()?.labels.as_ref()?;
    serde_json::from_value(json!(labels.get(SLOT_LABEL)?)).ok()
}

/// The slot of each revision: the active one keeps the slot it runs in (the template's when it
/// is new); every other revision up takes the other slot, so a new version never shares the
/// serving subset.
fn slots(listed: &[Deployment], template: &Deployment, rollout: &Rollout) -> BTreeMap<String, Slot> {
    let mut slots: BTreeMap<String, Slot> =
        listed.iter().filter_map(|d| Some((revision_of(d)?, pod_slot(d)?))).collect();
    let active = revision_hash(&rollout.active);
    let active_slot = *slots.entry(active.clone()).or_insert(pod_slot(template).unwrap_or(Slot::Blue));
    for image in &rollout.up {
        let hash = revision_hash(image);
        if hash != active {
            slots.insert(hash, active_slot.other());
        }
    }
    slots
}

/// The slot a VirtualService sends all of its traffic to: the subset its first route weighs 100.
fn weighted_slot(virtual_service: &Value) -> Option<Slot> {
    let route = virtual_service["spec"]["http"][0]["route"].as_array()?;
    let destination = route.iter().find(|destination| destination["weight"] == 100)?;
    serde_json::from_value(destination["destination"]["subset"].clone()).ok()
}

/// The Deployment of revision `image`, from the template, its Pods in `slot` with the mesh.
fn revision_deployment(
    template: &Deployment,
    target: &Target,
    image: &str,
    replicas: i32,
    slot: Option<Slot>,
) -> Value {
    let hash = revision_hash(image);
    let mut spec = serde_json::to_value(template.spec.clone().unwrap_or_default()).unwrap_or_default();
    spec["replicas"] = json!(replicas);
    spec["selector"]["matchLabels"][REVISION_LABEL] = json!(hash);
    spec["template"]["metadata"]["labels"][REVISION_LABEL] = json!(hash);
    spec["template"]["spec"]["containers"][0]["image"] = json!(image);
    if let Some(slot) = slot {
        spec["template"]["metadata"]["labels"][SLOT_LABEL] = json!(slot.as_str());
    }
    let mut labels = serde_json::to_value(template.metadata.labels.clone().unwrap_or_default()).unwrap_or_default();
    labels[REVISION_LABEL] = json!(hash);
    labels["enclave.dev/app"] = json!(target.app);
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {
            "name": target.revision_name(image), "namespace": target.namespace, "labels": labels,
            "annotations": {"enclave.dev/image": image},
        },
        "spec": spec,
    })
}

/// The preview Service: the active one's ports and the internal port (for the health gate),
/// selecting revision `hash`.
fn preview_service(active: &Service, target: &Target, hash: &str) -> Value {
    let spec = active.spec.clone().unwrap_or_default();
    let mut selector = spec.selector.clone().unwrap_or_default();
    selector.insert(REVISION_LABEL.to_owned(), hash.to_owned());
    let mut ports = serde_json::to_value(spec.ports.clone().unwrap_or_default()).unwrap_or_default();
    let (name, number) = &target.health_port;
    if let Some(list) = ports.as_array_mut()
        && !list.iter().any(|p| p["name"] == name.as_str())
    {
        list.push(json!({"name": name, "port": number, "targetPort": name, "protocol": "TCP"}));
    }
    // The active Service's labels (the platform's required ones among them), and the driver's.
    let mut labels = serde_json::to_value(active.metadata.labels.clone().unwrap_or_default()).unwrap_or_default();
    labels["app.kubernetes.io/managed-by"] = json!("enclave");
    labels["enclave.dev/app"] = json!(target.app);
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": target.preview(), "namespace": target.namespace, "labels": labels},
        "spec": {"type": "ClusterIP", "selector": selector, "ports": ports},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_answers_become_measurements() {
        let vector = |v: &str| {
            format!(
                r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[1,"{v}"]}}]}}}}"#
            )
        };
        assert_eq!(parse_query_result(&vector("0.071")), Measurement::Value(0.071));
        assert!(matches!(parse_query_result(&vector("NaN")), Measurement::Error(why) if why.contains("no requests")));
        let empty = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert!(matches!(parse_query_result(empty), Measurement::Error(why) if why.contains("no data")));
        let failed = r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        assert!(matches!(parse_query_result(failed), Measurement::Error(why) if why.contains("parse error")));
        assert_eq!(revision_hash("registry/orders:1.0").len(), 10);
        assert_ne!(revision_hash("registry/orders:1.0"), revision_hash("registry/orders:1.1"));
    }
}

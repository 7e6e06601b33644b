//! The GitOps controllers' objects, as their CRDs define them: Argo CD's `Application`
//! (`argoproj.io/v1alpha1`) and Flux's `HelmRepository` (`source.toolkit.fluxcd.io/v1`) and
//! `HelmRelease` (`helm.toolkit.fluxcd.io/v2`). Only the fields enclave sets.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

/// Argo CD's annotation ordering a sync: lower waves are applied, and healthy, first.
pub const SYNC_WAVE: &str = "argocd.argoproj.io/sync-wave";
/// Argo CD's per-object sync options.
pub const SYNC_OPTIONS: &str = "argocd.argoproj.io/sync-options";

/// `argoproj.io/v1alpha1` Application.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    /// `argoproj.io/v1alpha1`.
    pub api_version: &'static str,
    /// `Application`.
    pub kind: &'static str,
    /// Name, namespace (Argo CD's), the sync wave.
    pub metadata: ObjectMeta,
    /// What to sync where.
    pub spec: ApplicationSpec,
}

/// An Application's spec.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSpec {
    /// Argo CD's project.
    pub project: String,
    /// A chart, or a folder of a Git repository.
    pub source: Source,
    /// The cluster and namespace.
    pub destination: Destination,
    /// Automated sync, pruning, self-heal and options.
    pub sync_policy: SyncPolicy,
    /// Fields another controller owns, which a sync must neither report nor revert.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignore_differences: Vec<IgnoreDifference>,
}

/// A chart of a Helm repository, or a folder of a Git repository.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    /// The Helm repository (`https://`, or an OCI registry without scheme) or Git URL.
    #[serde(rename = "repoURL")]
    pub repo_url: String,
    /// The chart's name, for a Helm repository.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chart: Option<String>,
    /// The exact chart version, or the Git revision.
    pub target_revision: String,
    /// The folder, for a Git repository.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Helm's release name and values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub helm: Option<HelmSource>,
    /// Which files of the folder are objects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory: Option<DirectorySource>,
}

/// Helm settings of a source.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmSource {
    /// The release name (the chart's object names derive from it).
    pub release_name: String,
    /// The values, as an object (never YAML text).
    pub values_object: serde_json::Value,
}

/// A folder's files.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectorySource {
    /// Into subfolders.
    pub recurse: bool,
    /// Files taken (a glob).
    pub include: String,
    /// Files left out (a glob; `{a,b}` for several).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclude: Option<String>,
}

/// Where an Application's objects go.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    /// The cluster Argo CD runs in.
    pub server: String,
    /// The release's namespace.
    pub namespace: String,
}

/// How an Application syncs.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncPolicy {
    /// Sync on every change of Git, prune what left it, undo changes made in the cluster.
    pub automated: Automated,
    /// Options (`ServerSideApply=true`, `RespectIgnoreDifferences=true`, ...).
    pub sync_options: Vec<String>,
    /// Retries of a failed sync (an operator's webhook not ready yet).
    pub retry: Retry,
}

/// Automated sync.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Automated {
    /// Delete what left Git.
    pub prune: bool,
    /// Revert changes made in the cluster.
    pub self_heal: bool,
}

/// Retries with backoff.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Retry {
    /// Attempts.
    pub limit: i64,
    /// Backoff.
    pub backoff: Backoff,
}

/// Exponential backoff.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Backoff {
    /// First delay.
    pub duration: String,
    /// Growth.
    pub factor: i64,
    /// Longest delay.
    pub max_duration: String,
}

/// Fields of one kind Argo CD ignores.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IgnoreDifference {
    /// API group (empty for the core group).
    pub group: String,
    /// Kind.
    pub kind: String,
    /// Only the object of this name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Only in this namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// jq paths of the ignored fields.
    pub jq_path_expressions: Vec<String>,
}

/// `source.toolkit.fluxcd.io/v1` HelmRepository.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmRepository {
    /// `source.toolkit.fluxcd.io/v1`.
    pub api_version: &'static str,
    /// `HelmRepository`.
    pub kind: &'static str,
    /// Name and namespace (Flux's).
    pub metadata: ObjectMeta,
    /// The repository.
    pub spec: HelmRepositorySpec,
}

/// A Helm repository.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmRepositorySpec {
    /// `https://` or `oci://`.
    pub url: String,
    /// How often the index is read.
    pub interval: String,
    /// `oci` for an OCI registry.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
}

/// `helm.toolkit.fluxcd.io/v2` HelmRelease.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmRelease {
    /// `helm.toolkit.fluxcd.io/v2`.
    pub api_version: &'static str,
    /// `HelmRelease`.
    pub kind: &'static str,
    /// Name and namespace (Flux's).
    pub metadata: ObjectMeta,
    /// The release.
    pub spec: HelmReleaseSpec,
}

/// A release.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmReleaseSpec {
    /// How often it is reconciled.
    pub interval: String,
    /// Helm's release name.
    pub release_name: String,
    /// The release's namespace.
    pub target_namespace: String,
    /// The chart.
    pub chart: ChartTemplate,
    /// Releases installed (and ready) before this one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<DependsOn>,
    /// CRDs created and updated with the chart.
    pub install: Install,
    /// CRDs updated with the chart.
    pub upgrade: Upgrade,
    /// The values.
    pub values: serde_json::Value,
}

/// `spec.chart`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChartTemplate {
    /// The chart's spec.
    pub spec: ChartSpec,
}

/// A chart of a HelmRepository.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChartSpec {
    /// Its name.
    pub chart: String,
    /// The exact version.
    pub version: String,
    /// The HelmRepository.
    pub source_ref: SourceRef,
}

/// A reference to a HelmRepository.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceRef {
    /// `HelmRepository`.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
}

/// A release this one waits for.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DependsOn {
    /// Its name (same namespace).
    pub name: String,
}

/// Install settings.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Install {
    /// `CreateReplace`: the chart's CRDs are created and kept current.
    pub crds: &'static str,
    /// Retries of a failed install.
    pub remediation: Remediation,
}

/// Retries of a failed install or upgrade.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Remediation {
    /// How many.
    pub retries: i64,
}

/// Upgrade settings.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Upgrade {
    /// `CreateReplace`.
    pub crds: &'static str,
    /// Retries of a failed upgrade.
    pub remediation: Remediation,
}

/// Annotations of a sync wave.
pub fn wave(wave: i32) -> BTreeMap<String, String> {
    BTreeMap::from([(SYNC_WAVE.to_owned(), wave.to_string())])
}

//! External Secrets Operator objects for a cluster, as typed serde structs of its
//! `external-secrets.io/v1` CRDs, and the environment the app's container reads them from.
//!
//! - IRSA: one `ClusterSecretStore` per cluster, usable only from the namespaces of apps with
//!   secrets, authenticating as the `secrets-reader` service account *of the namespace of the
//!   ExternalSecret* (the store names no namespace: ESO's referent authentication), which is
//!   annotated with that app's role. So each namespace reads only its app's secrets.
//! - Pod Identity: ESO cannot use a service account's Pod Identity (its docs: `serviceAccountRef`
//!   cannot be used with EKS Pod Identity); the operator's own identity (its association) may
//!   only assume the apps' roles, and each app gets a `ClusterSecretStore` that assumes its
//!   role, usable only from its namespace.
//!
//! Every secret becomes one `ExternalSecret` (`creationPolicy: Owner`) writing the Kubernetes
//! Secret `<app>-<secret>` with the keys the spec names; the app's pod mounts it read-only
//! ([`volumes`]).

use std::collections::BTreeMap;

use enclave_core::spec::WorkloadIdentity;
use k8s_openapi::api::core::v1::{SecretVolumeSource, ServiceAccount, Volume, VolumeMount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use crate::model::{AppSecrets, READER_SERVICE_ACCOUNT, SecretsModel};

/// The API version of every ESO object rendered (the one ESO serves and stores).
pub const API_VERSION: &str = "external-secrets.io/v1";
/// The annotation IRSA reads a service account's role from.
pub const ROLE_ANNOTATION: &str = "eks.amazonaws.com/role-arn";
/// The IRSA store's name.
pub const STORE: &str = "aws-secrets-manager";

/// A cluster-wide store of secrets (`ClusterSecretStore`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSecretStore {
    /// `external-secrets.io/v1`.
    pub api_version: String,
    /// `ClusterSecretStore`.
    pub kind: String,
    /// Name and labels.
    pub metadata: ObjectMeta,
    /// Provider and conditions.
    pub spec: StoreSpec,
}

/// A store's spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreSpec {
    /// Where secrets are read.
    pub provider: Provider,
    /// The namespaces allowed to use the store.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<StoreCondition>,
}

/// Which namespaces may use a store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreCondition {
    /// Namespace names.
    pub namespaces: Vec<String>,
}

/// A store's provider: AWS only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provider {
    /// AWS.
    pub aws: AwsProvider,
}

/// AWS Secrets Manager in one region.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AwsProvider {
    /// `SecretsManager`.
    pub service: String,
    /// The region.
    pub region: String,
    /// A role assumed before reading (Pod Identity: the app's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// How the operator authenticates; absent: its own identity (Pod Identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AwsAuth>,
}

/// IRSA authentication.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AwsAuth {
    /// A service account's token, exchanged for its annotated role.
    pub jwt: JwtAuth,
}

/// The service account whose token is exchanged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JwtAuth {
    /// By name only: the namespace is the ExternalSecret's.
    pub service_account_ref: ServiceAccountRef,
}

/// A service account by name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountRef {
    /// Name.
    pub name: String,
}

/// One secret synced into a namespace (`ExternalSecret`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecret {
    /// `external-secrets.io/v1`.
    pub api_version: String,
    /// `ExternalSecret`.
    pub kind: String,
    /// Name, namespace and labels.
    pub metadata: ObjectMeta,
    /// What is read and written.
    pub spec: ExternalSecretSpec,
}

/// An ExternalSecret's spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretSpec {
    /// How often the Kubernetes Secret is refreshed (`15m0s`).
    pub refresh_interval: String,
    /// The store.
    pub secret_store_ref: StoreRef,
    /// The Kubernetes Secret written.
    pub target: Target,
    /// Its keys.
    pub data: Vec<SecretData>,
}

/// A store by kind and name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreRef {
    /// Name.
    pub name: String,
    /// `ClusterSecretStore`.
    pub kind: String,
}

/// The Kubernetes Secret an ExternalSecret writes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// Name.
    pub name: String,
    /// `Owner`: the Secret is the ExternalSecret's, and goes with it.
    pub creation_policy: String,
}

/// One key of the Kubernetes Secret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretData {
    /// The key.
    pub secret_key: String,
    /// Where in Secrets Manager.
    pub remote_ref: RemoteRef,
}

/// A secret (and property) in Secrets Manager.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteRef {
    /// The secret's name.
    pub key: String,
    /// A property of a JSON value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
}

/// Everything the secrets domain renders into one cluster's bundle.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterObjects {
    /// Stores.
    pub stores: Vec<ClusterSecretStore>,
    /// The `secrets-reader` service accounts (IRSA).
    pub service_accounts: Vec<ServiceAccount>,
    /// One per secret.
    pub external_secrets: Vec<ExternalSecret>,
}

fn labels(stack: &str, app: Option<&str>) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        ("app.kubernetes.io/part-of".to_owned(), stack.to_owned()),
        ("app.kubernetes.io/managed-by".to_owned(), "enclave".to_owned()),
        ("app.kubernetes.io/component".to_owned(), "secrets".to_owned()),
    ]);
    if let Some(app) = app {
        labels.insert("app.kubernetes.io/name".to_owned(), app.to_owned());
    }
    labels
}

/// ESO's duration format (Go's `time.Duration`): `1h0m0s`, `15m0s`.
pub fn go_duration(seconds: u64) -> String {
    let (hours, rest) = (seconds / 3600, seconds % 3600);
    let (minutes, seconds) = (rest / 60, rest % 60);
    if hours > 0 {
        format!("{hours}h{minutes}m{seconds}s")
    } else if minutes > 0 {
        format!("{minutes}m{seconds}s")
    } else {
        format!("{seconds}s")
    }
}

/// The store an app's ExternalSecrets use.
pub fn store_name(app: &AppSecrets) -> String {
    match app.identity {
        WorkloadIdentity::Irsa => STORE.to_owned(),
        WorkloadIdentity::PodIdentity => format!("{STORE}-{}", app.app),
    }
}

fn store(
    model: &SecretsModel,
    name: String,
    role: Option<String>,
    auth: Option<AwsAuth>,
    namespaces: Vec<String>,
) -> ClusterSecretStore {
    ClusterSecretStore {
        api_version: API_VERSION.to_owned(),
        kind: "ClusterSecretStore".to_owned(),
        metadata: ObjectMeta { name: Some(name), labels: Some(labels(&model.stack, None)), ..ObjectMeta::default() },
        spec: StoreSpec {
            provider: Provider {
                aws: AwsProvider { service: "SecretsManager".to_owned(), region: model.region.clone(), role, auth },
            },
            conditions: vec![StoreCondition { namespaces }],
        },
    }
}

/// The ESO objects of `cluster`.
pub fn render_cluster(model: &SecretsModel, cluster: &str) -> ClusterObjects {
    let apps: Vec<&AppSecrets> = model.apps.iter().filter(|app| app.cluster == cluster).collect();
    let mut objects = ClusterObjects::default();
    let Some(first) = apps.first() else { return objects };
    if first.identity == WorkloadIdentity::Irsa {
        let mut namespaces: Vec<String> = apps.iter().map(|app| app.namespace.clone()).collect();
        namespaces.sort();
        namespaces.dedup();
        let auth = AwsAuth {
            jwt: JwtAuth { service_account_ref: ServiceAccountRef { name: READER_SERVICE_ACCOUNT.to_owned() } },
        };
        objects.stores.push(store(model, STORE.to_owned(), None, Some(auth), namespaces));
    }
    for app in apps {
        match app.identity {
            WorkloadIdentity::Irsa => objects.service_accounts.push(ServiceAccount {
                metadata: ObjectMeta {
                    name: Some(READER_SERVICE_ACCOUNT.to_owned()),
                    namespace: Some(app.namespace.clone()),
                    labels: Some(labels(&model.stack, Some(&app.app))),
                    annotations: Some(BTreeMap::from([(ROLE_ANNOTATION.to_owned(), app.role_arn(&model.partition))])),
                    ..ObjectMeta::default()
                },
                automount_service_account_token: Some(false),
                ..ServiceAccount::default()
            }),
            WorkloadIdentity::PodIdentity => objects.stores.push(store(
                model,
                store_name(app),
                Some(app.role_arn(&model.partition)),
                None,
                vec![app.namespace.clone()],
            )),
        }
        for secret in &app.secrets {
            let name = app.kubernetes_name(secret);
            objects.external_secrets.push(ExternalSecret {
                api_version: API_VERSION.to_owned(),
                kind: "ExternalSecret".to_owned(),
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(app.namespace.clone()),
                    labels: Some(labels(&model.stack, Some(&app.app))),
                    ..ObjectMeta::default()
                },
                spec: ExternalSecretSpec {
                    refresh_interval: go_duration(secret.refresh_seconds),
                    secret_store_ref: StoreRef { name: store_name(app), kind: "ClusterSecretStore".to_owned() },
                    target: Target { name, creation_policy: "Owner".to_owned() },
                    data: secret
                        .keys
                        .iter()
                        .map(|key| SecretData {
                            secret_key: key.key.clone(),
                            remote_ref: RemoteRef { key: secret.full_name.clone(), property: key.property.clone() },
                        })
                        .collect(),
                },
            });
        }
    }
    objects
}

/// Where an app's container finds a secret's keys, one file each: `<MOUNT_ROOT>/<secret>/<key>`.
pub const MOUNT_ROOT: &str = "/var/run/secrets/enclave";

/// The pod's volumes and the container's read-only mounts: each of the app's Kubernetes
/// Secrets (written by its ExternalSecret) under [`MOUNT_ROOT`], readable by the pod's group
/// only (`0440`; the pod's `fsGroup` owns them). Never environment variables, which leak into
/// logs, crash reports and child processes.
pub fn volumes(app: &AppSecrets) -> Vec<(Volume, VolumeMount)> {
    app.secrets
        .iter()
        .map(|secret| {
            let name = format!("secret-{}", secret.name);
            (
                Volume {
                    name: name.clone(),
                    secret: Some(SecretVolumeSource {
                        secret_name: Some(app.kubernetes_name(secret)),
                        default_mode: Some(0o440),
                        optional: Some(false),
                        ..SecretVolumeSource::default()
                    }),
                    ..Volume::default()
                },
                VolumeMount {
                    name,
                    mount_path: format!("{MOUNT_ROOT}/{}", secret.name),
                    read_only: Some(true),
                    ..VolumeMount::default()
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_go_writes_them() {
        assert_eq!(go_duration(3600), "1h0m0s");
        assert_eq!(go_duration(900), "15m0s");
        assert_eq!(go_duration(5400), "1h30m0s");
        assert_eq!(go_duration(45), "45s");
    }

    #[test]
    fn irsa_uses_one_store_with_referent_auth_and_pod_identity_one_store_per_app() {
        let spec = crate::testing::spec();
        let model = crate::model::build(&spec);
        let prod = render_cluster(&model, "platform-prod");
        assert_eq!(prod.stores.len(), 1);
        let auth = prod.stores[0].spec.provider.aws.auth.as_ref().expect("IRSA authenticates with a token");
        assert_eq!(auth.jwt.service_account_ref.name, READER_SERVICE_ACCOUNT);
        assert_eq!(
            prod.service_accounts.len(),
            2,
            "orders and the monitoring stack (its secrets in `monitoring`): billing-worker keeps no secret"
        );
        assert_eq!(prod.external_secrets.len(), 2 + 3 + 1, "orders' two, the three receivers', Grafana's");
        let dev = render_cluster(&model, "platform-dev");
        assert_eq!(dev.stores.len(), 2, "one per owner with Pod Identity: reports, the monitoring stack");
        for (namespace, role) in
            [("reports", "/platform-dev-reports-secrets"), ("monitoring", "/platform-dev-monitoring-secrets")]
        {
            let store = dev
                .stores
                .iter()
                .find(|store| store.spec.conditions[0].namespaces == [namespace])
                .unwrap_or_else(|| panic!("a store for {namespace}"));
            assert!(store.spec.provider.aws.auth.is_none());
            assert!(store.spec.provider.aws.role.as_deref().is_some_and(|r| r.ends_with(role)), "{namespace}");
        }
        assert!(dev.service_accounts.is_empty());
    }
}

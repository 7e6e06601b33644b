//! The secrets domain's view of the spec: which app keeps which secret where, the role that
//! reads them and how the cluster's pods assume it.

use enclave_core::Spec;
use enclave_core::names::{ROLE_PATH, service_account_role_name};
use enclave_core::region::partition;
use enclave_core::spec::{SecretKey, SecretSource, WorkloadIdentity};

/// The namespace the External Secrets Operator runs in (its chart's default).
pub const CONTROLLER_NAMESPACE: &str = "external-secrets";
/// The operator's own service account (its chart's default).
pub const CONTROLLER_SERVICE_ACCOUNT: &str = "external-secrets";
/// The service account of each app namespace whose token the operator exchanges for the app's
/// role (IRSA): it runs nothing, and its token is never mounted.
pub const READER_SERVICE_ACCOUNT: &str = "secrets-reader";
/// The audience of IRSA tokens.
pub const STS_AUDIENCE: &str = "sts.amazonaws.com";
/// Pod Identity's service principal.
pub const POD_IDENTITY_SERVICE: &str = "pods.eks.amazonaws.com";

/// Every secret of the stack, per owner (apps, and each cluster's monitoring stack).
#[derive(Clone, Debug, PartialEq)]
pub struct SecretsModel {
    /// Stack name (the `enclave:stack` tag, the first segment of every secret name).
    pub stack: String,
    /// The region every secret lives in.
    pub region: String,
    /// `aws`, `aws-cn` or `aws-us-gov`.
    pub partition: String,
    /// Apps with secrets, in spec order.
    pub apps: Vec<AppSecrets>,
    /// Clusters whose apps have secrets.
    pub clusters: Vec<ClusterSecrets>,
}

/// A cluster some app with secrets runs on.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterSecrets {
    /// Cluster name.
    pub name: String,
    /// The account's name in the spec.
    pub account: String,
    /// The account's id.
    pub account_id: String,
    /// How its pods assume roles.
    pub identity: WorkloadIdentity,
}

impl ClusterSecrets {
    /// With Pod Identity: the operator's role, which may only assume the apps' roles.
    pub fn controller_role(&self) -> Option<String> {
        match self.identity {
            WorkloadIdentity::Irsa => None,
            WorkloadIdentity::PodIdentity => Some(service_account_role_name(&self.name, "external-secrets")),
        }
    }
}

/// One app's secrets and the role that reads them.
#[derive(Clone, Debug, PartialEq)]
pub struct AppSecrets {
    /// The owner's name: the app's, or `monitoring-<cluster>` for the monitoring stack's
    /// secrets (the third segment of every secret name).
    pub app: String,
    /// Its Kubernetes Secrets are `<prefix>-<secret>`: the app's name, or `monitoring`.
    pub kubernetes_prefix: String,
    /// Its namespace.
    pub namespace: String,
    /// Its cluster.
    pub cluster: String,
    /// The cluster's account (name in the spec).
    pub account: String,
    /// The account's id.
    pub account_id: String,
    /// The account's environment label (the second segment of every secret name).
    pub environment: String,
    /// How the cluster's pods assume roles.
    pub identity: WorkloadIdentity,
    /// The role reading exactly these secrets (under [`ROLE_PATH`]).
    pub role_name: String,
    /// Its secrets.
    pub secrets: Vec<SecretEntry>,
}

/// One secret.
#[derive(Clone, Debug, PartialEq)]
pub struct SecretEntry {
    /// The name in the spec.
    pub name: String,
    /// `<stack>/<environment>/<app>/<name>`: its name in Secrets Manager.
    pub full_name: String,
    /// Where the value comes from.
    pub source: SecretSource,
    /// The keys the app sees.
    pub keys: Vec<SecretKey>,
    /// Rotation: days, and the function when one is named.
    pub rotation: Option<(u16, Option<String>)>,
    /// How often the operator refreshes the Kubernetes Secret, in seconds.
    pub refresh_seconds: u64,
    /// Days a deleted secret can be restored.
    pub recovery_days: u8,
}

impl SecretEntry {
    /// `generated`, `env` or `file`: carried as a tag, shown in plans.
    pub fn source_kind(&self) -> &'static str {
        match self.source {
            SecretSource::Generate(_) => "generated",
            SecretSource::Env(_) => "env",
            SecretSource::File(_) => "file",
        }
    }
}

impl AppSecrets {
    /// The ARN of the app's role.
    pub fn role_arn(&self, partition: &str) -> String {
        role_arn(partition, &self.account_id, &self.role_name)
    }

    /// The Kubernetes Secret (and ExternalSecret) of `secret`: `<app>-<secret>` (the monitoring stack's:
    /// `monitoring-<secret>`).
    pub fn kubernetes_name(&self, secret: &SecretEntry) -> String {
        format!("{}-{}", self.kubernetes_prefix, secret.name)
    }
}

/// The ARN of role `name` of account `account_id`, under [`ROLE_PATH`].
pub fn role_arn(partition: &str, account_id: &str, name: &str) -> String {
    format!("arn:{partition}:iam::{account_id}:role{ROLE_PATH}{name}")
}

/// The model of every app with secrets. Apps whose cluster or account is missing are skipped
/// (validation reports them).
pub fn build(spec: &Spec) -> SecretsModel {
    let stack = spec.stack().to_string();
    let region = spec.organization.region.to_string();
    let mut apps = Vec::new();
    let mut clusters: Vec<ClusterSecrets> = Vec::new();
    for owner in spec.secret_owners() {
        let cluster = owner.cluster;
        let Some(account) = spec.account(cluster.account.as_str()) else { continue };
        let entries = owner
            .secrets
            .iter()
            .map(|secret| SecretEntry {
                name: secret.name.to_string(),
                full_name: format!("{stack}/{}/{}/{}", account.environment, owner.name, secret.name),
                source: secret.source.clone(),
                keys: secret.keys_or_default(),
                rotation: secret.rotation.as_ref().map(|r| (r.days, r.lambda.clone())),
                refresh_seconds: secret.refresh.seconds(),
                recovery_days: secret.recovery_days,
            })
            .collect();
        if !clusters.iter().any(|c| c.name == cluster.name.as_str()) {
            clusters.push(ClusterSecrets {
                name: cluster.name.to_string(),
                account: account.name.to_string(),
                account_id: account.id.to_string(),
                identity: cluster.workload_identity,
            });
        }
        // An app's role is `<cluster>-<app>-secrets`; the monitoring stack's `<cluster>-monitoring-secrets`.
        let purpose = format!("{}-secrets", owner.kubernetes_prefix);
        apps.push(AppSecrets {
            app: owner.name.clone(),
            kubernetes_prefix: owner.kubernetes_prefix.clone(),
            namespace: owner.namespace.clone(),
            cluster: cluster.name.to_string(),
            account: account.name.to_string(),
            account_id: account.id.to_string(),
            environment: account.environment.to_string(),
            identity: cluster.workload_identity,
            role_name: service_account_role_name(cluster.name.as_str(), &purpose),
            secrets: entries,
        });
    }
    SecretsModel { partition: partition(&region).to_owned(), stack, region, apps, clusters }
}

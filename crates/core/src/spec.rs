//! The typed platform spec.
//!
//! Every type here is a plain struct with public fields, so a Rust program can build a spec in
//! code as easily as from YAML. Field names in YAML are the field names here (`snake_case`);
//! unknown fields are rejected. Defaults are documented on each field and appear in the JSON
//! Schema that `enclave schema` prints.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use ipnet::Ipv4Net;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use crate::quantity::Quantity;

mod addons;
pub use addons::{
    Addon, AddonsSpec, AlertRoute, AlertSeverity, AlertingSpec, ElasticsearchSizing, Email, GitOps, GitOpsController,
    PagerDuty, PrometheusSizing, Receiver, Slack, TracingSpec,
};

/// The whole platform: one organization, its member accounts, and what runs in them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The AWS organization and the stack every resource belongs to.
    pub organization: Organization,
    /// Network defaults for every account; an account's own `network` overrides them using
    /// the layer merge rules.
    #[serde(default)]
    pub network: NetworkSpec,
    /// Member accounts, each with its own private VPC.
    pub accounts: Vec<Account>,
    /// Operator access: Session Manager and bastion hosts.
    #[serde(default)]
    pub access: AccessSpec,
    /// Audit logging.
    #[serde(default)]
    pub audit: AuditSpec,
    /// EKS clusters.
    #[serde(default)]
    pub clusters: Vec<ClusterSpec>,
    /// Applications deployed to the clusters.
    #[serde(default)]
    pub apps: Vec<AppSpec>,
    /// Where app images are kept: one ECR repository per app, in one account of the stack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<RegistrySpec>,
    /// The delivery pipeline `enclave render pipeline` writes (GitHub Actions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<PipelineSpec>,
    /// Where the alert table goes: Alertmanager's receivers and routes in every cluster. Absent:
    /// every alert goes to one receiver that notifies nobody (`ADD003` reports it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerting: Option<AlertingSpec>,
}

/// The delivery pipeline (filled by `enclave-deploy`): one GitHub Actions workflow per app.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    /// The GitHub repository the workflows run in (`owner/name`).
    pub repository: String,
    /// The branch whose pushes deliver.
    #[serde(default = "default_branch")]
    pub branch: String,
    /// The IAM role (name) the workflows assume with GitHub's OIDC token, in the registry's
    /// account (to push) and in each cluster's (to roll out): no stored keys.
    #[serde(default = "default_delivery_role")]
    pub role: RoleName,
    /// The cluster new images roll out to first, before the approval for production.
    pub staging_cluster: Name,
    /// The build-and-test command.
    pub test: String,
    /// The integration tests, run against staging after its rollout.
    pub integration_test: String,
    /// Where each app's image is built: `<context>/<app>`, holding its `Dockerfile`.
    #[serde(default = "default_context")]
    pub context: String,
    /// The config folder the workflows hand to `enclave`.
    #[serde(default = "default_config_dir")]
    pub config: String,
    /// How the runners get `enclave`.
    #[serde(default = "default_install_enclave")]
    pub install_enclave: String,
    /// Runner labels of the jobs that reach the clusters: their API endpoints are private, so
    /// these run inside the VPC (self-hosted).
    #[serde(default = "default_deploy_runner")]
    pub deploy_runner: Vec<String>,
}

fn default_branch() -> String {
    "main".into()
}

fn default_delivery_role() -> RoleName {
    RoleName("enclave-delivery".into())
}

fn default_context() -> String {
    "apps".into()
}

fn default_config_dir() -> String {
    "configs".into()
}

fn default_install_enclave() -> String {
    "cargo install --locked --git https://example.invalid/enclave --tag v0.1.0 enclave".into()
}

fn default_deploy_runner() -> Vec<String> {
    vec!["self-hosted".into(), "linux".into()]
}

/// The stack's image registry (filled by `enclave-deploy`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistrySpec {
    /// The account that builds images and holds the repositories; the other accounts' nodes
    /// pull from it.
    pub account: Name,
    /// Scan every image when it is pushed.
    #[serde(default = "default_true")]
    pub scan_on_push: bool,
    /// Refuse to move a tag to another image once pushed.
    #[serde(default = "default_true")]
    pub immutable_tags: bool,
    /// How many tagged images each repository keeps (older ones expire).
    #[serde(default = "default_keep_tagged")]
    pub keep_tagged: u16,
    /// Days after which an untagged image expires.
    #[serde(default = "default_untagged_days")]
    pub untagged_expire_days: u16,
}

fn default_keep_tagged() -> u16 {
    30
}

fn default_untagged_days() -> u16 {
    7
}

impl Spec {
    /// The account called `name`.
    pub fn account(&self, name: &str) -> Option<&Account> {
        self.accounts.iter().find(|account| account.name.as_str() == name)
    }

    /// The stack name: ownership tags carry it.
    pub fn stack(&self) -> &Name {
        self.organization.stack.as_ref().unwrap_or(&self.organization.name)
    }

    /// The registry's host (`<account id>.dkr.ecr.<region>.amazonaws.com`, `.com.cn` in China),
    /// when the spec has a registry in one of its accounts.
    pub fn registry_host(&self) -> Option<String> {
        let account = self.registry.as_ref().and_then(|registry| self.account(registry.account.as_str()))?;
        let region = self.organization.region.as_str();
        Some(format!("{}.dkr.ecr.{region}.{}", account.id, crate::region::dns_suffix(region)))
    }

    /// Everything that keeps secrets, in spec order: each app with secrets, then per cluster
    /// with kube-prometheus-stack (an add-on) its monitoring stack (the alert receivers' secrets,
    /// read in the cluster's own account, and Grafana's generated admin password). Owners whose
    /// cluster is not in the spec are left out (validation reports them).
    pub fn secret_owners(&self) -> Vec<SecretOwner<'_>> {
        let mut owners: Vec<SecretOwner<'_>> = self
            .apps
            .iter()
            .enumerate()
            .filter(|(_, app)| !app.secrets.is_empty())
            .filter_map(|(index, app)| {
                Some(SecretOwner {
                    name: app.name.to_string(),
                    kubernetes_prefix: app.name.to_string(),
                    namespace: app.namespace().to_string(),
                    cluster: self.clusters.iter().find(|c| c.name == app.cluster)?,
                    secrets: app.secrets.clone(),
                    path: crate::path!("apps", index, "secrets"),
                    app: Some(app),
                })
            })
            .collect();
        let monitored = self.clusters.iter().filter(|c| !c.addons.disabled.contains(&Addon::KubePrometheusStack));
        for cluster in monitored {
            let mut secrets = self.alerting.as_ref().map(|alerting| alerting.secrets.clone()).unwrap_or_default();
            secrets.push(grafana_admin_password());
            owners.push(SecretOwner {
                name: format!("{}-{}", crate::names::MONITORING_SECRETS_OWNER, cluster.name),
                kubernetes_prefix: crate::names::MONITORING_SECRETS_OWNER.to_owned(),
                namespace: crate::names::MONITORING_NAMESPACE.to_owned(),
                cluster,
                secrets,
                // The receivers' secrets are the spec's; Grafana's, after them, is generated.
                path: crate::path!("alerting", "secrets"),
                app: None,
            });
        }
        owners
    }
}

/// Grafana's admin password: generated once, kept in Secrets Manager, never in Git (the chart
/// would otherwise make a new one at every render).
fn grafana_admin_password() -> SecretSpec {
    SecretSpec {
        name: Name::from_str(crate::names::GRAFANA_ADMIN_SECRET).unwrap_or_else(|_| unreachable!("a valid name")),
        source: SecretSource::Generate(Generate { length: 32, alphabet: Alphabet::default() }),
        keys: Vec::new(),
        rotation: None,
        refresh: default_refresh(),
        recovery_days: default_recovery_days(),
        literal: None,
    }
}

/// Something that keeps secrets: an app, or a cluster's monitoring stack (the alert receivers'
/// credentials, Grafana's admin password).
#[derive(Clone, Debug)]
pub struct SecretOwner<'a> {
    /// Its name in secret names (`<stack>/<environment>/<name>/<secret>`), addresses and roles:
    /// the app's, or `monitoring-<cluster>`.
    pub name: String,
    /// Its Kubernetes Secrets are `<prefix>-<secret>`: the app's name, or `monitoring`.
    pub kubernetes_prefix: String,
    /// The namespace its Kubernetes Secrets are synced into.
    pub namespace: String,
    /// The cluster it runs in.
    pub cluster: &'a ClusterSpec,
    /// Its secrets.
    pub secrets: Vec<SecretSpec>,
    /// Where the secrets are in the spec.
    pub path: crate::FieldPath,
    /// The app, when it is one.
    pub app: Option<&'a AppSpec>,
}

/// The AWS organization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Organization {
    /// Organization name.
    pub name: Name,
    /// The region every account's network lives in.
    pub region: Region,
    /// Stack name carried by the `enclave:stack` tag; defaults to the organization name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<Name>,
    /// Role assumed in each member account.
    #[serde(default = "default_assume_role")]
    pub assume_role: RoleName,
}

fn default_assume_role() -> RoleName {
    RoleName("OrganizationAccountAccessRole".into())
}

/// A member account.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// Short name, used in addresses (`dev/net/vpc/main`).
    pub name: Name,
    /// The 12-digit AWS account id.
    pub id: AccountId,
    /// Environment label (`dev`, `test`, `prod`, ...), carried as a tag.
    pub environment: Name,
    /// The VPC's IPv4 CIDR block, between /16 and /28.
    pub vpc_cidr: Cidr,
    /// This account's network; after loading, the defaults merged with the account's own
    /// overrides.
    #[serde(default)]
    pub network: NetworkSpec,
}

/// Network layout of one VPC.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// Number of availability zones used.
    #[serde(default = "default_azs")]
    pub azs: u8,
    /// Availability-zone slots reserved per tier (a power of two). Fixed for the life of a VPC:
    /// it is what lets `azs` grow without renumbering any subnet.
    #[serde(default = "default_az_reserve")]
    pub az_reserve: u8,
    /// Workload subnet tiers. None of them ever routes to an internet gateway.
    #[serde(default)]
    pub tiers: Vec<Tier>,
    /// How workloads reach the internet, if at all.
    #[serde(default)]
    pub nat: NatMode,
    /// Prefix length of the per-AZ egress subnets that hold only NAT gateways. They are carved
    /// from the top of the VPC range.
    #[serde(default = "default_egress_size")]
    pub egress_size: u8,
    /// VPC endpoints.
    #[serde(default)]
    pub endpoints: Endpoints,
    /// VPC flow logs.
    #[serde(default)]
    pub flow_logs: FlowLogs,
}

impl Default for NetworkSpec {
    fn default() -> Self {
        NetworkSpec {
            azs: default_azs(),
            az_reserve: default_az_reserve(),
            tiers: Vec::new(),
            nat: NatMode::default(),
            egress_size: default_egress_size(),
            endpoints: Endpoints::default(),
            flow_logs: FlowLogs::default(),
        }
    }
}

fn default_azs() -> u8 {
    3
}

fn default_az_reserve() -> u8 {
    4
}

fn default_egress_size() -> u8 {
    28
}

/// A subnet tier: one subnet of `size` per availability zone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// Tier name (`app`, `data`); subnets are addressed `<tier>-<az letter>`.
    pub name: Name,
    /// Prefix length of each subnet, e.g. 20 for a /20.
    pub size: u8,
    /// Position of the tier's block in the VPC, counted in blocks of the tier's own size
    /// (`az_reserve` subnets of `size`). Explicit so that adding, removing or reordering tiers
    /// never moves another tier.
    pub slot: u16,
}

/// NAT egress mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NatMode {
    /// One NAT gateway per availability zone: no cross-AZ dependency.
    #[default]
    PerAz,
    /// One NAT gateway for the VPC: cheaper, one AZ's failure cuts egress.
    Single,
    /// No internet egress at all; AWS services through endpoints only.
    None,
}

impl fmt::Display for NatMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NatMode::PerAz => "per-az",
            NatMode::Single => "single",
            NatMode::None => "none",
        })
    }
}

/// VPC endpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Endpoints {
    /// Interface endpoint services by short name (`ssm`, `ecr.api`), created in every AZ with
    /// private DNS. Defaults to the three Session Manager needs.
    #[serde(default = "default_interface_endpoints")]
    pub interface: Vec<ServiceName>,
    /// Gateway endpoints (`s3`, `dynamodb`), attached to every private route table.
    #[serde(default = "default_gateway_endpoints")]
    pub gateway: Vec<GatewayService>,
    /// The tier whose subnets hold the interface endpoints' network interfaces; defaults to the
    /// first tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_tier: Option<Name>,
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints { interface: default_interface_endpoints(), gateway: default_gateway_endpoints(), subnet_tier: None }
    }
}

/// The interface endpoints Session Manager cannot work without in a VPC with no internet path.
pub const SESSION_MANAGER_ENDPOINTS: [&str; 3] = ["ssm", "ssmmessages", "ec2messages"];

fn default_interface_endpoints() -> Vec<ServiceName> {
    SESSION_MANAGER_ENDPOINTS.iter().map(|name| ServiceName((*name).to_owned())).collect()
}

fn default_gateway_endpoints() -> Vec<GatewayService> {
    vec![GatewayService::S3]
}

/// A gateway endpoint service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GatewayService {
    /// Amazon S3.
    S3,
    /// Amazon DynamoDB.
    Dynamodb,
}

impl fmt::Display for GatewayService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GatewayService::S3 => "s3",
            GatewayService::Dynamodb => "dynamodb",
        })
    }
}

/// VPC flow logs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowLogs {
    /// Whether flow logs are on.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Where records go.
    #[serde(default)]
    pub destination: FlowLogDestination,
    /// Which traffic is recorded.
    #[serde(default)]
    pub traffic: TrafficType,
    /// Retention of the log group, in days (CloudWatch Logs destination).
    #[serde(default = "default_retention")]
    pub retention_days: u16,
}

impl Default for FlowLogs {
    fn default() -> Self {
        FlowLogs {
            enabled: true,
            destination: FlowLogDestination::default(),
            traffic: TrafficType::default(),
            retention_days: default_retention(),
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_retention() -> u16 {
    90
}

/// Where flow log records go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FlowLogDestination {
    /// A CloudWatch Logs group per VPC.
    #[default]
    CloudWatchLogs,
    /// An S3 bucket. Accepted by the schema, rejected by validation until enclave builds the
    /// bucket, its policy and the delivery.
    S3,
}

/// Which traffic flow logs record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum TrafficType {
    /// Accepted and rejected traffic.
    #[default]
    All,
    /// Accepted traffic only.
    Accept,
    /// Rejected traffic only.
    Reject,
}

impl fmt::Display for TrafficType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrafficType::All => "ALL",
            TrafficType::Accept => "ACCEPT",
            TrafficType::Reject => "REJECT",
        })
    }
}

/// Operator access (filled by `enclave-access`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessSpec {
    /// Session Manager baseline.
    #[serde(default)]
    pub session_manager: SessionManager,
    /// Bastion hosts, reachable only through Session Manager.
    #[serde(default)]
    pub bastion: Bastion,
}

/// Session Manager settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionManager {
    /// Whether the baseline is applied.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Idle session timeout in minutes (1 to 60).
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_minutes: u8,
    /// Days session logs are kept, in CloudWatch Logs and in the log bucket (a value CloudWatch
    /// Logs accepts: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, ...).
    #[serde(default = "default_session_log_retention")]
    pub log_retention_days: u16,
    /// Start sessions as this operating-system user instead of `ssm-user` (`runAsEnabled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_user: Option<Name>,
}

fn default_session_log_retention() -> u16 {
    365
}

impl Default for SessionManager {
    fn default() -> Self {
        SessionManager {
            enabled: true,
            idle_timeout_minutes: default_idle_timeout(),
            log_retention_days: default_session_log_retention(),
            run_as_user: None,
        }
    }
}

fn default_idle_timeout() -> u8 {
    20
}

/// Bastion host settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Bastion {
    /// Whether each account gets a bastion.
    #[serde(default)]
    pub enabled: bool,
    /// EC2 instance type.
    #[serde(default = "default_instance_type")]
    pub instance_type: String,
    /// Tier whose first subnet holds the bastion; defaults to the first tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Name>,
    /// Pin the image (`ami-...`). Without it, the latest Amazon Linux 2023 image is read from
    /// its SSM public parameter when the bastion is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ami: Option<String>,
}

impl Default for Bastion {
    fn default() -> Self {
        Bastion { enabled: false, instance_type: default_instance_type(), tier: None, ami: None }
    }
}

fn default_instance_type() -> String {
    "t3.micro".into()
}

/// Audit logging (filled by `enclave-access`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditSpec {
    /// CloudTrail.
    #[serde(default)]
    pub cloudtrail: CloudTrail,
}

/// CloudTrail settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CloudTrail {
    /// Whether a trail records every account.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Record every region, not only the organization's.
    #[serde(default = "default_true")]
    pub multi_region: bool,
    /// Log file integrity validation.
    #[serde(default = "default_true")]
    pub log_file_validation: bool,
    /// Days before log objects expire.
    #[serde(default = "default_trail_retention")]
    pub retention_days: u16,
}

impl Default for CloudTrail {
    fn default() -> Self {
        CloudTrail {
            enabled: true,
            multi_region: true,
            log_file_validation: true,
            retention_days: default_trail_retention(),
        }
    }
}

fn default_trail_retention() -> u16 {
    365
}

/// An EKS cluster (filled by `enclave-deploy`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    /// Cluster name.
    pub name: Name,
    /// The account it runs in.
    pub account: Name,
    /// Kubernetes minor version, `1.NN`.
    pub version: String,
    /// Tier whose subnets hold the nodes; defaults to the first tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Name>,
    /// Whether the API server is also reachable from the internet. Off: the endpoint is
    /// private, reached from the VPC (through Session Manager); a guardrail flags it on.
    #[serde(default)]
    pub public_endpoint: bool,
    /// IAM roles of the cluster's account given access to its Kubernetes API (EKS access
    /// entries; the `aws-auth` ConfigMap is never edited).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access: Vec<ClusterAccess>,
    /// Managed node groups.
    #[serde(default)]
    pub node_groups: Vec<NodeGroup>,
    /// The Cluster Autoscaler.
    #[serde(default)]
    pub autoscaler: ClusterAutoscaler,
    /// How workloads get AWS credentials (the External Secrets Operator reading an app's
    /// secrets): IAM roles for service accounts (the default) or EKS Pod Identity.
    #[serde(default)]
    pub workload_identity: WorkloadIdentity,
    /// The Istio service mesh: mutual TLS between every pod, authorization from the apps'
    /// declared callers, retries, timeouts and outlier detection from their resilience settings.
    /// Absent: no mesh (`mesh: {}` turns it on with the defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh: Option<MeshSpec>,
    /// The controllers and monitoring stack installed from the spec, and the GitOps controller
    /// that installs them.
    #[serde(default)]
    pub addons: AddonsSpec,
}

/// A cluster's Istio mesh (filled by `enclave-deploy`'s `mesh`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MeshSpec {
    /// Istio's root namespace, where the mesh-wide policy lives.
    #[serde(default = "default_istio_root")]
    pub root_namespace: Name,
    /// The mesh's trust domain, the first part of every workload's identity
    /// (`<trust domain>/ns/<namespace>/sa/<service account>`).
    #[serde(default = "default_trust_domain")]
    pub trust_domain: String,
    /// Namespaces still accepting plain text while their clients join the mesh (`PERMISSIVE`
    /// mutual TLS); a guardrail reports each one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permissive_namespaces: Vec<Name>,
}

impl Default for MeshSpec {
    fn default() -> Self {
        MeshSpec {
            root_namespace: default_istio_root(),
            trust_domain: default_trust_domain(),
            permissive_namespaces: Vec::new(),
        }
    }
}

fn default_istio_root() -> Name {
    Name::from_str("istio-system").unwrap_or_else(|_| unreachable!("a valid name"))
}

fn default_trust_domain() -> String {
    "cluster.local".to_owned()
}

/// How pods of a cluster assume IAM roles (filled by `enclave-secrets`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum WorkloadIdentity {
    /// IAM roles for service accounts: the role trusts the cluster's OIDC provider for exactly
    /// one service account (`sts:AssumeRoleWithWebIdentity`).
    #[default]
    Irsa,
    /// EKS Pod Identity: the role trusts `pods.eks.amazonaws.com`, and an association binds it to
    /// one service account.
    PodIdentity,
}

/// A role's access to a cluster's Kubernetes API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterAccess {
    /// An IAM role of the cluster's account, by name.
    pub role: RoleName,
    /// What it may do (an EKS access policy).
    pub policy: AccessPolicy,
    /// Only in these namespaces; cluster-wide when empty. `cluster-admin` is always cluster-wide.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<Name>,
}

/// The EKS access policies a role can be given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AccessPolicy {
    /// `AmazonEKSClusterAdminPolicy`: everything, cluster-wide.
    ClusterAdmin,
    /// `AmazonEKSAdminPolicy`: most resources, RBAC included, without quotas or namespaces.
    Admin,
    /// `AmazonEKSEditPolicy`: most resources, no RBAC.
    Edit,
    /// `AmazonEKSViewPolicy`: read most resources.
    View,
}

impl AccessPolicy {
    /// The policy's name in EKS (`arn:<partition>:eks::aws:cluster-access-policy/<name>`).
    pub fn eks_name(self) -> &'static str {
        match self {
            AccessPolicy::ClusterAdmin => "AmazonEKSClusterAdminPolicy",
            AccessPolicy::Admin => "AmazonEKSAdminPolicy",
            AccessPolicy::Edit => "AmazonEKSEditPolicy",
            AccessPolicy::View => "AmazonEKSViewPolicy",
        }
    }
}

/// Cluster Autoscaler settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterAutoscaler {
    /// Whether it runs.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Image tag of `registry.k8s.io/autoscaling/cluster-autoscaler`; match the cluster's minor
    /// version.
    #[serde(default = "default_autoscaler_version")]
    pub version: String,
    /// How it picks a node group to grow.
    #[serde(default)]
    pub expander: Expander,
    /// Keep similar node groups (one per AZ) the same size.
    #[serde(default = "default_true")]
    pub balance_similar_node_groups: bool,
    /// Scale-down settings.
    #[serde(default)]
    pub scale_down: ScaleDown,
}

impl Default for ClusterAutoscaler {
    fn default() -> Self {
        ClusterAutoscaler {
            enabled: true,
            version: default_autoscaler_version(),
            expander: Expander::default(),
            balance_similar_node_groups: true,
            scale_down: ScaleDown::default(),
        }
    }
}

fn default_autoscaler_version() -> String {
    "v1.33.0".into()
}

/// Cluster Autoscaler expander.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Expander {
    /// The group that wastes the least CPU and memory after scale-up.
    #[default]
    LeastWaste,
    /// The group that schedules the most pods.
    MostPods,
    /// A random group.
    Random,
    /// The group with the highest priority in the priority ConfigMap.
    Priority,
    /// The cheapest group.
    Price,
}

impl fmt::Display for Expander {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Expander::LeastWaste => "least-waste",
            Expander::MostPods => "most-pods",
            Expander::Random => "random",
            Expander::Priority => "priority",
            Expander::Price => "price",
        })
    }
}

/// When the Cluster Autoscaler removes nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaleDown {
    /// Whether it removes nodes at all.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Minutes after a scale-up before scale-down is considered again.
    #[serde(default = "default_ten")]
    pub delay_after_add_minutes: u16,
    /// Minutes a node must be unneeded before it is removed.
    #[serde(default = "default_ten")]
    pub unneeded_minutes: u16,
    /// Requested share of a node's capacity below which it is unneeded, in percent.
    #[serde(default = "default_utilization_threshold")]
    pub utilization_threshold_percent: u8,
}

impl Default for ScaleDown {
    fn default() -> Self {
        ScaleDown {
            enabled: true,
            delay_after_add_minutes: default_ten(),
            unneeded_minutes: default_ten(),
            utilization_threshold_percent: default_utilization_threshold(),
        }
    }
}

fn default_ten() -> u16 {
    10
}

fn default_utilization_threshold() -> u8 {
    50
}

/// A managed node group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeGroup {
    /// Node group name.
    pub name: Name,
    /// EC2 instance types.
    pub instance_types: Vec<String>,
    /// Minimum nodes.
    pub min: u16,
    /// Maximum nodes.
    pub max: u16,
    /// Desired nodes at creation.
    pub desired: u16,
    /// The subnet tier its nodes run in; defaults to the cluster's tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Name>,
}

/// An application (filled by `enclave-deploy`, `enclave-scaling`, `enclave-monitor`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppSpec {
    /// Application name.
    pub name: Name,
    /// The cluster it runs on.
    pub cluster: Name,
    /// Kubernetes namespace; defaults to the app name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<Name>,
    /// The team that owns it: its alerts carry `team`, which `alerting.routes` route by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<Name>,
    /// Container image, with a tag or a digest.
    pub image: String,
    /// Container port.
    pub port: u16,
    /// Replicas when no autoscaler is set.
    #[serde(default = "default_replicas")]
    pub replicas: u16,
    /// Container requests and limits; every container gets both.
    #[serde(default)]
    pub resources: Resources,
    /// Horizontal autoscaling (an `autoscaling/v2` HorizontalPodAutoscaler).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<Autoscaling>,
    /// Vertical right-sizing (a VerticalPodAutoscaler).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpa: Option<VpaSpec>,
    /// How many pods voluntary disruptions (node drains, scale-down) may take at once.
    #[serde(default)]
    pub disruption: Disruption,
    /// Metrics scraping, dependencies, probes and alert thresholds.
    #[serde(default)]
    pub monitoring: Monitoring,
    /// The apps of the same cluster allowed to call this one on its traffic port; nothing else
    /// may (the rendered NetworkPolicies deny every other caller).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub callers: Vec<Caller>,
    /// The app's secrets: kept in AWS Secrets Manager, synced into the app's namespace by the
    /// External Secrets Operator. Values never appear in spec files, only where they come from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretSpec>,
    /// How a new image rolls out: blue-green, analysed against the app's own alert thresholds.
    #[serde(default)]
    pub rollout: RolloutSpec,
    /// How calls to the app are bounded in a mesh cluster: timeout, retries, connection pool and
    /// outlier detection (the app's VirtualService and DestinationRule).
    #[serde(default)]
    pub resilience: Resilience,
    /// The app's place in its cluster's mesh.
    #[serde(default)]
    pub mesh: AppMesh,
}

/// An app's place in the mesh.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppMesh {
    /// Whether its pods get the Istio sidecar (in a mesh cluster). Off, the app is outside the
    /// mesh (no mutual TLS, no authorization): a guardrail reports it.
    #[serde(default = "default_true")]
    pub sidecar: bool,
}

impl Default for AppMesh {
    fn default() -> Self {
        AppMesh { sidecar: true }
    }
}

/// Bounds on calls to an app, enforced by the mesh (Istio's meanings).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resilience {
    /// Longest a call may take, retries included (the VirtualService's `timeout`).
    #[serde(default = "default_call_timeout")]
    pub timeout: PromDuration,
    /// The mesh's retries of a failed call.
    #[serde(default)]
    pub retries: MeshRetries,
    /// The most retries one call to the app may cause, every layer together: the mesh's and
    /// those of the caller's own client (`monitoring.dependencies[].retries`). Layers multiply:
    /// 2 client retries over 2 mesh retries are 8.
    #[serde(default = "default_retry_budget")]
    pub retry_budget: u32,
    /// Connection limits per caller sidecar (the DestinationRule's `connectionPool`).
    #[serde(default)]
    pub connection_pool: ConnectionPool,
    /// Pods ejected from the load-balancing pool after consecutive errors (`outlierDetection`).
    #[serde(default)]
    pub outlier_detection: OutlierDetection,
}

impl Default for Resilience {
    fn default() -> Self {
        Resilience {
            timeout: default_call_timeout(),
            retries: MeshRetries::default(),
            retry_budget: default_retry_budget(),
            connection_pool: ConnectionPool::default(),
            outlier_detection: OutlierDetection::default(),
        }
    }
}

fn default_call_timeout() -> PromDuration {
    PromDuration(15)
}

fn default_retry_budget() -> u32 {
    2
}

/// The mesh's retries (a VirtualService's `retries`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MeshRetries {
    /// Retries after the first attempt (0: none).
    #[serde(default = "default_mesh_attempts")]
    pub attempts: u32,
    /// Longest one attempt may take.
    #[serde(default = "default_per_try_timeout")]
    pub per_try_timeout: PromDuration,
    /// Which failures are retried (Envoy's `retry_on` conditions).
    #[serde(default = "default_retry_on")]
    pub retry_on: Vec<RetryOn>,
}

impl Default for MeshRetries {
    fn default() -> Self {
        MeshRetries {
            attempts: default_mesh_attempts(),
            per_try_timeout: default_per_try_timeout(),
            retry_on: default_retry_on(),
        }
    }
}

fn default_mesh_attempts() -> u32 {
    2
}

fn default_per_try_timeout() -> PromDuration {
    PromDuration(5)
}

fn default_retry_on() -> Vec<RetryOn> {
    vec![RetryOn::ConnectFailure, RetryOn::RefusedStream, RetryOn::Unavailable]
}

/// A failure the mesh retries (Envoy's names). Only failures where the request did not reach
/// the app, or the app said it was not processed (the default: `connect-failure`,
/// `refused-stream`, `unavailable`), are safe for calls that are not idempotent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RetryOn {
    /// Any 5xx response, or a timeout of the attempt.
    #[serde(rename = "5xx")]
    FiveXx,
    /// 502, 503 or 504.
    GatewayError,
    /// No connection could be made.
    ConnectFailure,
    /// The upstream refused the HTTP/2 stream (`REFUSED_STREAM`).
    RefusedStream,
    /// A gRPC `unavailable` status.
    Unavailable,
    /// The connection was reset or closed before a response, or an attempt timed out: the app
    /// may have processed the request, so only for idempotent calls.
    Reset,
    /// 409 or a gRPC `cancelled`.
    #[serde(rename = "retriable-4xx")]
    Retriable4xx,
}

impl fmt::Display for RetryOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RetryOn::FiveXx => "5xx",
            RetryOn::GatewayError => "gateway-error",
            RetryOn::ConnectFailure => "connect-failure",
            RetryOn::RefusedStream => "refused-stream",
            RetryOn::Unavailable => "unavailable",
            RetryOn::Reset => "reset",
            RetryOn::Retriable4xx => "retriable-4xx",
        })
    }
}

/// Connection limits (a DestinationRule's `connectionPool`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionPool {
    /// TCP connections to the app from one caller's sidecar.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// Requests waiting for a connection before new ones fail fast.
    #[serde(default = "default_max_pending")]
    pub max_pending_requests: u32,
    /// Requests over one connection before it is closed (none: unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests_per_connection: Option<u32>,
}

impl Default for ConnectionPool {
    fn default() -> Self {
        ConnectionPool {
            max_connections: default_max_connections(),
            max_pending_requests: default_max_pending(),
            max_requests_per_connection: None,
        }
    }
}

fn default_max_connections() -> u32 {
    100
}

fn default_max_pending() -> u32 {
    64
}

/// Passive health checking (a DestinationRule's `outlierDetection`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutlierDetection {
    /// 5xx responses in a row that eject a pod.
    #[serde(default = "default_consecutive_5xx")]
    pub consecutive_5xx: u32,
    /// Time between ejection sweeps.
    #[serde(default = "default_outlier_interval")]
    pub interval: PromDuration,
    /// How long a first ejection lasts (longer each time).
    #[serde(default = "default_thirty_seconds")]
    pub base_ejection_time: PromDuration,
    /// The largest share of the app's pods ejected at once, in percent (1 to 100).
    #[serde(default = "default_max_ejection_percent")]
    pub max_ejection_percent: u8,
}

impl Default for OutlierDetection {
    fn default() -> Self {
        OutlierDetection {
            consecutive_5xx: default_consecutive_5xx(),
            interval: default_outlier_interval(),
            base_ejection_time: default_thirty_seconds(),
            max_ejection_percent: default_max_ejection_percent(),
        }
    }
}

fn default_consecutive_5xx() -> u32 {
    5
}

fn default_outlier_interval() -> PromDuration {
    PromDuration(10)
}

fn default_max_ejection_percent() -> u8 {
    50
}

/// A blue-green rollout (filled by `enclave-deploy`), with Argo Rollouts' meanings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutSpec {
    /// Switch traffic to the new version without a person once it is available and analysed
    /// (`autoPromotionEnabled`); off: `enclave rollout promote` does.
    #[serde(default = "default_true")]
    pub auto_promotion: bool,
    /// With auto-promotion, wait this long after the analysis first (`autoPromotionSeconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_promotion_after: Option<PromDuration>,
    /// How long the previous version stays up after the switch (`scaleDownDelaySeconds`;
    /// `0s` keeps it up).
    #[serde(default = "default_thirty_seconds")]
    pub scale_down_delay: PromDuration,
    /// How long the new version stays up after an abort (`abortScaleDownDelaySeconds`; `0s` keeps
    /// it up; default 30 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_scale_down_delay: Option<PromDuration>,
    /// Analyse the new version through the preview Service before the switch.
    #[serde(default = "default_true")]
    pub pre_promotion: bool,
    /// Analyse it again after the switch; a failure switches traffic back.
    #[serde(default = "default_true")]
    pub post_promotion: bool,
    /// How the analysis measures: the app's error rate and p95 latency (its alert thresholds,
    /// `monitoring.alerts`) on the new version's pods.
    #[serde(default)]
    pub analysis: AnalysisSpec,
}

impl Default for RolloutSpec {
    fn default() -> Self {
        RolloutSpec {
            auto_promotion: true,
            auto_promotion_after: None,
            scale_down_delay: default_thirty_seconds(),
            abort_scale_down_delay: None,
            pre_promotion: true,
            post_promotion: true,
            analysis: AnalysisSpec::default(),
        }
    }
}

fn default_thirty_seconds() -> PromDuration {
    PromDuration(30)
}

/// How a rollout's analysis measures (Argo's metric fields).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalysisSpec {
    /// Time between measurements.
    #[serde(default = "default_thirty_seconds")]
    pub interval: PromDuration,
    /// Measurements per analysis.
    #[serde(default = "default_analysis_count")]
    pub count: u32,
    /// Failed measurements tolerated (`failureLimit`).
    #[serde(default = "default_one")]
    pub failure_limit: u32,
    /// Inconclusive measurements tolerated (`inconclusiveLimit`).
    #[serde(default)]
    pub inconclusive_limit: u32,
    /// Measurement errors in a row tolerated (`consecutiveErrorLimit`).
    #[serde(default = "default_consecutive_error_limit")]
    pub consecutive_error_limit: u32,
}

impl Default for AnalysisSpec {
    fn default() -> Self {
        AnalysisSpec {
            interval: default_thirty_seconds(),
            count: default_analysis_count(),
            failure_limit: default_one(),
            inconclusive_limit: 0,
            consecutive_error_limit: default_consecutive_error_limit(),
        }
    }
}

fn default_analysis_count() -> u32 {
    5
}

fn default_one() -> u32 {
    1
}

fn default_consecutive_error_limit() -> u32 {
    4
}

/// One secret of an app (filled by `enclave-secrets`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretSpec {
    /// Name, unique within the app (`<stack>/<environment>/<app>/<name>` in Secrets Manager).
    pub name: Name,
    /// Where the value comes from.
    pub source: SecretSource,
    /// The keys the app sees, each a file of the secret's directory in its container
    /// (`/var/run/secrets/enclave/<secret>/<key>`; never environment variables, which leak into
    /// logs and child processes); by default one, named after the secret.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<SecretKey>,
    /// Rotation by a Lambda function; none by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<Rotation>,
    /// How often the External Secrets Operator refreshes the Kubernetes Secret.
    #[serde(default = "default_refresh")]
    pub refresh: PromDuration,
    /// Days a deleted secret can still be restored (7 to 30).
    #[serde(default = "default_recovery_days")]
    pub recovery_days: u8,
    /// Never accepted: a literal value in the spec is an error (it would sit in git). Present so
    /// the error can say so, at the line, without repeating the value.
    #[serde(default, skip_serializing, rename = "value")]
    #[schemars(skip)]
    pub literal: Option<Literal>,
}

impl SecretSpec {
    /// The keys the app sees: the spec's, or one named after the secret.
    pub fn keys_or_default(&self) -> Vec<SecretKey> {
        if self.keys.is_empty() {
            vec![SecretKey { key: self.name.to_string(), property: None }]
        } else {
            self.keys.clone()
        }
    }
}

/// Something written where only a source is accepted; its content is dropped unread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Literal;

impl<'de> Deserialize<'de> for Literal {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer).map(|_| Literal)
    }
}

fn default_refresh() -> PromDuration {
    PromDuration(3600)
}

fn default_recovery_days() -> u8 {
    7
}

/// Where a secret's value comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SecretSource {
    /// Generated once, when the secret is created, and never replaced by a later apply.
    Generate(Generate),
    /// Read from this environment variable of the process that plans or applies.
    Env(String),
    /// Read from this file, relative to the configuration directory.
    File(String),
}

/// How a value is generated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Generate {
    /// Characters (16 to 4096).
    #[serde(default = "default_secret_length")]
    pub length: u16,
    /// Which characters.
    #[serde(default)]
    pub alphabet: Alphabet,
}

fn default_secret_length() -> u16 {
    32
}

/// The characters a generated value is drawn from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Alphabet {
    /// `A-Z a-z 0-9`.
    #[default]
    Alphanumeric,
    /// `0-9 a-f`.
    Hex,
    /// `A-Z a-z 0-9 - _` (URL-safe base64's alphabet).
    Base64url,
    /// Printable ASCII without space, quotes and backslash.
    Printable,
}

impl Alphabet {
    /// The characters, in a fixed order.
    pub fn characters(self) -> Vec<char> {
        let letters = ('A'..='Z').chain('a'..='z');
        match self {
            Alphabet::Alphanumeric => letters.chain('0'..='9').collect(),
            Alphabet::Hex => ('0'..='9').chain('a'..='f').collect(),
            Alphabet::Base64url => letters.chain('0'..='9').chain(['-', '_']).collect(),
            Alphabet::Printable => ('!'..='~').filter(|c| !matches!(c, '"' | '\'' | '\\' | '`')).collect(),
        }
    }
}

/// A key of the Kubernetes Secret the app sees.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretKey {
    /// The key, also the file's name (`[-._a-zA-Z0-9]+`, as Kubernetes Secret keys).
    pub key: String,
    /// For a JSON object value, the property this key takes; the whole value otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
}

/// Rotation of a secret by a Lambda function (Secrets Manager's rotation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// Days between rotations (1 to 1000).
    pub days: u16,
    /// The rotation function's ARN. Without it nothing is configured: Secrets Manager cannot
    /// rotate a secret without a function, and a guardrail says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda: Option<String>,
}

/// An app allowed to call another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Caller {
    /// The calling app, in the same cluster.
    pub app: Name,
    /// Only these HTTP methods (in a mesh cluster); any when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<HttpMethod>,
    /// Only these paths (in a mesh cluster): exact, or with one `*` as a prefix (`/v1/*`) or
    /// suffix (`*/status`) match; any when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
}

/// An HTTP method a caller may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// `GET`.
    Get,
    /// `HEAD`.
    Head,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `PATCH`.
    Patch,
    /// `DELETE`.
    Delete,
    /// `OPTIONS`.
    Options,
}

impl fmt::Display for HttpMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HttpMethod::Get => "GET",
            HttpMethod::Head => "HEAD",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
            HttpMethod::Options => "OPTIONS",
        })
    }
}

/// How an app is watched.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Monitoring {
    /// The internal port serving health probes and metrics, apart from the app's traffic port
    /// so that nothing routed to the app from outside reaches dependency reports or metrics.
    #[serde(default = "default_internal_port")]
    pub port: u16,
    /// Path of the OpenMetrics endpoint.
    #[serde(default = "default_metrics_path")]
    pub metrics_path: String,
    /// How often Prometheus scrapes the app.
    #[serde(default = "default_scrape_interval")]
    pub scrape_interval: PromDuration,
    /// Dependencies the deep health check reports; critical ones gate readiness.
    #[serde(default)]
    pub dependencies: Vec<Dependency>,
    /// Probe timing.
    #[serde(default)]
    pub health: HealthTiming,
    /// Alert thresholds and durations.
    #[serde(default)]
    pub alerts: AlertThresholds,
}

impl Default for Monitoring {
    fn default() -> Self {
        Monitoring {
            port: default_internal_port(),
            metrics_path: default_metrics_path(),
            scrape_interval: default_scrape_interval(),
            dependencies: Vec::new(),
            health: HealthTiming::default(),
            alerts: AlertThresholds::default(),
        }
    }
}

fn default_internal_port() -> u16 {
    9090
}

fn default_metrics_path() -> String {
    "/metrics".into()
}

fn default_scrape_interval() -> PromDuration {
    PromDuration(30)
}

/// A dependency of an app.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Dependency {
    /// Name, as it appears in health reports and metrics (`dependency="database"`).
    pub name: Name,
    /// What it is.
    pub kind: DependencyKind,
    /// Whether readiness fails when it is down.
    #[serde(default = "default_true")]
    pub critical: bool,
    /// Where it is: the app's pods may open connections there and nowhere else (DNS aside).
    /// Required: an undeclared destination is denied by the rendered NetworkPolicies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Destination>,
    /// The TCP port it listens on; for another app, defaults to that app's traffic port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Retries the app's own client makes for a failed call (the `RetryPolicy` of
    /// `enclave-monitor`'s resilience stack). For another app in a mesh they multiply with the
    /// mesh's retries, which a guardrail reports.
    #[serde(default)]
    pub retries: u32,
}

/// Where a dependency is reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Destination {
    /// Another app of the same cluster, which lists this one among its `callers`.
    App(Name),
    /// A subnet tier of the cluster's own VPC (a database or cache in the `data` tier).
    Tier(Name),
    /// An address range outside the cluster (a peered network, or a public API through NAT).
    Cidr(Cidr),
}

/// Kinds of dependencies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DependencyKind {
    /// A database (alerted on as connection failures).
    Database,
    /// An HTTP service.
    Http,
    /// A message queue.
    Queue,
    /// A cache.
    Cache,
}

impl fmt::Display for DependencyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DependencyKind::Database => "database",
            DependencyKind::Http => "http",
            DependencyKind::Queue => "queue",
            DependencyKind::Cache => "cache",
        })
    }
}

/// Probe timing for the app's container.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthTiming {
    /// Longest the app may take to start before it is restarted.
    #[serde(default = "default_startup")]
    pub startup_within: PromDuration,
    /// Probe period.
    #[serde(default = "default_probe_period")]
    pub period: PromDuration,
    /// Probe timeout.
    #[serde(default = "default_probe_timeout")]
    pub timeout: PromDuration,
    /// Consecutive failures before liveness restarts or readiness removes the pod.
    #[serde(default = "default_failure_threshold")]
    pub failure_threshold: u8,
}

impl Default for HealthTiming {
    fn default() -> Self {
        HealthTiming {
            startup_within: default_startup(),
            period: default_probe_period(),
            timeout: default_probe_timeout(),
            failure_threshold: default_failure_threshold(),
        }
    }
}

fn default_startup() -> PromDuration {
    PromDuration(120)
}

fn default_probe_period() -> PromDuration {
    PromDuration(10)
}

fn default_probe_timeout() -> PromDuration {
    PromDuration(2)
}

fn default_failure_threshold() -> u8 {
    3
}

/// Alert thresholds; durations are how long a condition must hold before the alert fires.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertThresholds {
    /// Service down (no successful scrape) for this long: critical.
    #[serde(default = "default_down_for")]
    pub service_down_for: PromDuration,
    /// Share of 5xx responses above which the error-rate alert fires, percent.
    #[serde(default = "default_error_rate")]
    pub error_rate_percent: f64,
    /// How long the error rate must stay high.
    #[serde(default = "default_five_minutes")]
    pub error_rate_for: PromDuration,
    /// How long a database dependency must be down before the alert fires.
    #[serde(default = "default_one_minute")]
    pub database_failure_for: PromDuration,
    /// p95 latency above which the latency alert fires, seconds.
    #[serde(default = "default_latency")]
    pub latency_p95_seconds: f64,
    /// How long p95 latency must stay high.
    #[serde(default = "default_ten_minutes")]
    pub latency_for: PromDuration,
    /// Throttled share of CPU periods above which the throttling alert fires, percent.
    #[serde(default = "default_throttling")]
    pub cpu_throttling_percent: f64,
    /// Working set as a share of the memory limit above which the alert fires, percent.
    #[serde(default = "default_memory_limit")]
    pub memory_limit_percent: f64,
    /// How long resource pressure must last.
    #[serde(default = "default_fifteen_minutes")]
    pub resource_for: PromDuration,
    /// Days before a certificate expires at which the alert fires.
    #[serde(default = "default_certificate_days")]
    pub certificate_days: u16,
}

impl Default for AlertThresholds {
    fn default() -> Self {
        AlertThresholds {
            service_down_for: default_down_for(),
            error_rate_percent: default_error_rate(),
            error_rate_for: default_five_minutes(),
            database_failure_for: default_one_minute(),
            latency_p95_seconds: default_latency(),
            latency_for: default_ten_minutes(),
            cpu_throttling_percent: default_throttling(),
            memory_limit_percent: default_memory_limit(),
            resource_for: default_fifteen_minutes(),
            certificate_days: default_certificate_days(),
        }
    }
}

fn default_down_for() -> PromDuration {
    PromDuration(300)
}
fn default_error_rate() -> f64 {
    5.0
}
fn default_five_minutes() -> PromDuration {
    PromDuration(300)
}
fn default_one_minute() -> PromDuration {
    PromDuration(60)
}
fn default_latency() -> f64 {
    2.0
}
fn default_ten_minutes() -> PromDuration {
    PromDuration(600)
}
fn default_throttling() -> f64 {
    25.0
}
fn default_memory_limit() -> f64 {
    90.0
}
fn default_fifteen_minutes() -> PromDuration {
    PromDuration(900)
}
fn default_certificate_days() -> u16 {
    30
}

/// A Prometheus-style duration (`30s`, `5m`, `1h`, `1d`), kept in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PromDuration(pub u64);

impl PromDuration {
    /// Seconds.
    pub fn seconds(&self) -> u64 {
        self.0
    }
}

impl fmt::Display for PromDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.0;
        if seconds != 0 && seconds.is_multiple_of(86_400) {
            write!(f, "{}d", seconds / 86_400)
        } else if seconds != 0 && seconds.is_multiple_of(3600) {
            write!(f, "{}h", seconds / 3600)
        } else if seconds != 0 && seconds.is_multiple_of(60) {
            write!(f, "{}m", seconds / 60)
        } else {
            write!(f, "{seconds}s")
        }
    }
}

impl FromStr for PromDuration {
    type Err = InvalidValue;
    fn from_str(value: &str) -> Result<Self, InvalidValue> {
        let invalid = || InvalidValue("not a duration like `30s`, `5m` or `1h`".to_owned());
        let unit_at = value.find(|c: char| !c.is_ascii_digit()).ok_or_else(invalid)?;
        let (number, unit) = value.split_at(unit_at);
        let number: u64 = number.parse().map_err(|_| invalid())?;
        let factor = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(invalid()),
        };
        Ok(PromDuration(number.checked_mul(factor).ok_or_else(invalid)?))
    }
}

impl Serialize for PromDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for PromDuration {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("Duration")
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "pattern": "^[0-9]+(s|m|h|d)$" })
    }
}

impl AppSpec {
    /// The namespace the app runs in.
    pub fn namespace(&self) -> &Name {
        self.namespace.as_ref().unwrap_or(&self.name)
    }

    /// The labels that select the app's pods; every crate rendering for the app uses these.
    pub fn selector(&self) -> std::collections::BTreeMap<String, String> {
        std::collections::BTreeMap::from([("app.kubernetes.io/name".to_owned(), self.name.to_string())])
    }
}

/// Requests and limits of the app's container.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// What the scheduler reserves.
    pub requests: ResourcePair,
    /// The most the container may use.
    pub limits: ResourcePair,
}

impl Default for Resources {
    fn default() -> Self {
        let quantity = |text: &str| text.parse().unwrap_or_else(|_| unreachable!("constant quantity"));
        Resources {
            requests: ResourcePair { cpu: quantity("100m"), memory: quantity("128Mi") },
            limits: ResourcePair { cpu: quantity("500m"), memory: quantity("256Mi") },
        }
    }
}

/// A CPU and a memory quantity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourcePair {
    /// CPU (`250m`, `1`).
    pub cpu: Quantity,
    /// Memory (`256Mi`).
    pub memory: Quantity,
}

/// Horizontal autoscaling.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Autoscaling {
    /// Fewest replicas.
    #[serde(default = "default_min_replicas")]
    pub min_replicas: u16,
    /// Most replicas.
    pub max_replicas: u16,
    /// Target average CPU utilization, percent of the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_utilization: Option<u16>,
    /// Target average memory utilization, percent of the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_utilization: Option<u16>,
    /// Per-pod custom metrics served by prometheus-adapter from Prometheus.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pods_metrics: Vec<CustomMetric>,
    /// Metrics of something outside the cluster (a queue), served by prometheus-adapter.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_metrics: Vec<CustomMetric>,
    /// Scale-up and scale-down rates and stabilization; upstream defaults when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<Behavior>,
}

fn default_min_replicas() -> u16 {
    2
}

/// A Prometheus-backed metric and its per-pod average target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomMetric {
    /// The metric name the HPA asks for (`http_requests_per_second`).
    pub name: MetricName,
    /// The Prometheus series it is computed from (`http_requests_total`).
    pub series: MetricName,
    /// prometheus-adapter `metricsQuery` template; defaults to a per-second rate over 2 minutes:
    /// `sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Target value per pod (`AverageValue`).
    pub target_average: Quantity,
}

/// `behavior` of an `autoscaling/v2` HPA.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Behavior {
    /// Scale-up rules; upstream default: no stabilization, max of 4 pods or 100% per 15 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_up: Option<ScalingRules>,
    /// Scale-down rules; upstream default: 300 s stabilization, 100% per 15 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<ScalingRules>,
}

/// Rules for one direction of scaling.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScalingRules {
    /// Seconds of past recommendations considered (0 to 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stabilization_window_seconds: Option<u32>,
    /// Which policy wins when several apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select_policy: Option<SelectPolicy>,
    /// Rate limits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<ScalingPolicy>,
}

/// How to pick among scaling policies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SelectPolicy {
    /// The policy allowing the largest change.
    Max,
    /// The policy allowing the smallest change.
    Min,
    /// No scaling in this direction.
    Disabled,
}

/// One rate limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScalingPolicy {
    /// Pods or percent.
    #[serde(rename = "type")]
    pub kind: PolicyKind,
    /// How many pods, or what percent of the replicas at the start of the period.
    pub value: u32,
    /// Length of the period (1 to 1800 seconds).
    pub period_seconds: u32,
}

/// The unit of a scaling policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PolicyKind {
    /// A number of pods.
    Pods,
    /// A percentage of the current replicas.
    Percent,
}

/// Vertical Pod Autoscaler settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VpaSpec {
    /// What the VPA may do with its recommendations.
    #[serde(default)]
    pub mode: VpaMode,
    /// Resources it controls; must not include a resource an HPA scales on.
    #[serde(default = "default_controlled_resources")]
    pub controlled_resources: Vec<ResourceName>,
    /// Whether limits move with requests.
    #[serde(default)]
    pub controlled_values: ControlledValues,
    /// Lower bound of recommendations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_allowed: Option<ResourcePair>,
    /// Upper bound of recommendations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_allowed: Option<ResourcePair>,
}

fn default_controlled_resources() -> Vec<ResourceName> {
    vec![ResourceName::Cpu, ResourceName::Memory]
}

/// VPA update mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum VpaMode {
    /// Recommend only.
    #[default]
    Off,
    /// Set resources when pods are created.
    Initial,
    /// Evict pods whose resources drift from the recommendation.
    Recreate,
    /// Today the same as recreate.
    Auto,
}

/// A container resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ResourceName {
    /// CPU.
    Cpu,
    /// Memory.
    Memory,
}

impl fmt::Display for ResourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResourceName::Cpu => "cpu",
            ResourceName::Memory => "memory",
        })
    }
}

/// Which values a VPA sets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ControlledValues {
    /// Requests only; limits stay as written.
    #[default]
    RequestsOnly,
    /// Requests, and limits in proportion.
    RequestsAndLimits,
}

/// Voluntary-disruption budget: exactly one of the two fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Disruption {
    /// Pods that must stay available (`2` or `50%`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_available: Option<IntOrPercent>,
    /// Pods that may be unavailable (`1` or `25%`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrPercent>,
}

impl Default for Disruption {
    fn default() -> Self {
        Disruption { min_available: None, max_unavailable: Some(IntOrPercent::Int(1)) }
    }
}

/// A count or a percentage, as Kubernetes' `IntOrString`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IntOrPercent {
    /// A number of pods.
    Int(u32),
    /// A percentage, 0 to 100.
    Percent(u8),
}

impl JsonSchema for IntOrPercent {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("IntOrPercent")
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "oneOf": [{ "type": "integer", "minimum": 0 }, { "type": "string", "pattern": "^[0-9]{1,3}%$" }] })
    }
}

impl Serialize for IntOrPercent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            IntOrPercent::Int(value) => serializer.serialize_u32(*value),
            IntOrPercent::Percent(value) => serializer.collect_str(&format_args!("{value}%")),
        }
    }
}

impl<'de> Deserialize<'de> for IntOrPercent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u32),
            Text(String),
        }
        match Raw::deserialize(deserializer)
            .map_err(|_| serde::de::Error::custom("expected a count like 1 or a percentage like \"25%\""))?
        {
            Raw::Int(value) => Ok(IntOrPercent::Int(value)),
            Raw::Text(text) => text
                .strip_suffix('%')
                .and_then(|number| number.parse::<u8>().ok())
                .filter(|percent| *percent <= 100)
                .map(IntOrPercent::Percent)
                .ok_or_else(|| serde::de::Error::custom("not a count or a percentage from 0% to 100%")),
        }
    }
}

fn default_replicas() -> u16 {
    2
}

// --- Newtypes that cannot hold invalid values -------------------------------------------------

/// Why a string is not a valid value of a newtype.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

macro_rules! string_newtype {
    ($(#[$doc:meta])* $name:ident, $schema_name:literal, $pattern:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The value as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = InvalidValue;
            fn from_str(value: &str) -> Result<Self, InvalidValue> {
                let check: fn(&str) -> Result<(), String> = $check;
                check(value).map_err(InvalidValue)?;
                Ok($name(value.to_owned()))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                Cow::Borrowed($schema_name)
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({ "type": "string", "pattern": $pattern })
            }
        }
    };
}

string_newtype!(
    /// A lowercase DNS-label-like name: `[a-z][a-z0-9-]*`, at most 63 characters, no trailing
    /// hyphen.
    Name,
    "Name",
    "^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$",
    |value| {
        let valid = !value.is_empty()
            && value.len() <= 63
            && value.starts_with(|c: char| c.is_ascii_lowercase())
            && !value.ends_with('-')
            && value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if valid {
            Ok(())
        } else {
            Err("not a valid name: use lowercase letters, digits and `-`, starting with a letter, at most 63 characters".to_owned())
        }
    }
);

string_newtype!(
    /// An IAM role name.
    RoleName,
    "RoleName",
    "^[A-Za-z0-9+=,.@_-]{1,64}$",
    |value| {
        let valid = !value.is_empty()
            && value.len() <= 64
            && value.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
        if valid { Ok(()) } else { Err("not a valid IAM role name: 1 to 64 of letters, digits and `+=,.@_-`".to_owned()) }
    }
);

string_newtype!(
    /// An AWS region code such as `eu-west-1` (checked against the known regions during
    /// validation, so a new region is an error with a clear message rather than a parse failure).
    Region,
    "Region",
    "^[a-z]{2}(-[a-z]+)+-[0-9]$",
    |value| {
        let mut parts = value.split('-');
        let valid = value.len() <= 32
            && parts.next().is_some_and(|area| area.len() == 2 && area.chars().all(|c| c.is_ascii_lowercase()))
            && value.rsplit('-').next().is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
            && value.split('-').count() >= 3;
        if valid { Ok(()) } else { Err("not a region code like `eu-west-1`".to_owned()) }
    }
);

string_newtype!(
    /// An interface endpoint service short name: `ssm`, `ecr.api`, `secretsmanager`.
    ServiceName,
    "ServiceName",
    "^[a-z0-9]+([.-][a-z0-9]+)*$",
    |value| {
        let valid = !value.is_empty()
            && value.len() <= 64
            && value.split(['.', '-']).all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
        if valid {
            Ok(())
        } else {
            Err("not an endpoint service short name like `ssm` or `ecr.api`".to_owned())
        }
    }
);

string_newtype!(
    /// A Prometheus-style metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    MetricName,
    "MetricName",
    "^[a-zA-Z_:][a-zA-Z0-9_:]*$",
    |value| {
        let valid = value.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
        if valid { Ok(()) } else { Err("not a metric name like `http_requests_per_second`".to_owned()) }
    }
);

/// A 12-digit AWS account id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(String);

impl AccountId {
    /// The id as written, leading zeros included.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for AccountId {
    type Err = InvalidValue;
    fn from_str(value: &str) -> Result<Self, InvalidValue> {
        if value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) {
            Ok(AccountId(value.to_owned()))
        } else {
            Err(InvalidValue(match value.chars().count() {
                12 => "account id must be exactly 12 digits, and this one holds other characters".to_owned(),
                length => format!("account id must be exactly 12 digits, got {length} characters"),
            }))
        }
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for AccountId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for AccountId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(u64),
        }
        match Raw::deserialize(deserializer)
            .map_err(|_| serde::de::Error::custom("account id must be 12 digits, as a string or a number"))?
        {
            Raw::Text(text) => text.parse().map_err(serde::de::Error::custom),
            Raw::Number(number) => {
                let text = number.to_string();
                if text.len() < 12 {
                    Err(serde::de::Error::custom(format!(
                        "account id must be exactly 12 digits, got a number of {} digits; write ids with leading zeros as quoted strings",
                        text.len()
                    )))
                } else {
                    text.parse().map_err(serde::de::Error::custom)
                }
            }
        }
    }
}

impl JsonSchema for AccountId {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("AccountId")
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": ["string", "integer"], "pattern": "^[0-9]{12}$" })
    }
}

/// An IPv4 CIDR block in canonical form (no host bits set).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr(Ipv4Net);

impl Cidr {
    /// The network.
    pub fn net(&self) -> Ipv4Net {
        self.0
    }

    /// Prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.0.prefix_len()
    }

    /// Whether the two blocks share any address.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.0.contains(&other.0.network()) || other.0.contains(&self.0.network())
    }
}

impl From<Ipv4Net> for Cidr {
    fn from(net: Ipv4Net) -> Self {
        Cidr(net.trunc())
    }
}

impl FromStr for Cidr {
    type Err = InvalidValue;
    fn from_str(value: &str) -> Result<Self, InvalidValue> {
        let net: Ipv4Net =
            value.parse().map_err(|_| InvalidValue("not an IPv4 CIDR block like 10.1.0.0/16".to_owned()))?;
        if net.trunc() != net {
            return Err(InvalidValue(format!("host bits are set; did you mean {}?", net.trunc())));
        }
        Ok(Cidr(net))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Cidr {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("Cidr")
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "pattern": "^([0-9]{1,3}\\.){3}[0-9]{1,3}/[0-9]{1,2}$" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_reject_uppercase_and_trailing_hyphens() {
        assert!("app-a".parse::<Name>().is_ok());
        assert!("App".parse::<Name>().is_err());
        assert!("app-".parse::<Name>().is_err());
        assert!("1app".parse::<Name>().is_err());
    }

    #[test]
    fn cidrs_with_host_bits_suggest_the_network() {
        let error = "10.1.0.1/16".parse::<Cidr>().unwrap_err();
        assert!(error.0.contains("10.1.0.0/16"), "{error}");
    }

    #[test]
    fn account_ids_are_twelve_digits() {
        assert!("012345678901".parse::<AccountId>().is_ok());
        assert!("12345".parse::<AccountId>().is_err());
    }
}

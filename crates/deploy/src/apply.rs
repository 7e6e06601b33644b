//! Applying deploy: the [`Provider`] that creates, updates and deletes every deploy [`Kind`]
//! through ECR, EKS, IAM and EC2, with the toolkit's guarantees ([`enclave_aws::reconcile`]):
//!
//! - clusters and node groups are created with a `clientRequestToken` and waited for until
//!   `ACTIVE` (bounded, saying what was waited for); a version change is an in-place update of
//!   the control plane, then of the node groups (they come after their cluster in the plan);
//!   deletes wait until the resource is gone, node groups before their cluster;
//! - roles and launch templates go through the shared toolkit (`enclave_aws::iam`,
//!   `enclave_aws::reconcile::create_launch_template`);
//! - a repository is tagged with [`STACK_TAG`] and [`ADDRESS_TAG`] when it is made, with scan
//!   on push, tag mutability and KMS encryption (the account key, by its alias) in the same
//!   call; its lifecycle and repository policies follow;
//! - a create that may have reached AWS is looked up before it is tried again, and a name that
//!   exists already is adopted only when it carries this stack's tags, never otherwise;
//! - a repository holding images is deleted only with [`Registry::force_images`] (the images
//!   go with it); without, the delete fails and says so;
//! - an attribute the kind cannot change in place is refused, never skipped.

use std::collections::BTreeMap;

use aws_sdk_ecr::types::{
    EncryptionConfiguration, EncryptionType, ImageScanningConfiguration, ImageTagMutability, Tag,
};
use enclave_aws::reconcile::{self as toolkit, WaitState, Waits, found};
use enclave_core::names::account_key_alias;
use enclave_core::plan::{Attributes, Change};
use enclave_core::reconcile::{Ids, Operation, Provider, Step};
use serde_json::Value;

use crate::clients::{CallError, Clients, Code, Existing, Missing, call_error};
use crate::kind::Kind;
use crate::resources::COMPONENT;
use enclave_core::address::{ADDRESS_TAG, STACK_TAG};

type Result<T> = std::result::Result<T, CallError>;

/// The deploy provider: clients per account name.
#[derive(Clone, Debug)]
pub struct Registry {
    stack: String,
    partition: String,
    account_ids: BTreeMap<String, String>,
    accounts: BTreeMap<String, Clients>,
    waits: Waits,
    attempts: u32,
    force_images: bool,
}

impl Registry {
    /// A provider for `stack` in `region` over the given accounts: by name, their 12-digit id and
    /// clients.
    pub fn new(stack: &str, region: &str, accounts: BTreeMap<String, (String, Clients)>) -> Self {
        let account_ids = accounts.iter().map(|(name, (id, _))| (name.clone(), id.clone())).collect();
        Registry {
            stack: stack.to_owned(),
            partition: enclave_core::region::partition(region).to_owned(),
            account_ids,
            accounts: accounts.into_iter().map(|(name, (_, clients))| (name, clients)).collect(),
            waits: Waits::default(),
            attempts: 10,
            force_images: false,
        }
    }

    /// Sets the wait bounds.
    #[must_use]
    pub fn waits(mut self, waits: Waits) -> Self {
        self.waits = waits;
        self
    }

    /// Whether a repository that holds images may be deleted with them (`--force-images`).
    #[must_use]
    pub fn force_images(mut self, force: bool) -> Self {
        self.force_images = force;
        self
    }

    /// The clients of the account called `name`.
    pub fn clients(&self, name: &str) -> Option<&Clients> {
        self.accounts.get(name)
    }
}

fn changed(step: &Step<'_>, name: &str) -> bool {
    step.before.and_then(|b| b.get(name)) != step.after.and_then(|a| a.get(name))
}

/// A policy attribute as the text ECR takes; `None` for null (no policy).
fn policy_text(attributes: Option<&Attributes>, name: &str) -> Option<String> {
    attributes.and_then(|a| a.get(name)).filter(|value| !value.is_null()).map(Value::to_string)
}

/// What "not found" says that a resource of `kind` is already gone.
fn gone_codes(kind: Kind) -> &'static [Missing] {
    match kind {
        Kind::Repository => &[Missing::Repository],
        Kind::IamRole | Kind::OidcProvider => &[Missing::Entity],
        Kind::LaunchTemplate => &[Missing::LaunchTemplate],
        Kind::Cluster | Kind::NodeGroup | Kind::Addon | Kind::AccessEntry => &[Missing::Resource],
    }
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// A step's context: the provider, the account's clients, the step and the known ids.
struct Context<'a> {
    registry: &'a Registry,
    clients: &'a Clients,
    step: &'a Step<'a>,
    ids: &'a Ids,
    kind: Kind,
}

impl Provider for Registry {
    type Error = CallError;

    /// Repository names are unique in their account; nothing collides across accounts.
    fn collides(&self, create: &Change, delete: &Change) -> bool {
        create.address.account() == delete.address.account()
            && create.address.kind() == delete.address.kind()
            && create.address.name() == delete.address.name()
    }

    async fn run(&self, step: &Step<'_>, ids: &Ids) -> Result<Option<String>> {
        let clients = toolkit::account_of(&self.accounts, step)?;
        let kind: Kind = toolkit::kind_of(step)?;
        let context = Context { registry: self, clients, step, ids, kind };
        match step.operation {
            Operation::Create => context.create_resource().await.map(Some),
            Operation::Update => {
                let id = ids
                    .get(step.address)
                    .ok_or_else(|| CallError::enclave(format!("{} has no known id", step.address)))?;
                context.update_resource(&id).await.map(|()| None)
            }
            Operation::Delete => {
                let id = ids.get(step.address).unwrap_or_else(|| step.address.name().to_owned());
                context.delete_resource(&id).await.map(|()| None)
            }
        }
    }
}

impl Context<'_> {
    fn after(&self) -> Option<&Attributes> {
        self.step.after
    }

    fn text(&self, name: &str) -> Result<String> {
        toolkit::text_of(self.step, name)
    }

    /// The id of the resource whose address is the desired attribute `name`.
    fn reference(&self, name: &str) -> Result<String> {
        toolkit::reference_of(self.step, self.ids, name)
    }

    /// The ids of the resources whose addresses the desired attribute `name` lists.
    fn references(&self, name: &str) -> Result<Vec<String>> {
        strings(self.step.after.or(self.step.before).and_then(|a| a.get(name)))
            .iter()
            .map(|address| {
                self.ids.resolve(address).ok_or_else(|| {
                    CallError::enclave(format!("{}: {address} (in its {name}) has no id yet", self.step.address))
                })
            })
            .collect()
    }

    fn tags(&self) -> std::collections::HashMap<String, String> {
        std::collections::HashMap::from([
            (STACK_TAG.to_owned(), self.registry.stack.clone()),
            (ADDRESS_TAG.to_owned(), self.step.address.to_string()),
        ])
    }

    /// `Ok` when `tags` make the existing resource this step's (a create retried after it
    /// reached AWS); an error naming `what` otherwise: nothing of anyone else's is taken over.
    fn claim<'t>(&self, what: &str, tags: impl IntoIterator<Item = (&'t str, &'t str)>) -> Result<()> {
        toolkit::claim(&self.registry.stack, COMPONENT, self.step.address, what, tags)
    }

    async fn wait<F, Fut>(&self, what: &str, check: F) -> Result<()>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<WaitState>>,
    {
        toolkit::wait(self.step.address, what, self.registry.waits, check).await
    }

    async fn create_resource(&self) -> Result<String> {
        match self.kind {
            Kind::Repository => self.create_repository().await,
            Kind::IamRole => {
                let after = self.after().ok_or_else(|| CallError::enclave("nothing to create"))?;
                enclave_aws::iam::create_role(&self.clients.iam, &self.registry.stack, self.step.address, after).await
            }
            Kind::LaunchTemplate => self.create_launch_template().await,
            Kind::Cluster => self.create_cluster().await,
            Kind::OidcProvider => self.create_oidc_provider().await,
            Kind::NodeGroup => self.create_node_group().await,
            Kind::Addon => self.create_addon().await,
            Kind::AccessEntry => self.create_access_entry().await,
        }
    }

    async fn update_resource(&self, id: &str) -> Result<()> {
        toolkit::check_in_place(self.step, self.kind.as_str(), self.kind.updatable(), self.kind.initial())?;
        match self.kind {
            Kind::Repository => self.update_repository(id, false).await,
            Kind::IamRole => {
                let name = self.text("name")?;
                enclave_aws::iam::configure_role(&self.clients.iam, &name, self.step.before, self.after(), false).await
            }
            Kind::LaunchTemplate => {
                toolkit::new_default_version(&self.clients.ec2, id, self.template_data()?).await.map(drop)
            }
            Kind::Cluster => self.update_cluster(id).await,
            Kind::OidcProvider => self.update_oidc_provider(id).await,
            Kind::NodeGroup => self.update_node_group(id).await,
            // Nothing of an add-on changes in place (its version follows EKS's default):
            // `check_in_place` refuses any difference first, so this is never reached.
            Kind::Addon => Err(CallError::enclave(format!("{}: an add-on has nothing to update", self.step.address))),
            Kind::AccessEntry => self.update_access_entry(id).await,
        }
    }

    async fn delete_resource(&self, id: &str) -> Result<()> {
        match self.kind {
            Kind::Repository => self.delete_repository(id).await,
            Kind::IamRole => enclave_aws::iam::delete_role(&self.clients.iam, id_name(id), self.registry.waits).await,
            Kind::LaunchTemplate => toolkit::delete_launch_template(&self.clients.ec2, id, self.registry.waits).await,
            Kind::Cluster => self.delete_cluster(id).await,
            Kind::OidcProvider => self.delete_oidc_provider(id).await,
            Kind::NodeGroup => self.delete_node_group(id).await,
            Kind::Addon => self.delete_addon(id).await,
            Kind::AccessEntry => self.delete_access_entry(id).await,
        }
    }

    async fn delete<F, Fut>(&self, delete: F) -> Result<()>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        let gone = gone_codes(self.kind);
        toolkit::delete(
            self.registry.waits,
            |error| gone.iter().any(|missing| error.is(&Code::NotFound(*missing))),
            delete,
        )
        .await
    }
}

/// The name at the end of an ARN (`arn:...:role/enclave/main-node` → `main-node`), or the id
/// itself.
fn id_name(id: &str) -> &str {
    id.rsplit(['/', ':']).next().unwrap_or(id)
}

/// A node group's id: `<cluster>/<node group>`.
fn node_group_id(id: &str) -> Result<(&str, &str)> {
    id.split_once('/').ok_or_else(|| CallError::enclave(format!("{id} is not a node group id (cluster/name)")))
}

// EC2: node launch templates.
impl Context<'_> {
    /// The launch template data from the desired `data` attribute.
    fn template_data(&self) -> Result<aws_sdk_ec2::types::RequestLaunchTemplateData> {
        use aws_sdk_ec2::types::{
            LaunchTemplateBlockDeviceMappingRequest, LaunchTemplateEbsBlockDeviceRequest,
            LaunchTemplateHttpTokensState, LaunchTemplateInstanceMetadataEndpointState,
            LaunchTemplateInstanceMetadataOptionsRequest, RequestLaunchTemplateData, VolumeType,
        };
        let data = self.after().and_then(|a| a.get("data")).cloned().unwrap_or(Value::Null);
        let metadata = &data["metadata_options"];
        let volume = &data["root_volume"];
        let int = |value: &Value| value.as_i64().and_then(|n| i32::try_from(n).ok());
        Ok(RequestLaunchTemplateData::builder()
            .set_key_name(data["key_name"].as_str().map(str::to_owned))
            .metadata_options(
                LaunchTemplateInstanceMetadataOptionsRequest::builder()
                    .http_endpoint(LaunchTemplateInstanceMetadataEndpointState::from(
                        metadata["http_endpoint"].as_str().unwrap_or("enabled"),
                    ))
                    .http_tokens(LaunchTemplateHttpTokensState::from(
                        metadata["http_tokens"].as_str().unwrap_or("required"),
                    ))
                    .set_http_put_response_hop_limit(int(&metadata["http_put_response_hop_limit"]))
                    .build(),
            )
            .block_device_mappings(
                LaunchTemplateBlockDeviceMappingRequest::builder()
                    .set_device_name(volume["device"].as_str().map(str::to_owned))
                    .ebs(
                        LaunchTemplateEbsBlockDeviceRequest::builder()
                            .set_encrypted(volume["encrypted"].as_bool())
                            .set_volume_type(volume["volume_type"].as_str().map(VolumeType::from))
                            .set_volume_size(int(&volume["size_gib"]))
                            .build(),
                    )
                    .build(),
            )
            .build())
    }

    async fn create_launch_template(&self) -> Result<String> {
        toolkit::create_launch_template(
            &self.clients.ec2,
            &self.registry.stack,
            self.step.address,
            &self.text("name")?,
            self.template_data()?,
            None,
            self.registry.attempts,
        )
        .await
    }
}

// EKS: clusters and node groups; IAM: OIDC providers.
impl Context<'_> {
    /// The ARN of the account key: known from this run's ids when access is planned too, else
    /// read through its alias.
    async fn key_arn(&self) -> Result<String> {
        if let Ok(arn) = self.reference_in("encryption", "key") {
            return Ok(arn);
        }
        let out = self
            .clients
            .kms
            .describe_key()
            .key_id(account_key_alias(&self.registry.stack))
            .send()
            .await
            .map_err(call_error("kms:DescribeKey"))?;
        out.key_metadata()
            .and_then(|key| key.arn())
            .map(str::to_owned)
            .ok_or_else(|| CallError::aws("kms:DescribeKey", None, "no key returned"))
    }

    /// The id of the address at `attribute.field` of the desired resource.
    fn reference_in(&self, attribute: &str, field: &str) -> Result<String> {
        let address = self
            .after()
            .and_then(|a| a.get(attribute))
            .and_then(|value| value.get(field))
            .and_then(Value::as_str)
            .ok_or_else(|| CallError::enclave(format!("{}: {attribute}.{field} is missing", self.step.address)))?;
        self.ids
            .resolve(address)
            .ok_or_else(|| CallError::enclave(format!("{}: {address} has no id yet", self.step.address)))
    }

    fn endpoint(&self) -> (bool, bool) {
        let endpoint = self.after().and_then(|a| a.get("endpoint"));
        let flag = |name: &str| endpoint.and_then(|e| e.get(name)).and_then(Value::as_bool).unwrap_or(false);
        (flag("private"), flag("public"))
    }

    fn logging(&self) -> aws_sdk_eks::types::Logging {
        use aws_sdk_eks::types::{LogSetup, LogType, Logging};
        let wanted: Vec<LogType> =
            strings(self.after().and_then(|a| a.get("logging"))).iter().map(|t| LogType::from(t.as_str())).collect();
        let off: Vec<LogType> =
            crate::resources::LOG_TYPES.iter().map(|t| LogType::from(*t)).filter(|t| !wanted.contains(t)).collect();
        let mut logging =
            Logging::builder().cluster_logging(LogSetup::builder().set_types(Some(wanted)).enabled(true).build());
        if !off.is_empty() {
            logging = logging.cluster_logging(LogSetup::builder().set_types(Some(off)).enabled(false).build());
        }
        logging.build()
    }

    /// The cluster called `name`, when it exists and is ours; an error when it is someone else's.
    async fn existing_cluster(&self, name: &str) -> Result<Option<String>> {
        let out = found(
            self.clients.eks.describe_cluster().name(name).send().await.map_err(call_error("eks:DescribeCluster")),
            Missing::Resource,
        )?;
        let Some(cluster) = out.as_ref().and_then(|out| out.cluster()) else { return Ok(None) };
        self.claim(
            &format!("the cluster {name}"),
            cluster.tags().into_iter().flatten().map(|(k, v)| (k.as_str(), v.as_str())),
        )?;
        Ok(Some(name.to_owned()))
    }

    async fn cluster_status(&self, name: &str) -> Result<WaitState> {
        let out = found(
            self.clients.eks.describe_cluster().name(name).send().await.map_err(call_error("eks:DescribeCluster")),
            Missing::Resource,
        )?;
        let status = out.as_ref().and_then(|o| o.cluster()).and_then(|c| c.status()).map(|s| s.as_str().to_owned());
        Ok(match status.as_deref() {
            Some("ACTIVE") => WaitState::Done,
            Some("FAILED") => WaitState::Failed("FAILED".into()),
            Some(other) => WaitState::Pending(other.to_owned()),
            None => WaitState::Pending("not visible yet".into()),
        })
    }

    async fn create_cluster(&self) -> Result<String> {
        use aws_sdk_eks::types::{EncryptionConfig, Provider as KeyProvider, VpcConfigRequest};
        let eks = &self.clients.eks;
        let name = self.text("name")?;
        let role = self.reference("role")?;
        let subnets = self.references("subnets")?;
        let key = self.key_arn().await?;
        let (private, public) = self.endpoint();
        let token = toolkit::client_token(&self.registry.stack, self.step.address);
        let created = toolkit::create(
            self.step.address,
            self.registry.attempts,
            || self.existing_cluster(&name),
            || async {
                let result = eks
                    .create_cluster()
                    .name(&name)
                    .version(self.text("version")?)
                    .role_arn(&role)
                    .resources_vpc_config(
                        VpcConfigRequest::builder()
                            .set_subnet_ids(Some(subnets.clone()))
                            .endpoint_private_access(private)
                            .endpoint_public_access(public)
                            .build(),
                    )
                    .encryption_config(
                        EncryptionConfig::builder().provider(KeyProvider::builder().key_arn(&key).build()).build(),
                    )
                    .logging(self.logging())
                    .set_tags(Some(self.tags()))
                    .client_request_token(&token)
                    .send()
                    .await
                    .map_err(call_error("eks:CreateCluster"));
                match result {
                    Ok(_) => Ok(name.clone()),
                    Err(error) if error.is(&Code::InUse) => self.existing_cluster(&name).await?.ok_or(error),
                    Err(error) => Err(error),
                }
            },
        )
        .await?;
        self.wait("the cluster to become ACTIVE", || self.cluster_status(&created)).await?;
        Ok(created)
    }

    /// Version first (the control plane before its node groups, which come after it in the
    /// plan), then endpoint access, then logging: EKS takes one kind of update per call.
    async fn update_cluster(&self, name: &str) -> Result<()> {
        use aws_sdk_eks::types::VpcConfigRequest;
        let eks = &self.clients.eks;
        if changed(self.step, "version") {
            eks.update_cluster_version()
                .name(name)
                .version(self.text("version")?)
                .send()
                .await
                .map_err(call_error("eks:UpdateClusterVersion"))?;
            self.wait("the control plane's version update", || self.cluster_status(name)).await?;
        }
        if changed(self.step, "endpoint") {
            let (private, public) = self.endpoint();
            eks.update_cluster_config()
                .name(name)
                .resources_vpc_config(
                    VpcConfigRequest::builder().endpoint_private_access(private).endpoint_public_access(public).build(),
                )
                .send()
                .await
                .map_err(call_error("eks:UpdateClusterConfig"))?;
            self.wait("the endpoint access update", || self.cluster_status(name)).await?;
        }
        if changed(self.step, "logging") {
            eks.update_cluster_config()
                .name(name)
                .logging(self.logging())
                .send()
                .await
                .map_err(call_error("eks:UpdateClusterConfig"))?;
            self.wait("the logging update", || self.cluster_status(name)).await?;
        }
        Ok(())
    }

    async fn delete_cluster(&self, name: &str) -> Result<()> {
        let eks = &self.clients.eks;
        // A cluster with node groups answers "in use": the plan deletes them first, and a
        // straggler is waited for within the bounds.
        let began = std::time::Instant::now();
        loop {
            match eks.delete_cluster().name(name).send().await.map_err(call_error("eks:DeleteCluster")) {
                Ok(_) => break,
                Err(error) if error.is(&Code::NotFound(Missing::Resource)) => return Ok(()),
                Err(error) if error.is(&Code::InUse) && began.elapsed() < self.registry.waits.timeout => {
                    tokio::time::sleep(self.registry.waits.interval).await;
                }
                Err(error) => return Err(error),
            }
        }
        self.wait("the cluster to be deleted", || async {
            let out = found(
                eks.describe_cluster().name(name).send().await.map_err(call_error("eks:DescribeCluster")),
                Missing::Resource,
            )?;
            Ok(match out.as_ref().and_then(|o| o.cluster()).and_then(|c| c.status()) {
                None => WaitState::Done,
                Some(status) => WaitState::Pending(status.as_str().to_owned()),
            })
        })
        .await
    }

    async fn issuer(&self, cluster: &str) -> Result<String> {
        let out = self
            .clients
            .eks
            .describe_cluster()
            .name(cluster)
            .send()
            .await
            .map_err(call_error("eks:DescribeCluster"))?;
        out.cluster()
            .and_then(|c| c.identity())
            .and_then(|i| i.oidc())
            .and_then(|o| o.issuer())
            .map(str::to_owned)
            .ok_or_else(|| CallError::enclave(format!("{}: cluster {cluster} has no OIDC issuer", self.step.address)))
    }

    async fn create_oidc_provider(&self) -> Result<String> {
        let iam = &self.clients.iam;
        let cluster = self.reference("cluster")?;
        let issuer = self.issuer(&cluster).await?;
        let tag = |key: &str, value: &str| {
            aws_sdk_iam::types::Tag::builder()
                .key(key)
                .value(value)
                .build()
                .map_err(|e| CallError::enclave(e.to_string()))
        };
        let created = iam
            .create_open_id_connect_provider()
            .url(&issuer)
            .set_client_id_list(Some(strings(self.after().and_then(|a| a.get("client_ids")))))
            .tags(tag(STACK_TAG, &self.registry.stack)?)
            .tags(tag(ADDRESS_TAG, &self.step.address.to_string())?)
            .send()
            .await
            .map_err(call_error("iam:CreateOpenIDConnectProvider"));
        match created {
            Ok(out) => out
                .open_id_connect_provider_arn()
                .map(str::to_owned)
                .ok_or_else(|| CallError::aws("iam:CreateOpenIDConnectProvider", None, "no ARN returned")),
            Err(error) if error.is(&Code::AlreadyExists(Existing::Entity)) => {
                // The provider of this issuer exists: ours when it carries our address.
                let host = issuer.trim_start_matches("https://");
                let arn = format!("arn:{}:iam::{}:oidc-provider/{host}", self.partition(), self.account_id()?);
                let out = iam
                    .get_open_id_connect_provider()
                    .open_id_connect_provider_arn(&arn)
                    .send()
                    .await
                    .map_err(call_error("iam:GetOpenIDConnectProvider"))?;
                self.claim(&format!("an OIDC provider for {host}"), out.tags().iter().map(|t| (t.key(), t.value())))?;
                Ok(arn)
            }
            Err(error) => Err(error),
        }
    }

    fn partition(&self) -> &str {
        self.registry.partition.as_str()
    }

    fn account_id(&self) -> Result<String> {
        self.registry
            .account_ids
            .get(self.step.address.account())
            .cloned()
            .ok_or_else(|| CallError::enclave(format!("{}: the account id is not known", self.step.address)))
    }

    async fn update_oidc_provider(&self, arn: &str) -> Result<()> {
        let iam = &self.clients.iam;
        let wanted: std::collections::BTreeSet<String> =
            strings(self.after().and_then(|a| a.get("client_ids"))).into_iter().collect();
        let had: std::collections::BTreeSet<String> =
            strings(self.step.before.and_then(|b| b.get("client_ids"))).into_iter().collect();
        for id in wanted.difference(&had) {
            iam.add_client_id_to_open_id_connect_provider()
                .open_id_connect_provider_arn(arn)
                .client_id(id)
                .send()
                .await
                .map_err(call_error("iam:AddClientIDToOpenIDConnectProvider"))?;
        }
        for id in had.difference(&wanted) {
            iam.remove_client_id_from_open_id_connect_provider()
                .open_id_connect_provider_arn(arn)
                .client_id(id)
                .send()
                .await
                .map_err(call_error("iam:RemoveClientIDFromOpenIDConnectProvider"))?;
        }
        Ok(())
    }

    async fn delete_oidc_provider(&self, arn: &str) -> Result<()> {
        let iam = &self.clients.iam;
        self.delete(|| async {
            iam.delete_open_id_connect_provider()
                .open_id_connect_provider_arn(arn)
                .send()
                .await
                .map(drop)
                .map_err(call_error("iam:DeleteOpenIDConnectProvider"))
        })
        .await
    }

    async fn node_group_status(&self, cluster: &str, name: &str) -> Result<WaitState> {
        let out = found(
            self.clients
                .eks
                .describe_nodegroup()
                .cluster_name(cluster)
                .nodegroup_name(name)
                .send()
                .await
                .map_err(call_error("eks:DescribeNodegroup")),
            Missing::Resource,
        )?;
        let status = out.as_ref().and_then(|o| o.nodegroup()).and_then(|n| n.status()).map(|s| s.as_str().to_owned());
        Ok(match status.as_deref() {
            Some("ACTIVE") => WaitState::Done,
            Some(failed @ ("CREATE_FAILED" | "DEGRADED")) => WaitState::Failed(failed.to_owned()),
            Some(other) => WaitState::Pending(other.to_owned()),
            None => WaitState::Pending("not visible yet".into()),
        })
    }

    fn scaling(&self, desired: Option<i32>) -> aws_sdk_eks::types::NodegroupScalingConfig {
        let scaling = self.after().and_then(|a| a.get("scaling"));
        let int =
            |name: &str| scaling.and_then(|s| s.get(name)).and_then(Value::as_i64).and_then(|n| i32::try_from(n).ok());
        let (min, max) = (int("min").unwrap_or(0), int("max").unwrap_or(1));
        aws_sdk_eks::types::NodegroupScalingConfig::builder()
            .min_size(min)
            .max_size(max)
            .set_desired_size(desired.map(|d| d.clamp(min, max)))
            .build()
    }

    fn group_tags(&self) -> std::collections::HashMap<String, String> {
        let mut tags = self.tags();
        if let Some(wanted) = self.after().and_then(|a| a.get("tags")).and_then(Value::as_object) {
            for (key, value) in wanted {
                tags.insert(key.clone(), value.as_str().unwrap_or_default().to_owned());
            }
        }
        tags
    }

    async fn create_node_group(&self) -> Result<String> {
        use aws_sdk_eks::types::LaunchTemplateSpecification;
        let eks = &self.clients.eks;
        let cluster = self.reference("cluster")?;
        let name = self.text("name")?;
        let role = self.reference("node_role")?;
        let template = self.reference("launch_template")?;
        let subnets = self.references("subnets")?;
        let desired = self
            .after()
            .and_then(|a| a.get("desired_size"))
            .and_then(Value::as_i64)
            .and_then(|n| i32::try_from(n).ok());
        let id = format!("{cluster}/{name}");
        let lookup = || async {
            let out = found(
                eks.describe_nodegroup()
                    .cluster_name(&cluster)
                    .nodegroup_name(&name)
                    .send()
                    .await
                    .map_err(call_error("eks:DescribeNodegroup")),
                Missing::Resource,
            )?;
            let Some(group) = out.as_ref().and_then(|o| o.nodegroup()) else { return Ok(None) };
            self.claim(
                &format!("the node group {name}"),
                group.tags().into_iter().flatten().map(|(k, v)| (k.as_str(), v.as_str())),
            )?;
            Ok(Some(id.clone()))
        };
        let created = toolkit::create(self.step.address, self.registry.attempts, lookup, || async {
            let result = eks
                .create_nodegroup()
                .cluster_name(&cluster)
                .nodegroup_name(&name)
                .set_subnets(Some(subnets.clone()))
                .node_role(&role)
                .scaling_config(self.scaling(desired))
                .set_instance_types(Some(strings(self.after().and_then(|a| a.get("instance_types")))))
                .launch_template(LaunchTemplateSpecification::builder().id(&template).build())
                .version(self.text("version")?)
                .set_tags(Some(self.group_tags()))
                .client_request_token(toolkit::client_token(&self.registry.stack, self.step.address))
                .send()
                .await
                .map_err(call_error("eks:CreateNodegroup"));
            match result {
                Ok(_) => Ok(id.clone()),
                Err(error) if error.is(&Code::InUse) => lookup().await?.ok_or(error),
                Err(error) => Err(error),
            }
        })
        .await?;
        self.wait("the node group to become ACTIVE", || self.node_group_status(&cluster, &name)).await?;
        Ok(created)
    }

    async fn update_node_group(&self, id: &str) -> Result<()> {
        let eks = &self.clients.eks;
        let (cluster, name) = node_group_id(id)?;
        if changed(self.step, "version") {
            eks.update_nodegroup_version()
                .cluster_name(cluster)
                .nodegroup_name(name)
                .version(self.text("version")?)
                .send()
                .await
                .map_err(call_error("eks:UpdateNodegroupVersion"))?;
            self.wait("the node group's version update", || self.node_group_status(cluster, name)).await?;
        }
        if changed(self.step, "scaling") {
            // The current size stays (the autoscaler owns it), moved inside the new bounds.
            let current = eks
                .describe_nodegroup()
                .cluster_name(cluster)
                .nodegroup_name(name)
                .send()
                .await
                .map_err(call_error("eks:DescribeNodegroup"))?;
            let desired = current.nodegroup().and_then(|n| n.scaling_config()).and_then(|s| s.desired_size());
            eks.update_nodegroup_config()
                .cluster_name(cluster)
                .nodegroup_name(name)
                .scaling_config(self.scaling(desired))
                .send()
                .await
                .map_err(call_error("eks:UpdateNodegroupConfig"))?;
            self.wait("the node group's scaling update", || self.node_group_status(cluster, name)).await?;
        }
        if changed(self.step, "tags") {
            let arn = eks
                .describe_nodegroup()
                .cluster_name(cluster)
                .nodegroup_name(name)
                .send()
                .await
                .map_err(call_error("eks:DescribeNodegroup"))?
                .nodegroup()
                .and_then(|n| n.nodegroup_arn())
                .map(str::to_owned)
                .ok_or_else(|| CallError::aws("eks:DescribeNodegroup", None, "no node group ARN"))?;
            eks.tag_resource()
                .resource_arn(&arn)
                .set_tags(Some(self.group_tags()))
                .send()
                .await
                .map_err(call_error("eks:TagResource"))?;
            let wanted = self.group_tags();
            let stale: Vec<String> = self
                .step
                .before
                .and_then(|b| b.get("tags"))
                .and_then(Value::as_object)
                .map(|had| had.keys().filter(|key| !wanted.contains_key(*key)).cloned().collect())
                .unwrap_or_default();
            if !stale.is_empty() {
                eks.untag_resource()
                    .resource_arn(&arn)
                    .set_tag_keys(Some(stale))
                    .send()
                    .await
                    .map_err(call_error("eks:UntagResource"))?;
            }
        }
        Ok(())
    }

    async fn delete_node_group(&self, id: &str) -> Result<()> {
        let eks = &self.clients.eks;
        let (cluster, name) = node_group_id(id)?;
        let deleted = eks
            .delete_nodegroup()
            .cluster_name(cluster)
            .nodegroup_name(name)
            .send()
            .await
            .map_err(call_error("eks:DeleteNodegroup"));
        match deleted {
            Ok(_) => {}
            Err(error) if error.is(&Code::NotFound(Missing::Resource)) => return Ok(()),
            Err(error) => return Err(error),
        }
        self.wait("the node group to be deleted", || async {
            Ok(match self.node_group_status(cluster, name).await? {
                WaitState::Pending(state) if state == "not visible yet" => WaitState::Done,
                WaitState::Pending(state) | WaitState::Failed(state) => WaitState::Pending(state),
                WaitState::Done => WaitState::Pending("ACTIVE".into()),
            })
        })
        .await
    }
}

/// An add-on's id: `<cluster>/<add-on>`.
fn addon_id(id: &str) -> Result<(&str, &str)> {
    id.split_once('/').ok_or_else(|| CallError::enclave(format!("{id} is not an add-on id (cluster/name)")))
}

/// An access entry's id: `<cluster>|<principal ARN>`.
fn entry_id(id: &str) -> Result<(&str, &str)> {
    id.split_once('|').ok_or_else(|| CallError::enclave(format!("{id} is not an access entry id (cluster|principal)")))
}

// EKS: add-ons and access entries.
impl Context<'_> {
    async fn addon_status(&self, cluster: &str, name: &str) -> Result<Option<String>> {
        let out = found(
            self.clients
                .eks
                .describe_addon()
                .cluster_name(cluster)
                .addon_name(name)
                .send()
                .await
                .map_err(call_error("eks:DescribeAddon")),
            Missing::Resource,
        )?;
        Ok(out.and_then(|o| o.addon().and_then(|a| a.status()).map(|s| s.as_str().to_owned())))
    }

    async fn create_addon(&self) -> Result<String> {
        let eks = &self.clients.eks;
        let cluster = self.reference("cluster")?;
        let name = self.text("name")?;
        let id = format!("{cluster}/{name}");
        let lookup = || async {
            let out = found(
                eks.describe_addon()
                    .cluster_name(&cluster)
                    .addon_name(&name)
                    .send()
                    .await
                    .map_err(call_error("eks:DescribeAddon")),
                Missing::Resource,
            )?;
            let Some(addon) = out.as_ref().and_then(|o| o.addon()) else { return Ok(None) };
            self.claim(
                &format!("the add-on {name}"),
                addon.tags().into_iter().flatten().map(|(k, v)| (k.as_str(), v.as_str())),
            )?;
            Ok(Some(id.clone()))
        };
        let created = toolkit::create(self.step.address, self.registry.attempts, lookup, || async {
            let result = eks
                .create_addon()
                .cluster_name(&cluster)
                .addon_name(&name)
                // A self-managed copy EKS installed with the cluster is taken over.
                .resolve_conflicts(aws_sdk_eks::types::ResolveConflicts::Overwrite)
                .set_tags(Some(self.tags()))
                .client_request_token(toolkit::client_token(&self.registry.stack, self.step.address))
                .send()
                .await
                .map_err(call_error("eks:CreateAddon"));
            match result {
                Ok(_) => Ok(id.clone()),
                Err(error) if error.is(&Code::InUse) => lookup().await?.ok_or(error),
                Err(error) => Err(error),
            }
        })
        .await?;
        self.wait(&format!("the {name} add-on to become ACTIVE"), || async {
            Ok(match self.addon_status(&cluster, &name).await?.as_deref() {
                Some("ACTIVE") => WaitState::Done,
                Some(failed @ ("CREATE_FAILED" | "UPDATE_FAILED")) => WaitState::Failed(failed.to_owned()),
                Some(other) => WaitState::Pending(other.to_owned()),
                None => WaitState::Pending("not visible yet".into()),
            })
        })
        .await?;
        Ok(created)
    }

    async fn delete_addon(&self, id: &str) -> Result<()> {
        let (cluster, name) = addon_id(id)?;
        let deleted = self
            .clients
            .eks
            .delete_addon()
            .cluster_name(cluster)
            .addon_name(name)
            .send()
            .await
            .map_err(call_error("eks:DeleteAddon"));
        match deleted {
            Ok(_) => {}
            Err(error) if error.is(&Code::NotFound(Missing::Resource)) => return Ok(()),
            Err(error) => return Err(error),
        }
        self.wait(&format!("the {name} add-on to be deleted"), || async {
            Ok(match self.addon_status(cluster, name).await? {
                None => WaitState::Done,
                Some(status) => WaitState::Pending(status),
            })
        })
        .await
    }

    fn access_scope(&self) -> aws_sdk_eks::types::AccessScope {
        use aws_sdk_eks::types::{AccessScope, AccessScopeType};
        let namespaces = strings(self.after().and_then(|a| a.get("policy")).and_then(|p| p.get("namespaces")));
        if namespaces.is_empty() {
            AccessScope::builder().r#type(AccessScopeType::Cluster).build()
        } else {
            AccessScope::builder().r#type(AccessScopeType::Namespace).set_namespaces(Some(namespaces)).build()
        }
    }

    fn policy_arn(attributes: Option<&Attributes>) -> Option<String> {
        attributes.and_then(|a| a.get("policy")).and_then(|p| p.get("arn")).and_then(Value::as_str).map(str::to_owned)
    }

    async fn associate(&self, cluster: &str, principal: &str) -> Result<()> {
        let arn = Self::policy_arn(self.after())
            .ok_or_else(|| CallError::enclave(format!("{}: policy.arn is missing", self.step.address)))?;
        self.clients
            .eks
            .associate_access_policy()
            .cluster_name(cluster)
            .principal_arn(principal)
            .policy_arn(arn)
            .access_scope(self.access_scope())
            .send()
            .await
            .map(drop)
            .map_err(call_error("eks:AssociateAccessPolicy"))
    }

    async fn create_access_entry(&self) -> Result<String> {
        let eks = &self.clients.eks;
        let cluster = self.reference("cluster")?;
        let principal = self.text("principal")?;
        let id = format!("{cluster}|{principal}");
        let lookup = || async {
            let out = found(
                eks.describe_access_entry()
                    .cluster_name(&cluster)
                    .principal_arn(&principal)
                    .send()
                    .await
                    .map_err(call_error("eks:DescribeAccessEntry")),
                Missing::Resource,
            )?;
            let Some(entry) = out.as_ref().and_then(|o| o.access_entry()) else { return Ok(None) };
            self.claim(
                &format!("an access entry for {principal}"),
                entry.tags().into_iter().flatten().map(|(k, v)| (k.as_str(), v.as_str())),
            )?;
            Ok(Some(id.clone()))
        };
        let created = toolkit::create(self.step.address, self.registry.attempts, lookup, || async {
            let result = eks
                .create_access_entry()
                .cluster_name(&cluster)
                .principal_arn(&principal)
                .set_tags(Some(self.tags()))
                .client_request_token(toolkit::client_token(&self.registry.stack, self.step.address))
                .send()
                .await
                .map_err(call_error("eks:CreateAccessEntry"));
            match result {
                Ok(_) => Ok(id.clone()),
                Err(error) if error.is(&Code::InUse) => lookup().await?.ok_or(error),
                Err(error) => Err(error),
            }
        })
        .await?;
        self.associate(&cluster, &principal).await?;
        Ok(created)
    }

    /// The wanted policy first, then every other one removed: the role never loses access
    /// between, and keeps nothing it was given by hand.
    async fn update_access_entry(&self, id: &str) -> Result<()> {
        let (cluster, principal) = entry_id(id)?;
        self.associate(cluster, principal).await?;
        let wanted = Self::policy_arn(self.after());
        let eks = &self.clients.eks;
        let associated = eks
            .list_associated_access_policies()
            .cluster_name(cluster)
            .principal_arn(principal)
            .send()
            .await
            .map_err(call_error("eks:ListAssociatedAccessPolicies"))?;
        for other in associated.associated_access_policies().iter().filter_map(|p| p.policy_arn()) {
            if Some(other) == wanted.as_deref() {
                continue;
            }
            found(
                eks.disassociate_access_policy()
                    .cluster_name(cluster)
                    .principal_arn(principal)
                    .policy_arn(other)
                    .send()
                    .await
                    .map(drop)
                    .map_err(call_error("eks:DisassociateAccessPolicy")),
                Missing::Resource,
            )?;
        }
        Ok(())
    }

    async fn delete_access_entry(&self, id: &str) -> Result<()> {
        let (cluster, principal) = entry_id(id)?;
        let eks = &self.clients.eks;
        self.delete(|| async {
            eks.delete_access_entry()
                .cluster_name(cluster)
                .principal_arn(principal)
                .send()
                .await
                .map(drop)
                .map_err(call_error("eks:DeleteAccessEntry"))
        })
        .await
    }
}

// ECR: repositories.
impl Context<'_> {
    /// The repository called `name` when it exists and is ours; an error when it exists and is
    /// not.
    async fn existing_repository(&self, name: &str) -> Result<Option<String>> {
        let ecr = &self.clients.ecr;
        let described = found(
            ecr.describe_repositories()
                .repository_names(name)
                .send()
                .await
                .map_err(call_error("ecr:DescribeRepositories")),
            Missing::Repository,
        )?;
        let Some(arn) = described
            .as_ref()
            .and_then(|out| out.repositories().first())
            .and_then(|repository| repository.repository_arn())
        else {
            return Ok(None);
        };
        let tags = ecr
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map_err(call_error("ecr:ListTagsForResource"))?;
        self.claim(&format!("the repository {name}"), tags.tags().iter().map(|t| (t.key(), t.value())))?;
        Ok(Some(name.to_owned()))
    }

    async fn create_repository(&self) -> Result<String> {
        let name = self.text("name")?;
        let tag = |key: &str, value: &str| {
            Tag::builder().key(key).value(value).build().map_err(|error| CallError::enclave(error.to_string()))
        };
        let tags = [tag(STACK_TAG, &self.registry.stack)?, tag(ADDRESS_TAG, &self.step.address.to_string())?];
        let encryption = EncryptionConfiguration::builder()
            .encryption_type(EncryptionType::Kms)
            .kms_key(account_key_alias(&self.registry.stack))
            .build()
            .map_err(|error| CallError::enclave(error.to_string()))?;
        let after = self.after();
        let flag = |attribute: &str| after.and_then(|a| a.get(attribute)).and_then(Value::as_bool).unwrap_or(false);
        let mutability = ImageTagMutability::from(self.text("tag_mutability")?.as_str());
        let ecr = &self.clients.ecr;
        let created = toolkit::create(
            self.step.address,
            self.registry.attempts,
            || self.existing_repository(&name),
            || async {
                let result = ecr
                    .create_repository()
                    .repository_name(&name)
                    .image_tag_mutability(mutability.clone())
                    .image_scanning_configuration(
                        ImageScanningConfiguration::builder().scan_on_push(flag("scan_on_push")).build(),
                    )
                    .encryption_configuration(encryption.clone())
                    .set_tags(Some(tags.to_vec()))
                    .send()
                    .await
                    .map_err(call_error("ecr:CreateRepository"));
                match result {
                    Ok(_) => Ok(name.clone()),
                    // A create that reached ECR before: ours is adopted, anyone else's refused.
                    Err(error) if error.is(&Code::AlreadyExists(Existing::Repository)) => {
                        self.existing_repository(&name).await?.ok_or(error)
                    }
                    Err(error) => Err(error),
                }
            },
        )
        .await?;
        self.update_repository(&created, true).await?;
        Ok(created)
    }

    /// Brings the repository's settings to the plan: every one after a create (an adopted
    /// repository may differ), the changed ones after an update.
    async fn update_repository(&self, name: &str, all: bool) -> Result<()> {
        let ecr = &self.clients.ecr;
        let after = self.after();
        if all || changed(self.step, "scan_on_push") {
            let scan = after.and_then(|a| a.get("scan_on_push")).and_then(Value::as_bool).unwrap_or(false);
            // The SDK leaves `scanOnPush: false` out of the request (the field's default); ECR
            // reads that as false, moto as "no change": the body says it explicitly.
            let body = serde_json::json!({
                "repositoryName": name,
                "imageScanningConfiguration": { "scanOnPush": scan }
            })
            .to_string();
            ecr.put_image_scanning_configuration()
                .repository_name(name)
                .image_scanning_configuration(ImageScanningConfiguration::builder().scan_on_push(scan).build())
                .customize()
                .mutate_request(move |request| {
                    request.headers_mut().insert("content-length", body.len().to_string());
                    *request.body_mut() = aws_smithy_types::body::SdkBody::from(body.clone());
                })
                .send()
                .await
                .map_err(call_error("ecr:PutImageScanningConfiguration"))?;
        }
        if all || changed(self.step, "tag_mutability") {
            ecr.put_image_tag_mutability()
                .repository_name(name)
                .image_tag_mutability(ImageTagMutability::from(self.text("tag_mutability")?.as_str()))
                .send()
                .await
                .map_err(call_error("ecr:PutImageTagMutability"))?;
        }
        if all || changed(self.step, "lifecycle") {
            match policy_text(after, "lifecycle") {
                Some(text) => ecr
                    .put_lifecycle_policy()
                    .repository_name(name)
                    .lifecycle_policy_text(text)
                    .send()
                    .await
                    .map(drop)
                    .map_err(call_error("ecr:PutLifecyclePolicy"))?,
                None => found(
                    ecr.delete_lifecycle_policy()
                        .repository_name(name)
                        .send()
                        .await
                        .map(drop)
                        .map_err(call_error("ecr:DeleteLifecyclePolicy")),
                    Missing::RepositoryConfiguration,
                )
                .map(drop)?,
            }
        }
        if all || changed(self.step, "policy") {
            match policy_text(after, "policy") {
                Some(text) => ecr
                    .set_repository_policy()
                    .repository_name(name)
                    .policy_text(text)
                    .send()
                    .await
                    .map(drop)
                    .map_err(call_error("ecr:SetRepositoryPolicy"))?,
                None => found(
                    ecr.delete_repository_policy()
                        .repository_name(name)
                        .send()
                        .await
                        .map(drop)
                        .map_err(call_error("ecr:DeleteRepositoryPolicy")),
                    Missing::RepositoryConfiguration,
                )
                .map(drop)?,
            }
        }
        Ok(())
    }

    async fn delete_repository(&self, name: &str) -> Result<()> {
        let ecr = &self.clients.ecr;
        let force = self.registry.force_images;
        if !force {
            let images = found(
                ecr.list_images()
                    .repository_name(name)
                    .max_results(1000)
                    .send()
                    .await
                    .map_err(call_error("ecr:ListImages")),
                Missing::Repository,
            )?;
            let count = images.as_ref().map_or(0, |out| out.image_ids().len());
            if count > 0 {
                let more = if images.as_ref().and_then(|out| out.next_token()).is_some() { " or more" } else { "" };
                return Err(CallError::enclave(format!(
                    "{}: the repository {name} holds {count}{more} image(s); deleting it would delete them: \
                     pass --force-images to delete them with it",
                    self.step.address
                )));
            }
        }
        self.delete(|| async {
            ecr.delete_repository()
                .repository_name(name)
                .force(force)
                .send()
                .await
                .map(drop)
                .map_err(call_error("ecr:DeleteRepository"))
        })
        .await
    }
}

//! Applying access: the [`Provider`] that creates, updates and deletes every access [`Kind`]
//! through KMS, S3, CloudWatch Logs, SSM, IAM, EC2 and CloudTrail, with the toolkit's
//! guarantees ([`enclave_aws::reconcile`]):
//!
//! - everything is tagged with [`STACK_TAG`] and [`ADDRESS_TAG`] when it is made (KMS keys,
//!   log groups, documents, IAM, EC2 and trails take tags on create; a bucket gets them right
//!   after, before any other setting);
//! - a create that may have reached AWS is looked up before it is tried again (EC2 also sends a
//!   `ClientToken`), and a name that exists already is adopted only when it carries this stack's
//!   tags, never otherwise;
//! - deletes treat the kind's own "not found" as done; a bucket is emptied first (only our
//!   buckets are ever deleted: they are the ones in the plan), a key is scheduled for deletion
//!   with the shortest window KMS allows, an instance is waited for until terminated;
//! - an attribute the kind cannot change in place is refused, never skipped.

use std::collections::BTreeMap;
use std::future::Future;

use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, HttpTokensState, InstanceMetadataEndpointState, InstanceMetadataOptionsRequest,
    InstanceNetworkInterfaceSpecification, LaunchTemplateBlockDeviceMappingRequest,
    LaunchTemplateEbsBlockDeviceRequest, LaunchTemplateHttpTokensState,
    LaunchTemplateIamInstanceProfileSpecificationRequest, LaunchTemplateInstanceMetadataEndpointState,
    LaunchTemplateInstanceMetadataOptionsRequest, LaunchTemplateInstanceNetworkInterfaceSpecificationRequest,
    LaunchTemplateSpecification, RequestLaunchTemplateData, ResourceType, TagSpecification, VolumeType,
};
use enclave_aws::reconcile::{self as toolkit, WaitState, Waits, client_token};
use enclave_core::Address;
use enclave_core::plan::{Attributes, Change};
use enclave_core::reconcile::{Ids, Operation, Provider, Step};
use serde_json::Value;

use crate::clients::{CallError, Clients, Code, Existing, Missing, call_error};
use crate::kind::Kind;
use crate::model::LIFECYCLE_RULE;
use crate::observe::arn_name;
use enclave_core::address::{ADDRESS_TAG, STACK_TAG};

type Result<T> = std::result::Result<T, CallError>;

/// One account the provider works in.
#[derive(Clone, Debug)]
pub struct Account {
    /// Its clients.
    pub clients: Clients,
    /// Its 12-digit id.
    pub id: String,
}

/// The access provider: one [`Account`] per account name.
#[derive(Clone, Debug)]
pub struct Access {
    stack: String,
    region: String,
    partition: String,
    accounts: BTreeMap<String, Account>,
    waits: Waits,
    attempts: u32,
}

impl Access {
    /// A provider for `stack` in `region` over the given accounts.
    pub fn new(stack: &str, region: &str, accounts: BTreeMap<String, Account>) -> Self {
        Access {
            stack: stack.to_owned(),
            region: region.to_owned(),
            partition: enclave_core::region::partition(region).to_owned(),
            accounts,
            waits: Waits::default(),
            attempts: 10,
        }
    }

    /// Sets the wait bounds.
    #[must_use]
    pub fn waits(mut self, waits: Waits) -> Self {
        self.waits = waits;
        self
    }

    /// The account called `name`.
    pub fn account(&self, name: &str) -> Option<&Account> {
        self.accounts.get(name)
    }
}

fn text<'a>(attributes: Option<&'a Attributes>, name: &str) -> Option<&'a str> {
    attributes?.get(name)?.as_str()
}

fn flag(attributes: Option<&Attributes>, name: &str) -> bool {
    attributes.and_then(|a| a.get(name)).and_then(Value::as_bool).unwrap_or(false)
}

fn document(attributes: Option<&Attributes>, name: &str) -> String {
    attributes.and_then(|a| a.get(name)).map(Value::to_string).unwrap_or_default()
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

fn changed(step: &Step<'_>, name: &str) -> bool {
    step.before.and_then(|b| b.get(name)) != step.after.and_then(|a| a.get(name))
}

fn no_retry_ec2() -> aws_sdk_ec2::config::Builder {
    aws_sdk_ec2::config::Builder::default().retry_config(aws_sdk_ec2::config::retry::RetryConfig::disabled())
}

/// Whether a tag list (key, value) carries this stack's tag.
fn carries_stack<'t>(stack: &str, mut tags: impl Iterator<Item = (&'t str, &'t str)>) -> bool {
    tags.any(|(key, value)| key == STACK_TAG && value == stack)
}

/// What "not found" says that a resource of `kind` is already gone.
fn gone_codes(kind: Kind) -> &'static [Missing] {
    match kind {
        Kind::KmsKey | Kind::KmsAlias => &[Missing::Key],
        Kind::LogGroup => &[Missing::Resource],
        Kind::Bucket => &[Missing::Bucket],
        Kind::SessionDocument => &[Missing::Document],
        Kind::IamRole | Kind::InstanceProfile | Kind::IamPolicy => &[Missing::Entity],
        Kind::SecurityGroup => &[Missing::SecurityGroup],
        Kind::LaunchTemplate => &[Missing::LaunchTemplate],
        Kind::Instance => &[Missing::Instance],
        Kind::Trail => &[Missing::Trail],
    }
}

/// A step's context: the provider, the account and the known ids.
struct Context<'a> {
    access: &'a Access,
    account: &'a Account,
    step: &'a Step<'a>,
    ids: &'a Ids,
    kind: Kind,
}

impl Provider for Access {
    type Error = CallError;

    /// Every access resource has a name unique in its account (buckets: in the partition), so
    /// two of one kind in one account may collide; nothing collides across accounts.
    fn collides(&self, create: &Change, delete: &Change) -> bool {
        create.address.account() == delete.address.account() && create.address.kind() == delete.address.kind()
    }

    async fn run(&self, step: &Step<'_>, ids: &Ids) -> Result<Option<String>> {
        let account = enclave_aws::reconcile::account_of(&self.accounts, step)?;
        let kind: Kind = enclave_aws::reconcile::kind_of(step)?;
        let context = Context { access: self, account, step, ids, kind };
        match step.operation {
            Operation::Create => context.create_resource().await.map(Some),
            Operation::Update => context.update_resource().await,
            Operation::Delete => context.delete_resource().await.map(|()| None),
        }
    }
}

impl Context<'_> {
    fn address(&self) -> &Address {
        self.step.address
    }

    fn clients(&self) -> &Clients {
        &self.account.clients
    }

    fn stack(&self) -> &str {
        &self.access.stack
    }

    fn after(&self) -> Option<&Attributes> {
        self.step.after
    }

    /// The desired (or, for a delete, the last known) attribute `name` as text.
    fn text(&self, name: &str) -> Result<String> {
        text(self.step.after.or(self.step.before), name)
            .map(str::to_owned)
            .ok_or_else(|| CallError::enclave(format!("{}: attribute {name} is missing", self.address())))
    }

    /// The id of the resource whose address is `address`.
    fn resolve(&self, address: &str, what: &str) -> Result<String> {
        self.ids
            .resolve(address)
            .ok_or_else(|| CallError::enclave(format!("{}: {address} (its {what}) has no id yet", self.address())))
    }

    /// The id of the resource whose address is the desired attribute `name`.
    fn reference(&self, name: &str) -> Result<String> {
        let address = self.text(name)?;
        self.resolve(&address, name)
    }

    fn own_id(&self) -> Result<String> {
        self.ids.get(self.address()).ok_or_else(|| CallError::enclave(format!("{} has no known id", self.address())))
    }

    fn owned_elsewhere(&self, what: &str) -> CallError {
        CallError::enclave(format!(
            "{}: {what} exists without this stack's tags; enclave will not take it over",
            self.address()
        ))
    }

    async fn create<L, LF, C, CF>(&self, lookup: L, create: C) -> Result<String>
    where
        L: Fn() -> LF,
        LF: Future<Output = Result<Option<String>>>,
        C: Fn() -> CF,
        CF: Future<Output = Result<String>>,
    {
        toolkit::create(self.address(), self.access.attempts, lookup, create).await
    }

    async fn wait<F, Fut>(&self, what: &str, check: F) -> Result<()>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<WaitState>>,
    {
        toolkit::wait(self.address(), what, self.access.waits, check).await
    }

    async fn delete<F, Fut>(&self, delete: F) -> Result<()>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        let gone = gone_codes(self.kind);
        toolkit::delete(
            self.access.waits,
            |error| gone.iter().any(|missing| error.is(&Code::NotFound(*missing))),
            delete,
        )
        .await
    }

    /// Retries `call` while AWS has not yet seen a role, key or policy made moments ago (IAM and
    /// KMS are eventually consistent), within the wait bounds.
    async fn settled<T, F, Fut>(&self, codes: &[&str], call: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        self.settled_within(self.access.waits.timeout, codes, call).await
    }

    /// [`Context::settled`] giving up after `bound` (or the wait bound, when shorter).
    async fn settled_within<T, F, Fut>(&self, bound: std::time::Duration, codes: &[&str], call: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let bound = bound.min(self.access.waits.timeout);
        let began = std::time::Instant::now();
        loop {
            match call().await {
                Err(error) if codes.iter().any(|code| error.is(&Code::parse(code))) && began.elapsed() < bound => {
                    tracing::debug!(address = %self.address(), %error, "not visible yet; trying again");
                    tokio::time::sleep(self.access.waits.interval.min(std::time::Duration::from_secs(2))).await;
                }
                other => return other,
            }
        }
    }

    fn arn(&self, service: &str, resource: &str) -> String {
        format!("arn:{}:{service}:{}:{}:{resource}", self.access.partition, self.access.region, self.account.id)
    }

    fn ec2_tags(&self, resource_type: ResourceType) -> TagSpecification {
        let tag = |key: &str, value: &str| aws_sdk_ec2::types::Tag::builder().key(key).value(value).build();
        let mut builder = TagSpecification::builder()
            .resource_type(resource_type)
            .tags(tag(STACK_TAG, self.stack()))
            .tags(tag(ADDRESS_TAG, &self.address().to_string()));
        if let Some(name) = self.after().and_then(|a| a.get("tags")).and_then(|t| t.get("Name")).and_then(Value::as_str)
        {
            builder = builder.tags(tag("Name", name));
        }
        builder.build()
    }

    fn tag_pairs(&self) -> [(&str, String); 2] {
        [(STACK_TAG, self.stack().to_owned()), (ADDRESS_TAG, self.address().to_string())]
    }

    async fn create_resource(&self) -> Result<String> {
        match self.kind {
            Kind::KmsKey => self.create_key().await,
            Kind::KmsAlias => self.create_alias().await,
            Kind::LogGroup => self.create_log_group().await,
            Kind::Bucket => self.create_bucket().await,
            Kind::SessionDocument => self.create_document().await,
            Kind::IamRole => self.create_role().await,
            Kind::InstanceProfile => self.create_instance_profile().await,
            Kind::IamPolicy => self.create_policy().await,
            Kind::SecurityGroup => self.create_security_group().await,
            Kind::LaunchTemplate => self.create_launch_template().await,
            Kind::Instance => self.create_instance().await,
            Kind::Trail => self.create_trail().await,
        }
    }

    async fn update_resource(&self) -> Result<Option<String>> {
        toolkit::check_in_place(self.step, self.kind.as_str(), self.kind.updatable(), &[])?;
        let id = self.own_id()?;
        match self.kind {
            Kind::KmsKey => self.update_key(&id).await?,
            Kind::KmsAlias => self.update_alias(&id).await?,
            Kind::LogGroup => self.update_log_group(&id).await?,
            Kind::Bucket => self.configure_bucket(&id, false).await?,
            Kind::SessionDocument => self.update_document(&id).await?,
            Kind::IamRole => self.configure_role(arn_name(&id), false).await?,
            Kind::InstanceProfile => self.update_instance_profile(&id).await?,
            Kind::IamPolicy => self.update_policy(&id).await?,
            Kind::SecurityGroup => self.update_security_group(&id).await?,
            Kind::LaunchTemplate => self.update_launch_template(&id).await?,
            Kind::Instance => self.update_instance(&id).await?,
            Kind::Trail => self.update_trail(&id).await?,
        }
        Ok(None)
    }

    async fn delete_resource(&self) -> Result<()> {
        let Some(id) = self.ids.get(self.address()) else { return Ok(()) };
        match self.kind {
            Kind::KmsKey => self.delete_key(&id).await,
            Kind::KmsAlias => self.delete_alias(&id).await,
            Kind::LogGroup => self.delete_log_group(&id).await,
            Kind::Bucket => self.delete_bucket(&id).await,
            Kind::SessionDocument => self.delete_document(&id).await,
            Kind::IamRole => self.delete_role(arn_name(&id)).await,
            Kind::InstanceProfile => self.delete_instance_profile(arn_name(&id)).await,
            Kind::IamPolicy => self.delete_policy(&id).await,
            Kind::SecurityGroup => self.delete_security_group(&id).await,
            Kind::LaunchTemplate => self.delete_launch_template(&id).await,
            Kind::Instance => self.delete_instance(&id).await,
            Kind::Trail => self.delete_trail(&id).await,
        }
    }
}

// KMS: the key and its alias.
impl Context<'_> {
    /// The live key at this step's address, from the tagging API.
    async fn find_tagged(&self, resource_type: &str) -> Result<Option<String>> {
        let tag = |key: &str, value: String| {
            aws_sdk_resourcegroupstagging::types::TagFilter::builder().key(key).values(value).build()
        };
        let out = self
            .clients()
            .tagging
            .get_resources()
            .tag_filters(tag(STACK_TAG, self.stack().to_owned()))
            .tag_filters(tag(ADDRESS_TAG, self.address().to_string()))
            .resource_type_filters(resource_type)
            .send()
            .await
            .map_err(call_error("tag:GetResources"))?;
        let address = self.address().to_string();
        let mut arns = out.resource_tag_mapping_list().iter().filter(|mapping| {
            let tags: BTreeMap<&str, &str> = mapping.tags().iter().map(|t| (t.key(), t.value())).collect();
            tags.get(STACK_TAG) == Some(&self.stack()) && tags.get(ADDRESS_TAG) == Some(&address.as_str())
        });
        Ok(arns.next().and_then(|m| m.resource_arn()).map(str::to_owned))
    }

    async fn create_key(&self) -> Result<String> {
        let kms = &self.clients().kms;
        let after = self.after();
        let arn = self
            .create(
                || async {
                    let Some(arn) = self.find_tagged("kms:key").await? else { return Ok(None) };
                    let key = kms.describe_key().key_id(&arn).send().await.map_err(call_error("kms:DescribeKey"))?;
                    let live =
                        key.key_metadata().and_then(|m| m.key_state()).is_none_or(|s| s.as_str() != "PendingDeletion");
                    Ok(live.then_some(arn))
                },
                || async {
                    let mut request = kms
                        .create_key()
                        .description(text(after, "description").unwrap_or_default())
                        .key_usage(aws_sdk_kms::types::KeyUsageType::EncryptDecrypt)
                        .policy(document(after, "policy"));
                    for (key, value) in self.tag_pairs() {
                        request = request.tags(
                            aws_sdk_kms::types::Tag::builder()
                                .tag_key(key)
                                .tag_value(value)
                                .build()
                                .map_err(|e| CallError::enclave(e.to_string()))?,
                        );
                    }
                    let out = request
                        .customize()
                        .config_override(
                            aws_sdk_kms::config::Builder::default()
                                .retry_config(aws_sdk_kms::config::retry::RetryConfig::disabled()),
                        )
                        .send()
                        .await
                        .map_err(call_error("kms:CreateKey"))?;
                    out.key_metadata()
                        .and_then(|m| m.arn())
                        .map(str::to_owned)
                        .ok_or_else(|| CallError::aws("kms:CreateKey", None, "no key ARN returned"))
                },
            )
            .await?;
        if flag(after, "rotation") {
            kms.enable_key_rotation().key_id(&arn).send().await.map_err(call_error("kms:EnableKeyRotation"))?;
        }
        Ok(arn)
    }

    async fn update_key(&self, arn: &str) -> Result<()> {
        let kms = &self.clients().kms;
        let after = self.after();
        if changed(self.step, "description") {
            kms.update_key_description()
                .key_id(arn)
                .description(text(after, "description").unwrap_or_default())
                .send()
                .await
                .map_err(call_error("kms:UpdateKeyDescription"))?;
        }
        if changed(self.step, "rotation") {
            if flag(after, "rotation") {
                kms.enable_key_rotation().key_id(arn).send().await.map_err(call_error("kms:EnableKeyRotation"))?;
            } else {
                kms.disable_key_rotation().key_id(arn).send().await.map_err(call_error("kms:DisableKeyRotation"))?;
            }
        }
        if changed(self.step, "policy") {
            kms.put_key_policy()
                .key_id(arn)
                .policy_name("default")
                .policy(document(after, "policy"))
                .send()
                .await
                .map_err(call_error("kms:PutKeyPolicy"))?;
        }
        Ok(())
    }

    /// Schedules the key's deletion with the shortest window KMS allows (7 days); a key already
    /// scheduled is done.
    async fn delete_key(&self, arn: &str) -> Result<()> {
        let kms = &self.clients().kms;
        let result = self
            .delete(|| async {
                // The key id (AWS takes the ARN too; moto only the id).
                kms.schedule_key_deletion()
                    .key_id(arn_name(arn))
                    .pending_window_in_days(7)
                    .send()
                    .await
                    .map(drop)
                    .map_err(call_error("kms:ScheduleKeyDeletion"))
            })
            .await;
        match result {
            Err(error) if error.is(&Code::Other("KMSInvalidStateException".into())) => Ok(()),
            other => other,
        }
    }

    async fn create_alias(&self) -> Result<String> {
        let kms = &self.clients().kms;
        let name = self.text("name")?;
        let key = self.reference("target_key")?;
        let created = kms
            .create_alias()
            .alias_name(&name)
            .target_key_id(&key)
            .send()
            .await
            .map_err(call_error("kms:CreateAlias"));
        match created {
            Ok(_) => Ok(name),
            Err(error) if error.is(&Code::AlreadyExists(Existing::Alias)) => {
                // Ours only when it already points at our key (a retried create).
                let aliases = kms.list_aliases().key_id(&key).send().await.map_err(call_error("kms:ListAliases"))?;
                if aliases.aliases().iter().any(|alias| alias.alias_name() == Some(name.as_str())) {
                    Ok(name)
                } else {
                    Err(self.owned_elsewhere("the alias"))
                }
            }
            Err(error) => Err(error),
        }
    }

    async fn update_alias(&self, name: &str) -> Result<()> {
        let key = self.reference("target_key")?;
        self.clients()
            .kms
            .update_alias()
            .alias_name(name)
            .target_key_id(key)
            .send()
            .await
            .map(drop)
            .map_err(call_error("kms:UpdateAlias"))
    }

    async fn delete_alias(&self, name: &str) -> Result<()> {
        let kms = &self.clients().kms;
        self.delete(|| async {
            kms.delete_alias().alias_name(name).send().await.map(drop).map_err(call_error("kms:DeleteAlias"))
        })
        .await
    }
}

// CloudWatch Logs.
impl Context<'_> {
    async fn create_log_group(&self) -> Result<String> {
        let logs = &self.clients().logs;
        let name = self.text("name")?;
        let key = self.reference("kms_key")?;
        let mut request = logs.create_log_group().log_group_name(&name).kms_key_id(&key);
        for (tag, value) in self.tag_pairs() {
            request = request.tags(tag, value);
        }
        match request.send().await.map_err(call_error("logs:CreateLogGroup")) {
            Ok(_) => {}
            Err(error) if error.is(&Code::AlreadyExists(Existing::Resource)) => {
                let tags = logs
                    .list_tags_for_resource()
                    .resource_arn(self.arn("logs", &format!("log-group:{name}")))
                    .send()
                    .await
                    .map_err(call_error("logs:ListTagsForResource"))?;
                let ours =
                    tags.tags().is_some_and(|tags| tags.get(STACK_TAG).map(String::as_str) == Some(self.stack()));
                if !ours {
                    return Err(self.owned_elsewhere("the log group"));
                }
            }
            Err(error) => return Err(error),
        }
        self.retention(&name).await?;
        Ok(name)
    }

    async fn retention(&self, name: &str) -> Result<()> {
        let logs = &self.clients().logs;
        match self.after().and_then(|a| a.get("retention_days")).and_then(Value::as_i64) {
            Some(days) => logs
                .put_retention_policy()
                .log_group_name(name)
                .retention_in_days(i32::try_from(days).unwrap_or(i32::MAX))
                .send()
                .await
                .map(drop)
                .map_err(call_error("logs:PutRetentionPolicy")),
            None => logs
                .delete_retention_policy()
                .log_group_name(name)
                .send()
                .await
                .map(drop)
                .map_err(call_error("logs:DeleteRetentionPolicy")),
        }
    }

    async fn update_log_group(&self, name: &str) -> Result<()> {
        if changed(self.step, "retention_days") {
            self.retention(name).await?;
        }
        if changed(self.step, "kms_key") {
            let key = self.reference("kms_key")?;
            self.clients()
                .logs
                .associate_kms_key()
                .log_group_name(name)
                .kms_key_id(key)
                .send()
                .await
                .map_err(call_error("logs:AssociateKmsKey"))?;
        }
        Ok(())
    }

    async fn delete_log_group(&self, name: &str) -> Result<()> {
        let logs = &self.clients().logs;
        self.delete(|| async {
            logs.delete_log_group()
                .log_group_name(name)
                .send()
                .await
                .map(drop)
                .map_err(call_error("logs:DeleteLogGroup"))
        })
        .await
    }
}

// S3.
impl Context<'_> {
    async fn create_bucket(&self) -> Result<String> {
        let s3 = &self.clients().s3;
        let name = self.text("name")?;
        let mut request = s3.create_bucket().bucket(&name);
        if self.access.region != "us-east-1" {
            request = request.create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(self.access.region.as_str()))
                    .build(),
            );
        }
        match request.send().await.map_err(call_error("s3:CreateBucket")) {
            Ok(_) => {}
            Err(error) if error.is(&Code::AlreadyExists(Existing::Bucket)) => {
                // Ours from an earlier try only if it carries our tags, or none at all yet (the
                // run died between the create and the tagging, which come first).
                let tags = s3.get_bucket_tagging().bucket(&name).send().await;
                let ours = match tags {
                    Ok(out) => carries_stack(self.stack(), out.tag_set().iter().map(|t| (t.key(), t.value()))),
                    Err(error) => call_error("s3:GetBucketTagging")(error).is(&Code::Other("NoSuchTagSet".into())),
                };
                if !ours {
                    return Err(self.owned_elsewhere("the bucket"));
                }
            }
            Err(error) => return Err(error),
        }
        let tagging = aws_sdk_s3::types::Tagging::builder()
            .set_tag_set(Some(
                self.tag_pairs()
                    .into_iter()
                    .map(|(key, value)| aws_sdk_s3::types::Tag::builder().key(key).value(value).build())
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| CallError::enclave(e.to_string()))?,
            ))
            .build()
            .map_err(|e| CallError::enclave(e.to_string()))?;
        s3.put_bucket_tagging()
            .bucket(&name)
            .tagging(tagging)
            .send()
            .await
            .map_err(call_error("s3:PutBucketTagging"))?;
        self.configure_bucket(&name, true).await?;
        Ok(name)
    }

    /// Applies every changed setting of a bucket (every setting on create).
    async fn configure_bucket(&self, name: &str, all: bool) -> Result<()> {
        let s3 = &self.clients().s3;
        let after = self.after();
        let get = |attribute: &str| after.and_then(|a| a.get(attribute)).cloned().unwrap_or(Value::Null);
        let wants = |attribute: &str| all || changed(self.step, attribute);
        if wants("public_access_block") {
            let block = get("public_access_block");
            let on = |field: &str| block.get(field).and_then(Value::as_bool).unwrap_or(false);
            s3.put_public_access_block()
                .bucket(name)
                .public_access_block_configuration(
                    aws_sdk_s3::types::PublicAccessBlockConfiguration::builder()
                        .block_public_acls(on("block_public_acls"))
                        .ignore_public_acls(on("ignore_public_acls"))
                        .block_public_policy(on("block_public_policy"))
                        .restrict_public_buckets(on("restrict_public_buckets"))
                        .build(),
                )
                .send()
                .await
                .map_err(call_error("s3:PutPublicAccessBlock"))?;
        }
        if wants("versioning") {
            let status =
                aws_sdk_s3::types::BucketVersioningStatus::from(text(after, "versioning").unwrap_or("Enabled"));
            s3.put_bucket_versioning()
                .bucket(name)
                .versioning_configuration(aws_sdk_s3::types::VersioningConfiguration::builder().status(status).build())
                .send()
                .await
                .map_err(call_error("s3:PutBucketVersioning"))?;
        }
        if wants("encryption") {
            let encryption = get("encryption");
            let key = match encryption.get("kms_key").and_then(Value::as_str) {
                Some(address) => Some(self.resolve(address, "encryption key")?),
                None => None,
            };
            let default = aws_sdk_s3::types::ServerSideEncryptionByDefault::builder()
                .sse_algorithm(aws_sdk_s3::types::ServerSideEncryption::from(
                    encryption.get("algorithm").and_then(Value::as_str).unwrap_or("aws:kms"),
                ))
                .set_kms_master_key_id(key)
                .build()
                .map_err(|e| CallError::enclave(e.to_string()))?;
            let rule = aws_sdk_s3::types::ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(default)
                .bucket_key_enabled(encryption.get("bucket_key").and_then(Value::as_bool).unwrap_or(true))
                .build();
            s3.put_bucket_encryption()
                .bucket(name)
                .server_side_encryption_configuration(
                    aws_sdk_s3::types::ServerSideEncryptionConfiguration::builder()
                        .rules(rule)
                        .build()
                        .map_err(|e| CallError::enclave(e.to_string()))?,
                )
                .send()
                .await
                .map_err(call_error("s3:PutBucketEncryption"))?;
        }
        if wants("policy") {
            s3.put_bucket_policy()
                .bucket(name)
                .policy(document(after, "policy"))
                .send()
                .await
                .map_err(call_error("s3:PutBucketPolicy"))?;
        }
        if wants("lifecycle") {
            let lifecycle = get("lifecycle");
            let days = |field: &str| lifecycle.get(field).and_then(Value::as_i64).and_then(|d| i32::try_from(d).ok());
            let rule = aws_sdk_s3::types::LifecycleRule::builder()
                .id(LIFECYCLE_RULE)
                .status(aws_sdk_s3::types::ExpirationStatus::Enabled)
                .filter(aws_sdk_s3::types::LifecycleRuleFilter::builder().prefix("").build())
                .set_expiration(
                    days("expire_days").map(|d| aws_sdk_s3::types::LifecycleExpiration::builder().days(d).build()),
                )
                .set_noncurrent_version_expiration(
                    days("noncurrent_expire_days")
                        .map(|d| aws_sdk_s3::types::NoncurrentVersionExpiration::builder().noncurrent_days(d).build()),
                )
                .build()
                .map_err(|e| CallError::enclave(e.to_string()))?;
            s3.put_bucket_lifecycle_configuration()
                .bucket(name)
                .lifecycle_configuration(
                    aws_sdk_s3::types::BucketLifecycleConfiguration::builder()
                        .rules(rule)
                        .build()
                        .map_err(|e| CallError::enclave(e.to_string()))?,
                )
                .send()
                .await
                .map_err(call_error("s3:PutBucketLifecycleConfiguration"))?;
        }
        Ok(())
    }

    /// Empties the bucket (every version and delete marker), then deletes it. Only buckets in
    /// the plan are ever deleted, and only those carry this stack's tags.
    async fn delete_bucket(&self, name: &str) -> Result<()> {
        let s3 = &self.clients().s3;
        loop {
            let listed = s3.list_object_versions().bucket(name).max_keys(1000).send().await;
            let Some(listed) = toolkit::found(listed.map_err(call_error("s3:ListObjectVersions")), Missing::Bucket)?
            else {
                return Ok(());
            };
            let objects: Vec<aws_sdk_s3::types::ObjectIdentifier> = listed
                .versions()
                .iter()
                .map(|v| (v.key(), v.version_id()))
                .chain(listed.delete_markers().iter().map(|m| (m.key(), m.version_id())))
                .filter_map(|(key, version)| {
                    aws_sdk_s3::types::ObjectIdentifier::builder()
                        .key(key?)
                        .set_version_id(version.map(str::to_owned))
                        .build()
                        .ok()
                })
                .collect();
            if objects.is_empty() {
                break;
            }
            s3.delete_objects()
                .bucket(name)
                .delete(
                    aws_sdk_s3::types::Delete::builder()
                        .set_objects(Some(objects))
                        .quiet(true)
                        .build()
                        .map_err(|e| CallError::enclave(e.to_string()))?,
                )
                .send()
                .await
                .map_err(call_error("s3:DeleteObjects"))?;
        }
        self.delete(|| async {
            s3.delete_bucket().bucket(name).send().await.map(drop).map_err(call_error("s3:DeleteBucket"))
        })
        .await
    }
}

// SSM: the session preferences document.
impl Context<'_> {
    async fn create_document(&self) -> Result<String> {
        let ssm = &self.clients().ssm;
        let name = self.text("name")?;
        let mut request = ssm
            .create_document()
            .name(&name)
            .content(document(self.after(), "content"))
            .document_type(aws_sdk_ssm::types::DocumentType::from(self.text("document_type")?.as_str()))
            .document_format(aws_sdk_ssm::types::DocumentFormat::Json);
        for (key, value) in self.tag_pairs() {
            request = request.tags(
                aws_sdk_ssm::types::Tag::builder()
                    .key(key)
                    .value(value)
                    .build()
                    .map_err(|e| CallError::enclave(e.to_string()))?,
            );
        }
        match request.send().await.map_err(call_error("ssm:CreateDocument")) {
            Ok(_) => Ok(name),
            Err(error) if error.is(&Code::AlreadyExists(Existing::Document)) => {
                let tags = ssm
                    .list_tags_for_resource()
                    .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Document)
                    .resource_id(&name)
                    .send()
                    .await
                    .map_err(call_error("ssm:ListTagsForResource"))?;
                if !carries_stack(self.stack(), tags.tag_list().iter().map(|t| (t.key(), t.value()))) {
                    return Err(self.owned_elsewhere("the document (Session Manager preferences set elsewhere)"));
                }
                self.update_document(&name).await?;
                Ok(name)
            }
            Err(error) => Err(error),
        }
    }

    /// The newest version of document `name` whose content is the desired one.
    async fn version_with_content(&self, name: &str) -> Result<Option<String>> {
        let ssm = &self.clients().ssm;
        let wanted = self.after().and_then(|a| a.get("content")).cloned().unwrap_or(Value::Null);
        // Versions are numbered 1 to the latest; newest first.
        let latest = ssm
            .describe_document()
            .name(name)
            .send()
            .await
            .map_err(call_error("ssm:DescribeDocument"))?
            .document()
            .and_then(|d| d.latest_version())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let numbers = (1..=latest).map(|n| (n, n.to_string()));
        for (_, version) in numbers.rev() {
            let document = ssm
                .get_document()
                .name(name)
                .document_version(&version)
                .send()
                .await
                .map_err(call_error("ssm:GetDocument"))?;
            let content = document.content().and_then(|text| serde_json::from_str::<Value>(text).ok());
            if content.as_ref() == Some(&wanted) {
                return Ok(Some(version));
            }
        }
        Ok(None)
    }

    /// A new version with the desired content, made the default. When a version with that
    /// content exists already (`DuplicateDocumentContent`: a hand edit undone), the newest such
    /// version becomes the default again.
    async fn update_document(&self, name: &str) -> Result<()> {
        let ssm = &self.clients().ssm;
        let updated = ssm
            .update_document()
            .name(name)
            .content(document(self.after(), "content"))
            .document_version("$LATEST")
            .document_format(aws_sdk_ssm::types::DocumentFormat::Json)
            .send()
            .await
            .map_err(call_error("ssm:UpdateDocument"));
        let version = match updated {
            Ok(out) => out.document_description().and_then(|d| d.document_version()).map(str::to_owned),
            Err(error) if error.is(&Code::Other("DuplicateDocumentContent".into())) => {
                self.version_with_content(name).await?
            }
            Err(error) => return Err(error),
        };
        let version =
            version.ok_or_else(|| CallError::aws("ssm:UpdateDocument", None, "no document version returned"))?;
        ssm.update_document_default_version()
            .name(name)
            .document_version(version)
            .send()
            .await
            .map_err(call_error("ssm:UpdateDocumentDefaultVersion"))?;
        Ok(())
    }

    async fn delete_document(&self, name: &str) -> Result<()> {
        let ssm = &self.clients().ssm;
        self.delete(|| async {
            ssm.delete_document().name(name).send().await.map(drop).map_err(call_error("ssm:DeleteDocument"))
        })
        .await
    }
}

// IAM: roles, the instance profile, the people policy.
impl Context<'_> {
    fn iam_tags(&self) -> Result<Vec<aws_sdk_iam::types::Tag>> {
        self.tag_pairs()
            .into_iter()
            .map(|(key, value)| {
                aws_sdk_iam::types::Tag::builder()
                    .key(key)
                    .value(value)
                    .build()
                    .map_err(|e| CallError::enclave(e.to_string()))
            })
            .collect()
    }

    async fn create_role(&self) -> Result<String> {
        let after = self.after().ok_or_else(|| CallError::enclave(format!("{}: nothing to create", self.address())))?;
        enclave_aws::iam::create_role(&self.clients().iam, self.stack(), self.address(), after).await
    }

    /// The trust policy, the attached managed policies and the inline policy.
    async fn configure_role(&self, name: &str, all: bool) -> Result<()> {
        enclave_aws::iam::configure_role(&self.clients().iam, name, self.step.before, self.after(), all).await
    }

    async fn delete_role(&self, name: &str) -> Result<()> {
        enclave_aws::iam::delete_role(&self.clients().iam, name, self.access.waits).await
    }

    async fn create_instance_profile(&self) -> Result<String> {
        let iam = &self.clients().iam;
        let name = self.text("name")?;
        let created = iam
            .create_instance_profile()
            .instance_profile_name(&name)
            .path(self.text("path")?)
            .set_tags(Some(self.iam_tags()?))
            .send()
            .await
            .map_err(call_error("iam:CreateInstanceProfile"));
        let (arn, roles) = match created {
            Ok(out) => (out.instance_profile().map(|p| p.arn().to_owned()).unwrap_or_default(), Vec::new()),
            Err(error) if error.is(&Code::AlreadyExists(Existing::Entity)) => {
                let out = iam
                    .get_instance_profile()
                    .instance_profile_name(&name)
                    .send()
                    .await
                    .map_err(call_error("iam:GetInstanceProfile"))?;
                let profile = out
                    .instance_profile()
                    .ok_or_else(|| CallError::aws("iam:GetInstanceProfile", None, "none returned"))?;
                if !carries_stack(self.stack(), profile.tags().iter().map(|t| (t.key(), t.value()))) {
                    return Err(self.owned_elsewhere("the instance profile"));
                }
                (profile.arn().to_owned(), profile.roles().iter().map(|r| r.role_name().to_owned()).collect())
            }
            Err(error) => return Err(error),
        };
        let role = arn_name(&self.reference("role")?).to_owned();
        if !roles.contains(&role) {
            iam.add_role_to_instance_profile()
                .instance_profile_name(&name)
                .role_name(&role)
                .send()
                .await
                .map_err(call_error("iam:AddRoleToInstanceProfile"))?;
        }
        Ok(arn)
    }

    async fn update_instance_profile(&self, arn: &str) -> Result<()> {
        let iam = &self.clients().iam;
        let name = arn_name(arn);
        let out = iam
            .get_instance_profile()
            .instance_profile_name(name)
            .send()
            .await
            .map_err(call_error("iam:GetInstanceProfile"))?;
        for role in out.instance_profile().map(|p| p.roles()).unwrap_or_default() {
            iam.remove_role_from_instance_profile()
                .instance_profile_name(name)
                .role_name(role.role_name())
                .send()
                .await
                .map_err(call_error("iam:RemoveRoleFromInstanceProfile"))?;
        }
        let role = arn_name(&self.reference("role")?).to_owned();
        iam.add_role_to_instance_profile()
            .instance_profile_name(name)
            .role_name(role)
            .send()
            .await
            .map_err(call_error("iam:AddRoleToInstanceProfile"))?;
        Ok(())
    }

    async fn delete_instance_profile(&self, name: &str) -> Result<()> {
        let iam = &self.clients().iam;
        let Some(out) = toolkit::found(
            iam.get_instance_profile()
                .instance_profile_name(name)
                .send()
                .await
                .map_err(call_error("iam:GetInstanceProfile")),
            Missing::Entity,
        )?
        else {
            return Ok(());
        };
        for role in out.instance_profile().map(|p| p.roles()).unwrap_or_default() {
            toolkit::found(
                iam.remove_role_from_instance_profile()
                    .instance_profile_name(name)
                    .role_name(role.role_name())
                    .send()
                    .await
                    .map_err(call_error("iam:RemoveRoleFromInstanceProfile")),
                Missing::Entity,
            )?;
        }
        self.delete(|| async {
            iam.delete_instance_profile()
                .instance_profile_name(name)
                .send()
                .await
                .map(drop)
                .map_err(call_error("iam:DeleteInstanceProfile"))
        })
        .await
    }

    async fn create_policy(&self) -> Result<String> {
        let iam = &self.clients().iam;
        let name = self.text("name")?;
        let path = self.text("path")?;
        let created = iam
            .create_policy()
            .policy_name(&name)
            .path(&path)
            .policy_document(document(self.after(), "document"))
            .description(format!("enclave {}: start sessions on the stack's instances", self.stack()))
            .set_tags(Some(self.iam_tags()?))
            .send()
            .await
            .map_err(call_error("iam:CreatePolicy"));
        match created {
            Ok(out) => Ok(out.policy().and_then(|p| p.arn()).unwrap_or_default().to_owned()),
            Err(error) if error.is(&Code::AlreadyExists(Existing::Entity)) => {
                let arn = format!("arn:{}:iam::{}:policy{path}{name}", self.access.partition, self.account.id);
                let out = iam.get_policy().policy_arn(&arn).send().await.map_err(call_error("iam:GetPolicy"))?;
                let tags = out.policy().map(|p| p.tags()).unwrap_or_default();
                if !carries_stack(self.stack(), tags.iter().map(|t| (t.key(), t.value()))) {
                    return Err(self.owned_elsewhere("the policy"));
                }
                self.update_policy(&arn).await?;
                Ok(arn)
            }
            Err(error) => Err(error),
        }
    }

    /// A new default version; the oldest other version goes first when IAM's five are used.
    async fn update_policy(&self, arn: &str) -> Result<()> {
        let iam = &self.clients().iam;
        let versions =
            iam.list_policy_versions().policy_arn(arn).send().await.map_err(call_error("iam:ListPolicyVersions"))?;
        let mut old: Vec<_> = versions.versions().iter().filter(|v| !v.is_default_version()).collect();
        if versions.versions().len() >= 5 {
            old.sort_by_key(|v| v.create_date().map(|d| d.secs()));
            if let Some(version) = old.first().and_then(|v| v.version_id()) {
                iam.delete_policy_version()
                    .policy_arn(arn)
                    .version_id(version)
                    .send()
                    .await
                    .map_err(call_error("iam:DeletePolicyVersion"))?;
            }
        }
        iam.create_policy_version()
            .policy_arn(arn)
            .policy_document(document(self.after(), "document"))
            .set_as_default(true)
            .send()
            .await
            .map_err(call_error("iam:CreatePolicyVersion"))?;
        Ok(())
    }

    /// Detaches the policy from whoever holds it, deletes its other versions, then it.
    async fn delete_policy(&self, arn: &str) -> Result<()> {
        let iam = &self.clients().iam;
        let Some(entities) = toolkit::found(
            iam.list_entities_for_policy()
                .policy_arn(arn)
                .send()
                .await
                .map_err(call_error("iam:ListEntitiesForPolicy")),
            Missing::Entity,
        )?
        else {
            return Ok(());
        };
        for role in entities.policy_roles().iter().filter_map(|r| r.role_name()) {
            iam.detach_role_policy()
                .role_name(role)
                .policy_arn(arn)
                .send()
                .await
                .map_err(call_error("iam:DetachRolePolicy"))?;
        }
        for user in entities.policy_users().iter().filter_map(|u| u.user_name()) {
            iam.detach_user_policy()
                .user_name(user)
                .policy_arn(arn)
                .send()
                .await
                .map_err(call_error("iam:DetachUserPolicy"))?;
        }
        for group in entities.policy_groups().iter().filter_map(|g| g.group_name()) {
            iam.detach_group_policy()
                .group_name(group)
                .policy_arn(arn)
                .send()
                .await
                .map_err(call_error("iam:DetachGroupPolicy"))?;
        }
        let versions =
            iam.list_policy_versions().policy_arn(arn).send().await.map_err(call_error("iam:ListPolicyVersions"))?;
        for version in versions.versions().iter().filter(|v| !v.is_default_version()).filter_map(|v| v.version_id()) {
            iam.delete_policy_version()
                .policy_arn(arn)
                .version_id(version)
                .send()
                .await
                .map_err(call_error("iam:DeletePolicyVersion"))?;
        }
        self.delete(|| async {
            iam.delete_policy().policy_arn(arn).send().await.map(drop).map_err(call_error("iam:DeletePolicy"))
        })
        .await
    }
}

// EC2: the bastion's group, template and instance.
impl Context<'_> {
    fn ec2_filters(&self) -> [aws_sdk_ec2::types::Filter; 2] {
        let filter = |key: &str, value: String| {
            aws_sdk_ec2::types::Filter::builder().name(format!("tag:{key}")).values(value).build()
        };
        [filter(STACK_TAG, self.stack().to_owned()), filter(ADDRESS_TAG, self.address().to_string())]
    }

    fn first_ours<'i, T: toolkit::Tagged + 'i>(&self, items: impl IntoIterator<Item = &'i T>) -> Option<String> {
        items.into_iter().find_map(|item| {
            toolkit::owned(item, self.stack())
                .filter(|(_, address)| address == self.address())
                .map(|(id, _)| id.to_owned())
        })
    }

    fn rules(&self, name: &str) -> Vec<String> {
        strings(self.after().and_then(|a| a.get(name)))
    }

    async fn create_security_group(&self) -> Result<String> {
        let ec2 = &self.clients().ec2;
        let vpc = self.reference("vpc")?;
        let description = self.text("description")?;
        let name = format!("{}-{}-{}", self.stack(), self.address().account(), self.address().name());
        let id = self
            .create(
                || async {
                    let [stack, address] = self.ec2_filters();
                    let out = ec2
                        .describe_security_groups()
                        .filters(stack)
                        .filters(address)
                        .send()
                        .await
                        .map_err(call_error("ec2:DescribeSecurityGroups"))?;
                    Ok(self.first_ours(out.security_groups()))
                },
                || async {
                    let out = ec2
                        .create_security_group()
                        .group_name(&name)
                        .description(&description)
                        .vpc_id(&vpc)
                        .tag_specifications(self.ec2_tags(ResourceType::SecurityGroup))
                        .customize()
                        .config_override(no_retry_ec2())
                        .send()
                        .await
                        .map_err(call_error("ec2:CreateSecurityGroup"))?;
                    Ok(out.group_id().unwrap_or_default().to_owned())
                },
            )
            .await?;
        toolkit::sync_rules(ec2, &id, &self.rules("ingress"), &self.rules("egress")).await?;
        Ok(id)
    }

    async fn sync_name_tag(&self, id: &str) -> Result<()> {
        if !changed(self.step, "tags") {
            return Ok(());
        }
        let Some(name) = self.after().and_then(|a| a.get("tags")).and_then(|t| t.get("Name")).and_then(Value::as_str)
        else {
            return Ok(());
        };
        self.clients()
            .ec2
            .create_tags()
            .resources(id)
            .tags(aws_sdk_ec2::types::Tag::builder().key("Name").value(name).build())
            .send()
            .await
            .map(drop)
            .map_err(call_error("ec2:CreateTags"))
    }

    async fn update_security_group(&self, id: &str) -> Result<()> {
        if changed(self.step, "ingress") || changed(self.step, "egress") {
            toolkit::sync_rules(&self.clients().ec2, id, &self.rules("ingress"), &self.rules("egress")).await?;
        }
        self.sync_name_tag(id).await
    }

    async fn delete_security_group(&self, id: &str) -> Result<()> {
        let ec2 = &self.clients().ec2;
        self.delete(|| async {
            ec2.delete_security_group()
                .group_id(id)
                .send()
                .await
                .map(drop)
                .map_err(call_error("ec2:DeleteSecurityGroup"))
        })
        .await
    }

    /// The template's data from the desired `data` attribute, references resolved.
    fn template_data(&self) -> Result<RequestLaunchTemplateData> {
        let data = self.after().and_then(|a| a.get("data")).cloned().unwrap_or(Value::Null);
        let get = |name: &str| data.get(name).and_then(Value::as_str).map(str::to_owned);
        let image = get("image").filter(|image| image.starts_with("ami-")).ok_or_else(|| {
            CallError::enclave(format!("{}: the bastion image is not resolved to an AMI id", self.address()))
        })?;
        let metadata = data.get("metadata_options").cloned().unwrap_or(Value::Null);
        let profile =
            self.resolve(data.get("instance_profile").and_then(Value::as_str).unwrap_or_default(), "instance profile")?;
        let groups = strings(data.get("security_groups"))
            .iter()
            .map(|group| self.resolve(group, "security group"))
            .collect::<Result<Vec<_>>>()?;
        let root = data.get("root_volume").cloned().unwrap_or(Value::Null);
        Ok(RequestLaunchTemplateData::builder()
            .image_id(image)
            .instance_type(aws_sdk_ec2::types::InstanceType::from(get("instance_type").unwrap_or_default().as_str()))
            .iam_instance_profile(LaunchTemplateIamInstanceProfileSpecificationRequest::builder().arn(profile).build())
            .metadata_options(
                LaunchTemplateInstanceMetadataOptionsRequest::builder()
                    .http_endpoint(LaunchTemplateInstanceMetadataEndpointState::from(
                        metadata.get("http_endpoint").and_then(Value::as_str).unwrap_or("enabled"),
                    ))
                    .http_tokens(LaunchTemplateHttpTokensState::from(
                        metadata.get("http_tokens").and_then(Value::as_str).unwrap_or("required"),
                    ))
                    .http_put_response_hop_limit(
                        metadata
                            .get("http_put_response_hop_limit")
                            .and_then(Value::as_i64)
                            .and_then(|h| i32::try_from(h).ok())
                            .unwrap_or(1),
                    )
                    .build(),
            )
            .network_interfaces(
                LaunchTemplateInstanceNetworkInterfaceSpecificationRequest::builder()
                    .device_index(0)
                    .associate_public_ip_address(
                        data.get("associate_public_ip_address").and_then(Value::as_bool).unwrap_or(false),
                    )
                    .set_groups(Some(groups))
                    .build(),
            )
            .block_device_mappings(
                LaunchTemplateBlockDeviceMappingRequest::builder()
                    .device_name(ROOT_DEVICE)
                    .ebs(
                        LaunchTemplateEbsBlockDeviceRequest::builder()
                            .encrypted(root.get("encrypted").and_then(Value::as_bool).unwrap_or(true))
                            .volume_type(VolumeType::from(
                                root.get("volume_type").and_then(Value::as_str).unwrap_or("gp3"),
                            ))
                            .build(),
                    )
                    .build(),
            )
            .build())
    }

    async fn create_launch_template(&self) -> Result<String> {
        let name_tag = self.after().and_then(|a| a.get("tags")).and_then(|t| t.get("Name")).and_then(Value::as_str);
        toolkit::create_launch_template(
            &self.clients().ec2,
            self.stack(),
            self.address(),
            &self.text("name")?,
            self.template_data()?,
            name_tag,
            self.access.attempts,
        )
        .await
    }

    /// A new version with the desired data, made the default (the running bastion keeps its
    /// own settings, compared on the instance).
    async fn update_launch_template(&self, id: &str) -> Result<()> {
        if changed(self.step, "data") {
            toolkit::new_default_version(&self.clients().ec2, id, self.template_data()?).await?;
        }
        self.sync_name_tag(id).await
    }

    async fn delete_launch_template(&self, id: &str) -> Result<()> {
        toolkit::delete_launch_template(&self.clients().ec2, id, self.access.waits).await
    }

    async fn instance_state(&self, id: &str) -> Result<Option<String>> {
        let out = self
            .clients()
            .ec2
            .describe_instances()
            .instance_ids(id)
            .send()
            .await
            .map_err(call_error("ec2:DescribeInstances"));
        Ok(toolkit::found(out, Missing::Instance)?.and_then(|out| {
            out.reservations()
                .iter()
                .flat_map(|r| r.instances())
                .find_map(|i| i.state().and_then(|s| s.name()).map(|n| n.as_str().to_owned()))
        }))
    }

    /// Launches the bastion from its template, in its subnet, every setting also given
    /// explicitly (no key pair, no public IP, IMDSv2 with one hop, an encrypted root volume),
    /// with a `ClientToken` so that a retried launch never makes a second instance.
    async fn create_instance(&self) -> Result<String> {
        let ec2 = &self.clients().ec2;
        let after = self.after();
        let template = self.reference("launch_template")?;
        let subnet = self.reference("subnet")?;
        let profile = self.reference("instance_profile")?;
        let groups = strings(after.and_then(|a| a.get("security_groups")))
            .iter()
            .map(|group| self.resolve(group, "security group"))
            .collect::<Result<Vec<_>>>()?;
        let image = self.text("image")?;
        let tokens = text(after, "http_tokens").unwrap_or("required").to_owned();
        let hops = after
            .and_then(|a| a.get("http_put_response_hop_limit"))
            .and_then(Value::as_i64)
            .and_then(|h| i32::try_from(h).ok())
            .unwrap_or(1);
        let launch = Launch { template, subnet, profile, groups, image, tokens, hops };
        let id = self
            .create(
                || async {
                    let [stack, address] = self.ec2_filters();
                    let out = ec2
                        .describe_instances()
                        .filters(stack)
                        .filters(address)
                        .send()
                        .await
                        .map_err(call_error("ec2:DescribeInstances"))?;
                    let live = out.reservations().iter().flat_map(|r| r.instances()).filter(|i| {
                        i.state()
                            .and_then(|s| s.name())
                            .is_none_or(|n| !matches!(n.as_str(), "shutting-down" | "terminated"))
                    });
                    Ok(self.first_ours(live))
                },
                || async {
                    // `ClientToken` makes a retried launch return the same instance. After a
                    // replacement the token is the terminated predecessor's: AWS answers with that
                    // instance, and a fresh token launches the new one.
                    let token = client_token(self.stack(), self.address());
                    let (id, state) = self.run_instance(&launch, token.clone()).await?;
                    if !matches!(state.as_deref(), Some("shutting-down" | "terminated")) {
                        return Ok(id);
                    }
                    let nanos = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |elapsed| elapsed.as_nanos());
                    Ok(self.run_instance(&launch, format!("{token}-{:x}", nanos & 0xffff_ffff_ffff)).await?.0)
                },
            )
            .await?;
        self.wait("the bastion to run", || async {
            Ok(match self.instance_state(&id).await?.as_deref() {
                Some("running") => WaitState::Done,
                Some(state @ ("shutting-down" | "terminated" | "stopping" | "stopped")) => {
                    WaitState::Failed(state.to_owned())
                }
                Some(state) => WaitState::Pending(state.to_owned()),
                None => WaitState::Pending("not visible yet".to_owned()),
            })
        })
        .await?;
        Ok(id)
    }

    /// One `RunInstances` with `token`: the instance's id and state. While EC2 does not yet
    /// see an instance profile made moments ago (`InvalidParameterValue`), it is tried again for
    /// at most a minute.
    async fn run_instance(&self, launch: &Launch, token: String) -> Result<(String, Option<String>)> {
        let ec2 = &self.clients().ec2;
        let out = self
            .settled_within(std::time::Duration::from_secs(60), &["InvalidParameterValue"], || async {
                ec2.run_instances()
                    .launch_template(
                        LaunchTemplateSpecification::builder()
                            .launch_template_id(&launch.template)
                            .version("$Default")
                            .build(),
                    )
                    .image_id(&launch.image)
                    .instance_type(aws_sdk_ec2::types::InstanceType::from(self.text("instance_type")?.as_str()))
                    .min_count(1)
                    .max_count(1)
                    .iam_instance_profile(
                        aws_sdk_ec2::types::IamInstanceProfileSpecification::builder().arn(&launch.profile).build(),
                    )
                    .network_interfaces(
                        InstanceNetworkInterfaceSpecification::builder()
                            .device_index(0)
                            .subnet_id(&launch.subnet)
                            .associate_public_ip_address(false)
                            .set_groups(Some(launch.groups.clone()))
                            .build(),
                    )
                    .metadata_options(
                        InstanceMetadataOptionsRequest::builder()
                            .http_endpoint(InstanceMetadataEndpointState::Enabled)
                            .http_tokens(HttpTokensState::from(launch.tokens.as_str()))
                            .http_put_response_hop_limit(launch.hops)
                            .build(),
                    )
                    .block_device_mappings(
                        BlockDeviceMapping::builder()
                            .device_name(ROOT_DEVICE)
                            .ebs(
                                EbsBlockDevice::builder()
                                    .encrypted(true)
                                    .volume_type(VolumeType::Gp3)
                                    .volume_size(ROOT_VOLUME_GIB)
                                    .delete_on_termination(true)
                                    .build(),
                            )
                            .build(),
                    )
                    .client_token(&token)
                    .tag_specifications(self.ec2_tags(ResourceType::Instance))
                    .tag_specifications(self.ec2_tags(ResourceType::Volume))
                    .customize()
                    .config_override(no_retry_ec2())
                    .send()
                    .await
                    .map_err(call_error("ec2:RunInstances"))
            })
            .await?;
        let instance =
            out.instances().first().ok_or_else(|| CallError::aws("ec2:RunInstances", None, "no instance returned"))?;
        let id = instance
            .instance_id()
            .ok_or_else(|| CallError::aws("ec2:RunInstances", None, "no instance id returned"))?;
        let state = instance.state().and_then(|s| s.name()).map(|n| n.as_str().to_owned());
        Ok((id.to_owned(), state))
    }

    async fn update_instance(&self, id: &str) -> Result<()> {
        let ec2 = &self.clients().ec2;
        let after = self.after();
        if changed(self.step, "http_tokens") || changed(self.step, "http_put_response_hop_limit") {
            ec2.modify_instance_metadata_options()
                .instance_id(id)
                .http_tokens(HttpTokensState::from(text(after, "http_tokens").unwrap_or("required")))
                .http_put_response_hop_limit(
                    after
                        .and_then(|a| a.get("http_put_response_hop_limit"))
                        .and_then(Value::as_i64)
                        .and_then(|h| i32::try_from(h).ok())
                        .unwrap_or(1),
                )
                .http_endpoint(InstanceMetadataEndpointState::Enabled)
                .send()
                .await
                .map_err(call_error("ec2:ModifyInstanceMetadataOptions"))?;
        }
        if changed(self.step, "security_groups") {
            let groups = strings(after.and_then(|a| a.get("security_groups")))
                .iter()
                .map(|group| self.resolve(group, "security group"))
                .collect::<Result<Vec<_>>>()?;
            ec2.modify_instance_attribute()
                .instance_id(id)
                .set_groups(Some(groups))
                .send()
                .await
                .map_err(call_error("ec2:ModifyInstanceAttribute"))?;
        }
        self.sync_name_tag(id).await
    }

    /// Terminates the bastion and waits until it is gone (its group cannot go before).
    async fn delete_instance(&self, id: &str) -> Result<()> {
        let ec2 = &self.clients().ec2;
        self.delete(|| async {
            ec2.terminate_instances()
                .instance_ids(id)
                .send()
                .await
                .map(drop)
                .map_err(call_error("ec2:TerminateInstances"))
        })
        .await?;
        self.wait("the bastion to terminate", || async {
            Ok(match self.instance_state(id).await?.as_deref() {
                None | Some("terminated") => WaitState::Done,
                Some(state) => WaitState::Pending(state.to_owned()),
            })
        })
        .await
    }
}

/// What a bastion launch needs, references resolved.
struct Launch {
    template: String,
    subnet: String,
    profile: String,
    groups: Vec<String>,
    image: String,
    tokens: String,
    hops: i32,
}

/// The bastion's root device (Amazon Linux 2023's).
const ROOT_DEVICE: &str = "/dev/xvda";

/// The bastion's root volume size, GiB (Amazon Linux 2023's image size).
const ROOT_VOLUME_GIB: i32 = 8;

/// Codes with which CloudTrail says a bucket policy, key policy or role made moments ago is not
/// visible to it yet.
const TRAIL_NOT_SETTLED: &[&str] = &[
    "InsufficientS3BucketPolicyException",
    "InsufficientEncryptionPolicyException",
    "InvalidCloudWatchLogsRoleArnException",
    "InvalidCloudWatchLogsLogGroupArnException",
];

// CloudTrail.
impl Context<'_> {
    /// The trail's settings with references resolved: bucket name, key alias, group ARN, role ARN.
    fn trail_targets(&self) -> Result<(String, String, String, String)> {
        let bucket = self.reference("bucket")?;
        let key = self.reference("kms_key")?;
        let group = self.reference("log_group")?;
        let role = self.reference("log_role")?;
        Ok((bucket, key, self.arn("logs", &format!("log-group:{group}:*")), role))
    }

    async fn create_trail(&self) -> Result<String> {
        let cloudtrail = &self.clients().cloudtrail;
        let after = self.after();
        let name = self.text("name")?;
        let (bucket, key, group, role) = self.trail_targets()?;
        let tags = self
            .tag_pairs()
            .into_iter()
            .map(|(key, value)| aws_sdk_cloudtrail::types::Tag::builder().key(key).value(value).build())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| CallError::enclave(e.to_string()))?;
        let created = self
            .settled(TRAIL_NOT_SETTLED, || async {
                cloudtrail
                    .create_trail()
                    .name(&name)
                    .s3_bucket_name(&bucket)
                    .is_multi_region_trail(flag(after, "multi_region"))
                    .enable_log_file_validation(flag(after, "log_file_validation"))
                    .include_global_service_events(flag(after, "global_service_events"))
                    .kms_key_id(&key)
                    .cloud_watch_logs_log_group_arn(&group)
                    .cloud_watch_logs_role_arn(&role)
                    .set_tags_list(Some(tags.clone()))
                    .send()
                    .await
                    .map_err(call_error("cloudtrail:CreateTrail"))
            })
            .await;
        let arn = match created {
            Ok(out) => {
                out.trail_arn().map(str::to_owned).unwrap_or_else(|| self.arn("cloudtrail", &format!("trail/{name}")))
            }
            Err(error) if error.is(&Code::AlreadyExists(Existing::Trail)) => {
                let arn = self.arn("cloudtrail", &format!("trail/{name}"));
                let listed = cloudtrail
                    .list_tags()
                    .resource_id_list(&arn)
                    .send()
                    .await
                    .map_err(call_error("cloudtrail:ListTags"))?;
                let ours = listed.resource_tag_list().iter().any(|list| {
                    carries_stack(
                        self.stack(),
                        list.tags_list().iter().map(|t| (t.key(), t.value().unwrap_or_default())),
                    )
                });
                if !ours {
                    return Err(self.owned_elsewhere("the trail"));
                }
                self.update_trail(&arn).await?;
                return Ok(arn);
            }
            Err(error) => return Err(error),
        };
        if flag(after, "logging") {
            cloudtrail
                .start_logging()
                .name(arn_name(&arn))
                .send()
                .await
                .map_err(call_error("cloudtrail:StartLogging"))?;
        }
        Ok(arn)
    }

    async fn update_trail(&self, arn: &str) -> Result<()> {
        let cloudtrail = &self.clients().cloudtrail;
        let after = self.after();
        let settings = [
            "bucket",
            "multi_region",
            "log_file_validation",
            "global_service_events",
            "kms_key",
            "log_group",
            "log_role",
        ];
        if settings.iter().any(|name| changed(self.step, name)) || self.step.before.is_none() {
            let (bucket, key, group, role) = self.trail_targets()?;
            self.settled(TRAIL_NOT_SETTLED, || async {
                cloudtrail
                    .update_trail()
                    .name(arn_name(arn))
                    .s3_bucket_name(&bucket)
                    .is_multi_region_trail(flag(after, "multi_region"))
                    .enable_log_file_validation(flag(after, "log_file_validation"))
                    .include_global_service_events(flag(after, "global_service_events"))
                    .kms_key_id(&key)
                    .cloud_watch_logs_log_group_arn(&group)
                    .cloud_watch_logs_role_arn(&role)
                    .send()
                    .await
                    .map(drop)
                    .map_err(call_error("cloudtrail:UpdateTrail"))
            })
            .await?;
        }
        if changed(self.step, "logging") || self.step.before.is_none() {
            if flag(after, "logging") {
                cloudtrail
                    .start_logging()
                    .name(arn_name(arn))
                    .send()
                    .await
                    .map_err(call_error("cloudtrail:StartLogging"))?;
            } else {
                cloudtrail
                    .stop_logging()
                    .name(arn_name(arn))
                    .send()
                    .await
                    .map_err(call_error("cloudtrail:StopLogging"))?;
            }
        }
        Ok(())
    }

    async fn delete_trail(&self, arn: &str) -> Result<()> {
        let cloudtrail = &self.clients().cloudtrail;
        // By name (AWS takes the ARN too; moto answers "not found" for it).
        let name = arn_name(arn);
        self.delete(|| async {
            cloudtrail.delete_trail().name(name).send().await.map(drop).map_err(call_error("cloudtrail:DeleteTrail"))
        })
        .await
    }
}

/// The latest Amazon Linux 2023 image in the account `clients` are for, from its SSM public
/// parameter ([`crate::model::AL2023_PARAMETER`]).
pub async fn latest_image(clients: &Clients) -> Result<String> {
    let out = clients
        .ssm
        .get_parameter()
        .name(crate::model::AL2023_PARAMETER)
        .send()
        .await
        .map_err(call_error("ssm:GetParameter"))?;
    out.parameter()
        .and_then(|p| p.value())
        .filter(|value| value.starts_with("ami-"))
        .map(str::to_owned)
        .ok_or_else(|| CallError::aws("ssm:GetParameter", None, "the image parameter holds no AMI id"))
}

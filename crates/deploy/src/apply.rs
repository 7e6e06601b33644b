//! Applying deploy: the [`Provider`] that creates, updates and deletes every deploy [`Kind`]
//! through ECR, with the toolkit's guarantees ([`enclave_aws::reconcile`]):
//!
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
use enclave_aws::reconcile::{self as toolkit, Waits, found, owned_address};
use enclave_core::names::account_key_alias;
use enclave_core::plan::{Attributes, Change};
use enclave_core::reconcile::{Ids, Operation, Provider, Step};
use serde_json::Value;

use crate::clients::{CallError, Clients, Code, Existing, Missing, call_error};
use crate::kind::{Kind, UnknownKind};
use crate::resources::COMPONENT;
use enclave_core::address::{ADDRESS_TAG, STACK_TAG};

type Result<T> = std::result::Result<T, CallError>;

/// The deploy provider: clients per account name.
#[derive(Clone, Debug)]
pub struct Registry {
    stack: String,
    accounts: BTreeMap<String, Clients>,
    waits: Waits,
    attempts: u32,
    force_images: bool,
}

impl Registry {
    /// A provider for `stack` over the given accounts' clients.
    pub fn new(stack: &str, accounts: BTreeMap<String, Clients>) -> Self {
        Registry { stack: stack.to_owned(), accounts, waits: Waits::default(), attempts: 10, force_images: false }
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
    }
}

/// A step's context: the provider, the account's clients and the step.
struct Context<'a> {
    registry: &'a Registry,
    clients: &'a Clients,
    step: &'a Step<'a>,
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
        let name = step.address.account();
        let clients = self
            .accounts
            .get(name)
            .ok_or_else(|| CallError::enclave(format!("no AWS access configured for account {name}")))?;
        let kind: Kind = step
            .address
            .kind()
            .parse()
            .map_err(|error: UnknownKind| CallError::enclave(format!("{}: {error}", step.address)))?;
        let context = Context { registry: self, clients, step, kind };
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
        self.step
            .after
            .or(self.step.before)
            .and_then(|a| a.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| CallError::enclave(format!("{}: attribute {name} is missing", self.step.address)))
    }

    async fn create_resource(&self) -> Result<String> {
        match self.kind {
            Kind::Repository => self.create_repository().await,
        }
    }

    async fn update_resource(&self, id: &str) -> Result<()> {
        let before = self.step.before;
        let unchangeable: Vec<&String> = self
            .after()
            .into_iter()
            .flat_map(|after| after.iter())
            .filter(|(name, value)| before.and_then(|b| b.get(*name)) != Some(*value))
            .map(|(name, _)| name)
            .filter(|name| !self.kind.updatable().contains(&name.as_str()))
            .collect();
        if !unchangeable.is_empty() {
            return Err(CallError::enclave(format!(
                "{}: {unchangeable:?} cannot change in place (the plan should replace it)",
                self.step.address
            )));
        }
        match self.kind {
            Kind::Repository => self.update_repository(id, false).await,
        }
    }

    async fn delete_resource(&self, id: &str) -> Result<()> {
        match self.kind {
            Kind::Repository => self.delete_repository(id).await,
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
        let owner = owned_address(&self.registry.stack, COMPONENT, tags.tags().iter().map(|t| (t.key(), t.value())));
        if owner.as_ref() != Some(self.step.address) {
            return Err(CallError::enclave(format!(
                "{}: the repository {name} exists without this stack's tags; enclave will not take it over",
                self.step.address
            )));
        }
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
            ecr.put_image_scanning_configuration()
                .repository_name(name)
                .image_scanning_configuration(ImageScanningConfiguration::builder().scan_on_push(scan).build())
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

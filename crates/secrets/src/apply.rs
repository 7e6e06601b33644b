//! Applying secrets: the [`Provider`] that creates, updates and deletes every secrets [`Kind`]
//! through Secrets Manager, IAM and EKS, with the toolkit's guarantees
//! ([`enclave_aws::reconcile`]):
//!
//! - a secret is created with its value, the account key (by its alias), its tags and a
//!   `ClientRequestToken` derived from its address, in one call: a retried create (by the SDK
//!   or after a lost answer) is the same request, which Secrets Manager answers without a
//!   second version. A name that exists already is adopted only when it carries this stack's
//!   tags (restored first when it was scheduled for deletion), never otherwise; its value is
//!   then compared by digest and written only when it differs;
//! - then its resource policy (with `BlockPublicPolicy`) and, when the spec names a function,
//!   its rotation (never rotated at once);
//! - an update writes only what differs: description and key (`UpdateSecret`), policy, rotation
//!   (or its cancellation), tags, and the value (`PutSecretValue`, one new version, with a
//!   token of its own so that a retry adds none). A generated value is never written again;
//! - a delete schedules the deletion with the secret's recovery window, or deletes at once only
//!   with [`Secrets::force_delete`];
//! - roles go through the toolkit (`enclave_aws::iam`); an IRSA trust policy is sent with the
//!   real ARN and issuer of the cluster's OIDC provider in place of its plan address;
//! - Pod Identity associations are created with a `clientRequestToken`; an association of the
//!   same service account is adopted only when it is ours;
//! - an attribute the kind cannot change in place is refused, never skipped.

use std::collections::BTreeMap;

use aws_sdk_secretsmanager::types::{RotationRulesType, Tag};
use enclave_aws::reconcile::{self as toolkit, Waits, client_token, found};
use enclave_core::address::{ADDRESS_TAG, STACK_TAG};
use enclave_core::names::account_key_alias;
use enclave_core::plan::{Attributes, Change};
use enclave_core::reconcile::{Ids, Operation, Provider, Step};
use enclave_core::secret::Secret;
use serde_json::Value;

use crate::clients::{CallError, Clients, Code, Existing, Missing, call_error};
use crate::kind::Kind;
use crate::observe::{RECOVERY_TAG, SOURCE_TAG};
use crate::resources::COMPONENT;

type Result<T> = std::result::Result<T, CallError>;

/// The secrets provider: clients per account name.
#[derive(Clone, Debug)]
pub struct Secrets {
    stack: String,
    accounts: BTreeMap<String, Clients>,
    waits: Waits,
    force_delete: bool,
}

impl Secrets {
    /// A provider for `stack` over the given accounts' clients, by account name.
    pub fn new(stack: &str, accounts: BTreeMap<String, Clients>) -> Self {
        Secrets { stack: stack.to_owned(), accounts, waits: Waits::default(), force_delete: false }
    }

    /// Sets the wait bounds (role deletes wait for what still uses them).
    #[must_use]
    pub fn waits(mut self, waits: Waits) -> Self {
        self.waits = waits;
        self
    }

    /// Whether secrets are deleted at once, without a recovery window (`--force-delete-secrets`).
    #[must_use]
    pub fn force_delete(mut self, force: bool) -> Self {
        self.force_delete = force;
        self
    }

    /// The clients of the account called `name`.
    pub fn clients(&self, name: &str) -> Option<&Clients> {
        self.accounts.get(name)
    }
}

impl Provider for Secrets {
    type Error = CallError;

    /// Names are unique per account and kind; nothing else collides.
    fn collides(&self, create: &Change, delete: &Change) -> bool {
        create.address.account() == delete.address.account()
            && create.address.kind() == delete.address.kind()
            && create.address.name() == delete.address.name()
    }

    async fn run(&self, step: &Step<'_>, ids: &Ids) -> Result<Option<String>> {
        let clients = toolkit::account_of(&self.accounts, step)?;
        let kind: Kind = toolkit::kind_of(step)?;
        let context = Context { provider: self, clients, step, ids, kind };
        match step.operation {
            Operation::Create => context.create().await.map(Some),
            Operation::Update => {
                let id = ids
                    .get(step.address)
                    .ok_or_else(|| CallError::enclave(format!("{} has no known id", step.address)))?;
                toolkit::check_in_place(step, kind.as_str(), kind.updatable(), kind.initial())?;
                context.update(&id).await.map(|()| None)
            }
            Operation::Delete => {
                let id = ids.get(step.address).unwrap_or_else(|| step.address.name().to_owned());
                context.delete(&id).await.map(|()| None)
            }
        }
    }
}

/// A step's context: the provider, the account's clients, the step and the known ids.
struct Context<'a> {
    provider: &'a Secrets,
    clients: &'a Clients,
    step: &'a Step<'a>,
    ids: &'a Ids,
    kind: Kind,
}

fn changed(before: Option<&Attributes>, after: Option<&Attributes>, name: &str) -> bool {
    before.and_then(|b| b.get(name)) != after.and_then(|a| a.get(name))
}

/// A token Secrets Manager accepts (32 to 64 characters), fresh for one new version.
fn version_token() -> String {
    format!("enclave-{:032x}", fastrand::u128(..))
}

/// The name of a role from its ARN (or the name itself).
fn role_name(id: &str) -> &str {
    id.rsplit('/').next().unwrap_or(id)
}

impl Context<'_> {
    fn text(&self, name: &str) -> Result<String> {
        toolkit::text_of(self.step, name)
    }

    /// The id of the resource whose address is the attribute `name`.
    fn reference(&self, name: &str) -> Result<String> {
        toolkit::reference_of(self.step, self.ids, name)
    }

    fn value(&self) -> Option<&Secret> {
        self.step.secrets.get("value")
    }

    async fn create(&self) -> Result<String> {
        match self.kind {
            Kind::Secret => self.create_secret().await,
            Kind::IamRole => {
                let after = self.resolved(self.step.after)?.ok_or_else(|| CallError::enclave("nothing to create"))?;
                enclave_aws::iam::create_role(&self.clients.iam, &self.provider.stack, self.step.address, &after).await
            }
            Kind::PodIdentityAssociation => self.create_association().await,
        }
    }

    async fn update(&self, id: &str) -> Result<()> {
        match self.kind {
            Kind::Secret => self.configure_secret(id, self.step.before, false).await,
            Kind::IamRole => {
                let (before, after) = (self.resolved(self.step.before)?, self.resolved(self.step.after)?);
                enclave_aws::iam::configure_role(
                    &self.clients.iam,
                    role_name(id),
                    before.as_ref(),
                    after.as_ref(),
                    false,
                )
                .await
            }
            Kind::PodIdentityAssociation => {
                let (cluster, association) = association_id(id)?;
                self.clients
                    .eks
                    .update_pod_identity_association()
                    .cluster_name(cluster)
                    .association_id(association)
                    .role_arn(self.reference("role")?)
                    .send()
                    .await
                    .map(drop)
                    .map_err(call_error("eks:UpdatePodIdentityAssociation"))
            }
        }
    }

    async fn delete(&self, id: &str) -> Result<()> {
        match self.kind {
            Kind::Secret => self.delete_secret(id).await,
            Kind::IamRole => enclave_aws::iam::delete_role(&self.clients.iam, role_name(id), self.provider.waits).await,
            Kind::PodIdentityAssociation => {
                let (cluster, association) = association_id(id)?;
                found(
                    self.clients
                        .eks
                        .delete_pod_identity_association()
                        .cluster_name(cluster)
                        .association_id(association)
                        .send()
                        .await
                        .map(drop)
                        .map_err(call_error("eks:DeletePodIdentityAssociation")),
                    Missing::Resource,
                )
                .map(drop)
            }
        }
    }

    /// `attributes` with every OIDC provider address in the trust policy replaced by the
    /// provider's ARN and issuer (IRSA); unchanged otherwise.
    fn resolved(&self, attributes: Option<&Attributes>) -> Result<Option<Attributes>> {
        let Some(attributes) = attributes else { return Ok(None) };
        let mut out = attributes.clone();
        if let Some(trust) = out.get_mut("trust_policy") {
            let federated: Vec<String> = trust
                .get("Statement")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|s| s.get("Principal")?.get("Federated")?.as_str().map(str::to_owned))
                .collect();
            for principal in federated {
                let Ok(provider) = principal.parse::<enclave_core::Address>() else { continue };
                let arn = self.ids.resolve(&principal).ok_or_else(|| {
                    CallError::enclave(format!("{}: {principal} (its trust) has no id yet", self.step.address))
                })?;
                *trust = crate::policy::resolve(trust, &provider, &arn);
            }
        }
        Ok(Some(out))
    }

    fn secret_tags(&self) -> Vec<Tag> {
        let after = self.step.after;
        let text = |name: &str| {
            after.and_then(|a| a.get(name)).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
        };
        vec![
            Tag::builder().key(STACK_TAG).value(&self.provider.stack).build(),
            Tag::builder().key(ADDRESS_TAG).value(self.step.address.to_string()).build(),
            Tag::builder().key(SOURCE_TAG).value(text("source").unwrap_or_default()).build(),
            Tag::builder().key(RECOVERY_TAG).value(text("recovery_days").unwrap_or_else(|| "7".to_owned())).build(),
        ]
    }

    async fn create_secret(&self) -> Result<String> {
        let name = self.text("name")?;
        let value = self.value().ok_or_else(|| {
            CallError::enclave(format!(
                "{}: its value is not known (read it from the spec's source: plan and apply with the spec)",
                self.step.address
            ))
        })?;
        // Known before the walk yet planned as a create: scheduled for deletion; restored.
        if self.ids.get(self.step.address).is_some() {
            match self.adopt_secret(&name, value).await {
                Ok(arn) => {
                    self.configure_secret(&arn, None, true).await?;
                    return Ok(arn);
                }
                Err(error) if error.is(&Code::NotFound(Missing::Resource)) => {}
                Err(error) => return Err(error),
            }
        }
        let arn = match self.call_create(&name, value).await {
            Ok(arn) => arn,
            Err(error) if error.is(&Code::AlreadyExists(Existing::Secret)) || error.is(&Code::InvalidRequest) => {
                self.adopt_secret(&name, value).await?
            }
            Err(error) => return Err(error),
        };
        self.configure_secret(&arn, None, true).await?;
        Ok(arn)
    }

    async fn call_create(&self, name: &str, value: &Secret) -> Result<String> {
        let after = self.step.after;
        let description = after.and_then(|a| a.get("description")).and_then(Value::as_str).unwrap_or_default();
        let out = self
            .clients
            .secrets
            .create_secret()
            .name(name)
            .description(description)
            .kms_key_id(account_key_alias(&self.provider.stack))
            .secret_string(value.expose())
            .client_request_token(client_token(&self.provider.stack, self.step.address))
            .set_tags(Some(self.secret_tags()))
            .send()
            .await
            .map_err(call_error("secretsmanager:CreateSecret"))?;
        Ok(out.arn().unwrap_or(name).to_owned())
    }

    /// The secret called `name` exists: ours (restored when scheduled for deletion, its value
    /// brought to the spec's unless generated), or an error.
    async fn adopt_secret(&self, name: &str, value: &Secret) -> Result<String> {
        let described = self
            .clients
            .secrets
            .describe_secret()
            .secret_id(name)
            .send()
            .await
            .map_err(call_error("secretsmanager:DescribeSecret"))?;
        let tags = described.tags().iter().filter_map(|t| Some((t.key()?, t.value().unwrap_or_default())));
        toolkit::claim(&self.provider.stack, COMPONENT, self.step.address, &format!("secret {name}"), tags)?;
        let arn = described.arn().unwrap_or(name).to_owned();
        if described.deleted_date().is_some() {
            self.clients
                .secrets
                .restore_secret()
                .secret_id(&arn)
                .send()
                .await
                .map_err(call_error("secretsmanager:RestoreSecret"))?;
        }
        let generated = self.step.after.and_then(|a| a.get("source")).and_then(Value::as_str) == Some("generated");
        if !generated {
            let current = found(
                self.clients
                    .secrets
                    .get_secret_value()
                    .secret_id(&arn)
                    .send()
                    .await
                    .map_err(call_error("secretsmanager:GetSecretValue")),
                Missing::Resource,
            )?;
            let same = current
                .as_ref()
                .and_then(|out| out.secret_string())
                .is_some_and(|text| enclave_core::secret::digest(text) == value.digest());
            if !same {
                self.put_value(&arn, value).await?;
            }
        }
        Ok(arn)
    }

    async fn put_value(&self, arn: &str, value: &Secret) -> Result<()> {
        self.clients
            .secrets
            .put_secret_value()
            .secret_id(arn)
            .secret_string(value.expose())
            .client_request_token(version_token())
            .send()
            .await
            .map(drop)
            .map_err(call_error("secretsmanager:PutSecretValue"))
    }

    /// Brings the secret `arn` from `before` to the step's `after`; `created`: it was just made
    /// with its description, key, tags and value, only policy and rotation remain.
    async fn configure_secret(&self, arn: &str, before: Option<&Attributes>, created: bool) -> Result<()> {
        let after = self.step.after;
        let differs = |name: &str| created || changed(before, after, name);
        let sm = &self.clients.secrets;
        if !created && (changed(before, after, "description") || changed(before, after, "key")) {
            let description = after.and_then(|a| a.get("description")).and_then(Value::as_str).unwrap_or_default();
            sm.update_secret()
                .secret_id(arn)
                .description(description)
                .kms_key_id(account_key_alias(&self.provider.stack))
                .send()
                .await
                .map_err(call_error("secretsmanager:UpdateSecret"))?;
        }
        if !created && (changed(before, after, "source") || changed(before, after, "recovery_days")) {
            sm.tag_resource()
                .secret_id(arn)
                .set_tags(Some(self.secret_tags()))
                .send()
                .await
                .map_err(call_error("secretsmanager:TagResource"))?;
        }
        if !created && let Some(value) = self.value() {
            // Only a value whose digest differs travels in an update (never a generated one).
            self.put_value(arn, value).await?;
        }
        if differs("policy") {
            match after.and_then(|a| a.get("policy")).filter(|p| !p.is_null()) {
                Some(policy) => sm
                    .put_resource_policy()
                    .secret_id(arn)
                    .resource_policy(policy.to_string())
                    .block_public_policy(true)
                    .send()
                    .await
                    .map(drop)
                    .map_err(call_error("secretsmanager:PutResourcePolicy"))?,
                None if !created => sm
                    .delete_resource_policy()
                    .secret_id(arn)
                    .send()
                    .await
                    .map(drop)
                    .map_err(call_error("secretsmanager:DeleteResourcePolicy"))?,
                None => {}
            }
        }
        if differs("rotation") {
            let rotation = after.and_then(|a| a.get("rotation")).filter(|r| !r.is_null());
            match rotation {
                Some(rotation) => {
                    let lambda = rotation.get("lambda").and_then(Value::as_str).unwrap_or_default();
                    let days = rotation.get("days").and_then(Value::as_i64).unwrap_or(30);
                    sm.rotate_secret()
                        .secret_id(arn)
                        .rotation_lambda_arn(lambda)
                        .rotation_rules(RotationRulesType::builder().automatically_after_days(days).build())
                        .rotate_immediately(false)
                        .send()
                        .await
                        .map(drop)
                        .map_err(call_error("secretsmanager:RotateSecret"))?;
                }
                None if !created => sm
                    .cancel_rotate_secret()
                    .secret_id(arn)
                    .send()
                    .await
                    .map(drop)
                    .map_err(call_error("secretsmanager:CancelRotateSecret"))?,
                None => {}
            }
        }
        Ok(())
    }

    async fn delete_secret(&self, arn: &str) -> Result<()> {
        let mut request = self.clients.secrets.delete_secret().secret_id(arn);
        request = if self.provider.force_delete {
            request.force_delete_without_recovery(true)
        } else {
            let days = self.step.before.and_then(|b| b.get("recovery_days")).and_then(Value::as_i64).unwrap_or(7);
            request.recovery_window_in_days(days.clamp(7, 30))
        };
        match request.send().await.map_err(call_error("secretsmanager:DeleteSecret")) {
            Ok(_) => Ok(()),
            // Gone, or already scheduled for deletion.
            Err(error) if error.is(&Code::NotFound(Missing::Resource)) || error.is(&Code::InvalidRequest) => Ok(()),
            Err(error) => Err(error),
        }
    }

    async fn create_association(&self) -> Result<String> {
        let cluster = self.reference("cluster")?;
        let role = self.reference("role")?;
        let namespace = self.text("namespace")?;
        let account = self.text("service_account")?;
        let created = self
            .clients
            .eks
            .create_pod_identity_association()
            .cluster_name(&cluster)
            .namespace(&namespace)
            .service_account(&account)
            .role_arn(&role)
            .client_request_token(client_token(&self.provider.stack, self.step.address))
            .tags(STACK_TAG, &self.provider.stack)
            .tags(ADDRESS_TAG, self.step.address.to_string())
            .send()
            .await
            .map_err(call_error("eks:CreatePodIdentityAssociation"));
        match created {
            Ok(out) => {
                let id = out.association().and_then(|a| a.association_id()).unwrap_or_default();
                Ok(format!("{cluster}/{id}"))
            }
            Err(error) if error.is(&Code::InUse) => {
                // The service account has an association: ours (a retried create) or an error.
                let listed = self
                    .clients
                    .eks
                    .list_pod_identity_associations()
                    .cluster_name(&cluster)
                    .namespace(&namespace)
                    .service_account(&account)
                    .send()
                    .await
                    .map_err(call_error("eks:ListPodIdentityAssociations"))?;
                let id = listed.associations().iter().find_map(|a| a.association_id()).ok_or(error)?.to_owned();
                let described = self
                    .clients
                    .eks
                    .describe_pod_identity_association()
                    .cluster_name(&cluster)
                    .association_id(&id)
                    .send()
                    .await
                    .map_err(call_error("eks:DescribePodIdentityAssociation"))?;
                let association = described.association();
                let tags =
                    association.and_then(|a| a.tags()).into_iter().flatten().map(|(k, v)| (k.as_str(), v.as_str()));
                toolkit::claim(&self.provider.stack, COMPONENT, self.step.address, "the association", tags)?;
                if association.and_then(|a| a.role_arn()) != Some(role.as_str()) {
                    self.clients
                        .eks
                        .update_pod_identity_association()
                        .cluster_name(&cluster)
                        .association_id(&id)
                        .role_arn(&role)
                        .send()
                        .await
                        .map_err(call_error("eks:UpdatePodIdentityAssociation"))?;
                }
                Ok(format!("{cluster}/{id}"))
            }
            Err(error) => Err(error),
        }
    }
}

/// An association's id: `<cluster>/<association id>`.
fn association_id(id: &str) -> Result<(&str, &str)> {
    id.split_once('/').ok_or_else(|| CallError::enclave(format!("{id} is not an association id (cluster/id)")))
}

//! Every reconciled domain wired to AWS: connect to every account, observe, plan, apply,
//! destroy. The CLI's `plan`, `apply`, `drift` and `destroy` are thin layers over this.
//!
//! One run plans the selected domains ([`CloudOptions::domains`]) as one plan and applies it
//! through one [`Router`]: the network (`enclave-net`), access (`enclave-access`) and deploy
//! (`enclave-deploy`: the registry and clusters) and secrets (`enclave-secrets`). The
//! network is observed whenever access is selected too, for the ids access refers to (its
//! bastion's subnet and VPC), but only selected domains are planned or changed.
//!
//! Accounts removed from the spec are found through the stack's record of managed accounts
//! ([`enclave_aws::record`]): their resources are planned as deletes (or kept, with
//! [`RemovedAccounts::Keep`]). Apply records the spec's accounts before it changes anything, so
//! an account is never forgotten by a run that dies half-way.

use std::collections::{BTreeMap, BTreeSet};

use enclave_access::Image;
use enclave_access::apply::{Access, Account as AccessAccount};
use enclave_aws::{Aws, AwsOptions};
use enclave_core::Spec;
use enclave_core::plan::{self, Plan};
use enclave_core::reconcile::{self, Ids, Observed, Progress, Report, Router};
use enclave_net::NetworkModel;
use enclave_net::apply::{Network, Waits};
use enclave_net::clients::{CallError, Clients};

use crate::platform::Domain;

/// How to reach AWS for a run, and what it reconciles.
#[derive(Clone, Debug)]
pub struct CloudOptions {
    /// Endpoint override for every service (moto, a proxy). `AWS_ENDPOINT_URL` works too.
    pub endpoint_url: Option<String>,
    /// Bounds on waiting for NAT gateways, endpoints, instances and blocked deletes.
    pub waits: Waits,
    /// What to do with recorded accounts that are no longer in the model.
    pub removed_accounts: RemovedAccounts,
    /// The domains planned and changed (default: the network only).
    pub domains: BTreeSet<Domain>,
    /// The spec access is computed from; access is planned only with it.
    pub spec: Option<Spec>,
    /// Replace running bastions whose image is older than the latest Amazon Linux 2023 image
    /// (`--replace-bastion`); without it a running bastion keeps its image.
    pub replace_bastion: bool,
    /// Delete repositories that hold images, with their images (`--force-images`); without it
    /// such a delete fails and says so.
    pub force_images: bool,
    /// The values of the spec's secrets (`enclave::secret_values`); secrets are planned with
    /// their values unknown without them.
    pub secret_values: enclave_secrets::values::Values,
    /// Delete secrets at once, without a recovery window (`--force-delete-secrets`).
    pub force_delete_secrets: bool,
}

impl Default for CloudOptions {
    fn default() -> Self {
        CloudOptions {
            endpoint_url: None,
            waits: Waits::default(),
            removed_accounts: RemovedAccounts::default(),
            domains: BTreeSet::from([Domain::Net]),
            spec: None,
            replace_bastion: false,
            force_images: false,
            secret_values: enclave_secrets::values::Values::default(),
            force_delete_secrets: false,
        }
    }
}

/// A running bastion whose image is older than the latest one (kept unless
/// `--replace-bastion`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NewerImage {
    /// The account.
    pub account: String,
    /// The image the bastion runs.
    pub running: String,
    /// The latest Amazon Linux 2023 image.
    pub latest: String,
}

/// What a run does with the accounts the stack's record lists and the model does not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RemovedAccounts {
    /// Observe them and plan their resources as deletes (the default).
    #[default]
    Delete,
    /// Leave them and their resources alone, and keep them in the record (`--keep-removed-accounts`).
    Keep,
    /// The model is a selection (`--account`): accounts outside it are not part of this run.
    Ignore,
}

/// An account the record lists and the spec no longer names.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RemovedAccount {
    /// Its name in the spec it left.
    pub name: String,
    /// Its AWS account id.
    pub id: String,
}

/// Why a cloud command failed before changing anything.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CloudError {
    /// Assuming a member account's role failed.
    #[error(transparent)]
    Aws(#[from] enclave_aws::Error),
    /// Observing an account failed.
    #[error("observing account {account}: {source}")]
    Observe {
        /// The account.
        account: String,
        /// The failed call.
        source: CallError,
    },
    /// Reading the latest bastion image failed.
    #[error("reading the bastion image in account {account}: {source}")]
    Image {
        /// The account.
        account: String,
        /// The failed call.
        source: CallError,
    },
    /// The plan's dependencies form a cycle (a bug in a provider's resources).
    #[error(transparent)]
    Cycle(#[from] plan::CycleError),
}

impl CloudError {
    /// What to do about it, where that is known.
    pub fn hint(&self) -> Option<String> {
        match self {
            CloudError::Aws(error) => error.hint(),
            CloudError::Observe { source, .. } | CloudError::Image { source, .. } => source.hint(),
            CloudError::Cycle(_) => None,
        }
    }
}

/// AWS access for every account of a network model.
pub struct Cloud {
    aws: Aws,
    model: NetworkModel,
    network: Network,
    access: Access,
    registry: enclave_deploy::apply::Registry,
    secrets: enclave_secrets::apply::Secrets,
    domains: BTreeSet<Domain>,
    spec: Option<Spec>,
    secret_values: enclave_secrets::values::Values,
    replace_bastion: bool,
    newer_images: std::sync::Mutex<Vec<NewerImage>>,
    /// The record as last read or written by this run (`None`: there is none).
    recorded: std::sync::Mutex<Option<enclave_aws::record::Accounts>>,
    removed: Vec<RemovedAccount>,
    kept: Vec<RemovedAccount>,
}

/// What exists, across accounts and domains.
pub type Observation = Observed;

impl Cloud {
    /// Assumes the member role in every account of `model` (once each) and builds clients.
    pub async fn connect(model: NetworkModel, role_name: &str, options: &CloudOptions) -> Result<Cloud, CloudError> {
        let mut aws_options = AwsOptions::new(&model.region, role_name);
        aws_options.endpoint_url = options.endpoint_url.clone();
        Cloud::with_aws(Aws::connect(aws_options).await?, model, options).await
    }

    /// Like [`Cloud::connect`], with credentials and settings from `base` (tests, embedders).
    pub async fn from_config(
        base: aws_config::SdkConfig,
        model: NetworkModel,
        role_name: &str,
        options: &CloudOptions,
    ) -> Result<Cloud, CloudError> {
        let mut aws_options = AwsOptions::new(&model.region, role_name);
        aws_options.endpoint_url = options.endpoint_url.clone();
        Cloud::with_aws(Aws::from_config(base, aws_options), model, options).await
    }

    async fn with_aws(aws: Aws, model: NetworkModel, options: &CloudOptions) -> Result<Cloud, CloudError> {
        let recorded = aws.managed_accounts(&model.stack).await?;
        let gone: Vec<RemovedAccount> = recorded
            .iter()
            .flatten()
            .filter(|(name, _)| !model.accounts.iter().any(|network| &&network.account == name))
            .map(|(name, id)| RemovedAccount { name: name.clone(), id: id.clone() })
            .collect();
        let (removed, kept) = match options.removed_accounts {
            RemovedAccounts::Delete => (gone, Vec::new()),
            RemovedAccounts::Keep => (Vec::new(), gone),
            RemovedAccounts::Ignore => (Vec::new(), Vec::new()),
        };
        let mut accounts = BTreeMap::new();
        let mut access_accounts = BTreeMap::new();
        let mut deploy_accounts = BTreeMap::new();
        let mut secrets_accounts = BTreeMap::new();
        let members = model.accounts.iter().map(|n| (&n.account, &n.account_id));
        for (name, id) in members.chain(removed.iter().map(|r| (&r.name, &r.id))) {
            let config = aws.account(id).await?;
            accounts.insert(name.clone(), Clients::new(&config, &aws.counter()));
            access_accounts.insert(
                name.clone(),
                AccessAccount {
                    clients: enclave_access::clients::Clients::new(&config, &aws.counter()),
                    id: id.clone(),
                },
            );
            deploy_accounts
                .insert(name.clone(), (id.clone(), enclave_deploy::clients::Clients::new(&config, &aws.counter())));
            secrets_accounts.insert(name.clone(), enclave_secrets::clients::Clients::new(&config, &aws.counter()));
        }
        let network = Network::new(&model.stack, accounts).waits(options.waits);
        let access = Access::new(&model.stack, &model.region, access_accounts).waits(options.waits);
        let registry = enclave_deploy::apply::Registry::new(&model.stack, &model.region, deploy_accounts)
            .waits(options.waits)
            .force_images(options.force_images);
        let secrets = enclave_secrets::apply::Secrets::new(&model.stack, secrets_accounts)
            .waits(options.waits)
            .force_delete(options.force_delete_secrets);
        let recorded = std::sync::Mutex::new(recorded);
        let mut domains = options.domains.clone();
        if options.spec.is_none() {
            domains.remove(&Domain::Access);
            domains.remove(&Domain::Deploy);
            domains.remove(&Domain::Secrets);
        }
        Ok(Cloud {
            aws,
            model,
            network,
            access,
            registry,
            secrets,
            domains,
            spec: options.spec.clone(),
            secret_values: options.secret_values.clone(),
            replace_bastion: options.replace_bastion,
            newer_images: std::sync::Mutex::new(Vec::new()),
            recorded,
            removed,
            kept,
        })
    }

    /// Accounts the record lists that left the spec, whose resources this run deletes.
    pub fn removed_accounts(&self) -> &[RemovedAccount] {
        &self.removed
    }

    /// Accounts that left the spec and are kept as they are (`--keep-removed-accounts`).
    pub fn kept_accounts(&self) -> &[RemovedAccount] {
        &self.kept
    }

    /// The model this run works on.
    pub fn model(&self) -> &NetworkModel {
        &self.model
    }

    /// API calls made so far, by `service:Operation`.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.aws.calls()
    }

    /// The domains this run plans and changes.
    pub fn domains(&self) -> &BTreeSet<Domain> {
        &self.domains
    }

    /// Running bastions whose image is older than the latest (kept: `--replace-bastion`
    /// replaces them), as the last plan found them.
    pub fn newer_images(&self) -> Vec<NewerImage> {
        self.newer_images.lock().map(|images| images.clone()).unwrap_or_default()
    }

    /// Observes every account concurrently: the selected domains' resources, and the ids of
    /// the network's whenever access is selected (it refers to them).
    pub async fn observe(&self) -> Result<Observation, CloudError> {
        let with_access = self.domains.contains(&Domain::Access);
        let with_secrets = self.domains.contains(&Domain::Secrets);
        // Secrets' IRSA roles trust the clusters' OIDC providers: deploy is observed for their ids.
        let with_deploy = self.domains.contains(&Domain::Deploy) || with_secrets;
        let removed_ids: BTreeMap<&String, &String> = self.removed.iter().map(|r| (&r.name, &r.id)).collect();
        let names = self.model.accounts.iter().map(|n| (&n.account, &n.account_id)).chain(removed_ids);
        let observations = futures_util::future::join_all(names.map(|(account, account_id)| async move {
            let clients = self.network.clients(account).expect("clients for every account");
            let net = enclave_net::observe::observe(clients, &self.model.stack, account);
            let access = async {
                if !with_access {
                    return Ok(Observation::default());
                }
                let clients = &self.access.account(account).expect("clients for every account").clients;
                let scope = enclave_access::observe::Scope {
                    stack: &self.model.stack,
                    account,
                    account_id,
                    partition: enclave_core::region::partition(&self.model.region),
                };
                enclave_access::observe::observe(clients, scope).await
            };
            let deploy = async {
                if !with_deploy {
                    return Ok(Observation::default());
                }
                let clients = self.registry.clients(account).expect("clients for every account");
                let scope = enclave_deploy::observe::Scope { stack: &self.model.stack, account };
                enclave_deploy::observe::observe(clients, scope).await
            };
            let secrets = async {
                if !with_secrets {
                    return Ok(Observation::default());
                }
                let clients = self.secrets.clients(account).expect("clients for every account");
                let scope = enclave_secrets::observe::Scope { stack: &self.model.stack, account };
                enclave_secrets::observe::observe(clients, scope).await
            };
            let (net, access, deploy, secrets) = tokio::join!(net, access, deploy, secrets);
            (
                account.clone(),
                net.and_then(|mut net| {
                    net.extend(access?);
                    net.extend(deploy?);
                    net.extend(secrets?);
                    Ok(net)
                }),
            )
        }))
        .await;
        let mut all = Observation::default();
        for (account, observed) in observations {
            all.extend(observed.map_err(|source| CloudError::Observe { account, source })?);
        }
        enclave_secrets::observe::refer_providers(&mut all);
        Ok(all)
    }

    /// The observed resources of the selected domains (the plan's "before").
    fn selected(&self, observed: &Observation) -> Vec<plan::Resource> {
        let components: BTreeSet<&str> = self.domains.iter().map(|domain| domain.component()).collect();
        observed.resources.iter().filter(|r| components.contains(r.address.component())).cloned().collect()
    }

    /// Each account's bastion image: pinned in the spec; else the running bastion's (a newer
    /// one is noted, and used only with `--replace-bastion`); else the latest Amazon Linux 2023
    /// image, read from its SSM public parameter in that account.
    async fn bastion_images(&self, spec: &Spec, observed: &Observation) -> Result<BTreeMap<String, Image>, CloudError> {
        let mut images = BTreeMap::new();
        let mut newer = Vec::new();
        if !spec.access.bastion.enabled || !spec.access.session_manager.enabled {
            return Ok(images);
        }
        if let Some(ami) = &spec.access.bastion.ami {
            for account in &self.model.accounts {
                images.insert(account.account.clone(), Image::Pinned(ami.clone()));
            }
            return Ok(images);
        }
        let latest = futures_util::future::join_all(self.model.accounts.iter().map(|account| async move {
            let clients = &self.access.account(&account.account).expect("clients for every account").clients;
            (account.account.clone(), enclave_access::apply::latest_image(clients).await)
        }))
        .await;
        for (account, latest) in latest {
            let latest = latest.map_err(|source| CloudError::Image { account: account.clone(), source })?;
            let instance =
                enclave_access::resources::address(&account, enclave_access::kind::Kind::Instance, "bastion");
            let running = observed
                .resources
                .iter()
                .find(|r| r.address == instance)
                .and_then(|r| r.attributes.get("image"))
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned);
            let image = match running {
                Some(running) if running != latest && !self.replace_bastion => {
                    newer.push(NewerImage { account: account.clone(), running: running.clone(), latest });
                    running
                }
                _ => latest,
            };
            images.insert(account, Image::Resolved(image));
        }
        if let Ok(mut images) = self.newer_images.lock() {
            *images = newer;
        }
        Ok(images)
    }

    /// The desired resources of every selected domain.
    async fn desired(&self, observed: &Observation) -> Result<Vec<plan::Resource>, CloudError> {
        let mut desired = Vec::new();
        for domain in &self.domains {
            match domain {
                Domain::Net => desired.extend(enclave_net::resources::desired(&self.model)),
                Domain::Access => {
                    let Some(spec) = &self.spec else { continue };
                    let images = self.bastion_images(spec, observed).await?;
                    let model = crate::platform::access_model(spec, &self.model, &|account| {
                        images.get(account).cloned().unwrap_or(Image::Latest)
                    });
                    desired.extend(enclave_access::resources::desired(&model));
                }
                Domain::Deploy => {
                    let Some(spec) = &self.spec else { continue };
                    desired.extend(crate::platform::deploy_resources(spec, &self.model));
                }
                Domain::Secrets => {
                    let Some(spec) = &self.spec else { continue };
                    desired.extend(crate::platform::secrets_resources(spec, &self.model, &self.secret_values));
                }
            }
        }
        Ok(desired)
    }

    /// The plan that brings every account to the spec, and the ids to apply it with.
    pub async fn plan(&self) -> Result<(Plan, Observation), CloudError> {
        let observed = self.observe().await?;
        let desired = self.desired(&observed).await?;
        Ok((plan::diff(&desired, &self.selected(&observed))?, observed))
    }

    /// The plan that deletes everything this stack owns in the model's accounts (of the
    /// selected domains).
    pub async fn destroy_plan(&self) -> Result<(Plan, Observation), CloudError> {
        let observed = self.observe().await?;
        Ok((plan::diff(&[], &self.selected(&observed))?, observed))
    }

    /// Carries out `plan` (from [`Cloud::plan`]), at most `parallelism` steps at a time. The
    /// record of managed accounts gains the model's accounts before anything changes, and loses
    /// the removed accounts once every step succeeded.
    pub async fn apply(
        &self,
        plan: &Plan,
        observed: &Observation,
        parallelism: usize,
        progress: &dyn Progress,
    ) -> Result<Report, CloudError> {
        let mut record = self.record();
        for network in &self.model.accounts {
            record.insert(network.account.clone(), network.account_id.clone());
        }
        self.write_record(&record).await?;
        let report = self.walk(plan, observed, parallelism, progress).await;
        if report.is_success() && !self.removed.is_empty() {
            for account in &self.removed {
                record.remove(&account.name);
            }
            self.write_record(&record).await?;
        }
        Ok(report)
    }

    /// One walk of `plan` through every domain's provider, from the observed ids.
    async fn walk(&self, plan: &Plan, observed: &Observation, parallelism: usize, progress: &dyn Progress) -> Report {
        let ids = Ids::new(observed.ids.clone());
        reconcile::apply(plan, &self.router(), &ids, parallelism, progress).await
    }

    fn record(&self) -> enclave_aws::record::Accounts {
        self.recorded.lock().ok().and_then(|record| record.clone()).unwrap_or_default()
    }

    /// Writes the record when it differs from what this run last read or wrote: creates it,
    /// overwrites it (it was read, so it is ours) or, when no account is left, deletes it.
    async fn write_record(&self, record: &enclave_aws::record::Accounts) -> Result<(), CloudError> {
        let current = self.recorded.lock().ok().and_then(|record| record.clone());
        if current.as_ref() == Some(record) || (current.is_none() && record.is_empty()) {
            return Ok(());
        }
        let stack = &self.model.stack;
        let written = if record.is_empty() {
            self.aws.forget_managed_accounts(stack).await?;
            None
        } else {
            if current.is_some() {
                self.aws.update_managed_accounts(stack, record).await?;
            } else {
                self.aws.record_managed_accounts(stack, record).await?;
            }
            Some(record.clone())
        };
        if let Ok(mut recorded) = self.recorded.lock() {
            *recorded = written;
        }
        Ok(())
    }

    /// Carries out a plan from [`Cloud::destroy_plan`]. Once every step succeeded, the destroyed
    /// accounts leave the record (and the record goes when no account is left in it).
    pub async fn destroy(
        &self,
        plan: &Plan,
        observed: &Observation,
        parallelism: usize,
        progress: &dyn Progress,
    ) -> Result<Report, CloudError> {
        let report = self.walk(plan, observed, parallelism, progress).await;
        if report.is_success() {
            let mut record = self.record();
            for name in self.model.accounts.iter().map(|n| &n.account).chain(self.removed.iter().map(|r| &r.name)) {
                record.remove(name);
            }
            self.write_record(&record).await?;
        }
        Ok(report)
    }

    /// One provider per enabled domain, by component.
    fn router(&self) -> Router<'_> {
        Router::default()
            .route(enclave_net::resources::COMPONENT, &self.network)
            .route(enclave_access::resources::COMPONENT, &self.access)
            .route(enclave_deploy::resources::COMPONENT, &self.registry)
            .route(enclave_secrets::resources::COMPONENT, &self.secrets)
    }
}

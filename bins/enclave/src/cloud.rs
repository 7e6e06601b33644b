//! The network reconciler wired to AWS: connect to every account, observe, plan, apply,
//! destroy. The CLI's `plan`, `apply`, `drift` and `destroy` are thin layers over this.
//!
//! Accounts removed from the spec are found through the stack's record of managed accounts
//! ([`enclave_aws::record`]): their resources are planned as deletes (or kept, with
//! [`RemovedAccounts::Keep`]). Apply records the spec's accounts before it changes anything, so
//! an account is never forgotten by a run that dies half-way.

use std::collections::BTreeMap;

use enclave_aws::{Aws, AwsOptions};
use enclave_core::plan::{self, Plan};
use enclave_core::reconcile::{self, Ids, Observed, Progress, Report, Router};
use enclave_net::NetworkModel;
use enclave_net::apply::{Network, Waits};
use enclave_net::clients::{CallError, Clients};

/// How to reach AWS for a run.
#[derive(Clone, Debug, Default)]
pub struct CloudOptions {
    /// Endpoint override for every service (moto, a proxy). `AWS_ENDPOINT_URL` works too.
    pub endpoint_url: Option<String>,
    /// Bounds on waiting for NAT gateways, endpoints and blocked deletes.
    pub waits: Waits,
    /// What to do with recorded accounts that are no longer in the model.
    pub removed_accounts: RemovedAccounts,
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
    /// The plan's dependencies form a cycle (a bug in a provider's resources).
    #[error(transparent)]
    Cycle(#[from] plan::CycleError),
}

/// AWS access for every account of a network model.
pub struct Cloud {
    aws: Aws,
    model: NetworkModel,
    network: Network,
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
        Cloud::with_aws(Aws::connect(aws_options).await, model, options).await
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
        let members = model.accounts.iter().map(|n| (&n.account, &n.account_id));
        for (name, id) in members.chain(removed.iter().map(|r| (&r.name, &r.id))) {
            let config = aws.account(id).await?;
            accounts.insert(name.clone(), Clients::new(&config, &aws.counter()));
        }
        let network = Network::new(&model.stack, accounts).waits(options.waits);
        let recorded = std::sync::Mutex::new(recorded);
        Ok(Cloud { aws, model, network, recorded, removed, kept })
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

    /// Observes every account concurrently.
    pub async fn observe(&self) -> Result<Observation, CloudError> {
        let names = self.model.accounts.iter().map(|n| &n.account).chain(self.removed.iter().map(|r| &r.name));
        let observations = futures_util::future::join_all(names.map(|account| async move {
            let clients = self.network.clients(account).expect("clients for every account");
            let observed = enclave_net::observe::observe(clients, &self.model.stack, account).await;
            (account.clone(), observed)
        }))
        .await;
        let mut all = Observation::default();
        for (account, observed) in observations {
            all.extend(observed.map_err(|source| CloudError::Observe { account, source })?);
        }
        Ok(all)
    }

    /// The plan that brings every account to the spec, and the ids to apply it with.
    pub async fn plan(&self) -> Result<(Plan, Observation), CloudError> {
        let observed = self.observe().await?;
        let desired = enclave_net::resources::desired(&self.model);
        Ok((plan::diff(&desired, &observed.resources)?, observed))
    }

    /// The plan that deletes everything this stack owns in the model's accounts.
    pub async fn destroy_plan(&self) -> Result<(Plan, Observation), CloudError> {
        let observed = self.observe().await?;
        Ok((plan::diff(&[], &observed.resources)?, observed))
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
        Router::default().route(enclave_net::resources::COMPONENT, &self.network)
    }
}

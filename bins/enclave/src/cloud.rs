//! The network reconciler wired to AWS: connect to every account, observe, plan, apply,
//! destroy. The CLI's `plan`, `apply`, `drift` and `destroy` are thin layers over this.

use std::collections::BTreeMap;

use enclave_aws::{Aws, AwsOptions};
use enclave_core::Address;
use enclave_core::plan::{self, Plan, Resource};
use enclave_core::reconcile::{self, Ids, Progress, Report};
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
}

/// What exists, across accounts.
#[derive(Clone, Debug, Default)]
pub struct Observation {
    /// Observed resources.
    pub resources: Vec<Resource>,
    /// Their ids.
    pub ids: BTreeMap<Address, String>,
}

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
        let mut accounts = BTreeMap::new();
        for network in &model.accounts {
            let config = aws.account(&network.account_id).await?;
            accounts.insert(network.account.clone(), Clients::new(&config, &aws.counter()));
        }
        let network = Network::new(&model.stack, accounts).waits(options.waits);
        Ok(Cloud { aws, model, network })
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
        let observations = futures_util::future::join_all(self.model.accounts.iter().map(|network| async move {
            let clients = self.network.clients(&network.account).expect("clients for every account");
            let observed = enclave_net::observe::observe(clients, &self.model.stack, &network.account).await;
            (network.account.clone(), observed)
        }))
        .await;
        let mut all = Observation::default();
        for (account, observed) in observations {
            let observed = observed.map_err(|source| CloudError::Observe { account, source })?;
            all.resources.extend(observed.resources);
            all.ids.extend(observed.ids);
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

    /// Carries out `plan`, at most `parallelism` steps at a time.
    pub async fn apply(
        &self,
        plan: &Plan,
        observed: &Observation,
        parallelism: usize,
        progress: &dyn Progress,
    ) -> Report {
        let ids = Ids::new(observed.ids.clone());
        reconcile::apply(plan, &self.network, &ids, parallelism, progress).await
    }
}

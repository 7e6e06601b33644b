//! Applying a network plan: the [`Provider`] that creates, updates and deletes every network
//! resource kind through EC2, CloudWatch Logs and IAM.
//!
//! - Every create is tagged at create time (`TagSpecifications`) with [`STACK_TAG`],
//!   [`ADDRESS_TAG`] and the managed tags, never with a second call.
//! - Creates are made without the SDK's own retries. When one fails in a way that may have
//!   reached AWS anyway (a 5xx, a lost connection, a timeout), the resource is looked up by its
//!   address tag (or, for routes and associations, in its route table) before trying again, so
//!   no retry makes a duplicate. `ClientToken`, derived from stack and address, is sent too where
//!   the API has it (NAT gateways, route tables, endpoints, flow logs).
//! - Throttling is retried with full-jitter backoff and never fails a step that would succeed
//!   later; other calls keep the SDK's standard retries, and "already done" answers
//!   (`*.NotFound` on delete, `InvalidPermission.Duplicate`, `RouteAlreadyExists`, ...) count as
//!   success.
//! - NAT gateways and endpoints are waited for (`available` after create, gone after delete)
//!   with the bounded [`Waits`]; deletes blocked by `DependencyViolation` are retried within the
//!   same bound, and a VPC that stays blocked is reported with the untagged resources in it,
//!   which are never touched.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use aws_sdk_ec2::types::{
    AttributeBooleanValue, ConnectivityType, DomainType, FlowLogsResourceType, LogDestinationType, ResourceType, Tag,
    TagSpecification, TrafficType, VpcEndpointType,
};
use enclave_core::Address;
use enclave_core::plan::{Attributes, Change};
use enclave_core::reconcile::{Ids, Operation, Provider, Step};
use serde_json::Value;

use enclave_aws::reconcile::{self as toolkit, WaitState};

use crate::clients::{CallError, Clients, Code, Existing, Missing, call_error};
use crate::kind::{Kind, UnknownKind};
use crate::observe::{MANAGED_TAGS, Tagged, address_filter, owned, stack_filter};
use crate::resources::{ADDRESS_TAG, ROLE_PATH, STACK_TAG};

mod endpoints;
mod flow_logs;
mod routing;
mod security;
mod vpc;

pub use enclave_aws::reconcile::{Waits, client_token};

/// The network provider: one [`Clients`] per account name.
#[derive(Clone, Debug)]
pub struct Network {
    stack: String,
    accounts: BTreeMap<String, Clients>,
    waits: Waits,
    attempts: u32,
}

impl Network {
    /// A provider for `stack` over the given accounts' clients.
    pub fn new(stack: &str, accounts: BTreeMap<String, Clients>) -> Self {
        Network { stack: stack.to_owned(), accounts, waits: Waits::default(), attempts: 10 }
    }

    /// Sets the wait bounds.
    #[must_use]
    pub fn waits(mut self, waits: Waits) -> Self {
        self.waits = waits;
        self
    }

    /// The clients of `account`.
    pub fn clients(&self, account: &str) -> Option<&Clients> {
        self.accounts.get(account)
    }
}

type Result<T> = std::result::Result<T, CallError>;

fn no_retry() -> aws_sdk_ec2::config::Builder {
    aws_sdk_ec2::config::Builder::default().retry_config(aws_sdk_ec2::config::retry::RetryConfig::disabled())
}

fn text<'a>(attributes: Option<&'a Attributes>, name: &str) -> Option<&'a str> {
    attributes?.get(name)?.as_str()
}

fn flag(attributes: Option<&Attributes>, name: &str) -> Option<bool> {
    attributes?.get(name)?.as_bool()
}

fn list(attributes: Option<&Attributes>, name: &str) -> Vec<String> {
    attributes
        .and_then(|a| a.get(name))
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

fn changed(step: &Step<'_>, name: &str) -> bool {
    step.before.and_then(|b| b.get(name)) != step.after.and_then(|a| a.get(name))
}

fn managed_tags(attributes: Option<&Attributes>) -> Vec<(String, String)> {
    attributes
        .and_then(|a| a.get("tags"))
        .and_then(Value::as_object)
        .map(|tags| tags.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
        .unwrap_or_default()
}

fn ec2_tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

/// A step's context: the provider, the account's clients and the known ids.
struct Context<'a> {
    network: &'a Network,
    clients: &'a Clients,
    step: &'a Step<'a>,
    ids: &'a Ids,
}

impl Context<'_> {
    fn address(&self) -> &Address {
        self.step.address
    }

    /// The id of the first item owned by this stack at this step's address. Lookups check the
    /// tags themselves instead of trusting the server's tag filter (moto ignores it for some
    /// types, NAT gateways among them).
    fn first_ours<'i, T: Tagged + 'i>(&self, items: impl IntoIterator<Item = &'i T>) -> Option<String> {
        items.into_iter().find_map(|item| {
            owned(item, &self.network.stack)
                .filter(|(_, address)| address == self.address())
                .map(|(id, _)| id.to_owned())
        })
    }

    fn tag_specification(&self, resource_type: ResourceType) -> TagSpecification {
        let mut builder = TagSpecification::builder()
            .resource_type(resource_type)
            .tags(ec2_tag(STACK_TAG, &self.network.stack))
            .tags(ec2_tag(ADDRESS_TAG, &self.address().to_string()));
        for (key, value) in managed_tags(self.step.after) {
            builder = builder.tags(ec2_tag(&key, &value));
        }
        builder.build()
    }

    fn token(&self) -> String {
        client_token(&self.network.stack, self.address())
    }

    /// The id of the resource whose address is the desired attribute `name`.
    fn reference(&self, name: &str) -> Result<String> {
        let address = text(self.step.after.or(self.step.before), name)
            .ok_or_else(|| CallError::enclave(format!("{}: attribute {name} is missing", self.address())))?;
        self.ids
            .resolve(address)
            .ok_or_else(|| CallError::enclave(format!("{}: {address} (its {name}) has no id yet", self.address())))
    }

    fn references(&self, name: &str, attributes: Option<&Attributes>) -> Result<Vec<String>> {
        list(attributes, name)
            .iter()
            .map(|address| {
                self.ids
                    .resolve(address)
                    .ok_or_else(|| CallError::enclave(format!("{}: {address} (in {name}) has no id", self.address())))
            })
            .collect()
    }

    fn own_id(&self) -> Result<String> {
        self.ids.get(self.address()).ok_or_else(|| CallError::enclave(format!("{} has no known id", self.address())))
    }

    /// Runs `create` without SDK retries; after a failure that may have reached AWS, asks
    /// `lookup` whether the resource exists before trying again.
    async fn create<L, LF, C, CF>(&self, lookup: L, create: C) -> Result<String>
    where
        L: Fn() -> LF,
        LF: Future<Output = Result<Option<String>>>,
        C: Fn() -> CF,
        CF: Future<Output = Result<String>>,
    {
        toolkit::create(self.address(), self.network.attempts, lookup, create).await
    }

    /// Polls `check` until it says done, within the wait bounds.
    async fn wait<F, Fut>(&self, what: &str, check: F) -> Result<()>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<WaitState>>,
    {
        toolkit::wait(self.address(), what, self.network.waits, check).await
    }

    /// Runs a delete; this kind's own "not found" is success, `DependencyViolation` is retried
    /// within the wait bounds.
    async fn delete<F, Fut>(&self, delete: F) -> Result<()>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        let gone = self.address().kind().parse().map_or(&[][..], gone_codes);
        toolkit::delete(
            self.network.waits,
            |error| gone.iter().any(|missing| error.is(&Code::NotFound(*missing))),
            delete,
        )
        .await
    }

    /// Brings the managed tags of an EC2 resource to the desired ones.
    async fn sync_tags(&self, id: &str) -> Result<()> {
        if !changed(self.step, "tags") {
            return Ok(());
        }
        let wanted: BTreeMap<String, String> = managed_tags(self.step.after).into_iter().collect();
        let ec2 = &self.clients.ec2;
        let mut create = ec2.create_tags().resources(id);
        for (key, value) in &wanted {
            create = create.tags(ec2_tag(key, value));
        }
        create.send().await.map_err(call_error("ec2:CreateTags"))?;
        let stale: Vec<String> = managed_tags(self.step.before)
            .into_iter()
            .map(|(key, _)| key)
            .filter(|key| !wanted.contains_key(key) && MANAGED_TAGS.contains(&key.as_str()))
            .collect();
        if !stale.is_empty() {
            let mut delete = ec2.delete_tags().resources(id);
            for key in stale {
                delete = delete.tags(Tag::builder().key(key).build());
            }
            delete.send().await.map_err(call_error("ec2:DeleteTags"))?;
        }
        Ok(())
    }
}

/// What "not found" says that a resource of `kind` is already gone: its delete is done. Only
/// the resource's own "not found" counts; `InvalidRoute.NotFound` from deleting an endpoint says
/// something else entirely.
fn gone_codes(kind: Kind) -> &'static [Missing] {
    match kind {
        Kind::Vpc => &[Missing::Vpc],
        Kind::Subnet => &[Missing::Subnet],
        Kind::InternetGateway => &[Missing::InternetGateway],
        Kind::Eip => &[Missing::Allocation],
        Kind::NatGateway => &[Missing::NatGateway],
        Kind::RouteTable => &[Missing::RouteTable],
        Kind::RouteTableAssociation => &[Missing::Association],
        Kind::Route => &[Missing::Route],
        Kind::SecurityGroup | Kind::DefaultSecurityGroup => &[Missing::SecurityGroup],
        Kind::VpcEndpoint => &[Missing::VpcEndpoint],
        Kind::FlowLog => &[Missing::FlowLog],
        Kind::LogGroup => &[Missing::Resource],
        Kind::IamRole => &[Missing::Entity],
    }
}

impl Provider for Network {
    type Error = CallError;

    /// Subnets and VPCs collide only when their CIDR blocks overlap; other kinds share names
    /// (security groups, roles, the one endpoint per service) whenever they are of one kind.
    fn collides(&self, create: &Change, delete: &Change) -> bool {
        if create.address.account() != delete.address.account() || create.address.kind() != delete.address.kind() {
            return false;
        }
        let cidr = |attributes: Option<&Attributes>| text(attributes, "cidr_block")?.parse::<ipnet::Ipv4Net>().ok();
        let Ok(kind) = create.address.kind().parse::<Kind>() else { return true };
        match kind {
            Kind::Subnet | Kind::Vpc => match (cidr(create.after.as_ref()), cidr(delete.before.as_ref())) {
                (Some(new), Some(old)) => new.contains(&old.network()) || old.contains(&new.network()),
                // An address space that cannot be read may overlap.
                (None, _) | (_, None) => true,
            },
            // Names (security groups, roles), one per service (endpoints), one per subnet
            // (associations), one per destination (routes): every pair of one kind may collide.
            Kind::InternetGateway
            | Kind::Eip
            | Kind::NatGateway
            | Kind::RouteTable
            | Kind::RouteTableAssociation
            | Kind::Route
            | Kind::SecurityGroup
            | Kind::DefaultSecurityGroup
            | Kind::VpcEndpoint
            | Kind::FlowLog
            | Kind::LogGroup
            | Kind::IamRole => true,
        }
    }

    async fn run(&self, step: &Step<'_>, ids: &Ids) -> Result<Option<String>> {
        let account = step.address.account();
        let clients = self
            .accounts
            .get(account)
            .ok_or_else(|| CallError::enclave(format!("no AWS access configured for account {account}")))?;
        let context = Context { network: self, clients, step, ids };
        let kind: Kind = step
            .address
            .kind()
            .parse()
            .map_err(|error: UnknownKind| CallError::enclave(format!("{}: {error}", step.address)))?;
        match step.operation {
            Operation::Create => context.create_resource(kind).await.map(Some),
            Operation::Update => context.update_resource(kind).await,
            Operation::Delete => context.delete_resource(kind).await.map(|()| None),
        }
    }
}

impl Context<'_> {
    async fn lookup_tagged<F, Fut>(&self, describe: F) -> Result<Option<String>>
    where
        F: Fn(aws_sdk_ec2::types::Filter, aws_sdk_ec2::types::Filter) -> Fut,
        Fut: Future<Output = Result<Option<String>>>,
    {
        describe(stack_filter(&self.network.stack), address_filter(self.address())).await
    }

    /// Creates the step's resource; its id.
    async fn create_resource(&self, kind: Kind) -> Result<String> {
        match kind {
            Kind::Vpc => self.create_vpc().await,
            Kind::Subnet => self.create_subnet().await,
            Kind::InternetGateway => self.create_internet_gateway().await,
            Kind::Eip => self.create_eip().await,
            Kind::NatGateway => self.create_nat_gateway().await,
            Kind::RouteTable => self.create_route_table().await,
            Kind::RouteTableAssociation => self.create_route_table_association().await,
            Kind::Route => self.create_route().await,
            Kind::SecurityGroup => self.create_security_group().await,
            Kind::DefaultSecurityGroup => self.create_default_security_group().await,
            Kind::VpcEndpoint => self.create_vpc_endpoint().await,
            Kind::FlowLog => self.create_flow_log().await,
            Kind::LogGroup => self.create_log_group().await,
            Kind::IamRole => self.create_iam_role().await,
        }
    }

    /// Changes the step's resource in place; its new id when the change gives it one. Refuses an
    /// attribute the kind cannot change in place ([`Kind::updatable`]) instead of skipping it.
    async fn update_resource(&self, kind: Kind) -> Result<Option<String>> {
        toolkit::check_in_place(self.step, kind.as_str(), kind.updatable(), &[])?;
        let id = self.own_id()?;
        let new_id = match kind {
            Kind::Vpc => self.vpc_attributes(&id, false).await.map(|()| None)?,
            Kind::Subnet if changed(self.step, "map_public_ip_on_launch") => {
                self.subnet_attributes(&id).await.map(|()| None)?
            }
            Kind::InternetGateway if changed(self.step, "vpc") => {
                self.attach_gateway(&id, &self.reference("vpc")?).await.map(|()| None)?
            }
            Kind::RouteTableAssociation if changed(self.step, "route_table") => {
                Some(self.replace_association(&id, &self.reference("route_table")?).await?)
            }
            Kind::SecurityGroup | Kind::DefaultSecurityGroup
                if changed(self.step, "ingress") || changed(self.step, "egress") =>
            {
                self.sync_rules(&id).await.map(|()| None)?
            }
            Kind::VpcEndpoint => self.update_vpc_endpoint(&id).await.map(|()| None)?,
            Kind::LogGroup => self.retention(&id).await.map(|()| None)?,
            Kind::IamRole => self.update_iam_role().await.map(|()| None)?,
            // A route's target changes in place (`ReplaceRoute`), from its table.
            Kind::Route => {
                let table = self.reference("route_table")?;
                self.replace_route(&table, text(self.step.after, "destination").unwrap_or_default()).await.map(Some)?
            }
            // Only tags can change for these (checked above), and only when their attribute
            // changed for the guarded ones.
            Kind::Subnet
            | Kind::InternetGateway
            | Kind::RouteTableAssociation
            | Kind::SecurityGroup
            | Kind::DefaultSecurityGroup
            | Kind::Eip
            | Kind::NatGateway
            | Kind::RouteTable
            | Kind::FlowLog => None,
        };
        if kind.updatable().contains(&"tags") {
            self.sync_tags(&id).await?;
        }
        Ok(new_id)
    }

    /// Deletes the step's resource (nothing to do when it has no id: never made or gone).
    async fn delete_resource(&self, kind: Kind) -> Result<()> {
        let Some(id) = self.ids.get(self.address()) else { return Ok(()) };
        match kind {
            Kind::Vpc => self.delete_vpc(id).await,
            Kind::Subnet => self.delete_subnet(id).await,
            Kind::InternetGateway => self.delete_internet_gateway(id).await,
            Kind::Eip => self.delete_eip(id).await,
            Kind::NatGateway => self.delete_nat_gateway(id).await,
            Kind::RouteTable => self.delete_route_table(id).await,
            Kind::RouteTableAssociation => self.delete_route_table_association(id).await,
            Kind::Route => self.delete_route(id).await,
            Kind::SecurityGroup => self.delete_security_group(id).await,
            Kind::DefaultSecurityGroup => self.delete_default_security_group(id).await,
            Kind::VpcEndpoint => self.delete_vpc_endpoint(id).await,
            Kind::FlowLog => self.delete_flow_log(id).await,
            Kind::LogGroup => self.delete_log_group(id).await,
            Kind::IamRole => self.delete_iam_role(id).await,
        }
    }
}

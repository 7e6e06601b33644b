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
    AttributeBooleanValue, ConnectivityType, DomainType, FlowLogsResourceType, IpPermission, IpRange,
    LogDestinationType, ResourceType, Tag, TagSpecification, TrafficType, VpcEndpointType,
};
use enclave_core::Address;
use enclave_core::plan::{Attributes, Change};
use enclave_core::reconcile::{Ids, Operation, Provider, Step};
use serde_json::Value;

use enclave_aws::reconcile::{self as toolkit, WaitState};

use crate::clients::{CallError, Clients, Code, Existing, Missing, call_error};
use crate::observe::{MANAGED_TAGS, Tagged, address_filter, owned, rule_strings, stack_filter};
use crate::resources::{ADDRESS_TAG, ROLE_PATH, STACK_TAG};

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

/// A parsed `tcp/443 10.1.0.0/16` rule, as an EC2 permission.
fn permission(rule: &str) -> Option<IpPermission> {
    let (protocol_ports, range) = rule.split_once(' ')?;
    let (protocol, ports) = protocol_ports.split_once('/').unwrap_or((protocol_ports, ""));
    let (from, to) = match ports.split_once('-') {
        Some((from, to)) => (from.parse().ok()?, to.parse().ok()?),
        None if ports.is_empty() => (-1, -1),
        None => (ports.parse().ok()?, ports.parse().ok()?),
    };
    let mut builder = IpPermission::builder().ip_protocol(protocol);
    if protocol != "-1" {
        builder = builder.from_port(from).to_port(to);
    }
    if range.starts_with("sg-") {
        builder = builder.user_id_group_pairs(aws_sdk_ec2::types::UserIdGroupPair::builder().group_id(range).build());
    } else if range.starts_with("pl-") {
        builder = builder.prefix_list_ids(aws_sdk_ec2::types::PrefixListId::builder().prefix_list_id(range).build());
    } else if range.contains(':') {
        builder = builder.ipv6_ranges(aws_sdk_ec2::types::Ipv6Range::builder().cidr_ipv6(range).build());
    } else {
        builder = builder.ip_ranges(IpRange::builder().cidr_ip(range).build());
    }
    Some(builder.build())
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
        let gone = gone_codes(self.address().kind());
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
fn gone_codes(kind: &str) -> &'static [Missing] {
    match kind {
        "vpc" => &[Missing::Vpc],
        "subnet" => &[Missing::Subnet],
        "internet-gateway" => &[Missing::InternetGateway],
        "eip" => &[Missing::Allocation],
        "nat-gateway" => &[Missing::NatGateway],
        "route-table" => &[Missing::RouteTable],
        "route-table-association" => &[Missing::Association],
        "route" => &[Missing::Route],
        "security-group" | "default-security-group" => &[Missing::SecurityGroup],
        "vpc-endpoint" => &[Missing::VpcEndpoint],
        "flow-log" => &[Missing::FlowLog],
        "log-group" => &[Missing::Resource],
        "iam-role" => &[Missing::Entity],
        _ => &[],
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
        match create.address.kind() {
            "subnet" | "vpc" => match (cidr(create.after.as_ref()), cidr(delete.before.as_ref())) {
                (Some(new), Some(old)) => new.contains(&old.network()) || old.contains(&new.network()),
                _ => true,
            },
            _ => true,
        }
    }

    async fn run(&self, step: &Step<'_>, ids: &Ids) -> Result<Option<String>> {
        let account = step.address.account();
        let clients = self
            .accounts
            .get(account)
            .ok_or_else(|| CallError::enclave(format!("no AWS access configured for account {account}")))?;
        let context = Context { network: self, clients, step, ids };
        let kind = step.address.kind();
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

    async fn create_resource(&self, kind: &str) -> Result<String> {
        let ec2 = &self.clients.ec2;
        let after = self.step.after;
        match kind {
            "vpc" => {
                let cidr = text(after, "cidr_block").unwrap_or_default();
                let id = self
                    .create(
                        || {
                            self.lookup_tagged(|stack, address| async move {
                                let out = ec2
                                    .describe_vpcs()
                                    .filters(stack)
                                    .filters(address)
                                    .send()
                                    .await
                                    .map_err(call_error("ec2:DescribeVpcs"))?;
                                Ok(self.first_ours(out.vpcs()))
                            })
                        },
                        || async {
                            let out = ec2
                                .create_vpc()
                                .cidr_block(cidr)
                                .tag_specifications(self.tag_specification(ResourceType::Vpc))
                                .customize()
                                .config_override(no_retry())
                                .send()
                                .await
                                .map_err(call_error("ec2:CreateVpc"))?;
                            Ok(out.vpc().and_then(|v| v.vpc_id()).unwrap_or_default().to_owned())
                        },
                    )
                    .await?;
                self.vpc_attributes(&id, true).await?;
                Ok(id)
            }
            "subnet" => {
                let vpc = self.parent_vpc()?;
                let id = self
                    .create(
                        || {
                            self.lookup_tagged(|stack, address| async move {
                                let out = ec2
                                    .describe_subnets()
                                    .filters(stack)
                                    .filters(address)
                                    .send()
                                    .await
                                    .map_err(call_error("ec2:DescribeSubnets"))?;
                                Ok(self.first_ours(out.subnets()))
                            })
                        },
                        || async {
                            let out = ec2
                                .create_subnet()
                                .vpc_id(&vpc)
                                .cidr_block(text(after, "cidr_block").unwrap_or_default())
                                .availability_zone(text(after, "availability_zone").unwrap_or_default())
                                .tag_specifications(self.tag_specification(ResourceType::Subnet))
                                .customize()
                                .config_override(no_retry())
                                .send()
                                .await
                                .map_err(call_error("ec2:CreateSubnet"))?;
                            Ok(out.subnet().and_then(|s| s.subnet_id()).unwrap_or_default().to_owned())
                        },
                    )
                    .await?;
                if flag(after, "map_public_ip_on_launch") == Some(true) {
                    self.subnet_attributes(&id).await?;
                }
                Ok(id)
            }
            "internet-gateway" => {
                let vpc = self.reference("vpc")?;
                let id = self
                    .create(
                        || {
                            self.lookup_tagged(|stack, address| async move {
                                let out = ec2
                                    .describe_internet_gateways()
                                    .filters(stack)
                                    .filters(address)
                                    .send()
                                    .await
                                    .map_err(call_error("ec2:DescribeInternetGateways"))?;
                                Ok(self.first_ours(out.internet_gateways()))
                            })
                        },
                        || async {
                            let out = ec2
                                .create_internet_gateway()
                                .tag_specifications(self.tag_specification(ResourceType::InternetGateway))
                                .customize()
                                .config_override(no_retry())
                                .send()
                                .await
                                .map_err(call_error("ec2:CreateInternetGateway"))?;
                            Ok(out
                                .internet_gateway()
                                .and_then(|g| g.internet_gateway_id())
                                .unwrap_or_default()
                                .to_owned())
                        },
                    )
                    .await?;
                self.attach_gateway(&id, &vpc).await?;
                Ok(id)
            }
            "eip" => {
                self.create(
                    || {
                        self.lookup_tagged(|stack, address| async move {
                            let out = ec2
                                .describe_addresses()
                                .filters(stack)
                                .filters(address)
                                .send()
                                .await
                                .map_err(call_error("ec2:DescribeAddresses"))?;
                            Ok(self.first_ours(out.addresses()))
                        })
                    },
                    || async {
                        let out = ec2
                            .allocate_address()
                            .domain(DomainType::Vpc)
                            .tag_specifications(self.tag_specification(ResourceType::ElasticIp))
                            .customize()
                            .config_override(no_retry())
                            .send()
                            .await
                            .map_err(call_error("ec2:AllocateAddress"))?;
                        Ok(out.allocation_id().unwrap_or_default().to_owned())
                    },
                )
                .await
            }
            "nat-gateway" => {
                let subnet = self.reference("subnet")?;
                let allocation = self.reference("allocation")?;
                let id = self
                    .create(
                        || {
                            self.lookup_tagged(|stack, address| async move {
                                let out = ec2
                                    .describe_nat_gateways()
                                    .filter(stack)
                                    .filter(address)
                                    .send()
                                    .await
                                    .map_err(call_error("ec2:DescribeNatGateways"))?;
                                Ok(self.first_ours(out.nat_gateways().iter().filter(|n| {
                                    n.state().is_some_and(|s| matches!(s.as_str(), "pending" | "available"))
                                })))
                            })
                        },
                        || async {
                            let out = ec2
                                .create_nat_gateway()
                                .subnet_id(&subnet)
                                .allocation_id(&allocation)
                                .connectivity_type(ConnectivityType::Public)
                                .client_token(self.token())
                                .tag_specifications(self.tag_specification(ResourceType::Natgateway))
                                .customize()
                                .config_override(no_retry())
                                .send()
                                .await
                                .map_err(call_error("ec2:CreateNatGateway"))?;
                            Ok(out.nat_gateway().and_then(|n| n.nat_gateway_id()).unwrap_or_default().to_owned())
                        },
                    )
                    .await?;
                self.wait_nat(&id, "available").await?;
                Ok(id)
            }
            "route-table" => {
                let vpc = self.reference("vpc")?;
                self.create(
                    || {
                        self.lookup_tagged(|stack, address| async move {
                            let out = ec2
                                .describe_route_tables()
                                .filters(stack)
                                .filters(address)
                                .send()
                                .await
                                .map_err(call_error("ec2:DescribeRouteTables"))?;
                            Ok(self.first_ours(out.route_tables()))
                        })
                    },
                    || async {
                        let out = ec2
                            .create_route_table()
                            .vpc_id(&vpc)
                            .client_token(self.token())
                            .tag_specifications(self.tag_specification(ResourceType::RouteTable))
                            .customize()
                            .config_override(no_retry())
                            .send()
                            .await
                            .map_err(call_error("ec2:CreateRouteTable"))?;
                        Ok(out.route_table().and_then(|t| t.route_table_id()).unwrap_or_default().to_owned())
                    },
                )
                .await
            }
            "route-table-association" => {
                let table = self.reference("route_table")?;
                let subnet = self.association_subnet()?;
                let lookup = || async {
                    let out = ec2
                        .describe_route_tables()
                        .filters(
                            aws_sdk_ec2::types::Filter::builder().name("association.subnet-id").values(&subnet).build(),
                        )
                        .send()
                        .await
                        .map_err(call_error("ec2:DescribeRouteTables"))?;
                    Ok(out.route_tables().iter().flat_map(|t| t.associations()).find_map(|a| {
                        (a.subnet_id() == Some(subnet.as_str()))
                            .then(|| {
                                (a.route_table_association_id().unwrap_or_default().to_owned(), a.route_table_id())
                            })
                            .map(|(id, table)| (id, table.map(str::to_owned)))
                    }))
                };
                let created = self
                    .create(
                        || async { Ok(lookup().await?.map(|(id, _)| id)) },
                        || async {
                            let out = ec2
                                .associate_route_table()
                                .route_table_id(&table)
                                .subnet_id(&subnet)
                                .customize()
                                .config_override(no_retry())
                                .send()
                                .await
                                .map_err(call_error("ec2:AssociateRouteTable"))?;
                            Ok(out.association_id().unwrap_or_default().to_owned())
                        },
                    )
                    .await;
                // A subnet has one association: when it already has one elsewhere (by hand, or
                // from an earlier table), move it to ours.
                match created {
                    Err(error) if error.is(&Code::AlreadyExists(Existing::Association)) => match lookup().await? {
                        Some((id, current)) if current.as_deref() != Some(table.as_str()) => {
                            self.replace_association(&id, &table).await
                        }
                        Some((id, _)) => Ok(id),
                        None => Err(error),
                    },
                    other => other,
                }
            }
            "route" => {
                let table = self.reference("route_table")?;
                let destination = text(after, "destination").unwrap_or_default().to_owned();
                let exists = || async {
                    let out = ec2
                        .describe_route_tables()
                        .route_table_ids(&table)
                        .send()
                        .await
                        .map_err(call_error("ec2:DescribeRouteTables"))?;
                    let found = out
                        .route_tables()
                        .iter()
                        .flat_map(|t| t.routes())
                        .any(|r| r.destination_cidr_block() == Some(destination.as_str()));
                    Ok(found.then(|| format!("{table}/{destination}")))
                };
                let result = self
                    .create(exists, || async {
                        let request = ec2.create_route().route_table_id(&table).destination_cidr_block(&destination);
                        let request = self.route_target(request)?;
                        request
                            .customize()
                            .config_override(no_retry())
                            .send()
                            .await
                            .map_err(call_error("ec2:CreateRoute"))?;
                        Ok(format!("{table}/{destination}"))
                    })
                    .await;
                match result {
                    Err(error) if error.is(&Code::AlreadyExists(Existing::Route)) => {
                        self.replace_route(&table, &destination).await
                    }
                    other => other,
                }
            }
            "security-group" => {
                let vpc = self.parent_vpc()?;
                let name = format!("enclave-{}", self.address().name());
                let description = text(after, "description").unwrap_or("enclave").to_owned();
                let id = self
                    .create(
                        || {
                            self.lookup_tagged(|stack, address| async move {
                                let out = ec2
                                    .describe_security_groups()
                                    .filters(stack)
                                    .filters(address)
                                    .send()
                                    .await
                                    .map_err(call_error("ec2:DescribeSecurityGroups"))?;
                                Ok(self.first_ours(out.security_groups()))
                            })
                        },
                        || async {
                            let out = ec2
                                .create_security_group()
                                .group_name(&name)
                                .description(&description)
                                .vpc_id(&vpc)
                                .tag_specifications(self.tag_specification(ResourceType::SecurityGroup))
                                .customize()
                                .config_override(no_retry())
                                .send()
                                .await
                                .map_err(call_error("ec2:CreateSecurityGroup"))?;
                            Ok(out.group_id().unwrap_or_default().to_owned())
                        },
                    )
                    .await?;
                self.sync_rules(&id).await?;
                Ok(id)
            }
            "default-security-group" => {
                // Created with the VPC: adopted, emptied and tagged.
                let vpc = self.parent_vpc()?;
                let out = ec2
                    .describe_security_groups()
                    .filters(aws_sdk_ec2::types::Filter::builder().name("vpc-id").values(&vpc).build())
                    .filters(aws_sdk_ec2::types::Filter::builder().name("group-name").values("default").build())
                    .send()
                    .await
                    .map_err(call_error("ec2:DescribeSecurityGroups"))?;
                let id = out
                    .security_groups()
                    .iter()
                    .filter(|g| g.vpc_id() == Some(vpc.as_str()) && g.group_name() == Some("default"))
                    .find_map(|g| g.group_id())
                    .ok_or_else(|| {
                        CallError::aws("ec2:DescribeSecurityGroups", None, format!("{vpc} has no default group"))
                    })?
                    .to_owned();
                self.sync_rules(&id).await?;
                let mut tags = ec2
                    .create_tags()
                    .resources(&id)
                    .tags(ec2_tag(STACK_TAG, &self.network.stack))
                    .tags(ec2_tag(ADDRESS_TAG, &self.address().to_string()));
                for (key, value) in managed_tags(after) {
                    tags = tags.tags(ec2_tag(&key, &value));
                }
                tags.send().await.map_err(call_error("ec2:CreateTags"))?;
                Ok(id)
            }
            "vpc-endpoint" => {
                let vpc = self.parent_vpc()?;
                let gateway = text(after, "type") == Some("Gateway");
                let subnets = self.references("subnets", after)?;
                let groups = self.references("security_groups", after)?;
                let tables = self.references("route_tables", after)?;
                let policy = after.and_then(|a| a.get("policy")).filter(|p| !p.is_null()).map(Value::to_string);
                let id = self
                    .create(
                        || {
                            self.lookup_tagged(|stack, address| async move {
                                let out = ec2
                                    .describe_vpc_endpoints()
                                    .filters(stack)
                                    .filters(address)
                                    .send()
                                    .await
                                    .map_err(call_error("ec2:DescribeVpcEndpoints"))?;
                                Ok(self.first_ours(
                                    out.vpc_endpoints().iter().filter(|e| {
                                        e.state().is_none_or(|s| !s.as_str().eq_ignore_ascii_case("deleted"))
                                    }),
                                ))
                            })
                        },
                        || async {
                            let mut request = ec2
                                .create_vpc_endpoint()
                                .vpc_id(&vpc)
                                .service_name(text(after, "service_name").unwrap_or_default())
                                .client_token(self.token())
                                .set_policy_document(policy.clone())
                                .tag_specifications(self.tag_specification(ResourceType::VpcEndpoint));
                            request = if gateway {
                                request
                                    .vpc_endpoint_type(VpcEndpointType::Gateway)
                                    .set_route_table_ids(Some(tables.clone()))
                            } else {
                                request
                                    .vpc_endpoint_type(VpcEndpointType::Interface)
                                    .set_subnet_ids(Some(subnets.clone()))
                                    .set_security_group_ids(Some(groups.clone()))
                                    .private_dns_enabled(flag(after, "private_dns_enabled").unwrap_or(true))
                            };
                            let out = request
                                .customize()
                                .config_override(no_retry())
                                .send()
                                .await
                                .map_err(call_error("ec2:CreateVpcEndpoint"))?;
                            Ok(out.vpc_endpoint().and_then(|e| e.vpc_endpoint_id()).unwrap_or_default().to_owned())
                        },
                    )
                    .await?;
                self.wait_endpoint(&id, true).await?;
                Ok(id)
            }
            "flow-log" => {
                if text(after, "destination_type") != Some("cloud-watch-logs") {
                    return Err(CallError::enclave(format!(
                        "{}: only cloud-watch-logs flow logs can be applied so far",
                        self.address()
                    )));
                }
                let vpc = self.parent_vpc()?;
                let group = self.reference("log_group")?;
                let role = self.reference("role")?;
                let traffic = TrafficType::from(text(after, "traffic_type").unwrap_or("ALL"));
                self.create(
                    || {
                        self.lookup_tagged(|stack, address| async move {
                            let out = ec2
                                .describe_flow_logs()
                                .filter(stack)
                                .filter(address)
                                .send()
                                .await
                                .map_err(call_error("ec2:DescribeFlowLogs"))?;
                            Ok(self.first_ours(out.flow_logs()))
                        })
                    },
                    || async {
                        let out = ec2
                            .create_flow_logs()
                            .resource_type(FlowLogsResourceType::Vpc)
                            .resource_ids(&vpc)
                            .traffic_type(traffic.clone())
                            .log_destination_type(LogDestinationType::CloudWatchLogs)
                            .log_group_name(&group)
                            .deliver_logs_permission_arn(&role)
                            .client_token(self.token())
                            .tag_specifications(self.tag_specification(ResourceType::VpcFlowLog))
                            .customize()
                            .config_override(no_retry())
                            .send()
                            .await
                            .map_err(call_error("ec2:CreateFlowLogs"))?;
                        if let Some(failure) = out.unsuccessful().first() {
                            let message = failure.error().and_then(|e| e.message()).unwrap_or("unknown error");
                            let code = failure.error().and_then(|e| e.code());
                            return Err(CallError::aws("ec2:CreateFlowLogs", code, message));
                        }
                        out.flow_log_ids()
                            .first()
                            .cloned()
                            .ok_or_else(|| CallError::aws("ec2:CreateFlowLogs", None, "no flow log id returned"))
                    },
                )
                .await
            }
            "log-group" => {
                let name = text(after, "name").unwrap_or_default().to_owned();
                let created = self
                    .clients
                    .logs
                    .create_log_group()
                    .log_group_name(&name)
                    .tags(STACK_TAG, &self.network.stack)
                    .tags(ADDRESS_TAG, self.address().to_string())
                    .send()
                    .await
                    .map_err(call_error("logs:CreateLogGroup"));
                match created {
                    Ok(_) => {}
                    Err(error) if error.is(&Code::AlreadyExists(Existing::Resource)) => {}
                    Err(error) => return Err(error),
                }
                self.retention(&name).await?;
                Ok(name)
            }
            "iam-role" => {
                let name = text(after, "name").unwrap_or_default().to_owned();
                let trust = after.and_then(|a| a.get("trust_policy")).map(Value::to_string).unwrap_or_default();
                let created = self
                    .clients
                    .iam
                    .create_role()
                    .role_name(&name)
                    .path(ROLE_PATH)
                    .assume_role_policy_document(&trust)
                    .description(format!("VPC flow-log delivery for {}", self.address()))
                    .tags(
                        aws_sdk_iam::types::Tag::builder()
                            .key(STACK_TAG)
                            .value(&self.network.stack)
                            .build()
                            .map_err(|error| CallError::aws("iam:CreateRole", None, error.to_string()))?,
                    )
                    .tags(
                        aws_sdk_iam::types::Tag::builder()
                            .key(ADDRESS_TAG)
                            .value(self.address().to_string())
                            .build()
                            .map_err(|error| CallError::aws("iam:CreateRole", None, error.to_string()))?,
                    )
                    .send()
                    .await
                    .map_err(call_error("iam:CreateRole"));
                let arn = match created {
                    Ok(out) => out.role().map(|r| r.arn().to_owned()).unwrap_or_default(),
                    Err(error) if error.is(&Code::AlreadyExists(Existing::Entity)) => {
                        self.owned_role_arn(&name).await?
                    }
                    Err(error) => return Err(error),
                };
                self.role_policy(&name).await?;
                Ok(arn)
            }
            other => Err(CallError::enclave(format!("cannot create resources of kind {other}"))),
        }
    }

    async fn update_resource(&self, kind: &str) -> Result<Option<String>> {
        // A route has no id of its own (it is its table and destination), and observation knows
        // none: replace it in place from its table, whatever is known of it.
        if kind == "route" {
            let table = self.reference("route_table")?;
            self.replace_route(&table, text(self.step.after, "destination").unwrap_or_default()).await?;
            return Ok(None);
        }
        let id = self.own_id()?;
        let ec2 = &self.clients.ec2;
        let after = self.step.after;
        match kind {
            "vpc" => self.vpc_attributes(&id, false).await?,
            "subnet" if changed(self.step, "map_public_ip_on_launch") => self.subnet_attributes(&id).await?,
            "internet-gateway" if changed(self.step, "vpc") => {
                self.attach_gateway(&id, &self.reference("vpc")?).await?
            }
            "route-table-association" if changed(self.step, "route_table") => {
                let new_id = self.replace_association(&id, &self.reference("route_table")?).await?;
                return Ok(Some(new_id));
            }
            "security-group" | "default-security-group"
                if changed(self.step, "ingress") || changed(self.step, "egress") =>
            {
                self.sync_rules(&id).await?;
            }
            "vpc-endpoint" => {
                let mut request = ec2.modify_vpc_endpoint().vpc_endpoint_id(&id);
                let mut any = false;
                for (name, add, remove) in [("subnets", 0, 1), ("security_groups", 2, 3), ("route_tables", 4, 5)] {
                    if !changed(self.step, name) {
                        continue;
                    }
                    let wanted: BTreeSet<String> = self.references(name, after)?.into_iter().collect();
                    // The observed side names our resources by address (their ids may belong to
                    // resources deleted earlier in this walk) and anything else by its AWS id.
                    let current: BTreeSet<String> = list(self.step.before, name)
                        .iter()
                        .filter_map(|r| match r.parse::<Address>() {
                            Ok(_) => self.ids.resolve_former(r),
                            Err(_) => Some(r.clone()),
                        })
                        .collect();
                    let adds: Vec<String> = wanted.difference(&current).cloned().collect();
                    let removes: Vec<String> = current.difference(&wanted).cloned().collect();
                    request = match (add, remove) {
                        (0, 1) => request.set_add_subnet_ids(Some(adds)).set_remove_subnet_ids(Some(removes)),
                        (2, 3) => {
                            request.set_add_security_group_ids(Some(adds)).set_remove_security_group_ids(Some(removes))
                        }
                        _ => request.set_add_route_table_ids(Some(adds)).set_remove_route_table_ids(Some(removes)),
                    };
                    any = true;
                }
                if changed(self.step, "policy") {
                    request = request
                        .policy_document(after.and_then(|a| a.get("policy")).map(Value::to_string).unwrap_or_default());
                    any = true;
                }
                if changed(self.step, "private_dns_enabled") {
                    request = request.private_dns_enabled(flag(after, "private_dns_enabled").unwrap_or(true));
                    any = true;
                }
                if any {
                    request.send().await.map_err(call_error("ec2:ModifyVpcEndpoint"))?;
                    self.wait_endpoint(&id, true).await?;
                }
            }
            "log-group" => self.retention(&id).await?,
            "iam-role" => {
                let name = text(after, "name").unwrap_or_default();
                if changed(self.step, "trust_policy") {
                    self.clients
                        .iam
                        .update_assume_role_policy()
                        .role_name(name)
                        .policy_document(
                            after.and_then(|a| a.get("trust_policy")).map(Value::to_string).unwrap_or_default(),
                        )
                        .send()
                        .await
                        .map_err(call_error("iam:UpdateAssumeRolePolicy"))?;
                }
                if changed(self.step, "policy") {
                    self.role_policy(name).await?;
                }
            }
            _ => {}
        }
        if !matches!(kind, "log-group" | "iam-role" | "route" | "route-table-association") {
            self.sync_tags(&id).await?;
        }
        Ok(None)
    }

    async fn delete_resource(&self, kind: &str) -> Result<()> {
        let ec2 = &self.clients.ec2;
        let before = self.step.before;
        match kind {
            "route" => {
                let table = self.reference("route_table")?;
                let destination = text(before, "destination").unwrap_or_default();
                return self
                    .delete(|| async {
                        ec2.delete_route()
                            .route_table_id(&table)
                            .destination_cidr_block(destination)
                            .send()
                            .await
                            .map(drop)
                            .map_err(call_error("ec2:DeleteRoute"))
                    })
                    .await;
            }
            "log-group" | "iam-role" => {}
            _ => {}
        }
        let Some(id) = self.ids.get(self.address()) else { return Ok(()) };
        match kind {
            "vpc" => {
                let result = self
                    .delete(|| async {
                        ec2.delete_vpc().vpc_id(&id).send().await.map(drop).map_err(call_error("ec2:DeleteVpc"))
                    })
                    .await;
                match result {
                    Err(error) if error.is(&Code::DependencyViolation) => {
                        let blockers = self.blockers(&id).await.unwrap_or_default();
                        if blockers.is_empty() {
                            Err(error)
                        } else {
                            Err(error.with_message(format!(
                                "{id} still holds resources without this stack's tags, which enclave leaves alone: {}",
                                blockers.join(", ")
                            )))
                        }
                    }
                    other => other,
                }
            }
            "subnet" => {
                self.delete(|| async {
                    ec2.delete_subnet().subnet_id(&id).send().await.map(drop).map_err(call_error("ec2:DeleteSubnet"))
                })
                .await
            }
            "internet-gateway" => {
                if let Some(vpc) = text(before, "vpc").and_then(|v| self.ids.resolve(v)) {
                    let detached = ec2
                        .detach_internet_gateway()
                        .internet_gateway_id(&id)
                        .vpc_id(&vpc)
                        .send()
                        .await
                        .map_err(call_error("ec2:DetachInternetGateway"));
                    match detached {
                        Ok(_) => {}
                        Err(error)
                            if error.is(&Code::NotFound(Missing::InternetGateway))
                                || error.is(&Code::NotFound(Missing::Vpc))
                                || error.is(&Code::GatewayNotAttached) => {}
                        Err(error) => return Err(error),
                    }
                }
                self.delete(|| async {
                    ec2.delete_internet_gateway()
                        .internet_gateway_id(&id)
                        .send()
                        .await
                        .map(drop)
                        .map_err(call_error("ec2:DeleteInternetGateway"))
                })
                .await
            }
            "eip" => {
                self.delete(|| async {
                    ec2.release_address()
                        .allocation_id(&id)
                        .send()
                        .await
                        .map(drop)
                        .map_err(call_error("ec2:ReleaseAddress"))
                })
                .await
            }
            "nat-gateway" => {
                self.delete(|| async {
                    ec2.delete_nat_gateway()
                        .nat_gateway_id(&id)
                        .send()
                        .await
                        .map(drop)
                        .map_err(call_error("ec2:DeleteNatGateway"))
                })
                .await?;
                self.wait_nat(&id, "deleted").await
            }
            "route-table" => {
                self.delete(|| async {
                    ec2.delete_route_table()
                        .route_table_id(&id)
                        .send()
                        .await
                        .map(drop)
                        .map_err(call_error("ec2:DeleteRouteTable"))
                })
                .await
            }
            "route-table-association" => {
                self.delete(|| async {
                    ec2.disassociate_route_table()
                        .association_id(&id)
                        .send()
                        .await
                        .map(drop)
                        .map_err(call_error("ec2:DisassociateRouteTable"))
                })
                .await
            }
            "security-group" => {
                self.delete(|| async {
                    ec2.delete_security_group()
                        .group_id(&id)
                        .send()
                        .await
                        .map(drop)
                        .map_err(call_error("ec2:DeleteSecurityGroup"))
                })
                .await
            }
            "default-security-group" => {
                // Cannot be deleted (it goes with the VPC): only our tags are removed.
                let mut delete = ec2.delete_tags().resources(&id);
                for key in [STACK_TAG, ADDRESS_TAG].into_iter().chain(MANAGED_TAGS.iter().copied()) {
                    delete = delete.tags(Tag::builder().key(key).build());
                }
                self.delete(|| async { delete.clone().send().await.map(drop).map_err(call_error("ec2:DeleteTags")) })
                    .await
            }
            "vpc-endpoint" => {
                let delete = || async {
                    let out = ec2
                        .delete_vpc_endpoints()
                        .vpc_endpoint_ids(&id)
                        .send()
                        .await
                        .map_err(call_error("ec2:DeleteVpcEndpoints"))?;
                    match out.unsuccessful().first().and_then(|u| u.error()) {
                        Some(error) => Err(CallError::aws(
                            "ec2:DeleteVpcEndpoints",
                            error.code(),
                            error.message().unwrap_or("unknown error"),
                        )),
                        None => Ok(()),
                    }
                };
                match self.delete(delete).await {
                    // A gateway endpoint whose route in one of its tables is already gone cannot be
                    // deleted (moto loses those routes when tables are added or removed; AWS does
                    // not let anyone delete them). Detached from every table, it can.
                    Err(error) if error.is(&Code::NotFound(Missing::Route)) => {
                        self.detach_route_tables(&id).await?;
                        self.delete(delete).await?;
                    }
                    other => other?,
                }
                self.wait_endpoint(&id, false).await
            }
            "flow-log" => {
                self.delete(|| async {
                    let out = ec2
                        .delete_flow_logs()
                        .flow_log_ids(&id)
                        .send()
                        .await
                        .map_err(call_error("ec2:DeleteFlowLogs"))?;
                    match out.unsuccessful().first().and_then(|u| u.error()) {
                        Some(error) => Err(CallError::aws(
                            "ec2:DeleteFlowLogs",
                            error.code(),
                            error.message().unwrap_or("unknown error"),
                        )),
                        None => Ok(()),
                    }
                })
                .await
            }
            "log-group" => {
                self.delete(|| async {
                    self.clients
                        .logs
                        .delete_log_group()
                        .log_group_name(&id)
                        .send()
                        .await
                        .map(drop)
                        .map_err(call_error("logs:DeleteLogGroup"))
                })
                .await
            }
            "iam-role" => {
                let name = text(before, "name").unwrap_or_default();
                let iam = &self.clients.iam;
                self.delete(|| async {
                    iam.delete_role_policy()
                        .role_name(name)
                        .policy_name("flow-logs")
                        .send()
                        .await
                        .map(drop)
                        .map_err(call_error("iam:DeleteRolePolicy"))
                })
                .await?;
                self.delete(|| async {
                    iam.delete_role().role_name(name).send().await.map(drop).map_err(call_error("iam:DeleteRole"))
                })
                .await
            }
            other => Err(CallError::enclave(format!("cannot delete resources of kind {other}"))),
        }
    }

    /// The id of this account's VPC (every network resource lives in `<account>/net/vpc/main`).
    fn parent_vpc(&self) -> Result<String> {
        let vpc = Address::new(self.address().account(), crate::resources::COMPONENT, "vpc", "main")
            .map_err(|error| CallError::enclave(error.to_string()))?;
        self.ids.get(&vpc).ok_or_else(|| CallError::enclave(format!("{}: {vpc} has no id yet", self.address())))
    }

    /// An association is named after its subnet.
    fn association_subnet(&self) -> Result<String> {
        let subnet =
            Address::new(self.address().account(), crate::resources::COMPONENT, "subnet", self.address().name())
                .map_err(|error| CallError::enclave(error.to_string()))?;
        self.ids.get(&subnet).ok_or_else(|| CallError::enclave(format!("{}: {subnet} has no id yet", self.address())))
    }

    async fn vpc_attributes(&self, id: &str, created: bool) -> Result<()> {
        for name in ["enable_dns_support", "enable_dns_hostnames"] {
            let wanted = flag(self.step.after, name);
            // A new VPC has DNS support on and hostnames off.
            let current = if created { Some(name == "enable_dns_support") } else { flag(self.step.before, name) };
            let Some(wanted) = wanted.filter(|wanted| Some(*wanted) != current) else { continue };
            let value = AttributeBooleanValue::builder().value(wanted).build();
            let request = self.clients.ec2.modify_vpc_attribute().vpc_id(id);
            let request = if name == "enable_dns_support" {
                request.enable_dns_support(value)
            } else {
                request.enable_dns_hostnames(value)
            };
            request.send().await.map_err(call_error("ec2:ModifyVpcAttribute"))?;
        }
        Ok(())
    }

    async fn subnet_attributes(&self, id: &str) -> Result<()> {
        let wanted = flag(self.step.after, "map_public_ip_on_launch").unwrap_or(false);
        self.clients
            .ec2
            .modify_subnet_attribute()
            .subnet_id(id)
            .map_public_ip_on_launch(AttributeBooleanValue::builder().value(wanted).build())
            .send()
            .await
            .map_err(call_error("ec2:ModifySubnetAttribute"))?;
        Ok(())
    }

    async fn attach_gateway(&self, id: &str, vpc: &str) -> Result<()> {
        let attached = self
            .clients
            .ec2
            .attach_internet_gateway()
            .internet_gateway_id(id)
            .vpc_id(vpc)
            .send()
            .await
            .map_err(call_error("ec2:AttachInternetGateway"));
        match attached {
            Ok(_) => Ok(()),
            Err(error) if error.is(&Code::AlreadyExists(Existing::Association)) => Ok(()),
            Err(error) => Err(error),
        }
    }

    async fn replace_association(&self, association: &str, table: &str) -> Result<String> {
        let out = self
            .clients
            .ec2
            .replace_route_table_association()
            .association_id(association)
            .route_table_id(table)
            .send()
            .await
            .map_err(call_error("ec2:ReplaceRouteTableAssociation"))?;
        Ok(out.new_association_id().unwrap_or(association).to_owned())
    }

    fn route_target<T>(&self, request: T) -> Result<T>
    where
        T: RouteTarget,
    {
        let target = text(self.step.after, "target").unwrap_or_default();
        let id = self
            .ids
            .resolve(target)
            .ok_or_else(|| CallError::enclave(format!("{}: target {target} has no id yet", self.address())))?;
        Ok(if target.contains("/nat-gateway/") { request.nat(id) } else { request.gateway(id) })
    }

    async fn replace_route(&self, table: &str, destination: &str) -> Result<String> {
        let request = self.clients.ec2.replace_route().route_table_id(table).destination_cidr_block(destination);
        self.route_target(request)?.send().await.map_err(call_error("ec2:ReplaceRoute"))?;
        Ok(format!("{table}/{destination}"))
    }

    /// Brings a security group's rules to the desired ones: revokes what is extra, authorizes
    /// what is missing.
    async fn sync_rules(&self, id: &str) -> Result<()> {
        let ec2 = &self.clients.ec2;
        let out = ec2
            .describe_security_groups()
            .group_ids(id)
            .send()
            .await
            .map_err(call_error("ec2:DescribeSecurityGroups"))?;
        let Some(group) = out.security_groups().first() else {
            return Err(CallError::aws("ec2:DescribeSecurityGroups", None, format!("{id} not found")));
        };
        for (ingress, current) in [(true, group.ip_permissions()), (false, group.ip_permissions_egress())] {
            let wanted: BTreeSet<String> = list(self.step.after, if ingress { "ingress" } else { "egress" })
                .into_iter()
                .map(|rule| rule.split_once(" (").map_or(rule.clone(), |(rule, _)| rule.to_owned()))
                .collect();
            let present: BTreeSet<String> = current.iter().flat_map(rule_strings).collect();
            let revoke: Vec<IpPermission> = present.difference(&wanted).filter_map(|rule| permission(rule)).collect();
            let authorize: Vec<IpPermission> =
                wanted.difference(&present).filter_map(|rule| permission(rule)).collect();
            if !revoke.is_empty() {
                let result = if ingress {
                    ec2.revoke_security_group_ingress()
                        .group_id(id)
                        .set_ip_permissions(Some(revoke))
                        .send()
                        .await
                        .map(drop)
                        .map_err(call_error("ec2:RevokeSecurityGroupIngress"))
                } else {
                    ec2.revoke_security_group_egress()
                        .group_id(id)
                        .set_ip_permissions(Some(revoke))
                        .send()
                        .await
                        .map(drop)
                        .map_err(call_error("ec2:RevokeSecurityGroupEgress"))
                };
                match result {
                    Err(error) if !error.is(&Code::NotFound(Missing::Permission)) => return Err(error),
                    _ => {}
                }
            }
            if !authorize.is_empty() {
                let result = if ingress {
                    ec2.authorize_security_group_ingress()
                        .group_id(id)
                        .set_ip_permissions(Some(authorize))
                        .send()
                        .await
                        .map(drop)
                        .map_err(call_error("ec2:AuthorizeSecurityGroupIngress"))
                } else {
                    ec2.authorize_security_group_egress()
                        .group_id(id)
                        .set_ip_permissions(Some(authorize))
                        .send()
                        .await
                        .map(drop)
                        .map_err(call_error("ec2:AuthorizeSecurityGroupEgress"))
                };
                match result {
                    Err(error) if !error.is(&Code::AlreadyExists(Existing::Permission)) => return Err(error),
                    _ => {}
                }
            }
        }
        Ok(())
    }

    async fn wait_nat(&self, id: &str, goal: &str) -> Result<()> {
        let ec2 = &self.clients.ec2;
        self.wait(&format!("NAT gateway {id} to be {goal}"), || async {
            let out = ec2
                .describe_nat_gateways()
                .nat_gateway_ids(id)
                .send()
                .await
                .map_err(call_error("ec2:DescribeNatGateways"));
            let out = match out {
                Err(error) if error.is(&Code::NotFound(Missing::NatGateway)) && goal == "deleted" => {
                    return Ok(WaitState::Done);
                }
                other => other?,
            };
            let state = out.nat_gateways().first().and_then(|n| n.state()).map_or("deleted", |s| s.as_str()).to_owned();
            Ok(match state.as_str() {
                s if s == goal => WaitState::Done,
                "failed" => WaitState::Failed(state),
                "deleted" if goal == "available" => WaitState::Failed(state),
                _ => WaitState::Pending(state),
            })
        })
        .await
    }

    async fn wait_endpoint(&self, id: &str, available: bool) -> Result<()> {
        let ec2 = &self.clients.ec2;
        let goal = if available { "available" } else { "deleted" };
        self.wait(&format!("VPC endpoint {id} to be {goal}"), || async {
            let out = ec2
                .describe_vpc_endpoints()
                .vpc_endpoint_ids(id)
                .send()
                .await
                .map_err(call_error("ec2:DescribeVpcEndpoints"));
            let out = match out {
                Err(error) if error.is(&Code::NotFound(Missing::VpcEndpoint)) && !available => {
                    return Ok(WaitState::Done);
                }
                other => other?,
            };
            let state = out
                .vpc_endpoints()
                .first()
                .and_then(|e| e.state())
                .map_or("deleted", |s| s.as_str())
                .to_ascii_lowercase();
            Ok(match state.as_str() {
                s if s == goal => WaitState::Done,
                "failed" | "rejected" => WaitState::Failed(state),
                "deleted" if available => WaitState::Failed(state),
                _ => WaitState::Pending(state),
            })
        })
        .await
    }

    async fn retention(&self, name: &str) -> Result<()> {
        match self.step.after.and_then(|a| a.get("retention_days")).and_then(Value::as_i64) {
            Some(days) => {
                self.clients
                    .logs
                    .put_retention_policy()
                    .log_group_name(name)
                    .retention_in_days(i32::try_from(days).unwrap_or(i32::MAX))
                    .send()
                    .await
                    .map_err(call_error("logs:PutRetentionPolicy"))?;
            }
            None => {
                self.clients
                    .logs
                    .delete_retention_policy()
                    .log_group_name(name)
                    .send()
                    .await
                    .map_err(call_error("logs:DeleteRetentionPolicy"))?;
            }
        }
        Ok(())
    }

    async fn role_policy(&self, name: &str) -> Result<()> {
        let policy = self.step.after.and_then(|a| a.get("policy")).map(Value::to_string).unwrap_or_default();
        self.clients
            .iam
            .put_role_policy()
            .role_name(name)
            .policy_name("flow-logs")
            .policy_document(policy)
            .send()
            .await
            .map_err(call_error("iam:PutRolePolicy"))?;
        Ok(())
    }

    /// The ARN of an existing role, if it carries this stack's tag; an error otherwise (a role
    /// someone else made is never adopted).
    async fn owned_role_arn(&self, name: &str) -> Result<String> {
        let out = self.clients.iam.get_role().role_name(name).send().await.map_err(call_error("iam:GetRole"))?;
        let role = out.role().ok_or_else(|| CallError::aws("iam:GetRole", None, format!("{name} not returned")))?;
        if role.tags().iter().any(|t| t.key() == STACK_TAG && t.value() == self.network.stack) {
            Ok(role.arn().to_owned())
        } else {
            Err(CallError::enclave(format!(
                "{}: role {name} exists without this stack's tag; enclave will not take it over",
                self.address()
            )))
        }
    }

    /// Removes every route table from a gateway endpoint.
    async fn detach_route_tables(&self, id: &str) -> Result<()> {
        let ec2 = &self.clients.ec2;
        let out = ec2
            .describe_vpc_endpoints()
            .vpc_endpoint_ids(id)
            .send()
            .await
            .map_err(call_error("ec2:DescribeVpcEndpoints"))?;
        let tables: Vec<String> = out.vpc_endpoints().iter().flat_map(|e| e.route_table_ids()).cloned().collect();
        if !tables.is_empty() {
            ec2.modify_vpc_endpoint()
                .vpc_endpoint_id(id)
                .set_remove_route_table_ids(Some(tables))
                .send()
                .await
                .map_err(call_error("ec2:ModifyVpcEndpoint"))?;
        }
        Ok(())
    }

    /// Resources in a VPC without this stack's tag, which keep it from being deleted.
    async fn blockers(&self, vpc: &str) -> Result<Vec<String>> {
        let ec2 = &self.clients.ec2;
        let in_vpc = || aws_sdk_ec2::types::Filter::builder().name("vpc-id").values(vpc).build();
        let ours =
            |tags: &[Tag]| tags.iter().any(|t| t.key() == Some(STACK_TAG) && t.value() == Some(&self.network.stack));
        let mut out = Vec::new();
        let subnets =
            ec2.describe_subnets().filters(in_vpc()).send().await.map_err(call_error("ec2:DescribeSubnets"))?;
        out.extend(
            subnets.subnets().iter().filter(|s| !ours(s.tags())).map(|s| {
                format!("subnet {} ({})", s.subnet_id().unwrap_or_default(), s.cidr_block().unwrap_or_default())
            }),
        );
        let groups = ec2
            .describe_security_groups()
            .filters(in_vpc())
            .send()
            .await
            .map_err(call_error("ec2:DescribeSecurityGroups"))?;
        out.extend(
            groups
                .security_groups()
                .iter()
                .filter(|g| g.vpc_id() == Some(vpc) && g.group_name() != Some("default") && !ours(g.tags()))
                .map(|g| format!("security group {}", g.group_id().unwrap_or_default())),
        );
        let interfaces = ec2
            .describe_network_interfaces()
            .filters(in_vpc())
            .send()
            .await
            .map_err(call_error("ec2:DescribeNetworkInterfaces"))?;
        out.extend(
            interfaces
                .network_interfaces()
                .iter()
                .filter(|i| i.vpc_id() == Some(vpc))
                .map(|i| format!("network interface {}", i.network_interface_id().unwrap_or_default())),
        );
        Ok(out)
    }
}

/// CreateRoute and ReplaceRoute take the same targets.
trait RouteTarget {
    fn nat(self, id: String) -> Self;
    fn gateway(self, id: String) -> Self;
}

impl RouteTarget for aws_sdk_ec2::operation::create_route::builders::CreateRouteFluentBuilder {
    fn nat(self, id: String) -> Self {
        self.nat_gateway_id(id)
    }
    fn gateway(self, id: String) -> Self {
        self.gateway_id(id)
    }
}

impl RouteTarget for aws_sdk_ec2::operation::replace_route::builders::ReplaceRouteFluentBuilder {
    fn nat(self, id: String) -> Self {
        self.nat_gateway_id(id)
    }
    fn gateway(self, id: String) -> Self {
        self.gateway_id(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_round_trip_through_permissions() {
        for rule in ["tcp/443 10.1.0.0/16", "tcp/1024-65535 10.0.0.0/8", "-1 0.0.0.0/0", "-1 sg-123"] {
            let permission = permission(rule).expect(rule);
            assert_eq!(rule_strings(&permission), [rule]);
        }
    }
}

//! Observing what exists: the network resources of a stack in one account, rebuilt from
//! tag-filtered, batched Describe calls (one per resource type, plus pages, never one per
//! resource), as plan [`Resource`]s comparable with [`crate::resources::desired`].
//!
//! Ownership is recorded on the resources themselves: everything enclave creates carries
//! [`STACK_TAG`] and [`ADDRESS_TAG`]; nothing without them is ever observed, so nothing without
//! them is ever changed. This module covers VPCs and subnets so far; the other kinds of the
//! network follow with the reconciler (issue 3).

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{Filter, Tag};
use enclave_core::Address;
use enclave_core::plan::Resource;

/// Tag naming the stack a resource belongs to.
pub const STACK_TAG: &str = "enclave:stack";
/// Tag holding a resource's logical address.
pub const ADDRESS_TAG: &str = "enclave:address";
/// Tag holding a subnet's tier.
pub const TIER_TAG: &str = "enclave:tier";

/// What an account holds for the stack.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// Resources, with the attributes [`crate::resources::desired`] compares.
    pub resources: Vec<Resource>,
    /// AWS ids by address (`vpc-...`, `subnet-...`).
    pub ids: BTreeMap<Address, String>,
}

/// Why observation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ObserveError {
    /// An EC2 call failed after the SDK's retries.
    #[error("{operation} failed: {message}")]
    Call {
        /// The operation.
        operation: &'static str,
        /// What EC2 said.
        message: String,
    },
}

fn call_error<E, R>(operation: &'static str) -> impl Fn(aws_sdk_ec2::error::SdkError<E, R>) -> ObserveError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    move |error| ObserveError::Call { operation, message: aws_sdk_ec2::error::DisplayErrorContext(error).to_string() }
}

fn tag<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter().find(|t| t.key() == Some(key)).and_then(Tag::value)
}

/// The AWS id and logical address of a resource carrying our address tag.
fn owned<'a>(id: Option<&'a str>, tags: &[Tag]) -> Option<(&'a str, Address)> {
    Some((id?, tag(tags, ADDRESS_TAG)?.parse().ok()?))
}

impl Observed {
    fn record(&mut self, id: &str, resource: Resource) {
        self.ids.insert(resource.address.clone(), id.to_owned());
        self.resources.push(resource);
    }
}

fn stack_filter(stack: &str) -> Filter {
    Filter::builder().name(format!("tag:{STACK_TAG}")).values(stack).build()
}

/// Observes the stack's VPCs and subnets in the account `ec2` is configured for.
pub async fn observe(ec2: &aws_sdk_ec2::Client, stack: &str) -> Result<Observed, ObserveError> {
    let mut observed = Observed::default();
    let vpcs: Vec<_> = ec2
        .describe_vpcs()
        .filters(stack_filter(stack))
        .into_paginator()
        .items()
        .send()
        .collect::<Result<_, _>>()
        .await
        .map_err(call_error("ec2:DescribeVpcs"))?;
    for vpc in &vpcs {
        let Some((id, address)) = owned(vpc.vpc_id(), vpc.tags()) else { continue };
        let attribute =
            |name: aws_sdk_ec2::types::VpcAttributeName| ec2.describe_vpc_attribute().vpc_id(id).attribute(name).send();
        let support = attribute(aws_sdk_ec2::types::VpcAttributeName::EnableDnsSupport)
            .await
            .map_err(call_error("ec2:DescribeVpcAttribute"))?;
        let hostnames = attribute(aws_sdk_ec2::types::VpcAttributeName::EnableDnsHostnames)
            .await
            .map_err(call_error("ec2:DescribeVpcAttribute"))?;
        observed.record(
            id,
            Resource::new(address)
                .attr("cidr_block", vpc.cidr_block().unwrap_or_default())
                .attr("enable_dns_support", support.enable_dns_support().and_then(|v| v.value()).unwrap_or(false))
                .attr(
                    "enable_dns_hostnames",
                    hostnames.enable_dns_hostnames().and_then(|v| v.value()).unwrap_or(false),
                ),
        );
    }
    let subnets: Vec<_> = ec2
        .describe_subnets()
        .filters(stack_filter(stack))
        .into_paginator()
        .items()
        .send()
        .collect::<Result<_, _>>()
        .await
        .map_err(call_error("ec2:DescribeSubnets"))?;
    for subnet in &subnets {
        let Some((id, address)) = owned(subnet.subnet_id(), subnet.tags()) else { continue };
        observed.record(
            id,
            Resource::new(address)
                .attr("cidr_block", subnet.cidr_block().unwrap_or_default())
                .attr("availability_zone", subnet.availability_zone().unwrap_or_default())
                .attr("map_public_ip_on_launch", subnet.map_public_ip_on_launch().unwrap_or(false))
                .attr("tier", tag(subnet.tags(), TIER_TAG).unwrap_or_default()),
        );
    }
    Ok(observed)
}

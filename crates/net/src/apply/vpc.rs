//! The VPC and what hangs directly off it: subnets, the internet gateway, Elastic IPs.

use super::*;

impl Context<'_> {
    pub(super) async fn create_vpc(&self) -> Result<String> {
        let ec2 = &self.clients.ec2;
        let after = self.step.after;
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

    pub(super) async fn delete_vpc(&self, id: String) -> Result<()> {
        let ec2 = &self.clients.ec2;
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

    pub(super) async fn create_subnet(&self) -> Result<String> {
        let ec2 = &self.clients.ec2;
        let after = self.step.after;
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

    pub(super) async fn delete_subnet(&self, id: String) -> Result<()> {
        let ec2 = &self.clients.ec2;
        self.delete(|| async {
            ec2.delete_subnet().subnet_id(&id).send().await.map(drop).map_err(call_error("ec2:DeleteSubnet"))
        })
        .await
    }

    pub(super) async fn create_internet_gateway(&self) -> Result<String> {
        let ec2 = &self.clients.ec2;
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
                    Ok(out.internet_gateway().and_then(|g| g.internet_gateway_id()).unwrap_or_default().to_owned())
                },
            )
            .await?;
        self.attach_gateway(&id, &vpc).await?;
        Ok(id)
    }

    pub(super) async fn delete_internet_gateway(&self, id: String) -> Result<()> {
        let ec2 = &self.clients.ec2;
        let before = self.step.before;
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

    pub(super) async fn create_eip(&self) -> Result<String> {
        let ec2 = &self.clients.ec2;
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

    pub(super) async fn delete_eip(&self, id: String) -> Result<()> {
        let ec2 = &self.clients.ec2;
        self.delete(|| async {
            ec2.release_address().allocation_id(&id).send().await.map(drop).map_err(call_error("ec2:ReleaseAddress"))
        })
        .await
    }

    /// The id of this account's VPC (every network resource lives in `<account>/net/vpc/main`).
    pub(super) fn parent_vpc(&self) -> Result<String> {
        let vpc = Address::new(self.address().account(), crate::resources::COMPONENT, "vpc", "main")
            .map_err(|error| CallError::enclave(error.to_string()))?;
        self.ids.get(&vpc).ok_or_else(|| CallError::enclave(format!("{}: {vpc} has no id yet", self.address())))
    }

    pub(super) async fn vpc_attributes(&self, id: &str, created: bool) -> Result<()> {
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

    pub(super) async fn subnet_attributes(&self, id: &str) -> Result<()> {
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

    pub(super) async fn attach_gateway(&self, id: &str, vpc: &str) -> Result<()> {
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

    /// Resources in a VPC without this stack's tag, which keep it from being deleted.
    pub(super) async fn blockers(&self, vpc: &str) -> Result<Vec<String>> {
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

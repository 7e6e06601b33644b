//! Egress and routing: NAT gateways, route tables, their subnet associations and routes.

use super::*;

impl Context<'_> {
    pub(super) async fn create_nat_gateway(&self) -> Result<String> {
        let ec2 = &self.clients.ec2;
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
                        Ok(self.first_ours(
                            out.nat_gateways()
                                .iter()
                                .filter(|n| n.state().is_some_and(|s| matches!(s.as_str(), "pending" | "available"))),
                        ))
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

    pub(super) async fn delete_nat_gateway(&self, id: String) -> Result<()> {
        let ec2 = &self.clients.ec2;
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

    pub(super) async fn create_route_table(&self) -> Result<String> {
        let ec2 = &self.clients.ec2;
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

    pub(super) async fn delete_route_table(&self, id: String) -> Result<()> {
        let ec2 = &self.clients.ec2;
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

    pub(super) async fn create_route_table_association(&self) -> Result<String> {
        let ec2 = &self.clients.ec2;
        let table = self.reference("route_table")?;
        let subnet = self.association_subnet()?;
        let lookup = || async {
            let out = ec2
                .describe_route_tables()
                .filters(aws_sdk_ec2::types::Filter::builder().name("association.subnet-id").values(&subnet).build())
                .send()
                .await
                .map_err(call_error("ec2:DescribeRouteTables"))?;
            Ok(out.route_tables().iter().flat_map(|t| t.associations()).find_map(|a| {
                (a.subnet_id() == Some(subnet.as_str()))
                    .then(|| (a.route_table_association_id().unwrap_or_default().to_owned(), a.route_table_id()))
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

    pub(super) async fn delete_route_table_association(&self, id: String) -> Result<()> {
        let ec2 = &self.clients.ec2;
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

    pub(super) async fn create_route(&self) -> Result<String> {
        let ec2 = &self.clients.ec2;
        let after = self.step.after;
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
                request.customize().config_override(no_retry()).send().await.map_err(call_error("ec2:CreateRoute"))?;
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

    /// An association is named after its subnet.
    pub(super) fn association_subnet(&self) -> Result<String> {
        let subnet =
            Address::new(self.address().account(), crate::resources::COMPONENT, "subnet", self.address().name())
                .map_err(|error| CallError::enclave(error.to_string()))?;
        self.ids.get(&subnet).ok_or_else(|| CallError::enclave(format!("{}: {subnet} has no id yet", self.address())))
    }

    pub(super) async fn replace_association(&self, association: &str, table: &str) -> Result<String> {
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

    pub(super) fn route_target<T>(&self, request: T) -> Result<T>
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

    pub(super) async fn replace_route(&self, table: &str, destination: &str) -> Result<String> {
        let request = self.clients.ec2.replace_route().route_table_id(table).destination_cidr_block(destination);
        self.route_target(request)?.send().await.map_err(call_error("ec2:ReplaceRoute"))?;
        Ok(format!("{table}/{destination}"))
    }

    pub(super) async fn wait_nat(&self, id: &str, goal: &str) -> Result<()> {
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

    /// Deletes a route. Its id is `<table id>/<destination>`, but the table is resolved again by
    /// address: a replaced table has a new id.
    pub(super) async fn delete_route(&self, _id: String) -> Result<()> {
        let ec2 = &self.clients.ec2;
        let before = self.step.before;
        let table = self.reference("route_table")?;
        let destination = text(before, "destination").unwrap_or_default();
        self.delete(|| async {
            ec2.delete_route()
                .route_table_id(&table)
                .destination_cidr_block(destination)
                .send()
                .await
                .map(drop)
                .map_err(call_error("ec2:DeleteRoute"))
        })
        .await
    }
}

/// CreateRoute and ReplaceRoute take the same targets.
pub(super) trait RouteTarget {
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

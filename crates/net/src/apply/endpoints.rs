//! VPC endpoints, interface and gateway.

use super::*;

impl Context<'_> {
    pub(super) async fn create_vpc_endpoint(&self) -> Result<String> {
        let ec2 = &self.clients.ec2;
        let after = self.step.after;
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
                            out.vpc_endpoints()
                                .iter()
                                .filter(|e| e.state().is_none_or(|s| !s.as_str().eq_ignore_ascii_case("deleted"))),
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
                        request.vpc_endpoint_type(VpcEndpointType::Gateway).set_route_table_ids(Some(tables.clone()))
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

    pub(super) async fn delete_vpc_endpoint(&self, id: String) -> Result<()> {
        let ec2 = &self.clients.ec2;
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

    pub(super) async fn wait_endpoint(&self, id: &str, available: bool) -> Result<()> {
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

    /// Removes every route table from a gateway endpoint.
    pub(super) async fn detach_route_tables(&self, id: &str) -> Result<()> {
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

    /// Adds and removes subnets, groups and route tables, and changes the policy or private DNS.
    pub(super) async fn update_vpc_endpoint(&self, id: &str) -> Result<()> {
        let ec2 = &self.clients.ec2;
        let after = self.step.after;
        let mut request = ec2.modify_vpc_endpoint().vpc_endpoint_id(id);
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
                (2, 3) => request.set_add_security_group_ids(Some(adds)).set_remove_security_group_ids(Some(removes)),
                _ => request.set_add_route_table_ids(Some(adds)).set_remove_route_table_ids(Some(removes)),
            };
            any = true;
        }
        if changed(self.step, "policy") {
            request =
                request.policy_document(after.and_then(|a| a.get("policy")).map(Value::to_string).unwrap_or_default());
            any = true;
        }
        if changed(self.step, "private_dns_enabled") {
            request = request.private_dns_enabled(flag(after, "private_dns_enabled").unwrap_or(true));
            any = true;
        }
        if any {
            request.send().await.map_err(call_error("ec2:ModifyVpcEndpoint"))?;
            self.wait_endpoint(id, true).await?;
        }
        Ok(())
    }
}

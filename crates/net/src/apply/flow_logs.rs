//! Flow logs, their CloudWatch Logs group and their delivery role.

use super::*;

impl Context<'_> {
    pub(super) async fn create_flow_log(&self) -> Result<String> {
        let ec2 = &self.clients.ec2;
        let after = self.step.after;
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

    pub(super) async fn delete_flow_log(&self, id: String) -> Result<()> {
        let ec2 = &self.clients.ec2;
        self.delete(|| async {
            let out =
                ec2.delete_flow_logs().flow_log_ids(&id).send().await.map_err(call_error("ec2:DeleteFlowLogs"))?;
            match out.unsuccessful().first().and_then(|u| u.error()) {
                Some(error) => {
                    Err(CallError::aws("ec2:DeleteFlowLogs", error.code(), error.message().unwrap_or("unknown error")))
                }
                None => Ok(()),
            }
        })
        .await
    }

    pub(super) async fn create_log_group(&self) -> Result<String> {
        let after = self.step.after;
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

    pub(super) async fn delete_log_group(&self, id: String) -> Result<()> {
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

    pub(super) async fn create_iam_role(&self) -> Result<String> {
        let after = self.step.after;
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
            Err(error) if error.is(&Code::AlreadyExists(Existing::Entity)) => self.owned_role_arn(&name).await?,
            Err(error) => return Err(error),
        };
        self.role_policy(&name).await?;
        Ok(arn)
    }

    /// Deletes the delivery role by its name (its id is its ARN, which IAM does not take).
    pub(super) async fn delete_iam_role(&self, _arn: String) -> Result<()> {
        let before = self.step.before;
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

    pub(super) async fn retention(&self, name: &str) -> Result<()> {
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

    pub(super) async fn role_policy(&self, name: &str) -> Result<()> {
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
    pub(super) async fn owned_role_arn(&self, name: &str) -> Result<String> {
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

    /// Changes the delivery role's trust policy and inline policy.
    pub(super) async fn update_iam_role(&self) -> Result<()> {
        let after = self.step.after;
        let name = text(after, "name").unwrap_or_default();
        if changed(self.step, "trust_policy") {
            self.clients
                .iam
                .update_assume_role_policy()
                .role_name(name)
                .policy_document(after.and_then(|a| a.get("trust_policy")).map(Value::to_string).unwrap_or_default())
                .send()
                .await
                .map_err(call_error("iam:UpdateAssumeRolePolicy"))?;
        }
        if changed(self.step, "policy") {
            self.role_policy(name).await?;
        }
        Ok(())
    }
}

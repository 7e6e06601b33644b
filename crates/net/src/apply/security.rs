//! Security groups: ours and the VPC's default group (adopted, emptied, never deleted).

use super::*;

impl Context<'_> {
    pub(super) async fn create_security_group(&self) -> Result<String> {
        let ec2 = &self.clients.ec2;
        let after = self.step.after;
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

    pub(super) async fn delete_security_group(&self, id: String) -> Result<()> {
        let ec2 = &self.clients.ec2;
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

    pub(super) async fn create_default_security_group(&self) -> Result<String> {
        let ec2 = &self.clients.ec2;
        let after = self.step.after;
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
            .ok_or_else(|| CallError::aws("ec2:DescribeSecurityGroups", None, format!("{vpc} has no default group")))?
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

    pub(super) async fn delete_default_security_group(&self, id: String) -> Result<()> {
        let ec2 = &self.clients.ec2;
        // Cannot be deleted (it goes with the VPC): only our tags are removed.
        let mut delete = ec2.delete_tags().resources(&id);
        for key in [STACK_TAG, ADDRESS_TAG].into_iter().chain(MANAGED_TAGS.iter().copied()) {
            delete = delete.tags(Tag::builder().key(key).build());
        }
        self.delete(|| async { delete.clone().send().await.map(drop).map_err(call_error("ec2:DeleteTags")) }).await
    }

    /// Brings a security group's rules to the desired ones (the toolkit's
    /// [`toolkit::sync_rules`]).
    pub(super) async fn sync_rules(&self, id: &str) -> Result<()> {
        let strip = |rules: Vec<String>| -> Vec<String> {
            rules
                .into_iter()
                .map(|rule| rule.split_once(" (").map_or(rule.clone(), |(rule, _)| rule.to_owned()))
                .collect()
        };
        toolkit::sync_rules(
            &self.clients.ec2,
            id,
            &strip(list(self.step.after, "ingress")),
            &strip(list(self.step.after, "egress")),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use enclave_aws::reconcile::{permission, rule_strings};

    #[test]
    fn rules_round_trip_through_permissions() {
        for rule in ["tcp/443 10.1.0.0/16", "tcp/1024-65535 10.0.0.0/8", "-1 0.0.0.0/0", "-1 sg-123"] {
            let permission = permission(rule).expect(rule);
            assert_eq!(rule_strings(&permission), [rule]);
        }
    }
}

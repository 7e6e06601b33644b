//! The record of the accounts a stack manages.
//!
//! enclave keeps no state file: everything it creates carries the stack's tags, and a plan
//! observes the accounts the spec names. An account removed from the spec would then be
//! invisible, its resources owned by nobody. So each apply records the stack's accounts (name and
//! id) in one SSM parameter, `/enclave/<stack>/managed-accounts`, in the account the CLI runs from
//! (the caller's own credentials, not an assumed role), tagged `enclave:stack`. A plan reads it and
//! treats every recorded account that left the spec as one to empty: its tagged resources are
//! planned as deletes, like a destroy.
//!
//! Losing or deleting the parameter never deletes anything: it only means a removed account is no
//! longer known, and its resources stay until the account is named again or destroyed by hand.

use std::collections::BTreeMap;

use aws_sdk_ssm::types::{ParameterType, Tag};
use serde::{Deserialize, Serialize};

use crate::{Aws, Error};

use crate::reconcile::{Code, Existing, Missing, STACK_TAG, call_error};

/// Accounts by name, with their ids.
pub type Accounts = BTreeMap<String, String>;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    format_version: u32,
    accounts: Accounts,
}

/// The parameter's value for `accounts`.
fn stored(stack: &str, accounts: &Accounts) -> Result<String, Error> {
    serde_json::to_string(&Stored { format_version: 1, accounts: accounts.clone() })
        .map_err(|error| failure("ssm:PutParameter", stack)(error.to_string()))
}

/// The name of the parameter holding `stack`'s record.
pub fn parameter_name(stack: &str) -> String {
    format!("/enclave/{stack}/managed-accounts")
}

fn failure(operation: &'static str, stack: &str) -> impl Fn(String) -> Error + use<> {
    let parameter = parameter_name(stack);
    move |message| Error::Record { operation, parameter: parameter.clone(), message }
}

impl Aws {
    fn ssm(&self) -> aws_sdk_ssm::Client {
        aws_sdk_ssm::Client::from_conf(
            aws_sdk_ssm::config::Builder::from(&self.base)
                .interceptor(self.counter.clone())
                .retry_classifier(crate::RefusedIsFinal)
                .build(),
        )
    }

    /// The accounts recorded for `stack`, `None` when there is no record. A parameter of that
    /// name without this stack's tag is not ours and is an error, never trusted.
    pub async fn managed_accounts(&self, stack: &str) -> Result<Option<Accounts>, Error> {
        let ssm = self.ssm();
        let name = parameter_name(stack);
        let got = ssm.get_parameter().name(&name).send().await.map_err(call_error("ssm:GetParameter"));
        let value = match got {
            Ok(out) => out.parameter().and_then(|p| p.value()).unwrap_or_default().to_owned(),
            Err(error) if error.is(&Code::NotFound(Missing::Parameter)) => return Ok(None),
            Err(error) => return Err(failure("ssm:GetParameter", stack)(error.message().to_owned())),
        };
        let tags = ssm
            .list_tags_for_resource()
            .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
            .resource_id(&name)
            .send()
            .await
            .map_err(|error| failure("ssm:ListTagsForResource", stack)(crate::chain_text(&error)))?;
        if !tags.tag_list().iter().any(|tag| tag.key() == STACK_TAG && tag.value() == stack) {
            return Err(failure("ssm:ListTagsForResource", stack)(format!(
                "the parameter does not carry the tag {STACK_TAG}={stack}; enclave will not trust it"
            )));
        }
        let stored: Stored = serde_json::from_str(&value)
            .map_err(|error| failure("ssm:GetParameter", stack)(format!("not a record enclave wrote: {error}")))?;
        Ok(Some(stored.accounts))
    }

    /// Records `accounts` as the accounts `stack` manages, creating the record (tagged). When a
    /// record exists already, it is overwritten only once it proved to be ours.
    pub async fn record_managed_accounts(&self, stack: &str, accounts: &Accounts) -> Result<(), Error> {
        let ssm = self.ssm();
        let name = parameter_name(stack);
        let value = stored(stack, accounts)?;
        let description = "Accounts this enclave stack manages; read by enclave plan to find removed accounts";
        // Tags can only be given when the parameter is created; an update overwrites the value.
        let tag = Tag::builder()
            .key(STACK_TAG)
            .value(stack)
            .build()
            .map_err(|error| failure("ssm:PutParameter", stack)(error.to_string()))?;
        let created = ssm
            .put_parameter()
            .name(&name)
            .description(description)
            .r#type(ParameterType::String)
            .value(&value)
            .tags(tag)
            .send()
            .await
            .map_err(call_error("ssm:PutParameter"));
        match created {
            Ok(_) => Ok(()),
            Err(error) if error.is(&Code::AlreadyExists(Existing::Parameter)) => {
                // Made since it was read: only a record that is ours is overwritten.
                self.managed_accounts(stack).await?;
                self.update_managed_accounts(stack, accounts).await
            }
            Err(error) => Err(failure("ssm:PutParameter", stack)(error.message().to_owned())),
        }
    }

    /// Overwrites `stack`'s record, which the caller read with [`Aws::managed_accounts`] (so it
    /// is known to be ours).
    pub async fn update_managed_accounts(&self, stack: &str, accounts: &Accounts) -> Result<(), Error> {
        self.ssm()
            .put_parameter()
            .name(parameter_name(stack))
            .r#type(ParameterType::String)
            .value(stored(stack, accounts)?)
            .overwrite(true)
            .send()
            .await
            .map(drop)
            .map_err(call_error("ssm:PutParameter"))
            .map_err(|error| failure("ssm:PutParameter", stack)(error.message().to_owned()))
    }

    /// Deletes `stack`'s record (after everything it listed was destroyed).
    pub async fn forget_managed_accounts(&self, stack: &str) -> Result<(), Error> {
        let ssm = self.ssm();
        match ssm.delete_parameter().name(parameter_name(stack)).send().await.map_err(call_error("ssm:DeleteParameter"))
        {
            Ok(_) => Ok(()),
            Err(error) if error.is(&Code::NotFound(Missing::Parameter)) => Ok(()),
            Err(error) => Err(failure("ssm:DeleteParameter", stack)(error.message().to_owned())),
        }
    }
}

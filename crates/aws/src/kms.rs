//! The account key (made by the access domain, named by the stack's alias) as every domain
//! recognises it when it reads what a resource is encrypted with (feature `kms`): ECR
//! repositories, EKS clusters, Secrets Manager secrets.

use enclave_core::names::{account_key_address, account_key_alias};

use crate::reconcile::{CallError, Missing, call_error, found};

/// The account key behind the stack's alias: its ARN and id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountKey {
    /// `arn:aws:kms:<region>:<account>:key/<id>`.
    pub arn: String,
    /// The key id.
    pub id: String,
}

/// The stack's account key, when its alias exists (one `kms:DescribeKey`).
pub async fn account_key(kms: &aws_sdk_kms::Client, stack: &str) -> Result<Option<AccountKey>, CallError> {
    let described = found(
        kms.describe_key().key_id(account_key_alias(stack)).send().await.map_err(call_error("kms:DescribeKey")),
        Missing::Key,
    )?;
    Ok(described.and_then(|out| {
        out.key_metadata()
            .map(|key| AccountKey { arn: key.arn().unwrap_or_default().to_owned(), id: key.key_id().to_owned() })
    }))
}

/// The account key read at most once per observation, and only when something of ours names a
/// key: how an observation turns what a resource reports into the plan's reference.
#[derive(Clone, Debug, Default)]
pub struct KeyReader {
    read: Option<Option<AccountKey>>,
}

impl KeyReader {
    /// [`key_reference`] of `used`, reading the account key first if not yet read.
    pub async fn reference(
        &mut self,
        kms: &aws_sdk_kms::Client,
        stack: &str,
        account: &str,
        used: &str,
    ) -> Result<String, CallError> {
        if self.read.is_none() {
            self.read = Some(account_key(kms, stack).await?);
        }
        Ok(key_reference(used, self.read.as_ref().and_then(Option::as_ref), stack, account))
    }
}

/// How a plan names the key a resource reports (`used`: a key id or ARN, an alias name or
/// ARN): the account key's address when it is the stack's key, else as reported.
pub fn key_reference(used: &str, key: Option<&AccountKey>, stack: &str, account: &str) -> String {
    let alias = account_key_alias(stack);
    let ours = used == alias
        || used.ends_with(&format!(":{alias}"))
        || key.is_some_and(|key| used == key.arn || used == key.id);
    if ours { account_key_address(account).to_string() } else { used.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_way_of_naming_the_account_key_reads_as_its_address() {
        let key = AccountKey { arn: "arn:aws:kms:eu-west-1:111111111111:key/k-1".into(), id: "k-1".into() };
        for used in [
            "k-1",
            &key.arn,
            "alias/enclave/acme/access",
            "arn:aws:kms:eu-west-1:111111111111:alias/enclave/acme/access",
        ] {
            assert_eq!(key_reference(used, Some(&key), "acme", "dev"), "dev/access/kms-key/access", "{used}");
        }
        assert_eq!(key_reference("other", Some(&key), "acme", "dev"), "other");
        assert_eq!(key_reference("k-1", None, "acme", "dev"), "k-1");
    }
}

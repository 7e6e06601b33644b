//! Credentials from `sts:AssumeRole`, refreshed before they expire.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{self, ProvideCredentials, future};

use crate::Error;

/// A member-account role, assumed through STS.
#[derive(Debug)]
pub(crate) struct AssumedRole {
    sts: aws_sdk_sts::Client,
    role_arn: String,
    session_name: String,
    current: tokio::sync::Mutex<Credentials>,
}

impl AssumedRole {
    /// Assumes the role now, so a missing role fails the run before any other call.
    pub(crate) async fn assume(sts: aws_sdk_sts::Client, role_arn: String, session_name: &str) -> Result<Self, Error> {
        let credentials = fetch(&sts, &role_arn, session_name).await.map_err(|error| Error::AssumeRole {
            role_arn: role_arn.clone(),
            message: enclave_core::redact::url_credentials(&error.to_string()),
        })?;
        Ok(AssumedRole {
            sts,
            role_arn,
            session_name: session_name.to_owned(),
            current: tokio::sync::Mutex::new(credentials),
        })
    }

    async fn load(&self) -> provider::Result {
        let mut current = self.current.lock().await;
        let fresh = current.expiry().is_none_or(|expiry| expiry > SystemTime::now() + Duration::from_secs(300));
        if !fresh {
            *current = fetch(&self.sts, &self.role_arn, &self.session_name).await?;
        }
        Ok(current.clone())
    }
}

async fn fetch(sts: &aws_sdk_sts::Client, role_arn: &str, session_name: &str) -> provider::Result {
    let output =
        sts.assume_role().role_arn(role_arn).role_session_name(session_name).send().await.map_err(|error| {
            CredentialsError::provider_error(aws_smithy_types::error::display::DisplayErrorContext(error).to_string())
        })?;
    let credentials =
        output.credentials.ok_or_else(|| CredentialsError::provider_error("AssumeRole returned no credentials"))?;
    let expiry = SystemTime::try_from(credentials.expiration).ok();
    Ok(Credentials::new(
        credentials.access_key_id,
        credentials.secret_access_key,
        Some(credentials.session_token),
        expiry,
        "enclave-assume-role",
    ))
}

impl ProvideCredentials for AssumedRole {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.load())
    }
}

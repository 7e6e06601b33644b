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
        let credentials = first(&sts, &role_arn, session_name).await?;
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

/// The first `AssumeRole`, whose failure is the run's: the error keeps STS's code (for the hint)
/// and the whole cause chain.
async fn first(sts: &aws_sdk_sts::Client, role_arn: &str, session_name: &str) -> Result<Credentials, Error> {
    call(sts, role_arn, session_name).await.map_err(|(message, code)| Error::AssumeRole {
        role_arn: role_arn.to_owned(),
        message,
        code,
    })
}

/// A refresh, as the credential provider reports it.
async fn fetch(sts: &aws_sdk_sts::Client, role_arn: &str, session_name: &str) -> provider::Result {
    call(sts, role_arn, session_name).await.map_err(|(message, _)| CredentialsError::provider_error(message))
}

/// `sts:AssumeRole`; a failure as its cause chain and STS's error code.
async fn call(
    sts: &aws_sdk_sts::Client,
    role_arn: &str,
    session_name: &str,
) -> Result<Credentials, (String, Option<String>)> {
    use aws_smithy_types::error::metadata::ProvideErrorMetadata as _;
    let output = sts
        .assume_role()
        .role_arn(role_arn)
        .role_session_name(session_name)
        .send()
        .await
        .map_err(|error| (crate::chain_text(&error), error.code().map(str::to_owned)))?;
    let credentials = output.credentials.ok_or_else(|| ("AssumeRole returned no credentials".to_owned(), None))?;
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

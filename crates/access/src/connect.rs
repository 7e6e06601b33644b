//! `enclave access connect`: the Session Manager command that reaches an account's bastion.
//! No SSH anywhere: a shell, or a port forwarded through the bastion to a private host, both
//! over Session Manager.
//!
//! [`session_command`] is pure (what `--print` shows); with the `aws` feature, [`find_bastion`]
//! finds the stack's running bastion (ownership checked on the client) and [`agent_status`]
//! asks Systems Manager whether its agent is online.
//!
//! ```
//! use enclave_access::connect::{PortForward, session_command};
//! let forward: PortForward = "db.internal:5432".parse().unwrap();
//! let command = session_command("eu-west-1", "i-0abc", Some(&forward));
//! assert_eq!(command[..6], ["aws", "ssm", "start-session", "--region", "eu-west-1", "--target"]);
//! assert!(command.contains(&"AWS-StartPortForwardingSessionToRemoteHost".to_owned()));
//! ```

use std::fmt;
use std::str::FromStr;

/// The Session Manager document that forwards a local port to a host the bastion reaches.
pub const PORT_FORWARD_DOCUMENT: &str = "AWS-StartPortForwardingSessionToRemoteHost";

/// A host and port to forward to, through the bastion (`HOST:PORT`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortForward {
    /// The remote host, as the bastion resolves it.
    pub host: String,
    /// The remote port; the local port is the same.
    pub port: u16,
}

/// A `--port-forward` that is not `HOST:PORT`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PortForwardError {
    /// No `:PORT`.
    #[error("expected HOST:PORT")]
    MissingPort,
    /// The host is empty or holds characters no host name has.
    #[error("the host is not a host name or address")]
    Host,
    /// The port is not 1 to 65535.
    #[error("the port is not a number from 1 to 65535")]
    Port,
}

impl FromStr for PortForward {
    type Err = PortForwardError;

    fn from_str(text: &str) -> Result<Self, PortForwardError> {
        let (host, port) = text.rsplit_once(':').ok_or(PortForwardError::MissingPort)?;
        let host_ok = !host.is_empty()
            && host.len() <= 253
            && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !host_ok {
            return Err(PortForwardError::Host);
        }
        let port: u16 = port.parse().map_err(|_| PortForwardError::Port)?;
        if port == 0 {
            return Err(PortForwardError::Port);
        }
        Ok(PortForward { host: host.to_owned(), port })
    }
}

impl fmt::Display for PortForward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// The exact `aws ssm start-session` command: a shell on `target`, or with `forward`, a local
/// port forwarded through it.
pub fn session_command(region: &str, target: &str, forward: Option<&PortForward>) -> Vec<String> {
    let mut command: Vec<String> =
        ["aws", "ssm", "start-session", "--region", region, "--target", target].map(str::to_owned).into();
    if let Some(forward) = forward {
        let parameters = serde_json::json!({
            "host": [forward.host],
            "portNumber": [forward.port.to_string()],
            "localPortNumber": [forward.port.to_string()],
        });
        command.extend(["--document-name".to_owned(), PORT_FORWARD_DOCUMENT.to_owned()]);
        command.extend(["--parameters".to_owned(), parameters.to_string()]);
    }
    command
}

/// `command` as one line a POSIX shell runs as is (arguments quoted where needed).
pub fn shell_line(command: &[String]) -> String {
    command
        .iter()
        .map(|word| {
            if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=@,".contains(c)) {
                word.clone()
            } else {
                format!("'{}'", word.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(feature = "aws")]
pub use self::aws::{Bastion, agent_status, find_bastion};

#[cfg(feature = "aws")]
mod aws {
    use aws_sdk_ec2::types::Filter;
    use enclave_aws::reconcile::owned;
    use enclave_core::address::STACK_TAG;

    use crate::clients::{CallError, Clients, call_error};
    use crate::kind::Kind;

    /// The stack's running bastion in one account.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Bastion {
        /// `i-...`.
        pub instance_id: String,
        /// Its private address.
        pub private_ip: Option<String>,
    }

    /// The running bastion of `stack` in the account `clients` are for, or `None`. Only an
    /// instance carrying the stack's tag and the bastion's address is taken.
    pub async fn find_bastion(clients: &Clients, stack: &str, account: &str) -> Result<Option<Bastion>, CallError> {
        let address = crate::resources::address(account, Kind::Instance, "bastion");
        let out = clients
            .ec2
            .describe_instances()
            .filters(Filter::builder().name(format!("tag:{STACK_TAG}")).values(stack).build())
            .filters(Filter::builder().name("instance-state-name").values("running").build())
            .send()
            .await
            .map_err(call_error("ec2:DescribeInstances"))?;
        Ok(out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter(|i| i.state().and_then(|s| s.name()).is_some_and(|n| n.as_str() == "running"))
            .find(|i| owned(*i, stack).is_some_and(|(_, found)| found == address))
            .and_then(|i| {
                Some(Bastion {
                    instance_id: i.instance_id()?.to_owned(),
                    private_ip: i.private_ip_address().map(str::to_owned),
                })
            }))
    }

    /// The Session Manager agent's ping status on `instance` (`Online`, `ConnectionLost`,
    /// `Inactive`), or `None` when Systems Manager does not know the instance.
    pub async fn agent_status(clients: &Clients, instance: &str) -> Result<Option<String>, CallError> {
        let filter = aws_sdk_ssm::types::InstanceInformationStringFilter::builder()
            .key("InstanceIds")
            .values(instance)
            .build()
            .map_err(|error| CallError::enclave(error.to_string()))?;
        let out = clients
            .ssm
            .describe_instance_information()
            .filters(filter)
            // Advisory: one try, so an endpoint without it (moto) costs no retries.
            .customize()
            .config_override(
                aws_sdk_ssm::config::Builder::default()
                    .retry_config(aws_sdk_ssm::config::retry::RetryConfig::disabled()),
            )
            .send()
            .await
            .map_err(call_error("ssm:DescribeInstanceInformation"))?;
        Ok(out
            .instance_information_list()
            .iter()
            .find(|info| info.instance_id() == Some(instance))
            .and_then(|info| info.ping_status())
            .map(|status| status.as_str().to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shell_session_names_region_and_target_only() {
        assert_eq!(
            session_command("eu-west-1", "i-0abc", None),
            ["aws", "ssm", "start-session", "--region", "eu-west-1", "--target", "i-0abc"]
        );
    }

    #[test]
    fn a_port_forward_uses_the_remote_host_document_with_the_same_local_port() {
        let forward: PortForward = "db.internal:5432".parse().expect("valid");
        let command = session_command("eu-west-1", "i-0abc", Some(&forward));
        let parameters: serde_json::Value = serde_json::from_str(command.last().expect("parameters")).expect("json");
        assert_eq!(parameters["host"][0], "db.internal");
        assert_eq!(parameters["portNumber"][0], "5432");
        assert_eq!(parameters["localPortNumber"][0], "5432");
        let line = shell_line(&command);
        assert!(
            line.starts_with(
                "aws ssm start-session --region eu-west-1 --target i-0abc --document-name \
                 AWS-StartPortForwardingSessionToRemoteHost --parameters '{"
            ),
            "{line}"
        );
        assert!(line.ends_with("}'"), "the JSON is one quoted word: {line}");
    }

    #[test]
    fn shell_lines_quote_only_what_needs_it() {
        let words: Vec<String> = ["aws", "--x", "it's here", ""].map(str::to_owned).into();
        assert_eq!(shell_line(&words), r"aws --x 'it'\''s here' ''");
    }

    #[test]
    fn bad_port_forwards_are_refused_without_echoing_them() {
        assert_eq!("db".parse::<PortForward>(), Err(PortForwardError::MissingPort));
        assert_eq!(":22".parse::<PortForward>(), Err(PortForwardError::Host));
        assert_eq!("db;rm -rf /:22".parse::<PortForward>(), Err(PortForwardError::Host));
        assert_eq!("db:0".parse::<PortForward>(), Err(PortForwardError::Port));
        assert_eq!("db:70000".parse::<PortForward>(), Err(PortForwardError::Port));
    }
}

//! What the AWS test binaries share: the `enclave` binary set up for a local endpoint.

use std::process::Command;

/// `enclave ARGS --endpoint-url ENDPOINT` with test credentials, no profile and no instance
/// metadata: every call goes to `endpoint` (moto or the fault proxy on loopback).
pub(crate) fn enclave_against(args: &[&str], endpoint: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_enclave"));
    command
        .args(args)
        .args(["--endpoint-url", endpoint])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_PROFILE")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    command
}

//! What the AWS test binaries share: the `enclave` binary set up for a local endpoint, the
//! reference config and copies of it, JSON output, mutating-call counts and seeded kill points.
//! Each test binary uses some of these.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

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

/// The reference platform's config folder.
pub(crate) fn reference_dir() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/reference").to_string_lossy().into_owned()
}

/// `enclave ARGS` against `endpoint`, run to completion.
pub(crate) fn enclave(args: &[&str], endpoint: &str) -> std::process::Output {
    enclave_against(args, endpoint).output().expect("enclave runs")
}

/// `enclave ARGS --output json` against `endpoint`, parsed.
pub(crate) fn json_of(args: &[&str], endpoint: &str) -> Value {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    let out = enclave(&all, endpoint);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stderr)))
}

/// `enclave ARGS` against `endpoint`, which must succeed.
pub(crate) fn applied(args: &[&str], endpoint: &str) {
    let out = enclave(args, endpoint);
    assert!(
        out.status.success(),
        "{args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The mutating calls of a JSON report's `calls` (reads and role assumptions left out).
pub(crate) fn mutating(calls: &Value) -> BTreeMap<String, u64> {
    calls
        .as_object()
        .expect("calls")
        .iter()
        .filter(|(op, _)| {
            let operation = op.split(':').nth(1).unwrap_or("");
            !["Describe", "Get", "BatchGet", "List", "AssumeRole"].iter().any(|read| operation.starts_with(read))
        })
        .map(|(op, n)| (op.clone(), n.as_u64().unwrap_or(0)))
        .collect()
}

/// A small seeded generator (xorshift64*), so the kill points are the same on every machine.
pub(crate) fn seeded(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed.max(1);
    move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// A copy of the reference config in `root`, with `edit` applied to the text of `file` (a path
/// below the config folder, `base/clusters.yaml`).
pub(crate) fn reference_with(root: &Path, file: &str, edit: impl Fn(String) -> String) -> String {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("dir");
        for entry in std::fs::read_dir(from).expect("read") {
            let entry = entry.expect("entry");
            let target = to.join(entry.file_name());
            if entry.file_type().expect("type").is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).expect("copy");
            }
        }
    }
    let _ = std::fs::remove_dir_all(root);
    copy(Path::new(&reference_dir()), root);
    let path = root.join(file);
    let text = std::fs::read_to_string(&path).expect("the file exists");
    std::fs::write(&path, edit(text)).expect("written");
    root.to_string_lossy().into_owned()
}

/// Runs `enclave ARGS` against moto at `endpoint` through a fault proxy that freezes after
/// `point` mutating calls, then kills it there: the apply died mid-way (run `run` of a kill-point
/// test). Panics when the apply never reached the point or was not killed by it.
pub(crate) async fn killed_at(endpoint: &str, point: u64, args: &[&str], run: usize) {
    use enclave_aws::proxy::{FaultProxy, Faults};
    let proxy = FaultProxy::start(endpoint, Faults { freeze_after_mutations: Some(point), ..Faults::default() })
        .await
        .expect("proxy");
    let mut child = enclave_against(args, &proxy.endpoint())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("apply starts");
    let froze = proxy.frozen(std::time::Duration::from_secs(60)).await;
    child.kill().expect("kill");
    let status = child.wait().expect("reaped");
    assert!(froze, "run {run}: the apply reached mutating call {point}");
    assert!(!status.success(), "run {run}: killed mid-apply");
}

//! The engine's logs at trace level never show a sensitive value. Alone in its test binary: a
//! scoped tracing subscriber races with other tests over tracing's callsite interest cache.

use std::future::Future;
use std::sync::{Arc, Mutex};

use enclave_core::plan::{Resource, diff};
use enclave_core::reconcile::{Ids, Provider, Quiet, Step, apply};
use enclave_core::secret::Secret;

const CANARY: &str = "canary-7f3a9c-hunter2";

/// Fails every step with an error that quotes the whole step, as a careless provider might.
struct Quoting;

impl Provider for Quoting {
    type Error = String;

    async fn run(&self, step: &Step<'_>, _ids: &Ids) -> Result<Option<String>, String> {
        Err(format!("cannot apply {step:?}"))
    }
}

/// Keeps everything the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn block_on<F: Future>(future: F) -> F::Output {
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
    }
}

#[test]
fn trace_logs_of_a_failed_apply_show_no_sensitive_value() {
    let address = "prod/secrets/secret/db".parse().expect("address");
    let plan = diff(&[Resource::new(address).secret("password", Secret::new(CANARY))], &[]).expect("plan");
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber =
        tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_writer(move || writer.clone()).finish();
    let report =
        tracing::subscriber::with_default(subscriber, || block_on(apply(&plan, &Quoting, &Ids::default(), 1, &Quiet)));
    assert_eq!(report.failed.len(), 1);
    let logs = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
    assert!(logs.contains("step started") && logs.contains("step failed"), "{logs}");
    assert!(logs.contains("(sensitive)"), "the step was logged with what it hides: {logs}");
    assert!(!logs.contains("canary") && !logs.contains(&Secret::new(CANARY).digest()), "{logs}");
}

//! Counting API calls per operation.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Counts every operation a client sends (once per operation, not per retry attempt), keyed
/// `service:Operation` (`ec2:DescribeVpcs`). Clones share the counts.
#[derive(Clone, Default)]
pub struct CallCounter {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl fmt::Debug for CallCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.snapshot()).finish()
    }
}

impl CallCounter {
    /// The counts so far.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts.lock().map(|counts| counts.clone()).unwrap_or_default()
    }

    /// Total operations whose name does not start with `Describe`, `Get` or `List`.
    pub fn mutating(&self) -> u64 {
        self.snapshot()
            .iter()
            .filter(|(key, _)| {
                let operation = key.split(':').nth(1).unwrap_or_default();
                !["Describe", "Get", "List"].iter().any(|read| operation.starts_with(read))
            })
            .map(|(_, count)| count)
            .sum()
    }

    fn record(&self, key: String) {
        if let Ok(mut counts) = self.counts.lock() {
            *counts.entry(key).or_insert(0) += 1;
        }
    }
}

/// The IAM-style service prefix (`ec2`, `logs`, `iam`, `sts`) of an SDK service name
/// (`EC2`, `CloudWatch Logs`).
fn service_prefix(service: &str) -> String {
    match service {
        "CloudWatch Logs" => "logs".to_owned(),
        other => other.to_lowercase().replace(' ', "-"),
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "enclave-call-counter"
    }

    // Operation metadata is in the bag only once the operation's configuration is applied, after
    // `read_before_execution` of client interceptors; serialization happens once per operation.
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        config: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(metadata) = config.load::<Metadata>() {
            self.record(format!("{}:{}", service_prefix(metadata.service()), metadata.name()));
        }
        Ok(())
    }
}

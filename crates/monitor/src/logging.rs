//! JSON log lines for Filebeat and ELK.
//!
//! One JSON object per line with `timestamp`, `level`, `target`, `message` (Filebeat's `ndjson`
//! parser with `message_key: message`), the event's fields flattened beside them, and the
//! current span. The Filebeat input that reads them is rendered by
//! [`crate::render::filebeat_input`].

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

/// Installs a JSON subscriber on stdout, filtered by `RUST_LOG` (default `info`). Returns
/// false when a subscriber was already installed.
pub fn init_json() -> bool {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(true)
        .with_span_events(FmtSpan::NONE)
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .try_init()
        .is_ok()
}

/// Flushes and stops trace export when dropped; keep it alive for the life of the process.
#[cfg(feature = "otlp")]
pub struct TracingGuard {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

#[cfg(feature = "otlp")]
impl Drop for TracingGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            // Export what is buffered; a collector that is gone cannot be helped here.
            let _ = provider.shutdown();
        }
    }
}

/// Why tracing could not be set up.
#[cfg(feature = "otlp")]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TracingError {
    /// The OTLP exporter could not be built.
    #[error("cannot build the OTLP exporter for {endpoint}")]
    Exporter {
        /// Collector base URL.
        endpoint: String,
        /// Why.
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
    /// A global subscriber is already installed.
    #[error("a tracing subscriber is already installed")]
    AlreadyInstalled,
}

/// JSON logs on stdout (as [`init_json`]) plus, when `otlp_endpoint` is given (a collector's
/// base URL such as `http://jaeger:4318`), spans exported over OTLP/HTTP to
/// `<endpoint>/v1/traces` with `service.name` set to `service`.
#[cfg(feature = "otlp")]
pub fn init_with_otlp(service: &str, otlp_endpoint: Option<&str>) -> Result<TracingGuard, TracingError> {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig as _;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json =
        tracing_subscriber::fmt::layer().json().flatten_event(true).with_current_span(true).with_span_list(false);
    let Some(endpoint) = otlp_endpoint else {
        tracing_subscriber::registry()
            .with(filter)
            .with(json)
            .try_init()
            .map_err(|_| TracingError::AlreadyInstalled)?;
        return Ok(TracingGuard { provider: None });
    };
    let base = endpoint.trim_end_matches('/');
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{base}/v1/traces"))
        .build()
        .map_err(|source| TracingError::Exporter { endpoint: base.to_owned(), source })?;
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(opentelemetry_sdk::Resource::builder().with_service_name(service.to_owned()).build())
        .build();
    let tracer = provider.tracer(service.to_owned());
    tracing_subscriber::registry()
        .with(filter)
        .with(json)
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .try_init()
        .map_err(|_| TracingError::AlreadyInstalled)?;
    Ok(TracingGuard { provider: Some(provider) })
}

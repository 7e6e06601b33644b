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

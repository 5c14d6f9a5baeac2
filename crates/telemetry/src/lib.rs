//! Telemetry set-up shared by every binary: human-readable or JSON logs on standard error
//! (standard output stays for what a command prints, such as a new API key), filtered by
//! `RUST_LOG` when set, else by the configured filter; and Prometheus metrics ([`metrics`]).

pub mod metrics;

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// Installs the global subscriber. Calling it twice (as tests do) is harmless.
pub fn init(format: Format, default_filter: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(default_filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        Format::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        Format::Text => registry
            .with(fmt::layer().with_target(true).with_writer(std::io::stderr))
            .try_init(),
    };
    // Already initialised (several test servers in one process): keep the first.
    let _ = result;
}

//! Telemetry set-up shared by every binary: human-readable or JSON logs on standard error
//! (standard output stays for what a command prints, such as a new API key), filtered by
//! `RUST_LOG` when set, else by the configured filter; traces exported over OTLP when an
//! endpoint is configured ([`Traces`]); and Prometheus metrics ([`metrics`]).
//!
//! Trace context travels as W3C `traceparent`/`tracestate`: over HTTP with
//! [`inject_http`], over AMQP with the broker crate's headers, both through the global
//! propagator [`init`] installs.

pub mod metrics;

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::{
    Resource,
    propagation::TraceContextPropagator,
    trace::{Sampler, SdkTracerProvider},
};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, fmt, layer::Layered, prelude::*};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// Where traces go.
#[derive(Debug, Clone, Default)]
pub struct Traces {
    /// OTLP/HTTP endpoint of a collector (`http://collector:4318`); none: no traces are
    /// recorded or exported, at no cost.
    pub otlp_endpoint: Option<String>,
    /// Share of new traces recorded (0 to 1); a trace started upstream keeps its caller's
    /// decision.
    pub sampling_ratio: f64,
}

/// Flushes and stops trace export when dropped (at the end of `main`).
#[must_use = "dropping the guard stops trace export"]
pub struct Guard {
    provider: Option<SdkTracerProvider>,
}

impl Guard {
    /// Exports what is buffered and stops the exporter.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown_with_timeout(Duration::from_secs(5))
        {
            eprintln!("could not flush the last traces: {error}");
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Installs the global subscriber: logs, and traces of `service` when `traces` names an
/// endpoint. Calling it twice (as tests do) keeps the first.
pub fn init(
    service: &'static str,
    format: Format,
    default_filter: &str,
    traces: &Traces,
) -> Result<Guard, opentelemetry_otlp::ExporterBuildError> {
    let provider = match &traces.otlp_endpoint {
        Some(endpoint) => Some(otlp_provider(service, endpoint, traces.sampling_ratio)?),
        None => None,
    };
    install(format, default_filter, provider.clone(), service);
    Ok(Guard { provider })
}

/// Installs the global subscriber with traces going to `provider` (tests give one with an
/// in-memory exporter).
pub fn init_with_provider(
    service: &'static str,
    format: Format,
    default_filter: &str,
    provider: SdkTracerProvider,
) -> Guard {
    install(format, default_filter, Some(provider.clone()), service);
    Guard {
        provider: Some(provider),
    }
}

/// [`init`] as the settings say (`telemetry.*`), with `filter` as the log filter.
pub fn init_from_settings(
    service: &'static str,
    settings: &settings::TelemetrySettings,
    filter: &str,
) -> Result<Guard, opentelemetry_otlp::ExporterBuildError> {
    let format = match settings.log_format {
        settings::LogFormat::Json => Format::Json,
        settings::LogFormat::Text => Format::Text,
    };
    let traces = Traces {
        otlp_endpoint: settings
            .otlp_endpoint
            .clone()
            .filter(|endpoint| !endpoint.trim().is_empty()),
        sampling_ratio: settings.sampling_ratio,
    };
    init(service, format, filter, &traces)
}

fn otlp_provider(
    service: &'static str,
    endpoint: &str,
    sampling_ratio: f64,
) -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    use opentelemetry_otlp::WithExportConfig;
    let endpoint = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(endpoint)
        .build()?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            sampling_ratio.clamp(0.0, 1.0),
        ))))
        .with_resource(resource(service))
        .build())
}

/// The resource every span of `service` carries.
pub fn resource(service: &'static str) -> Resource {
    Resource::builder()
        .with_service_name(service)
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build()
}

type Base = Layered<EnvFilter, Registry>;

fn install(
    format: Format,
    default_filter: &str,
    provider: Option<SdkTracerProvider>,
    service: &'static str,
) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(default_filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let mut layers: Vec<Box<dyn Layer<Base> + Send + Sync>> = Vec::new();
    layers.push(match format {
        Format::Json => fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed(),
        Format::Text => fmt::layer()
            .with_target(true)
            .with_writer(std::io::stderr)
            .boxed(),
    });
    if let Some(provider) = &provider {
        layers.push(
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer(service))
                .boxed(),
        );
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    }
    // Already initialised (several test servers in one process): keep the first.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(layers)
        .try_init();
}

/// Adds the current span's `traceparent` (and `tracestate`) to outgoing HTTP headers.
/// Nothing is added while traces are off.
pub fn inject_http(headers: &mut http::HeaderMap) {
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut opentelemetry_http::HeaderInjector(headers));
    });
}

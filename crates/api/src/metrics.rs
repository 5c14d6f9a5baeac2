//! The api's Prometheus metrics, served at `/metrics`: requests by route and status
//! ([`telemetry::metrics::HttpMetrics`]), jobs submitted, event streams open, build info.

use actix_web::{HttpResponse, web};
use domain::job::Priority;
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};

use crate::state::AppState;

pub struct ApiMetrics {
    pub registry: Registry,
    pub http: telemetry::metrics::HttpMetrics,
    /// Jobs accepted (not idempotent replays), by priority.
    jobs_submitted: IntCounterVec,
    /// Server-sent event streams currently open.
    event_streams_open: IntGauge,
}

impl ApiMetrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = telemetry::metrics::registry("api", env!("CARGO_PKG_VERSION"))?;
        let http = telemetry::metrics::HttpMetrics::new(&registry)?;
        let jobs_submitted = IntCounterVec::new(
            Opts::new(
                "api_jobs_submitted_total",
                "Jobs accepted (idempotent replays not counted), by priority.",
            ),
            &["priority"],
        )?;
        let event_streams_open = IntGauge::new(
            "api_event_streams_open",
            "Job event streams (server-sent events) currently open.",
        )?;
        registry.register(Box::new(jobs_submitted.clone()))?;
        registry.register(Box::new(event_streams_open.clone()))?;
        // Every priority shows from the start, so a rate over them is defined before the first.
        for priority in [Priority::Low, Priority::Normal, Priority::High] {
            jobs_submitted.with_label_values(&[priority.as_str()]);
        }
        Ok(Self {
            registry,
            http,
            jobs_submitted,
            event_streams_open,
        })
    }

    pub fn job_submitted(&self, priority: Priority) {
        self.jobs_submitted
            .with_label_values(&[priority.as_str()])
            .inc();
    }

    /// Counts an event stream as open until the returned guard is dropped (the stream ends
    /// or its client goes away).
    pub fn event_stream_opened(&self) -> OpenStream {
        self.event_streams_open.inc();
        OpenStream(self.event_streams_open.clone())
    }
}

/// An open event stream, counted in `api_event_streams_open` while it lives.
pub struct OpenStream(IntGauge);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// `GET /metrics`: Prometheus text (not part of the REST API's OpenAPI document).
pub async fn serve(state: web::Data<AppState>) -> HttpResponse {
    telemetry::metrics::respond(&state.metrics.registry)
}

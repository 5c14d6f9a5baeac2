//! The worker's Prometheus metrics (besides the circuit breakers', which `resilience`
//! registers): what its Cohere calls are doing.

use prometheus::{IntCounterVec, IntGauge, Opts, Registry};

#[derive(Clone)]
pub struct Metrics {
    /// Cohere calls started and not yet finished or abandoned.
    pub calls_in_flight: IntGauge,
    /// Cohere calls by outcome (`ok`, `rate_limited`, `transient`, `systemic`, `permanent`),
    /// and calls abandoned (`cancelled`) or not made (`breaker_open`).
    pub calls: IntCounterVec,
}

impl Metrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let calls_in_flight = IntGauge::new(
            "worker_cohere_calls_in_flight",
            "Cohere calls in flight in this worker.",
        )?;
        let calls = IntCounterVec::new(
            Opts::new(
                "worker_cohere_calls_total",
                "Cohere calls by outcome (ok, rate_limited, transient, systemic, permanent), and calls abandoned (cancelled) or not made (breaker_open).",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(calls_in_flight.clone()))?;
        registry.register(Box::new(calls.clone()))?;
        Ok(Self {
            calls_in_flight,
            calls,
        })
    }

    pub fn outcome(&self, outcome: &str) {
        self.calls.with_label_values(&[outcome]).inc();
    }
}

/// Counts a call in flight for as long as it lives (dropped when the call ends or is
/// abandoned).
pub struct InFlight(IntGauge);

impl InFlight {
    pub fn start(metrics: &Metrics) -> Self {
        metrics.calls_in_flight.inc();
        Self(metrics.calls_in_flight.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

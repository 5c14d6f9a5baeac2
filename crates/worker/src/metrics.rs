//! The worker's Prometheus metrics (besides the circuit breakers', which `resilience`
//! registers): what its stages and Cohere calls are doing.

use std::time::Duration;

use prometheus::{
    Counter, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry,
};
use telemetry::metrics::SLOW_BUCKETS;

/// Buckets (seconds) of the rate limiter's waits: mostly none, up to a minute after a 429.
const WAIT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

#[derive(Clone)]
pub struct Metrics {
    /// Cohere calls started and not yet finished or abandoned.
    pub calls_in_flight: IntGauge,
    /// Cohere calls by outcome (`ok`, `rate_limited`, `transient`, `systemic`, `permanent`),
    /// and calls abandoned (`cancelled`) or not made (`breaker_open`).
    pub calls: IntCounterVec,
    /// Duration of each Cohere HTTP call, by outcome (`ok` or the failure's class).
    request_duration: HistogramVec,
    /// From a message's receipt to its outcome's commit.
    stage_duration: Histogram,
    /// Time spent waiting for the cluster-wide rate limiter before a call.
    limiter_wait: Histogram,
    /// Tokens Cohere reported for successful calls, by kind (`input`, `output`).
    tokens: IntCounterVec,
    /// What the successful calls cost, in US dollars (priced from their billed tokens).
    cost: Counter,
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
        let request_duration = HistogramVec::new(
            HistogramOpts::new(
                "worker_cohere_request_duration_seconds",
                "Duration of Cohere HTTP calls, by outcome (ok, rate_limited, transient, systemic, permanent).",
            )
            .buckets(SLOW_BUCKETS.to_vec()),
            &["outcome"],
        )?;
        let stage_duration = Histogram::with_opts(
            HistogramOpts::new(
                "worker_stage_duration_seconds",
                "From a stage message's receipt to its outcome being written (image fetch, rate-limiter wait, Cohere call, batch write).",
            )
            .buckets(SLOW_BUCKETS.to_vec()),
        )?;
        let limiter_wait = Histogram::with_opts(
            HistogramOpts::new(
                "worker_rate_limiter_wait_seconds",
                "Time each Cohere call waited for the cluster-wide rate limiter.",
            )
            .buckets(WAIT_BUCKETS.to_vec()),
        )?;
        let tokens = IntCounterVec::new(
            Opts::new(
                "worker_tokens_total",
                "Tokens Cohere reported for successful calls, by kind (input, output).",
            ),
            &["kind"],
        )?;
        let cost = Counter::new(
            "worker_cost_usd_total",
            "Cost recorded with the stage results, in US dollars.",
        )?;
        registry.register(Box::new(calls_in_flight.clone()))?;
        registry.register(Box::new(calls.clone()))?;
        registry.register(Box::new(request_duration.clone()))?;
        registry.register(Box::new(stage_duration.clone()))?;
        registry.register(Box::new(limiter_wait.clone()))?;
        registry.register(Box::new(tokens.clone()))?;
        registry.register(Box::new(cost.clone()))?;
        Ok(Self {
            calls_in_flight,
            calls,
            request_duration,
            stage_duration,
            limiter_wait,
            tokens,
            cost,
        })
    }

    pub fn outcome(&self, outcome: &str) {
        self.calls.with_label_values(&[outcome]).inc();
    }

    /// A finished Cohere HTTP call: its duration and outcome.
    pub fn request(&self, outcome: &str, duration: Duration) {
        self.request_duration
            .with_label_values(&[outcome])
            .observe(duration.as_secs_f64());
    }

    pub fn stage_written(&self, since_receipt: Duration) {
        self.stage_duration.observe(since_receipt.as_secs_f64());
    }

    pub fn limiter_waited(&self, wait: Duration) {
        self.limiter_wait.observe(wait.as_secs_f64());
    }

    /// The cost of a successful call, priced from its billed tokens.
    pub fn cost(&self, usd: f64) {
        if usd.is_finite() && usd > 0.0 {
            self.cost.inc_by(usd);
        }
    }

    pub fn tokens(&self, input: i64, output: i64) {
        for (kind, count) in [("input", input), ("output", output)] {
            self.tokens
                .with_label_values(&[kind])
                .inc_by(u64::try_from(count).unwrap_or(0));
        }
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

//! The scheduler's Prometheus metrics, served at `/metrics`.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntGauge, Registry};

pub(crate) struct Metrics {
    pub released: IntCounter,
    pub swept: IntCounter,
    pub materialized: IntCounter,
    pub window: IntGauge,
    pub tenants_with_work: IntGauge,
    pub leader: IntGauge,
    pub pass_seconds: Histogram,
}

impl Metrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let metrics = Self {
            released: IntCounter::new(
                "scheduler_released_items_total",
                "Items released into the stage queue.",
            )?,
            swept: IntCounter::new(
                "scheduler_swept_items_total",
                "Released items whose first stage never started, published again by the sweep.",
            )?,
            materialized: IntCounter::new(
                "scheduler_materialized_items_total",
                "Job items written from their jobs' selections.",
            )?,
            window: IntGauge::new(
                "scheduler_window_items",
                "Items released and not finished, over every tenant, at the last pass.",
            )?,
            tenants_with_work: IntGauge::new(
                "scheduler_tenants_with_work",
                "Tenants with items waiting to be released, at the last pass.",
            )?,
            leader: IntGauge::new(
                "scheduler_leader",
                "1 while this replica leads (holds the leader lock), else 0.",
            )?,
            pass_seconds: Histogram::with_opts(HistogramOpts::new(
                "scheduler_pass_seconds",
                "Duration of one release pass.",
            ))?,
        };
        registry.register(Box::new(metrics.released.clone()))?;
        registry.register(Box::new(metrics.swept.clone()))?;
        registry.register(Box::new(metrics.materialized.clone()))?;
        registry.register(Box::new(metrics.window.clone()))?;
        registry.register(Box::new(metrics.tenants_with_work.clone()))?;
        registry.register(Box::new(metrics.leader.clone()))?;
        registry.register(Box::new(metrics.pass_seconds.clone()))?;
        Ok(metrics)
    }
}

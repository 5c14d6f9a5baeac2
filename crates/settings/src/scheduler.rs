//! The scheduler: admission of work from PostgreSQL into RabbitMQ (docs/design.md, "Admission").

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SchedulerSettings {
    /// Items of the whole cluster released (queued or in flight) at once; each tenant with work
    /// gets a part by weight. A few times the workers' total concurrency keeps them busy.
    pub window: u32,
    /// Pause between passes when nothing was released.
    pub tick_millis: u64,
    /// Items written per statement when a job's items are materialized.
    pub materialize_chunk: u32,
    /// A released item whose first stage has not started after this long is published again
    /// (a scheduler that stopped between marking and publishing).
    pub sweep_after_seconds: u64,
    /// Address of the scheduler's `/healthz`, `/readyz` and `/metrics`.
    pub health_host: String,
    /// Port of the same (0 picks a free port).
    pub health_port: u16,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        Self {
            window: 128,
            tick_millis: 200,
            materialize_chunk: 5_000,
            sweep_after_seconds: 300,
            health_host: "127.0.0.1".into(),
            health_port: 9093,
        }
    }
}

//! What the worker's parts share.

use std::sync::Arc;

use broker::Publisher;
use cohere::CohereClient;
use sea_orm::DatabaseConnection;

use crate::{cancel::Cancellations, fetch::Fetcher, guard::Guard, jobs::JobCache};

pub struct Context {
    pub db: DatabaseConnection,
    pub publisher: Publisher,
    pub cohere: CohereClient,
    pub fetcher: Fetcher,
    pub jobs: JobCache,
    /// Circuit breakers, the cluster-wide rate limiter and the in-process retry policy.
    pub guard: Guard,
    pub cancellations: Arc<Cancellations>,
    pub metrics: crate::metrics::Metrics,
    /// Deliveries of one stage of one item before a transient failure is dead-lettered.
    pub max_attempts: u32,
    /// What each model's calls cost: every result is priced from its billed tokens.
    pub prices: settings::PriceTable,
}

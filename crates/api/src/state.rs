use std::sync::Arc;

use broker::Publisher;
use bytes::Bytes;
use http_support::Shutdown;
use sea_orm::DatabaseConnection;
use store::{TenantId, objects::Objects};
use uuid::Uuid;

use crate::{
    auth::KeyCache, budget::Budget, cache::TtlCache, events::EventHub, metrics::ApiMetrics,
    routes::tenant_events::rereads::Rereads,
};

/// What every handler can reach.
pub struct AppState {
    pub db: DatabaseConnection,
    pub publisher: Publisher,
    pub objects: Objects,
    pub keys: KeyCache,
    pub events: EventHub,
    /// One re-read of changed jobs per tenant with event streams open here.
    pub rereads: Rereads,
    /// Rendered `GET /api/jobs/{id}` bodies for a short time: the endpoint clients poll.
    /// Entries of a job this replica changes, or that any job event is about, are removed at
    /// once.
    pub job_views: Arc<TtlCache<(TenantId, Uuid), Bytes>>,
    pub metrics: ApiMetrics,
    /// Prices, rate limits and the scheduler's window, for estimates and ETAs.
    pub budget: Budget,
    /// Begun on SIGTERM: readiness fails and event streams end.
    pub shutdown: Shutdown,
}

//! `GET /api/health`: what the dashboard's health strip shows: the api's readiness checks and
//! the workers' circuit breakers (from the `circuit_breakers` table the workers write).

use actix_web::{get, web};
use chrono::{DateTime, Utc};
use http_support::{ReadinessChecks, health::readiness};
use serde::Serialize;
use store::breakers::ModelBreaker;
use utoipa::ToSchema;

use crate::{auth::Tenant, error::ApiError, state::AppState};

/// The longest open period of the workers' breakers (`breaker.max_open_seconds`), registered
/// as app data: an open row older than that belongs to a stopped worker.
#[derive(Debug, Clone, Copy)]
pub struct BreakerOpenLimit(pub u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Every check passes and no worker is paused.
    Ready,
    /// A dependency is unreachable, or the workers are paused by an open breaker.
    Degraded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BreakerStateName {
    /// Calls go through.
    Closed,
    /// A few probe calls decide whether to close again.
    HalfOpen,
    /// Calls are refused until `open_until`; the workers hold their messages.
    Open,
}

/// One Cohere model's circuit breaker, in its worst state across the workers.
#[derive(Debug, Serialize, ToSchema)]
pub struct BreakerView {
    #[schema(example = "command-a-vision-07-2025")]
    pub model: String,
    pub state: BreakerStateName,
    /// When it entered this state.
    pub since: DateTime<Utc>,
    /// Why it entered this state.
    #[schema(example = "systemic failure: Cohere answered HTTP 401: invalid api token")]
    pub reason: Option<String>,
    /// When an open breaker will turn half-open.
    pub open_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkersHealth {
    /// Some breaker is open: the workers hold the messages for that model.
    pub paused: bool,
    /// Some breaker is open because Cohere refused the key (HTTP 401 or 403).
    pub key_rejected: bool,
    /// One entry per model the workers have called (none before the first call).
    pub breakers: Vec<BreakerView>,
}

/// The api's readiness and the workers' breakers.
#[derive(Debug, Serialize, ToSchema)]
pub struct SystemHealth {
    pub status: HealthStatus,
    /// The api's dependencies, as `/readyz` reports them.
    pub checks: ReadinessChecks,
    pub workers: WorkersHealth,
}

impl From<ModelBreaker> for BreakerView {
    fn from(b: ModelBreaker) -> Self {
        let state = match b.state.as_str() {
            "open" => BreakerStateName::Open,
            "half_open" => BreakerStateName::HalfOpen,
            _ => BreakerStateName::Closed,
        };
        BreakerView {
            model: b.model,
            state,
            since: b.since,
            reason: b.reason,
            open_until: b.open_until.filter(|_| state == BreakerStateName::Open),
        }
    }
}

/// The system's health, for the dashboard.
///
/// Answers 200 whatever the state (the body says it); `/readyz` is the probe for orchestrators.
#[utoipa::path(
    tag = "health",
    responses((status = 200, description = "The api's checks and the workers' breakers", body = SystemHealth))
)]
#[get("/health")]
pub async fn system_health(
    state: web::Data<AppState>,
    limit: web::Data<BreakerOpenLimit>,
    _tenant: Tenant,
) -> Result<web::Json<SystemHealth>, ApiError> {
    let (ready, breakers) = tokio::join!(
        readiness(state.as_ref()),
        store::breakers::by_model(&state.db, limit.0)
    );
    let breakers = breakers.unwrap_or_else(|error| {
        // The database check already says so; the breakers are unknown meanwhile.
        tracing::warn!(%error, "could not read the circuit breakers");
        Vec::new()
    });
    let paused = breakers.iter().any(ModelBreaker::is_open);
    let key_rejected = breakers.iter().any(ModelBreaker::key_rejected);
    let status = if ready.is_ready() && !paused {
        HealthStatus::Ready
    } else {
        HealthStatus::Degraded
    };
    Ok(web::Json(SystemHealth {
        status,
        checks: ready.checks,
        workers: WorkersHealth {
            paused,
            key_rejected,
            breakers: breakers.into_iter().map(BreakerView::from).collect(),
        },
    }))
}

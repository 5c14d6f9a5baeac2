//! The Cohere budget as estimates see it: prices, rate limits and the scheduler's window from
//! the settings, a tenant's share of the calls per minute, and a job's live ETA.

use domain::estimate;
use settings::{CohereSettings, PriceTable, Settings};
use store::{
    TenantId,
    entities::jobs,
    estimate::{Ahead, Queue},
};

use crate::{error::ApiError, state::AppState};

/// What estimates need from the settings.
#[derive(Debug, Clone)]
pub struct Budget {
    /// Prices and rate limits (without the API key, which the api never uses).
    cohere: CohereSettings,
    /// The scheduler's window: the budget when no rate limit is set.
    window: u32,
}

impl Budget {
    pub fn from_settings(settings: &Settings) -> Self {
        let mut cohere = settings.cohere.clone();
        cohere.api_key = None;
        Self {
            cohere,
            window: settings.scheduler.window,
        }
    }

    pub fn prices(&self) -> &PriceTable {
        &self.cohere.prices
    }

    /// The calls per minute a tenant placed as `queue` says gets for a job whose stages use
    /// `models`: the tightest of the models' cluster-wide limits (or, with none set, the
    /// scheduler's window turned over every [`estimate::ASSUMED_CALL_SECONDS`]), shared by
    /// weight among the tenants with work and capped by the tenant's own limit.
    pub fn tenant_rate<'a>(&self, models: impl IntoIterator<Item = &'a str>, queue: &Queue) -> f64 {
        let budget = estimate::budget_per_minute(
            models
                .into_iter()
                .map(|model| self.cohere.requests_per_minute_for(model)),
            self.window,
        );
        estimate::tenant_rate(
            budget,
            queue.weight,
            queue.total_weight,
            queue.calls_per_minute,
        )
    }
}

/// The models of a job's stages, read from its pipeline snapshot.
pub fn stage_models(job: &jobs::Model) -> Vec<String> {
    job.pipeline_snapshot["stages"]
        .as_array()
        .map(|stages| {
            stages
                .iter()
                .filter_map(|stage| stage["model"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Seconds until an unfinished job is done, from its remaining calls and the calls of its
/// tenant's jobs ahead of it (both upper bounds: remaining items × stages) at the tenant's
/// rate; `None` once it finished. One query.
pub async fn live_eta(
    state: &AppState,
    tenant: TenantId,
    job: &jobs::Model,
) -> Result<Option<u64>, ApiError> {
    if job.status.is_terminal() {
        return Ok(None);
    }
    let queue = store::estimate::queue(
        &state.db,
        tenant,
        Ahead::Job {
            id: job.id,
            priority: job.priority,
            created_at: job.created_at,
        },
    )
    .await?;
    let models = stage_models(job);
    let remaining = if job.stop_reason.is_some() {
        // Stopped by its budget cap: only the calls in flight are left.
        u64::try_from(job.running_items).unwrap_or(0)
    } else {
        u64::try_from(job.pending_items + job.running_items).unwrap_or(0)
            * models.len().max(1) as u64
    };
    let rate = state
        .budget
        .tenant_rate(models.iter().map(String::as_str), &queue);
    Ok(Some(estimate::eta_seconds(
        queue.calls_ahead + remaining,
        rate,
    )))
}

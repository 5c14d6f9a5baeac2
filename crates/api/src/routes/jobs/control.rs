//! What changes a job after submission, for the single-job endpoints and the bulk ones alike:
//! cancelling, retrying, and the events that tell of it.

use domain::{event::JobEventKind, job::JobStatus};
use store::{
    TenantId,
    entities::jobs,
    jobs::JobView,
    retry::{ReopenError, ReopenScope},
};
use uuid::Uuid;

use crate::{error::ApiError, state::AppState};

/// Publishes an event about `job` as stored, best effort: live views re-read jobs from the
/// database when events go missing.
pub(crate) async fn publish_event(state: &AppState, job: &jobs::Model, kind: JobEventKind) {
    let event = store::jobs::event(job, kind);
    if let Err(error) = state.publisher.publish_event(&event).await {
        tracing::warn!(%error, job_id = %job.id, event = event.name(), "could not publish a job event");
    }
}

/// Cancels one job of the tenant and tells the workers (see [`super::cancel_job`]).
pub(crate) async fn cancel(
    state: &AppState,
    tenant: TenantId,
    job_id: Uuid,
) -> Result<JobView, ApiError> {
    let view = store::jobs::cancel(&state.db, tenant, job_id)
        .await
        .map_err(|e| ApiError::from_store(e, "job"))?;
    state.job_views.remove(&(tenant, job_id));
    // Workers learn of the cancellation from the job's status too; the event makes it prompt.
    publish_event(state, &view.job, JobEventKind::CancelRequested).await;
    tracing::info!(job_id = %view.job.id, "job cancelled");
    Ok(view)
}

/// Re-opens one job's failed items, and resumes what its budget skipped (see
/// [`super::retry_job`]); what the bulk retry does for each job.
pub(crate) async fn retry(
    state: &AppState,
    tenant: TenantId,
    job_id: Uuid,
) -> Result<JobView, ApiError> {
    retry_with_cap(state, tenant, job_id, None).await
}

/// [`retry`], setting the job's cap to `max_cost_usd` when given.
pub(crate) async fn retry_with_cap(
    state: &AppState,
    tenant: TenantId,
    job_id: Uuid,
    max_cost_usd: Option<f64>,
) -> Result<JobView, ApiError> {
    let publisher = &state.publisher;
    let job_views = &state.job_views;
    let reopened = store::retry::reopen_and_announce(
        &state.db,
        ReopenScope::Job {
            tenant,
            job_id,
            max_cost_usd,
        },
        |messages| async move { publisher.publish_reopened(&messages).await },
        |events| async move {
            // Before the events go out, so a client reading the job on one gets the new view.
            job_views.remove(&(tenant, job_id));
            publisher.publish_events(&events).await
        },
    )
    .await
    .map_err(|err| match err {
        ReopenError::Publish(cause) => {
            tracing::warn!(error = %cause, %job_id, "could not publish a retry's messages; nothing was changed");
            ApiError::Unavailable(
                "the message broker is unavailable; nothing was retried, retry later",
            )
        }
        ReopenError::Store(e) => ApiError::from_store(e, "job"),
        ReopenError::Uncapped => ApiError::invalid(
            "/max_cost_usd",
            "the job has no budget cap to raise",
        ),
        ReopenError::CapNotAboveSpend { spent_usd } => ApiError::invalid(
            "/max_cost_usd",
            format!("must be greater than what the job has spent ({spent_usd} USD)"),
        ),
        ReopenError::BudgetExhausted {
            spent_usd,
            max_cost_usd,
        } => ApiError::Conflict(format!(
            "the job's spend ({spent_usd} USD) reached its cap ({max_cost_usd} USD); retry with a higher max_cost_usd"
        )),
    })?;
    let view = store::jobs::get(&state.db, tenant, job_id)
        .await
        .map_err(|e| ApiError::from_store(e, "job"))?;
    if reopened.reopened.is_empty() && reopened.resumed == 0 {
        return Err(ApiError::Conflict(
            if view.job.status == JobStatus::Cancelled {
                "the job is cancelled; its items cannot be retried".into()
            } else {
                "the job has no failed items to retry".into()
            },
        ));
    }
    tracing::info!(%job_id, items = reopened.reopened.len(), resumed = reopened.resumed, "job retried");
    Ok(view)
}

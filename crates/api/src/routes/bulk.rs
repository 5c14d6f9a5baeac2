//! `/api/jobs/bulk/*`: cancel or retry many jobs in one request, each exactly as its single-job
//! endpoint would, with an outcome per job.

use std::collections::HashSet;

use actix_web::{post, web};
use domain::validation::ValidationErrors;
use serde::{Deserialize, Serialize};
use store::{TenantId, jobs::JobView};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    auth::Tenant,
    error::ApiError,
    extract::{JsonBody, Validate},
    routes::jobs,
    state::AppState,
};

/// Most jobs one bulk request may name.
pub const MAX_BULK_JOBS: usize = 100;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"job_ids": ["01936d6e-8f3a-7c1e-9b2a-3f4e5d6c7b8a"]}))]
pub struct BulkJobs {
    /// The jobs, each named once.
    #[schema(min_items = 1, max_items = 100)]
    pub job_ids: Vec<Uuid>,
}

impl Validate for BulkJobs {
    fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        if self.job_ids.is_empty() {
            errors.push("/job_ids", "must name at least one job");
        } else if self.job_ids.len() > MAX_BULK_JOBS {
            errors.push(
                "/job_ids",
                format!("at most {MAX_BULK_JOBS} jobs per request"),
            );
        }
        let mut seen = HashSet::with_capacity(self.job_ids.len());
        for (i, id) in self.job_ids.iter().enumerate() {
            if !seen.insert(id) {
                errors.push(format!("/job_ids/{i}"), format!("job {id} is listed twice"));
            }
        }
        errors.into_result()
    }
}

/// What happened to one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BulkOutcome {
    /// Cancelled (or already cancelled) / its failed items run again.
    Done,
    /// No such job for this tenant.
    NotFound,
    /// The job's state does not allow it (see `detail`).
    Conflict,
    /// The database or broker was unavailable for this job; nothing changed for it.
    Unavailable,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct BulkResult {
    pub job_id: Uuid,
    pub outcome: BulkOutcome,
    /// Why it was not done.
    pub detail: Option<String>,
}

/// One outcome per job, in the order the request named them.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct BulkResults {
    pub results: Vec<BulkResult>,
}

/// Runs `action` on each job in turn; an error for one job becomes its outcome.
async fn each<'a, F, Fut>(
    state: &'a AppState,
    tenant: TenantId,
    job_ids: Vec<Uuid>,
    action: F,
) -> Result<BulkResults, ApiError>
where
    F: Fn(&'a AppState, TenantId, Uuid) -> Fut,
    Fut: Future<Output = Result<JobView, ApiError>>,
{
    let mut results = Vec::with_capacity(job_ids.len());
    for job_id in job_ids {
        let (outcome, detail) = match action(state, tenant, job_id).await {
            Ok(_) => (BulkOutcome::Done, None),
            Err(ApiError::NotFound(_)) => (BulkOutcome::NotFound, None),
            Err(ApiError::Conflict(detail)) => (BulkOutcome::Conflict, Some(detail)),
            Err(ApiError::Unavailable(detail)) => {
                (BulkOutcome::Unavailable, Some(detail.to_string()))
            }
            Err(other) => return Err(other),
        };
        results.push(BulkResult {
            job_id,
            outcome,
            detail,
        });
    }
    Ok(BulkResults { results })
}

/// Cancel up to 100 jobs, each as `POST /api/jobs/{job_id}/cancel` would.
#[utoipa::path(
    tag = "jobs",
    request_body = BulkJobs,
    responses((status = 200, description = "One outcome per job", body = BulkResults))
)]
#[post("/jobs/bulk/cancel")]
pub async fn bulk_cancel(
    state: web::Data<AppState>,
    Tenant(tenant): Tenant,
    JsonBody(body): JsonBody<BulkJobs>,
) -> Result<web::Json<BulkResults>, ApiError> {
    Ok(web::Json(
        each(&state, tenant, body.job_ids, jobs::cancel).await?,
    ))
}

/// Retry the failed items of up to 100 jobs, each as `POST /api/jobs/{job_id}/retry` would
/// (its messages confirmed by the broker before anything is stored).
#[utoipa::path(
    tag = "jobs",
    request_body = BulkJobs,
    responses((status = 200, description = "One outcome per job", body = BulkResults))
)]
#[post("/jobs/bulk/retry")]
pub async fn bulk_retry(
    state: web::Data<AppState>,
    Tenant(tenant): Tenant,
    JsonBody(body): JsonBody<BulkJobs>,
) -> Result<web::Json<BulkResults>, ApiError> {
    Ok(web::Json(
        each(&state, tenant, body.job_ids, jobs::retry).await?,
    ))
}

/// Before the single-job routes, so `bulk` is not read as a job id.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(bulk_cancel).service(bulk_retry);
}

//! `/api/jobs/bulk/*`: cancel or retry many jobs in one request, each exactly as its single-job
//! endpoint would, with an outcome per job.

use actix_web::{post, web};
use domain::{selection::IdList, validation::ValidationErrors};
use serde::{Deserialize, Serialize};
use store::{TenantId, jobs::JobView};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    auth::Tenant,
    error::ApiError,
    extract::{IdListWording, JsonBody, RequestBody, id_list_errors, id_list_schema},
    routes::jobs,
    state::AppState,
};

/// Most jobs one bulk request may name.
pub const MAX_BULK_JOBS: usize = 100;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"job_ids": ["01936d6e-8f3a-7c1e-9b2a-3f4e5d6c7b8a"]}))]
pub struct BulkJobs {
    /// Documented by [`job_ids_schema`], whose limit is the one the code checks.
    #[schema(schema_with = job_ids_schema)]
    pub job_ids: Vec<Uuid>,
}

fn job_ids_schema() -> utoipa::openapi::schema::Array {
    id_list_schema("The jobs, each named once.", MAX_BULK_JOBS, false)
}

impl RequestBody for BulkJobs {
    type Parsed = IdList;

    fn parse(self) -> Result<IdList, ApiError> {
        IdList::parse(self.job_ids, MAX_BULK_JOBS).map_err(|error| {
            let mut errors = ValidationErrors::new();
            let wording = IdListWording {
                noun: "job",
                empty: "must name at least one job",
                too_many: |max| format!("at most {max} jobs per request"),
            };
            id_list_errors("/job_ids", error, &wording, &mut errors);
            ApiError::Validation(errors)
        })
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
        each(&state, tenant, body.into_vec(), jobs::cancel).await?,
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
        each(&state, tenant, body.into_vec(), jobs::retry).await?,
    ))
}

/// Before the single-job routes, so `bulk` is not read as a job id.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(bulk_cancel).service(bulk_retry);
}

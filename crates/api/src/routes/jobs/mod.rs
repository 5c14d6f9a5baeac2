//! `/api/jobs`: submit, details, history, cancel, retry.

mod control;
mod estimate;
mod view;

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use domain::{
    event::JobEventKind,
    job::{JobStatus, Priority},
    selection::{
        IdListError, IdListProblem, ImageSelection, MAX_IMAGES_PER_JOB, MAX_LIBRARY_IMAGES_PER_JOB,
    },
    validation::ValidationErrors,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use store::{
    TenantId,
    jobs::{HistoryFilter, Submission, SubmitError},
};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    auth::Tenant,
    error::ApiError,
    extract::{JsonBody, OptionalJsonBody, PageQuery, RequestBody, id_list_schema},
    routes::{Paged, paged},
    state::AppState,
};

pub(crate) use self::control::{cancel, publish_event, retry, retry_with_cap};
pub use self::estimate::{CostRange, JobEstimate, PriceSource, StageEstimate, TokenRange};
pub use self::view::{Job, JobSummary, StageProgress, Usage};

const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";
const MAX_IDEMPOTENCY_KEY_LEN: usize = 200;

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "pipeline_id": "01936d6e-8f3a-7c1e-9b2a-3f4e5d6c7b8a",
    "library_id": "01936d6e-8f3a-7c1e-9b2a-000000000001",
    "priority": "high",
    "max_cost_usd": 5.0
}))]
pub struct SubmitJob {
    pub pipeline_id: Uuid,
    pub library_id: Uuid,
    /// Documented by [`image_ids_schema`], whose limit is the one the code checks.
    #[schema(schema_with = image_ids_schema)]
    pub image_ids: Option<Vec<Uuid>>,
    #[serde(default)]
    pub priority: Priority,
    /// A budget cap in US dollars: once the job's spend (`usage.cost_usd`) reaches it, no new
    /// call starts for the job and its remaining items end `skipped` (`stop_reason`
    /// `budget_exhausted`). Calls already in flight finish, so the spend can pass the cap by
    /// at most what they cost. A retry can raise it.
    // Left out of the body's fingerprint when absent, so idempotency keys of requests made
    // before caps existed still match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(exclusive_minimum = 0, example = 5.0)]
    pub max_cost_usd: Option<f64>,
}

fn image_ids_schema() -> utoipa::openapi::schema::Array {
    id_list_schema(
        "Images of the library to analyse; all of them when absent.",
        MAX_IMAGES_PER_JOB,
        true,
    )
}

/// A job submission, parsed. Whether its pipeline, library and images exist is for the store
/// to find out ([`store::jobs::SubmitError`]).
pub struct JobRequest {
    pub pipeline_id: Uuid,
    pub library_id: Uuid,
    pub images: ImageSelection,
    pub priority: Priority,
    /// The job's budget cap, if it has one (finite and above 0).
    pub max_cost_usd: Option<f64>,
    /// Fingerprint of the body, so a reused idempotency key with a different body is caught.
    pub request_hash: String,
}

impl RequestBody for SubmitJob {
    type Parsed = JobRequest;

    fn parse(self) -> Result<JobRequest, ApiError> {
        let request_hash = fingerprint(&self)?;
        let mut errors = ValidationErrors::new();
        let images = ImageSelection::parse(self.image_ids)
            .map_err(|error| selection_errors(error, &mut errors))
            .ok();
        let max_cost_usd = self
            .max_cost_usd
            .and_then(|cap| parse_cap("/max_cost_usd", cap, &mut errors));
        match images {
            Some(images) if errors.is_empty() => Ok(JobRequest {
                pipeline_id: self.pipeline_id,
                library_id: self.library_id,
                images,
                priority: self.priority,
                max_cost_usd,
                request_hash,
            }),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

/// A submission's `image_ids` problem: the first one, at the list.
fn selection_errors(error: IdListError, errors: &mut ValidationErrors) {
    let message = match error.0.first() {
        Some(IdListProblem::TooMany { max }) => format!("at most {max} images per job"),
        Some(IdListProblem::Repeated { id, .. }) => format!("image {id} is listed twice"),
        Some(IdListProblem::Empty) | None => {
            "must name at least one image, or be left out to use the whole library".into()
        }
    };
    errors.push("/image_ids", message);
}

/// A budget cap as given at `path`: a finite number of US dollars above 0, or `None` with the
/// problem recorded in `errors`.
pub(crate) fn parse_cap(path: &str, cap: f64, errors: &mut ValidationErrors) -> Option<f64> {
    if cap.is_finite() && cap > 0.0 {
        return Some(cap);
    }
    errors.push(path, "must be a number of US dollars greater than 0");
    None
}

/// The hex SHA-256 of a body as it serializes (so equal requests match however they were
/// spelled): what an idempotency key is checked against.
pub(crate) fn fingerprint(body: &impl Serialize) -> Result<String, ApiError> {
    let bytes = serde_json::to_vec(body).map_err(ApiError::internal)?;
    Ok(hex::encode(Sha256::digest(bytes)))
}

pub(crate) fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(IDEMPOTENCY_KEY_HEADER) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY_LEN && k.chars().all(|c| c.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "the {IDEMPOTENCY_KEY_HEADER} header must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"
            ))
        })?;
    Ok(Some(key.to_string()))
}

/// Submit a job: run a pipeline over a library's images.
///
/// The job, its items and one first-stage message per item are accepted together or not
/// at all. With an `Idempotency-Key`, a retried submission returns the job of the first.
#[utoipa::path(
    tag = "jobs",
    request_body = SubmitJob,
    params(("Idempotency-Key" = Option<String>, Header, pattern = r"^[\x21-\x7E]{1,200}$", description = "Makes retries of the same submission return the same job (1 to 200 visible ASCII characters)")),
    responses(
        (status = 202, description = "Accepted: the job is queued", body = Job,
            headers(("Location" = String, description = "URL of the job"))),
        (status = 409, description = "The Idempotency-Key was used for a different request", body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/jobs/submit")]
pub async fn submit_job(
    state: web::Data<AppState>,
    Tenant(tenant): Tenant,
    req: HttpRequest,
    JsonBody(body): JsonBody<SubmitJob>,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency_key(&req)?;
    let traceparent = broker::trace::current_traceparent();
    let submission = Submission {
        pipeline_id: body.pipeline_id,
        library_id: body.library_id,
        images: &body.images,
        priority: body.priority,
        idempotency_key: key.as_deref(),
        request_hash: &body.request_hash,
        preview: None,
        max_cost_usd: body.max_cost_usd,
        traceparent: traceparent.as_deref(),
    };
    accept(&state, tenant, submission).await
}

/// Why a submission (or its estimate) was refused, for the client.
pub(crate) fn submit_error(err: SubmitError) -> ApiError {
    match err {
        SubmitError::UnknownPipeline(_) => {
            ApiError::invalid("/pipeline_id", "no pipeline with this id")
        }
        SubmitError::UnknownLibrary(_) => {
            ApiError::invalid("/library_id", "no library with this id")
        }
        SubmitError::ImagesNotInLibrary(missing) => {
            let shown: Vec<String> = missing.iter().take(10).map(Uuid::to_string).collect();
            ApiError::invalid(
                "/image_ids",
                format!("not images of this library: {}", shown.join(", ")),
            )
        }
        SubmitError::NoImages => {
            ApiError::invalid("/library_id", "the library has no images to analyse")
        }
        SubmitError::TooManyImages => ApiError::invalid(
            "/library_id",
            format!(
                "a job covers at most {MAX_LIBRARY_IMAGES_PER_JOB} images; pass image_ids to choose some"
            ),
        ),
        SubmitError::IdempotencyKeyReused => ApiError::Conflict(
            "this Idempotency-Key was already used for a different request; use a new key".into(),
        ),
        SubmitError::Store(e) => e.into(),
    }
}

/// Submits a job (see [`submit_job`]) and answers 202 with it.
pub(crate) async fn accept(
    state: &AppState,
    tenant: TenantId,
    submission: Submission<'_>,
) -> Result<HttpResponse, ApiError> {
    let priority = submission.priority;
    let accepted = store::jobs::submit(&state.db, tenant, submission)
        .await
        .map_err(submit_error)?;
    if accepted.created {
        state.metrics.job_submitted(priority);
        tracing::info!(job_id = %accepted.job.job.id, items = accepted.job.job.total_items, "job accepted");
        // After the commit, so a listener that reads the job finds it.
        publish_event(state, &accepted.job.job, JobEventKind::Created).await;
    }
    let job = Job::live(state, tenant, accepted.job).await?;
    Ok(HttpResponse::Accepted()
        .insert_header(("Location", format!("/api/jobs/{}", job.id)))
        .insert_header((
            "Idempotent-Replayed",
            if accepted.created { "false" } else { "true" },
        ))
        .json(job))
}

/// Get a job's status, counts, per-stage progress and token usage.
#[utoipa::path(
    tag = "jobs",
    params(("job_id" = Uuid, Path, description = "Job id")),
    responses((status = 200, description = "The job", body = Job))
)]
#[get("/jobs/{job_id}")]
pub async fn get_job(
    state: web::Data<AppState>,
    Tenant(tenant): Tenant,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let body = state
        .job_views
        .get_or_load((tenant, *path), || async {
            let view = store::jobs::get(&state.db, tenant, *path)
                .await
                .map_err(|e| ApiError::from_store(e, "job"))?;
            let job = Job::live(&state, tenant, view).await?;
            Ok::<_, ApiError>(Bytes::from(
                serde_json::to_vec(&job).map_err(ApiError::internal)?,
            ))
        })
        .await?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Only jobs in this status.
    pub status: Option<JobStatus>,
    pub pipeline_id: Option<Uuid>,
    pub library_id: Option<Uuid>,
    /// Only jobs created at or after this instant (RFC 3339).
    pub created_from: Option<DateTime<Utc>>,
    /// Only jobs created before this instant (RFC 3339).
    pub created_to: Option<DateTime<Utc>>,
    /// Include previews (stages tried before a pipeline is saved); left out by default.
    pub include_previews: Option<bool>,
    /// Order of the jobs (a field, descending with a leading `-`); `-created_at`, newest
    /// first, by default. Jobs not finished come last when sorting by `finished_at`;
    /// `status` sorts by status name, newest first within a status.
    #[param(inline)]
    pub sort: Option<HistorySort>,
}

/// Orders of the job history.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
pub enum HistorySort {
    #[serde(rename = "created_at")]
    CreatedAt,
    #[serde(rename = "-created_at")]
    CreatedAtDesc,
    #[serde(rename = "finished_at")]
    FinishedAt,
    #[serde(rename = "-finished_at")]
    FinishedAtDesc,
    #[serde(rename = "status")]
    Status,
}

impl From<HistorySort> for store::jobs::HistorySort {
    fn from(sort: HistorySort) -> Self {
        match sort {
            HistorySort::CreatedAt => Self::CreatedAt,
            HistorySort::CreatedAtDesc => Self::CreatedAtDesc,
            HistorySort::FinishedAt => Self::FinishedAt,
            HistorySort::FinishedAtDesc => Self::FinishedAtDesc,
            HistorySort::Status => Self::Status,
        }
    }
}

/// The job history with filters, newest first unless `sort` says otherwise.
#[utoipa::path(
    tag = "jobs",
    params(HistoryQuery, PageQuery),
    responses((status = 200, description = "A page of jobs", body = Paged<JobSummary>))
)]
#[get("/jobs/history")]
pub async fn job_history(
    state: web::Data<AppState>,
    Tenant(tenant): Tenant,
    filter: web::Query<HistoryQuery>,
    page: web::Query<PageQuery>,
) -> Result<web::Json<Paged<JobSummary>>, ApiError> {
    let page = page.page()?;
    if let (Some(from), Some(to)) = (filter.created_from, filter.created_to)
        && from > to
    {
        return Err(ApiError::BadRequest(
            "created_from must not be after created_to".into(),
        ));
    }
    let sort = filter.sort.map(Into::into).unwrap_or_default();
    let filter = HistoryFilter {
        status: filter.status,
        pipeline_id: filter.pipeline_id,
        library_id: filter.library_id,
        created_from: filter.created_from,
        created_to: filter.created_to,
        include_previews: filter.include_previews.unwrap_or(false),
    };
    let jobs = store::jobs::history(&state.db, tenant, &filter, sort, page).await?;
    let items = jobs
        .items
        .into_iter()
        .map(JobSummary::try_from)
        .collect::<Result<_, _>>()?;
    Ok(web::Json(paged(
        store::Page {
            items,
            total: jobs.total,
        },
        page,
    )))
}

/// Cancel a job: its pending items and the job become `cancelled`.
///
/// Cancelling a cancelled job returns it unchanged; a finished job cannot be cancelled.
#[utoipa::path(
    tag = "jobs",
    params(("job_id" = Uuid, Path, description = "Job id")),
    responses(
        (status = 200, description = "The cancelled job", body = Job),
        (status = 409, description = "The job already finished", body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/jobs/{job_id}/cancel")]
pub async fn cancel_job(
    state: web::Data<AppState>,
    Tenant(tenant): Tenant,
    path: web::Path<Uuid>,
) -> Result<web::Json<Job>, ApiError> {
    let view = cancel(&state, tenant, *path).await?;
    Ok(web::Json(Job::try_from(view)?))
}

/// What a retry may change besides re-running items.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"max_cost_usd": 10.0}))]
pub struct RetryJob {
    /// A new budget cap in US dollars for a job that has one, greater than what the job has
    /// spent: a job its budget stopped then resumes its skipped items.
    #[schema(exclusive_minimum = 0, example = 10.0)]
    pub max_cost_usd: Option<f64>,
}

impl RequestBody for RetryJob {
    type Parsed = Option<f64>;

    fn parse(self) -> Result<Option<f64>, ApiError> {
        let mut errors = ValidationErrors::new();
        let cap = self
            .max_cost_usd
            .and_then(|cap| parse_cap("/max_cost_usd", cap, &mut errors));
        errors.into_result().map_err(ApiError::Validation)?;
        Ok(cap)
    }
}

/// Retry a job's failed items (each runs again from the stage where it failed), and resume a
/// job its budget stopped.
///
/// The failed items go back to `pending` (their attempts and errors cleared) and a finished
/// job runs again; their stage messages are confirmed by the broker before anything is
/// stored, so if the broker is down the answer is 503 and nothing changed.
///
/// A job stopped by its budget (`stop_reason` `budget_exhausted`) resumes when its cap is above
/// its spend: raise it with `max_cost_usd` (422 unless greater than `usage.cost_usd`). Its
/// skipped items go back to `pending` and are released again by the scheduler, and
/// `stop_reason` is cleared. While the spend is at or over the cap, a retry is refused (409).
/// A job with nothing failed or skipped, or a cancelled job, cannot be retried. The body is
/// optional.
#[utoipa::path(
    tag = "jobs",
    params(("job_id" = Uuid, Path, description = "Job id")),
    request_body(content = Option<RetryJob>, description = "Optional: a new budget cap"),
    responses(
        (status = 200, description = "The job, running its failed and skipped items again", body = Job),
        (status = 409, description = "The job is cancelled, has nothing to retry, or its spend reached its cap", body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/jobs/{job_id}/retry")]
pub async fn retry_job(
    state: web::Data<AppState>,
    Tenant(tenant): Tenant,
    path: web::Path<Uuid>,
    OptionalJsonBody(cap): OptionalJsonBody<RetryJob>,
) -> Result<web::Json<Job>, ApiError> {
    let view = retry_with_cap(&state, tenant, *path, cap.flatten()).await?;
    Ok(web::Json(Job::live(&state, tenant, view).await?))
}

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    // `/jobs/history` before `/jobs/{job_id}` so "history" is not read as an id.
    cfg.service(submit_job)
        .service(self::estimate::estimate_job)
        .service(job_history)
        .service(get_job)
        .service(cancel_job)
        .service(retry_job);
}

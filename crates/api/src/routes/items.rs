//! `/api/jobs/{job_id}/items` and `/api/jobs/{job_id}/errors`: a job's images one by one,
//! each with what every stage asked and answered, and its failures grouped by class.

use actix_web::{get, web};
use chrono::{DateTime, Utc};
use domain::job::{ErrorClass, ItemStatus, StopReason, Verdict};
use serde::{Deserialize, Serialize};
use store::{
    entities::job_results,
    items::{ErrorGroup, ItemFilter, ItemRow},
};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    auth::Tenant,
    error::ApiError,
    extract::PageQuery,
    routes::{Paged, paged, results::TokenUsage},
    state::AppState,
};

/// One image of a job and where it is.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct JobItem {
    pub item_id: Uuid,
    pub image_id: Uuid,
    /// The image's file name; absent when the image has since been deleted.
    pub image_name: Option<String>,
    pub status: ItemStatus,
    /// The stage the item is at, or where it stopped (from 0).
    pub stage_index: i32,
    /// Deliveries the last stage it finished took (1 unless retried through the delay
    /// queues; 0 before it finished one).
    pub attempts: i32,
    /// Why it failed, when it did.
    pub error_class: Option<ErrorClass>,
    pub error: Option<String>,
    /// Why it was skipped (never analysed at `stage_index`), when it was.
    pub skip_reason: Option<StopReason>,
    pub updated_at: DateTime<Utc>,
}

impl From<ItemRow> for JobItem {
    fn from(row: ItemRow) -> Self {
        JobItem {
            item_id: row.id,
            image_id: row.image_id,
            image_name: row.image_name,
            status: row.status,
            stage_index: row.current_stage,
            attempts: row.attempts,
            error_class: row.error_class,
            error: row.last_error,
            skip_reason: row.skip_reason,
            updated_at: row.updated_at.into(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ItemsQuery {
    /// A stage (its index, from 0). With `outcome`: the items with that outcome at this stage
    /// (`passed`/`filtered_out`: the stage's filter verdict, so passed includes the items that
    /// went on; others: items in that state at this stage), i.e. one segment of the job's
    /// funnel. Alone: the items that reached this stage.
    #[param(minimum = 0)]
    pub stage: Option<i32>,
    /// Without `stage`: the items in this state.
    pub outcome: Option<ItemStatus>,
}

/// A job's items (one per image) with their image's name, in the library's order.
#[utoipa::path(
    tag = "jobs",
    params(("job_id" = Uuid, Path, description = "Job id"), ItemsQuery, PageQuery),
    responses((status = 200, description = "A page of the job's items", body = Paged<JobItem>))
)]
#[get("/jobs/{job_id}/items")]
pub async fn list_items(
    state: web::Data<AppState>,
    Tenant(tenant): Tenant,
    path: web::Path<Uuid>,
    query: web::Query<ItemsQuery>,
    page: web::Query<PageQuery>,
) -> Result<web::Json<Paged<JobItem>>, ApiError> {
    let page = page.page()?;
    if query.stage.is_some_and(|s| s < 0) {
        return Err(ApiError::BadRequest("stage must be at least 0".into()));
    }
    let filter = ItemFilter {
        stage: query.stage,
        outcome: query.outcome,
    };
    let found = store::items::list(&state.db, tenant, *path, filter, page)
        .await
        .map_err(|e| ApiError::from_store(e, "job"))?;
    Ok(web::Json(paged(found.map(JobItem::from), page)))
}

/// Where an item stands at one stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StageState {
    /// The stage answered and its filter let the image through.
    Passed,
    /// The stage answered and its filter stopped the image.
    FilteredOut,
    /// The stage failed for good (see `error`).
    Failed,
    /// Waiting for this stage.
    Pending,
    /// This stage is being processed.
    Running,
    /// The job was cancelled with the item at this stage.
    Cancelled,
    /// The job stopped (see the item's `skip_reason`) before this stage ran for the item.
    Skipped,
    /// An earlier stage stopped the image, or it has not got here yet.
    NotReached,
}

/// The model's answer at one stage.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct StageAnswer {
    #[schema(example = "command-a-vision-07-2025")]
    pub model: String,
    /// The answer as the model returned it.
    pub output_text: String,
    /// The answer parsed as JSON, for stages that ask for JSON.
    #[schema(value_type = Option<Object>)]
    pub output_json: Option<serde_json::Value>,
    pub verdict: Verdict,
    /// Why the filter stopped the image, when it did.
    pub filter_reason: Option<String>,
    #[schema(example = "COMPLETE")]
    pub finish_reason: Option<String>,
    pub usage: TokenUsage,
    /// Time the model call took.
    pub latency_ms: i32,
    pub answered_at: DateTime<Utc>,
}

/// A stored result as the model's answer; the results list shows the same answer with where it
/// belongs ([`crate::routes::results::JobResult`]).
impl From<job_results::Model> for StageAnswer {
    fn from(row: job_results::Model) -> Self {
        StageAnswer {
            model: row.model,
            output_text: row.output_text,
            output_json: row.output_json,
            verdict: Verdict::from_passed(row.passed),
            filter_reason: row.filter_reason,
            finish_reason: row.finish_reason,
            usage: TokenUsage {
                input_tokens: row.input_tokens,
                output_tokens: row.output_tokens,
                billed_input_tokens: row.billed_input_tokens,
                billed_output_tokens: row.billed_output_tokens,
                cost_usd: row.cost_usd,
            },
            latency_ms: row.latency_ms,
            answered_at: row.created_at.into(),
        }
    }
}

/// One stage of the job's pipeline (as it was at submission) for one item.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct ItemStage {
    pub index: i32,
    pub name: String,
    pub model: String,
    pub system_prompt: Option<String>,
    pub prompt: String,
    /// The JSON schema the answer had to match, for stages that ask for JSON.
    #[schema(value_type = Option<Object>)]
    pub json_schema: Option<serde_json::Value>,
    pub state: StageState,
    pub answer: Option<StageAnswer>,
    /// Why the stage failed, when it did.
    pub error_class: Option<ErrorClass>,
    pub error: Option<String>,
    /// Deliveries this stage took, for the stage where a finished item stopped.
    pub attempts: Option<i32>,
}

/// One image of a job, with every stage: what was asked and what came back.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct JobItemDetail {
    pub item: JobItem,
    pub stages: Vec<ItemStage>,
}

/// One image of a job with each stage's prompt, answer, parsed JSON, filter verdict and
/// reason, tokens and latency.
#[utoipa::path(
    tag = "jobs",
    params(("job_id" = Uuid, Path, description = "Job id"), ("item_id" = Uuid, Path, description = "Item id")),
    responses((status = 200, description = "The item", body = JobItemDetail))
)]
#[get("/jobs/{job_id}/items/{item_id}")]
pub async fn get_item(
    state: web::Data<AppState>,
    Tenant(tenant): Tenant,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<web::Json<JobItemDetail>, ApiError> {
    let (job_id, item_id) = *path;
    let detail = store::items::get(&state.db, tenant, job_id, item_id)
        .await
        .map_err(|e| ApiError::from_store(e, "item"))?;
    let item = JobItem::from(detail.item);
    let mut results = detail.results.into_iter().peekable();
    let mut stages = Vec::with_capacity(detail.snapshot.stages.len());
    for (index, spec) in detail.snapshot.stages.into_iter().enumerate() {
        let index = index as i32;
        let result = results.next_if(|r| r.stage_index == index);
        let here = result.is_none() && item.stage_index == index;
        let state = match (&result, here) {
            (Some(r), _) if r.passed => StageState::Passed,
            (Some(_), _) => StageState::FilteredOut,
            (None, true) => match item.status {
                ItemStatus::Pending => StageState::Pending,
                ItemStatus::Running => StageState::Running,
                ItemStatus::Failed => StageState::Failed,
                ItemStatus::Cancelled => StageState::Cancelled,
                ItemStatus::Skipped => StageState::Skipped,
                ItemStatus::Passed | ItemStatus::FilteredOut => StageState::NotReached,
            },
            (None, false) => StageState::NotReached,
        };
        let failed = state == StageState::Failed;
        stages.push(ItemStage {
            index,
            name: spec.name,
            model: spec.model,
            system_prompt: spec.system_prompt,
            prompt: spec.prompt,
            json_schema: spec.json_schema,
            state,
            answer: result.map(StageAnswer::from),
            error_class: failed.then_some(item.error_class).flatten(),
            error: failed.then(|| item.error.clone()).flatten(),
            attempts: (item.stage_index == index && item.status.is_terminal())
                .then_some(item.attempts),
        });
    }
    Ok(web::Json(JobItemDetail { item, stages }))
}

/// Failed items of one error class.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct JobErrorGroup {
    /// Absent for failures recorded without a class.
    pub class: Option<ErrorClass>,
    pub count: i64,
    /// The error of the class's most recent failure.
    pub sample_message: Option<String>,
    /// The item that failed with it.
    pub sample_item_id: Uuid,
}

impl From<ErrorGroup> for JobErrorGroup {
    fn from(group: ErrorGroup) -> Self {
        JobErrorGroup {
            class: group.error_class,
            count: group.count,
            sample_message: group.sample_message,
            sample_item_id: group.sample_item_id,
        }
    }
}

/// A job's failed items grouped by error class, each with a count and a sample message,
/// largest group first.
#[utoipa::path(
    tag = "jobs",
    params(("job_id" = Uuid, Path, description = "Job id")),
    responses((status = 200, description = "The job's failures by class", body = Vec<JobErrorGroup>))
)]
#[get("/jobs/{job_id}/errors")]
pub async fn job_errors(
    state: web::Data<AppState>,
    Tenant(tenant): Tenant,
    path: web::Path<Uuid>,
) -> Result<web::Json<Vec<JobErrorGroup>>, ApiError> {
    let groups = store::items::errors(&state.db, tenant, *path)
        .await
        .map_err(|e| ApiError::from_store(e, "job"))?;
    Ok(web::Json(
        groups.into_iter().map(JobErrorGroup::from).collect(),
    ))
}

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list_items)
        .service(get_item)
        .service(job_errors);
}

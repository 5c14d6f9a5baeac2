//! What the API shows of a job: its details and its summary in lists.

use chrono::{DateTime, Utc};
use domain::{
    event::JobCounts,
    job::{JobStatus, Priority, StopReason},
};
use serde::{Deserialize, Serialize};
use store::{
    TenantId,
    entities::{job_stage_stats, jobs},
    jobs::JobView,
};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{budget, error::ApiError, state::AppState};

/// Progress of one stage of a job.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct StageProgress {
    pub index: i32,
    pub name: String,
    /// Items this stage has finished with (passed + filtered out + failed).
    pub processed: i32,
    pub passed: i32,
    pub filtered_out: i32,
    pub failed: i32,
    pub input_tokens: i64,
    pub output_tokens: i64,
    /// What this stage's calls cost so far, in US dollars: the sum of its results' costs.
    pub cost_usd: f64,
}

/// Tokens used by a job and what they cost.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct Usage {
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub billed_input_tokens: i64,
    pub billed_output_tokens: i64,
    /// The job's spend so far in US dollars: the sum of its stages' costs, each call priced
    /// from its billed tokens at its model's price (`cohere.prices` in the settings).
    pub cost_usd: f64,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct Job {
    pub id: Uuid,
    pub pipeline_id: Uuid,
    pub pipeline_name: String,
    /// The pipeline version the job runs (its snapshot at submission).
    pub pipeline_version: i32,
    pub library_id: Uuid,
    /// A stage tried on a few images (`POST /api/jobs/preview`): `pipeline_id` names no
    /// pipeline, and the job history leaves it out unless asked.
    pub preview: bool,
    pub status: JobStatus,
    pub priority: Priority,
    pub counts: JobCounts,
    /// Share of items in a terminal state, 0 to 100.
    pub percent_complete: f64,
    pub stages: Vec<StageProgress>,
    /// Tokens and cost so far (`cost_usd` grows as results are written).
    pub usage: Usage,
    /// The job's budget cap in US dollars, if it has one.
    pub max_cost_usd: Option<f64>,
    /// Why the job stopped starting calls before all its items were analysed (its
    /// `counts.skipped` items never ran); absent while it has not.
    pub stop_reason: Option<StopReason>,
    /// Seconds until the job is likely done, while it is unfinished: its remaining calls plus
    /// those of its tenant's jobs ahead of it (higher priority, or older of the same; both
    /// as remaining items × stages, an upper bound), at the tenant's share of the Cohere
    /// budget (see `POST /api/jobs/estimate`). `null` once the job finished.
    pub eta_seconds: Option<u64>,
    pub error_summary: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A job as listed in the history and the live job list.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct JobSummary {
    pub id: Uuid,
    pub pipeline_id: Uuid,
    pub pipeline_name: String,
    pub library_id: Uuid,
    /// A stage tried on a few images (see `Job`).
    pub preview: bool,
    pub status: JobStatus,
    pub priority: Priority,
    pub counts: JobCounts,
    pub percent_complete: f64,
    pub stages: Vec<StageProgress>,
    pub usage: Usage,
    /// See `Job`.
    pub max_cost_usd: Option<f64>,
    /// See `Job`.
    pub stop_reason: Option<StopReason>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

fn counts(job: &jobs::Model) -> JobCounts {
    store::jobs::counts(job)
}

fn percent_complete(job: &jobs::Model) -> f64 {
    if job.total_items == 0 {
        return 0.0;
    }
    let done = job.passed_items
        + job.filtered_out_items
        + job.failed_items
        + job.cancelled_items
        + job.skipped_items;
    (f64::from(done) * 1000.0 / f64::from(job.total_items)).round() / 10.0
}

/// The part of a job's pipeline snapshot the API shows, read without copying the stages.
#[derive(Deserialize)]
struct SnapshotHeader {
    name: String,
    version: i32,
}

fn snapshot(job: &jobs::Model) -> Result<SnapshotHeader, ApiError> {
    SnapshotHeader::deserialize(&job.pipeline_snapshot).map_err(ApiError::internal)
}

fn stage_progress(s: job_stage_stats::Model) -> StageProgress {
    StageProgress {
        index: s.stage_index,
        name: s.name,
        processed: s.processed,
        passed: s.passed,
        filtered_out: s.filtered_out,
        failed: s.failed,
        input_tokens: s.input_tokens,
        output_tokens: s.output_tokens,
        cost_usd: s.cost_usd,
    }
}

fn usage(job: &jobs::Model) -> Usage {
    Usage {
        input_tokens: job.input_tokens,
        output_tokens: job.output_tokens,
        billed_input_tokens: job.billed_input_tokens,
        billed_output_tokens: job.billed_output_tokens,
        cost_usd: job.cost_usd,
    }
}

impl TryFrom<JobView> for Job {
    type Error = ApiError;

    fn try_from(view: JobView) -> Result<Self, ApiError> {
        let job = view.job;
        let snapshot = snapshot(&job)?;
        Ok(Job {
            id: job.id,
            pipeline_id: job.pipeline_id,
            pipeline_name: snapshot.name,
            pipeline_version: snapshot.version,
            library_id: job.library_id,
            preview: job.preview,
            status: job.status,
            priority: job.priority,
            counts: counts(&job),
            percent_complete: percent_complete(&job),
            stages: view.stages.into_iter().map(stage_progress).collect(),
            usage: usage(&job),
            max_cost_usd: job.max_cost_usd,
            stop_reason: job.stop_reason,
            eta_seconds: None,
            error_summary: job.error_summary,
            created_at: job.created_at.into(),
            updated_at: job.updated_at.into(),
            started_at: job.started_at.map(Into::into),
            finished_at: job.finished_at.map(Into::into),
        })
    }
}

impl Job {
    /// The job as the API shows it, with its live ETA (one query while it is unfinished).
    pub(crate) async fn live(
        state: &AppState,
        tenant: TenantId,
        view: JobView,
    ) -> Result<Job, ApiError> {
        let eta = budget::live_eta(state, tenant, &view.job).await?;
        let mut job = Job::try_from(view)?;
        job.eta_seconds = eta;
        Ok(job)
    }
}

impl TryFrom<JobView> for JobSummary {
    type Error = ApiError;

    fn try_from(view: JobView) -> Result<Self, ApiError> {
        Job::try_from(view).map(JobSummary::from)
    }
}

impl From<Job> for JobSummary {
    fn from(full: Job) -> Self {
        JobSummary {
            id: full.id,
            pipeline_id: full.pipeline_id,
            pipeline_name: full.pipeline_name,
            library_id: full.library_id,
            preview: full.preview,
            status: full.status,
            priority: full.priority,
            counts: full.counts,
            percent_complete: full.percent_complete,
            stages: full.stages,
            usage: full.usage,
            max_cost_usd: full.max_cost_usd,
            stop_reason: full.stop_reason,
            created_at: full.created_at,
            finished_at: full.finished_at,
        }
    }
}

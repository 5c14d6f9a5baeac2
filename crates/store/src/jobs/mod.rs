//! Jobs: details, history, cancellation and the events that tell of them. Submission (job,
//! items and first-stage messages, all or nothing) is in `submit.rs`.

mod submit;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::{
    event::{JOB_EVENT_VERSION, JobEvent, JobEventKind},
    job::JobStatus,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait,
    FromQueryResult, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
    TransactionTrait,
    sea_query::{LockType, NullOrdering, Order},
};
use uuid::Uuid;

use crate::{
    Page, PageRequest, StoreError, TenantId,
    entities::{job_stage_stats, jobs},
};

pub use self::submit::{Accepted, Submission, SubmitError, submit};
pub(crate) use self::submit::{check_library_images, named_images, pipeline_snapshot};

/// A job with its per-stage progress.
#[derive(Debug, Clone)]
pub struct JobView {
    pub job: jobs::Model,
    pub stages: Vec<job_stage_stats::Model>,
}

async fn stage_stats<C: ConnectionTrait>(
    db: &C,
    job_id: Uuid,
) -> Result<Vec<job_stage_stats::Model>, StoreError> {
    Ok(job_stage_stats::Entity::find()
        .filter(job_stage_stats::Column::JobId.eq(job_id))
        .order_by_asc(job_stage_stats::Column::StageIndex)
        .all(db)
        .await?)
}

pub async fn get<C: ConnectionTrait>(
    db: &C,
    tenant: TenantId,
    id: Uuid,
) -> Result<JobView, StoreError> {
    // One round trip: the job with its per-stage counters aggregated alongside. This is
    // the endpoint clients poll, so it matters.
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            r#"SELECT j.*,
                      (SELECT coalesce(json_agg(s ORDER BY s.stage_index), '[]'::json)
                       FROM job_stage_stats s WHERE s.job_id = j.id) AS stage_stats
               FROM jobs j WHERE j.id = $1 AND j.tenant_id = $2"#,
            [id.into(), tenant.0.into()],
        ))
        .await?
        .ok_or(StoreError::NotFound)?;
    let job = jobs::Model::from_query_result(&row, "")?;
    let stages: serde_json::Value = row.try_get("", "stage_stats")?;
    let stages = serde_json::from_value(stages)
        .map_err(|e| StoreError::corrupt(format!("job {id} has unreadable stage counters: {e}")))?;
    Ok(JobView { job, stages })
}

/// The job's items by state.
pub fn counts(job: &jobs::Model) -> domain::event::JobCounts {
    domain::event::JobCounts {
        total: job.total_items,
        pending: job.pending_items,
        running: job.running_items,
        passed: job.passed_items,
        filtered_out: job.filtered_out_items,
        failed: job.failed_items,
        cancelled: job.cancelled_items,
        skipped: job.skipped_items,
    }
}

/// Filters of the job history; all optional and combined with AND.
#[derive(Debug, Default, Clone)]
pub struct HistoryFilter {
    pub status: Option<JobStatus>,
    pub pipeline_id: Option<Uuid>,
    pub library_id: Option<Uuid>,
    pub created_from: Option<DateTime<Utc>>,
    /// Exclusive upper bound.
    pub created_to: Option<DateTime<Utc>>,
    /// Previews are left out unless this is set.
    pub include_previews: bool,
}

/// Orders of the job history. Every order ends with the id, so pages are stable.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum HistorySort {
    CreatedAt,
    /// Newest first.
    #[default]
    CreatedAtDesc,
    /// Unfinished jobs last.
    FinishedAt,
    /// Most recently finished first; unfinished jobs last.
    FinishedAtDesc,
    /// By status name, newest first within a status.
    Status,
}

/// The tenant's jobs in the asked order, each with its per-stage progress.
pub async fn history<C: ConnectionTrait>(
    db: &C,
    tenant: TenantId,
    filter: &HistoryFilter,
    sort: HistorySort,
    page: PageRequest,
) -> Result<Page<JobView>, StoreError> {
    let mut query = jobs::Entity::find().filter(jobs::Column::TenantId.eq(tenant.0));
    if let Some(status) = filter.status {
        query = query.filter(jobs::Column::Status.eq(status));
    }
    if let Some(id) = filter.pipeline_id {
        query = query.filter(jobs::Column::PipelineId.eq(id));
    }
    if let Some(id) = filter.library_id {
        query = query.filter(jobs::Column::LibraryId.eq(id));
    }
    if let Some(from) = filter.created_from {
        query = query.filter(jobs::Column::CreatedAt.gte(from));
    }
    if let Some(to) = filter.created_to {
        query = query.filter(jobs::Column::CreatedAt.lt(to));
    }
    if !filter.include_previews {
        query = query.filter(jobs::Column::Preview.eq(false));
    }
    let total = query.clone().count(db).await?;
    query = match sort {
        HistorySort::CreatedAt => query
            .order_by_asc(jobs::Column::CreatedAt)
            .order_by_asc(jobs::Column::Id),
        HistorySort::CreatedAtDesc => query
            .order_by_desc(jobs::Column::CreatedAt)
            .order_by_desc(jobs::Column::Id),
        HistorySort::FinishedAt => query
            .order_by_with_nulls(jobs::Column::FinishedAt, Order::Asc, NullOrdering::Last)
            .order_by_asc(jobs::Column::Id),
        HistorySort::FinishedAtDesc => query
            .order_by_with_nulls(jobs::Column::FinishedAt, Order::Desc, NullOrdering::Last)
            .order_by_desc(jobs::Column::Id),
        HistorySort::Status => query
            .order_by_asc(jobs::Column::Status)
            .order_by_desc(jobs::Column::CreatedAt)
            .order_by_desc(jobs::Column::Id),
    };
    let jobs = query.limit(page.limit).offset(page.offset).all(db).await?;
    let items = with_stages(db, jobs).await?;
    Ok(Page { items, total })
}

/// The jobs with their per-stage progress, read in one query for all of them.
async fn with_stages<C: ConnectionTrait>(
    db: &C,
    jobs: Vec<jobs::Model>,
) -> Result<Vec<JobView>, StoreError> {
    let mut stages: HashMap<Uuid, Vec<job_stage_stats::Model>> = HashMap::new();
    if !jobs.is_empty() {
        for stage in job_stage_stats::Entity::find()
            .filter(job_stage_stats::Column::JobId.is_in(jobs.iter().map(|j| j.id)))
            .order_by_asc(job_stage_stats::Column::JobId)
            .order_by_asc(job_stage_stats::Column::StageIndex)
            .all(db)
            .await?
        {
            stages.entry(stage.job_id).or_default().push(stage);
        }
    }
    Ok(jobs
        .into_iter()
        .map(|job| JobView {
            stages: stages.remove(&job.id).unwrap_or_default(),
            job,
        })
        .collect())
}

/// Cancels a queued or running job: its unfinished items (`pending`, or `running` between
/// stages) become `cancelled` and so does the job. Cancelling a cancelled job returns it
/// unchanged; a finished job is a conflict.
pub async fn cancel(
    db: &DatabaseConnection,
    tenant: TenantId,
    id: Uuid,
) -> Result<JobView, StoreError> {
    let txn = db.begin().await?;
    let job = jobs::Entity::find_by_id(id)
        .filter(jobs::Column::TenantId.eq(tenant.0))
        .lock(LockType::Update)
        .one(&txn)
        .await?
        .ok_or(StoreError::NotFound)?;
    match job.status {
        JobStatus::Cancelled => {}
        status @ (JobStatus::Completed | JobStatus::CompletedWithErrors | JobStatus::Failed) => {
            return Err(StoreError::Conflict(format!(
                "the job already finished ({status})"
            )));
        }
        JobStatus::Queued | JobStatus::Running => {
            txn.execute_raw(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                // Unfinished items are `pending` (waiting for a stage) or `running` (between
                // stages). The job's lock keeps workers from moving them meanwhile, so the
                // statuses read here are the ones the update replaces.
                r#"WITH cancelled AS (
                       UPDATE job_items i SET status = 'cancelled', updated_at = now(), finished_at = now()
                       FROM (SELECT id, status FROM job_items
                             WHERE job_id = $1 AND status IN ('pending', 'running')) AS was
                       WHERE i.id = was.id
                       RETURNING was.status
                   ),
                   counted AS (
                       SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
                              count(*) FILTER (WHERE status = 'running') AS running
                       FROM cancelled
                   )
                   -- Items not written yet (counted as pending) are cancelled with the rest,
                   -- and none will be written any more.
                   UPDATE jobs SET status = 'cancelled',
                       pending_items = pending_items - counted.pending - (total_items - materialized_items),
                       running_items = running_items - counted.running,
                       cancelled_items = cancelled_items + counted.pending + counted.running
                           + (total_items - materialized_items),
                       materialized_items = total_items,
                       finished_at = now(), updated_at = now(), event_seq = event_seq + 1
                   FROM counted
                   WHERE id = $1"#,
                [id.into()],
            ))
            .await?;
        }
    }
    let view = get(&txn, tenant, id).await?;
    txn.commit().await?;
    Ok(view)
}

/// The event that tells listeners about `job` as stored: its status, counters and `seq`.
pub fn event(job: &jobs::Model, kind: JobEventKind) -> JobEvent {
    JobEvent {
        v: JOB_EVENT_VERSION,
        job_id: job.id,
        tenant_id: job.tenant_id,
        seq: job.event_seq,
        kind,
        status: job.status,
        counts: counts(job),
        stop_reason: job.stop_reason,
    }
}

/// What [`changed_since`] found: each job's id and `seq`, with the database's clock when
/// they were read.
pub struct Changed {
    pub now: DateTime<Utc>,
    pub jobs: Vec<(Uuid, i64)>,
}

/// The tenant's jobs whose `updated_at` is at or after `since` (at most `limit`, oldest
/// change first), read with the database's current time, so a caller moves its watermark on
/// by the database's clock rather than its own. Only ids and sequence numbers: a caller loads
/// the jobs it has not seen at that `seq` with [`by_ids`].
pub async fn changed_since<C: ConnectionTrait>(
    db: &C,
    tenant: TenantId,
    since: DateTime<Utc>,
    limit: u64,
) -> Result<Changed, StoreError> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            r#"SELECT now() AS now, j.id, j.event_seq
               FROM (SELECT 1) AS one
               LEFT JOIN LATERAL (
                   SELECT id, event_seq, updated_at FROM jobs
                   WHERE tenant_id = $1 AND updated_at >= $2
                   ORDER BY updated_at, id LIMIT $3
               ) AS j ON true
               ORDER BY j.updated_at, j.id"#,
            [tenant.0.into(), since.into(), (limit as i64).into()],
        ))
        .await?;
    let mut changed = Changed {
        now: Utc::now(),
        jobs: Vec::with_capacity(rows.len()),
    };
    for row in &rows {
        changed.now = row.try_get("", "now")?;
        if let Some(id) = row.try_get::<Option<Uuid>>("", "id")? {
            changed.jobs.push((id, row.try_get("", "event_seq")?));
        }
    }
    Ok(changed)
}

/// The tenant's jobs among `ids` with their per-stage progress (unknown ids and other tenants' jobs are left out).
pub async fn by_ids<C: ConnectionTrait>(
    db: &C,
    tenant: TenantId,
    ids: &[Uuid],
) -> Result<Vec<JobView>, StoreError> {
    let jobs = jobs::Entity::find()
        .filter(jobs::Column::TenantId.eq(tenant.0))
        .filter(jobs::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?;
    with_stages(db, jobs).await
}

/// How long the oldest item waiting for a worker (`pending` and released into the stage queue,
/// of a job not finished) has waited, in seconds, counted from when it was released or last
/// became pending (re-opened by a retry or re-drive), whichever is later; zero when none waits.
/// Items the scheduler has not released yet wait for their tenant's share by design and are
/// not counted. One scan of the `job_items_pending_since` partial index.
pub async fn oldest_pending_age_seconds<C: ConnectionTrait>(db: &C) -> Result<f64, StoreError> {
    let row = db
        .query_one_raw(Statement::from_string(
            DatabaseBackend::Postgres,
            r#"SELECT extract(epoch FROM now() - greatest(i.updated_at, i.released_at))::float8 AS age
               FROM job_items i JOIN jobs j ON j.id = i.job_id
               WHERE i.status = 'pending' AND i.released_at IS NOT NULL
                 AND j.status IN ('queued', 'running')
               ORDER BY greatest(i.updated_at, i.released_at) LIMIT 1"#,
        ))
        .await?;
    Ok(match row {
        Some(row) => row.try_get::<f64>("", "age")?.max(0.0),
        None => 0.0,
    })
}

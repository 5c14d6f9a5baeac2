//! Jobs: submission (job, items and first-stage messages, all or nothing), details,
//! history and cancellation.

use std::{
    collections::{HashMap, HashSet},
    future::Future,
};

use chrono::{DateTime, Utc};
use domain::{
    event::{JOB_EVENT_VERSION, JobEvent, JobEventKind},
    job::{JobStatus, Priority},
    message::StageMessage,
    pipeline::{PipelineSnapshot, StageSpec},
    selection::{ImageSelection, MAX_IMAGES_PER_JOB},
};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait,
    FromQueryResult, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
    TransactionTrait,
    sea_query::{LockType, NullOrdering, Order},
};
use uuid::Uuid;

use crate::{
    Page, PageRequest, StoreError, TenantId,
    entities::{job_stage_stats, jobs},
    libraries, pipelines,
};

/// A job with its per-stage progress.
#[derive(Debug, Clone)]
pub struct JobView {
    pub job: jobs::Model,
    pub stages: Vec<job_stage_stats::Model>,
}

/// What a client asked for, already parsed.
pub struct Submission<'a> {
    pub pipeline_id: Uuid,
    pub library_id: Uuid,
    pub images: &'a ImageSelection,
    pub priority: Priority,
    pub idempotency_key: Option<&'a str>,
    /// Fingerprint of the request body, so a reused idempotency key with a different body is caught.
    pub request_hash: &'a str,
    /// A preview: this one stage instead of a stored pipeline (`pipeline_id` then names no
    /// pipeline); the job is marked as a preview.
    pub preview: Option<&'a StageSpec>,
}

/// The job and whether this call created it (false: an idempotent replay).
pub struct Accepted {
    pub job: JobView,
    pub created: bool,
}

/// Why a submission was not accepted. The first five are about the request: what it names
/// does not exist, or does not fit a job.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError<E> {
    #[error("no pipeline {0} of this tenant")]
    UnknownPipeline(Uuid),
    #[error("no library {0} of this tenant")]
    UnknownLibrary(Uuid),
    /// The named images that are not in the library, in the order named.
    #[error("{} named images are not in the library", .0.len())]
    ImagesNotInLibrary(Vec<Uuid>),
    /// The whole library was asked for and it holds no image.
    #[error("the library has no images")]
    NoImages,
    /// The whole library was asked for and it holds more than [`MAX_IMAGES_PER_JOB`] images.
    #[error("the library has more than {MAX_IMAGES_PER_JOB} images")]
    TooManyImages,
    #[error("the Idempotency-Key was already used for a different request")]
    IdempotencyKeyReused,
    #[error("could not publish the job's messages")]
    Publish(#[source] E),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl<E> From<sea_orm::DbErr> for SubmitError<E> {
    fn from(err: sea_orm::DbErr) -> Self {
        SubmitError::Store(err.into())
    }
}

/// Accepts a job: in one transaction it snapshots the pipeline, writes the job, one item per
/// image and the per-stage counters, then calls `publish` with one first-stage message per
/// item and commits only once `publish` has succeeded (the broker confirmed every message).
///
/// So a job is never half-accepted: if publishing fails, nothing is stored and the error is
/// returned. The remaining window, a commit failing after the messages were confirmed,
/// leaves messages that name no job; workers drop those.
pub async fn submit<F, Fut, E>(
    db: &DatabaseConnection,
    tenant: TenantId,
    submission: Submission<'_>,
    publish: F,
) -> Result<Accepted, SubmitError<E>>
where
    F: FnOnce(Vec<StageMessage>) -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    if let Some(key) = submission.idempotency_key
        && let Some(existing) = replay(db, tenant, key, submission.request_hash).await?
    {
        return Ok(existing);
    }

    let started = std::time::Instant::now();
    let txn = db.begin().await?;
    let snapshot = match submission.preview {
        Some(stage) => PipelineSnapshot {
            pipeline_id: submission.pipeline_id,
            name: format!("Preview: {}", stage.name),
            version: 0,
            stages: vec![stage.clone()],
        },
        None => {
            let pipeline = match pipelines::get(&txn, tenant, submission.pipeline_id).await {
                Err(StoreError::NotFound) => {
                    return Err(SubmitError::UnknownPipeline(submission.pipeline_id));
                }
                other => other?,
            };
            PipelineSnapshot {
                pipeline_id: pipeline.pipeline.id,
                name: pipeline.pipeline.name.clone(),
                version: pipeline.pipeline.version,
                stages: pipeline.spec.stages.clone(),
            }
        }
    };
    match libraries::lock(&txn, tenant, submission.library_id, LockType::Share).await {
        Err(StoreError::NotFound) => {
            return Err(SubmitError::UnknownLibrary(submission.library_id));
        }
        other => other?,
    };

    // The images to analyse, in the library's order.
    let image_rows = txn
        .query_all_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            r#"SELECT id FROM images
               WHERE tenant_id = $1 AND library_id = $2 AND ($3::uuid[] IS NULL OR id = ANY($3))
               ORDER BY created_at, id"#,
            [
                tenant.0.into(),
                submission.library_id.into(),
                submission.images.ids().map(<[Uuid]>::to_vec).into(),
            ],
        ))
        .await?;
    let image_ids = image_rows
        .iter()
        .map(|row| row.try_get::<Uuid>("", "id"))
        .collect::<Result<Vec<_>, _>>()?;
    check_selection(submission.images, &image_ids)?;

    let job_id = Uuid::now_v7();
    let now = Utc::now();
    let total = image_ids.len() as i32;
    let inserted = jobs::Entity::insert(jobs::ActiveModel {
        id: Set(job_id),
        tenant_id: Set(tenant.0),
        pipeline_id: Set(submission.pipeline_id),
        library_id: Set(submission.library_id),
        pipeline_snapshot: Set(serde_json::to_value(&snapshot).map_err(|e| {
            StoreError::Database(sea_orm::DbErr::Custom(format!("encoding a snapshot: {e}")))
        })?),
        status: Set(JobStatus::Queued),
        priority: Set(submission.priority),
        idempotency_key: Set(submission.idempotency_key.map(str::to_string)),
        request_hash: Set(Some(submission.request_hash.to_string())),
        total_items: Set(total),
        pending_items: Set(total),
        running_items: Set(0),
        passed_items: Set(0),
        filtered_out_items: Set(0),
        failed_items: Set(0),
        cancelled_items: Set(0),
        input_tokens: Set(0),
        output_tokens: Set(0),
        billed_input_tokens: Set(0),
        billed_output_tokens: Set(0),
        cost_usd: Set(0.0),
        error_summary: Set(None),
        created_at: Set(now.into()),
        updated_at: Set(now.into()),
        started_at: Set(None),
        finished_at: Set(None),
        event_seq: Set(0),
        preview: Set(submission.preview.is_some()),
    })
    .exec_with_returning(&txn)
    .await;
    let job = match inserted {
        Ok(job) => job,
        Err(err) => {
            // A concurrent request with the same key won the race: answer with its job.
            if let (Some(key), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) =
                (submission.idempotency_key, err.sql_err())
            {
                drop(txn);
                if let Some(existing) = replay(db, tenant, key, submission.request_hash).await? {
                    return Ok(existing);
                }
            }
            return Err(err.into());
        }
    };

    let stages: Vec<job_stage_stats::Model> = snapshot
        .stages
        .iter()
        .enumerate()
        .map(|(index, stage)| job_stage_stats::Model {
            job_id,
            stage_index: index as i32,
            name: stage.name.clone(),
            processed: 0,
            passed: 0,
            filtered_out: 0,
            failed: 0,
            input_tokens: 0,
            output_tokens: 0,
        })
        .collect();
    job_stage_stats::Entity::insert_many(
        stages
            .iter()
            .cloned()
            .map(job_stage_stats::ActiveModel::from),
    )
    .exec(&txn)
    .await?;

    // Item ids are made here, so the items can be written while the broker takes the
    // messages: both must succeed before the commit, and either failing rolls back.
    let item_ids: Vec<Uuid> = image_ids.iter().map(|_| Uuid::now_v7()).collect();
    let messages = item_ids
        .iter()
        .map(|item_id| StageMessage {
            job_id,
            item_id: *item_id,
            stage_index: 0,
            attempt: 0,
        })
        .collect();
    let insert_items = txn.execute_raw(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"INSERT INTO job_items (id, job_id, image_id, status, current_stage, attempts, created_at, updated_at)
           SELECT item, $3, image, 'pending', 0, 0, $4, $4
           FROM UNNEST($1::uuid[], $2::uuid[]) AS t(item, image)"#,
        [
            item_ids.clone().into(),
            image_ids.into(),
            job_id.into(),
            now.into(),
        ],
    ));
    let stored_at = started.elapsed();
    let (inserted, published) = tokio::join!(insert_items, publish(messages));
    inserted?;
    // Dropping `txn` on this error rolls everything back.
    published.map_err(SubmitError::Publish)?;
    let published_at = started.elapsed();
    txn.commit().await?;
    tracing::debug!(
        %job_id,
        items = item_ids.len(),
        stored_ms = stored_at.as_millis() as u64,
        items_and_messages_ms = published_at.as_millis() as u64,
        committed_ms = started.elapsed().as_millis() as u64,
        "job submission timings"
    );
    Ok(Accepted {
        job: JobView { job, stages },
        created: true,
    })
}

/// Checks the images found against the request: every named image is in the library, and a
/// whole library is neither empty nor too large.
fn check_selection<E>(requested: &ImageSelection, found: &[Uuid]) -> Result<(), SubmitError<E>> {
    match requested.ids() {
        Some(ids) if found.len() != ids.len() => {
            let found: HashSet<&Uuid> = found.iter().collect();
            let missing = ids
                .iter()
                .filter(|id| !found.contains(id))
                .copied()
                .collect();
            Err(SubmitError::ImagesNotInLibrary(missing))
        }
        Some(_) => Ok(()),
        None if found.is_empty() => Err(SubmitError::NoImages),
        None if found.len() > MAX_IMAGES_PER_JOB => Err(SubmitError::TooManyImages),
        None => Ok(()),
    }
}

/// The job an idempotency key already produced, if any.
async fn replay<E>(
    db: &DatabaseConnection,
    tenant: TenantId,
    key: &str,
    request_hash: &str,
) -> Result<Option<Accepted>, SubmitError<E>> {
    let Some(job) = jobs::Entity::find()
        .filter(jobs::Column::TenantId.eq(tenant.0))
        .filter(jobs::Column::IdempotencyKey.eq(key))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    if job.request_hash.as_deref() != Some(request_hash) {
        return Err(SubmitError::IdempotencyKeyReused);
    }
    let stages = stage_stats(db, job.id).await?;
    Ok(Some(Accepted {
        job: JobView { job, stages },
        created: false,
    }))
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
                   UPDATE jobs SET status = 'cancelled',
                       pending_items = pending_items - counted.pending,
                       running_items = running_items - counted.running,
                       cancelled_items = cancelled_items + counted.pending + counted.running,
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

/// How long the oldest item waiting for its stage (`pending`, of a job not finished) has
/// waited, in seconds, counted from when it became pending (submitted, or re-opened by a
/// retry or re-drive); zero when none waits. One scan of the `job_items_pending_since`
/// partial index.
pub async fn oldest_pending_age_seconds<C: ConnectionTrait>(db: &C) -> Result<f64, StoreError> {
    let row = db
        .query_one_raw(Statement::from_string(
            DatabaseBackend::Postgres,
            r#"SELECT extract(epoch FROM now() - i.updated_at)::float8 AS age
               FROM job_items i JOIN jobs j ON j.id = i.job_id
               WHERE i.status = 'pending' AND j.status IN ('queued', 'running')
               ORDER BY i.updated_at LIMIT 1"#,
        ))
        .await?;
    Ok(match row {
        Some(row) => row.try_get::<f64>("", "age")?.max(0.0),
        None => 0.0,
    })
}

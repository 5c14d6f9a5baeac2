//! Job submission: the job and what defines its items, in one transaction. Nothing is
//! published here: the scheduler writes the items in chunks and releases them into the stage
//! queue by fair share (docs/design.md, "Admission").

use std::collections::HashSet;

use chrono::Utc;

use domain::{
    job::{JobStatus, Priority},
    pipeline::{PipelineSnapshot, StageSpec},
    selection::{ImageSelection, MAX_LIBRARY_IMAGES_PER_JOB},
};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection,
    EntityTrait, QueryFilter, Statement, TransactionTrait, sea_query::LockType,
};
use uuid::Uuid;

use super::{JobView, stage_stats};
use crate::{
    StoreError, TenantId,
    entities::{job_stage_stats, jobs},
    libraries, pipelines,
};

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
    /// Spend at which the job stops starting calls.
    pub max_cost_usd: Option<f64>,
    /// The submitting request's trace context, which the job's releases continue.
    pub traceparent: Option<&'a str>,
}

/// The job and whether this call created it (false: an idempotent replay).
pub struct Accepted {
    pub job: JobView,
    pub created: bool,
}

/// Why a submission was not accepted. The first five are about the request: what it names
/// does not exist, or does not fit a job.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
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
    /// The whole library was asked for and it holds more than [`MAX_LIBRARY_IMAGES_PER_JOB`]
    /// images.
    #[error("the library has more than {MAX_LIBRARY_IMAGES_PER_JOB} images")]
    TooManyImages,
    #[error("the Idempotency-Key was already used for a different request")]
    IdempotencyKeyReused,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sea_orm::DbErr> for SubmitError {
    fn from(err: sea_orm::DbErr) -> Self {
        SubmitError::Store(err.into())
    }
}

/// Accepts a job: in one transaction it snapshots the pipeline and writes the job with what
/// defines its items (the named images in the library's order, or the library as of now) and
/// its per-stage counters. The work is constant in the job's size but for one count of the
/// library's images: the items are written later, in chunks, by the scheduler.
///
/// The library is locked against concurrent image writes (which lock it in `KEY SHARE` mode
/// before they stamp `created_at`), so the job sees exactly the images counted here.
pub async fn submit(
    db: &DatabaseConnection,
    tenant: TenantId,
    submission: Submission<'_>,
) -> Result<Accepted, SubmitError> {
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
        None => pipeline_snapshot(&txn, tenant, submission.pipeline_id).await?,
    };
    let library = match libraries::lock(&txn, tenant, submission.library_id, LockType::Update).await
    {
        Err(StoreError::NotFound) => {
            return Err(SubmitError::UnknownLibrary(submission.library_id));
        }
        other => other?,
    };

    let (total, image_ids, images_as_of) = match submission.images.ids() {
        Some(named) => {
            let found = named_images(&txn, tenant, submission.library_id, named).await?;
            (found.len(), Some(found), None)
        }
        None => {
            // Kept with the library by triggers on `images`: read, not counted, so a library
            // of any size costs the same. The lock above holds them still.
            let count = library.image_count;
            let newest = library.newest_image_at;
            check_library_images(count as u64)?;
            (count as usize, None, newest)
        }
    };

    let job_id = Uuid::now_v7();
    let now = Utc::now();
    let total = total as i32;
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
        skipped_items: Set(0),
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
        image_ids: Set(image_ids),
        images_as_of: Set(images_as_of),
        materialized_items: Set(0),
        materialized_through_created: Set(None),
        materialized_through_id: Set(None),
        max_cost_usd: Set(submission.max_cost_usd),
        stop_reason: Set(None),
        traceparent: Set(submission.traceparent.map(str::to_string)),
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
            cost_usd: 0.0,
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
    txn.commit().await?;
    tracing::debug!(
        %job_id,
        items = total,
        committed_ms = started.elapsed().as_millis() as u64,
        "job submission timings"
    );
    Ok(Accepted {
        job: JobView { job, stages },
        created: true,
    })
}

/// The snapshot of the tenant's pipeline `pipeline_id` a job runs.
pub(crate) async fn pipeline_snapshot<C: ConnectionTrait>(
    db: &C,
    tenant: TenantId,
    pipeline_id: Uuid,
) -> Result<PipelineSnapshot, SubmitError> {
    let pipeline = match pipelines::get(db, tenant, pipeline_id).await {
        Err(StoreError::NotFound) => return Err(SubmitError::UnknownPipeline(pipeline_id)),
        other => other?,
    };
    Ok(PipelineSnapshot {
        pipeline_id: pipeline.pipeline.id,
        name: pipeline.pipeline.name,
        version: pipeline.pipeline.version,
        stages: pipeline.spec.stages,
    })
}

/// The named images, in the library's order; every one must be in the library.
pub(crate) async fn named_images<C: ConnectionTrait>(
    db: &C,
    tenant: TenantId,
    library_id: Uuid,
    named: &[Uuid],
) -> Result<Vec<Uuid>, SubmitError> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            r#"SELECT id FROM images
               WHERE tenant_id = $1 AND library_id = $2 AND id = ANY($3)
               ORDER BY created_at, id"#,
            [tenant.0.into(), library_id.into(), named.to_vec().into()],
        ))
        .await?;
    let found = rows
        .iter()
        .map(|row| row.try_get::<Uuid>("", "id"))
        .collect::<Result<Vec<_>, _>>()?;
    check_named(named, &found)?;
    Ok(found)
}

/// Checks that a whole library of `count` images fits a job.
pub(crate) fn check_library_images(count: u64) -> Result<(), SubmitError> {
    match count {
        0 => Err(SubmitError::NoImages),
        count if count > MAX_LIBRARY_IMAGES_PER_JOB as u64 => Err(SubmitError::TooManyImages),
        _ => Ok(()),
    }
}

/// Checks that every named image is in the library.
fn check_named(named: &[Uuid], found: &[Uuid]) -> Result<(), SubmitError> {
    if found.len() == named.len() {
        return Ok(());
    }
    let found: HashSet<&Uuid> = found.iter().collect();
    let missing = named
        .iter()
        .filter(|id| !found.contains(id))
        .copied()
        .collect();
    Err(SubmitError::ImagesNotInLibrary(missing))
}

/// The job an idempotency key already produced, if any.
async fn replay(
    db: &DatabaseConnection,
    tenant: TenantId,
    key: &str,
    request_hash: &str,
) -> Result<Option<Accepted>, SubmitError> {
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

//! Job submission: the job, its items and first-stage messages, all or nothing.

use std::{collections::HashSet, future::Future};

use chrono::Utc;

use domain::{
    job::{JobStatus, Priority},
    message::StageMessage,
    pipeline::{PipelineSnapshot, StageSpec},
    selection::{ImageSelection, MAX_IMAGES_PER_JOB},
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

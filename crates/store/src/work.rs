//! What a worker reads and writes for one stage message.
//!
//! Every change an outcome makes (the result row, the item's state, the job's counters and
//! per-stage progress, the job's final status) is written in one transaction, keyed so that a
//! redelivered message finds its work done and changes nothing twice.

use chrono::Utc;
use domain::{
    event::{JOB_EVENT_VERSION, JobCounts, JobEvent, JobEventKind},
    job::{ErrorClass, ItemStatus, JobStatus, Priority},
    message::StageMessage,
    pipeline::PipelineSnapshot,
};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection,
    EntityTrait, QueryFilter, QuerySelect, Statement, TransactionTrait, sea_query::LockType,
};
use uuid::Uuid;

use crate::{
    StoreError,
    entities::{images, job_items, job_results, jobs},
};

/// Everything needed to process one stage message.
#[derive(Debug, Clone)]
pub struct Work {
    pub job_id: Uuid,
    pub tenant_id: Uuid,
    pub job_status: JobStatus,
    pub priority: Priority,
    pub snapshot: PipelineSnapshot,
    pub item: job_items::Model,
    /// `None` when the image was deleted.
    pub image: Option<images::Model>,
    /// The stored result of this stage, when an earlier delivery got that far.
    pub existing_result: Option<job_results::Model>,
}

fn corrupt(what: String) -> StoreError {
    StoreError::Database(sea_orm::DbErr::Custom(what))
}

/// Loads the job, item, image and any stored result for a message; `None` when the job or
/// the item does not exist (a message of a submission that was never committed).
pub async fn load(
    db: &DatabaseConnection,
    message: &StageMessage,
) -> Result<Option<Work>, StoreError> {
    let Some(job) = jobs::Entity::find_by_id(message.job_id).one(db).await? else {
        return Ok(None);
    };
    let Some(item) = job_items::Entity::find_by_id(message.item_id)
        .filter(job_items::Column::JobId.eq(message.job_id))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let image = images::Entity::find_by_id(item.image_id).one(db).await?;
    let existing_result = job_results::Entity::find()
        .filter(job_results::Column::ItemId.eq(item.id))
        .filter(job_results::Column::StageIndex.eq(message.stage_index as i32))
        .one(db)
        .await?;
    let job_status = job
        .status
        .parse()
        .map_err(|_| corrupt(format!("job {} has status {}", job.id, job.status)))?;
    let priority = job
        .priority
        .parse()
        .map_err(|_| corrupt(format!("job {} has priority {}", job.id, job.priority)))?;
    let snapshot = serde_json::from_value(job.pipeline_snapshot).map_err(|e| {
        corrupt(format!(
            "job {} has an unreadable pipeline snapshot: {e}",
            job.id
        ))
    })?;
    Ok(Some(Work {
        job_id: job.id,
        tenant_id: job.tenant_id,
        job_status,
        priority,
        snapshot,
        item,
        image,
        existing_result,
    }))
}

/// Moves a pending item to running (and a queued job to running). Idempotent.
pub async fn start(db: &DatabaseConnection, job_id: Uuid, item_id: Uuid) -> Result<(), StoreError> {
    db.execute_raw(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"WITH started AS (
               UPDATE job_items SET status = 'running', updated_at = now()
               WHERE id = $1 AND status = 'pending'
               RETURNING 1
           )
           UPDATE jobs SET
               pending_items = pending_items - (SELECT count(*) FROM started),
               running_items = running_items + (SELECT count(*) FROM started),
               status = CASE WHEN status = 'queued' THEN 'running' ELSE status END,
               started_at = coalesce(started_at, now()),
               updated_at = now()
           WHERE id = $2 AND status IN ('queued', 'running') AND EXISTS (SELECT 1 FROM started)"#,
        [item_id.into(), job_id.into()],
    ))
    .await?;
    Ok(())
}

/// A stage's answer, ready to be stored.
#[derive(Debug, Clone)]
pub struct StageResult {
    pub model: String,
    pub output_text: String,
    pub output_json: Option<serde_json::Value>,
    pub passed: bool,
    pub filter_reason: Option<String>,
    pub finish_reason: Option<String>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub billed_input_tokens: i64,
    pub billed_output_tokens: i64,
    pub latency_ms: i32,
}

/// What the worker does after an outcome is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Advance {
    /// Publish this message (the item's next stage), then acknowledge.
    Next(StageMessage),
    /// The item reached a terminal state; `job_finished` is set when that ended the job.
    Finished {
        item: ItemStatus,
        job_finished: Option<JobStatus>,
    },
    /// Nothing left to do (the item was already terminal).
    Nothing,
}

/// An outcome's follow-up and the job event to publish once it is committed.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub advance: Advance,
    pub event: Option<JobEvent>,
}

impl Outcome {
    fn quiet(advance: Advance) -> Self {
        Self {
            advance,
            event: None,
        }
    }
}

/// The counters an item's outcome changes on its job and stage.
#[derive(Default)]
struct Deltas {
    /// Items leaving `pending` / `running`.
    left_pending: i32,
    left_running: i32,
    cancelled: i32,
    passed: i32,
    filtered_out: i32,
    failed: i32,
    input_tokens: i64,
    output_tokens: i64,
    billed_input_tokens: i64,
    billed_output_tokens: i64,
}

/// Stores a stage result and moves the item on: to its next stage when it passed the filter
/// and one remains, else to `passed` / `filtered_out`. A redelivery finds the item already
/// moved and returns what is left to do without counting anything again.
pub async fn record(
    db: &DatabaseConnection,
    work: &Work,
    stage_index: u32,
    result: &StageResult,
) -> Result<Outcome, StoreError> {
    let txn = db.begin().await?;
    let Some(item) = lock_item(&txn, work.item.id).await? else {
        return Ok(Outcome::quiet(Advance::Nothing));
    };
    if let Some(done) = already_advanced(&item, work.job_id, stage_index)? {
        return Ok(Outcome::quiet(done));
    }
    let stage = stage_index as i32;
    job_results::Entity::insert(job_results::ActiveModel {
        id: Set(Uuid::now_v7()),
        job_id: Set(work.job_id),
        item_id: Set(item.id),
        image_id: Set(item.image_id),
        stage_index: Set(stage),
        model: Set(result.model.clone()),
        output_text: Set(result.output_text.clone()),
        output_json: Set(result.output_json.clone()),
        passed: Set(result.passed),
        filter_reason: Set(result.filter_reason.clone()),
        finish_reason: Set(result.finish_reason.clone()),
        input_tokens: Set(result.input_tokens),
        output_tokens: Set(result.output_tokens),
        billed_input_tokens: Set(result.billed_input_tokens),
        billed_output_tokens: Set(result.billed_output_tokens),
        latency_ms: Set(result.latency_ms),
        created_at: Set(Utc::now().into()),
    })
    .on_conflict_do_nothing()
    .exec_without_returning(&txn)
    .await?;

    let mut deltas = Deltas {
        input_tokens: result.input_tokens,
        output_tokens: result.output_tokens,
        billed_input_tokens: result.billed_input_tokens,
        billed_output_tokens: result.billed_output_tokens,
        ..Deltas::default()
    };
    let last_stage = stage_index as usize + 1 >= work.snapshot.stages.len();
    let advance = if result.passed && !last_stage {
        set_item(&txn, item.id, ItemStatus::Running, stage + 1, None, None).await?;
        Advance::Next(StageMessage {
            job_id: work.job_id,
            item_id: item.id,
            stage_index: stage_index + 1,
            attempt: 0,
        })
    } else {
        let status = if result.passed {
            ItemStatus::Passed
        } else {
            ItemStatus::FilteredOut
        };
        set_item(&txn, item.id, status, stage, None, None).await?;
        match status {
            ItemStatus::Passed => deltas.passed = 1,
            _ => deltas.filtered_out = 1,
        }
        Advance::Finished {
            item: status,
            job_finished: None,
        }
    };
    if matches!(advance, Advance::Finished { .. }) {
        deltas.left_running = 1;
    }
    let stage_passed = i32::from(result.passed);
    bump_stage(
        &txn,
        work.job_id,
        stage,
        stage_passed,
        1 - stage_passed,
        0,
        &deltas,
    )
    .await?;
    let job = bump_job(&txn, work.job_id, &deltas).await?;
    txn.commit().await?;
    let kind = match advance {
        Advance::Finished {
            item: item_status, ..
        } => JobEventKind::ItemFinished {
            item_id: item.id,
            stage_index,
            item_status,
        },
        _ => JobEventKind::StageDone {
            item_id: item.id,
            stage_index,
        },
    };
    let event = job.event(work.job_id, kind);
    let advance = match advance {
        Advance::Finished { item, .. } => Advance::Finished {
            item,
            job_finished: job.ended.then_some(job.status),
        },
        other => other,
    };
    Ok(Outcome {
        advance,
        event: Some(event),
    })
}

/// For a message whose stage result is already stored: what remains to be done.
pub fn resume(work: &Work, stage_index: u32) -> Result<Advance, StoreError> {
    match already_advanced(&work.item, work.job_id, stage_index)? {
        Some(advance) => Ok(advance),
        // A result without an advanced item cannot happen (both are written together); redo
        // nothing and let the caller drop the message.
        None => {
            tracing::warn!(item_id = %work.item.id, stage_index, "stage result stored but item not advanced");
            Ok(Advance::Nothing)
        }
    }
}

/// Fails the item at its stage with a reason (a permanent error).
pub async fn fail(
    db: &DatabaseConnection,
    work: &Work,
    stage_index: u32,
    class: ErrorClass,
    reason: &str,
) -> Result<Outcome, StoreError> {
    let txn = db.begin().await?;
    let Some(item) = lock_item(&txn, work.item.id).await? else {
        return Ok(Outcome::quiet(Advance::Nothing));
    };
    if let Some(done) = already_advanced(&item, work.job_id, stage_index)? {
        return Ok(Outcome::quiet(done));
    }
    let stage = stage_index as i32;
    set_item(
        &txn,
        item.id,
        ItemStatus::Failed,
        stage,
        Some(class),
        Some(reason),
    )
    .await?;
    let was_pending = parse_item_status(&item)? == ItemStatus::Pending;
    let deltas = Deltas {
        failed: 1,
        left_pending: i32::from(was_pending),
        left_running: i32::from(!was_pending),
        ..Deltas::default()
    };
    bump_stage(&txn, work.job_id, stage, 0, 0, 1, &deltas).await?;
    let job = bump_job(&txn, work.job_id, &deltas).await?;
    txn.commit().await?;
    let event = job.event(
        work.job_id,
        JobEventKind::ItemFinished {
            item_id: item.id,
            stage_index,
            item_status: ItemStatus::Failed,
        },
    );
    Ok(Outcome {
        advance: Advance::Finished {
            item: ItemStatus::Failed,
            job_finished: job.ended.then_some(job.status),
        },
        event: Some(event),
    })
}

/// Marks a running or pending item of a cancelled job `cancelled`.
pub async fn cancel_item(db: &DatabaseConnection, work: &Work) -> Result<Outcome, StoreError> {
    let txn = db.begin().await?;
    let Some(item) = lock_item(&txn, work.item.id).await? else {
        return Ok(Outcome::quiet(Advance::Nothing));
    };
    let status: ItemStatus = parse_item_status(&item)?;
    if status.is_terminal() {
        return Ok(Outcome::quiet(Advance::Nothing));
    }
    set_item(
        &txn,
        item.id,
        ItemStatus::Cancelled,
        item.current_stage,
        None,
        None,
    )
    .await?;
    let was_pending = status == ItemStatus::Pending;
    let deltas = Deltas {
        cancelled: 1,
        left_pending: i32::from(was_pending),
        left_running: i32::from(!was_pending),
        ..Deltas::default()
    };
    let job = bump_job(&txn, work.job_id, &deltas).await?;
    txn.commit().await?;
    let event = job.event(
        work.job_id,
        JobEventKind::ItemFinished {
            item_id: item.id,
            stage_index: item.current_stage.max(0) as u32,
            item_status: ItemStatus::Cancelled,
        },
    );
    Ok(Outcome {
        advance: Advance::Finished {
            item: ItemStatus::Cancelled,
            job_finished: None,
        },
        event: Some(event),
    })
}

async fn lock_item<C: ConnectionTrait>(
    txn: &C,
    item_id: Uuid,
) -> Result<Option<job_items::Model>, StoreError> {
    Ok(job_items::Entity::find_by_id(item_id)
        .lock(LockType::Update)
        .one(txn)
        .await?)
}

fn parse_item_status(item: &job_items::Model) -> Result<ItemStatus, StoreError> {
    item.status
        .parse()
        .map_err(|_| corrupt(format!("item {} has status {}", item.id, item.status)))
}

/// When an earlier delivery already recorded this stage: what remains to be done.
fn already_advanced(
    item: &job_items::Model,
    job_id: Uuid,
    stage_index: u32,
) -> Result<Option<Advance>, StoreError> {
    let status = parse_item_status(item)?;
    if status.is_terminal() {
        return Ok(Some(Advance::Nothing));
    }
    if item.current_stage > stage_index as i32 {
        // Recorded, but the next stage's message may not have been published: publish it again
        // (processing it twice is harmless, its result row makes the second a no-op).
        return Ok(Some(Advance::Next(StageMessage {
            job_id,
            item_id: item.id,
            stage_index: item.current_stage as u32,
            attempt: 0,
        })));
    }
    Ok(None)
}

async fn set_item<C: ConnectionTrait>(
    txn: &C,
    item_id: Uuid,
    status: ItemStatus,
    stage: i32,
    class: Option<ErrorClass>,
    reason: Option<&str>,
) -> Result<(), StoreError> {
    let finished = status.is_terminal();
    txn.execute_raw(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"UPDATE job_items SET status = $2, current_stage = $3, error_class = coalesce($4, error_class),
               last_error = coalesce($5, last_error), updated_at = now(),
               finished_at = CASE WHEN $6 THEN now() ELSE finished_at END
           WHERE id = $1"#,
        [
            item_id.into(),
            status.as_str().into(),
            stage.into(),
            class.map(|c| c.as_str().to_string()).into(),
            reason.map(str::to_string).into(),
            finished.into(),
        ],
    ))
    .await?;
    Ok(())
}

async fn bump_stage<C: ConnectionTrait>(
    txn: &C,
    job_id: Uuid,
    stage: i32,
    passed: i32,
    filtered_out: i32,
    failed: i32,
    deltas: &Deltas,
) -> Result<(), StoreError> {
    txn.execute_raw(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"UPDATE job_stage_stats SET processed = processed + 1, passed = passed + $3,
               filtered_out = filtered_out + $4, failed = failed + $5,
               input_tokens = input_tokens + $6, output_tokens = output_tokens + $7
           WHERE job_id = $1 AND stage_index = $2"#,
        [
            job_id.into(),
            stage.into(),
            passed.into(),
            filtered_out.into(),
            failed.into(),
            deltas.input_tokens.into(),
            deltas.output_tokens.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// The job after a change, for its event.
struct JobState {
    status: JobStatus,
    seq: i64,
    counts: JobCounts,
    /// This change ended the job.
    ended: bool,
}

/// Applies the deltas to the job and bumps its event sequence; the job ends when nothing is
/// pending or running any more.
async fn bump_job<C: ConnectionTrait>(
    txn: &C,
    job_id: Uuid,
    deltas: &Deltas,
) -> Result<JobState, StoreError> {
    // Every expression on the right reads the row as it was before this UPDATE.
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            r#"UPDATE jobs SET
                   pending_items = pending_items - $2,
                   running_items = running_items - $3,
                   cancelled_items = cancelled_items + $4,
                   passed_items = passed_items + $5,
                   filtered_out_items = filtered_out_items + $6,
                   failed_items = failed_items + $7,
                   input_tokens = input_tokens + $8,
                   output_tokens = output_tokens + $9,
                   billed_input_tokens = billed_input_tokens + $10,
                   billed_output_tokens = billed_output_tokens + $11,
                   event_seq = event_seq + 1,
                   updated_at = now(),
                   status = CASE
                       WHEN status IN ('queued', 'running') AND pending_items - $2 = 0 AND running_items - $3 = 0 THEN
                           CASE WHEN failed_items + $7 >= total_items - cancelled_items - $4 THEN 'failed'
                                WHEN failed_items + $7 > 0 THEN 'completed_with_errors'
                                ELSE 'completed' END
                       ELSE status END,
                   finished_at = CASE
                       WHEN status IN ('queued', 'running') AND pending_items - $2 = 0 AND running_items - $3 = 0 THEN now()
                       ELSE finished_at END
               WHERE id = $1
               -- now() is the transaction's start time: equal only if set by this UPDATE.
               RETURNING status, event_seq, total_items, pending_items, running_items, passed_items,
                         filtered_out_items, failed_items, cancelled_items,
                         (finished_at IS NOT NULL AND finished_at = now()) AS ended"#,
            [
                job_id.into(),
                deltas.left_pending.into(),
                deltas.left_running.into(),
                deltas.cancelled.into(),
                deltas.passed.into(),
                deltas.filtered_out.into(),
                deltas.failed.into(),
                deltas.input_tokens.into(),
                deltas.output_tokens.into(),
                deltas.billed_input_tokens.into(),
                deltas.billed_output_tokens.into(),
            ],
        ))
        .await?
        .ok_or_else(|| corrupt(format!("job {job_id} disappeared")))?;
    let status: String = row.try_get("", "status")?;
    Ok(JobState {
        status: status
            .parse()
            .map_err(|_| corrupt(format!("job {job_id} has status {status}")))?,
        seq: row.try_get("", "event_seq")?,
        counts: JobCounts {
            total: row.try_get("", "total_items")?,
            pending: row.try_get("", "pending_items")?,
            running: row.try_get("", "running_items")?,
            passed: row.try_get("", "passed_items")?,
            filtered_out: row.try_get("", "filtered_out_items")?,
            failed: row.try_get("", "failed_items")?,
            cancelled: row.try_get("", "cancelled_items")?,
        },
        ended: row.try_get("", "ended")?,
    })
}

impl JobState {
    /// The event for this change: `job_finished` when it ended the job.
    fn event(&self, job_id: Uuid, kind: JobEventKind) -> JobEvent {
        JobEvent {
            v: JOB_EVENT_VERSION,
            job_id,
            seq: self.seq,
            kind: if self.ended {
                JobEventKind::JobFinished
            } else {
                kind
            },
            status: self.status,
            counts: self.counts,
        }
    }
}

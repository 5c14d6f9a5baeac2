//! Re-opening failed items, so they run again from the stage where they failed: a job's
//! retry (`POST /api/jobs/{id}/retry`) and the dead-letter re-driver.
//!
//! Re-opening undoes exactly what failing an item added (see [`crate::work::apply`]'s
//! `Change::Fail`): the item goes back to `pending` at its stage, one `processed` and one
//! `failed` come off that stage's counters, one `failed` item becomes `pending` again on the
//! job, and a finished job runs again. Like a submission ([`crate::jobs::submit`]), the
//! stage messages are published, and confirmed, before the transaction commits; they carry
//! the re-opened header, so a worker that sees one before the commit waits for it.

use std::{
    collections::{BTreeMap, HashSet},
    future::Future,
};

use domain::{
    event::{ItemProgress, JobEvent},
    job::{ItemStatus, JobStatus, Priority},
    message::StageMessage,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use uuid::Uuid;

use crate::{
    StoreError, TenantId,
    work::{job_event, stmt},
};

/// Which failed items to re-open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReopenScope {
    /// Every failed item of one job of the tenant (a job retry).
    Job { tenant: TenantId, job_id: Uuid },
    /// These items, of any tenant (the dead-letter re-driver).
    Items(Vec<Uuid>),
}

/// What [`reopen`] did, once committed.
#[derive(Debug, Default)]
pub struct Reopened {
    /// The stage messages that were published (and confirmed) for the re-opened items.
    pub messages: Vec<(StageMessage, Priority)>,
    /// One `progress` event per job with re-opened items; publish them (best effort).
    pub events: Vec<JobEvent>,
    /// The item ids re-opened.
    pub reopened: Vec<Uuid>,
    /// Item ids not re-opened: not failed (or unknown), or their job is cancelled or gone.
    /// For [`ReopenScope::Job`], the job's failed items when the job is cancelled.
    pub skipped: Vec<Uuid>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReopenError<E> {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The broker did not take the messages; nothing was changed.
    #[error("could not publish the re-opened items' messages")]
    Publish(#[source] E),
}

impl<E> From<sea_orm::DbErr> for ReopenError<E> {
    fn from(err: sea_orm::DbErr) -> Self {
        ReopenError::Store(err.into())
    }
}

/// A job as locked by [`reopen`].
struct LockedJob {
    status: JobStatus,
    priority: Priority,
}

/// An item as locked by [`reopen`].
struct LockedItem {
    id: Uuid,
    job_id: Uuid,
    status: ItemStatus,
    stage: i32,
}

/// Re-opens the failed items of `scope` in one transaction: locks the jobs (in id order),
/// then the items (in id order); moves each failed item of a job that is not cancelled back
/// to `pending` at its current stage (attempts, error and finish time cleared), takes back
/// the counters its failure added, and puts a finished job back to `running`. It then calls
/// `publish` with one message per re-opened item (at the item's stage, attempt 0, with the
/// job's priority) and commits only once `publish` has succeeded.
///
/// A job scope naming no job of the tenant is [`StoreError::NotFound`]. Nothing to re-open is
/// not an error: the answer is then empty (and `publish` is not called).
pub async fn reopen<F, Fut, E>(
    db: &DatabaseConnection,
    scope: ReopenScope,
    publish: F,
) -> Result<Reopened, ReopenError<E>>
where
    F: FnOnce(Vec<(StageMessage, Priority)>) -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    let txn = db.begin().await?;
    // Jobs first, then items, each in id order: the order workers and cancellations take
    // these locks in. Once a job is locked no worker batch can move its items.
    let (jobs, items, requested) = match scope {
        ReopenScope::Job { tenant, job_id } => {
            let jobs = lock_jobs(
                &txn,
                "SELECT id, status, priority FROM jobs WHERE id = $1 AND tenant_id = $2 FOR UPDATE",
                vec![job_id.into(), tenant.0.into()],
            )
            .await?;
            if jobs.is_empty() {
                return Err(StoreError::NotFound.into());
            }
            let items = lock_items(
                &txn,
                r#"SELECT id, job_id, status, current_stage FROM job_items
                   WHERE job_id = $1 AND status = 'failed' ORDER BY id FOR UPDATE"#,
                vec![job_id.into()],
            )
            .await?;
            let requested = items.iter().map(|item| item.id).collect();
            (jobs, items, requested)
        }
        ReopenScope::Items(ids) => {
            let mut seen = HashSet::with_capacity(ids.len());
            let requested: Vec<Uuid> = ids.into_iter().filter(|id| seen.insert(*id)).collect();
            let jobs = lock_jobs(
                &txn,
                r#"SELECT id, status, priority FROM jobs
                   WHERE id IN (SELECT job_id FROM job_items WHERE id = ANY($1))
                   ORDER BY id FOR UPDATE"#,
                vec![requested.clone().into()],
            )
            .await?;
            let job_ids: Vec<Uuid> = jobs.keys().copied().collect();
            let items = lock_items(
                &txn,
                r#"SELECT id, job_id, status, current_stage FROM job_items
                   WHERE id = ANY($1) AND job_id = ANY($2) ORDER BY id FOR UPDATE"#,
                vec![requested.clone().into(), job_ids.into()],
            )
            .await?;
            (jobs, items, requested)
        }
    };

    // What re-opens, by job and by (job, stage).
    let mut reopening: HashSet<Uuid> = HashSet::new();
    let mut per_job: BTreeMap<Uuid, Vec<ItemProgress>> = BTreeMap::new();
    let mut per_stage: BTreeMap<(Uuid, i32), i32> = BTreeMap::new();
    let mut messages = Vec::new();
    for item in &items {
        let Some(job) = jobs.get(&item.job_id) else {
            continue;
        };
        if item.status != ItemStatus::Failed || job.status == JobStatus::Cancelled {
            continue;
        }
        let stage = u32::try_from(item.stage).unwrap_or_default();
        reopening.insert(item.id);
        per_job.entry(item.job_id).or_default().push(ItemProgress {
            item_id: item.id,
            stage_index: stage,
            item_status: ItemStatus::Pending,
        });
        *per_stage.entry((item.job_id, item.stage)).or_default() += 1;
        messages.push((
            StageMessage {
                job_id: item.job_id,
                item_id: item.id,
                stage_index: stage,
                attempt: 0,
            },
            job.priority,
        ));
    }
    let (reopened, skipped): (Vec<Uuid>, Vec<Uuid>) =
        requested.into_iter().partition(|id| reopening.contains(id));
    if reopened.is_empty() {
        txn.commit().await?;
        return Ok(Reopened {
            skipped,
            ..Reopened::default()
        });
    }

    let (stage_jobs, (stage_indexes, stage_counts)): (Vec<Uuid>, (Vec<i32>, Vec<i32>)) = per_stage
        .iter()
        .map(|(&(job, stage), &n)| (job, (stage, n)))
        .unzip();
    let (job_ids, job_counts): (Vec<Uuid>, Vec<i32>) = per_job
        .iter()
        .map(|(&job, items)| (job, items.len() as i32))
        .unzip();
    let rows = txn
        .query_all_raw(stmt(
            REOPEN,
            vec![
                reopened.clone().into(),
                stage_jobs.into(),
                stage_indexes.into(),
                stage_counts.into(),
                job_ids.into(),
                job_counts.into(),
            ],
        ))
        .await?;
    let mut events = Vec::with_capacity(rows.len());
    for row in &rows {
        let job_id: Uuid = row.try_get("", "id").map_err(StoreError::from)?;
        let items = per_job.remove(&job_id).unwrap_or_default();
        events.push(job_event(row, job_id, items)?);
    }
    events.sort_by_key(|event| event.job_id);

    // Dropping `txn` on this error rolls everything back.
    publish(messages.clone())
        .await
        .map_err(ReopenError::Publish)?;
    txn.commit().await?;
    tracing::info!(
        items = reopened.len(),
        jobs = events.len(),
        "failed items re-opened"
    );
    Ok(Reopened {
        messages,
        events,
        reopened,
        skipped,
    })
}

/// [`reopen`], then the re-opened jobs' `progress` events through `announce`, best effort (a
/// live view re-reads a job from the database when an event goes missing): what a job's retry
/// and a dead letter's re-drive both do.
pub async fn reopen_and_announce<F, Fut, E, A, AFut, AE>(
    db: &DatabaseConnection,
    scope: ReopenScope,
    publish: F,
    announce: A,
) -> Result<Reopened, ReopenError<E>>
where
    F: FnOnce(Vec<(StageMessage, Priority)>) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    A: FnOnce(Vec<JobEvent>) -> AFut,
    AFut: Future<Output = Result<(), AE>>,
    AE: std::fmt::Display,
{
    let reopened = reopen(db, scope, publish).await?;
    if !reopened.events.is_empty()
        && let Err(error) = announce(reopened.events.clone()).await
    {
        tracing::warn!(%error, "could not publish the re-opened jobs' events");
    }
    Ok(reopened)
}

/// Re-opens items and takes back what their failure counted. `$1`: the items; `$2`..`$4`:
/// per (job, stage), the number of items re-opened there; `$5`, `$6`: per job, the number.
/// Returns each job's row as [`job_event`] reads it.
const REOPEN: &str = r#"
WITH reopened AS (
    UPDATE job_items SET status = 'pending', attempts = 0, last_error = NULL,
        error_class = NULL, finished_at = NULL, updated_at = now()
    WHERE id = ANY($1) AND status = 'failed'
    RETURNING 1
),
stage_counts AS (
    UPDATE job_stage_stats s SET processed = s.processed - d.n, failed = s.failed - d.n
    FROM UNNEST($2::uuid[], $3::int[], $4::int[]) AS d(job_id, stage_index, n)
    WHERE s.job_id = d.job_id AND s.stage_index = d.stage_index
    RETURNING 1
)
UPDATE jobs j SET
    failed_items = j.failed_items - d.n,
    pending_items = j.pending_items + d.n,
    status = CASE WHEN j.status IN ('completed', 'completed_with_errors', 'failed')
                  THEN 'running' ELSE j.status END,
    finished_at = NULL,
    event_seq = j.event_seq + 1,
    updated_at = now()
FROM UNNEST($5::uuid[], $6::int[]) AS d(id, n)
WHERE j.id = d.id
RETURNING j.id, j.tenant_id, j.status, j.event_seq, j.total_items, j.pending_items, j.running_items,
    j.passed_items, j.filtered_out_items, j.failed_items, j.cancelled_items
"#;

async fn lock_jobs<C: ConnectionTrait>(
    txn: &C,
    sql: &str,
    values: Vec<sea_orm::Value>,
) -> Result<BTreeMap<Uuid, LockedJob>, StoreError> {
    let rows = txn.query_all_raw(stmt(sql, values)).await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("", "id")?,
                LockedJob {
                    status: row.try_get("", "status")?,
                    priority: row.try_get("", "priority")?,
                },
            ))
        })
        .collect()
}

async fn lock_items<C: ConnectionTrait>(
    txn: &C,
    sql: &str,
    values: Vec<sea_orm::Value>,
) -> Result<Vec<LockedItem>, StoreError> {
    let rows = txn.query_all_raw(stmt(sql, values)).await?;
    rows.iter()
        .map(|row| {
            Ok(LockedItem {
                id: row.try_get("", "id")?,
                job_id: row.try_get("", "job_id")?,
                status: row.try_get("", "status")?,
                stage: row.try_get("", "current_stage")?,
            })
        })
        .collect()
}

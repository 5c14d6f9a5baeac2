//! Re-opening failed items, so they run again from the stage where they failed: a job's
//! retry (`POST /api/jobs/{id}/retry`) and the dead-letter re-driver.
//!
//! Re-opening undoes exactly what failing an item added (see [`crate::work::apply`]'s
//! `Change::Fail`): the item goes back to `pending` at its stage, one `processed` and one
//! `failed` come off that stage's counters, one `failed` item becomes `pending` again on the
//! job, and a finished job runs again. The stage messages are published, and confirmed,
//! before the transaction commits; they carry the re-opened header, so a worker that sees one
//! before the commit waits for it. A re-opened item is marked released (`released_at`), so it
//! counts in its tenant's window like any item the scheduler released.
//!
//! A job's retry also resumes a job its budget stopped ([`crate::budget`]), when the cap
//! (raised by the retry, or as it is) is above the spend: its skipped items go back to
//! `pending` unreleased, the items it never wrote are to be written again, and its
//! `stop_reason` is cleared. Nothing is published for them: the scheduler releases them.

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
#[derive(Debug, Clone, PartialEq)]
pub enum ReopenScope {
    /// Every failed item of one job of the tenant (a job retry), and its skipped items when
    /// its budget stopped it and the cap is (or, with `max_cost_usd`, becomes) above its
    /// spend.
    Job {
        tenant: TenantId,
        job_id: Uuid,
        /// A new cap for the job: it must already have one, and the new one must be above the
        /// spend.
        max_cost_usd: Option<f64>,
    },
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
    /// The item ids re-opened (failed items).
    pub reopened: Vec<Uuid>,
    /// Items of a job its budget stopped that will run again: the skipped items written,
    /// which are `pending` again, and the ones never written, which will be. None is
    /// published: the scheduler releases them.
    pub resumed: i64,
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
    /// A new cap was asked for a job that has none; nothing was changed.
    #[error("the job has no spending cap to change")]
    Uncapped,
    /// The new cap is not above what the job has spent; nothing was changed.
    #[error("the new cap must be above the job's spend ({spent_usd} USD)")]
    CapNotAboveSpend { spent_usd: f64 },
    /// The job's spend reached its cap, and no higher cap was given: whatever ran again would
    /// be skipped at once. Nothing was changed.
    #[error("the job's spend ({spent_usd} USD) reached its cap ({max_cost_usd} USD)")]
    BudgetExhausted { spent_usd: f64, max_cost_usd: f64 },
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
    cost_usd: f64,
    max_cost_usd: Option<f64>,
    skipped_items: i32,
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
/// to `pending` at its current stage (attempts, error and finish time cleared, released now),
/// takes back the counters its failure added, and puts a finished job back to `running`. It
/// then calls `publish` with one message per re-opened item (at the item's stage, attempt 0,
/// with the job's priority) and commits only once `publish` has succeeded.
///
/// For a job scope it also resumes what the job's budget skipped (see the module's doc) and
/// sets the new cap; a new cap is refused ([`ReopenError::Uncapped`],
/// [`ReopenError::CapNotAboveSpend`]) before anything changes.
///
/// A job scope naming no job of the tenant is [`StoreError::NotFound`]. Nothing to re-open is
/// not an error: the answer is then empty (`publish` is not called, and a new cap is not set).
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
    let mut resume: Option<Resume> = None;
    let (jobs, items, requested) = match scope {
        ReopenScope::Job {
            tenant,
            job_id,
            max_cost_usd,
        } => {
            let jobs = lock_jobs(
                &txn,
                &format!(
                    "SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1 AND tenant_id = $2 FOR UPDATE"
                ),
                vec![job_id.into(), tenant.0.into()],
            )
            .await?;
            let Some(job) = jobs.get(&job_id) else {
                return Err(StoreError::NotFound.into());
            };
            if let Some(cap) = max_cost_usd {
                if job.max_cost_usd.is_none() {
                    return Err(ReopenError::Uncapped);
                }
                if cap <= job.cost_usd {
                    return Err(ReopenError::CapNotAboveSpend {
                        spent_usd: job.cost_usd,
                    });
                }
            }
            let cap = max_cost_usd.or(job.max_cost_usd);
            if let Some(cap) = cap
                && cap <= job.cost_usd
                && job.status != JobStatus::Cancelled
            {
                return Err(ReopenError::BudgetExhausted {
                    spent_usd: job.cost_usd,
                    max_cost_usd: cap,
                });
            }
            let resumes = job.status != JobStatus::Cancelled && job.skipped_items > 0;
            let items = lock_items(
                &txn,
                r#"SELECT id, job_id, status, current_stage FROM job_items
                   WHERE job_id = $1 AND (status = 'failed' OR ($2 AND status = 'skipped'))
                   ORDER BY id FOR UPDATE"#,
                vec![job_id.into(), resumes.into()],
            )
            .await?;
            let (skipped, items): (Vec<LockedItem>, Vec<LockedItem>) = items
                .into_iter()
                .partition(|item| item.status == ItemStatus::Skipped);
            resume = Some(Resume {
                job_id,
                skipped: skipped.iter().map(|item| item.id).collect(),
                unwritten: if resumes {
                    i64::from(job.skipped_items) - skipped.len() as i64
                } else {
                    0
                },
                max_cost_usd,
            });
            let requested = items.iter().map(|item| item.id).collect();
            (jobs, items, requested)
        }
        ReopenScope::Items(ids) => {
            let mut seen = HashSet::with_capacity(ids.len());
            let requested: Vec<Uuid> = ids.into_iter().filter(|id| seen.insert(*id)).collect();
            let jobs = lock_jobs(
                &txn,
                &format!(
                    r#"SELECT {JOB_COLUMNS} FROM jobs
                       WHERE id IN (SELECT job_id FROM job_items WHERE id = ANY($1))
                       ORDER BY id FOR UPDATE"#
                ),
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
    let resume = resume.filter(|r| !r.skipped.is_empty() || r.unwritten > 0);
    if reopened.is_empty() && resume.is_none() {
        txn.commit().await?;
        return Ok(Reopened {
            skipped,
            ..Reopened::default()
        });
    }
    let mut rows = Vec::new();
    if !reopened.is_empty() {
        rows = reopen_failed(&txn, &reopened, &per_job, per_stage).await?;
    }
    let mut resumed = 0;
    if let Some(resume) = resume {
        resumed = resume.skipped.len() as i64 + resume.unwritten;
        let row = txn
            .query_one_raw(stmt(
                RESUME,
                vec![
                    resume.job_id.into(),
                    resume.skipped.into(),
                    resume.unwritten.into(),
                    resume.max_cost_usd.into(),
                ],
            ))
            .await?
            .ok_or_else(|| StoreError::corrupt("a locked job vanished"))?;
        // The job's row as the last statement left it.
        rows.retain(|r| r.try_get::<Uuid>("", "id").ok() != Some(resume.job_id));
        rows.push(row);
    }
    let mut events = Vec::with_capacity(rows.len());
    for row in &rows {
        let job_id: Uuid = row.try_get("", "id").map_err(StoreError::from)?;
        let items = per_job.remove(&job_id).unwrap_or_default();
        events.push(job_event(row, job_id, items)?);
    }
    events.sort_by_key(|event| event.job_id);

    if !messages.is_empty() {
        // Dropping `txn` on this error rolls everything back.
        publish(messages.clone())
            .await
            .map_err(ReopenError::Publish)?;
    }
    txn.commit().await?;
    tracing::info!(
        items = reopened.len(),
        resumed,
        jobs = events.len(),
        "items re-opened"
    );
    Ok(Reopened {
        messages,
        events,
        reopened,
        resumed,
        skipped,
    })
}

/// What a job's retry resumes of a job its budget stopped.
struct Resume {
    job_id: Uuid,
    /// Its skipped items (locked).
    skipped: Vec<Uuid>,
    /// Its items skipped before they were written.
    unwritten: i64,
    max_cost_usd: Option<f64>,
}

/// Runs [`REOPEN`] for the failed items `reopened`; the jobs' rows.
async fn reopen_failed<C: ConnectionTrait>(
    txn: &C,
    reopened: &[Uuid],
    per_job: &BTreeMap<Uuid, Vec<ItemProgress>>,
    per_stage: BTreeMap<(Uuid, i32), i32>,
) -> Result<Vec<sea_orm::QueryResult>, StoreError> {
    let (stage_jobs, (stage_indexes, stage_counts)): (Vec<Uuid>, (Vec<i32>, Vec<i32>)) = per_stage
        .iter()
        .map(|(&(job, stage), &n)| (job, (stage, n)))
        .unzip();
    let (job_ids, job_counts): (Vec<Uuid>, Vec<i32>) = per_job
        .iter()
        .map(|(&job, items)| (job, items.len() as i32))
        .unzip();
    Ok(txn
        .query_all_raw(stmt(
            REOPEN,
            vec![
                reopened.to_vec().into(),
                stage_jobs.into(),
                stage_indexes.into(),
                stage_counts.into(),
                job_ids.into(),
                job_counts.into(),
            ],
        ))
        .await?)
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
        error_class = NULL, finished_at = NULL, updated_at = now(), released_at = now()
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
    j.passed_items, j.filtered_out_items, j.failed_items, j.cancelled_items, j.skipped_items,
    j.stop_reason
"#;

/// Resumes a job its budget stopped. `$1`: the job (locked); `$2`: its skipped items (locked),
/// back to `pending` and unreleased at their stage; `$3`: its items skipped before they were
/// written, to be written again (`materialized_items` goes back by as many: the keyset cursor
/// never moved past them); `$4`: the new cap, if any. Returns the job's row as [`job_event`]
/// reads it.
const RESUME: &str = r#"
WITH resumed AS (
    UPDATE job_items SET status = 'pending', skip_reason = NULL, finished_at = NULL,
        released_at = NULL, updated_at = now()
    WHERE id = ANY($2) AND status = 'skipped'
    RETURNING 1
),
counted AS (
    SELECT (SELECT count(*) FROM resumed)::int + $3::int AS n
)
UPDATE jobs j SET
    skipped_items = j.skipped_items - c.n,
    pending_items = j.pending_items + c.n,
    materialized_items = j.materialized_items - $3::int,
    stop_reason = NULL,
    max_cost_usd = coalesce($4::float8, j.max_cost_usd),
    status = CASE WHEN j.status IN ('completed', 'completed_with_errors', 'failed')
                  THEN 'running' ELSE j.status END,
    finished_at = NULL,
    event_seq = j.event_seq + 1,
    updated_at = now()
FROM counted c
WHERE j.id = $1
RETURNING j.id, j.tenant_id, j.status, j.event_seq, j.total_items, j.pending_items, j.running_items,
    j.passed_items, j.filtered_out_items, j.failed_items, j.cancelled_items, j.skipped_items,
    j.stop_reason
"#;

/// What [`lock_jobs`] reads of each job.
const JOB_COLUMNS: &str = "id, status, priority, cost_usd, max_cost_usd, skipped_items";

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
                    cost_usd: row.try_get("", "cost_usd")?,
                    max_cost_usd: row.try_get("", "max_cost_usd")?,
                    skipped_items: row.try_get("", "skipped_items")?,
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

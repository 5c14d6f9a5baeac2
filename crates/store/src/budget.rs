//! Budget caps: a job with `max_cost_usd` stops starting calls once its spend (`cost_usd`, the
//! sum of its results' costs) reaches the cap (docs/design.md, "Admission", and docs/api.md,
//! "Costs and budget caps").
//!
//! Two parts enforce it: the scheduler releases nothing more of a job over its budget, and a
//! worker reads the job's [`spend`] before each call of a capped job and skips the item instead
//! of calling when it is exhausted. Either then calls [`stop_if_exhausted`], which stops the
//! job once: what was never released ends `skipped`, and the job finishes as soon as the calls
//! already in flight (and the messages already queued, which workers skip) are written. The
//! overshoot is therefore at most what the calls in flight when the cap was reached cost.

use domain::event::JobEvent;
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use uuid::Uuid;

use crate::{
    StoreError,
    work::{job_event, stmt},
};

/// A job's spend against its cap, as committed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spend {
    pub cost_usd: f64,
    pub max_cost_usd: Option<f64>,
    /// The job was stopped (`stop_reason` is set).
    pub stopped: bool,
}

impl Spend {
    /// No new call may start: the job was stopped, or its spend reached its cap.
    pub fn exhausted(&self) -> bool {
        self.stopped || self.max_cost_usd.is_some_and(|cap| self.cost_usd >= cap)
    }
}

/// The job's spend and cap (one primary-key read); `None` when there is no such job.
pub async fn spend<C: ConnectionTrait>(db: &C, job_id: Uuid) -> Result<Option<Spend>, StoreError> {
    let row = db
        .query_one_raw(stmt(
            "SELECT cost_usd, max_cost_usd, stop_reason IS NOT NULL AS stopped FROM jobs WHERE id = $1",
            vec![job_id.into()],
        ))
        .await?;
    row.map(|row| {
        Ok(Spend {
            cost_usd: row.try_get("", "cost_usd")?,
            max_cost_usd: row.try_get("", "max_cost_usd")?,
            stopped: row.try_get("", "stopped")?,
        })
    })
    .transpose()
}

/// Stops a job whose spend reached its cap, once: in one transaction, under the job's row lock
/// (then the items', in id order: the order [`crate::work::apply`] takes them in), when the
/// job has a cap, its `cost_usd` is at or over it, it is `queued` or `running` and not stopped
/// yet:
///
/// - `stop_reason` becomes `budget_exhausted`;
/// - every item not released yet (`pending`, `released_at` NULL) ends `skipped` with
///   `skip_reason` `budget_exhausted`, and so do the items not written yet (they are counted,
///   and `materialized_items` becomes `total_items`, so none is written any more);
/// - released items are left to the workers: a call in flight is written as usual, and a
///   message still queued is skipped by the worker that takes it;
/// - when nothing is left pending or running, the job finishes now, by the rule the workers'
///   batch write uses: `failed` when every item that ran failed, `completed_with_errors` when
///   some failed, else `completed`; `stop_reason` says it stopped early.
///
/// Returns the job's `progress` event (or `job_finished`) to publish after the commit; its
/// item list is empty (the counts say how many were skipped). `None` when the job is not (or no
/// longer) to be stopped: no cap, under it, finished, or stopped already (by another caller).
pub async fn stop_if_exhausted(
    db: &DatabaseConnection,
    job_id: Uuid,
) -> Result<Option<JobEvent>, StoreError> {
    let txn = db.begin().await?;
    let due = txn
        .query_one_raw(stmt(
            r#"SELECT id FROM jobs
               WHERE id = $1 AND max_cost_usd IS NOT NULL AND cost_usd >= max_cost_usd
                 AND stop_reason IS NULL AND status IN ('queued', 'running')
               FOR NO KEY UPDATE"#,
            vec![job_id.into()],
        ))
        .await?;
    if due.is_none() {
        txn.commit().await?;
        return Ok(None);
    }
    let row = txn
        .query_one_raw(stmt(STOP, vec![job_id.into()]))
        .await?
        .ok_or_else(|| StoreError::corrupt(format!("job {job_id} vanished while locked")))?;
    let event = job_event(&row, job_id, Vec::new())?;
    txn.commit().await?;
    tracing::info!(
        %job_id,
        skipped = event.counts.skipped,
        status = event.status.as_str(),
        "job stopped: its spend reached its cap"
    );
    Ok(Some(event))
}

/// `$1`: the job, locked by the caller. Skips its unreleased items (locked in id order; an item
/// a scheduler releases meanwhile is re-checked after its lock and left out) and the items not
/// written yet, and finishes the job when nothing is left in flight. Returns the job's row as
/// [`job_event`] reads it.
const STOP: &str = r#"
WITH locked AS MATERIALIZED (
    SELECT id FROM job_items
    WHERE job_id = $1 AND status = 'pending' AND released_at IS NULL
    ORDER BY id
    FOR UPDATE
),
skipped AS (
    UPDATE job_items i SET status = 'skipped', skip_reason = 'budget_exhausted',
        finished_at = now(), updated_at = now()
    FROM locked
    WHERE i.id = locked.id AND i.status = 'pending' AND i.released_at IS NULL
    RETURNING 1
),
counted AS (
    SELECT j.id, (SELECT count(*) FROM skipped)::int + (j.total_items - j.materialized_items) AS n
    FROM jobs j WHERE j.id = $1
)
-- Every expression on the right reads the row as it was before this UPDATE.
UPDATE jobs j SET
    stop_reason = 'budget_exhausted',
    skipped_items = j.skipped_items + c.n,
    pending_items = j.pending_items - c.n,
    materialized_items = j.total_items,
    status = CASE
        WHEN j.pending_items - c.n = 0 AND j.running_items = 0 THEN
            CASE WHEN j.failed_items > 0
                      AND j.failed_items >= j.total_items - j.cancelled_items - j.skipped_items - c.n
                      THEN 'failed'
                 WHEN j.failed_items > 0 THEN 'completed_with_errors'
                 ELSE 'completed' END
        ELSE j.status END,
    finished_at = CASE WHEN j.pending_items - c.n = 0 AND j.running_items = 0
        THEN clock_timestamp() ELSE j.finished_at END,
    event_seq = j.event_seq + 1,
    updated_at = now()
FROM counted c
WHERE j.id = c.id
RETURNING j.id, j.tenant_id, j.status, j.event_seq, j.total_items, j.pending_items, j.running_items,
    j.passed_items, j.filtered_out_items, j.failed_items, j.cancelled_items, j.skipped_items,
    j.stop_reason
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_is_exhausted_at_its_cap_or_once_stopped() {
        let spend = |cost_usd, max_cost_usd, stopped| Spend {
            cost_usd,
            max_cost_usd,
            stopped,
        };
        assert!(!spend(10.0, None, false).exhausted(), "no cap: never");
        assert!(!spend(0.99, Some(1.0), false).exhausted());
        assert!(
            spend(1.0, Some(1.0), false).exhausted(),
            "reaching it is enough"
        );
        assert!(spend(1.5, Some(1.0), false).exhausted());
        assert!(
            spend(0.5, Some(1.0), true).exhausted(),
            "stopped stays stopped"
        );
    }
}

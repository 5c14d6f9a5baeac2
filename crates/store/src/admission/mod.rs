//! Admission of work from PostgreSQL into the stage queue (docs/design.md, "Admission").
//!
//! A submission writes only the job and what defines its items. The scheduler then, pass by
//! pass:
//! - reads the [`backlog`]: every unfinished job with its items in the window (released, not
//!   finished) and whether it has more to release, with its tenant's weight and cap;
//! - [`claim`]s the next items of the jobs it picked, writing each job's items in chunks first
//!   when it has run out ([`materialize`]);
//! - publishes their messages, and hands back ([`unclaim`]) what it could not publish;
//! - [`sweep`]s items released long ago whose first stage never started (a scheduler that
//!   stopped between claiming and publishing).
//!
//! Claims lock rows with `SKIP LOCKED`, so two schedulers running at once never release one
//! item twice.

mod backlog;

pub use backlog::{Backlog, BacklogJob, TenantShare, backlog};

use domain::{job::Priority, message::StageMessage};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use uuid::Uuid;

use crate::{StoreError, work::stmt};

/// Writes up to `limit` more items of `job_id` (the next images of its selection, in order)
/// and returns how many it wrote. Nothing is written for a job that is finished or whose
/// items are all written. Items go in as `pending` and unreleased.
pub async fn materialize(
    db: &DatabaseConnection,
    job_id: Uuid,
    limit: u32,
) -> Result<u32, StoreError> {
    let txn = db.begin().await?;
    // The job's row lock orders this with other writers of the same job (a second
    // scheduler, a cancellation); the unique (job_id, image_id) makes a repeat harmless.
    let written = txn
        .query_one_raw(stmt(
            MATERIALIZE,
            vec![job_id.into(), i64::from(limit).into()],
        ))
        .await?
        .map(|row| row.try_get::<i64>("", "written"))
        .transpose()?
        .unwrap_or(0);
    txn.commit().await?;
    Ok(written as u32)
}

/// `$1` job id, `$2` chunk size. Named images come from `image_ids` by position; a library's
/// from `images` by `(created_at, id)` after the keyset cursor, up to `images_as_of`. When
/// the selection yields fewer images than the job counted (cannot happen while deleting an
/// image a job still needs is refused, but a job must never wait forever for items that do
/// not exist), the job's totals shrink to what exists.
const MATERIALIZE: &str = r#"
WITH job AS MATERIALIZED (
    SELECT id, tenant_id, library_id, image_ids, images_as_of, materialized_items, total_items,
        coalesce(materialized_through_created, '-infinity'::timestamptz) AS after_created,
        coalesce(materialized_through_id, '00000000-0000-0000-0000-000000000000'::uuid) AS after_id
    FROM jobs
    WHERE id = $1 AND status IN ('queued', 'running') AND materialized_items < total_items
    FOR NO KEY UPDATE
),
named AS (
    SELECT t.image_id, NULL::timestamptz AS created_at, t.ord::int AS position
    FROM job, unnest(job.image_ids) WITH ORDINALITY AS t(image_id, ord)
    WHERE job.image_ids IS NOT NULL AND t.ord > job.materialized_items
    ORDER BY t.ord
    LIMIT $2
),
library AS (
    SELECT i.id AS image_id, i.created_at,
        (job.materialized_items + row_number() OVER (ORDER BY i.created_at, i.id))::int AS position
    FROM job, LATERAL (
        SELECT id, created_at FROM images
        WHERE tenant_id = job.tenant_id AND library_id = job.library_id
          AND created_at <= job.images_as_of
          AND (created_at, id) > (job.after_created, job.after_id)
        ORDER BY created_at, id
        LIMIT $2
    ) i
    WHERE job.image_ids IS NULL
),
chosen AS (
    SELECT * FROM named UNION ALL SELECT * FROM library
),
inserted AS (
    INSERT INTO job_items (id, job_id, image_id, status, current_stage, attempts, position,
        created_at, updated_at)
    SELECT gen_random_uuid(), $1, image_id, 'pending', 0, 0, position, now(), now()
    FROM chosen
    ON CONFLICT (job_id, image_id) DO NOTHING
    RETURNING 1
),
last AS (
    SELECT created_at, image_id FROM library ORDER BY position DESC LIMIT 1
),
counted AS (
    SELECT count(*) AS chosen, (SELECT count(*) FROM inserted) AS written FROM chosen
),
moved AS (
    UPDATE jobs j SET
        materialized_items = job.materialized_items + counted.chosen,
        -- Fewer images than asked for: the selection is exhausted, and what it did not yield
        -- leaves the job's totals (0 when the count was right).
        total_items = CASE WHEN counted.chosen < $2
            THEN job.materialized_items + counted.chosen ELSE j.total_items END,
        pending_items = CASE WHEN counted.chosen < $2
            THEN j.pending_items - (job.total_items - job.materialized_items - counted.chosen)
            ELSE j.pending_items END,
        materialized_through_created = coalesce((SELECT created_at FROM last), j.materialized_through_created),
        materialized_through_id = coalesce((SELECT image_id FROM last), j.materialized_through_id)
    FROM job, counted
    WHERE j.id = job.id
    RETURNING 1
)
SELECT written FROM counted, (SELECT count(*) FROM moved) AS m
"#;

/// An item released by [`claim`]: its message is to be published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Released {
    pub message: StageMessage,
    pub priority: Priority,
}

/// Marks up to `limit` unreleased pending items of `job_id` released, in position order,
/// skipping rows another scheduler holds, and returns their messages (at each item's current
/// stage, attempt 0).
pub async fn claim<C: ConnectionTrait>(
    db: &C,
    job_id: Uuid,
    priority: Priority,
    limit: u32,
) -> Result<Vec<Released>, StoreError> {
    let rows = db
        .query_all_raw(stmt(
            r#"UPDATE job_items SET released_at = clock_timestamp()
               WHERE id IN (
                   SELECT id FROM job_items
                   WHERE job_id = $1 AND status = 'pending' AND released_at IS NULL
                   ORDER BY position
                   LIMIT $2
                   FOR UPDATE SKIP LOCKED)
               RETURNING id, current_stage"#,
            vec![job_id.into(), i64::from(limit).into()],
        ))
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Released {
                message: StageMessage {
                    job_id,
                    item_id: row.try_get("", "id")?,
                    stage_index: row.try_get::<i32>("", "current_stage")? as u32,
                    attempt: 0,
                },
                priority,
            })
        })
        .collect()
}

/// Hands back items whose messages could not be published, so the next pass releases them.
pub async fn unclaim<C: ConnectionTrait>(db: &C, item_ids: &[Uuid]) -> Result<(), StoreError> {
    db.execute_raw(stmt(
        "UPDATE job_items SET released_at = NULL WHERE id = ANY($1) AND status = 'pending'",
        vec![item_ids.to_vec().into()],
    ))
    .await?;
    Ok(())
}

/// Items released more than `older_than_seconds` ago whose first stage has not started
/// (pending at stage 0, never attempted) in unfinished jobs: released again now, and returned
/// to be published again. A message that was in fact delivered meanwhile is processed once:
/// the worker finds the stage done and writes nothing.
pub async fn sweep<C: ConnectionTrait>(
    db: &C,
    older_than_seconds: u64,
    limit: u32,
) -> Result<Vec<Released>, StoreError> {
    let rows = db
        .query_all_raw(stmt(
            r#"UPDATE job_items i SET released_at = clock_timestamp()
               FROM jobs j
               WHERE i.id IN (
                   SELECT i2.id FROM job_items i2
                   WHERE i2.released_at IS NOT NULL AND i2.status = 'pending'
                     AND i2.current_stage = 0 AND i2.attempts = 0
                     AND i2.released_at < clock_timestamp() - make_interval(secs => $1)
                   ORDER BY i2.released_at
                   LIMIT $2
                   FOR UPDATE SKIP LOCKED)
                 AND j.id = i.job_id AND j.status IN ('queued', 'running')
               RETURNING i.id, i.job_id, i.current_stage, j.priority"#,
            vec![(older_than_seconds as f64).into(), i64::from(limit).into()],
        ))
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Released {
                message: StageMessage {
                    job_id: row.try_get("", "job_id")?,
                    item_id: row.try_get("", "id")?,
                    stage_index: row.try_get::<i32>("", "current_stage")? as u32,
                    attempt: 0,
                },
                priority: row.try_get("", "priority")?,
            })
        })
        .collect()
}

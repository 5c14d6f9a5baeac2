//! What workers read and write, in batches.
//!
//! A worker loads the work of many stage messages with one query ([`load`]) and writes the
//! outcomes of many in one transaction ([`apply`]): the result rows, the items' states, the
//! per-stage and per-job counters and the jobs' final statuses. One transaction per batch
//! rather than per message is what lets a worker keep up with a fast model: the `jobs` row of
//! a job is updated once per batch, not once per image.
//!
//! Every change is checked against the item's locked row, so a redelivered message finds its
//! work done and changes nothing twice.

mod apply;

use domain::{
    event::{ItemProgress, JOB_EVENT_VERSION, JobCounts, JobEvent, JobEventKind},
    job::{ItemStatus, JobStatus, Priority},
    message::StageMessage,
    pipeline::PipelineSnapshot,
};
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, QueryResult, Statement};
use serde::Serialize;
use uuid::Uuid;

pub use self::apply::{Applied, Change, StageResult, apply};
use crate::StoreError;

pub(crate) fn stmt(sql: &str, values: Vec<sea_orm::Value>) -> Statement {
    Statement::from_sql_and_values(DatabaseBackend::Postgres, sql, values)
}

/// What never changes about a job while it runs: workers cache it.
#[derive(Debug, Clone)]
pub struct JobHeader {
    pub job_id: Uuid,
    pub tenant_id: Uuid,
    pub priority: Priority,
    pub snapshot: PipelineSnapshot,
    /// The job has a spending cap (`max_cost_usd`). A retry may change the cap but never
    /// adds or removes one, so this stays true; the cap and the spend themselves change and
    /// are read fresh ([`crate::budget::spend`]).
    pub capped: bool,
}

/// The headers of the given jobs (those that exist).
pub async fn job_headers(
    db: &DatabaseConnection,
    job_ids: &[Uuid],
) -> Result<Vec<JobHeader>, StoreError> {
    let rows = db
        .query_all_raw(stmt(
            r#"SELECT id, tenant_id, priority, pipeline_snapshot, max_cost_usd IS NOT NULL AS capped
               FROM jobs WHERE id = ANY($1)"#,
            vec![job_ids.to_vec().into()],
        ))
        .await?;
    rows.iter()
        .map(|row| {
            let job_id: Uuid = row.try_get("", "id")?;
            let snapshot: serde_json::Value = row.try_get("", "pipeline_snapshot")?;
            Ok(JobHeader {
                job_id,
                tenant_id: row.try_get("", "tenant_id")?,
                priority: row.try_get("", "priority")?,
                capped: row.try_get("", "capped")?,
                snapshot: serde_json::from_value(snapshot).map_err(|e| {
                    StoreError::corrupt(format!(
                        "job {job_id} has an unreadable pipeline snapshot: {e}"
                    ))
                })?,
            })
        })
        .collect()
}

/// Where an image's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSource {
    /// Uploaded bytes in the object store.
    pub object_key: Option<String>,
    /// A registered URL.
    pub url: Option<String>,
}

/// The state a stage message finds.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub job_status: JobStatus,
    pub item_status: ItemStatus,
    pub current_stage: u32,
    pub image_id: Uuid,
    /// `None` when the image was deleted.
    pub image: Option<ImageSource>,
    /// The message's stage result is stored already (an earlier delivery got that far).
    pub result_stored: bool,
}

#[derive(Serialize)]
struct LoadRow {
    ord: usize,
    job_id: Uuid,
    item_id: Uuid,
    stage: u32,
}

/// The state each message finds, in order; `None` where the job or the item does not exist
/// (yet: a submission's messages can arrive before its commit).
pub async fn load(
    db: &DatabaseConnection,
    messages: &[StageMessage],
) -> Result<Vec<Option<Loaded>>, StoreError> {
    let wanted: Vec<LoadRow> = messages
        .iter()
        .enumerate()
        .map(|(ord, m)| LoadRow {
            ord,
            job_id: m.job_id,
            item_id: m.item_id,
            stage: m.stage_index,
        })
        .collect();
    let rows = db
        .query_all_raw(stmt(
            r#"SELECT m.ord, i.image_id, i.status AS item_status, i.current_stage,
                      j.status AS job_status, img.id IS NOT NULL AS image_exists,
                      img.object_key, img.url,
                      EXISTS (SELECT 1 FROM job_results r
                              WHERE r.item_id = i.id AND r.stage_index = m.stage) AS result_stored
               FROM jsonb_to_recordset($1::jsonb) AS m(ord int, job_id uuid, item_id uuid, stage int)
               JOIN job_items i ON i.id = m.item_id AND i.job_id = m.job_id
               JOIN jobs j ON j.id = i.job_id
               LEFT JOIN images img ON img.id = i.image_id"#,
            vec![serde_json::to_value(&wanted).unwrap_or_default().into()],
        ))
        .await?;
    let mut loaded = vec![None; messages.len()];
    for row in rows {
        let ord: i32 = row.try_get("", "ord")?;
        let Some(slot) = usize::try_from(ord).ok().and_then(|o| loaded.get_mut(o)) else {
            continue;
        };
        let current_stage: i32 = row.try_get("", "current_stage")?;
        let image_exists: bool = row.try_get("", "image_exists")?;
        *slot = Some(Loaded {
            job_status: row.try_get("", "job_status")?,
            item_status: row.try_get("", "item_status")?,
            current_stage: current_stage.max(0) as u32,
            image_id: row.try_get("", "image_id")?,
            image: image_exists
                .then(|| {
                    Ok::<_, StoreError>(ImageSource {
                        object_key: row.try_get("", "object_key")?,
                        url: row.try_get("", "url")?,
                    })
                })
                .transpose()?,
            result_stored: row.try_get("", "result_stored")?,
        });
    }
    Ok(loaded)
}

/// The event for a job's row as the batch left it (read from `RETURNING j.id, j.tenant_id,
/// j.status, j.event_seq`, the item counters `j.*_items` and `j.stop_reason`).
pub(crate) fn job_event(
    row: &QueryResult,
    job_id: Uuid,
    items: Vec<ItemProgress>,
) -> Result<JobEvent, StoreError> {
    Ok(JobEvent {
        v: JOB_EVENT_VERSION,
        job_id,
        tenant_id: row.try_get("", "tenant_id")?,
        seq: row.try_get("", "event_seq")?,
        kind: JobEventKind::Progress { items },
        status: row.try_get("", "status")?,
        counts: JobCounts {
            total: row.try_get("", "total_items")?,
            pending: row.try_get("", "pending_items")?,
            running: row.try_get("", "running_items")?,
            passed: row.try_get("", "passed_items")?,
            filtered_out: row.try_get("", "filtered_out_items")?,
            failed: row.try_get("", "failed_items")?,
            cancelled: row.try_get("", "cancelled_items")?,
            skipped: row.try_get("", "skipped_items")?,
        },
        stop_reason: row.try_get("", "stop_reason")?,
    })
}

//! Writing a batch of outcomes ([`apply`]) in one transaction.

use std::collections::{BTreeMap, HashMap};

use domain::{
    event::{ItemProgress, JobEvent},
    job::{ErrorClass, ItemStatus, StopReason},
    message::StageMessage,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use serde::Serialize;
use uuid::Uuid;

use super::{job_event, stmt};
use crate::StoreError;

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
    /// What the call cost, priced from its billed tokens at the model's price.
    pub cost_usd: f64,
}

/// One message's outcome, to be written by [`apply`].
#[derive(Debug, Clone)]
pub enum Change {
    /// The model answered: store the result and move the item on (to the next stage when it
    /// passed the filter and `last_stage` is false, else to `passed` / `filtered_out`).
    Record {
        message: StageMessage,
        image_id: Uuid,
        result: StageResult,
        last_stage: bool,
    },
    /// The stage can never be done for this item: the item fails.
    Fail {
        message: StageMessage,
        class: ErrorClass,
        reason: String,
    },
    /// The job was cancelled: the item ends `cancelled`.
    Cancel { message: StageMessage },
    /// The job's spend reached its cap: the item ends `skipped` (`budget_exhausted`) at the
    /// message's stage, without a call.
    Skip { message: StageMessage },
    /// The stage's result is stored already (a redelivery): write nothing, find what is left.
    Resume { message: StageMessage },
}

impl Change {
    pub fn message(&self) -> &StageMessage {
        match self {
            Change::Record { message, .. }
            | Change::Fail { message, .. }
            | Change::Cancel { message }
            | Change::Skip { message }
            | Change::Resume { message } => message,
        }
    }
}

/// What a batch of changes leads to once committed.
#[derive(Debug, Default)]
pub struct Applied {
    /// Per change, in order: the next stage's message to publish, if any. A redelivered
    /// message whose item already moved on gets its next message again (the broker may not
    /// have taken it before); processing that twice is harmless.
    pub next: Vec<Option<StageMessage>>,
    /// One event per job the batch changed.
    pub events: Vec<JobEvent>,
}

/// An item's row as locked by [`apply`], updated as the batch's changes are applied to it.
struct ItemState {
    job_id: Uuid,
    status: ItemStatus,
    stage: i32,
    changed: bool,
    error_class: Option<ErrorClass>,
    last_error: Option<String>,
    /// Deliveries the stage this change finished took.
    attempts: Option<i32>,
    skip_reason: Option<StopReason>,
}

#[derive(Serialize)]
struct ResultRow<'a> {
    id: Uuid,
    job_id: Uuid,
    item_id: Uuid,
    image_id: Uuid,
    stage_index: u32,
    model: &'a str,
    output_text: &'a str,
    // Absent keys become NULL; a JSON null would become the jsonb value `null`.
    #[serde(skip_serializing_if = "Option::is_none")]
    output_json: Option<&'a serde_json::Value>,
    passed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    filter_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_reason: Option<&'a str>,
    input_tokens: i64,
    output_tokens: i64,
    billed_input_tokens: i64,
    billed_output_tokens: i64,
    latency_ms: i32,
    cost_usd: f64,
}

#[derive(Serialize)]
struct ItemRow<'a> {
    id: Uuid,
    status: ItemStatus,
    stage: i32,
    finished: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_class: Option<ErrorClass>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempts: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    skip_reason: Option<StopReason>,
}

/// Counter changes of one stage of one job.
#[derive(Serialize, Default)]
struct StageDelta {
    job_id: Uuid,
    stage_index: i32,
    processed: i32,
    passed: i32,
    filtered_out: i32,
    failed: i32,
    input_tokens: i64,
    output_tokens: i64,
    cost_usd: f64,
}

/// The counters of a job's stage, with one more item processed.
fn processed_at(
    stages: &mut BTreeMap<(Uuid, i32), StageDelta>,
    job_id: Uuid,
    stage_index: i32,
) -> &mut StageDelta {
    let stats = stages
        .entry((job_id, stage_index))
        .or_insert_with(|| StageDelta {
            job_id,
            stage_index,
            ..StageDelta::default()
        });
    stats.processed += 1;
    stats
}

/// Counter changes of one job: items by state (negative when items leave it) and tokens.
#[derive(Serialize, Default)]
struct JobDelta {
    id: Uuid,
    pending: i32,
    running: i32,
    passed: i32,
    filtered_out: i32,
    failed: i32,
    cancelled: i32,
    skipped: i32,
    input_tokens: i64,
    output_tokens: i64,
    billed_input_tokens: i64,
    billed_output_tokens: i64,
    cost_usd: f64,
    #[serde(skip)]
    items: Vec<ItemProgress>,
}

impl JobDelta {
    fn count(&mut self, status: ItemStatus, by: i32) {
        let counter = match status {
            ItemStatus::Pending => &mut self.pending,
            ItemStatus::Running => &mut self.running,
            ItemStatus::Passed => &mut self.passed,
            ItemStatus::FilteredOut => &mut self.filtered_out,
            ItemStatus::Failed => &mut self.failed,
            ItemStatus::Cancelled => &mut self.cancelled,
            ItemStatus::Skipped => &mut self.skipped,
        };
        *counter += by;
    }

    /// An item moved from `from` to `to` at `stage_index`.
    fn moved(&mut self, item_id: Uuid, stage_index: u32, from: ItemStatus, to: ItemStatus) {
        self.count(from, -1);
        self.count(to, 1);
        self.items.push(ItemProgress {
            item_id,
            stage_index,
            item_status: to,
        });
    }
}

/// Writes a batch of outcomes in one transaction and returns what to publish after the
/// commit. Changes whose item is gone, already terminal or already past the stage write
/// nothing.
pub async fn apply(db: &DatabaseConnection, changes: &[Change]) -> Result<Applied, StoreError> {
    if changes.is_empty() {
        return Ok(Applied::default());
    }
    let item_ids: Vec<Uuid> = changes.iter().map(|c| c.message().item_id).collect();
    let mut job_ids: Vec<Uuid> = changes.iter().map(|c| c.message().job_id).collect();
    job_ids.sort_unstable();
    job_ids.dedup();

    let txn = db.begin().await?;
    // Jobs first, then items, each in id order: the order every writer (and a cancellation)
    // takes these locks in, so concurrent batches queue instead of deadlocking.
    let rows = txn
        .query_all_raw(stmt(
            r#"WITH locked_jobs AS MATERIALIZED (
                   SELECT id FROM jobs WHERE id = ANY($2) ORDER BY id FOR NO KEY UPDATE
               )
               SELECT i.id, i.job_id, i.status, i.current_stage FROM job_items i
               WHERE i.id = ANY($1) AND i.job_id IN (SELECT id FROM locked_jobs)
               ORDER BY i.id FOR UPDATE OF i"#,
            vec![item_ids.into(), job_ids.into()],
        ))
        .await?;
    let mut items = rows
        .iter()
        .map(|row| {
            Ok((
                row.try_get("", "id")?,
                ItemState {
                    job_id: row.try_get("", "job_id")?,
                    status: row.try_get("", "status")?,
                    stage: row.try_get("", "current_stage")?,
                    changed: false,
                    error_class: None,
                    last_error: None,
                    attempts: None,
                    skip_reason: None,
                },
            ))
        })
        .collect::<Result<HashMap<Uuid, ItemState>, StoreError>>()?;

    let mut next = Vec::with_capacity(changes.len());
    let mut results = Vec::new();
    let mut stages: BTreeMap<(Uuid, i32), StageDelta> = BTreeMap::new();
    let mut jobs: BTreeMap<Uuid, JobDelta> = BTreeMap::new();
    for change in changes {
        let message = change.message();
        let stage = message.stage_index as i32;
        let Some(item) = items
            .get_mut(&message.item_id)
            .filter(|item| item.job_id == message.job_id && !item.status.is_terminal())
        else {
            next.push(None);
            continue;
        };
        if !matches!(change, Change::Cancel { .. }) && item.stage != stage {
            // Recorded by an earlier delivery: its next message may be lost, send it again.
            next.push((item.stage > stage).then_some(StageMessage {
                stage_index: item.stage as u32,
                attempt: 0,
                ..*message
            }));
            continue;
        }
        if let Change::Resume { .. } = change {
            // A result without its item moved on cannot be written (both change together).
            tracing::warn!(item_id = %message.item_id, stage, "stage result stored but item not advanced");
            next.push(None);
            continue;
        }
        // Only jobs with an item that moves get a delta (and so an event).
        let job = jobs.entry(message.job_id).or_insert_with(|| JobDelta {
            id: message.job_id,
            ..JobDelta::default()
        });
        let from = item.status;
        let mut follow = None;
        match change {
            Change::Resume { .. } => {} // handled above
            Change::Record {
                image_id,
                result,
                last_stage,
                ..
            } => {
                let stats = processed_at(&mut stages, message.job_id, stage);
                stats.input_tokens += result.input_tokens;
                stats.output_tokens += result.output_tokens;
                stats.cost_usd += result.cost_usd;
                job.cost_usd += result.cost_usd;
                job.input_tokens += result.input_tokens;
                job.output_tokens += result.output_tokens;
                job.billed_input_tokens += result.billed_input_tokens;
                job.billed_output_tokens += result.billed_output_tokens;
                if result.passed {
                    stats.passed += 1;
                } else {
                    stats.filtered_out += 1;
                }
                results.push(ResultRow {
                    id: Uuid::now_v7(),
                    job_id: message.job_id,
                    item_id: message.item_id,
                    image_id: *image_id,
                    stage_index: message.stage_index,
                    model: &result.model,
                    output_text: &result.output_text,
                    output_json: result.output_json.as_ref(),
                    passed: result.passed,
                    filter_reason: result.filter_reason.as_deref(),
                    finish_reason: result.finish_reason.as_deref(),
                    input_tokens: result.input_tokens,
                    output_tokens: result.output_tokens,
                    billed_input_tokens: result.billed_input_tokens,
                    billed_output_tokens: result.billed_output_tokens,
                    latency_ms: result.latency_ms,
                    cost_usd: result.cost_usd,
                });
                if result.passed && !last_stage {
                    item.status = ItemStatus::Running;
                    item.stage = stage + 1;
                    follow = Some(message.next_stage());
                } else if result.passed {
                    item.status = ItemStatus::Passed;
                } else {
                    item.status = ItemStatus::FilteredOut;
                }
            }
            Change::Fail { class, reason, .. } => {
                let stats = processed_at(&mut stages, message.job_id, stage);
                stats.failed += 1;
                item.status = ItemStatus::Failed;
                item.error_class = Some(*class);
                item.last_error = Some(reason.clone());
            }
            Change::Cancel { .. } => item.status = ItemStatus::Cancelled,
            Change::Skip { .. } => {
                item.status = ItemStatus::Skipped;
                item.skip_reason = Some(StopReason::BudgetExhausted);
            }
        }
        item.changed = true;
        if !matches!(change, Change::Cancel { .. } | Change::Skip { .. }) {
            item.attempts = Some(message.attempt as i32 + 1);
        }
        let at_stage = match change {
            Change::Cancel { .. } => item.stage.max(0) as u32,
            _ => message.stage_index,
        };
        job.moved(message.item_id, at_stage, from, item.status);
        next.push(follow);
    }

    let item_rows: Vec<ItemRow> = items
        .iter()
        .filter(|(_, item)| item.changed)
        .map(|(id, item)| ItemRow {
            id: *id,
            status: item.status,
            stage: item.stage,
            finished: item.status.is_terminal(),
            error_class: item.error_class,
            last_error: item.last_error.as_deref(),
            attempts: item.attempts,
            skip_reason: item.skip_reason,
        })
        .collect();
    let mut events = Vec::new();
    if !item_rows.is_empty() {
        let job_deltas: Vec<&JobDelta> = jobs.values().collect();
        let stage_deltas: Vec<&StageDelta> = stages.values().collect();
        let json =
            |v: serde_json::Result<serde_json::Value>| -> Result<sea_orm::Value, StoreError> {
                Ok(v.map_err(|e| {
                    StoreError::Database(sea_orm::DbErr::Custom(format!("encoding a batch: {e}")))
                })?
                .into())
            };
        let values = vec![
            json(serde_json::to_value(&results))?,
            json(serde_json::to_value(&item_rows))?,
            json(serde_json::to_value(&stage_deltas))?,
            json(serde_json::to_value(&job_deltas))?,
        ];
        let rows = txn.query_all_raw(stmt(WRITE_BATCH, values)).await?;
        for row in &rows {
            let job_id: Uuid = row.try_get("", "id")?;
            let items = jobs
                .get_mut(&job_id)
                .map(|delta| std::mem::take(&mut delta.items))
                .unwrap_or_default();
            events.push(job_event(row, job_id, items)?);
        }
    }
    txn.commit().await?;
    Ok(Applied { next, events })
}

/// Writes a batch: result rows (a row already there wins), item states, per-stage counters,
/// and per-job counters (tokens and cost too) with the job's end when nothing is left pending
/// or running. Each
/// job's event sequence number moves by one per batch. `$1`..`$4` are JSON arrays.
const WRITE_BATCH: &str = r#"
WITH new_results AS (
    INSERT INTO job_results (id, job_id, item_id, image_id, stage_index, model, output_text,
        output_json, passed, filter_reason, finish_reason, input_tokens, output_tokens,
        billed_input_tokens, billed_output_tokens, latency_ms, cost_usd, created_at)
    SELECT id, job_id, item_id, image_id, stage_index, model, output_text, output_json, passed,
        filter_reason, finish_reason, input_tokens, output_tokens, billed_input_tokens,
        billed_output_tokens, latency_ms, cost_usd, now()
    FROM jsonb_to_recordset($1::jsonb) AS r(id uuid, job_id uuid, item_id uuid, image_id uuid,
        stage_index int, model text, output_text text, output_json jsonb, passed bool,
        filter_reason text, finish_reason text, input_tokens bigint, output_tokens bigint,
        billed_input_tokens bigint, billed_output_tokens bigint, latency_ms int,
        cost_usd double precision)
    ON CONFLICT (item_id, stage_index) DO NOTHING
    RETURNING 1
),
moved_items AS (
    UPDATE job_items i SET status = u.status, current_stage = u.stage,
        error_class = coalesce(u.error_class, i.error_class),
        last_error = coalesce(u.last_error, i.last_error),
        attempts = coalesce(u.attempts, i.attempts), updated_at = now(),
        skip_reason = coalesce(u.skip_reason, i.skip_reason),
        finished_at = CASE WHEN u.finished THEN now() ELSE i.finished_at END
    FROM jsonb_to_recordset($2::jsonb) AS u(id uuid, status text, stage int, finished bool,
        error_class text, last_error text, attempts int, skip_reason text)
    WHERE i.id = u.id
    RETURNING 1
),
stage_counts AS (
    UPDATE job_stage_stats s SET processed = s.processed + d.processed,
        passed = s.passed + d.passed, filtered_out = s.filtered_out + d.filtered_out,
        failed = s.failed + d.failed, input_tokens = s.input_tokens + d.input_tokens,
        output_tokens = s.output_tokens + d.output_tokens, cost_usd = s.cost_usd + d.cost_usd
    FROM jsonb_to_recordset($3::jsonb) AS d(job_id uuid, stage_index int, processed int,
        passed int, filtered_out int, failed int, input_tokens bigint, output_tokens bigint,
        cost_usd double precision)
    WHERE s.job_id = d.job_id AND s.stage_index = d.stage_index
    RETURNING 1
)
-- Every expression on the right reads the row as it was before this UPDATE.
UPDATE jobs j SET
    pending_items = j.pending_items + d.pending,
    running_items = j.running_items + d.running,
    passed_items = j.passed_items + d.passed,
    filtered_out_items = j.filtered_out_items + d.filtered_out,
    failed_items = j.failed_items + d.failed,
    cancelled_items = j.cancelled_items + d.cancelled,
    skipped_items = j.skipped_items + d.skipped,
    input_tokens = j.input_tokens + d.input_tokens,
    output_tokens = j.output_tokens + d.output_tokens,
    billed_input_tokens = j.billed_input_tokens + d.billed_input_tokens,
    billed_output_tokens = j.billed_output_tokens + d.billed_output_tokens,
    cost_usd = j.cost_usd + d.cost_usd,
    event_seq = j.event_seq + 1,
    updated_at = now(),
    started_at = coalesce(j.started_at, now()),
    -- Items that never ran (cancelled, skipped) do not count for or against the job: it failed
    -- when every item that ran failed.
    status = CASE
        WHEN j.status IN ('queued', 'running')
             AND j.pending_items + d.pending = 0 AND j.running_items + d.running = 0 THEN
            CASE WHEN j.failed_items + d.failed > 0
                      AND j.failed_items + d.failed >= j.total_items - j.cancelled_items - d.cancelled
                          - j.skipped_items - d.skipped THEN 'failed'
                 WHEN j.failed_items + d.failed > 0 THEN 'completed_with_errors'
                 ELSE 'completed' END
        WHEN j.status = 'queued' THEN 'running'
        ELSE j.status END,
    -- A job that ends with items skipped says why, even when its last item was skipped before
    -- store::budget::stop_if_exhausted ran for it (skipping is only ever for its budget).
    stop_reason = CASE
        WHEN j.status IN ('queued', 'running') AND j.stop_reason IS NULL
             AND j.pending_items + d.pending = 0 AND j.running_items + d.running = 0
             AND j.skipped_items + d.skipped > 0 THEN 'budget_exhausted'
        ELSE j.stop_reason END,
    finished_at = CASE
        WHEN j.status IN ('queued', 'running')
             AND j.pending_items + d.pending = 0 AND j.running_items + d.running = 0
            -- The moment the last outcome is written, not the transaction's start.
            THEN clock_timestamp()
        ELSE j.finished_at END
FROM jsonb_to_recordset($4::jsonb) AS d(id uuid, pending int, running int, passed int,
    filtered_out int, failed int, cancelled int, skipped int, input_tokens bigint,
    output_tokens bigint, billed_input_tokens bigint, billed_output_tokens bigint,
    cost_usd double precision)
WHERE j.id = d.id
RETURNING j.id, j.tenant_id, j.status, j.event_seq, j.total_items, j.pending_items, j.running_items,
    j.passed_items, j.filtered_out_items, j.failed_items, j.cancelled_items, j.skipped_items,
    j.stop_reason
"#;

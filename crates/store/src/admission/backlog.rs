//! What the scheduler reads on every pass: the unfinished jobs, their items in the window and
//! whether they have more to release, with their tenants' shares.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};
use domain::job::Priority;
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::{StoreError, work::stmt};

/// One unfinished job as the scheduler sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct BacklogJob {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub priority: Priority,
    pub created_at: DateTime<FixedOffset>,
    /// Stages of its pipeline: the most calls one item can make.
    pub stages: u32,
    /// Items released and not finished.
    pub in_window: u32,
    /// Items not released yet (written or still to be written).
    pub unreleased: bool,
    /// Spend at or past its cap, and not stopped yet.
    pub over_budget: bool,
    /// Stopped (its cap was reached): nothing more is released.
    pub stopped: bool,
    /// The submission's trace context, which releases continue.
    pub traceparent: Option<String>,
}

impl BacklogJob {
    /// Whether the scheduler may release more of it.
    pub fn releasable(&self) -> bool {
        self.unreleased && !self.stopped && !self.over_budget
    }
}

/// A tenant with unfinished jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantShare {
    pub tenant_id: Uuid,
    /// Weight in the fair share (1 by default).
    pub weight: u32,
    /// Optional cap on its calls per minute.
    pub calls_per_minute: Option<u32>,
    /// Its items in the window, over all its jobs.
    pub in_window: u32,
}

/// Every unfinished job, in release order (tenant, then priority high first, then oldest
/// first), and the tenants they belong to.
#[derive(Debug, Clone, Default)]
pub struct Backlog {
    pub jobs: Vec<BacklogJob>,
    pub tenants: BTreeMap<Uuid, TenantShare>,
}

impl Backlog {
    /// Items in the window over every tenant.
    pub fn in_window(&self) -> u32 {
        self.tenants.values().map(|t| t.in_window).sum()
    }

    /// Whether `tenant` has a job with more to release.
    pub fn has_releasable(&self, tenant: Uuid) -> bool {
        self.jobs
            .iter()
            .any(|job| job.tenant_id == tenant && job.releasable())
    }
}

/// Reads the backlog: one statement over the unfinished jobs (the `jobs_unfinished` index) and
/// their window and unreleased items (the partial indexes `job_items_in_window` and
/// `job_items_unreleased`).
pub async fn backlog<C: ConnectionTrait>(db: &C) -> Result<Backlog, StoreError> {
    let rows = db
        .query_all_raw(stmt(
            r#"SELECT j.id, j.tenant_id, j.priority, j.created_at,
                   jsonb_array_length(j.pipeline_snapshot->'stages') AS stages,
                   (SELECT count(*) FROM job_items i WHERE i.job_id = j.id
                      AND i.released_at IS NOT NULL AND i.status IN ('pending', 'running')) AS in_window,
                   (j.materialized_items < j.total_items OR EXISTS (
                      SELECT 1 FROM job_items i WHERE i.job_id = j.id
                        AND i.status = 'pending' AND i.released_at IS NULL)) AS unreleased,
                   (j.stop_reason IS NULL AND j.max_cost_usd IS NOT NULL
                      AND j.cost_usd >= j.max_cost_usd) AS over_budget,
                   j.stop_reason IS NOT NULL AS stopped, j.traceparent,
                   t.share_weight, t.calls_per_minute
               FROM jobs j JOIN tenants t ON t.id = j.tenant_id
               WHERE j.status IN ('queued', 'running')"#,
            vec![],
        ))
        .await?;
    let mut backlog = Backlog::default();
    for row in &rows {
        let job = BacklogJob {
            id: row.try_get("", "id")?,
            tenant_id: row.try_get("", "tenant_id")?,
            priority: row.try_get("", "priority")?,
            created_at: row.try_get("", "created_at")?,
            stages: row.try_get::<i32>("", "stages")?.max(1) as u32,
            in_window: row.try_get::<i64>("", "in_window")? as u32,
            unreleased: row.try_get("", "unreleased")?,
            over_budget: row.try_get("", "over_budget")?,
            stopped: row.try_get("", "stopped")?,
            traceparent: row.try_get("", "traceparent")?,
        };
        let tenant = backlog.tenants.entry(job.tenant_id).or_insert(TenantShare {
            tenant_id: job.tenant_id,
            weight: row.try_get::<i32>("", "share_weight")?.max(1) as u32,
            calls_per_minute: row
                .try_get::<Option<i32>>("", "calls_per_minute")?
                .map(|cap| cap.max(1) as u32),
            in_window: 0,
        });
        tenant.in_window += job.in_window;
        backlog.jobs.push(job);
    }
    backlog.jobs.sort_by(|a, b| {
        (
            a.tenant_id,
            std::cmp::Reverse(a.priority.amqp_priority()),
            a.created_at,
            a.id,
        )
            .cmp(&(
                b.tenant_id,
                std::cmp::Reverse(b.priority.amqp_priority()),
                b.created_at,
                b.id,
            ))
    });
    Ok(backlog)
}

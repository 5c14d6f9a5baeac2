//! Job events: what workers (and the api, for cancellations) publish on the events topic
//! exchange after a change is durable, and what `GET /api/jobs/{id}/events` streams.
//!
//! Every event carries the job's counters after the change and the job's `seq`, a number the
//! database increments with every change, so a reader can order events from many workers and
//! drop ones older than what it has already shown. It also names the job's tenant, so a
//! tenant-wide stream filters events without a lookup per event.
//!
//! `counts.skipped` and `stop_reason` came later than version 3's first readers: both default
//! when absent (0, none), so events with and without them decode alike and the version stays.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::job::{ItemStatus, JobStatus, StopReason};

pub const JOB_EVENT_VERSION: u32 = 3;

/// AMQP `type` property of job events.
pub const JOB_EVENT_KIND: &str = "job_event.v3";

/// Counters of a job's items by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobCounts {
    pub total: i32,
    pub pending: i32,
    pub running: i32,
    pub passed: i32,
    pub filtered_out: i32,
    pub failed: i32,
    pub cancelled: i32,
    /// Never analysed: the job stopped first (its `stop_reason`), including items it had not
    /// written yet.
    #[serde(default)]
    #[schema(required = true)]
    pub skipped: i32,
}

/// One item's move in a [`JobEventKind::Progress`] event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ItemProgress {
    pub item_id: Uuid,
    /// The stage the item finished (or, when cancelled, the stage it was at).
    pub stage_index: u32,
    /// `running` when the item moves on to the next stage; else its terminal state.
    pub item_status: ItemStatus,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum JobEventKind {
    /// The job was accepted (its `seq` is 0: every later change has a higher one).
    Created,
    /// Items finished stages: a worker writes its outcomes in batches, and each batch makes
    /// one event per job. When the job's `status` is terminal, this was its last change.
    Progress { items: Vec<ItemProgress> },
    /// The job was cancelled: workers stop its work.
    CancelRequested,
}

/// One job event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobEvent {
    pub v: u32,
    pub job_id: Uuid,
    /// The tenant the job belongs to.
    pub tenant_id: Uuid,
    /// Increases with every change of the job.
    pub seq: i64,
    #[serde(flatten)]
    pub kind: JobEventKind,
    pub status: JobStatus,
    pub counts: JobCounts,
    /// Why the job stopped starting calls before all its items were analysed, once it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<StopReason>,
}

impl JobEvent {
    /// What the event is called on the wire (the routing key's last word, the SSE event name):
    /// `job_created`, `progress`, `cancel_requested`, or `job_finished` for the job's last
    /// change.
    pub fn name(&self) -> &'static str {
        match self.kind {
            JobEventKind::Created => "job_created",
            JobEventKind::CancelRequested => "cancel_requested",
            JobEventKind::Progress { .. } if self.is_final() => "job_finished",
            JobEventKind::Progress { .. } => "progress",
        }
    }

    /// The routing key on the events exchange: `job.<job_id>.<name>`.
    pub fn routing_key(&self) -> String {
        format!("job.{}.{}", self.job_id, self.name())
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes an event; `None` for anything that is not an event of this version.
    pub fn decode(bytes: &[u8]) -> Option<JobEvent> {
        serde_json::from_slice::<JobEvent>(bytes)
            .ok()
            .filter(|e| e.v == JOB_EVENT_VERSION)
    }

    /// True for the last event a job has.
    pub fn is_final(&self) -> bool {
        self.status.is_terminal()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_round_trips_with_its_type_flattened() {
        let event = JobEvent {
            v: JOB_EVENT_VERSION,
            job_id: Uuid::nil(),
            tenant_id: Uuid::nil(),
            seq: 7,
            kind: JobEventKind::Progress {
                items: vec![ItemProgress {
                    item_id: Uuid::nil(),
                    stage_index: 1,
                    item_status: ItemStatus::Passed,
                }],
            },
            status: JobStatus::Running,
            counts: JobCounts {
                total: 2,
                passed: 1,
                running: 1,
                ..JobCounts::default()
            },
            stop_reason: None,
        };
        let json: serde_json::Value = serde_json::from_slice(&event.encode()).unwrap();
        assert_eq!(json["type"], "progress");
        assert_eq!(json["items"][0]["item_status"], "passed");
        assert_eq!(JobEvent::decode(&event.encode()), Some(event.clone()));
        assert!(event.routing_key().ends_with(".progress"));
        let last = JobEvent {
            status: JobStatus::Completed,
            ..event
        };
        assert_eq!(last.name(), "job_finished");
    }

    #[test]
    fn an_event_without_skipped_counts_or_a_stop_reason_still_decodes() {
        let older = serde_json::json!({
            "v": JOB_EVENT_VERSION, "job_id": Uuid::nil(), "tenant_id": Uuid::nil(), "seq": 3,
            "type": "progress", "items": [], "status": "running",
            "counts": {"total": 2, "pending": 1, "running": 1, "passed": 0, "filtered_out": 0,
                       "failed": 0, "cancelled": 0},
        });
        let event = JobEvent::decode(older.to_string().as_bytes()).expect("an event");
        assert_eq!(event.counts.skipped, 0);
        assert_eq!(event.stop_reason, None);

        let stopped = JobEvent {
            stop_reason: Some(StopReason::BudgetExhausted),
            counts: JobCounts {
                skipped: 1,
                ..event.counts
            },
            ..event
        };
        let json: serde_json::Value = serde_json::from_slice(&stopped.encode()).unwrap();
        assert_eq!(json["stop_reason"], "budget_exhausted");
        assert_eq!(json["counts"]["skipped"], 1);
        assert_eq!(JobEvent::decode(&stopped.encode()), Some(stopped));
    }

    #[test]
    fn other_versions_and_garbage_are_not_events() {
        assert_eq!(JobEvent::decode(b"{\"v\":1}"), None);
        assert_eq!(JobEvent::decode(b"{\"v\":2}"), None);
        assert_eq!(JobEvent::decode(b"nope"), None);
    }
}

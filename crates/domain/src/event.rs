//! Job events: what workers (and the api, for cancellations) publish on the events topic
//! exchange after a change is durable, and what `GET /api/jobs/{id}/events` streams.
//!
//! Every event carries the job's counters after the change and the job's `seq`, a number the
//! database increments with every change, so a reader can order events from many workers and
//! drop ones older than what it has already shown.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::job::{ItemStatus, JobStatus};

pub const JOB_EVENT_VERSION: u32 = 1;

/// AMQP `type` property of job events.
pub const JOB_EVENT_KIND: &str = "job_event.v1";

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
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum JobEventKind {
    /// An item finished a stage and moves on to the next one.
    StageDone { item_id: Uuid, stage_index: u32 },
    /// An item reached a terminal state.
    ItemFinished {
        item_id: Uuid,
        stage_index: u32,
        item_status: ItemStatus,
    },
    /// The job reached a terminal state (the last event of a job).
    JobFinished,
    /// The job was cancelled: workers stop its work.
    CancelRequested,
}

/// One job event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobEvent {
    pub v: u32,
    pub job_id: Uuid,
    /// Increases with every change of the job.
    pub seq: i64,
    #[serde(flatten)]
    pub kind: JobEventKind,
    pub status: JobStatus,
    pub counts: JobCounts,
}

impl JobEvent {
    /// The routing key on the events exchange: `job.<job_id>.<type>`.
    pub fn routing_key(&self) -> String {
        let kind = match self.kind {
            JobEventKind::StageDone { .. } => "stage_done",
            JobEventKind::ItemFinished { .. } => "item_finished",
            JobEventKind::JobFinished => "job_finished",
            JobEventKind::CancelRequested => "cancel_requested",
        };
        format!("job.{}.{kind}", self.job_id)
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes an event; `None` for anything that is not a version-1 event.
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
            seq: 7,
            kind: JobEventKind::ItemFinished {
                item_id: Uuid::nil(),
                stage_index: 1,
                item_status: ItemStatus::Passed,
            },
            status: JobStatus::Running,
            counts: JobCounts {
                total: 2,
                passed: 1,
                running: 1,
                ..JobCounts::default()
            },
        };
        let json: serde_json::Value = serde_json::from_slice(&event.encode()).unwrap();
        assert_eq!(json["type"], "item_finished");
        assert_eq!(json["item_status"], "passed");
        assert_eq!(JobEvent::decode(&event.encode()), Some(event.clone()));
        assert!(event.routing_key().ends_with(".item_finished"));
    }

    #[test]
    fn other_versions_and_garbage_are_not_events() {
        assert_eq!(JobEvent::decode(b"{\"v\":2}"), None);
        assert_eq!(JobEvent::decode(b"nope"), None);
    }
}

//! Job and item statuses, priorities and error classes.
//!
//! Each enum has one string name per variant, written once (by `named_enum!`) and used
//! everywhere: JSON (serde), database columns, `as_str`/`FromStr` and logs (`Display`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use crate::names::ParseEnumError;
use crate::names::named_enum;

/// Largest AMQP priority any message uses; declare priority queues with
/// `x-max-priority` set to this.
pub const MAX_AMQP_PRIORITY: u8 = 2;

named_enum! {
    /// How urgently a job's messages are consumed relative to other jobs.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
    pub enum Priority as "priority" {
        /// Background work; runs when nothing else waits.
        Low = "low",
        /// The default.
        #[default]
        Normal = "normal",
        /// Jumps ahead of normal and low jobs.
        High = "high",
    }
}

impl Priority {
    /// The AMQP message priority (at most [`MAX_AMQP_PRIORITY`]). A classic queue keeps one
    /// sub-queue per level and publishing slows as levels grow, so there is one per priority.
    pub fn amqp_priority(self) -> u8 {
        match self {
            Self::Low => 0,
            Self::Normal => 1,
            Self::High => 2,
        }
    }
}

named_enum! {
    /// Where a job is: `queued → running → completed | completed_with_errors | failed | cancelled`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
    pub enum JobStatus as "job status" {
        /// Accepted; no item has started yet.
        Queued = "queued",
        /// At least one item has started and not all have finished.
        Running = "running",
        /// Every item finished without failing (passed or filtered out).
        Completed = "completed",
        /// Every item finished; some failed, some did not.
        CompletedWithErrors = "completed_with_errors",
        /// The job failed as a whole, e.g. every item failed.
        Failed = "failed",
        /// A user cancelled the job; unfinished items were cancelled.
        Cancelled = "cancelled",
    }
}

impl JobStatus {
    /// Whether the job is finished: no item will change by itself any more
    /// (only an explicit retry can bring failed items back).
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Queued | Self::Running)
    }
}

named_enum! {
    /// Where one image of a job is:
    /// `pending → running → passed | filtered_out | failed | cancelled | skipped`; a failed item may
    /// go back to `pending` on retry or re-drive, a skipped one on a retry that raises the job's
    /// budget cap.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
    pub enum ItemStatus as "item status" {
        /// Waiting for its first (or next retried) stage.
        Pending = "pending",
        /// A stage is being processed.
        Running = "running",
        /// Went through every stage and passed every filter.
        Passed = "passed",
        /// A stage's filter rejected it; the remaining stages were skipped.
        FilteredOut = "filtered_out",
        /// A stage failed for good (see the item's last error).
        Failed = "failed",
        /// The job was cancelled before the item finished.
        Cancelled = "cancelled",
        /// Never analysed: the job stopped first (see the item's `skip_reason`).
        Skipped = "skipped",
    }
}

named_enum! {
    /// Why a job stopped starting new calls before all its items were analysed; its items that
    /// had not started end `skipped` with the same reason.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
    pub enum StopReason as "stop reason" {
        /// The job's spend reached its `max_cost_usd`.
        BudgetExhausted = "budget_exhausted",
    }
}

impl ItemStatus {
    /// Whether the item is finished (a failed item is, until someone retries it).
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Pending | Self::Running)
    }
}

named_enum! {
    /// What a stage's filter decided for the image.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
    pub enum Verdict as "verdict" {
        /// The image went on to the next stage (or finished the pipeline).
        Passed = "passed",
        /// The stage's filter stopped the image here.
        FilteredOut = "filtered_out",
    }
}

impl Verdict {
    /// The verdict a result row records as its `passed` flag.
    pub fn from_passed(passed: bool) -> Self {
        if passed {
            Self::Passed
        } else {
            Self::FilteredOut
        }
    }

    /// Whether the image went on.
    pub fn passed(self) -> bool {
        self == Self::Passed
    }
}

named_enum! {
    /// Why a stage could not be processed, which decides what happens next.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
    pub enum ErrorClass as "error class" {
        /// Cohere said 429: wait and try again; never counts as an attempt.
        RateLimited = "rate_limited",
        /// 5xx, timeouts, dropped connections: retry with backoff, dead-letter after N attempts.
        Transient = "transient",
        /// Bad key or billing (401/402/403): stop consuming and keep the messages; never fail an item.
        Systemic = "systemic",
        /// The request itself is wrong (400, unknown model, bad image): fail the item, dead-letter it.
        Permanent = "permanent",
        /// The message could not even be decoded: dead-letter it without crashing.
        Poison = "poison",
    }
}

named_enum! {
    /// Where a dead letter is in its life: `open → redriven | purged`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
    pub enum DeadLetterStatus as "dead-letter status" {
        /// Drained and not dealt with yet.
        Open = "open",
        /// Its item was re-opened and its stage message published again.
        Redriven = "redriven",
        /// Marked as needing nothing more (the row, payload and headers are kept).
        Purged = "purged",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    use std::{fmt::Debug, str::FromStr};

    use serde::de::DeserializeOwned;

    /// `named_enum!` gives serde the names `as_str` and `FromStr` use.
    fn names_agree<T>(all: &[T], as_str: fn(T) -> &'static str)
    where
        T: Copy + Debug + PartialEq + Serialize + DeserializeOwned + FromStr<Err = ParseEnumError>,
    {
        for &value in all {
            let name = as_str(value);
            assert_eq!(serde_json::to_value(value).unwrap(), name);
            assert_eq!(serde_json::from_value::<T>(name.into()).unwrap(), value);
            assert_eq!(name.parse::<T>().unwrap(), value);
        }
    }

    #[test]
    fn every_enum_uses_its_names_in_serde_as_str_and_from_str() {
        names_agree(Priority::ALL, Priority::as_str);
        names_agree(JobStatus::ALL, JobStatus::as_str);
        names_agree(ItemStatus::ALL, ItemStatus::as_str);
        names_agree(StopReason::ALL, StopReason::as_str);
        names_agree(Verdict::ALL, Verdict::as_str);
        names_agree(ErrorClass::ALL, ErrorClass::as_str);
        names_agree(DeadLetterStatus::ALL, DeadLetterStatus::as_str);
    }

    #[test]
    fn multi_word_names_are_snake_case() {
        assert_eq!(
            JobStatus::CompletedWithErrors.as_str(),
            "completed_with_errors"
        );
        assert_eq!(ItemStatus::FilteredOut.to_string(), "filtered_out");
        assert_eq!(ErrorClass::RateLimited.as_str(), "rate_limited");
    }

    #[test]
    fn unknown_names_are_rejected_with_a_clear_message() {
        let err = "done".parse::<JobStatus>().unwrap_err();
        assert_eq!(err.to_string(), "unknown job status \"done\"");
        assert!("Passed".parse::<ItemStatus>().is_err());
        assert!("".parse::<ErrorClass>().is_err());
    }

    #[test]
    fn all_lists_every_variant_once() {
        assert_eq!(JobStatus::ALL.len(), 6);
        assert_eq!(ItemStatus::ALL.len(), 7);
        assert_eq!(ErrorClass::ALL.len(), 5);
        assert_eq!(Priority::ALL.len(), 3);
    }

    #[test]
    fn only_queued_and_running_jobs_are_unfinished() {
        let unfinished: Vec<_> = JobStatus::ALL.iter().filter(|s| !s.is_terminal()).collect();
        assert_eq!(unfinished, [&JobStatus::Queued, &JobStatus::Running]);
    }

    #[test]
    fn only_pending_and_running_items_are_unfinished() {
        let unfinished: Vec<_> = ItemStatus::ALL
            .iter()
            .filter(|s| !s.is_terminal())
            .collect();
        assert_eq!(unfinished, [&ItemStatus::Pending, &ItemStatus::Running]);
    }

    #[test]
    fn priorities_map_to_increasing_amqp_priorities_within_the_queue_maximum() {
        let levels: Vec<_> = Priority::ALL.iter().map(|p| p.amqp_priority()).collect();
        assert_eq!(levels, [0, 1, 2]);
        assert!(levels.iter().all(|&l| l <= MAX_AMQP_PRIORITY));
    }

    #[test]
    fn priority_defaults_to_normal() {
        assert_eq!(Priority::default(), Priority::Normal);
        assert_eq!(
            serde_json::from_str::<Priority>("\"high\"").unwrap(),
            Priority::High
        );
    }
}

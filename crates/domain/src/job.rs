//! Job and item statuses, priorities and error classes.
//!
//! Each enum has one string name used everywhere: JSON (serde), database columns
//! ([`as_str`](JobStatus::as_str) / [`FromStr`]) and logs ([`Display`](fmt::Display)).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A string that names no variant of the expected enum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} \"{value}\"")]
pub struct ParseEnumError {
    /// What was being parsed, e.g. `"job status"`.
    pub kind: &'static str,
    /// The rejected input.
    pub value: String,
}

/// Implements `as_str`, `ALL`, `Display` and `FromStr` from one table of names, so the
/// names cannot drift apart. Serde names are kept equal to these by the tests.
macro_rules! named_enum {
    ($ty:ident, $kind:literal, { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The stable name used in JSON, the database and logs.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = ParseEnumError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok($ty::$variant),)+
                    _ => Err(ParseEnumError { kind: $kind, value: s.to_owned() }),
                }
            }
        }
    };
}

/// Largest AMQP priority any message uses; declare priority queues with
/// `x-max-priority` set to this.
pub const MAX_AMQP_PRIORITY: u8 = 2;

/// How urgently a job's messages are consumed relative to other jobs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Background work; runs when nothing else waits.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Jumps ahead of normal and low jobs.
    High,
}

named_enum!(Priority, "priority", { Low => "low", Normal => "normal", High => "high" });

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

/// Where a job is: `queued → running → completed | completed_with_errors | failed | cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Accepted; no item has started yet.
    Queued,
    /// At least one item has started and not all have finished.
    Running,
    /// Every item finished without failing (passed or filtered out).
    Completed,
    /// Every item finished; some failed, some did not.
    CompletedWithErrors,
    /// The job failed as a whole, e.g. every item failed.
    Failed,
    /// A user cancelled the job; unfinished items were cancelled.
    Cancelled,
}

named_enum!(JobStatus, "job status", {
    Queued => "queued",
    Running => "running",
    Completed => "completed",
    CompletedWithErrors => "completed_with_errors",
    Failed => "failed",
    Cancelled => "cancelled",
});

impl JobStatus {
    /// Whether the job is finished: no item will change by itself any more
    /// (only an explicit retry can bring failed items back).
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Queued | Self::Running)
    }
}

/// Where one image of a job is:
/// `pending → running → passed | filtered_out | failed | cancelled`; a failed item may go back to
/// `pending` on retry or re-drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    /// Waiting for its first (or next retried) stage.
    Pending,
    /// A stage is being processed.
    Running,
    /// Went through every stage and passed every filter.
    Passed,
    /// A stage's filter rejected it; the remaining stages were skipped.
    FilteredOut,
    /// A stage failed for good (see the item's last error).
    Failed,
    /// The job was cancelled before the item finished.
    Cancelled,
}

named_enum!(ItemStatus, "item status", {
    Pending => "pending",
    Running => "running",
    Passed => "passed",
    FilteredOut => "filtered_out",
    Failed => "failed",
    Cancelled => "cancelled",
});

impl ItemStatus {
    /// Whether the item is finished (a failed item is, until someone retries it).
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Pending | Self::Running)
    }
}

/// Why a stage could not be processed, which decides what happens next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Cohere said 429: wait and try again; never counts as an attempt.
    RateLimited,
    /// 5xx, timeouts, dropped connections: retry with backoff, dead-letter after N attempts.
    Transient,
    /// Bad key or billing (401/402/403): stop consuming and keep the messages; never fail an item.
    Systemic,
    /// The request itself is wrong (400, unknown model, bad image): fail the item, dead-letter it.
    Permanent,
    /// The message could not even be decoded: dead-letter it without crashing.
    Poison,
}

named_enum!(ErrorClass, "error class", {
    RateLimited => "rate_limited",
    Transient => "transient",
    Systemic => "systemic",
    Permanent => "permanent",
    Poison => "poison",
});

/// Where a dead letter is in its life: `open → redriven | purged`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterStatus {
    /// Drained and not dealt with yet.
    Open,
    /// Its item was re-opened and its stage message published again.
    Redriven,
    /// Marked as needing nothing more (the row, payload and headers are kept).
    Purged,
}

named_enum!(DeadLetterStatus, "dead-letter status", {
    Open => "open",
    Redriven => "redriven",
    Purged => "purged",
});

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Checks that serde, `as_str` and `FromStr` agree on every name.
    fn names_agree<T>(all: &[T], as_str: fn(T) -> &'static str)
    where
        T: Copy + fmt::Debug + PartialEq + Serialize + FromStr<Err = ParseEnumError>,
    {
        for &value in all {
            let name = as_str(value);
            assert_eq!(serde_json::to_value(value).unwrap(), name);
            assert_eq!(name.parse::<T>().unwrap(), value);
        }
    }

    #[test]
    fn every_enum_uses_the_same_names_in_serde_as_str_and_from_str() {
        names_agree(Priority::ALL, Priority::as_str);
        names_agree(JobStatus::ALL, JobStatus::as_str);
        names_agree(ItemStatus::ALL, ItemStatus::as_str);
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
        assert_eq!(ItemStatus::ALL.len(), 6);
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

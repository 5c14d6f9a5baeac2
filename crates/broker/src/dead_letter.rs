//! What a dead letter carries besides its body: the headers the worker sets when it
//! dead-letters a message, read back by the re-driver when it drains the dead-letter queue.
//!
//! | header | value |
//! |---|---|
//! | `x-dead-letter-id` | uuid of this dead letter (the re-driver's row id, so a redelivery of the same dead letter is stored once) |
//! | `x-error-class` | `transient`, `permanent`, `poison`, ... ([`ErrorClass`]) |
//! | `x-error-message` | why, in words |
//! | `x-attempts` | deliveries of the stage that failed |
//! | `x-first-failed-at` | RFC 3339 time of the first failure |
//! | `x-dead-lettered-at` | RFC 3339 time it was dead-lettered |
//! | `x-tenant-id`, `x-job-id`, `x-item-id`, `x-stage-index`, `x-model` | what it was about, when known |
//! | `x-origin-traceparent` | the W3C `traceparent` of the failed message's first delivery ([`crate::trace`]) |
//!
//! The same `x-first-failed-at` header rides on a message through the delay queues, so the
//! first failure's time survives every retry.

use chrono::{DateTime, Utc};
use domain::job::ErrorClass;
use lapin::types::{AMQPValue, FieldTable, LongString};
use uuid::Uuid;

pub const DEAD_LETTER_ID: &str = "x-dead-letter-id";
pub const ERROR_CLASS: &str = "x-error-class";
pub const ERROR_MESSAGE: &str = "x-error-message";
pub const ATTEMPTS: &str = "x-attempts";
pub const FIRST_FAILED_AT: &str = "x-first-failed-at";
pub const DEAD_LETTERED_AT: &str = "x-dead-lettered-at";
pub const TENANT_ID: &str = "x-tenant-id";
pub const JOB_ID: &str = "x-job-id";
pub const ITEM_ID: &str = "x-item-id";
pub const STAGE_INDEX: &str = "x-stage-index";
pub const MODEL: &str = "x-model";
/// Set on stage messages that re-open a failed item (job retry, re-drive): the worker waits
/// for the re-opening transaction to commit instead of dropping the message as stale.
pub const REOPENED: &str = "x-reopened";

/// Longest error message carried (a header must stay well under the frame size).
const MAX_MESSAGE_BYTES: usize = 4_000;

/// One dead letter's description.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub id: Uuid,
    pub class: ErrorClass,
    pub message: String,
    pub attempts: u32,
    pub first_failed_at: DateTime<Utc>,
    pub dead_lettered_at: DateTime<Utc>,
    pub tenant_id: Option<Uuid>,
    pub job_id: Option<Uuid>,
    pub item_id: Option<Uuid>,
    pub stage_index: Option<u32>,
    pub model: Option<String>,
    /// The `traceparent` of the failed message's first delivery.
    pub origin_traceparent: Option<String>,
}

impl DeadLetter {
    /// A dead letter of `class` failing now for the first time (fill in the rest as known).
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        let now = Utc::now();
        Self {
            id: Uuid::now_v7(),
            class,
            message: truncate(message.into()),
            attempts: 1,
            first_failed_at: now,
            dead_lettered_at: now,
            tenant_id: None,
            job_id: None,
            item_id: None,
            stage_index: None,
            model: None,
            origin_traceparent: None,
        }
    }

    pub fn to_headers(&self) -> FieldTable {
        let mut headers = FieldTable::default();
        let text = |s: String| AMQPValue::LongString(LongString::from(s));
        headers.insert(DEAD_LETTER_ID.into(), text(self.id.to_string()));
        headers.insert(ERROR_CLASS.into(), text(self.class.as_str().to_string()));
        headers.insert(ERROR_MESSAGE.into(), text(self.message.clone()));
        headers.insert(
            ATTEMPTS.into(),
            AMQPValue::LongLongInt(self.attempts.into()),
        );
        headers.insert(
            FIRST_FAILED_AT.into(),
            text(self.first_failed_at.to_rfc3339()),
        );
        headers.insert(
            DEAD_LETTERED_AT.into(),
            text(self.dead_lettered_at.to_rfc3339()),
        );
        for (key, value) in [
            (TENANT_ID, self.tenant_id),
            (JOB_ID, self.job_id),
            (ITEM_ID, self.item_id),
        ] {
            if let Some(value) = value {
                headers.insert(key.into(), text(value.to_string()));
            }
        }
        if let Some(stage) = self.stage_index {
            headers.insert(STAGE_INDEX.into(), AMQPValue::LongLongInt(stage.into()));
        }
        if let Some(model) = &self.model {
            headers.insert(MODEL.into(), text(model.clone()));
        }
        if let Some(origin) = &self.origin_traceparent {
            headers.insert(
                crate::trace::ORIGIN_TRACEPARENT.into(),
                text(origin.clone()),
            );
        }
        headers
    }

    /// Reads the headers [`to_headers`](Self::to_headers) wrote. A message dead-lettered by
    /// the broker itself (rejected, or over a queue limit) has none of them: it reads as a
    /// `poison` dead letter whose message says so, with a fresh id.
    pub fn from_headers(headers: Option<&FieldTable>) -> Self {
        let empty = FieldTable::default();
        let headers = headers.unwrap_or(&empty);
        let class = string(headers, ERROR_CLASS).and_then(|c| c.parse::<ErrorClass>().ok());
        let Some(class) = class else {
            return Self::new(
                ErrorClass::Poison,
                "dead-lettered by the broker (rejected or expired) without a reason",
            );
        };
        let now = Utc::now();
        Self {
            id: uuid(headers, DEAD_LETTER_ID).unwrap_or_else(Uuid::now_v7),
            class,
            message: truncate(string(headers, ERROR_MESSAGE).unwrap_or_default()),
            attempts: integer(headers, ATTEMPTS)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(1),
            first_failed_at: time(headers, FIRST_FAILED_AT).unwrap_or(now),
            dead_lettered_at: time(headers, DEAD_LETTERED_AT).unwrap_or(now),
            tenant_id: uuid(headers, TENANT_ID),
            job_id: uuid(headers, JOB_ID),
            item_id: uuid(headers, ITEM_ID),
            stage_index: integer(headers, STAGE_INDEX).and_then(|n| u32::try_from(n).ok()),
            model: string(headers, MODEL),
            origin_traceparent: string(headers, crate::trace::ORIGIN_TRACEPARENT),
        }
    }
}

/// The first failure's time a message carries through the delay queues, if it failed before.
pub fn first_failed_at(headers: Option<&FieldTable>) -> Option<DateTime<Utc>> {
    headers.and_then(|h| time(h, FIRST_FAILED_AT))
}

/// Whether a stage message re-opens a failed item (see [`REOPENED`]).
pub fn is_reopened(headers: Option<&FieldTable>) -> bool {
    headers
        .and_then(|h| h.inner().get(REOPENED))
        .is_some_and(|v| matches!(v, AMQPValue::Boolean(true)))
}

fn truncate(mut message: String) -> String {
    if message.len() > MAX_MESSAGE_BYTES {
        let mut end = MAX_MESSAGE_BYTES;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    message
}

fn string(headers: &FieldTable, key: &str) -> Option<String> {
    match headers.inner().get(key)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_string()),
        _ => None,
    }
}

fn integer(headers: &FieldTable, key: &str) -> Option<i64> {
    match headers.inner().get(key)? {
        AMQPValue::LongLongInt(n) => Some(*n),
        AMQPValue::LongInt(n) => Some((*n).into()),
        AMQPValue::ShortInt(n) => Some((*n).into()),
        AMQPValue::ShortShortInt(n) => Some((*n).into()),
        AMQPValue::LongUInt(n) => Some((*n).into()),
        AMQPValue::ShortUInt(n) => Some((*n).into()),
        AMQPValue::ShortShortUInt(n) => Some((*n).into()),
        AMQPValue::Timestamp(n) => i64::try_from(*n).ok(),
        _ => None,
    }
}

fn uuid(headers: &FieldTable, key: &str) -> Option<Uuid> {
    string(headers, key)?.parse().ok()
}

fn time(headers: &FieldTable, key: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(&string(headers, key)?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn headers_round_trip() {
        let mut letter = DeadLetter::new(ErrorClass::Transient, "Cohere answered HTTP 503");
        letter.attempts = 5;
        letter.tenant_id = Some(Uuid::new_v4());
        letter.job_id = Some(Uuid::new_v4());
        letter.item_id = Some(Uuid::new_v4());
        letter.stage_index = Some(1);
        letter.model = Some("command-a-vision-07-2025".into());
        letter.origin_traceparent =
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into());
        letter.first_failed_at = DateTime::parse_from_rfc3339("2026-11-29T00:00:00.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        let read = DeadLetter::from_headers(Some(&letter.to_headers()));
        assert_eq!(read, letter);
    }

    #[test]
    fn a_message_the_broker_dead_lettered_reads_as_poison() {
        let read = DeadLetter::from_headers(None);
        assert_eq!(read.class, ErrorClass::Poison);
        assert!(read.message.contains("broker"));
        assert_eq!(read.job_id, None);
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let letter = DeadLetter::new(ErrorClass::Permanent, "é".repeat(3_000));
        assert!(letter.message.len() <= MAX_MESSAGE_BYTES);
        assert!(letter.message.chars().all(|c| c == 'é'));
    }
}

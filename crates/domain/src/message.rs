//! The stage message: "run stage N of this job on this item", carried by RabbitMQ.
//!
//! The wire format is versioned JSON, e.g.
//! `{"v":1,"job_id":"…","item_id":"…","stage_index":0,"attempt":0}`, so that workers of
//! different versions can tell a message they do not understand (dead-letter it as poison)
//! from one that is merely broken.

use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

/// The wire version [`StageMessage::encode`] writes and [`StageMessage::decode`] accepts.
pub const STAGE_MESSAGE_VERSION: u32 = 1;

/// Run stage `stage_index` of job `job_id` on item `item_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StageMessage {
    /// The job the item belongs to.
    pub job_id: Uuid,
    /// The job item (one image of the job).
    pub item_id: Uuid,
    /// Zero-based index into the job's pipeline snapshot.
    pub stage_index: u32,
    /// How many times this stage was already tried for this item (0 on the first try).
    pub attempt: u32,
}

/// Why a message body is not a usable [`StageMessage`]; all of these are poison.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The body is not JSON at all.
    #[error("message is not JSON: {0}")]
    NotJson(String),
    /// The body is a message of a version this build does not understand.
    #[error(
        "unsupported stage message version {0} (this build understands {STAGE_MESSAGE_VERSION})"
    )]
    UnsupportedVersion(u64),
    /// The body is JSON but the version or a field is missing or of the wrong type.
    #[error("invalid stage message: {0}")]
    Invalid(String),
}

/// Version 1 fields; unknown extra fields are ignored so a field can be added without a new
/// version as long as old workers may safely ignore it.
#[derive(Deserialize)]
struct WireV1 {
    job_id: Uuid,
    item_id: Uuid,
    stage_index: u32,
    attempt: u32,
}

impl StageMessage {
    /// The first try of the first stage.
    pub fn first(job_id: Uuid, item_id: Uuid) -> Self {
        Self {
            job_id,
            item_id,
            stage_index: 0,
            attempt: 0,
        }
    }

    /// The message for the next stage of the same item (first try).
    pub fn next_stage(self) -> Self {
        Self {
            stage_index: self.stage_index.saturating_add(1),
            attempt: 0,
            ..self
        }
    }

    /// The same stage again, one attempt later.
    pub fn next_attempt(self) -> Self {
        Self {
            attempt: self.attempt.saturating_add(1),
            ..self
        }
    }

    /// The message body: compact JSON in the current wire version.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::json!({
            "v": STAGE_MESSAGE_VERSION,
            "job_id": self.job_id,
            "item_id": self.item_id,
            "stage_index": self.stage_index,
            "attempt": self.attempt,
        })
        .to_string()
        .into_bytes()
    }

    /// Reads a message body; see [`DecodeError`] for what can be wrong.
    pub fn decode(bytes: &[u8]) -> Result<StageMessage, DecodeError> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| DecodeError::NotJson(e.to_string()))?;
        let Some(object) = value.as_object() else {
            return Err(DecodeError::Invalid("expected a JSON object".to_owned()));
        };
        match object.get("v") {
            None => return Err(DecodeError::Invalid("missing field `v`".to_owned())),
            Some(v) => match v.as_u64() {
                Some(1) => {}
                Some(other) => return Err(DecodeError::UnsupportedVersion(other)),
                None => {
                    return Err(DecodeError::Invalid(format!(
                        "field `v` must be a non-negative integer, got {v}"
                    )));
                }
            },
        }
        let wire: WireV1 =
            serde_json::from_value(value).map_err(|e| DecodeError::Invalid(e.to_string()))?;
        Ok(StageMessage {
            job_id: wire.job_id,
            item_id: wire.item_id,
            stage_index: wire.stage_index,
            attempt: wire.attempt,
        })
    }
}

/// AMQP `type` property of stage messages, so a consumer can tell message kinds apart
/// before decoding.
pub const STAGE_MESSAGE_KIND: &str = "stage.v1";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn sample() -> StageMessage {
        StageMessage {
            job_id: Uuid::from_u128(0x0194_0000_0000_7000_8000_0000_0000_0001),
            item_id: Uuid::from_u128(0x0194_0000_0000_7000_8000_0000_0000_0002),
            stage_index: 3,
            attempt: 2,
        }
    }

    #[test]
    fn a_message_survives_encoding_and_decoding() {
        let message = sample();
        assert_eq!(StageMessage::decode(&message.encode()).unwrap(), message);
    }

    #[test]
    fn the_wire_format_is_versioned_json() {
        let wire: Value = serde_json::from_slice(&sample().encode()).unwrap();
        assert_eq!(
            wire,
            json!({
                "v": 1,
                "job_id": "01940000-0000-7000-8000-000000000001",
                "item_id": "01940000-0000-7000-8000-000000000002",
                "stage_index": 3,
                "attempt": 2
            })
        );
    }

    #[test]
    fn an_unknown_version_is_rejected_with_its_number() {
        let mut wire: Value = serde_json::from_slice(&sample().encode()).unwrap();
        wire["v"] = json!(2);
        let err = StageMessage::decode(wire.to_string().as_bytes()).unwrap_err();
        assert_eq!(err, DecodeError::UnsupportedVersion(2));
        assert!(err.to_string().contains("version 2"));
    }

    #[test]
    fn garbage_is_rejected_as_not_json() {
        for garbage in [&b"\xff\xfe"[..], b"", b"{\"v\":1", b"hello"] {
            assert!(
                matches!(StageMessage::decode(garbage), Err(DecodeError::NotJson(_))),
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn json_with_missing_or_invalid_fields_is_rejected_as_invalid() {
        let good = json!({"v": 1, "job_id": Uuid::nil(), "item_id": Uuid::nil(), "stage_index": 0, "attempt": 0});
        let mut cases = vec![json!([1]), json!("v1")];
        for (key, bad) in [
            ("v", None),
            ("v", Some(json!("1"))),
            ("v", Some(json!(-1))),
            ("job_id", None),
            ("item_id", Some(json!("not-a-uuid"))),
            ("stage_index", Some(json!(-1))),
            ("attempt", Some(json!(1.5))),
        ] {
            let mut case = good.clone();
            match bad {
                Some(bad) => case[key] = bad,
                None => {
                    case.as_object_mut().unwrap().remove(key);
                }
            }
            cases.push(case);
        }
        for case in cases {
            let result = StageMessage::decode(case.to_string().as_bytes());
            assert!(
                matches!(result, Err(DecodeError::Invalid(_))),
                "{case}: {result:?}"
            );
        }
    }

    #[test]
    fn unknown_extra_fields_are_ignored() {
        let mut wire: Value = serde_json::from_slice(&sample().encode()).unwrap();
        wire["hint"] = json!("added later");
        assert_eq!(
            StageMessage::decode(wire.to_string().as_bytes()).unwrap(),
            sample()
        );
    }

    #[test]
    fn next_stage_starts_a_fresh_attempt_and_next_attempt_keeps_the_stage() {
        let message = sample();
        let next = message.next_stage();
        assert_eq!((next.stage_index, next.attempt), (4, 0));
        let retry = message.next_attempt();
        assert_eq!((retry.stage_index, retry.attempt), (3, 3));
        assert_eq!(retry.item_id, message.item_id);
        let first = StageMessage::first(message.job_id, message.item_id);
        assert_eq!((first.stage_index, first.attempt), (0, 0));
    }
}

//! Which dead letters a request is about, as the admin API and the CLI take it.

use chrono::{DateTime, Utc};
use domain::job::ErrorClass;
use serde::{Deserialize, Serialize};
use store::dead_letters::LetterFilter;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub use domain::job::DeadLetterStatus as LetterStatus;

/// Filters on dead letters, combined with AND; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
#[schema(example = json!({"job_id": "01936d6e-8f3a-7c1e-9b2a-3f4e5d6c7b8a", "error_class": "transient"}))]
pub struct DeadLetterFilter {
    /// One dead letter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_id: Option<Uuid>,
    /// Zero-based stage index the message was for.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(minimum = 0, maximum = 1000)]
    #[schema(minimum = 0, maximum = 1000)]
    pub stage_index: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_class: Option<ErrorClass>,
    /// On listing, absent means any status; on re-drive and purge, absent means `open`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<LetterStatus>,
    /// Dead-lettered at or after this instant (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// Dead-lettered before this instant (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
}

impl DeadLetterFilter {
    /// Checks what the types cannot: `since` not after `until`.
    pub fn check(&self) -> Result<(), String> {
        if let (Some(since), Some(until)) = (self.since, self.until)
            && since > until
        {
            return Err("since must not be after until".into());
        }
        Ok(())
    }

    /// This filter with `status` defaulting to `open` (what re-drives and purges act on).
    pub fn open_by_default(&self) -> Self {
        Self {
            status: Some(self.status.unwrap_or(LetterStatus::Open)),
            ..self.clone()
        }
    }

    /// The store's form of the filter.
    pub fn to_store(&self) -> LetterFilter {
        LetterFilter {
            id: self.id,
            job_id: self.job_id,
            tenant_id: self.tenant_id,
            item_id: self.item_id,
            stage_index: self.stage_index,
            error_class: self.error_class,
            status: self.status,
            since: self.since,
            until: self.until,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn re_drives_act_on_open_letters_unless_told_otherwise() {
        let filter = DeadLetterFilter::default();
        assert_eq!(filter.open_by_default().status, Some(LetterStatus::Open));
        let purged = DeadLetterFilter {
            status: Some(LetterStatus::Purged),
            ..Default::default()
        };
        assert_eq!(purged.open_by_default().status, Some(LetterStatus::Purged));
    }

    #[test]
    fn an_unknown_field_is_refused_rather_than_widening_the_filter() {
        let err = serde_json::from_str::<DeadLetterFilter>(r#"{"jobid": "x"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn since_after_until_is_refused() {
        let filter = DeadLetterFilter {
            since: Some("2026-11-29T00:00:00Z".parse().unwrap()),
            until: Some("2026-11-28T00:00:00Z".parse().unwrap()),
            ..Default::default()
        };
        assert!(filter.check().is_err());
    }

    #[test]
    fn statuses_match_the_store_names() {
        for status in [
            LetterStatus::Open,
            LetterStatus::Redriven,
            LetterStatus::Purged,
        ] {
            assert_eq!(status.as_str().parse::<LetterStatus>().unwrap(), status);
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
    }
}

//! The workers' circuit breakers as they record them in `circuit_breakers` (one row per worker
//! and model, written on every transition), read for the API's health report and the
//! re-driver's policy.

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseBackend, EntityTrait, Set, Statement, sea_query::OnConflict,
};

use crate::{StoreError, entities::circuit_breakers};

/// How late a live worker may be in recording that its open breaker turned half-open; an open
/// row older than its open period and this is one a stopped worker left behind.
const OPEN_ROW_GRACE_SECONDS: f64 = 30.0;

/// One model's breaker across the workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelBreaker {
    pub model: String,
    /// `closed`, `half_open` or `open`.
    pub state: String,
    /// When it entered this state.
    pub since: DateTime<Utc>,
    pub reason: Option<String>,
    /// When an open breaker will turn half-open.
    pub open_until: Option<DateTime<Utc>>,
}

impl ModelBreaker {
    pub fn is_open(&self) -> bool {
        self.state == "open"
    }

    /// Open because Cohere refused the key (HTTP 401 or 403): a person must fix the key.
    pub fn key_rejected(&self) -> bool {
        self.is_open() && self.reason.as_deref().is_some_and(names_a_refused_key)
    }
}

/// Whether a breaker's reason names a 401 or 403 answer. The worker records the call's error
/// (`Cohere answered HTTP 401: ...`) in the reason of a systemic opening.
fn names_a_refused_key(reason: &str) -> bool {
    ["HTTP 401", "HTTP 403"].iter().any(|status| {
        reason
            .match_indices(status)
            .any(|(at, _)| !reason[at + status.len()..].starts_with(|c: char| c.is_ascii_digit()))
    })
}

/// A worker's breaker for one model entered `state` (`closed`, `half_open` or `open`).
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    pub worker_id: &'a str,
    pub model: &'a str,
    pub state: &'a str,
    /// Why, in words.
    pub reason: &'a str,
    pub at: DateTime<Utc>,
    /// When an open breaker will turn half-open.
    pub open_until: Option<DateTime<Utc>>,
}

/// Records a transition: the worker's row for the model now says `change`.
pub async fn record<C: ConnectionTrait>(db: &C, change: Change<'_>) -> Result<(), StoreError> {
    use circuit_breakers::Column;
    let row = circuit_breakers::ActiveModel {
        worker_id: Set(change.worker_id.to_owned()),
        model: Set(change.model.to_owned()),
        state: Set(change.state.to_owned()),
        reason: Set(Some(change.reason.to_owned())),
        changed_at: Set(change.at.into()),
        open_until: Set(change.open_until.map(Into::into)),
    };
    circuit_breakers::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([Column::WorkerId, Column::Model])
                .update_columns([
                    Column::State,
                    Column::Reason,
                    Column::ChangedAt,
                    Column::OpenUntil,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// True when some worker's circuit breaker is open or half-open and changed within `window`:
/// Cohere may not be healthy yet. (A breaker row untouched for longer belongs to a worker that
/// is gone or quiet, and does not count.)
pub async fn tripped_within<C: ConnectionTrait>(
    db: &C,
    window: std::time::Duration,
) -> Result<bool, StoreError> {
    let seconds = window.as_secs_f64();
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            r#"SELECT EXISTS (
                   SELECT 1 FROM circuit_breakers
                   WHERE state IN ('open', 'half_open')
                     AND changed_at > now() - make_interval(secs => $1)
               ) AS tripped"#,
            [seconds.into()],
        ))
        .await?;
    Ok(match row {
        Some(row) => row.try_get::<bool>("", "tripped")?,
        None => false,
    })
}

/// Each model's breaker in its worst state across the workers (open, then half-open, then
/// closed; the latest change among equals). An open row whose open period (`open_until`, or
/// `max_open_seconds` after the change for rows without one) ended more than a grace period
/// ago is left out: its worker is gone, or it would have turned the breaker half-open.
pub async fn by_model<C: ConnectionTrait>(
    db: &C,
    max_open_seconds: u64,
) -> Result<Vec<ModelBreaker>, StoreError> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            r#"SELECT DISTINCT ON (model) model, state, reason, changed_at, open_until
               FROM circuit_breakers
               WHERE NOT (state = 'open'
                          AND coalesce(open_until, changed_at + make_interval(secs => $1))
                              < now() - make_interval(secs => $2))
               ORDER BY model,
                        CASE state WHEN 'open' THEN 0 WHEN 'half_open' THEN 1 ELSE 2 END,
                        changed_at DESC"#,
            [
                (max_open_seconds as f64).into(),
                OPEN_ROW_GRACE_SECONDS.into(),
            ],
        ))
        .await?;
    rows.iter()
        .map(|row| {
            Ok(ModelBreaker {
                model: row.try_get("", "model")?,
                state: row.try_get("", "state")?,
                since: row.try_get("", "changed_at")?,
                reason: row.try_get("", "reason")?,
                open_until: row.try_get("", "open_until")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_401_and_403_answers_are_refused_keys() {
        for reason in [
            "systemic failure: Cohere answered HTTP 401: invalid api token",
            "probe failed (systemic): Cohere answered HTTP 403",
        ] {
            assert!(names_a_refused_key(reason), "{reason}");
        }
        for reason in [
            "systemic failure: Cohere answered HTTP 402: payment required",
            "6 of the last 10 calls failed (last: Cohere answered HTTP 503)",
            "systemic failure: Cohere answered HTTP 4010",
            "open period of 5000 ms over: probing",
        ] {
            assert!(!names_a_refused_key(reason), "{reason}");
        }
    }
}

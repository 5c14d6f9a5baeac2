//! The rows of the cluster-wide rate limiter of Cohere calls: one per model in
//! `cohere_rate_limits`, shared by every worker replica. Which models are limited, and when to
//! ask, is `resilience::RateLimiter`'s business; these are its statements.
//!
//! A GCRA with a burst of 1. Each call reserves the model's next free slot in one statement
//! ([`reserve`]: `INSERT ... ON CONFLICT (model) DO UPDATE ... RETURNING`):
//!
//! ```text
//! slot         = greatest(next_slot_at, backoff_until, clock_timestamp())
//! next_slot_at = slot + interval
//! wait         = slot - clock_timestamp()
//! ```
//!
//! Concurrent reservations serialise on the row lock, so whatever the number of replicas,
//! slots are handed out exactly `interval` apart. After a 429, [`back_off`] pushes
//! `backoff_until` and `next_slot_at` to at least `now + Retry-After`, so every replica's next
//! reservation waits past it. The clock is the database's (`clock_timestamp()`), the single
//! clock of the cluster: the replicas' clock skew does not matter.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement, Value};

use crate::StoreError;

/// One reserved call slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    /// When the call may be made (the database's clock).
    pub slot: DateTime<Utc>,
    /// How long from now until then (zero if the slot is now).
    pub wait: Duration,
}

const RESERVE: &str = r#"
INSERT INTO cohere_rate_limits AS r (model, next_slot_at, updated_at)
VALUES ($1, clock_timestamp() + $2::bigint * interval '1 microsecond', clock_timestamp())
ON CONFLICT (model) DO UPDATE
SET next_slot_at = greatest(r.next_slot_at, r.backoff_until, clock_timestamp())
                   + $2::bigint * interval '1 microsecond',
    updated_at = clock_timestamp()
RETURNING r.next_slot_at - $2::bigint * interval '1 microsecond' AS slot,
          round(extract(epoch FROM (r.next_slot_at - $2::bigint * interval '1 microsecond'
                                    - clock_timestamp())) * 1000000)::bigint AS wait_micros
"#;

const BACK_OFF: &str = r#"
WITH t AS (SELECT clock_timestamp() + $2::bigint * interval '1 microsecond' AS until)
INSERT INTO cohere_rate_limits AS r (model, next_slot_at, backoff_until, updated_at)
SELECT $1, t.until, t.until, clock_timestamp() FROM t
ON CONFLICT (model) DO UPDATE
SET backoff_until = greatest(r.backoff_until, EXCLUDED.backoff_until),
    next_slot_at = greatest(r.next_slot_at, EXCLUDED.backoff_until),
    updated_at = clock_timestamp()
"#;

const READ_BACKOFF: &str = r#"
SELECT greatest(backoff_until, now.t) AS slot,
       round(extract(epoch FROM (greatest(backoff_until, now.t) - now.t)) * 1000000)::bigint AS wait_micros
FROM cohere_rate_limits, (SELECT clock_timestamp() AS t) AS now
WHERE model = $1
"#;

/// Reserves the next call slot of `model`, `interval` after the one before it.
pub async fn reserve<C: ConnectionTrait>(
    db: &C,
    model: &str,
    interval: Duration,
) -> Result<Reservation, StoreError> {
    let reserved = query(db, RESERVE, [Value::from(model), micros(interval)]).await?;
    // An upsert with RETURNING always returns its row.
    reserved.ok_or(StoreError::NotFound)
}

/// After a 429 for `model`: no replica's call slot for it starts before `now + wait`. Never
/// shortens a back-off already in place.
pub async fn back_off<C: ConnectionTrait>(
    db: &C,
    model: &str,
    wait: Duration,
) -> Result<(), StoreError> {
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        BACK_OFF,
        [Value::from(model), micros(wait)],
    );
    db.execute_raw(statement).await?;
    Ok(())
}

/// The end of `model`'s back-off (now, when it is over) without reserving anything; `None`
/// when the model has no row.
pub async fn backoff<C: ConnectionTrait>(
    db: &C,
    model: &str,
) -> Result<Option<Reservation>, StoreError> {
    query(db, READ_BACKOFF, [Value::from(model)]).await
}

fn micros(duration: Duration) -> Value {
    Value::from(i64::try_from(duration.as_micros()).unwrap_or(i64::MAX))
}

async fn query<C: ConnectionTrait>(
    db: &C,
    sql: &str,
    values: impl IntoIterator<Item = Value>,
) -> Result<Option<Reservation>, StoreError> {
    let statement = Statement::from_sql_and_values(DatabaseBackend::Postgres, sql, values);
    let Some(row) = db.query_one_raw(statement).await? else {
        return Ok(None);
    };
    let slot: DateTime<Utc> = row.try_get("", "slot")?;
    let wait_micros: i64 = row.try_get("", "wait_micros")?;
    let wait = Duration::from_micros(u64::try_from(wait_micros).unwrap_or(0));
    Ok(Some(Reservation { slot, wait }))
}

//! The cluster-wide rate limiter of Cohere calls, in PostgreSQL: one row per model in
//! `cohere_rate_limits`, shared by every worker replica.
//!
//! # How it works
//!
//! A GCRA with a burst of 1. Each call reserves the model's next free slot in one statement
//! (`INSERT ... ON CONFLICT (model) DO UPDATE ... RETURNING`):
//!
//! ```text
//! slot         = greatest(next_slot_at, backoff_until, clock_timestamp())
//! next_slot_at = slot + 60 s / rpm
//! wait         = slot - clock_timestamp()
//! ```
//!
//! and the caller sleeps `wait` before calling ([`RateLimiter::acquire`]). Concurrent
//! reservations serialise on the row lock, so whatever the number of replicas, slots are handed
//! out exactly `60 s / rpm` apart. A reservation is a commitment: a caller that gives up
//! while waiting (a cancelled job) leaves its slot unused, which only errs on the safe side.
//! Waits are not capped here: if far more work is queued than the limit lets through, waits
//! grow, and a caller that would rather requeue than sleep long can look at the returned wait.
//!
//! After a 429, [`RateLimiter::back_off`] pushes `backoff_until` and `next_slot_at` to at least
//! `now + Retry-After`, so every replica's next reservation waits past it.
//!
//! # Why PostgreSQL, not Redis
//!
//! - PostgreSQL is already a hard dependency of every worker, and durable; Redis would be a
//!   new service to deploy, secure, monitor and keep available, for this alone.
//! - The load is small: one single-row `UPDATE` per Cohere call, at Cohere's rates (tens to a
//!   few thousand calls per minute), is far below what one row can take (thousands of updates
//!   per second, each a few tens of microseconds under the row lock).
//! - The limiter's clock is the database's (`clock_timestamp()`), the single clock of the
//!   cluster: the replicas' clock skew does not matter.
//!
//! # Models without a configured limit
//!
//! They cost no database round trip: [`RateLimiter::reserve`] returns zero at once, **unless
//! this process itself saw a 429 for the model recently** (it called [`RateLimiter::back_off`]
//! within the back-off plus [`UNLIMITED_WATCH`]): then it reads the row's `backoff_until` (a
//! plain `SELECT`, not a reservation) and waits for it, picking up the other replicas'
//! back-offs meanwhile. The trade-off: a replica that has not had a 429 for the model yet keeps
//! calling until it gets its own, then joins the back-off. That costs one extra 429 per replica
//! per episode, which is cheap (a 429 never counts as an attempt), while the common case, no
//! limit and no 429, costs nothing. Configure a limit for a model that regularly hits 429s.

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, Statement, Value};

/// How long after a back-off ends this process keeps checking the row of a model without a
/// limit (see the module documentation).
pub const UNLIMITED_WATCH: Duration = Duration::from_secs(5 * 60);

/// One reserved call slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    /// When the call may be made (the database's clock).
    pub slot: DateTime<Utc>,
    /// How long from now until then (zero if the slot is now).
    pub wait: Duration,
}

type Limits = dyn Fn(&str) -> Option<u32> + Send + Sync;

/// The cluster-wide limiter. Clones share the same state (an `Arc` inside).
#[derive(Clone)]
pub struct RateLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    limits: Box<Limits>,
    /// Models without a limit that this process backed off, and until when to keep reading
    /// their row.
    watched: Mutex<HashMap<String, Instant>>,
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter").finish_non_exhaustive()
    }
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

impl RateLimiter {
    /// A limiter on `db` with `limits(model)` calls per minute for each model (`None` or `0`:
    /// no limit).
    pub fn new(
        db: DatabaseConnection,
        limits: impl Fn(&str) -> Option<u32> + Send + Sync + 'static,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                limits: Box::new(limits),
                watched: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// A limiter with the limits of the settings
    /// ([`requests_per_minute_for`](settings::CohereSettings::requests_per_minute_for)).
    pub fn from_settings(db: DatabaseConnection, settings: &settings::CohereSettings) -> Self {
        // Only the limits: the API key stays where it is.
        let limits = settings::CohereSettings {
            requests_per_minute: settings.requests_per_minute,
            model_requests_per_minute: settings.model_requests_per_minute.clone(),
            ..Default::default()
        };
        Self::new(db, move |model| limits.requests_per_minute_for(model))
    }

    /// The limit of `model` in calls per minute, if it has one.
    pub fn limit_for(&self, model: &str) -> Option<u32> {
        (self.inner.limits)(model).filter(|rpm| *rpm > 0)
    }

    /// Reserves the next call slot of `model` and returns how long to wait for it. A model
    /// without a limit gets zero with no database round trip (unless this process backed it
    /// off recently: see the module documentation).
    pub async fn reserve(&self, model: &str) -> Result<Duration, DbErr> {
        Ok(self
            .reserve_slot(model)
            .await?
            .map_or(Duration::ZERO, |r| r.wait))
    }

    /// As [`RateLimiter::reserve`], with the slot itself; `None` when the database was not
    /// asked (no limit, no recent back-off).
    pub async fn reserve_slot(&self, model: &str) -> Result<Option<Reservation>, DbErr> {
        match self.limit_for(model) {
            Some(rpm) => {
                let interval_micros = 60_000_000 / i64::from(rpm);
                self.query(RESERVE, model, Some(interval_micros)).await
            }
            None if self.watching(model) => self.query(READ_BACKOFF, model, None).await,
            None => Ok(None),
        }
    }

    /// Reserves a slot and sleeps until it; returns the time slept.
    pub async fn acquire(&self, model: &str) -> Result<Duration, DbErr> {
        let wait = self.reserve(model).await?;
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Ok(wait)
    }

    /// After a 429 for `model`: no replica's call slot for it starts before `now + wait` (the
    /// server's `Retry-After`, or a default the caller picks; clamp it first). Never shortens
    /// a back-off already in place.
    pub async fn back_off(&self, model: &str, wait: Duration) -> Result<(), DbErr> {
        if self.limit_for(model).is_none() {
            let until = Instant::now() + wait + UNLIMITED_WATCH;
            let mut watched = self.watched();
            let entry = watched.entry(model.to_owned()).or_insert(until);
            *entry = (*entry).max(until);
        }
        let micros = i64::try_from(wait.as_micros()).unwrap_or(i64::MAX);
        let statement = Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            BACK_OFF,
            [Value::from(model), Value::from(micros)],
        );
        self.inner.db.execute_raw(statement).await?;
        tracing::info!(
            model,
            wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            "Cohere rate limit: every replica backs off"
        );
        Ok(())
    }

    fn watched(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.inner
            .watched
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether this process still reads the row of `model` (without a limit) for back-offs.
    fn watching(&self, model: &str) -> bool {
        let mut watched = self.watched();
        match watched.get(model) {
            Some(until) if *until > Instant::now() => true,
            Some(_) => {
                watched.remove(model);
                false
            }
            None => false,
        }
    }

    async fn query(
        &self,
        sql: &str,
        model: &str,
        interval_micros: Option<i64>,
    ) -> Result<Option<Reservation>, DbErr> {
        let mut values = vec![Value::from(model)];
        values.extend(interval_micros.map(Value::from));
        let statement = Statement::from_sql_and_values(DatabaseBackend::Postgres, sql, values);
        let Some(row) = self.inner.db.query_one_raw(statement).await? else {
            return Ok(None);
        };
        let slot: DateTime<Utc> = row.try_get("", "slot")?;
        let wait_micros: i64 = row.try_get("", "wait_micros")?;
        let wait = Duration::from_micros(u64::try_from(wait_micros).unwrap_or(0));
        Ok(Some(Reservation { slot, wait }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_model_without_a_limit_never_touches_the_database() {
        // A disconnected database fails every query: reaching it would be an error.
        let limiter = RateLimiter::new(DatabaseConnection::default(), |model| {
            (model == "limited").then_some(600)
        });
        assert_eq!(
            limiter.reserve("free").await.expect("no query"),
            Duration::ZERO
        );
        assert_eq!(
            limiter.acquire("free").await.expect("no query"),
            Duration::ZERO
        );
        assert!(limiter.reserve("limited").await.is_err(), "this one asks");
    }

    #[tokio::test]
    async fn a_zero_limit_means_no_limit() {
        let limiter = RateLimiter::new(DatabaseConnection::default(), |_| Some(0));
        assert_eq!(limiter.limit_for("m"), None);
        assert_eq!(
            limiter.reserve("m").await.expect("no query"),
            Duration::ZERO
        );
    }

    #[tokio::test]
    async fn a_back_off_makes_this_process_read_the_row_of_an_unlimited_model() {
        let limiter = RateLimiter::new(DatabaseConnection::default(), |_| None);
        // The write fails (no database), but the process still remembers to look.
        assert!(limiter.back_off("m", Duration::from_secs(1)).await.is_err());
        assert!(
            limiter.reserve("m").await.is_err(),
            "now it asks the database"
        );
        assert!(limiter.reserve("other").await.is_ok());
    }

    #[test]
    fn the_limits_come_from_the_settings() {
        let mut settings = settings::CohereSettings {
            requests_per_minute: Some(100),
            ..Default::default()
        };
        settings
            .model_requests_per_minute
            .insert("command-a-vision-07-2025".into(), 600);
        let limiter = RateLimiter::from_settings(DatabaseConnection::default(), &settings);
        assert_eq!(limiter.limit_for("command-a-vision-07-2025"), Some(600));
        assert_eq!(limiter.limit_for("c4ai-aya-vision-32b"), Some(100));
        settings.requests_per_minute = None;
        let limiter = RateLimiter::from_settings(DatabaseConnection::default(), &settings);
        assert_eq!(limiter.limit_for("c4ai-aya-vision-32b"), None);
    }
}

//! The cluster-wide rate limiter of Cohere calls, in PostgreSQL: one row per model in
//! `cohere_rate_limits`, shared by every worker replica.
//!
//! # How it works
//!
//! A GCRA with a burst of 1, one row per model: each call reserves the model's next free slot
//! ([`store::rate_limits::reserve`], one statement) and the caller sleeps until it
//! ([`RateLimiter::acquire`]). Slots are handed out exactly `60 s / rpm` apart whatever the
//! number of replicas. A reservation is a commitment: a caller that gives up while waiting (a
//! cancelled job) leaves its slot unused, which only errs on the safe side. Waits are not
//! capped here: if far more work is queued than the limit lets through, waits grow, and a
//! caller that would rather requeue than sleep long can look at the returned wait.
//!
//! After a 429, [`RateLimiter::back_off`] pushes the model's back-off to at least
//! `now + Retry-After`, so every replica's next reservation waits past it.
//!
//! # Why PostgreSQL, not Redis
//!
//! - PostgreSQL is already a hard dependency of every worker, and durable; Redis would be a
//!   new service to deploy, secure, monitor and keep available, for this alone.
//! - The load is small: one single-row `UPDATE` per Cohere call, at Cohere's rates (tens to a
//!   few thousand calls per minute), is far below what one row can take (thousands of updates
//!   per second, each a few tens of microseconds under the row lock).
//! - The limiter's clock is the database's, the single clock of the cluster: the replicas'
//!   clock skew does not matter.
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

use sea_orm::DatabaseConnection;
use store::{StoreError, rate_limits};

pub use store::rate_limits::Reservation;

/// How long after a back-off ends this process keeps checking the row of a model without a
/// limit (see the module documentation).
pub const UNLIMITED_WATCH: Duration = Duration::from_secs(5 * 60);

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
    pub async fn reserve(&self, model: &str) -> Result<Duration, StoreError> {
        Ok(self
            .reserve_slot(model)
            .await?
            .map_or(Duration::ZERO, |r| r.wait))
    }

    /// As [`RateLimiter::reserve`], with the slot itself; `None` when the database was not
    /// asked (no limit, no recent back-off).
    pub async fn reserve_slot(&self, model: &str) -> Result<Option<Reservation>, StoreError> {
        let db = &self.inner.db;
        match self.limit_for(model) {
            Some(rpm) => {
                let interval = Duration::from_micros(60_000_000 / u64::from(rpm));
                rate_limits::reserve(db, model, interval).await.map(Some)
            }
            None if self.watching(model) => rate_limits::backoff(db, model).await,
            None => Ok(None),
        }
    }

    /// Reserves a slot and sleeps until it; returns the time slept.
    pub async fn acquire(&self, model: &str) -> Result<Duration, StoreError> {
        let wait = self.reserve(model).await?;
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Ok(wait)
    }

    /// After a 429 for `model`: no replica's call slot for it starts before `now + wait` (the
    /// server's `Retry-After`, or a default the caller picks; clamp it first). Never shortens
    /// a back-off already in place.
    pub async fn back_off(&self, model: &str, wait: Duration) -> Result<(), StoreError> {
        if self.limit_for(model).is_none() {
            let until = Instant::now() + wait + UNLIMITED_WATCH;
            let mut watched = self.watched();
            let entry = watched.entry(model.to_owned()).or_insert(until);
            *entry = (*entry).max(until);
        }
        rate_limits::back_off(&self.inner.db, model, wait).await?;
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

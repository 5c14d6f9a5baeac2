//! The time source of the circuit breakers, injectable so tests can move time by hand.
//!
//! [`SystemClock`] (the default) reads the monotonic clock and sleeps with `tokio::time`;
//! [`ManualClock`] stands still until [`ManualClock::advance`] moves it, and wakes the sleepers
//! whose deadline that passes. (The rate limiter needs no clock of its own: it uses the
//! database's.)

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::watch;

/// A future a [`Clock`] hands out for a sleep.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Monotonic time, and sleeping until a point of it.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Instant;
    /// Completes once [`Clock::now`] has reached `deadline`.
    fn sleep_until(&self, deadline: Instant) -> Sleep;
}

/// The real monotonic clock, sleeping on the tokio timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }
}

/// A clock that only moves when told to (tests). Clones share the same time.
#[derive(Clone)]
pub struct ManualClock {
    base: Instant,
    offset: Arc<watch::Sender<Duration>>,
}

impl ManualClock {
    /// A clock standing at the current real instant.
    pub fn new() -> Self {
        Self {
            base: Instant::now(),
            offset: Arc::new(watch::Sender::new(Duration::ZERO)),
        }
    }

    /// Moves the clock forward by `by`, waking every sleep whose deadline has now passed.
    pub fn advance(&self, by: Duration) {
        self.offset.send_modify(|offset| *offset += by);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("offset", &*self.offset.borrow())
            .finish()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.base + *self.offset.borrow()
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        let base = self.base;
        let mut offset = self.offset.subscribe();
        Box::pin(async move {
            loop {
                if base + *offset.borrow_and_update() >= deadline {
                    return;
                }
                if offset.changed().await.is_err() {
                    // The clock is gone: time never moves again.
                    std::future::pending::<()>().await;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_sleep_ends_only_once_the_clock_has_passed_its_deadline() {
        let clock = ManualClock::new();
        let deadline = clock.now() + Duration::from_secs(10);
        let mut sleep = tokio::spawn(clock.sleep_until(deadline));
        clock.advance(Duration::from_secs(9));
        assert!(
            tokio::time::timeout(Duration::from_millis(50), &mut sleep)
                .await
                .is_err(),
            "woke a second early"
        );
        clock.advance(Duration::from_secs(1));
        tokio::time::timeout(Duration::from_secs(5), sleep)
            .await
            .expect("woke on time")
            .expect("sleep task");
        assert_eq!(clock.now(), deadline);
    }
}

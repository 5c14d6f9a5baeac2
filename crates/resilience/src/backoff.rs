//! In-process retry delays: exponential, with **full jitter**, for backon's `Retryable`.
//!
//! Retry `n` (counted from 0) waits a uniformly random time in `[0, min(max, initial * 2^n)]`
//! ("full jitter"): replicas that failed together spread their retries over the whole
//! interval instead of retrying in step. backon 1.6's own `ExponentialBuilder::with_jitter`
//! is not that: it *adds* a random share of the current delay (the delay lands in
//! `[d, 2d)`), so [`FullJitterBuilder`] implements [`backon::BackoffBuilder`] itself.
//!
//! ```no_run
//! # async fn call() -> Result<(), std::io::Error> { Ok(()) }
//! use backon::Retryable;
//! # async fn example() -> Result<(), std::io::Error> {
//! let delays = resilience::FullJitterBuilder::from(&settings::RetrySettings::default());
//! call.retry(delays)
//!     .sleep(tokio::time::sleep)
//!     .when(|_e| true /* only transient errors */)
//!     .await
//! # }
//! ```

use std::time::Duration;

use rand::{Rng, SeedableRng, rngs::StdRng};

/// Builds a [`FullJitter`] sequence: `retries` delays, retry `n` uniform in
/// `[0, min(max, initial * 2^n)]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FullJitterBuilder {
    initial: Duration,
    max: Duration,
    retries: usize,
    seed: Option<u64>,
}

impl FullJitterBuilder {
    /// `retries` delays (so `retries + 1` tries at most), starting from a ceiling of
    /// `initial`, doubling up to `max`.
    pub fn new(initial: Duration, max: Duration, retries: usize) -> Self {
        Self {
            initial,
            max,
            retries,
            seed: None,
        }
    }

    /// A fixed random seed, for reproducible sequences (tests).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// How many delays the sequence yields.
    pub fn retries(&self) -> usize {
        self.retries
    }

    /// The ceiling of retry `n` (from 0): `min(max, initial * 2^n)`.
    pub fn ceiling(&self, n: usize) -> Duration {
        u32::try_from(n)
            .ok()
            .and_then(|n| 1u32.checked_shl(n))
            .and_then(|factor| self.initial.checked_mul(factor))
            .map_or(self.max, |ceiling| ceiling.min(self.max))
    }
}

impl From<&settings::RetrySettings> for FullJitterBuilder {
    /// `in_process_tries - 1` delays, from `initial_backoff_millis` up to `max_backoff_millis`.
    fn from(settings: &settings::RetrySettings) -> Self {
        Self::new(
            Duration::from_millis(settings.initial_backoff_millis),
            Duration::from_millis(settings.max_backoff_millis),
            usize::try_from(settings.in_process_tries.saturating_sub(1)).unwrap_or(usize::MAX),
        )
    }
}

impl backon::BackoffBuilder for FullJitterBuilder {
    type Backoff = FullJitter;

    fn build(self) -> FullJitter {
        let rng = match self.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_rng(&mut rand::rng()),
        };
        FullJitter {
            builder: self,
            next: 0,
            rng,
        }
    }
}

/// The delays of one retried operation (see [`FullJitterBuilder`]).
#[derive(Debug, Clone)]
pub struct FullJitter {
    builder: FullJitterBuilder,
    next: usize,
    rng: StdRng,
}

impl Iterator for FullJitter {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.next >= self.builder.retries {
            return None;
        }
        let ceiling = self.builder.ceiling(self.next);
        self.next += 1;
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Some(Duration::from_nanos(self.rng.random_range(0..=nanos)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.builder.retries.saturating_sub(self.next);
        (left, Some(left))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use backon::{BackoffBuilder, Retryable};

    use super::*;

    fn settings(tries: u32) -> settings::RetrySettings {
        settings::RetrySettings {
            in_process_tries: tries,
            initial_backoff_millis: 200,
            max_backoff_millis: 5_000,
            ..Default::default()
        }
    }

    #[test]
    fn ceilings_double_from_initial_up_to_max() {
        let builder = FullJitterBuilder::from(&settings(10));
        let ceilings: Vec<u64> = (0..8)
            .map(|n| u64::try_from(builder.ceiling(n).as_millis()).expect("small"))
            .collect();
        assert_eq!(ceilings, [200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        assert_eq!(builder.ceiling(usize::MAX), Duration::from_millis(5000));
        assert_eq!(builder.ceiling(40), Duration::from_millis(5000));
    }

    #[test]
    fn there_are_tries_minus_one_delays_each_within_its_ceiling() {
        for tries in [1, 2, 3, 12] {
            let builder = FullJitterBuilder::from(&settings(tries));
            for _ in 0..50 {
                let delays: Vec<Duration> = builder.build().collect();
                assert_eq!(delays.len(), tries as usize - 1);
                for (n, delay) in delays.iter().enumerate() {
                    assert!(*delay <= builder.ceiling(n), "delay {n}: {delay:?}");
                }
            }
        }
    }

    #[test]
    fn the_delays_are_spread_over_the_whole_interval() {
        let builder = FullJitterBuilder::from(&settings(12));
        let delays: Vec<Duration> = builder.build().collect();
        assert!(
            delays.windows(2).any(|w| w[0] != w[1]),
            "not all equal: {delays:?}"
        );
        // Full jitter: the first delay falls anywhere in [0, 200 ms], so over many
        // sequences some land in the lower half (backon's own jitter never goes below 200 ms).
        let firsts: Vec<Duration> = (0..200)
            .map(|_| builder.build().next().expect("a delay"))
            .collect();
        assert!(firsts.iter().any(|d| *d < Duration::from_millis(100)));
        assert!(firsts.iter().any(|d| *d > Duration::from_millis(100)));
    }

    #[test]
    fn a_seed_makes_the_sequence_reproducible() {
        let builder = FullJitterBuilder::from(&settings(6)).with_seed(7);
        let a: Vec<Duration> = builder.build().collect();
        let b: Vec<Duration> = builder.build().collect();
        assert_eq!(a, b);
    }

    #[tokio::test]
    async fn backon_makes_in_process_tries_calls_at_most() {
        let calls = AtomicU32::new(0);
        let builder = FullJitterBuilder::new(Duration::from_millis(1), Duration::from_millis(2), 3);
        let result: Result<(), &str> = (|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err("HTTP 503")
        })
        .retry(builder)
        .sleep(tokio::time::sleep)
        .await;
        assert_eq!(result, Err("HTTP 503"));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }
}

//! State shared by every worker: configuration, call counters and the rate-limit window.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, RuntimeConfig};

/// What `GET /admin/calls` reports (since start or the last `POST /admin/reset`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Calls {
    /// Chat calls received, counted on arrival (a call whose client hangs up before the
    /// answer is counted here, and in the other counters once answered).
    pub received: u64,
    /// Chat calls answered, whatever the outcome (the sum of `by_status`), including calls
    /// whose client hung up meanwhile (the handler runs to its end).
    pub total: u64,
    /// Per image (sha256 hex of its bytes or https URL): calls that got past the key, the rate
    /// limit and validation, i.e. the image was "analysed", even if a fault was then injected.
    /// An image is counted once per call even if the call repeats it.
    pub by_image: BTreeMap<String, u64>,
    /// Per image: calls answered 200.
    pub succeeded_by_image: BTreeMap<String, u64>,
    /// Per HTTP status of the answer (JSON keys are strings: `{"200": 3, "429": 1}`).
    pub by_status: BTreeMap<u16, u64>,
}

/// Admitted calls of the last minute, oldest first.
#[derive(Debug, Default)]
pub(crate) struct RateWindow {
    admitted: VecDeque<Instant>,
}

/// The window of [`RateWindow`].
const WINDOW: Duration = Duration::from_secs(60);

impl RateWindow {
    /// Admits a call at `now`, or says how long until a slot frees up.
    pub(crate) fn admit(&mut self, limit: Option<u32>, now: Instant) -> Result<(), Duration> {
        let Some(limit) = limit else {
            self.admitted.clear();
            return Ok(());
        };
        while let Some(&oldest) = self.admitted.front() {
            if now.saturating_duration_since(oldest) >= WINDOW {
                self.admitted.pop_front();
            } else {
                break;
            }
        }
        if self.admitted.len() < limit as usize {
            self.admitted.push_back(now);
            return Ok(());
        }
        // The slot that frees first is the one taken `len - limit` calls ago (the limit may have
        // been lowered below the number of calls in the window).
        let freeing = self
            .admitted
            .get(self.admitted.len() - limit as usize)
            .copied()
            .unwrap_or(now);
        Err((freeing + WINDOW).saturating_duration_since(now))
    }
}

struct Inner {
    api_key: String,
    runtime: RuntimeConfig,
    window: RateWindow,
    calls: Calls,
}

/// Everything the handlers share.
pub(crate) struct State {
    inner: Mutex<Inner>,
}

impl State {
    pub(crate) fn new(api_key: String, runtime: RuntimeConfig) -> Result<Self, ConfigError> {
        if api_key.trim().is_empty() {
            return Err(ConfigError("the API key is empty".into()));
        }
        let mut runtime = runtime.validated()?;
        let api_key = runtime.api_key.take().unwrap_or(api_key);
        Ok(Self {
            inner: Mutex::new(Inner {
                api_key,
                runtime,
                window: RateWindow::default(),
                calls: Calls::default(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing panics while holding the lock; if something did, the data is still usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current configuration (its `api_key` is always `None`).
    pub(crate) fn config(&self) -> RuntimeConfig {
        self.lock().runtime.clone()
    }

    /// Replaces the configuration; a `Some` key replaces the accepted key.
    pub(crate) fn set_config(&self, runtime: RuntimeConfig) -> Result<RuntimeConfig, ConfigError> {
        let mut runtime = runtime.validated()?;
        let key = runtime.api_key.take();
        let mut inner = self.lock();
        if let Some(key) = key {
            inner.api_key = key;
        }
        inner.runtime = runtime.clone();
        Ok(runtime)
    }

    /// Whether `key` is the accepted key.
    pub(crate) fn key_matches(&self, key: &str) -> bool {
        self.lock().api_key == key
    }

    pub(crate) fn admit(&self, now: Instant) -> Result<(), Duration> {
        let mut inner = self.lock();
        let limit = inner.runtime.requests_per_minute;
        inner.window.admit(limit, now)
    }

    pub(crate) fn calls(&self) -> Calls {
        self.lock().calls.clone()
    }

    /// Clears the counters and the rate-limit window (the configuration stays).
    pub(crate) fn reset(&self) {
        let mut inner = self.lock();
        inner.calls = Calls::default();
        inner.window = RateWindow::default();
    }

    pub(crate) fn record_arrival(&self) {
        self.lock().calls.received += 1;
    }

    pub(crate) fn record_images(&self, images: &[String]) {
        let mut inner = self.lock();
        for sha in images {
            *inner.calls.by_image.entry(sha.clone()).or_default() += 1;
        }
    }

    pub(crate) fn record_answer(&self, status: u16, images: &[String]) {
        let mut inner = self.lock();
        inner.calls.total += 1;
        *inner.calls.by_status.entry(status).or_default() += 1;
        if status == 200 {
            for sha in images {
                *inner
                    .calls
                    .succeeded_by_image
                    .entry(sha.clone())
                    .or_default() += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_admits_the_limit_per_minute_and_says_when_a_slot_frees() {
        let mut window = RateWindow::default();
        let start = Instant::now();
        assert_eq!(window.admit(Some(2), start), Ok(()));
        assert_eq!(
            window.admit(Some(2), start + Duration::from_secs(10)),
            Ok(())
        );
        assert_eq!(
            window.admit(Some(2), start + Duration::from_secs(20)),
            Err(Duration::from_secs(40))
        );
        // The first call leaves the window after a minute.
        assert_eq!(
            window.admit(Some(2), start + Duration::from_secs(60)),
            Ok(())
        );
        assert_eq!(
            window.admit(Some(2), start + Duration::from_secs(61)),
            Err(Duration::from_secs(9))
        );
    }

    #[test]
    fn a_lowered_limit_waits_for_enough_calls_to_leave() {
        let mut window = RateWindow::default();
        let start = Instant::now();
        for second in 0..3 {
            assert_eq!(
                window.admit(Some(3), start + Duration::from_secs(second)),
                Ok(())
            );
        }
        assert_eq!(
            window.admit(Some(1), start + Duration::from_secs(5)),
            Err(Duration::from_secs(57))
        );
    }

    #[test]
    fn a_zero_limit_refuses_everything_and_no_limit_admits_everything() {
        let mut window = RateWindow::default();
        let now = Instant::now();
        assert!(window.admit(Some(0), now).is_err());
        for _ in 0..1000 {
            assert_eq!(window.admit(None, now), Ok(()));
        }
    }
}

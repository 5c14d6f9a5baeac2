//! The state machine of one model's breaker: counting outcomes, opening, half-opening on
//! time, closing, and the bookkeeping of every transition.

use std::{
    collections::{HashMap, VecDeque},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};

use super::{CircuitState, Shared, Transition};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Closed,
    Open { until: Instant },
    HalfOpen { in_flight: usize },
}

impl Phase {
    pub(super) fn state(self) -> CircuitState {
        match self {
            Self::Closed => CircuitState::Closed,
            Self::Open { .. } => CircuitState::Open,
            Self::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }
}

pub(super) struct Circuit {
    pub(super) phase: Phase,
    /// Counted outcomes while closed, oldest first: `true` for a failure.
    pub(super) window: VecDeque<bool>,
    /// The next open period.
    pub(super) open_for: Duration,
    /// Bumped on every transition; a permit's outcome counts only in its own epoch.
    pub(super) epoch: u64,
    pub(super) since: DateTime<Utc>,
    pub(super) reason: Option<String>,
    pub(super) open_until: Option<DateTime<Utc>>,
}

pub(super) enum Outcome {
    Success,
    Failure(String),
    Systemic(String),
    Neutral,
}

impl Shared {
    pub(super) fn circuit<'a>(
        &self,
        circuits: &'a mut HashMap<String, Circuit>,
        model: &str,
    ) -> &'a mut Circuit {
        if !circuits.contains_key(model) {
            self.state_gauge
                .with_label_values(&[model])
                .set(CircuitState::Closed.gauge_value());
            circuits.insert(
                model.to_owned(),
                Circuit {
                    phase: Phase::Closed,
                    window: VecDeque::with_capacity(self.config.window_calls),
                    open_for: self.config.open_for,
                    epoch: 0,
                    since: Utc::now(),
                    reason: None,
                    open_until: None,
                },
            );
        }
        circuits
            .get_mut(model)
            .unwrap_or_else(|| unreachable!("inserted above"))
    }

    /// Applies a permit's outcome.
    pub(super) fn record(&self, model: &str, epoch: u64, probe: bool, outcome: Outcome) {
        let now = self.clock.now();
        let mut inner = self.lock();
        let inner_ref = &mut *inner;
        let Some(circuit) = inner_ref.circuits.get_mut(model) else {
            return;
        };
        if circuit.epoch != epoch {
            // The breaker moved on since this permit was issued.
            return;
        }
        let seq = &mut inner_ref.seq;
        let transition = match (circuit.phase, outcome) {
            (Phase::Closed, Outcome::Neutral) => None,
            (Phase::Closed, Outcome::Systemic(reason)) => {
                let reason = format!("systemic failure: {reason}");
                Some(self.open(seq, model, circuit, now, reason))
            }
            (Phase::Closed, Outcome::Success) => {
                self.push(circuit, false);
                self.tripped(circuit, "")
                    .map(|reason| self.open(seq, model, circuit, now, reason))
            }
            (Phase::Closed, Outcome::Failure(reason)) => {
                self.push(circuit, true);
                self.tripped(circuit, &reason)
                    .map(|reason| self.open(seq, model, circuit, now, reason))
            }
            (Phase::HalfOpen { in_flight }, outcome) => {
                debug_assert!(probe, "a permit of the half-open epoch is a probe");
                circuit.phase = Phase::HalfOpen {
                    in_flight: in_flight.saturating_sub(1),
                };
                match outcome {
                    Outcome::Neutral => None,
                    Outcome::Success => Some(self.close(seq, model, circuit)),
                    Outcome::Failure(reason) => {
                        circuit.open_for = (circuit.open_for * 2).min(self.config.max_open_for);
                        let reason = format!("probe failed: {reason}");
                        Some(self.open(seq, model, circuit, now, reason))
                    }
                    Outcome::Systemic(reason) => {
                        circuit.open_for = (circuit.open_for * 2).min(self.config.max_open_for);
                        let reason = format!("probe failed (systemic): {reason}");
                        Some(self.open(seq, model, circuit, now, reason))
                    }
                }
            }
            // Opening bumps the epoch, so no permit of an open epoch exists.
            (Phase::Open { .. }, _) => None,
        };
        if transition.is_some() {
            self.publish(&inner);
        }
        self.fire(transition);
        drop(inner);
    }

    /// Open → half-open by the timer, if this breaker is still in the open period it set.
    fn expire(&self, model: &str, epoch: u64) {
        let now = self.clock.now();
        let mut inner = self.lock();
        let inner_ref = &mut *inner;
        let Some(circuit) = inner_ref.circuits.get_mut(model) else {
            return;
        };
        let transition = match circuit.phase {
            Phase::Open { until } if circuit.epoch == epoch && now >= until => {
                Some(self.half_open(&mut inner_ref.seq, model, circuit))
            }
            _ => None,
        };
        if transition.is_some() {
            self.publish(&inner);
        }
        self.fire(transition);
        drop(inner);
    }

    fn push(&self, circuit: &mut Circuit, failed: bool) {
        circuit.window.push_back(failed);
        while circuit.window.len() > self.config.window_calls {
            circuit.window.pop_front();
        }
    }

    /// Why the window now opens the breaker, if it does.
    fn tripped(&self, circuit: &Circuit, last_failure: &str) -> Option<String> {
        let calls = circuit.window.len();
        let failures = circuit.window.iter().filter(|failed| **failed).count();
        // Precision: window sizes are far below 2^52.
        #[allow(clippy::cast_precision_loss)]
        let rate = failures as f64 / calls.max(1) as f64;
        (failures > 0 && calls >= self.config.min_calls.max(1) && rate >= self.config.failure_rate)
            .then(|| {
                let mut reason = format!("{failures} of the last {calls} calls failed");
                if !last_failure.is_empty() {
                    reason.push_str(&format!(" (last: {last_failure})"));
                }
                reason
            })
    }

    fn open(
        &self,
        seq: &mut u64,
        model: &str,
        circuit: &mut Circuit,
        now: Instant,
        reason: String,
    ) -> Transition {
        let until = now + circuit.open_for;
        let open_until = wall_after(circuit.open_for);
        let transition = self.enter(
            seq,
            model,
            circuit,
            Phase::Open { until },
            reason,
            Some(open_until),
        );
        tracing::warn!(
            model,
            from = %transition.from,
            to = %transition.to,
            reason = %transition.reason,
            open_for_ms = u64::try_from(circuit.open_for.as_millis()).unwrap_or(u64::MAX),
            "circuit breaker opened"
        );
        self.arm_timer(model, circuit.epoch, until);
        transition
    }

    pub(super) fn half_open(
        &self,
        seq: &mut u64,
        model: &str,
        circuit: &mut Circuit,
    ) -> Transition {
        let reason = format!(
            "open period of {} ms over: probing",
            circuit.open_for.as_millis()
        );
        let transition = self.enter(
            seq,
            model,
            circuit,
            Phase::HalfOpen { in_flight: 0 },
            reason,
            None,
        );
        tracing::info!(
            model,
            from = %transition.from,
            to = %transition.to,
            reason = %transition.reason,
            "circuit breaker half-open"
        );
        transition
    }

    fn close(&self, seq: &mut u64, model: &str, circuit: &mut Circuit) -> Transition {
        circuit.window.clear();
        circuit.open_for = self.config.open_for;
        let transition = self.enter(
            seq,
            model,
            circuit,
            Phase::Closed,
            "probe succeeded".into(),
            None,
        );
        tracing::info!(
            model,
            from = %transition.from,
            to = %transition.to,
            reason = %transition.reason,
            "circuit breaker closed"
        );
        transition
    }

    /// The bookkeeping common to every transition: state, epoch, metrics.
    fn enter(
        &self,
        seq: &mut u64,
        model: &str,
        circuit: &mut Circuit,
        to: Phase,
        reason: String,
        open_until: Option<DateTime<Utc>>,
    ) -> Transition {
        let from = circuit.phase.state();
        let at = Utc::now();
        circuit.phase = to;
        circuit.epoch += 1;
        circuit.since = at;
        circuit.reason = Some(reason.clone());
        circuit.open_until = open_until;
        *seq += 1;
        let to = to.state();
        self.state_gauge
            .with_label_values(&[model])
            .set(to.gauge_value());
        self.transitions_total
            .with_label_values(&[model, to.as_str()])
            .inc();
        Transition {
            model: model.to_owned(),
            from,
            to,
            reason,
            at,
            open_until,
            seq: *seq,
        }
    }

    /// Flips the breaker to half-open at `until`, even if no call comes (needs a tokio
    /// runtime; without one the next [`Breakers::admit`](super::Breakers::admit) flips it).
    fn arm_timer(&self, model: &str, epoch: u64, until: Instant) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let sleep = self.clock.sleep_until(until);
        let shared = self.this.clone();
        let model = model.to_owned();
        runtime.spawn(async move {
            sleep.await;
            if let Some(shared) = shared.upgrade() {
                shared.expire(&model, epoch);
            }
        });
    }
}

fn wall_after(after: Duration) -> DateTime<Utc> {
    let now = Utc::now();
    chrono::Duration::from_std(after)
        .ok()
        .and_then(|after| now.checked_add_signed(after))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::breaker::{
        Permit,
        fixture::{config, fixture},
    };

    #[tokio::test]
    async fn the_failure_rate_opens_only_once_min_calls_outcomes_are_in() {
        let f = fixture(config());
        f.fail(4);
        assert_eq!(f.state(), CircuitState::Closed, "4 < min_calls");
        f.fail(1);
        assert_eq!(f.state(), CircuitState::Open, "5 of 5 failed");
        assert_eq!(f.path(), [(CircuitState::Closed, CircuitState::Open)]);
        let reason = f.breakers.snapshot()[0].reason.clone().expect("a reason");
        assert!(reason.contains("5 of the last 5"), "{reason}");
    }

    #[tokio::test]
    async fn the_rate_is_over_the_last_window_calls_outcomes() {
        let f = fixture(config());
        f.succeed(6);
        f.fail(4);
        assert_eq!(f.state(), CircuitState::Closed, "4 of 10 < 50%");
        f.fail(1);
        // Window: 5 successes, 5 failures: the oldest success slid out.
        assert_eq!(f.state(), CircuitState::Open, "5 of the last 10 failed");
    }

    #[tokio::test]
    async fn a_success_that_completes_min_calls_can_open_too() {
        let f = fixture(config());
        f.fail(4);
        f.succeed(1);
        assert_eq!(f.state(), CircuitState::Open, "4 of 5 failed");
    }

    #[tokio::test]
    async fn a_systemic_failure_opens_at_once() {
        let f = fixture(config());
        f.succeed(3);
        f.admit().systemic("HTTP 401: invalid api token");
        assert_eq!(f.state(), CircuitState::Open);
        let state = &f.breakers.snapshot()[0];
        assert_eq!(state.state, CircuitState::Open);
        assert!(
            state
                .reason
                .as_deref()
                .is_some_and(|r| r.contains("HTTP 401")),
            "{state:?}"
        );
        assert!(state.open_until.is_some());
    }

    #[tokio::test]
    async fn neutral_outcomes_are_not_counted() {
        let f = fixture(config());
        f.fail(3);
        for _ in 0..20 {
            drop(f.admit()); // e.g. 429s, or calls cancelled
        }
        assert_eq!(f.state(), CircuitState::Closed, "only 3 counted outcomes");
        f.fail(2);
        // Counted as successes, the neutrals would have diluted the rate to 2 of 10.
        assert_eq!(
            f.state(),
            CircuitState::Open,
            "5 of 5 counted outcomes failed"
        );
    }

    #[tokio::test]
    async fn late_outcomes_of_an_earlier_state_are_ignored() {
        let f = fixture(config());
        let in_flight: Vec<Permit> = (0..10).map(|_| f.admit()).collect();
        f.open();
        for permit in in_flight {
            permit.systemic("HTTP 401");
        }
        assert_eq!(f.path().len(), 1, "one burst of 401s, one transition");
    }

    #[tokio::test]
    async fn a_successful_probe_closes_and_clears_the_window() {
        let f = fixture(config());
        f.fail(5);
        f.wait_half_open(Duration::from_secs(5)).await;
        let probe = f.admit();
        let other_probe = f.admit();
        probe.success();
        assert_eq!(f.state(), CircuitState::Closed);
        other_probe.failure("late");
        assert_eq!(
            f.state(),
            CircuitState::Closed,
            "a stale probe decides nothing"
        );
        f.fail(4);
        assert_eq!(f.state(), CircuitState::Closed, "the window was cleared");
        assert_eq!(
            f.path(),
            [
                (CircuitState::Closed, CircuitState::Open),
                (CircuitState::Open, CircuitState::HalfOpen),
                (CircuitState::HalfOpen, CircuitState::Closed),
            ]
        );
    }

    #[tokio::test]
    async fn a_failed_probe_reopens_for_twice_as_long_up_to_the_cap() {
        let f = fixture(config());
        f.open();
        // open_for 5 s, then 10 s, then 12 s (the cap), then 12 s again.
        for (period, next) in [(5, 10), (10, 12), (12, 12)] {
            f.wait_half_open(Duration::from_secs(period)).await;
            f.admit().failure("HTTP 503");
            assert_eq!(f.state(), CircuitState::Open);
            assert_eq!(f.reject().retry_in, Duration::from_secs(next));
        }
        // A systemic probe failure reopens in the same way.
        f.wait_half_open(Duration::from_secs(12)).await;
        f.admit().systemic("HTTP 402");
        assert_eq!(f.reject().retry_in, Duration::from_secs(12));
        // Closing resets the period.
        f.wait_half_open(Duration::from_secs(12)).await;
        f.admit().success();
        f.open();
        assert_eq!(f.reject().retry_in, Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_stale_timer_does_not_cut_a_later_open_period_short() {
        let f = fixture(config());
        f.open();
        // Half-open by a call (the clock jumped past the period), then the probe fails: the
        // second open period (10 s) must not end with the first timer.
        f.clock.advance(Duration::from_secs(5));
        f.admit().failure("HTTP 500");
        tokio::task::yield_now().await;
        assert_eq!(f.state(), CircuitState::Open);
        f.clock.advance(Duration::from_secs(9));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(f.state(), CircuitState::Open);
        f.wait_half_open(Duration::from_secs(1)).await;
    }
}

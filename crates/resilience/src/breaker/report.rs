//! What the breakers tell the rest of the process: states, transitions, the summary watch a
//! consumer waits on, the `/readyz` snapshot, and the transition hook.

use std::{fmt, sync::Arc};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::watch;

use super::{Breakers, Inner, Shared, machine::Phase};

/// The state of one model's breaker. Serialised as `"closed"`, `"half_open"` or `"open"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    Closed,
    HalfOpen,
    Open,
}

impl CircuitState {
    /// `"closed"`, `"half_open"` or `"open"` (as in the `circuit_breakers` table).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::HalfOpen => "half_open",
            Self::Open => "open",
        }
    }

    /// The value of the `cohere_circuit_state` gauge: 0 closed, 1 half-open, 2 open.
    pub fn gauge_value(self) -> i64 {
        match self {
            Self::Closed => 0,
            Self::HalfOpen => 1,
            Self::Open => 2,
        }
    }
}

impl fmt::Display for CircuitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One change of state of one model's breaker, as given to the [`TransitionHook`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub model: String,
    pub from: CircuitState,
    pub to: CircuitState,
    /// Why, in words (e.g. "6 of the last 10 calls failed (last: HTTP 503)").
    pub reason: String,
    /// When it happened (wall clock).
    pub at: DateTime<Utc>,
    /// When an open breaker will turn half-open (only when `to` is open).
    pub open_until: Option<DateTime<Utc>>,
    /// 1, 2, 3, ... over every transition of this [`Breakers`] (all models).
    pub seq: u64,
}

/// Called after each transition, in the order of the transitions: it runs with the breakers'
/// lock held, after the summary watch is updated, so it must be quick and must not call back
/// into [`Breakers`] (send the transition on a channel and do anything slow elsewhere).
pub type TransitionHook = Arc<dyn Fn(Transition) + Send + Sync>;

/// The models whose breaker is not closed, sorted by name: what a consumer waits on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BreakerSummary {
    pub open: Vec<String>,
    pub half_open: Vec<String>,
}

impl BreakerSummary {
    /// Every breaker is closed.
    pub fn all_closed(&self) -> bool {
        self.open.is_empty() && self.half_open.is_empty()
    }

    /// The state of `model`'s breaker as this summary saw it.
    pub fn state_of(&self, model: &str) -> CircuitState {
        if self.open.iter().any(|m| m == model) {
            CircuitState::Open
        } else if self.half_open.iter().any(|m| m == model) {
            CircuitState::HalfOpen
        } else {
            CircuitState::Closed
        }
    }
}

/// One model's breaker, for a readiness body (`/readyz`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreakerState {
    pub model: String,
    pub state: CircuitState,
    /// When it entered this state (the breaker's creation for one never changed).
    pub since: DateTime<Utc>,
    /// Why it entered this state (none for one never changed).
    pub reason: Option<String>,
    /// When an open breaker will turn half-open.
    pub open_until: Option<DateTime<Utc>>,
}

impl Breakers {
    /// A watch of which breakers are open or half-open, updated on every transition
    /// (open → half-open included, when it happens on time with no call).
    pub fn subscribe(&self) -> watch::Receiver<BreakerSummary> {
        self.shared.summary.subscribe()
    }

    /// Every model's breaker, sorted by model (for `/readyz`).
    pub fn snapshot(&self) -> Vec<BreakerState> {
        let inner = self.shared.lock();
        let mut states: Vec<BreakerState> = inner
            .circuits
            .iter()
            .map(|(model, c)| BreakerState {
                model: model.clone(),
                state: c.phase.state(),
                since: c.since,
                reason: c.reason.clone(),
                open_until: c.open_until,
            })
            .collect();
        drop(inner);
        states.sort_by(|a, b| a.model.cmp(&b.model));
        states
    }
}

impl Shared {
    pub(super) fn publish(&self, inner: &Inner) {
        let mut summary = BreakerSummary::default();
        for (model, circuit) in &inner.circuits {
            match circuit.phase {
                Phase::Closed => {}
                Phase::Open { .. } => summary.open.push(model.clone()),
                Phase::HalfOpen { .. } => summary.half_open.push(model.clone()),
            }
        }
        summary.open.sort();
        summary.half_open.sort();
        self.summary.send_replace(summary);
    }

    pub(super) fn fire(&self, transition: Option<Transition>) {
        if let (Some(hook), Some(transition)) = (&self.hook, transition) {
            hook(transition);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::breaker::fixture::{MODEL, config, fixture};

    #[tokio::test]
    async fn the_watch_reports_open_then_half_open_without_any_call() {
        let f = fixture(config());
        let mut summary = f.breakers.subscribe();
        assert!(summary.borrow_and_update().all_closed());
        f.open();
        assert!(summary.has_changed().expect("watch open"));
        assert_eq!(summary.borrow_and_update().open, [MODEL]);

        f.clock.advance(Duration::from_secs(4));
        assert!(
            tokio::time::timeout(Duration::from_millis(50), summary.changed())
                .await
                .is_err(),
            "still open before its period ends"
        );
        f.clock.advance(Duration::from_secs(1));
        tokio::time::timeout(Duration::from_secs(5), summary.changed())
            .await
            .expect("flipped on time, with no call")
            .expect("watch open");
        let seen = summary.borrow_and_update().clone();
        assert_eq!(
            seen,
            BreakerSummary {
                open: vec![],
                half_open: vec![MODEL.into()]
            }
        );
        assert_eq!(f.breakers.snapshot()[0].state, CircuitState::HalfOpen);
        assert_eq!(f.breakers.snapshot()[0].open_until, None);
    }

    #[tokio::test]
    async fn metrics_follow_the_transitions() {
        let f = fixture(config());
        assert_eq!(f.gauge(MODEL), None, "no series before the model is used");
        f.succeed(1);
        assert_eq!(f.gauge(MODEL), Some(0));
        f.open();
        assert_eq!(f.gauge(MODEL), Some(2));
        assert_eq!(f.transitions_to("open"), Some(1));
        f.wait_half_open(Duration::from_secs(5)).await;
        assert_eq!(f.gauge(MODEL), Some(1));
        assert_eq!(f.transitions_to("half_open"), Some(1));
        f.admit().failure("HTTP 503");
        assert_eq!(f.gauge(MODEL), Some(2));
        assert_eq!(f.transitions_to("open"), Some(2));
        f.wait_half_open(Duration::from_secs(10)).await;
        f.admit().success();
        assert_eq!(f.gauge(MODEL), Some(0));
        assert_eq!(f.transitions_to("closed"), Some(1));
        assert_eq!(f.transitions_to("half_open"), Some(2));
        // Models are independent.
        assert!(f.breakers.admit("other-model").is_ok());
        assert_eq!(f.gauge("other-model"), Some(0));
        let seqs: Vec<u64> = f
            .transitions
            .lock()
            .expect("lock")
            .iter()
            .map(|t| t.seq)
            .collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5]);
    }

    #[tokio::test]
    async fn the_snapshot_serialises_for_readyz() {
        let f = fixture(config());
        f.succeed(1);
        let json = serde_json_like(&f.breakers.snapshot());
        assert!(json.contains("\"state\":\"closed\""), "{json}");
        f.open();
        f.wait_half_open(Duration::from_secs(5)).await;
        let json = serde_json_like(&f.breakers.snapshot());
        assert!(json.contains("\"state\":\"half_open\""), "{json}");
    }

    fn serde_json_like(states: &[BreakerState]) -> String {
        serde_json::to_string(states).expect("serialise")
    }
}

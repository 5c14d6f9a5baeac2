//! The breakers on a manual clock, with a hook that records the transitions, for the tests.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use prometheus::Registry;

use super::{BreakerConfig, Breakers, CircuitState, Permit, Rejected, Transition, TransitionHook};
use crate::clock::ManualClock;

pub(super) const MODEL: &str = "command-a-vision-07-2025";

pub(super) fn config() -> BreakerConfig {
    BreakerConfig {
        window_calls: 10,
        min_calls: 5,
        failure_rate: 0.5,
        open_for: Duration::from_secs(5),
        max_open_for: Duration::from_secs(12),
        half_open_probes: 2,
    }
}

pub(super) struct Fixture {
    pub(super) breakers: Breakers,
    pub(super) clock: ManualClock,
    registry: Registry,
    pub(super) transitions: Arc<Mutex<Vec<Transition>>>,
}

pub(super) fn fixture(config: BreakerConfig) -> Fixture {
    let clock = ManualClock::new();
    let registry = Registry::new();
    let transitions = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&transitions);
    let hook: TransitionHook = Arc::new(move |t| seen.lock().expect("lock").push(t));
    let breakers = Breakers::with_clock(config, &registry, Some(hook), Arc::new(clock.clone()))
        .expect("register the metrics");
    Fixture {
        breakers,
        clock,
        registry,
        transitions,
    }
}

impl Fixture {
    pub(super) fn admit(&self) -> Permit {
        self.breakers.admit(MODEL).expect("admitted")
    }

    pub(super) fn reject(&self) -> Rejected {
        self.breakers.admit(MODEL).expect_err("rejected")
    }

    pub(super) fn fail(&self, times: usize) {
        for _ in 0..times {
            self.admit().failure("HTTP 503");
        }
    }

    pub(super) fn succeed(&self, times: usize) {
        for _ in 0..times {
            self.admit().success();
        }
    }

    pub(super) fn state(&self) -> CircuitState {
        self.breakers.state(MODEL)
    }

    pub(super) fn path(&self) -> Vec<(CircuitState, CircuitState)> {
        self.transitions
            .lock()
            .expect("lock")
            .iter()
            .map(|t| (t.from, t.to))
            .collect()
    }

    /// Opens the breaker with a systemic failure.
    pub(super) fn open(&self) {
        self.admit().systemic("HTTP 401");
        assert_eq!(self.state(), CircuitState::Open);
    }

    /// Moves the clock past the open period and waits for the timer to flip the state.
    pub(super) async fn wait_half_open(&self, open_for: Duration) {
        let mut summary = self.breakers.subscribe();
        self.clock.advance(open_for);
        tokio::time::timeout(
            Duration::from_secs(5),
            summary.wait_for(|s| s.state_of(MODEL) == CircuitState::HalfOpen),
        )
        .await
        .expect("half-open on time")
        .expect("watch open");
    }

    pub(super) fn gauge(&self, model: &str) -> Option<i64> {
        self.metric("cohere_circuit_state", &[("model", model)])
    }

    pub(super) fn transitions_to(&self, to: &str) -> Option<i64> {
        self.metric(
            "cohere_circuit_transitions_total",
            &[("model", MODEL), ("to", to)],
        )
    }

    /// The value of one series, read from the text exposition (what Prometheus scrapes).
    fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Option<i64> {
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .expect("encode the metrics");
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        let series = format!("{name}{{{}}} ", labels.join(","));
        text.lines()
            .find_map(|line| line.strip_prefix(&series))
            .map(|value| value.trim().parse().expect("an integer"))
    }
}

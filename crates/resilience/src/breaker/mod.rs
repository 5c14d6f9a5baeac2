//! A circuit breaker per Cohere model (DESIGN.md, "Failure handling").
//!
//! Each model's breaker is **closed** (calls go through), **open** (calls are refused until
//! its open period ends) or **half-open** (a few probe calls decide whether to close again).
//!
//! - Ask [`Breakers::admit`] before each call. It hands out a [`Permit`], or a [`Rejected`]
//!   saying how long to wait.
//! - Record the call's outcome on the permit: [`Permit::success`]; [`Permit::failure`] for a
//!   transient failure (5xx, timeout, connection), which counts in the failure-rate window;
//!   [`Permit::systemic`] for 401/402/403 or a misconfigured client, which opens the breaker
//!   at once. Dropping the permit without recording anything is **neutral** (a 429, a
//!   permanent error about the request itself, a cancelled call): it is not counted, and it
//!   frees its half-open probe slot.
//! - Closed → open when, over the last `window_calls` counted outcomes (at least `min_calls`
//!   of them), failures / outcomes ≥ `failure_rate`; or at once on a systemic failure.
//! - Open → half-open when the open period ends, on time even if nobody calls (a timer task
//!   flips it, so a consumer that stopped taking messages and waits on [`Breakers::subscribe`]
//!   is told). Half-open admits at most `half_open_probes` calls at once.
//! - Half-open → closed on a probe's success (window cleared, open period back to
//!   `open_for`); → open again on a probe's failure (transient or systemic), with the open
//!   period doubled, up to `max_open_for`.
//!
//! An outcome only counts in the state its permit was issued in: once the breaker has moved
//! on (say it opened while ten calls were in flight), the late outcomes of older permits are
//! ignored, so the probes alone decide when half-open, and one burst of 401s makes one
//! transition.
//!
//! Every transition is logged (`warn` when opening, `info` otherwise), shown in the metrics
//! `cohere_circuit_state{model}` (0 closed, 1 half-open, 2 open) and
//! `cohere_circuit_transitions_total{model,to}`, published to [`Breakers::subscribe`]'s watch
//! and passed to the optional [`TransitionHook`] (the worker persists it).

mod admission;
mod config;
#[cfg(test)]
mod fixture;
mod machine;
mod report;

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex, MutexGuard, PoisonError, Weak},
};

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};
use tokio::sync::watch;

pub use admission::{HALF_OPEN_BUSY_RETRY, Permit, Rejected};
pub use config::BreakerConfig;
pub use report::{BreakerState, BreakerSummary, CircuitState, Transition, TransitionHook};

use crate::clock::{Clock, SystemClock};
use machine::Circuit;

/// The circuit breakers of every model, created on first use. Clones share the same
/// breakers (an `Arc` inside).
#[derive(Clone)]
pub struct Breakers {
    shared: Arc<Shared>,
}

impl fmt::Debug for Breakers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breakers")
            .field("config", &self.shared.config)
            .field("summary", &*self.shared.summary.borrow())
            .finish_non_exhaustive()
    }
}

struct Shared {
    config: BreakerConfig,
    clock: Arc<dyn Clock>,
    hook: Option<TransitionHook>,
    state_gauge: IntGaugeVec,
    transitions_total: IntCounterVec,
    summary: watch::Sender<BreakerSummary>,
    inner: Mutex<Inner>,
    /// For the timer tasks, which must not keep the breakers alive.
    this: Weak<Shared>,
}

#[derive(Default)]
struct Inner {
    circuits: HashMap<String, Circuit>,
    seq: u64,
}

impl Breakers {
    /// Breakers on the real clock, registering their metrics in `registry`, calling `hook`
    /// (if any) after each transition. Fails if the metrics are already registered there.
    pub fn new(
        config: BreakerConfig,
        registry: &Registry,
        hook: Option<TransitionHook>,
    ) -> Result<Self, prometheus::Error> {
        Self::with_clock(config, registry, hook, Arc::new(SystemClock))
    }

    /// As [`Breakers::new`], on the given clock (tests use a
    /// [`ManualClock`](crate::clock::ManualClock)).
    pub fn with_clock(
        config: BreakerConfig,
        registry: &Registry,
        hook: Option<TransitionHook>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, prometheus::Error> {
        let state_gauge = IntGaugeVec::new(
            Opts::new(
                "cohere_circuit_state",
                "State of the circuit breaker around each Cohere model: 0 closed, 1 half-open, 2 open.",
            ),
            &["model"],
        )?;
        let transitions_total = IntCounterVec::new(
            Opts::new(
                "cohere_circuit_transitions_total",
                "Transitions of the circuit breaker around each Cohere model, by state entered.",
            ),
            &["model", "to"],
        )?;
        registry.register(Box::new(state_gauge.clone()))?;
        if let Err(e) = registry.register(Box::new(transitions_total.clone())) {
            let _ = registry.unregister(Box::new(state_gauge));
            return Err(e);
        }
        let shared = Arc::new_cyclic(|this| Shared {
            config,
            clock,
            hook,
            state_gauge,
            transitions_total,
            summary: watch::Sender::new(BreakerSummary::default()),
            inner: Mutex::new(Inner::default()),
            this: this.clone(),
        });
        Ok(Self { shared })
    }

    /// The state of `model`'s breaker now (closed for a model never seen).
    pub fn state(&self, model: &str) -> CircuitState {
        self.shared
            .lock()
            .circuits
            .get(model)
            .map_or(CircuitState::Closed, |c| c.phase.state())
    }

    /// The configuration the breakers run with.
    pub fn config(&self) -> &BreakerConfig {
        &self.shared.config
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing under the lock can leave the state half-updated: carry on after a panic.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::config;
    use super::*;

    #[test]
    fn registering_twice_in_one_registry_fails_cleanly() {
        let registry = Registry::new();
        let _first = Breakers::new(config(), &registry, None).expect("first");
        assert!(Breakers::new(config(), &registry, None).is_err());
    }
}

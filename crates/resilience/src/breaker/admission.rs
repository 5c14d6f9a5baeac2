//! Admission: asking to call a model, and the permit its outcome is recorded on.

use std::{fmt, sync::Arc, time::Duration};

use super::{
    Breakers, CircuitState, Shared,
    machine::{Outcome, Phase},
};

/// How long a caller refused because every half-open probe slot is taken should wait before
/// asking again (the probes in flight will have decided by then, or nearly).
pub const HALF_OPEN_BUSY_RETRY: Duration = Duration::from_millis(250);

/// A call the breaker refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected {
    /// When it is worth asking again: the rest of the open period, or
    /// [`HALF_OPEN_BUSY_RETRY`] when half-open with every probe slot taken.
    pub retry_in: Duration,
    /// Open or half-open.
    pub state: CircuitState,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the circuit breaker is {}: retry in {} ms",
            self.state,
            self.retry_in.as_millis()
        )
    }
}

impl std::error::Error for Rejected {}

impl Breakers {
    /// Asks to call `model`: a permit to record the outcome on, or how long to wait.
    pub fn admit(&self, model: &str) -> Result<Permit, Rejected> {
        let shared = &self.shared;
        let now = shared.clock.now();
        let mut inner = shared.lock();
        let mut transition = None;
        let inner_ref = &mut *inner;
        let circuit = shared.circuit(&mut inner_ref.circuits, model);
        if let Phase::Open { until } = circuit.phase
            && now >= until
        {
            transition = Some(shared.half_open(&mut inner_ref.seq, model, circuit));
        }
        let decision = match &mut circuit.phase {
            Phase::Closed => Ok(false),
            Phase::Open { until } => Err(Rejected {
                retry_in: until.saturating_duration_since(now),
                state: CircuitState::Open,
            }),
            Phase::HalfOpen { in_flight } if *in_flight < shared.config.half_open_probes.max(1) => {
                *in_flight += 1;
                Ok(true)
            }
            Phase::HalfOpen { .. } => Err(Rejected {
                retry_in: HALF_OPEN_BUSY_RETRY,
                state: CircuitState::HalfOpen,
            }),
        };
        let epoch = circuit.epoch;
        if transition.is_some() {
            shared.publish(&inner);
        }
        shared.fire(transition);
        drop(inner);
        decision.map(|probe| Permit {
            shared: Arc::clone(shared),
            model: model.to_owned(),
            epoch,
            probe,
            settled: false,
        })
    }
}

/// Leave to call one model; record how the call went on it. Dropping it without recording is
/// a neutral outcome (not counted; frees a half-open probe slot).
#[must_use = "record the call's outcome on the permit; dropping it counts as neutral"]
pub struct Permit {
    shared: Arc<Shared>,
    model: String,
    epoch: u64,
    probe: bool,
    settled: bool,
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("model", &self.model)
            .field("probe", &self.probe)
            .finish_non_exhaustive()
    }
}

impl Permit {
    /// Whether this is a half-open probe (its outcome decides whether the breaker closes).
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// The call succeeded.
    pub fn success(mut self) {
        self.settle(Outcome::Success);
    }

    /// The call failed transiently (5xx, timeout, connection): counts in the failure rate;
    /// reopens a half-open breaker.
    pub fn failure(mut self, reason: impl Into<String>) {
        self.settle(Outcome::Failure(reason.into()));
    }

    /// The call failed in a way every call will until a person acts (401/402/403, bad
    /// configuration): opens the breaker at once.
    pub fn systemic(mut self, reason: impl Into<String>) {
        self.settle(Outcome::Systemic(reason.into()));
    }

    fn settle(&mut self, outcome: Outcome) {
        if !self.settled {
            self.settled = true;
            self.shared
                .record(&self.model, self.epoch, self.probe, outcome);
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.settle(Outcome::Neutral);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breaker::fixture::{MODEL, config, fixture};

    #[tokio::test]
    async fn open_rejects_then_half_open_admits_exactly_the_probes() {
        let f = fixture(config());
        f.open();
        let rejected = f.reject();
        assert_eq!(rejected.state, CircuitState::Open);
        assert_eq!(rejected.retry_in, Duration::from_secs(5));
        f.clock.advance(Duration::from_secs(3));
        assert_eq!(f.reject().retry_in, Duration::from_secs(2));

        f.wait_half_open(Duration::from_secs(2)).await;
        let first = f.admit();
        let second = f.admit();
        assert!(first.is_probe() && second.is_probe());
        let busy = f.reject();
        assert_eq!(busy.state, CircuitState::HalfOpen);
        assert_eq!(busy.retry_in, HALF_OPEN_BUSY_RETRY);

        // A neutral probe frees its slot without deciding anything.
        drop(first);
        assert_eq!(f.state(), CircuitState::HalfOpen);
        let third = f.admit();
        assert!(
            f.breakers.admit(MODEL).is_err(),
            "two probes in flight again"
        );
        drop((second, third));
    }
}

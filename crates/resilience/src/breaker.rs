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

use std::{
    collections::{HashMap, VecDeque},
    fmt,
    sync::{Arc, Mutex, MutexGuard, PoisonError, Weak},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};
use serde::Serialize;
use tokio::sync::watch;

use crate::clock::{Clock, SystemClock};

/// How long a caller refused because every half-open probe slot is taken should wait before
/// asking again (the probes in flight will have decided by then, or nearly).
pub const HALF_OPEN_BUSY_RETRY: Duration = Duration::from_millis(250);

/// How the breakers decide (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerConfig {
    /// Counted outcomes remembered (the most recent ones).
    pub window_calls: usize,
    /// Counted outcomes needed in the window before the failure rate can open the breaker.
    pub min_calls: usize,
    /// Share of failures in the window (0..=1) that opens the breaker.
    pub failure_rate: f64,
    /// The first open period.
    pub open_for: Duration,
    /// The longest open period (it doubles after each failed probe).
    pub max_open_for: Duration,
    /// Probe calls admitted at once while half-open.
    pub half_open_probes: usize,
}

impl From<&settings::BreakerSettings> for BreakerConfig {
    fn from(settings: &settings::BreakerSettings) -> Self {
        Self {
            window_calls: settings.window_calls,
            min_calls: settings.min_calls,
            failure_rate: settings.failure_rate,
            open_for: Duration::from_secs(settings.open_seconds),
            max_open_for: Duration::from_secs(settings.max_open_seconds),
            half_open_probes: settings.half_open_probes,
        }
    }
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self::from(&settings::BreakerSettings::default())
    }
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Closed,
    Open { until: Instant },
    HalfOpen { in_flight: usize },
}

impl Phase {
    fn state(self) -> CircuitState {
        match self {
            Self::Closed => CircuitState::Closed,
            Self::Open { .. } => CircuitState::Open,
            Self::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }
}

struct Circuit {
    phase: Phase,
    /// Counted outcomes while closed, oldest first: `true` for a failure.
    window: VecDeque<bool>,
    /// The next open period.
    open_for: Duration,
    /// Bumped on every transition; a permit's outcome counts only in its own epoch.
    epoch: u64,
    since: DateTime<Utc>,
    reason: Option<String>,
    open_until: Option<DateTime<Utc>>,
}

enum Outcome {
    Success,
    Failure(String),
    Systemic(String),
    Neutral,
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

    /// The state of `model`'s breaker now (closed for a model never seen).
    pub fn state(&self, model: &str) -> CircuitState {
        self.shared
            .lock()
            .circuits
            .get(model)
            .map_or(CircuitState::Closed, |c| c.phase.state())
    }

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

    fn circuit<'a>(
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
    fn record(&self, model: &str, epoch: u64, probe: bool, outcome: Outcome) {
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

    fn half_open(&self, seq: &mut u64, model: &str, circuit: &mut Circuit) -> Transition {
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
    /// runtime; without one the next [`Breakers::admit`] flips it).
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

    fn publish(&self, inner: &Inner) {
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

    fn fire(&self, transition: Option<Transition>) {
        if let (Some(hook), Some(transition)) = (&self.hook, transition) {
            hook(transition);
        }
    }
}

fn wall_after(after: Duration) -> DateTime<Utc> {
    let now = Utc::now();
    chrono::Duration::from_std(after)
        .ok()
        .and_then(|after| now.checked_add_signed(after))
        .unwrap_or(now)
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
    use std::sync::Mutex;

    use super::*;
    use crate::clock::ManualClock;

    const MODEL: &str = "command-a-vision-07-2025";

    fn config() -> BreakerConfig {
        BreakerConfig {
            window_calls: 10,
            min_calls: 5,
            failure_rate: 0.5,
            open_for: Duration::from_secs(5),
            max_open_for: Duration::from_secs(12),
            half_open_probes: 2,
        }
    }

    struct Fixture {
        breakers: Breakers,
        clock: ManualClock,
        registry: Registry,
        transitions: Arc<Mutex<Vec<Transition>>>,
    }

    fn fixture(config: BreakerConfig) -> Fixture {
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
        fn admit(&self) -> Permit {
            self.breakers.admit(MODEL).expect("admitted")
        }

        fn reject(&self) -> Rejected {
            self.breakers.admit(MODEL).expect_err("rejected")
        }

        fn fail(&self, times: usize) {
            for _ in 0..times {
                self.admit().failure("HTTP 503");
            }
        }

        fn succeed(&self, times: usize) {
            for _ in 0..times {
                self.admit().success();
            }
        }

        fn state(&self) -> CircuitState {
            self.breakers.state(MODEL)
        }

        fn path(&self) -> Vec<(CircuitState, CircuitState)> {
            self.transitions
                .lock()
                .expect("lock")
                .iter()
                .map(|t| (t.from, t.to))
                .collect()
        }

        /// Opens the breaker with a systemic failure.
        fn open(&self) {
            self.admit().systemic("HTTP 401");
            assert_eq!(self.state(), CircuitState::Open);
        }

        /// Moves the clock past the open period and waits for the timer to flip the state.
        async fn wait_half_open(&self, open_for: Duration) {
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

        fn gauge(&self, model: &str) -> Option<i64> {
            self.metric("cohere_circuit_state", &[("model", model)])
        }

        fn transitions_to(&self, to: &str) -> Option<i64> {
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

    #[test]
    fn registering_twice_in_one_registry_fails_cleanly() {
        let registry = Registry::new();
        let _first = Breakers::new(config(), &registry, None).expect("first");
        assert!(Breakers::new(config(), &registry, None).is_err());
    }

    #[test]
    fn the_config_comes_from_the_settings() {
        let config = BreakerConfig::from(&settings::BreakerSettings::default());
        assert_eq!(config.window_calls, 20);
        assert_eq!(config.open_for, Duration::from_secs(5));
        assert_eq!(config.max_open_for, Duration::from_secs(60));
        assert_eq!(config.half_open_probes, 1);
    }

    fn serde_json_like(states: &[BreakerState]) -> String {
        serde_json::to_string(states).expect("serialise")
    }
}

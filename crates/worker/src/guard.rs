//! What stands between the worker and Cohere: a circuit breaker per model, the cluster-wide
//! rate limiter, and the in-process retry policy (DESIGN.md, "Failure handling"). Breaker
//! transitions are written to `circuit_breakers`, where the re-driver reads whether Cohere
//! is healthy again.

use std::time::Duration;

use prometheus::Registry;
use resilience::{BreakerConfig, BreakerState, BreakerSummary, Breakers, CircuitState, Permit};
use sea_orm::DatabaseConnection;
use settings::Settings;
use store::StoreError;
use tokio::sync::{mpsc, watch};

/// May a call to a model go ahead?
pub enum Admission {
    /// Yes; record its outcome on the permit.
    Go(Permit),
    /// Not yet: the breaker is half-open and its probe slots are taken.
    Wait(Duration),
    /// No: the breaker is open. Hand the message back.
    Open,
}

pub struct Guard {
    breakers: Breakers,
    limiter: resilience::RateLimiter,
    retry: settings::RetrySettings,
}

impl Guard {
    /// Builds the guard from the settings; breaker metrics go to `registry`, breaker
    /// transitions to the `circuit_breakers` table under `worker_id`.
    pub fn new(
        settings: &Settings,
        db: DatabaseConnection,
        registry: &Registry,
        worker_id: String,
    ) -> anyhow::Result<Self> {
        let (transitions, persist) = mpsc::unbounded_channel();
        tokio::spawn(persist_transitions(db.clone(), worker_id, persist));
        let hook: resilience::TransitionHook = std::sync::Arc::new(move |t| {
            let _ = transitions.send(t);
        });
        let breakers = Breakers::new(BreakerConfig::from(&settings.breaker), registry, Some(hook))?;
        let limiter = resilience::RateLimiter::from_settings(db, &settings.cohere);
        Ok(Self {
            breakers,
            limiter,
            retry: settings.retry.clone(),
        })
    }

    pub fn admit(&self, model: &str) -> Admission {
        match self.breakers.admit(model) {
            Ok(permit) => Admission::Go(permit),
            Err(rejected) if rejected.state == CircuitState::HalfOpen => {
                Admission::Wait(rejected.retry_in)
            }
            Err(_) => Admission::Open,
        }
    }

    pub fn is_open(&self, model: &str) -> bool {
        self.breakers.state(model) == CircuitState::Open
    }

    /// Waits for the model's next slot of the cluster-wide rate limit; returns how long.
    pub async fn pace(&self, model: &str) -> Result<Duration, StoreError> {
        self.limiter.acquire(model).await
    }

    /// After a 429: every replica waits `wait` before its next call to `model`.
    pub async fn back_off(&self, model: &str, wait: Duration) -> Result<(), StoreError> {
        self.limiter.back_off(model, wait).await
    }

    /// The pauses between in-process tries (full jitter).
    pub fn backoff(&self) -> impl Iterator<Item = Duration> + Send + use<> {
        backon::BackoffBuilder::build(resilience::FullJitterBuilder::from(&self.retry))
    }

    pub fn in_process_tries(&self) -> u32 {
        self.retry.in_process_tries
    }

    /// Which models' breakers are open or half-open, as it changes.
    pub fn subscribe(&self) -> watch::Receiver<BreakerSummary> {
        self.breakers.subscribe()
    }

    pub fn breaker_states(&self) -> Vec<BreakerState> {
        self.breakers.snapshot()
    }
}

/// Writes breaker transitions, in order, to `circuit_breakers` (best effort: a lost row
/// only delays the re-driver's automatic re-drives).
async fn persist_transitions(
    db: DatabaseConnection,
    worker_id: String,
    mut transitions: mpsc::UnboundedReceiver<resilience::Transition>,
) {
    while let Some(t) = transitions.recv().await {
        let change = store::breakers::Change {
            worker_id: &worker_id,
            model: &t.model,
            state: t.to.as_str(),
            reason: &t.reason,
            at: t.at,
            open_until: t.open_until,
        };
        if let Err(error) = store::breakers::record(&db, change).await {
            tracing::warn!(%error, model = t.model, "could not record a breaker transition");
        }
    }
}

//! Failure handling around Cohere calls (DESIGN.md, "Failure handling"), independent of
//! RabbitMQ and of the worker, which wires these parts in:
//!
//! - [`limiter`]: the **cluster-wide rate limiter** ([`RateLimiter`]), one PostgreSQL row per
//!   model shared by every worker replica. [`RateLimiter::acquire`] before each call;
//!   [`RateLimiter::back_off`] after a 429 holds every replica back until its `Retry-After`.
//! - [`breaker`]: a **circuit breaker per model** ([`Breakers`]) in each worker process.
//!   [`Breakers::admit`] before each call gives a [`Permit`] to record the outcome on, or a
//!   [`Rejected`] with how long to wait. [`Breakers::subscribe`] watches which breakers are
//!   open (a consumer stops taking messages while Cohere is down and resumes when a breaker
//!   turns half-open); [`Breakers::snapshot`] is the JSON for `/readyz`; a transition hook
//!   lets the worker persist transitions to `circuit_breakers`.
//! - [`backoff`]: **in-process retry delays** with full jitter ([`FullJitterBuilder`], a backon
//!   `BackoffBuilder`) from `RetrySettings`: `in_process_tries - 1` retries of a transient
//!   failure before the delivery goes to a delay queue.
//! - [`clock`]: the breakers' time source, replaceable in tests.
//!
//! # How the worker uses them, per call
//!
//! 1. `breakers.admit(model)`: rejected → do not call; leave the message for later (nack or
//!    requeue after `retry_in`; never fail or dead-letter it for this).
//! 2. `limiter.acquire(model)`: wait for the cluster's next slot.
//! 3. Call Cohere, then by `CohereError::class()`:
//!    - success → `permit.success()`.
//!    - **rate-limited** (429) → drop the permit (neutral: a 429 says nothing about Cohere's
//!      health), `limiter.back_off(model, error.retry_after().unwrap_or(default))` (clamped),
//!      and retry from step 1 **without counting an attempt**.
//!    - **transient** (5xx, 499, timeout, connection) → `permit.failure(reason)`, then retry
//!      after the next [`FullJitterBuilder`] delay; once those are used up, the delay queue,
//!      then the dead letter after `max_attempts` deliveries.
//!    - **systemic** (401/402/403, misconfiguration) → `permit.systemic(reason)`: the breaker
//!      opens at once; keep the message, stop consuming until the breaker half-opens, report
//!      unhealthy.
//!    - **permanent** (400, 404, 422, 498, bad image) → drop the permit (neutral: the request
//!      was wrong, Cohere is fine) and fail the item with its reason, dead-lettered for
//!      inspection.
//!
//! A call cancelled midway (job cancelled, shutdown) just drops its permit: neutral.

pub mod backoff;
pub mod breaker;
pub mod clock;
pub mod limiter;

pub use backoff::{FullJitter, FullJitterBuilder};
pub use breaker::{
    BreakerConfig, BreakerState, BreakerSummary, Breakers, CircuitState, Permit, Rejected,
    Transition, TransitionHook,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use limiter::{RateLimiter, Reservation};

#![allow(clippy::unwrap_used)]
//! The worker: jobs run end to end through workers and the Cohere stand-in, what each failure
//! class does to items, dead letters and the circuit breaker, one trace from the api's request
//! to the Cohere call, and the worker's metrics.

mod admission;
mod costs;
mod estimates;
mod failures;
mod metrics;
mod pipeline_runs;
mod traces;

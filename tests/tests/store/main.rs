#![allow(clippy::unwrap_used)]
//! The database layer against a real PostgreSQL, called directly rather than through a
//! service (jobs to write to are submitted through the api): the migrations, the worker's
//! batched writes (`store::work`), re-opening failed items (`store::retry`) and the
//! cluster-wide rate limiter (`resilience::RateLimiter`).

mod budget;
mod library_counts;
mod migrations;
mod rate_limiter;
mod reopen;
mod worker_batches;

#![allow(clippy::unwrap_used)]
//! The database layer against a real PostgreSQL, without the api in between: the migrations,
//! the worker's batched writes (`store::work`) and the cluster-wide rate limiter.

mod migrations;
mod rate_limiter;
mod reopen;
mod worker_batches;

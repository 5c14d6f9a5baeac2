#![allow(clippy::unwrap_used)]
//! End-to-end tests of the API, from the outside: HTTP requests in, HTTP responses,
//! database rows and broker messages out.

mod auth;
mod bulk_jobs;
mod errors;
mod failures;
mod images;
mod job_items;
mod job_retry;
mod jobs;
mod libraries;
mod metrics;
mod migrations;
mod openapi;
mod pipeline_runs;
mod pipelines;
mod preview_jobs;
mod rate_limiter;
mod redriver;
mod results;
mod session;
mod system_health;
mod tenant_events;
mod thumbnails;
mod traces;
mod ui;
mod worker_batches;

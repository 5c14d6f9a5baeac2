#![allow(clippy::unwrap_used)]
//! End-to-end tests of the API, from the outside: HTTP requests in, HTTP responses,
//! database rows and broker messages out.

mod auth;
mod errors;
mod images;
mod jobs;
mod libraries;
mod migrations;
mod openapi;
mod pipeline_runs;
mod pipelines;
mod results;
mod worker_batches;

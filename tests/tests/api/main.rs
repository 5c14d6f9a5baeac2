#![allow(clippy::unwrap_used)]
//! The api from the outside: HTTP requests in; HTTP responses, database rows and broker
//! messages out. Some tests run a worker to bring a job to the state they read.

mod auth;
mod budget;
mod bulk_jobs;
mod errors;
mod estimates;
mod images;
mod job_items;
mod job_retry;
mod jobs;
mod libraries;
mod metrics;
mod openapi;
mod pipelines;
mod preview_jobs;
mod results;
mod session;
mod system_health;
mod tenant_events;
mod thumbnails;
mod ui;

//! HTTP plumbing the REST API (`api`) and the re-driver's admin API (`redriver`) share, and
//! the start-up and shutdown every binary (the worker too) shares.
//!
//! - [`problem`]: the `application/problem+json` body ([`Problem`]) and [`ProblemError`], the
//!   one way a service's error type becomes that response.
//! - [`request`]: what the shared extractor error handlers found wrong ([`RequestError`]),
//!   the handlers for `web::Json`, `web::Query` and `web::Path`, the bearer token of a
//!   request, and pagination: the checked `limit`/`offset` and the [`Paged`] body.
//! - [`routes`]: the documented routes ([`RouteTable`]) and the fallback for requests no
//!   handler takes (405 with `Allow`, else 404).
//! - [`health`]: `/healthz`, and `/readyz` over each service's [`health::Dependencies`].
//! - [`probes`]: the probe and metrics server of a service without an API (worker, scheduler).
//! - [`startup`]: what every binary does first (the TLS crypto provider).
//! - [`shutdown`]: the signal that starts a graceful shutdown and the [`Shutdown`] flag
//!   readiness, event streams and background loops watch.
//! - [`openapi`]: the document conventions (bearer scheme, common problem responses, the
//!   `Problem` schema) and the document's shape for client generators (named union variants
//!   with discriminators).
//!
//! Mechanism only: each service keeps its own error enum, and with it its variants, codes and
//! texts. The shared handlers report a [`RequestError`] that the service turns into its own
//! error through `From`.

pub mod health;
pub mod openapi;
pub mod probes;
pub mod problem;
pub mod request;
pub mod routes;
pub mod shutdown;
pub mod startup;
#[cfg(test)]
mod test_support;

pub use health::{Health, Readiness, ReadinessChecks};
pub use problem::{PROBLEM_JSON, Problem, ProblemError};
pub use request::{Paged, RequestError};
pub use routes::RouteTable;
pub use shutdown::Shutdown;

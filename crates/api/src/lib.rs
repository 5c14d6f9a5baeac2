//! The REST API: libraries, images, pipelines and jobs under `/api`, the OpenAPI document at
//! `/api/openapi.json`, browsable docs at `/docs`, `/healthz` and `/readyz`, `/metrics`, and the
//! web dashboard at `/`.

pub mod admin;
pub mod auth;
pub mod budget;
pub mod cache;
pub mod error;
pub mod events;
pub mod extract;
pub mod metrics;
pub mod openapi;
pub mod origin;
pub mod routes;
pub mod startup;
pub mod state;
pub mod thumbnail;
pub mod ui;

pub use startup::Application;

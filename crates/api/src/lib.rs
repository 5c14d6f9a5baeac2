//! The REST API: libraries, images, pipelines and jobs under `/api`, the OpenAPI document at
//! `/api/openapi.json`, browsable docs at `/docs`, and `/healthz` and `/readyz`.

pub mod admin;
pub mod auth;
pub mod cache;
pub mod error;
pub mod events;
pub mod extract;
pub mod openapi;
pub mod routes;
pub mod startup;
pub mod state;
pub mod thumbnail;

pub use startup::Application;

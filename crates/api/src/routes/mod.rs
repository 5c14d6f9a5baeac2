//! HTTP handlers, one module per resource. Each handler parses its input, calls a store or
//! service function and maps the result; errors become problem+json in one place.

pub mod events;
pub mod health;
pub mod images;
pub mod jobs;
pub mod libraries;
pub mod pipelines;
pub mod results;

use serde::Serialize;
use utoipa::ToSchema;

/// One page of a list, with the total number of matches.
#[derive(Debug, Serialize, ToSchema)]
pub struct Paged<T: ToSchema> {
    pub items: Vec<T>,
    /// Number of matches across all pages.
    pub total: u64,
    pub limit: u64,
    pub offset: u64,
}

impl<T: ToSchema> Paged<T> {
    pub fn new(page: store::Page<T>, request: store::PageRequest) -> Self {
        Paged {
            items: page.items,
            total: page.total,
            limit: request.limit,
            offset: request.offset,
        }
    }
}

/// Every `/api` route.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    libraries::configure(cfg);
    images::configure(cfg);
    pipelines::configure(cfg);
    jobs::configure(cfg);
    cfg.service(events::job_events);
    results::configure(cfg);
}

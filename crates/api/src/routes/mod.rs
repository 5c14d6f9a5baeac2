//! HTTP handlers, one module per resource. Each handler parses its input, calls a store or
//! service function and maps the result; errors become problem+json in one place.

pub mod bulk;
pub mod events;
pub mod health;
pub mod images;
pub mod items;
pub mod jobs;
pub mod libraries;
pub mod pipelines;
pub mod preview;
pub mod results;
pub mod session;
pub mod system_health;
pub mod tenant_events;
pub mod thumbnails;

pub use http_support::Paged;
use utoipa::ToSchema;

/// A page of the store as a page of the API.
pub fn paged<T: ToSchema>(page: store::Page<T>, request: store::PageRequest) -> Paged<T> {
    Paged {
        items: page.items,
        total: page.total,
        limit: request.limit,
        offset: request.offset,
    }
}

/// Every `/api` route.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    libraries::configure(cfg);
    images::configure(cfg);
    cfg.service(thumbnails::get_thumbnail);
    pipelines::configure(cfg);
    bulk::configure(cfg);
    cfg.service(preview::preview_job);
    jobs::configure(cfg);
    cfg.service(events::job_events);
    cfg.service(tenant_events::tenant_events);
    results::configure(cfg);
    session::configure(cfg);
    items::configure(cfg);
    cfg.service(system_health::system_health);
}

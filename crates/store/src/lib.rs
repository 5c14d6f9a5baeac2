//! Persistence: sea-orm entities and the queries the services make, always scoped to
//! one tenant, plus the object store that holds uploaded image bytes.
//!
//! Every query function takes a [`TenantId`] (except the few that resolve one, like API-key
//! lookup), so "another tenant's row" is indistinguishable from "no such row".

pub mod admission;
pub mod breakers;
pub mod budget;
pub mod dead_letters;
pub mod entities;
pub mod error;
pub mod estimate;
pub mod images;
pub mod items;
pub mod jobs;
pub mod libraries;
pub mod objects;
pub mod page;
pub mod pipelines;
pub mod rate_limits;
pub mod results;
pub mod retry;
pub mod sessions;
pub mod tenants;
pub mod work;

use std::time::Duration;

pub use error::StoreError;
pub use page::{Page, PageRequest};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use secrecy::ExposeSecret;
pub use uuid::Uuid;

/// The tenant a request acts for; obtained only by authenticating an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TenantId(pub Uuid);

/// Opens the connection pool described by the settings.
pub async fn connect(
    settings: &settings::DatabaseSettings,
) -> Result<DatabaseConnection, StoreError> {
    let mut options = ConnectOptions::new(settings.url.expose_secret().to_string());
    options
        .max_connections(settings.max_connections)
        .min_connections(settings.min_connections)
        .connect_timeout(Duration::from_secs(settings.connect_timeout_seconds))
        .acquire_timeout(Duration::from_secs(settings.acquire_timeout_seconds))
        .connect_lazy(true)
        .sqlx_logging(false);
    Ok(Database::connect(options).await?)
}

/// True when the database answers a trivial query.
pub async fn ping(db: &DatabaseConnection) -> bool {
    db.ping().await.is_ok()
}

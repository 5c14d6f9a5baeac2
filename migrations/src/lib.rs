//! Database schema migrations, applied in order by [`Migrator`].
//!
//! The schema is written as plain PostgreSQL so that every index and constraint is
//! visible in one place; `down` drops exactly what `up` created.

pub use sea_orm_migration::prelude::*;

mod m20261128_000001_initial_schema;
mod m20261128_000002_job_event_seq;
mod m20261129_000003_failure_handling;
mod m20261129_000004_sessions;
mod m20261129_000005_jobs_changed_index;
mod m20261129_000006_pending_items_index;
mod m20261129_000007_breaker_open_until;
mod m20261129_000008_job_previews;
mod m20261130_000009_admission;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261128_000001_initial_schema::Migration),
            Box::new(m20261128_000002_job_event_seq::Migration),
            Box::new(m20261129_000003_failure_handling::Migration),
            Box::new(m20261129_000004_sessions::Migration),
            Box::new(m20261129_000005_jobs_changed_index::Migration),
            Box::new(m20261129_000006_pending_items_index::Migration),
            Box::new(m20261129_000007_breaker_open_until::Migration),
            Box::new(m20261129_000008_job_previews::Migration),
            Box::new(m20261130_000009_admission::Migration),
        ]
    }
}

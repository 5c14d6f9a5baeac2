//! Hand-written sea-orm entities, one module per table of the initial migration
//! (`migrations/src/m20261128_000001_initial_schema.rs`). Status, priority, class and detail
//! columns are `text` holding the names of the `domain` enums, and the fields here are those
//! enums (their column mapping is `domain`'s `sea-orm` feature): a name that is no variant
//! makes the row fail to load as [`crate::StoreError::Corrupt`].

pub mod api_keys;
pub mod circuit_breakers;
pub mod dead_letters;
pub mod images;
pub mod job_items;
pub mod job_results;
pub mod job_stage_stats;
pub mod jobs;
pub mod libraries;
pub mod pipelines;
pub mod redrive_audit;
pub mod stages;
pub mod tenants;

pub mod prelude {
    pub use super::api_keys::Entity as ApiKeys;
    pub use super::circuit_breakers::Entity as CircuitBreakers;
    pub use super::dead_letters::Entity as DeadLetters;
    pub use super::images::Entity as Images;
    pub use super::job_items::Entity as JobItems;
    pub use super::job_results::Entity as JobResults;
    pub use super::job_stage_stats::Entity as JobStageStats;
    pub use super::jobs::Entity as Jobs;
    pub use super::libraries::Entity as Libraries;
    pub use super::pipelines::Entity as Pipelines;
    pub use super::redrive_audit::Entity as RedriveAudit;
    pub use super::stages::Entity as Stages;
    pub use super::tenants::Entity as Tenants;
}

//! `jobs`: A job: one pipeline (as snapshotted at submission) run over images of a library.
//! `pipeline_id` and `library_id` are plain references, not foreign keys, so history survives
//! the deletion of those rows. `status` and `priority` hold the domain enums' names.

use domain::job::{JobStatus, Priority, StopReason};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "jobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub pipeline_id: Uuid,
    pub library_id: Uuid,
    #[sea_orm(column_type = "JsonBinary")]
    pub pipeline_snapshot: Json,
    #[sea_orm(column_type = "Text")]
    pub status: JobStatus,
    #[sea_orm(column_type = "Text")]
    pub priority: Priority,
    #[sea_orm(column_type = "Text", nullable)]
    pub idempotency_key: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub request_hash: Option<String>,
    pub total_items: i32,
    pub pending_items: i32,
    pub running_items: i32,
    pub passed_items: i32,
    pub filtered_out_items: i32,
    pub failed_items: i32,
    pub cancelled_items: i32,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub billed_input_tokens: i64,
    pub billed_output_tokens: i64,
    pub cost_usd: f64,
    #[sea_orm(column_type = "Text", nullable)]
    pub error_summary: Option<String>,
    pub created_at: DateTimeWithTimeZone,
    pub updated_at: DateTimeWithTimeZone,
    #[sea_orm(nullable)]
    pub started_at: Option<DateTimeWithTimeZone>,
    #[sea_orm(nullable)]
    pub finished_at: Option<DateTimeWithTimeZone>,
    /// Incremented with every change; orders job events.
    pub event_seq: i64,
    /// A stage tried on a few images before a pipeline is saved; hidden from the history.
    pub preview: bool,
    /// The images named at submission, in order; `None`: the library's images created up to
    /// `images_as_of`.
    #[sea_orm(nullable)]
    pub image_ids: Option<Vec<Uuid>>,
    #[sea_orm(nullable)]
    pub images_as_of: Option<DateTimeWithTimeZone>,
    /// Items written so far (the scheduler writes them in chunks); `total_items` when done.
    pub materialized_items: i32,
    /// Keyset cursor of a library job's materialization: the last image written.
    #[sea_orm(nullable)]
    pub materialized_through_created: Option<DateTimeWithTimeZone>,
    #[sea_orm(nullable)]
    pub materialized_through_id: Option<Uuid>,
    /// Spend at which the job stops starting calls.
    #[sea_orm(nullable)]
    pub max_cost_usd: Option<f64>,
    pub skipped_items: i32,
    #[sea_orm(column_type = "Text", nullable)]
    pub stop_reason: Option<StopReason>,
    /// The submission's W3C `traceparent`, continued by the scheduler's releases.
    #[sea_orm(column_type = "Text", nullable)]
    pub traceparent: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::tenants::Entity",
        from = "Column::TenantId",
        to = "super::tenants::Column::Id",
        on_delete = "Cascade"
    )]
    Tenant,
    #[sea_orm(has_many = "super::job_stage_stats::Entity")]
    JobStageStats,
    #[sea_orm(has_many = "super::job_items::Entity")]
    JobItems,
    #[sea_orm(has_many = "super::job_results::Entity")]
    JobResults,
}

impl Related<super::tenants::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Tenant.def()
    }
}

impl Related<super::job_stage_stats::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::JobStageStats.def()
    }
}

impl Related<super::job_items::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::JobItems.def()
    }
}

impl Related<super::job_results::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::JobResults.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

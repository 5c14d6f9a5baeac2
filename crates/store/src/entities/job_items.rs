//! `job_items`: One image of a job. `(job_id, image_id)` is unique; `image_id` is a plain reference.
//! `status` and `error_class` hold the domain enums' names.

use domain::job::{ErrorClass, ItemStatus, StopReason};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "job_items")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub job_id: Uuid,
    pub image_id: Uuid,
    #[sea_orm(column_type = "Text")]
    pub status: ItemStatus,
    pub current_stage: i32,
    pub attempts: i32,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub error_class: Option<ErrorClass>,
    pub created_at: DateTimeWithTimeZone,
    pub updated_at: DateTimeWithTimeZone,
    #[sea_orm(nullable)]
    pub finished_at: Option<DateTimeWithTimeZone>,
    /// Place in the job: the order items are released in.
    pub position: i32,
    /// When the scheduler published the item's first-stage message; `None`: still waiting.
    #[sea_orm(nullable)]
    pub released_at: Option<DateTimeWithTimeZone>,
    #[sea_orm(column_type = "Text", nullable)]
    pub skip_reason: Option<StopReason>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::jobs::Entity",
        from = "Column::JobId",
        to = "super::jobs::Column::Id",
        on_delete = "Cascade"
    )]
    Job,
    #[sea_orm(has_many = "super::job_results::Entity")]
    JobResults,
}

impl Related<super::jobs::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Job.def()
    }
}

impl Related<super::job_results::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::JobResults.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

//! `dead_letters`: A message drained from the dead-letter queue. `tenant_id` is nullable (a poison
//! message may name no tenant); `job_id`/`item_id` are plain references. `error_class` and
//! `status` (`open | redriven | purged`) hold the domain enums' names.

use domain::job::{DeadLetterStatus, ErrorClass};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "dead_letters")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(nullable)]
    pub tenant_id: Option<Uuid>,
    #[sea_orm(nullable)]
    pub job_id: Option<Uuid>,
    #[sea_orm(nullable)]
    pub item_id: Option<Uuid>,
    #[sea_orm(nullable)]
    pub stage_index: Option<i32>,
    #[sea_orm(column_type = "Text")]
    pub error_class: ErrorClass,
    #[sea_orm(column_type = "Text")]
    pub error_message: String,
    pub attempts: i32,
    #[sea_orm(nullable)]
    pub first_failed_at: Option<DateTimeWithTimeZone>,
    pub dead_lettered_at: DateTimeWithTimeZone,
    #[sea_orm(column_type = "VarBinary(StringLen::None)")]
    pub payload: Vec<u8>,
    #[sea_orm(column_type = "JsonBinary")]
    pub headers: Json,
    #[sea_orm(column_type = "Text")]
    pub status: DeadLetterStatus,
    pub redrive_count: i32,
    #[sea_orm(nullable)]
    pub last_redriven_at: Option<DateTimeWithTimeZone>,
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
    #[sea_orm(has_many = "super::redrive_audit::Entity")]
    RedriveAudit,
}

impl Related<super::tenants::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Tenant.def()
    }
}

impl Related<super::redrive_audit::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::RedriveAudit.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

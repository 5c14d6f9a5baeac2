//! `job_results`: The result of one stage for one item; `(item_id, stage_index)` is unique, so a
//! redelivered stage message finds it and skips the call. `passed` is the filter's verdict.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "job_results")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub job_id: Uuid,
    pub item_id: Uuid,
    pub image_id: Uuid,
    pub stage_index: i32,
    #[sea_orm(column_type = "Text")]
    pub model: String,
    #[sea_orm(column_type = "Text")]
    pub output_text: String,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub output_json: Option<Json>,
    pub passed: bool,
    #[sea_orm(column_type = "Text", nullable)]
    pub filter_reason: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub finish_reason: Option<String>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub billed_input_tokens: i64,
    pub billed_output_tokens: i64,
    pub latency_ms: i32,
    /// Priced from the billed tokens with the worker's price table.
    pub cost_usd: f64,
    pub created_at: DateTimeWithTimeZone,
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
    #[sea_orm(
        belongs_to = "super::job_items::Entity",
        from = "Column::ItemId",
        to = "super::job_items::Column::Id",
        on_delete = "Cascade"
    )]
    JobItem,
}

impl Related<super::jobs::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Job.def()
    }
}

impl Related<super::job_items::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::JobItem.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

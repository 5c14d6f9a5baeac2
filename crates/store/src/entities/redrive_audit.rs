//! `redrive_audit`: An audit record of one re-drive command (or one re-driven dead letter).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "redrive_audit")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(column_type = "Text")]
    pub requested_by: String,
    #[sea_orm(nullable)]
    pub dead_letter_id: Option<Uuid>,
    #[sea_orm(column_type = "JsonBinary")]
    pub filter: Json,
    pub dry_run: bool,
    pub matched: i32,
    pub redriven: i32,
    #[sea_orm(column_type = "Text", nullable)]
    pub note: Option<String>,
    pub created_at: DateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::dead_letters::Entity",
        from = "Column::DeadLetterId",
        to = "super::dead_letters::Column::Id",
        on_delete = "SetNull"
    )]
    DeadLetter,
}

impl Related<super::dead_letters::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::DeadLetter.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

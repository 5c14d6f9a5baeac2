//! `circuit_breakers`: each worker's circuit breaker per model, written on every transition.
//! Composite primary key `(worker_id, model)`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "circuit_breakers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false, column_type = "Text")]
    pub worker_id: String,
    #[sea_orm(primary_key, auto_increment = false, column_type = "Text")]
    pub model: String,
    /// `closed`, `half_open` or `open`.
    #[sea_orm(column_type = "Text")]
    pub state: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub reason: Option<String>,
    pub changed_at: DateTimeWithTimeZone,
    #[sea_orm(nullable)]
    pub open_until: Option<DateTimeWithTimeZone>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

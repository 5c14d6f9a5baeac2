//! `stages`: One stage of a pipeline. `(pipeline_id, position)` is unique; `image_detail` is
//! `auto | low | high`.

use domain::pipeline::ImageDetail;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "stages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub pipeline_id: Uuid,
    pub position: i32,
    #[sea_orm(column_type = "Text")]
    pub name: String,
    #[sea_orm(column_type = "Text")]
    pub model: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub system_prompt: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub prompt: String,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub json_schema: Option<Json>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub filter: Option<Json>,
    #[sea_orm(nullable)]
    pub temperature: Option<f64>,
    #[sea_orm(nullable)]
    pub max_tokens: Option<i32>,
    #[sea_orm(column_type = "Text")]
    pub image_detail: ImageDetail,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::pipelines::Entity",
        from = "Column::PipelineId",
        to = "super::pipelines::Column::Id",
        on_delete = "Cascade"
    )]
    Pipeline,
}

impl Related<super::pipelines::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Pipeline.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

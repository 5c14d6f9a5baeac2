//! Pipelines and their ordered stages.

use chrono::Utc;
use domain::{
    pipeline::{PipelineSpec, StageSpec},
    validation::Name,
};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use uuid::Uuid;

use crate::{
    Page, PageRequest, StoreError, TenantId,
    entities::{pipelines, stages},
};

/// A pipeline with its stages in order.
#[derive(Debug, Clone)]
pub struct PipelineView {
    pub pipeline: pipelines::Model,
    pub spec: PipelineSpec,
}

/// Name, description and stages of a pipeline, already validated.
pub struct PipelineInput<'a> {
    pub name: &'a Name,
    pub description: Option<&'a str>,
    pub spec: &'a PipelineSpec,
}

pub async fn create(
    db: &DatabaseConnection,
    tenant: TenantId,
    input: PipelineInput<'_>,
) -> Result<PipelineView, StoreError> {
    let txn = db.begin().await?;
    let now = Utc::now();
    let pipeline = pipelines::Entity::insert(pipelines::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant.0),
        name: Set(input.name.as_str().to_owned()),
        description: Set(input.description.map(str::to_string)),
        version: Set(1),
        created_at: Set(now.into()),
        updated_at: Set(now.into()),
    })
    .exec_with_returning(&txn)
    .await?;
    insert_stages(&txn, pipeline.id, input.spec).await?;
    txn.commit().await?;
    Ok(PipelineView {
        pipeline,
        spec: input.spec.clone(),
    })
}

/// Replaces name, description and stages; the version goes up by one. Running jobs keep
/// the snapshot they were submitted with.
pub async fn update(
    db: &DatabaseConnection,
    tenant: TenantId,
    id: Uuid,
    input: PipelineInput<'_>,
) -> Result<PipelineView, StoreError> {
    let txn = db.begin().await?;
    let existing = find_row(&txn, tenant, id).await?;
    let version = existing.version + 1;
    let mut model: pipelines::ActiveModel = existing.into();
    model.name = Set(input.name.as_str().to_owned());
    model.description = Set(input.description.map(str::to_string));
    model.version = Set(version);
    model.updated_at = Set(Utc::now().into());
    let pipeline = pipelines::Entity::update(model).exec(&txn).await?;
    stages::Entity::delete_many()
        .filter(stages::Column::PipelineId.eq(id))
        .exec(&txn)
        .await?;
    insert_stages(&txn, id, input.spec).await?;
    txn.commit().await?;
    Ok(PipelineView {
        pipeline,
        spec: input.spec.clone(),
    })
}

async fn insert_stages<C: ConnectionTrait>(
    db: &C,
    pipeline_id: Uuid,
    spec: &PipelineSpec,
) -> Result<(), StoreError> {
    let rows = spec
        .stages
        .iter()
        .enumerate()
        .map(|(position, stage)| stages::ActiveModel {
            id: Set(Uuid::now_v7()),
            pipeline_id: Set(pipeline_id),
            position: Set(position as i32),
            name: Set(stage.name.clone()),
            model: Set(stage.model.clone()),
            system_prompt: Set(stage.system_prompt.clone()),
            prompt: Set(stage.prompt.clone()),
            json_schema: Set(stage.json_schema.clone()),
            filter: Set(stage
                .filter
                .as_ref()
                .map(|f| serde_json::to_value(f).unwrap_or_default())),
            temperature: Set(stage.temperature),
            max_tokens: Set(stage.max_tokens.map(|t| t as i32)),
            image_detail: Set(stage.image_detail),
        });
    stages::Entity::insert_many(rows).exec(db).await?;
    Ok(())
}

fn stage_from_row(row: stages::Model) -> Result<StageSpec, StoreError> {
    let filter = match row.filter {
        Some(v) => Some(serde_json::from_value(v).map_err(|e| {
            StoreError::corrupt(format!("stage {} has an unreadable filter: {e}", row.id))
        })?),
        None => None,
    };
    Ok(StageSpec {
        name: row.name,
        model: row.model,
        system_prompt: row.system_prompt,
        prompt: row.prompt,
        json_schema: row.json_schema,
        temperature: row.temperature,
        max_tokens: row.max_tokens.map(|t| t.max(0) as u32),
        image_detail: row.image_detail,
        filter,
    })
}

async fn find_row<C: ConnectionTrait>(
    db: &C,
    tenant: TenantId,
    id: Uuid,
) -> Result<pipelines::Model, StoreError> {
    pipelines::Entity::find_by_id(id)
        .filter(pipelines::Column::TenantId.eq(tenant.0))
        .one(db)
        .await?
        .ok_or(StoreError::NotFound)
}

async fn load_spec<C: ConnectionTrait>(
    db: &C,
    pipeline_id: Uuid,
) -> Result<PipelineSpec, StoreError> {
    let rows = stages::Entity::find()
        .filter(stages::Column::PipelineId.eq(pipeline_id))
        .order_by_asc(stages::Column::Position)
        .all(db)
        .await?;
    let stages = rows
        .into_iter()
        .map(stage_from_row)
        .collect::<Result<_, _>>()?;
    Ok(PipelineSpec { stages })
}

pub async fn get<C: ConnectionTrait>(
    db: &C,
    tenant: TenantId,
    id: Uuid,
) -> Result<PipelineView, StoreError> {
    let pipeline = find_row(db, tenant, id).await?;
    let spec = load_spec(db, id).await?;
    Ok(PipelineView { pipeline, spec })
}

/// The tenant's pipelines, newest first, with their stages.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    tenant: TenantId,
    page: PageRequest,
) -> Result<Page<PipelineView>, StoreError> {
    let query = pipelines::Entity::find().filter(pipelines::Column::TenantId.eq(tenant.0));
    let total = query.clone().count(db).await?;
    let rows = query
        .order_by_desc(pipelines::Column::CreatedAt)
        .order_by_desc(pipelines::Column::Id)
        .limit(page.limit)
        .offset(page.offset)
        .all(db)
        .await?;
    let ids: Vec<Uuid> = rows.iter().map(|p| p.id).collect();
    let mut stage_rows = stages::Entity::find()
        .filter(stages::Column::PipelineId.is_in(ids))
        .order_by_asc(stages::Column::Position)
        .all(db)
        .await?;
    let mut items = Vec::with_capacity(rows.len());
    for pipeline in rows {
        let (mine, rest): (Vec<_>, Vec<_>) = stage_rows
            .into_iter()
            .partition(|s| s.pipeline_id == pipeline.id);
        stage_rows = rest;
        let stages = mine
            .into_iter()
            .map(stage_from_row)
            .collect::<Result<_, _>>()?;
        items.push(PipelineView {
            pipeline,
            spec: PipelineSpec { stages },
        });
    }
    Ok(Page { items, total })
}

/// Deletes a pipeline. Jobs keep their snapshot of it, so running jobs are unaffected.
pub async fn delete<C: ConnectionTrait>(
    db: &C,
    tenant: TenantId,
    id: Uuid,
) -> Result<(), StoreError> {
    let result = pipelines::Entity::delete_many()
        .filter(pipelines::Column::Id.eq(id))
        .filter(pipelines::Column::TenantId.eq(tenant.0))
        .exec(db)
        .await?;
    if result.rows_affected == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

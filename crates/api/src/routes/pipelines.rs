//! `/api/pipelines`: create, list, get, replace, delete.

use actix_web::{HttpResponse, delete, get, post, put, web};
use chrono::{DateTime, Utc};
use domain::{
    pipeline::{PipelineSpec, StageSpec},
    validation::{Name, ValidationErrors},
};
use serde::{Deserialize, Serialize};
use store::{
    StoreError,
    pipelines::{PipelineInput, PipelineView},
};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    auth::Tenant,
    error::ApiError,
    extract::{JsonBody, PageQuery, RequestBody},
    routes::{Paged, libraries::check_description, paged},
    state::AppState,
};

#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct Pipeline {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    /// Goes up by one on every update; jobs record the version they ran.
    pub version: i32,
    pub stages: Vec<StageSpec>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<PipelineView> for Pipeline {
    fn from(v: PipelineView) -> Self {
        Pipeline {
            id: v.pipeline.id,
            name: v.pipeline.name,
            description: v.pipeline.description,
            version: v.pipeline.version,
            stages: v.spec.stages,
            created_at: v.pipeline.created_at.into(),
            updated_at: v.pipeline.updated_at.into(),
        }
    }
}

/// A pipeline definition: 1 to 10 ordered stages. Used to create and to replace one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineDefinition {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        example = "Animal survey"
    )]
    pub name: String,
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    #[schema(min_items = 1, max_items = 10)]
    pub stages: Vec<StageSpec>,
}

/// A pipeline definition, parsed.
pub struct NewPipeline {
    pub name: Name,
    pub description: Option<String>,
    pub spec: PipelineSpec,
}

impl NewPipeline {
    fn input(&self) -> PipelineInput<'_> {
        PipelineInput {
            name: &self.name,
            description: self.description.as_deref(),
            spec: &self.spec,
        }
    }
}

impl RequestBody for PipelineDefinition {
    type Parsed = NewPipeline;

    fn parse(self) -> Result<NewPipeline, ApiError> {
        let mut errors = ValidationErrors::new();
        let name = Name::parse(&self.name)
            .map_err(|name_errors| errors.nest("/name", name_errors))
            .ok();
        check_description(self.description.as_deref(), &mut errors);
        let spec = PipelineSpec {
            stages: self.stages,
        };
        if let Err(stage_errors) = spec.validate() {
            errors.nest("", stage_errors);
        }
        match name {
            Some(name) if errors.is_empty() => Ok(NewPipeline {
                name,
                description: self.description,
                spec,
            }),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

/// Create a pipeline.
#[utoipa::path(tag = "pipelines", request_body = PipelineDefinition, responses((status = 201, description = "Created", body = Pipeline)))]
#[post("/pipelines")]
pub async fn create_pipeline(
    state: web::Data<AppState>,
    Tenant(tenant): Tenant,
    JsonBody(body): JsonBody<PipelineDefinition>,
) -> Result<HttpResponse, ApiError> {
    let pipeline = store::pipelines::create(&state.db, tenant, body.input()).await?;
    Ok(HttpResponse::Created()
        .insert_header((
            "Location",
            format!("/api/pipelines/{}", pipeline.pipeline.id),
        ))
        .json(Pipeline::from(pipeline)))
}

/// List pipelines, newest first.
#[utoipa::path(tag = "pipelines", params(PageQuery), responses((status = 200, description = "A page of pipelines", body = Paged<Pipeline>)))]
#[get("/pipelines")]
pub async fn list_pipelines(
    state: web::Data<AppState>,
    Tenant(tenant): Tenant,
    query: web::Query<PageQuery>,
) -> Result<web::Json<Paged<Pipeline>>, ApiError> {
    let page = query.page()?;
    let pipelines = store::pipelines::list(&state.db, tenant, page).await?;
    Ok(web::Json(paged(pipelines.map(Pipeline::from), page)))
}

/// Get a pipeline with its stages.
#[utoipa::path(
    tag = "pipelines",
    params(("pipeline_id" = Uuid, Path, description = "Pipeline id")),
    responses((status = 200, description = "The pipeline", body = Pipeline))
)]
#[get("/pipelines/{pipeline_id}")]
pub async fn get_pipeline(
    state: web::Data<AppState>,
    Tenant(tenant): Tenant,
    path: web::Path<Uuid>,
) -> Result<web::Json<Pipeline>, ApiError> {
    found(store::pipelines::get(&state.db, tenant, *path).await)
}

/// Replace a pipeline's definition. Jobs already submitted keep the version they started with.
#[utoipa::path(
    tag = "pipelines",
    params(("pipeline_id" = Uuid, Path, description = "Pipeline id")),
    request_body = PipelineDefinition,
    responses((status = 200, description = "The updated pipeline", body = Pipeline))
)]
#[put("/pipelines/{pipeline_id}")]
pub async fn update_pipeline(
    state: web::Data<AppState>,
    Tenant(tenant): Tenant,
    path: web::Path<Uuid>,
    JsonBody(body): JsonBody<PipelineDefinition>,
) -> Result<web::Json<Pipeline>, ApiError> {
    found(store::pipelines::update(&state.db, tenant, *path, body.input()).await)
}

/// The pipeline a store call found, or 404 when there is none.
fn found(stored: Result<PipelineView, StoreError>) -> Result<web::Json<Pipeline>, ApiError> {
    stored
        .map(|pipeline| web::Json(pipeline.into()))
        .map_err(|e| ApiError::from_store(e, "pipeline"))
}

/// Delete a pipeline. Jobs keep their snapshot of it.
#[utoipa::path(
    tag = "pipelines",
    params(("pipeline_id" = Uuid, Path, description = "Pipeline id")),
    responses((status = 204, description = "Deleted"))
)]
#[delete("/pipelines/{pipeline_id}")]
pub async fn delete_pipeline(
    state: web::Data<AppState>,
    Tenant(tenant): Tenant,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    store::pipelines::delete(&state.db, tenant, *path)
        .await
        .map_err(|e| ApiError::from_store(e, "pipeline"))?;
    Ok(HttpResponse::NoContent().finish())
}

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create_pipeline)
        .service(list_pipelines)
        .service(get_pipeline)
        .service(update_pipeline)
        .service(delete_pipeline);
}

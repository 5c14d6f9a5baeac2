//! `/api/pipelines`: create, list, get, replace, delete.

use actix_web::{HttpResponse, delete, get, post, put, web};
use chrono::{DateTime, Utc};
use domain::{
    pipeline::{PipelineSpec, StageSpec},
    validation::{MAX_NAME_LEN, ValidationErrors, validate_name},
};
use serde::{Deserialize, Serialize};
use store::pipelines::{PipelineInput, PipelineView};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    auth::Tenant,
    error::ApiError,
    extract::{JsonBody, PageQuery, Validate},
    routes::{Paged, libraries::MAX_DESCRIPTION_LEN, paged},
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

impl Validate for PipelineDefinition {
    fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        validate_name("/name", &self.name, MAX_NAME_LEN, &mut errors);
        if self
            .description
            .as_ref()
            .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_LEN)
        {
            errors.push(
                "/description",
                format!("must be at most {MAX_DESCRIPTION_LEN} characters"),
            );
        }
        let spec = PipelineSpec {
            stages: self.stages.clone(),
        };
        if let Err(stage_errors) = spec.validate() {
            errors.nest("", stage_errors);
        }
        errors.into_result()
    }
}

impl PipelineDefinition {
    fn into_parts(self) -> (String, Option<String>, PipelineSpec) {
        (
            self.name.trim().to_string(),
            self.description,
            PipelineSpec {
                stages: self.stages,
            },
        )
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
    let (name, description, spec) = body.into_parts();
    let input = PipelineInput {
        name: &name,
        description: description.as_deref(),
        spec: &spec,
    };
    let pipeline = store::pipelines::create(&state.db, tenant, input).await?;
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
    let pipeline = store::pipelines::get(&state.db, tenant, *path)
        .await
        .map_err(|e| ApiError::from_store(e, "pipeline"))?;
    Ok(web::Json(pipeline.into()))
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
    let (name, description, spec) = body.into_parts();
    let input = PipelineInput {
        name: &name,
        description: description.as_deref(),
        spec: &spec,
    };
    let pipeline = store::pipelines::update(&state.db, tenant, *path, input)
        .await
        .map_err(|e| ApiError::from_store(e, "pipeline"))?;
    Ok(web::Json(pipeline.into()))
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

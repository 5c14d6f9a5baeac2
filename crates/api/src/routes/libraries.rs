//! `/api/libraries`: create, list, get, rename, delete.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use domain::validation::{Name, ValidationErrors};
use serde::{Deserialize, Serialize};
use store::libraries::LibraryView;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    auth::Tenant,
    error::ApiError,
    extract::{JsonBody, PageQuery, RequestBody},
    routes::{Paged, paged},
    state::AppState,
};

pub const MAX_DESCRIPTION_LEN: usize = 2000;

#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct Library {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub image_count: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<LibraryView> for Library {
    fn from(v: LibraryView) -> Self {
        Library {
            id: v.library.id,
            name: v.library.name,
            description: v.library.description,
            image_count: v.image_count,
            created_at: v.library.created_at.into(),
            updated_at: v.library.updated_at.into(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Field photos", "description": "Camera-trap images, spring 2026"}))]
pub struct CreateLibrary {
    /// 1 to 200 characters, unique among the tenant's libraries.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub name: String,
    #[schema(max_length = 2000)]
    pub description: Option<String>,
}

/// Checks a library's or pipeline's description.
pub(crate) fn check_description(description: Option<&str>, errors: &mut ValidationErrors) {
    if description.is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_LEN) {
        errors.push(
            "/description",
            format!("must be at most {MAX_DESCRIPTION_LEN} characters"),
        );
    }
}

/// A new library, parsed.
pub struct NewLibrary {
    pub name: Name,
    pub description: Option<String>,
}

impl RequestBody for CreateLibrary {
    type Parsed = NewLibrary;

    fn parse(self) -> Result<NewLibrary, ApiError> {
        let mut errors = ValidationErrors::new();
        let name = parse_name(&self.name, &mut errors);
        check_description(self.description.as_deref(), &mut errors);
        match name {
            Some(name) if errors.is_empty() => Ok(NewLibrary {
                name,
                description: self.description,
            }),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

/// The `/name` of a body, or its errors added to `errors`.
fn parse_name(name: &str, errors: &mut ValidationErrors) -> Option<Name> {
    Name::parse(name)
        .map_err(|name_errors| errors.nest("/name", name_errors))
        .ok()
}

/// A partial update: absent fields stay as they are; an empty description clears it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Field photos (2026)"}))]
pub struct UpdateLibrary {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub name: Option<String>,
    #[schema(max_length = 2000)]
    pub description: Option<String>,
}

/// The changes to a library, parsed: `None` leaves a field as it is.
pub struct LibraryChanges {
    pub name: Option<Name>,
    /// `Some(None)`: clear the description.
    pub description: Option<Option<String>>,
}

impl RequestBody for UpdateLibrary {
    type Parsed = LibraryChanges;

    fn parse(self) -> Result<LibraryChanges, ApiError> {
        let mut errors = ValidationErrors::new();
        let name = self
            .name
            .as_deref()
            .map(|name| parse_name(name, &mut errors));
        check_description(self.description.as_deref(), &mut errors);
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        Ok(LibraryChanges {
            name: name.flatten(),
            description: self.description.map(|d| Some(d).filter(|d| !d.is_empty())),
        })
    }
}

/// Create a library.
#[utoipa::path(
    tag = "libraries",
    request_body = CreateLibrary,
    responses(
        (status = 201, description = "Created", body = Library),
        (status = 409, description = "A library with this name exists", body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/libraries")]
pub async fn create_library(
    state: web::Data<AppState>,
    Tenant(tenant): Tenant,
    JsonBody(body): JsonBody<CreateLibrary>,
) -> Result<HttpResponse, ApiError> {
    let library =
        store::libraries::create(&state.db, tenant, &body.name, body.description.as_deref())
            .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/libraries/{}", library.library.id)))
        .json(Library::from(library)))
}

/// List libraries, newest first.
#[utoipa::path(tag = "libraries", params(PageQuery), responses((status = 200, description = "A page of libraries", body = Paged<Library>)))]
#[get("/libraries")]
pub async fn list_libraries(
    state: web::Data<AppState>,
    Tenant(tenant): Tenant,
    query: web::Query<PageQuery>,
) -> Result<web::Json<Paged<Library>>, ApiError> {
    let page = query.page()?;
    let libraries = store::libraries::list(&state.db, tenant, page).await?;
    Ok(web::Json(paged(libraries.map(Library::from), page)))
}

/// Get a library.
#[utoipa::path(
    tag = "libraries",
    params(("library_id" = Uuid, Path, description = "Library id")),
    responses((status = 200, description = "The library", body = Library))
)]
#[get("/libraries/{library_id}")]
pub async fn get_library(
    state: web::Data<AppState>,
    Tenant(tenant): Tenant,
    path: web::Path<Uuid>,
) -> Result<web::Json<Library>, ApiError> {
    let library = store::libraries::get(&state.db, tenant, *path)
        .await
        .map_err(|e| ApiError::from_store(e, "library"))?;
    Ok(web::Json(library.into()))
}

/// Rename a library or change its description.
#[utoipa::path(
    tag = "libraries",
    params(("library_id" = Uuid, Path, description = "Library id")),
    request_body = UpdateLibrary,
    responses(
        (status = 200, description = "The updated library", body = Library),
        (status = 409, description = "A library with this name exists", body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/libraries/{library_id}")]
pub async fn update_library(
    state: web::Data<AppState>,
    Tenant(tenant): Tenant,
    path: web::Path<Uuid>,
    JsonBody(body): JsonBody<UpdateLibrary>,
) -> Result<web::Json<Library>, ApiError> {
    let library = store::libraries::update(
        &state.db,
        tenant,
        *path,
        body.name.as_ref(),
        body.description.as_ref().map(Option::as_deref),
    )
    .await
    .map_err(|e| ApiError::from_store(e, "library"))?;
    Ok(web::Json(library.into()))
}

/// Delete a library with its images. Refused while a queued or running job uses it.
#[utoipa::path(
    tag = "libraries",
    params(("library_id" = Uuid, Path, description = "Library id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "A queued or running job uses the library", body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/libraries/{library_id}")]
pub async fn delete_library(
    state: web::Data<AppState>,
    Tenant(tenant): Tenant,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    store::libraries::delete(&state.db, &state.objects, tenant, *path)
        .await
        .map_err(|e| ApiError::from_store(e, "library"))?;
    Ok(HttpResponse::NoContent().finish())
}

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create_library)
        .service(list_libraries)
        .service(get_library)
        .service(update_library)
        .service(delete_library);
}

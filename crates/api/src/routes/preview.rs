//! `POST /api/jobs/preview`: try one stage on a few images before the pipeline is saved.

use actix_web::{HttpRequest, HttpResponse, post, web};
use domain::{
    job::Priority,
    pipeline::StageSpec,
    selection::{IdList, ImageSelection},
    validation::ValidationErrors,
};
use serde::{Deserialize, Serialize};
use store::jobs::Submission;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    auth::Tenant,
    error::ApiError,
    extract::{IdListWording, JsonBody, RequestBody, id_list_errors, id_list_schema},
    routes::jobs::{accept, fingerprint, idempotency_key},
    state::AppState,
};

/// Most images one preview may run on.
pub const MAX_PREVIEW_IMAGES: usize = 3;

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "library_id": "01936d6e-8f3a-7c1e-9b2a-000000000001",
    "image_ids": ["01936d6e-8f3a-7c1e-9b2a-000000000002"],
    "stage": {"name": "detect", "prompt": "Is there an animal in this image?"}
}))]
pub struct PreviewJob {
    pub library_id: Uuid,
    /// Documented by [`image_ids_schema`], whose limit is the one the code checks.
    #[schema(schema_with = image_ids_schema)]
    pub image_ids: Vec<Uuid>,
    /// The stage as it is being edited; checked exactly like a pipeline's stage.
    pub stage: StageSpec,
}

fn image_ids_schema() -> utoipa::openapi::schema::Array {
    id_list_schema(
        "The images to try the stage on, each named once.",
        MAX_PREVIEW_IMAGES,
        false,
    )
}

/// A preview request, parsed.
pub struct PreviewRequest {
    pub library_id: Uuid,
    pub images: ImageSelection,
    pub stage: StageSpec,
    /// Fingerprint of the body (see [`fingerprint`]).
    pub request_hash: String,
}

impl RequestBody for PreviewJob {
    type Parsed = PreviewRequest;

    fn parse(self) -> Result<PreviewRequest, ApiError> {
        let request_hash = fingerprint(&self)?;
        let mut errors = ValidationErrors::new();
        let images = IdList::parse(self.image_ids, MAX_PREVIEW_IMAGES)
            .and_then(ImageSelection::only)
            .map_err(|error| {
                let wording = IdListWording {
                    noun: "image",
                    empty: "must name at least one image",
                    too_many: |max| format!("a preview runs on at most {max} images"),
                };
                id_list_errors("/image_ids", error, &wording, &mut errors);
            })
            .ok();
        self.stage.validate("/stage", &mut errors);
        match images {
            Some(images) if errors.is_empty() => Ok(PreviewRequest {
                library_id: self.library_id,
                images,
                stage: self.stage,
                request_hash,
            }),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

/// Try one stage on up to 3 images before saving the pipeline: a small, high-priority job
/// through the normal workers, marked `preview`.
///
/// The job runs a one-stage snapshot built from `stage` and references no stored pipeline
/// (its `pipeline_id` is the nil UUID, `pipeline_version` 0). Follow it like any job (its
/// events, items and results); the job history leaves previews out unless
/// `include_previews=true`. An `Idempotency-Key` works as for `POST /api/jobs/submit`.
#[utoipa::path(
    tag = "jobs",
    request_body = PreviewJob,
    params(("Idempotency-Key" = Option<String>, Header, pattern = r"^[\x21-\x7E]{1,200}$", description = "Makes retries of the same request return the same job (1 to 200 visible ASCII characters)")),
    responses(
        (status = 202, description = "Accepted: the preview job is queued", body = crate::routes::jobs::Job,
            headers(("Location" = String, description = "URL of the job"))),
        (status = 409, description = "The Idempotency-Key was used for a different request", body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/jobs/preview")]
pub async fn preview_job(
    state: web::Data<AppState>,
    Tenant(tenant): Tenant,
    req: HttpRequest,
    JsonBody(body): JsonBody<PreviewJob>,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency_key(&req)?;
    let traceparent = broker::trace::current_traceparent();
    let submission = Submission {
        pipeline_id: Uuid::nil(),
        library_id: body.library_id,
        images: &body.images,
        priority: Priority::High,
        idempotency_key: key.as_deref(),
        request_hash: &body.request_hash,
        preview: Some(&body.stage),
        max_cost_usd: None,
        traceparent: traceparent.as_deref(),
    };
    accept(&state, tenant, submission).await
}

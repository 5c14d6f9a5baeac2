//! `POST /api/jobs/preview`: try one stage on a few images before the pipeline is saved.

use std::collections::HashSet;

use actix_web::{HttpRequest, HttpResponse, post, web};
use domain::{job::Priority, pipeline::StageSpec, validation::ValidationErrors};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use store::jobs::Submission;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    auth::Tenant,
    error::ApiError,
    extract::{JsonBody, Validate},
    routes::jobs::{accept, idempotency_key},
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
    /// The images to try the stage on, each named once.
    #[schema(min_items = 1, max_items = 3)]
    pub image_ids: Vec<Uuid>,
    /// The stage as it is being edited; checked exactly like a pipeline's stage.
    pub stage: StageSpec,
}

impl Validate for PreviewJob {
    fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        if self.image_ids.is_empty() {
            errors.push("/image_ids", "must name at least one image");
        } else if self.image_ids.len() > MAX_PREVIEW_IMAGES {
            errors.push(
                "/image_ids",
                format!("a preview runs on at most {MAX_PREVIEW_IMAGES} images"),
            );
        }
        let mut seen = HashSet::new();
        for (i, id) in self.image_ids.iter().enumerate() {
            if !seen.insert(id) {
                errors.push(
                    format!("/image_ids/{i}"),
                    format!("image {id} is listed twice"),
                );
            }
        }
        self.stage.validate("/stage", &mut errors);
        errors.into_result()
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
    let request_hash = hex::encode(Sha256::digest(
        serde_json::to_vec(&body).map_err(ApiError::internal)?,
    ));
    let submission = Submission {
        pipeline_id: Uuid::nil(),
        library_id: body.library_id,
        image_ids: Some(&body.image_ids),
        priority: Priority::High,
        idempotency_key: key.as_deref(),
        request_hash: &request_hash,
        preview: Some(&body.stage),
    };
    accept(&state, tenant, submission).await
}

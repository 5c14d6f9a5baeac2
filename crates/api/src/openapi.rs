//! The OpenAPI document, generated from the handlers' annotations.
//!
//! Errors every operation can produce are added here once, so handler annotations list only
//! the errors particular to them: 400/401/503 everywhere under `/api`, 404 where a path names a
//! resource, 413/415/422 where there is a request body.

use http_support::openapi::{Conventions, SessionCookie, committed_json, document};
use serde_json::json;
use utoipa::{OpenApi, openapi::OpenApi as Spec};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Image pipelines API",
        description = "Run image-analysis pipelines (ordered prompts to a Cohere vision model, with filters between stages) over libraries of images.",
        version = "0.1.0"
    ),
    components(schemas(
        domain::event::JobEvent,
        crate::routes::tenant_events::JobSnapshot,
        crate::routes::tenant_events::Resync
    )),
    tags(
        (name = "libraries", description = "Collections of images"),
        (name = "images", description = "Images in a library"),
        (name = "pipelines", description = "Ordered analysis stages"),
        (name = "jobs", description = "Pipeline runs over images"),
        (name = "session", description = "Browser sign-in: a session cookie instead of the API key"),
        (name = "health", description = "Liveness, readiness and the workers' circuit breakers"),
    )
)]
struct ApiDoc;

/// The document's conventions: the `bearer` scheme or the `session` cookie on every `/api`
/// operation, the problems every one can answer, and the `Problem` schema (with field errors).
fn conventions() -> Conventions {
    Conventions {
        security_scheme: "bearer",
        path_prefix: "/api/",
        unauthorized: "Missing or invalid API key",
        unavailable: "The database, broker or storage is unavailable; retry later",
        not_found: "No such resource for this tenant",
        unprocessable: "The request is well-formed but has invalid fields",
        problem_example: json!({
            "type": "/problems/validation_failed",
            "title": "Unprocessable Content",
            "status": 422,
            "code": "validation_failed",
            "detail": "the request body has 1 invalid field",
            "errors": [{"path": "/stages/0/prompt", "message": "must not be blank"}]
        }),
        field_errors: true,
        session_cookie: Some(SessionCookie {
            scheme: "session",
            cookie: crate::auth::SESSION_COOKIE,
            description: "The browser session `POST /api/session` sets (HttpOnly). Unsafe methods (POST, PUT, PATCH, DELETE) are accepted only from this site's own pages (`Sec-Fetch-Site` / `Origin`).",
            cross_site: "A cookie-authenticated request sent by a page on another site",
        }),
    }
}

/// The API's OpenAPI document, as served at `/api/openapi.json` and committed under `openapi/`.
pub fn spec() -> Spec {
    document(
        ApiDoc::openapi(),
        http_support::health::configure,
        "/api",
        crate::routes::configure,
        &conventions(),
    )
}

/// The document as pretty JSON with a trailing newline (the committed file's format).
pub fn spec_json() -> String {
    committed_json(&spec())
}

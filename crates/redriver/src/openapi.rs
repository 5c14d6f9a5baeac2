//! The admin API's OpenAPI document, generated from the handlers' annotations.
//!
//! Errors every admin operation can produce are added here once: 400, 401 and 503 under
//! `/admin`, 404 where a path names a dead letter, 413/415/422 where there is a request body.

use http_support::openapi::{Conventions, committed_json, document};
use serde_json::json;
use utoipa::{OpenApi, openapi::OpenApi as Spec};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Image pipelines re-driver admin API",
        description = "Inspect, re-drive and purge the dead letters the re-driver drained from the dead-letter queue. Every `/admin` route needs `Authorization: Bearer <redriver.admin_token>`.",
        version = "0.1.0"
    ),
    tags(
        (name = "dead-letters", description = "Dead letters: list, inspect, re-drive, purge"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
struct AdminDoc;

/// The document's conventions: the `admin_token` scheme on every `/admin` operation, the
/// problems every one can answer, and the `Problem` schema (the admin API reports no
/// field-level errors).
fn conventions() -> Conventions {
    Conventions {
        security_scheme: "admin_token",
        path_prefix: "/admin/",
        unauthorized: "Missing or wrong admin token",
        unavailable: "No admin token is configured, or the database is unavailable",
        not_found: "No such dead letter",
        unprocessable: "The request is well-formed JSON but has invalid or unknown fields",
        problem_example: json!({
            "type": "/problems/unauthorized",
            "title": "Unauthorized",
            "status": 401,
            "code": "unauthorized",
            "detail": "missing or invalid admin token"
        }),
        field_errors: false,
        session_cookie: None,
    }
}

/// The admin API's document, as served at `/admin/openapi.json` and committed as
/// `openapi/redriver.json`.
pub fn spec() -> Spec {
    document(
        AdminDoc::openapi(),
        http_support::health::configure,
        "/admin",
        crate::http::configure,
        &conventions(),
    )
}

/// The document as pretty JSON with a trailing newline (the committed file's format).
pub fn spec_json() -> String {
    committed_json(&spec())
}

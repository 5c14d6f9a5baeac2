//! One error type for the admin API and its single mapping to `application/problem+json`.
//! Causes are logged here, never sent to the client.

use actix_web::{
    HttpRequest, HttpResponse, ResponseError,
    dev::ServiceResponse,
    error::{JsonPayloadError, PathError, QueryPayloadError},
    http::{StatusCode, header},
    middleware::ErrorHandlerResponse,
};
use serde::Serialize;
use store::StoreError;
use utoipa::ToSchema;

use crate::redrive::RedriveError;

/// An RFC 9457 problem document with a stable, machine-readable `code`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "/problems/unauthorized",
    "title": "Unauthorized",
    "status": 401,
    "code": "unauthorized",
    "detail": "missing or invalid admin token"
}))]
pub struct Problem {
    /// A URI reference naming the problem type: `/problems/<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// Stable identifier of the problem, for programs.
    pub code: String,
    /// What went wrong and what to do, for people.
    pub detail: String,
}

impl Problem {
    fn new(status: StatusCode, code: &str, detail: String) -> Self {
        Problem {
            kind: format!("/problems/{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            code: code.to_string(),
            detail,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    MalformedJson(String),
    #[error("missing or invalid admin token")]
    Unauthorized,
    /// No admin token is configured: the admin API refuses everything.
    #[error(
        "the admin API is disabled: no admin token is configured (set APP__REDRIVER__ADMIN_TOKEN)"
    )]
    Disabled,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{method} is not allowed here; use {allow}")]
    MethodNotAllowed { method: String, allow: &'static str },
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("the request body must be application/json")]
    UnsupportedMediaType,
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Unavailable(&'static str),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl AdminError {
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        AdminError::Internal(err.into())
    }

    fn code(&self) -> &'static str {
        match self {
            AdminError::BadRequest(_) => "bad_request",
            AdminError::MalformedJson(_) => "malformed_json",
            AdminError::Unauthorized => "unauthorized",
            AdminError::Disabled => "admin_api_disabled",
            AdminError::NotFound(_) => "not_found",
            AdminError::MethodNotAllowed { .. } => "method_not_allowed",
            AdminError::PayloadTooLarge(_) => "payload_too_large",
            AdminError::UnsupportedMediaType => "unsupported_media_type",
            AdminError::Invalid(_) => "validation_failed",
            AdminError::Unavailable(_) => "service_unavailable",
            AdminError::Internal(_) => "internal_error",
        }
    }

    pub fn problem(&self) -> Problem {
        let detail = match self {
            AdminError::Internal(_) => "an unexpected error occurred; it has been logged".into(),
            other => other.to_string(),
        };
        Problem::new(self.status_code(), self.code(), detail)
    }
}

impl From<StoreError> for AdminError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => AdminError::NotFound("dead letter"),
            StoreError::Conflict(message) => AdminError::Invalid(message),
            StoreError::Unavailable(source) => {
                tracing::warn!(error = %source, "database unavailable");
                AdminError::Unavailable("the database is unavailable; retry later")
            }
            other => AdminError::internal(other),
        }
    }
}

impl From<RedriveError> for AdminError {
    fn from(err: RedriveError) -> Self {
        match err {
            RedriveError::Invalid(message) => AdminError::Invalid(message),
            RedriveError::Store(err) => err.into(),
        }
    }
}

impl ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        match self {
            AdminError::BadRequest(_) | AdminError::MalformedJson(_) => StatusCode::BAD_REQUEST,
            AdminError::Unauthorized => StatusCode::UNAUTHORIZED,
            AdminError::Disabled | AdminError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AdminError::NotFound(_) => StatusCode::NOT_FOUND,
            AdminError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            AdminError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AdminError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AdminError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AdminError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let AdminError::Internal(cause) = self {
            tracing::error!(error = ?cause, "request failed");
        }
        let mut response = HttpResponse::build(self.status_code());
        response.content_type("application/problem+json");
        match self {
            AdminError::Unauthorized => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            AdminError::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, "5"));
            }
            AdminError::MethodNotAllowed { allow, .. } => {
                response.insert_header((header::ALLOW, *allow));
            }
            _ => {}
        }
        response.json(self.problem())
    }
}

/// `web::Json` errors: wrong content type 415, too large 413, not JSON 400, JSON of the
/// wrong shape 422.
pub fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    match err {
        JsonPayloadError::ContentType => AdminError::UnsupportedMediaType,
        JsonPayloadError::Overflow { limit }
        | JsonPayloadError::OverflowKnownLength { limit, .. } => {
            AdminError::PayloadTooLarge(format!("the request body exceeds {limit} bytes"))
        }
        JsonPayloadError::Deserialize(e) if e.is_data() => {
            AdminError::Invalid(format!("the request body is invalid: {e}"))
        }
        other => AdminError::MalformedJson(format!("the request body is not valid JSON: {other}")),
    }
    .into()
}

/// `web::Query` errors are 400s.
pub fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    AdminError::BadRequest(format!("invalid query parameter: {err}")).into()
}

/// `web::Path` errors: `GET /admin/dead-letters/redrive` (or `purge`) names a POST-only
/// route (405); anything else is a malformed id (400).
pub fn path_error(err: PathError, req: &HttpRequest) -> actix_web::Error {
    let last = req.path().rsplit('/').next().unwrap_or_default();
    if req.path().starts_with("/admin/dead-letters/") && matches!(last, "redrive" | "purge") {
        return AdminError::MethodNotAllowed {
            method: req.method().to_string(),
            allow: "POST",
        }
        .into();
    }
    AdminError::BadRequest(format!("invalid path parameter: {err}")).into()
}

/// Unrouted requests: 405 (with `Allow`) on a known path under another method, else 404.
pub async fn not_routed(req: HttpRequest) -> HttpResponse {
    let path = req.path().trim_end_matches('/');
    let allow = match path.strip_prefix("/admin/dead-letters") {
        Some("") => Some("GET"),
        Some("/redrive" | "/purge") => Some("POST"),
        Some(rest) if rest.matches('/').count() == 1 => Some("GET"),
        _ => None,
    };
    match allow {
        Some(allow) => AdminError::MethodNotAllowed {
            method: req.method().to_string(),
            allow,
        },
        None => AdminError::NotFound("route"),
    }
    .error_response()
}

/// Gives error responses that actix-web makes on its own (e.g. a 405 for a known path under
/// another method) a problem+json body, leaving the handlers' own problems alone.
pub fn problem_for_bare_errors<B>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_problem = res
        .response()
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if is_problem {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let code = match status {
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::NOT_FOUND => "not_found",
        s if s.is_server_error() => "internal_error",
        _ => "bad_request",
    };
    let detail = match status {
        StatusCode::METHOD_NOT_ALLOWED => format!("{} is not allowed here", res.request().method()),
        _ => status.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    let problem = Problem::new(status, code, detail);
    let (req, mut response) = res.into_parts();
    let body = serde_json::to_string(&problem).unwrap_or_default();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/problem+json"),
    );
    let response = response.set_body(body);
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, response)
            .map_into_boxed_body()
            .map_into_right_body(),
    ))
}

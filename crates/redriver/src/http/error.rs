//! One error type for the admin API and its mapping to `application/problem+json` (built by
//! [`http_support::ProblemError`]). Causes are logged, never sent to the client.

use std::fmt::Debug;

use actix_web::{
    HttpResponse, ResponseError,
    dev::ServiceResponse,
    http::{
        StatusCode,
        header::{self, HeaderName, HeaderValue},
    },
    middleware::ErrorHandlerResponse,
};
use http_support::{
    PROBLEM_JSON, ProblemError, RequestError,
    problem::{bearer_challenge, retry_after},
};
use store::StoreError;

use crate::redrive::RedriveError;

pub use http_support::Problem;

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
            AdminError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AdminError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AdminError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AdminError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        self.problem_response()
    }
}

impl ProblemError for AdminError {
    fn code(&self) -> &'static str {
        match self {
            AdminError::BadRequest(_) => "bad_request",
            AdminError::MalformedJson(_) => "malformed_json",
            AdminError::Unauthorized => "unauthorized",
            AdminError::Disabled => "admin_api_disabled",
            AdminError::NotFound(_) => "not_found",
            AdminError::PayloadTooLarge(_) => "payload_too_large",
            AdminError::UnsupportedMediaType => "unsupported_media_type",
            AdminError::Invalid(_) => "validation_failed",
            AdminError::Unavailable(_) => "service_unavailable",
            AdminError::Internal(_) => "internal_error",
        }
    }

    fn internal_cause(&self) -> Option<&dyn Debug> {
        match self {
            AdminError::Internal(cause) => Some(cause),
            _ => None,
        }
    }

    fn header(&self) -> Option<(HeaderName, HeaderValue)> {
        match self {
            AdminError::Unauthorized => Some(bearer_challenge()),
            AdminError::Unavailable(_) => Some(retry_after(5)),
            _ => None,
        }
    }
}

/// What the shared extractor handlers and fallbacks report, as admin API errors.
impl From<RequestError> for AdminError {
    fn from(err: RequestError) -> Self {
        match err {
            RequestError::BadRequest(message) => AdminError::BadRequest(message),
            RequestError::MalformedJson(message) => AdminError::MalformedJson(message),
            RequestError::PayloadTooLarge { .. } => AdminError::PayloadTooLarge(err.to_string()),
            RequestError::UnsupportedMediaType => AdminError::UnsupportedMediaType,
            RequestError::Invalid(message) => AdminError::Invalid(message),
            RequestError::NoRoute => AdminError::NotFound("route"),
        }
    }
}

/// Gives error responses that actix-web makes on its own (e.g. a 405 for a known path under
/// another method) a problem+json body, leaving the handlers' own problems alone.
pub fn problem_for_bare_errors<B>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    // Problems, and documented JSON bodies such as the readiness report, pass as they are.
    let is_json = res
        .response()
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            let v = v.as_bytes();
            v.starts_with(PROBLEM_JSON.as_bytes()) || v.starts_with(b"application/json")
        });
    if is_json {
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
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    let response = response.set_body(body);
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, response)
            .map_into_boxed_body()
            .map_into_right_body(),
    ))
}

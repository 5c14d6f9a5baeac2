//! One error type for the HTTP layer and its mapping to `application/problem+json` (built by
//! [`http_support::ProblemError`]).
//!
//! Handlers return [`ApiError`]; causes are logged, never sent to the client.

use std::fmt::Debug;

use actix_web::{
    HttpResponse, ResponseError,
    http::StatusCode,
    http::header::{HeaderName, HeaderValue},
};
use domain::validation::{FieldError, ValidationErrors};
use http_support::{
    ProblemError, RequestError,
    problem::{bearer_challenge, retry_after},
};
use store::StoreError;

pub use http_support::Problem;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    MalformedJson(String),
    #[error("missing or invalid API key")]
    Unauthorized,
    /// A cookie-authenticated write the browser did not say this site's pages sent.
    #[error("a request signed in by cookie must come from this site's own pages")]
    CrossSite,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("the request has invalid fields")]
    Validation(ValidationErrors),
    #[error("{0}")]
    Unavailable(&'static str),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(err.into())
    }

    /// A single invalid field.
    pub fn invalid(path: &str, message: impl Into<String>) -> Self {
        let mut errors = ValidationErrors::new();
        errors.push(path, message);
        ApiError::Validation(errors)
    }

    /// Maps a store error, naming the kind of resource a `NotFound` refers to.
    pub fn from_store(err: StoreError, resource: &'static str) -> Self {
        match err {
            StoreError::NotFound => ApiError::NotFound(resource),
            other => other.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => ApiError::NotFound("resource"),
            StoreError::Conflict(message) => ApiError::Conflict(message),
            StoreError::Unavailable(source) => {
                tracing::warn!(error = %source, "database unavailable");
                ApiError::Unavailable("the database is unavailable; retry later")
            }
            StoreError::Objects(source) => {
                tracing::warn!(error = %source, "object store unavailable");
                ApiError::Unavailable("image storage is unavailable; retry later")
            }
            StoreError::Database(source) => ApiError::internal(source),
            corrupt @ StoreError::Corrupt(_) => ApiError::internal(corrupt),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::MalformedJson(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::CrossSite => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        self.problem_response()
    }
}

impl ProblemError for ApiError {
    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::MalformedJson(_) => "malformed_json",
            ApiError::Unauthorized => "unauthorized",
            ApiError::CrossSite => "cross_site_request",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Validation(_) => "validation_failed",
            ApiError::Unavailable(_) => "service_unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }

    fn internal_cause(&self) -> Option<&dyn Debug> {
        match self {
            ApiError::Internal(cause) => Some(cause),
            _ => None,
        }
    }

    fn detail(&self) -> String {
        match self {
            ApiError::Validation(errors) => format!(
                "the request has {} invalid field(s): {errors}",
                errors.len()
            ),
            other => other.to_string(),
        }
    }

    fn field_errors(&self) -> &[FieldError] {
        match self {
            ApiError::Validation(errors) => errors.errors(),
            _ => &[],
        }
    }

    fn header(&self) -> Option<(HeaderName, HeaderValue)> {
        match self {
            ApiError::Unauthorized => Some(bearer_challenge()),
            ApiError::Unavailable(_) => Some(retry_after(5)),
            _ => None,
        }
    }
}

/// What the shared extractor handlers and fallbacks report, as this API's errors.
impl From<RequestError> for ApiError {
    fn from(err: RequestError) -> Self {
        match err {
            RequestError::BadRequest(message) => ApiError::BadRequest(message),
            RequestError::MalformedJson(message) => ApiError::MalformedJson(message),
            RequestError::PayloadTooLarge { .. } => ApiError::PayloadTooLarge(err.to_string()),
            RequestError::UnsupportedMediaType => ApiError::UnsupportedMediaType(err.to_string()),
            RequestError::Invalid(message) => ApiError::invalid("", message),
            RequestError::NoRoute => ApiError::NotFound("route"),
        }
    }
}

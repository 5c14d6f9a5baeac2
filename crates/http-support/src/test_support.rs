//! A service error type for the tests: each [`RequestError`] as its own status and code.

use actix_web::{HttpResponse, ResponseError, http::StatusCode};

use crate::{problem::ProblemError, request::RequestError};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ServiceError(pub RequestError);

impl From<RequestError> for ServiceError {
    fn from(err: RequestError) -> Self {
        ServiceError(err)
    }
}

impl ResponseError for ServiceError {
    fn status_code(&self) -> StatusCode {
        match self.0 {
            RequestError::BadRequest(_) | RequestError::MalformedJson(_) => StatusCode::BAD_REQUEST,
            RequestError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            RequestError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            RequestError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            RequestError::NoRoute => StatusCode::NOT_FOUND,
        }
    }

    fn error_response(&self) -> HttpResponse {
        self.problem_response()
    }
}

impl ProblemError for ServiceError {
    fn code(&self) -> &'static str {
        match self.0 {
            RequestError::BadRequest(_) => "bad_request",
            RequestError::MalformedJson(_) => "malformed_json",
            RequestError::PayloadTooLarge { .. } => "payload_too_large",
            RequestError::UnsupportedMediaType => "unsupported_media_type",
            RequestError::Invalid(_) => "validation_failed",
            RequestError::NoRoute => "not_found",
        }
    }
}

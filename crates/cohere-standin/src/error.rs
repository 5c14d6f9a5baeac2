//! Error answers in Cohere's shape: `{"id": "<uuid>", "message": "..."}`.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::RETRY_AFTER;
use serde_json::json;

/// An error answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
    /// Seconds for `Retry-After`.
    pub(crate) retry_after: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400 `invalid request: ...`.
    pub(crate) fn bad_request(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            format!("invalid request: {detail}"),
        )
    }

    /// 422 `invalid request: ...`.
    pub(crate) fn unprocessable(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("invalid request: {detail}"),
        )
    }

    pub(crate) fn with_retry_after(mut self, seconds: Option<u64>) -> Self {
        self.retry_after = seconds;
        self
    }

    /// The answer for an injected or simulated failure with `status`.
    pub(crate) fn injected(status: StatusCode) -> Self {
        let message = match status.as_u16() {
            429 => "too many requests, please slow down",
            499 => "request cancelled",
            500 => "internal server error, this has been reported to our developers",
            503 => "service unavailable, please try again later",
            504 => "gateway timeout, the request took too long",
            _ => status.canonical_reason().unwrap_or("error"),
        };
        Self::new(status, message.to_lowercase())
    }

    pub(crate) fn to_response(&self) -> HttpResponse {
        let mut builder = HttpResponse::build(self.status);
        if let Some(seconds) = self.retry_after {
            builder.insert_header((RETRY_AFTER, seconds.to_string()));
        }
        builder.json(json!({
            "id": uuid::Uuid::new_v4().to_string(),
            "message": self.message,
        }))
    }
}

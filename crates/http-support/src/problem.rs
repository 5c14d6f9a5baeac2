//! RFC 9457 problem documents (`application/problem+json`) with a stable `code`, and the one
//! mapping of a service's error type to them. Causes of internal errors are logged here and
//! never sent to the client.

use std::fmt::Debug;

use actix_web::{
    HttpResponse, ResponseError,
    http::{
        StatusCode,
        header::{self, HeaderName, HeaderValue},
    },
};
use domain::validation::FieldError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The content type of every problem response.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// What the client reads instead of the cause of an internal error.
pub const INTERNAL_DETAIL: &str = "an unexpected error occurred; it has been logged";

// The derived schema has no example: each service's document sets its own (see
// `openapi::Conventions`). The doc comments below are the schema's descriptions.
/// An RFC 9457 problem document with a stable, machine-readable `code`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
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
    /// For validation problems: each invalid field with the JSON pointer to it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl Problem {
    /// A problem of type `/problems/<code>`, titled with the status's reason phrase.
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("/problems/{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            code: code.to_string(),
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    /// The same problem, naming each invalid field.
    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// This problem as an `application/problem+json` response with its status and `headers`.
    pub fn response(
        &self,
        headers: impl IntoIterator<Item = (HeaderName, HeaderValue)>,
    ) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.content_type(PROBLEM_JSON);
        for header in headers {
            response.insert_header(header);
        }
        response.json(self)
    }
}

/// A service's error type, answered as a [`Problem`].
///
/// The service decides (its policy) the status (`ResponseError::status_code`), the [`code`],
/// the detail and any header; this trait builds the response the same way for every service.
/// Its `ResponseError::error_response` is [`problem_response`]:
///
/// ```ignore
/// impl ResponseError for MyError {
///     fn status_code(&self) -> StatusCode { /* per variant */ }
///     fn error_response(&self) -> HttpResponse { self.problem_response() }
/// }
/// ```
///
/// [`code`]: ProblemError::code
/// [`problem_response`]: ProblemError::problem_response
pub trait ProblemError: ResponseError {
    /// The stable, machine-readable code; the problem's type is `/problems/<code>`.
    fn code(&self) -> &'static str;

    /// The cause of an internal error: logged, never sent (the client reads
    /// [`INTERNAL_DETAIL`]). `None` for every error the client may read about.
    fn internal_cause(&self) -> Option<&dyn Debug> {
        None
    }

    /// What went wrong, for people: the error's message unless overridden.
    fn detail(&self) -> String {
        self.to_string()
    }

    /// The invalid fields of a validation error.
    fn field_errors(&self) -> &[FieldError] {
        &[]
    }

    /// A header the response carries, e.g. [`bearer_challenge`] or [`retry_after`].
    fn header(&self) -> Option<(HeaderName, HeaderValue)> {
        None
    }

    fn problem(&self) -> Problem {
        let detail = match self.internal_cause() {
            Some(_) => INTERNAL_DETAIL.to_string(),
            None => self.detail(),
        };
        Problem::new(self.status_code(), self.code(), detail)
            .with_errors(self.field_errors().to_vec())
    }

    /// The problem+json response; logs the cause of an internal error.
    fn problem_response(&self) -> HttpResponse {
        if let Some(cause) = self.internal_cause() {
            tracing::error!(error = ?cause, "request failed");
        }
        self.problem().response(self.header())
    }
}

/// `WWW-Authenticate: Bearer`, for a 401.
pub fn bearer_challenge() -> (HeaderName, HeaderValue) {
    (header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
}

/// `Retry-After: <seconds>`, for a 503.
pub fn retry_after(seconds: u32) -> (HeaderName, HeaderValue) {
    (header::RETRY_AFTER, HeaderValue::from(seconds))
}

#[cfg(test)]
mod tests {
    use actix_web::body::to_bytes;
    use serde_json::{Value, json};

    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum TestError {
        #[error("the widget is busy")]
        Busy,
        #[error("internal error")]
        Internal(String),
        #[error("invalid")]
        Invalid(Vec<FieldError>),
    }

    impl ResponseError for TestError {
        fn status_code(&self) -> StatusCode {
            match self {
                TestError::Busy => StatusCode::SERVICE_UNAVAILABLE,
                TestError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
                TestError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            }
        }

        fn error_response(&self) -> HttpResponse {
            self.problem_response()
        }
    }

    impl ProblemError for TestError {
        fn code(&self) -> &'static str {
            match self {
                TestError::Busy => "busy",
                TestError::Internal(_) => "internal_error",
                TestError::Invalid(_) => "validation_failed",
            }
        }

        fn internal_cause(&self) -> Option<&dyn Debug> {
            match self {
                TestError::Internal(cause) => Some(cause),
                _ => None,
            }
        }

        fn field_errors(&self) -> &[FieldError] {
            match self {
                TestError::Invalid(errors) => errors,
                _ => &[],
            }
        }

        fn header(&self) -> Option<(HeaderName, HeaderValue)> {
            matches!(self, TestError::Busy).then(|| retry_after(5))
        }
    }

    async fn body(response: HttpResponse) -> Value {
        let bytes = to_bytes(response.into_body()).await.expect("body");
        serde_json::from_slice(&bytes).expect("JSON body")
    }

    #[actix_web::test]
    async fn an_error_answers_problem_json_with_its_status_code_and_header() {
        let response = TestError::Busy.error_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response
                .headers()
                .get(header::CONTENT_TYPE)
                .expect("header"),
            PROBLEM_JSON
        );
        assert_eq!(
            response.headers().get(header::RETRY_AFTER).expect("header"),
            "5"
        );
        assert_eq!(
            body(response).await,
            json!({
                "type": "/problems/busy",
                "title": "Service Unavailable",
                "status": 503,
                "code": "busy",
                "detail": "the widget is busy"
            }),
            "no `errors` member when there are none"
        );
    }

    #[actix_web::test]
    async fn the_cause_of_an_internal_error_is_never_sent() {
        let response = TestError::Internal("password=hunter2".into()).error_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(response.headers().get(header::RETRY_AFTER).is_none());
        let body = body(response).await;
        assert_eq!(body["detail"], INTERNAL_DETAIL);
        assert_eq!(body["code"], "internal_error");
        assert!(!body.to_string().contains("hunter2"));
    }

    #[actix_web::test]
    async fn field_errors_are_listed_with_their_paths() {
        let error = TestError::Invalid(vec![FieldError {
            path: "/stages/0/prompt".into(),
            message: "must not be blank".into(),
        }]);
        let body = body(error.error_response()).await;
        assert_eq!(body["status"], 422);
        assert_eq!(body["title"], "Unprocessable Entity");
        assert_eq!(
            body["errors"],
            json!([{"path": "/stages/0/prompt", "message": "must not be blank"}])
        );
    }

    #[test]
    fn bearer_challenge_names_the_scheme() {
        let (name, value) = bearer_challenge();
        assert_eq!(name, header::WWW_AUTHENTICATE);
        assert_eq!(value, "Bearer");
    }
}

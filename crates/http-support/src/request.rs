//! What is wrong with a request before any handler runs: the error handlers of `web::Json`,
//! `web::Query` and `web::Path`, the bearer token, and pagination.
//!
//! The handlers are generic over the service's error type `E`: they report a
//! [`RequestError`] and the service's `From<RequestError> for E` picks its own variant (and
//! with it the status and code). Register them as, e.g.,
//! `web::QueryConfig::default().error_handler(query_error::<MyError>)`.

use std::fmt::Display;

use actix_web::{
    HttpRequest, ResponseError,
    error::{InternalError, JsonPayloadError, PathError, QueryPayloadError},
    http::header,
    web,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::routes::RouteTable;

/// What the shared handlers found wrong with a request. The messages are for people and end
/// up as the problem's `detail`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// A path or query parameter, or the paging, is wrong (a 400 in both services).
    #[error("{0}")]
    BadRequest(String),
    /// The body is not JSON (400).
    #[error("{0}")]
    MalformedJson(String),
    /// The body is larger than the service accepts (413).
    #[error("the request body exceeds {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// The body is not declared as JSON (415).
    #[error("the request body must be application/json")]
    UnsupportedMediaType,
    /// JSON of the wrong shape (422).
    #[error("{0}")]
    Invalid(String),
    /// No route takes the path, under any method (404).
    #[error("route not found")]
    NoRoute,
}

impl RequestError {
    /// The body failed to parse as JSON.
    pub fn malformed_json(err: impl Display) -> Self {
        RequestError::MalformedJson(format!("the request body is not valid JSON: {err}"))
    }
}

/// `web::Json` errors: wrong content type 415, too large 413, not JSON 400, JSON of the
/// wrong shape 422.
pub fn json_error<E>(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error
where
    E: From<RequestError> + ResponseError + 'static,
{
    E::from(classify_json_error(err)).into()
}

fn classify_json_error(err: JsonPayloadError) -> RequestError {
    match err {
        JsonPayloadError::ContentType => RequestError::UnsupportedMediaType,
        JsonPayloadError::Overflow { limit }
        | JsonPayloadError::OverflowKnownLength { limit, .. } => {
            RequestError::PayloadTooLarge { limit }
        }
        JsonPayloadError::Deserialize(e) if e.is_data() => {
            RequestError::Invalid(format!("the request body is invalid: {e}"))
        }
        other => RequestError::malformed_json(other),
    }
}

/// `web::Query` errors are 400s.
pub fn query_error<E>(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error
where
    E: From<RequestError> + ResponseError + 'static,
{
    E::from(RequestError::BadRequest(format!(
        "invalid query parameter: {err}"
    )))
    .into()
}

/// `web::Path` errors. A segment that fails to parse may be a literal route under another
/// method (`GET /api/jobs/submit`): with a [`RouteTable`] registered as app data that is a
/// 405; anything else is a 400.
pub fn path_error<E>(err: PathError, req: &HttpRequest) -> actix_web::Error
where
    E: From<RequestError> + ResponseError + 'static,
{
    let routes = req.app_data::<web::Data<RouteTable>>();
    if let Some(response) = routes.and_then(|r| r.method_not_allowed(req)) {
        return InternalError::from_response(err, response).into();
    }
    E::from(RequestError::BadRequest(format!(
        "invalid path parameter: {err}"
    )))
    .into()
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive), if any.
pub fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Items per page when a list request names no `limit`.
pub const DEFAULT_PAGE_LIMIT: u64 = 50;

/// Largest `offset` of a list request.
pub const MAX_PAGE_OFFSET: u64 = 1_000_000_000;

/// The `(limit, offset)` of a list request: `limit` 1 to `max_limit` (default
/// [`DEFAULT_PAGE_LIMIT`]), `offset` at most [`MAX_PAGE_OFFSET`] (default 0).
pub fn checked_page(
    limit: Option<u64>,
    offset: Option<u64>,
    max_limit: u64,
) -> Result<(u64, u64), RequestError> {
    let limit = limit.unwrap_or(DEFAULT_PAGE_LIMIT);
    if !(1..=max_limit).contains(&limit) {
        return Err(RequestError::BadRequest(format!(
            "limit must be between 1 and {max_limit}"
        )));
    }
    let offset = offset.unwrap_or(0);
    if offset > MAX_PAGE_OFFSET {
        return Err(RequestError::BadRequest(format!(
            "offset must be at most {MAX_PAGE_OFFSET}"
        )));
    }
    Ok((limit, offset))
}

// The doc comments are the schema's descriptions in both documents.
/// One page of a list, with the total number of matches.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Paged<T: ToSchema> {
    pub items: Vec<T>,
    /// Number of matches across all pages.
    pub total: u64,
    pub limit: u64,
    pub offset: u64,
}

#[cfg(test)]
mod tests {
    use actix_web::{
        App, HttpResponse, body::to_bytes, http::StatusCode, test as actix_test, web::Bytes,
    };
    use serde_json::Value;

    use super::*;
    use crate::test_support::ServiceError;

    #[derive(Debug, serde::Deserialize)]
    struct Body {
        #[allow(dead_code)]
        count: u32,
    }

    async fn post(content_type: &str, body: &'static str) -> (StatusCode, Value) {
        let app = actix_test::init_service(
            App::new()
                .app_data(
                    web::JsonConfig::default()
                        .limit(32)
                        .error_handler(json_error::<ServiceError>),
                )
                .route(
                    "/",
                    web::post()
                        .to(|_: web::Json<Body>| async { HttpResponse::NoContent().finish() }),
                ),
        )
        .await;
        let request = actix_test::TestRequest::post()
            .uri("/")
            .insert_header((header::CONTENT_TYPE, content_type))
            .set_payload(Bytes::from_static(body.as_bytes()))
            .to_request();
        let response = actix_test::call_service(&app, request).await;
        let status = response.status();
        let bytes = to_bytes(response.into_body()).await.expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    #[actix_web::test]
    async fn json_body_errors_map_to_415_413_400_and_422() {
        let (status, body) = post("text/plain", r#"{"count": 1}"#).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(body["detail"], "the request body must be application/json");

        let (status, body) = post(
            "application/json",
            r#"{"count": 1, "pad": "xxxxxxxxxxxxxxxx"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body["detail"], "the request body exceeds 32 bytes");

        let (status, body) = post("application/json", r#"{"count": "#).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let detail = body["detail"].as_str().expect("detail");
        assert!(
            detail.starts_with("the request body is not valid JSON: "),
            "{detail}"
        );

        let (status, body) = post("application/json", r#"{"count": "one"}"#).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let detail = body["detail"].as_str().expect("detail");
        assert!(
            detail.starts_with("the request body is invalid: "),
            "{detail}"
        );

        let (status, _) = post("application/json", r#"{"count": 1}"#).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }

    #[actix_web::test]
    async fn query_and_path_errors_are_400_with_what_failed() {
        #[derive(Debug, serde::Deserialize)]
        struct Query {
            #[allow(dead_code)]
            n: u32,
        }
        let app = actix_test::init_service(
            App::new()
                .app_data(web::QueryConfig::default().error_handler(query_error::<ServiceError>))
                .app_data(web::PathConfig::default().error_handler(path_error::<ServiceError>))
                .route(
                    "/q",
                    web::get()
                        .to(|_: web::Query<Query>| async { HttpResponse::NoContent().finish() }),
                )
                .route(
                    "/p/{n}",
                    web::get().to(|_: web::Path<u32>| async { HttpResponse::NoContent().finish() }),
                ),
        )
        .await;
        for (uri, prefix) in [
            ("/q?n=x", "invalid query parameter: "),
            ("/p/x", "invalid path parameter: "),
        ] {
            let response = actix_test::call_service(
                &app,
                actix_test::TestRequest::get().uri(uri).to_request(),
            )
            .await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{uri}");
            let problem: Value = actix_test::read_body_json(response).await;
            let detail = problem["detail"].as_str().expect("detail");
            assert!(detail.starts_with(prefix), "{uri}: {detail}");
        }
    }

    #[test]
    fn pages_are_checked_against_the_service_limit() {
        assert_eq!(checked_page(None, None, 200), Ok((DEFAULT_PAGE_LIMIT, 0)));
        assert_eq!(
            checked_page(Some(200), Some(MAX_PAGE_OFFSET), 200),
            Ok((200, MAX_PAGE_OFFSET))
        );
        assert_eq!(
            checked_page(Some(201), None, 200),
            Err(RequestError::BadRequest(
                "limit must be between 1 and 200".into()
            ))
        );
        assert!(checked_page(Some(0), None, 200).is_err());
        assert_eq!(checked_page(Some(500), None, 500), Ok((500, 0)));
        assert_eq!(
            checked_page(None, Some(MAX_PAGE_OFFSET + 1), 200),
            Err(RequestError::BadRequest(
                "offset must be at most 1000000000".into()
            ))
        );
    }

    #[test]
    fn the_bearer_token_is_read_whatever_the_scheme_case() {
        let token = |value: &str| {
            let req = actix_test::TestRequest::default()
                .insert_header((header::AUTHORIZATION, value))
                .to_http_request();
            bearer_token(&req).map(str::to_string)
        };
        assert_eq!(token("Bearer abc").as_deref(), Some("abc"));
        assert_eq!(token("bearer  abc ").as_deref(), Some("abc"));
        assert_eq!(token("Basic abc"), None);
        assert_eq!(token("Bearer "), None);
        assert_eq!(
            bearer_token(&actix_test::TestRequest::default().to_http_request()),
            None
        );
    }
}

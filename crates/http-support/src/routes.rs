//! Answers for requests no handler takes: 405 (with `Allow`) when the path is documented under
//! another method, else 404, both as problem+json. What is documented comes from the
//! service's OpenAPI document, so a new route needs nothing here.

use std::sync::Arc;

use actix_web::{
    HttpRequest, HttpResponse, ResponseError,
    http::{
        StatusCode,
        header::{self, HeaderValue},
    },
    web,
};
use utoipa::openapi::OpenApi;

use crate::{problem::Problem, request::RequestError};

/// The documented path templates and their methods, taken from an OpenAPI document. Register
/// it as `web::Data<RouteTable>` for [`not_routed`] and [`crate::request::path_error`].
#[derive(Clone)]
pub struct RouteTable {
    prefix: Arc<str>,
    routes: Arc<Vec<(Vec<String>, Vec<&'static str>)>>,
}

impl RouteTable {
    /// Every documented path.
    pub fn from_spec(spec: &OpenApi) -> Self {
        Self::from_spec_under(spec, "/")
    }

    /// The documented paths that start with `prefix` (e.g. `/admin/`); requests for paths that
    /// do not are unknown (404) whatever their method.
    pub fn from_spec_under(spec: &OpenApi, prefix: &str) -> Self {
        let routes = spec
            .paths
            .paths
            .iter()
            .filter(|(template, _)| template.starts_with(prefix))
            .map(|(template, item)| {
                let segments = template
                    .trim_matches('/')
                    .split('/')
                    .map(str::to_string)
                    .collect();
                let methods = [
                    ("GET", item.get.is_some()),
                    ("POST", item.post.is_some()),
                    ("PUT", item.put.is_some()),
                    ("PATCH", item.patch.is_some()),
                    ("DELETE", item.delete.is_some()),
                ]
                .into_iter()
                .filter_map(|(m, present)| present.then_some(m))
                .collect();
                (segments, methods)
            })
            .collect();
        Self {
            prefix: prefix.into(),
            routes: Arc::new(routes),
        }
    }

    /// Methods allowed on `path`, if it matches a documented template. When several match
    /// (`/api/jobs/submit` and `/api/jobs/{job_id}`), the most literal ones win.
    pub fn allowed(&self, path: &str) -> Option<Vec<&'static str>> {
        if !path.starts_with(&*self.prefix) {
            return None;
        }
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let mut best_literals = 0;
        let mut allowed: Vec<&'static str> = Vec::new();
        for (template, methods) in self.routes.iter() {
            let matches = template.len() == segments.len()
                && template
                    .iter()
                    .zip(&segments)
                    .all(|(t, s)| (t.starts_with('{') && !s.is_empty()) || t == s);
            if !matches {
                continue;
            }
            let literals = template.iter().filter(|t| !t.starts_with('{')).count();
            if literals > best_literals {
                best_literals = literals;
                allowed.clear();
            }
            if literals == best_literals {
                for method in methods {
                    if !allowed.contains(method) {
                        allowed.push(method);
                    }
                }
            }
        }
        (!allowed.is_empty()).then_some(allowed)
    }

    /// A 405 response when `req`'s path is documented but not for its method.
    pub fn method_not_allowed(&self, req: &HttpRequest) -> Option<HttpResponse> {
        let methods = self.allowed(req.path())?;
        (!methods.contains(&req.method().as_str()))
            .then(|| method_not_allowed(req.method().as_str(), &methods))
    }
}

/// `405 Method Not Allowed` as problem+json, with `Allow`.
pub fn method_not_allowed(method: &str, allowed: &[&str]) -> HttpResponse {
    let allow = allowed.join(", ");
    let detail = format!("{method} is not allowed here; use {allow}");
    let allow = HeaderValue::from_str(&allow).unwrap_or(HeaderValue::from_static(""));
    Problem::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", detail)
        .response([(header::ALLOW, allow)])
}

/// The default service: 405 when the path is documented (under any method), else the
/// service's answer to [`RequestError::NoRoute`].
pub async fn not_routed<E>(req: HttpRequest, routes: web::Data<RouteTable>) -> HttpResponse
where
    E: From<RequestError> + ResponseError,
{
    match routes.allowed(req.path()) {
        Some(methods) => method_not_allowed(req.method().as_str(), &methods),
        None => E::from(RequestError::NoRoute).error_response(),
    }
}

#[cfg(test)]
mod tests {
    use actix_web::{App, test as actix_test};
    use serde_json::Value;
    use utoipa::openapi::{
        HttpMethod, OpenApiBuilder, PathItem, PathsBuilder, path::OperationBuilder,
    };

    use super::*;
    use crate::test_support::ServiceError;

    fn spec() -> OpenApi {
        let item = |methods: &[HttpMethod]| {
            let mut item = PathItem::new(methods[0].clone(), OperationBuilder::new().build());
            for method in &methods[1..] {
                item.merge_operations(PathItem::new(
                    method.clone(),
                    OperationBuilder::new().build(),
                ));
            }
            item
        };
        OpenApiBuilder::new()
            .paths(
                PathsBuilder::new()
                    .path("/healthz", item(&[HttpMethod::Get]))
                    .path("/api/jobs", item(&[HttpMethod::Get, HttpMethod::Post]))
                    .path("/api/jobs/submit", item(&[HttpMethod::Post]))
                    .path(
                        "/api/jobs/{job_id}",
                        item(&[HttpMethod::Get, HttpMethod::Delete]),
                    ),
            )
            .build()
    }

    #[test]
    fn the_most_literal_template_wins() {
        let routes = RouteTable::from_spec(&spec());
        assert_eq!(routes.allowed("/api/jobs/submit"), Some(vec!["POST"]));
        assert_eq!(
            routes.allowed("/api/jobs/0190a0b5-7c1e-7000-8000-000000000000"),
            Some(vec!["GET", "DELETE"])
        );
        assert_eq!(routes.allowed("/api/jobs/"), Some(vec!["GET", "POST"]));
        assert_eq!(routes.allowed("/api/jobs/a/b"), None);
        assert_eq!(routes.allowed("/healthz"), Some(vec!["GET"]));
    }

    #[test]
    fn a_table_under_a_prefix_knows_nothing_else() {
        let routes = RouteTable::from_spec_under(&spec(), "/api/");
        assert_eq!(routes.allowed("/healthz"), None);
        assert_eq!(routes.allowed("//api/jobs"), None);
        assert_eq!(routes.allowed("/api/jobs/submit"), Some(vec!["POST"]));
    }

    #[actix_web::test]
    async fn unrouted_requests_are_405_with_allow_or_the_services_404() {
        let app = actix_test::init_service(
            App::new()
                .app_data(web::Data::new(RouteTable::from_spec(&spec())))
                .default_service(web::to(not_routed::<ServiceError>)),
        )
        .await;

        let request = actix_test::TestRequest::put().uri("/api/jobs").to_request();
        let response = actix_test::call_service(&app, request).await;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            response.headers().get(header::ALLOW).expect("header"),
            "GET, POST"
        );
        assert_eq!(
            response
                .headers()
                .get(header::CONTENT_TYPE)
                .expect("header"),
            crate::PROBLEM_JSON
        );
        let problem: Value = actix_test::read_body_json(response).await;
        assert_eq!(problem["code"], "method_not_allowed");
        assert_eq!(problem["type"], "/problems/method_not_allowed");
        assert_eq!(problem["title"], "Method Not Allowed");
        assert_eq!(problem["detail"], "PUT is not allowed here; use GET, POST");

        let request = actix_test::TestRequest::get()
            .uri("/api/nothing")
            .to_request();
        let response = actix_test::call_service(&app, request).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let problem: Value = actix_test::read_body_json(response).await;
        assert_eq!(problem["code"], "not_found");
        assert_eq!(problem["detail"], "route not found");
    }

    #[actix_web::test]
    async fn a_literal_route_read_as_a_bad_id_is_405() {
        let app = actix_test::init_service(
            App::new()
                .app_data(web::Data::new(RouteTable::from_spec(&spec())))
                .app_data(
                    web::PathConfig::default()
                        .error_handler(crate::request::path_error::<ServiceError>),
                )
                .route(
                    "/api/jobs/{job_id}",
                    web::get().to(|_: web::Path<u32>| async { HttpResponse::NoContent().finish() }),
                ),
        )
        .await;
        let request = actix_test::TestRequest::get()
            .uri("/api/jobs/submit")
            .to_request();
        let response = actix_test::call_service(&app, request).await;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            response.headers().get(header::ALLOW).expect("header"),
            "POST"
        );

        let request = actix_test::TestRequest::get()
            .uri("/api/jobs/x")
            .to_request();
        let response = actix_test::call_service(&app, request).await;
        assert_eq!(
            response.status(),
            StatusCode::BAD_REQUEST,
            "the service's own answer"
        );
        let problem: Value = actix_test::read_body_json(response).await;
        let detail = problem["detail"].as_str().expect("detail");
        assert!(detail.starts_with("invalid path parameter: "), "{detail}");
    }
}

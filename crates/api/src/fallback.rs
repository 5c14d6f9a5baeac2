//! Answers for requests no handler takes: 405 (with `Allow`) when the path exists under
//! another method, else 404, both as problem+json.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, ResponseError, http::header, web};
use utoipa::openapi::OpenApi;

use crate::error::ApiError;

/// The documented path templates and their methods, taken from the OpenAPI document.
#[derive(Clone)]
pub struct RouteTable(Arc<Vec<(Vec<String>, Vec<&'static str>)>>);

impl RouteTable {
    pub fn from_spec(spec: &OpenApi) -> Self {
        let routes = spec
            .paths
            .paths
            .iter()
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
        Self(Arc::new(routes))
    }

    /// Methods allowed on `path`, if it matches a documented template. When several match
    /// (`/api/jobs/submit` and `/api/jobs/{job_id}`), the most literal ones win.
    pub fn allowed(&self, path: &str) -> Option<Vec<&'static str>> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let mut best_literals = 0;
        let mut allowed: Vec<&'static str> = Vec::new();
        for (template, methods) in self.0.iter() {
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
        (!methods.contains(&req.method().as_str())).then(|| {
            MethodNotAllowed {
                method: req.method().to_string(),
                allow: methods.join(", "),
            }
            .error_response()
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{method} is not allowed here; use {allow}")]
struct MethodNotAllowed {
    method: String,
    allow: String,
}

impl ResponseError for MethodNotAllowed {
    fn status_code(&self) -> actix_web::http::StatusCode {
        actix_web::http::StatusCode::METHOD_NOT_ALLOWED
    }

    fn error_response(&self) -> HttpResponse {
        let problem = crate::error::Problem {
            kind: "/problems/method_not_allowed".into(),
            title: "Method Not Allowed".into(),
            status: 405,
            code: "method_not_allowed".into(),
            detail: self.to_string(),
            errors: vec![],
        };
        HttpResponse::MethodNotAllowed()
            .content_type("application/problem+json")
            .insert_header((header::ALLOW, self.allow.clone()))
            .json(problem)
    }
}

pub async fn not_routed(req: HttpRequest, routes: web::Data<RouteTable>) -> HttpResponse {
    match routes.allowed(req.path()) {
        Some(methods) => MethodNotAllowed {
            method: req.method().to_string(),
            allow: methods.join(", "),
        }
        .error_response(),
        None => ApiError::NotFound("route").error_response(),
    }
}

//! The admin API's OpenAPI document, generated from the handlers' annotations.
//!
//! Errors every admin operation can produce are added here once: 400, 401 and 503 under
//! `/admin`, 404 where a path names a dead letter, 413/415/422 where there is a request body.

use utoipa::{
    Modify, OpenApi,
    openapi::{
        Content, OpenApi as Spec, RefOr, Response, ResponseBuilder,
        path::Operation,
        security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme},
    },
};
use utoipa_actix_web::AppExt;

use crate::http::error::Problem;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Image pipelines re-driver admin API",
        description = "Inspect, re-drive and purge the dead letters the re-driver drained from the dead-letter queue. Every `/admin` route needs `Authorization: Bearer <redriver.admin_token>`.",
        version = "0.1.0"
    ),
    components(schemas(Problem)),
    modifiers(&Conventions),
    tags(
        (name = "dead-letters", description = "Dead letters: list, inspect, re-drive, purge"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
struct AdminDoc;

struct Conventions;

fn problem(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            Content::new(Some(utoipa::openapi::Ref::from_schema_name("Problem"))),
        )
        .build()
        .into()
}

fn add_if_missing(operation: &mut Operation, status: &str, description: &str) {
    operation
        .responses
        .responses
        .entry(status.to_string())
        .or_insert_with(|| problem(description));
}

impl Modify for Conventions {
    fn modify(&self, spec: &mut Spec) {
        let components = spec.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        for (path, item) in spec.paths.paths.iter_mut() {
            if !path.starts_with("/admin/") {
                continue;
            }
            let has_path_params = path.contains('{');
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                operation.security = Some(vec![SecurityRequirement::new(
                    "admin_token",
                    Vec::<String>::new(),
                )]);
                add_if_missing(
                    operation,
                    "400",
                    "Malformed request (JSON syntax, path or query parameter)",
                );
                add_if_missing(operation, "401", "Missing or wrong admin token");
                add_if_missing(
                    operation,
                    "503",
                    "No admin token is configured, or the database is unavailable",
                );
                if has_path_params {
                    add_if_missing(operation, "404", "No such dead letter");
                }
                if operation.request_body.is_some() {
                    add_if_missing(operation, "413", "Request body too large");
                    add_if_missing(operation, "415", "Unsupported request content type");
                    add_if_missing(
                        operation,
                        "422",
                        "The request is well-formed JSON but has invalid or unknown fields",
                    );
                }
            }
        }
    }
}

/// The admin API's document, as served at `/admin/openapi.json` and committed as
/// `openapi/redriver.json`.
pub fn spec() -> Spec {
    let (_, mut spec) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(AdminDoc::openapi())
        .configure(crate::http::configure_health)
        .service(utoipa_actix_web::scope("/admin").configure(crate::http::configure))
        .split_for_parts();
    // Modifiers run before the routes are merged in, so apply the conventions again now.
    Conventions.modify(&mut spec);
    spec
}

/// The document as pretty JSON with a trailing newline (the committed file's format).
pub fn spec_json() -> String {
    let mut json = spec().to_pretty_json().unwrap_or_default();
    json.push('\n');
    json
}

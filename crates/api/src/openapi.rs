//! The OpenAPI document, generated from the handlers' annotations.
//!
//! Errors every operation can produce are added here once, so handler annotations list only
//! the errors particular to them: 400/401/503 everywhere under `/api`, 404 where a path names a
//! resource, 413/415/422 where there is a request body.

use utoipa::{
    Modify, OpenApi,
    openapi::{
        Content, OpenApi as Spec, RefOr, Response, ResponseBuilder,
        path::Operation,
        security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme},
    },
};
use utoipa_actix_web::AppExt;

use crate::error::Problem;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Image pipelines API",
        description = "Run image-analysis pipelines (ordered prompts to a Cohere vision model, with filters between stages) over libraries of images.",
        version = "0.1.0"
    ),
    components(schemas(Problem, domain::event::JobEvent)),
    modifiers(&Conventions),
    tags(
        (name = "libraries", description = "Collections of images"),
        (name = "images", description = "Images in a library"),
        (name = "pipelines", description = "Ordered analysis stages"),
        (name = "jobs", description = "Pipeline runs over images"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
struct ApiDoc;

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
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        for (path, item) in spec.paths.paths.iter_mut() {
            if !path.starts_with("/api/") {
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
                    "bearer",
                    Vec::<String>::new(),
                )]);
                add_if_missing(
                    operation,
                    "400",
                    "Malformed request (JSON syntax, path or query parameter)",
                );
                add_if_missing(operation, "401", "Missing or invalid API key");
                add_if_missing(
                    operation,
                    "503",
                    "The database, broker or storage is unavailable; retry later",
                );
                if has_path_params {
                    add_if_missing(operation, "404", "No such resource for this tenant");
                }
                if operation.request_body.is_some() {
                    add_if_missing(operation, "413", "Request body too large");
                    add_if_missing(operation, "415", "Unsupported request content type");
                    add_if_missing(
                        operation,
                        "422",
                        "The request is well-formed but has invalid fields",
                    );
                }
            }
        }
    }
}

/// The API's OpenAPI document, as served at `/api/openapi.json` and committed under `openapi/`.
pub fn spec() -> Spec {
    let (_, mut spec) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(crate::routes::health::configure)
        .service(utoipa_actix_web::scope("/api").configure(crate::routes::configure))
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

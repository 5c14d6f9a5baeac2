//! What both services' OpenAPI documents do alike: the document built from the handlers'
//! annotations ([`document`]), then, once the routes are merged, the [`Conventions`]: a bearer
//! security scheme that every operation under a prefix requires, the problem responses every
//! such operation can give (so handler annotations list only their own), and the `Problem`
//! schema with the service's example. Last, the document is shaped for client generators
//! (named union variants with discriminators; see `openapi/shape.rs`).

mod shape;

use serde_json::Value;
use utoipa::{
    Modify, PartialSchema, ToSchema,
    openapi::{
        Content, OpenApi, Ref, RefOr, Response, ResponseBuilder, Schema,
        path::Operation,
        security::{
            ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityRequirement, SecurityScheme,
        },
        server::Server,
    },
};
use utoipa_actix_web::{AppExt, service_config::ServiceConfig};

use crate::problem::{PROBLEM_JSON, Problem};

/// Description of the 400 every convened operation can answer.
pub const BAD_REQUEST: &str = "Malformed request (JSON syntax, path or query parameter)";

/// Description of the 413 every convened operation with a body can answer.
pub const PAYLOAD_TOO_LARGE: &str = "Request body too large";

/// Methods a cookie-authenticated request may use only from the service's own pages.
const UNSAFE_METHODS: [&str; 4] = ["post", "put", "patch", "delete"];

/// Description of the 415 every convened operation with a body can answer.
pub const UNSUPPORTED_MEDIA_TYPE: &str = "Unsupported request content type";

/// A service's document conventions; [`document`] applies them to the merged document.
///
/// Under `path_prefix`, every operation requires `security_scheme` and answers 400
/// ([`BAD_REQUEST`]), 401 and 503 with a problem; one whose path names a resource (`{...}`)
/// also 404; one with a request body also 413 ([`PAYLOAD_TOO_LARGE`]), 415
/// ([`UNSUPPORTED_MEDIA_TYPE`]) and 422. A response a handler documents itself is left alone.
/// The descriptions of 401, 503, 404 and 422 are the service's. Any other operation says it
/// needs no security (`security: []`). The document's server is `/`, the one serving it.
#[derive(Debug, Clone)]
pub struct Conventions {
    /// Name of the HTTP bearer security scheme.
    pub security_scheme: &'static str,
    /// Operations whose path starts with this (e.g. `/api/`) follow the conventions.
    pub path_prefix: &'static str,
    /// Description of the 401 response.
    pub unauthorized: &'static str,
    /// Description of the 503 response.
    pub unavailable: &'static str,
    /// Description of the 404 response.
    pub not_found: &'static str,
    /// Description of the 422 response.
    pub unprocessable: &'static str,
    /// The example of the `Problem` schema.
    pub problem_example: Value,
    /// Whether the service's problems may list invalid fields (`errors`, of `FieldError`s);
    /// without, the schema has no `errors` property.
    pub field_errors: bool,
    /// A session cookie every convened operation also accepts, instead of the bearer scheme.
    pub session_cookie: Option<SessionCookie>,
}

/// An `apiKey`-in-cookie security scheme, an alternative to the bearer one. Unsafe operations
/// (POST, PUT, PATCH, DELETE) authenticated by it are refused cross-site, so they also answer
/// 403.
#[derive(Debug, Clone)]
pub struct SessionCookie {
    /// Name of the security scheme.
    pub scheme: &'static str,
    /// Name of the cookie.
    pub cookie: &'static str,
    /// Description of the scheme.
    pub description: &'static str,
    /// Description of the 403 response of unsafe operations.
    pub cross_site: &'static str,
}

/// A response with a problem body, by reference to the `Problem` schema.
pub fn problem_response(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            Content::new(Some(Ref::from_schema_name(Problem::name()))),
        )
        .build()
        .into()
}

fn add_if_missing(operation: &mut Operation, status: &str, description: &str) {
    operation
        .responses
        .responses
        .entry(status.to_string())
        .or_insert_with(|| problem_response(description));
}

impl Conventions {
    fn document_problem(&self, spec: &mut OpenApi) {
        let components = spec.components.get_or_insert_with(Default::default);
        let mut schema = Problem::schema();
        if let RefOr::T(Schema::Object(object)) = &mut schema {
            object.example = Some(self.problem_example.clone());
            if !self.field_errors {
                object.properties.remove("errors");
            }
        }
        if self.field_errors {
            let mut referenced = Vec::new();
            Problem::schemas(&mut referenced);
            components.schemas.extend(referenced);
        }
        components
            .schemas
            .insert(Problem::name().into_owned(), schema);
    }
}

impl Modify for Conventions {
    fn modify(&self, spec: &mut OpenApi) {
        self.document_problem(spec);
        // Relative: the server that serves the document; clients are given their base URL.
        spec.servers.get_or_insert_with(|| vec![Server::new("/")]);
        let components = spec.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            self.security_scheme,
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        let mut requirements = vec![SecurityRequirement::new(
            self.security_scheme,
            Vec::<String>::new(),
        )];
        if let Some(session) = &self.session_cookie {
            components.add_security_scheme(
                session.scheme,
                SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                    session.cookie,
                    session.description,
                ))),
            );
            requirements.push(SecurityRequirement::new(
                session.scheme,
                Vec::<String>::new(),
            ));
        }
        for (path, item) in spec.paths.paths.iter_mut() {
            let convened = path.starts_with(self.path_prefix);
            let has_path_params = path.contains('{');
            for (method, operation) in [
                ("get", &mut item.get),
                ("put", &mut item.put),
                ("post", &mut item.post),
                ("delete", &mut item.delete),
                ("patch", &mut item.patch),
            ]
            .into_iter()
            .filter_map(|(method, operation)| Some((method, operation.as_mut()?)))
            {
                if !convened {
                    // Said explicitly: no credentials (the probes).
                    operation.security.get_or_insert_with(Vec::new);
                    continue;
                }
                // An operation that names its own requirements (e.g. none, to sign in) keeps them.
                if operation.security.is_none() {
                    operation.security = Some(requirements.clone());
                }
                if let Some(session) = &self.session_cookie
                    && UNSAFE_METHODS.contains(&method)
                {
                    add_if_missing(operation, "403", session.cross_site);
                }
                add_if_missing(operation, "400", BAD_REQUEST);
                add_if_missing(operation, "401", self.unauthorized);
                add_if_missing(operation, "503", self.unavailable);
                if has_path_params {
                    add_if_missing(operation, "404", self.not_found);
                }
                if operation.request_body.is_some() {
                    add_if_missing(operation, "413", PAYLOAD_TOO_LARGE);
                    add_if_missing(operation, "415", UNSUPPORTED_MEDIA_TYPE);
                    add_if_missing(operation, "422", self.unprocessable);
                }
            }
        }
    }
}

/// A service's document: `doc` with the routes `root` registers at the root and `scoped`
/// registers under `scope`, then `conventions` (applied after the merge, so that they reach
/// every operation; `doc`'s own modifiers run before it), then shaped for client
/// generators.
pub fn document(
    doc: OpenApi,
    root: impl FnOnce(&mut ServiceConfig),
    scope: &str,
    scoped: impl FnOnce(&mut ServiceConfig),
    conventions: &Conventions,
) -> OpenApi {
    let (_, mut spec) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(doc)
        .configure(root)
        .service(utoipa_actix_web::scope(scope).configure(scoped))
        .split_for_parts();
    conventions.modify(&mut spec);
    shape::shape_for_generators(&mut spec);
    spec
}

/// `spec` as pretty JSON with a trailing newline: the committed documents' format.
pub fn committed_json(spec: &OpenApi) -> String {
    let mut json = spec.to_pretty_json().unwrap_or_default();
    json.push('\n');
    json
}

#[cfg(test)]
mod tests {
    use actix_web::post;
    use serde_json::json;
    use utoipa::openapi::{
        HttpMethod, OpenApiBuilder, PathItem, PathsBuilder, path::OperationBuilder,
        request_body::RequestBodyBuilder,
    };

    use super::*;

    fn conventions(field_errors: bool) -> Conventions {
        Conventions {
            security_scheme: "bearer",
            path_prefix: "/api/",
            unauthorized: "who",
            unavailable: "later",
            not_found: "none",
            unprocessable: "fields",
            problem_example: json!({"code": "unauthorized"}),
            field_errors,
            session_cookie: None,
        }
    }

    fn spec() -> OpenApi {
        let with_body = OperationBuilder::new()
            .request_body(Some(RequestBodyBuilder::new().build()))
            .response("409", problem_response("taken"))
            .build();
        OpenApiBuilder::new()
            .paths(
                PathsBuilder::new()
                    .path(
                        "/healthz",
                        PathItem::new(HttpMethod::Get, OperationBuilder::new().build()),
                    )
                    .path("/api/things", PathItem::new(HttpMethod::Post, with_body))
                    .path(
                        "/api/things/{id}",
                        PathItem::new(HttpMethod::Get, OperationBuilder::new().build()),
                    ),
            )
            .build()
    }

    fn statuses(spec: &OpenApi, path: &str, get: bool) -> Vec<String> {
        let item = &spec.paths.paths[path];
        let operation = if get { &item.get } else { &item.post };
        let operation = operation.as_ref().expect("operation");
        operation.responses.responses.keys().cloned().collect()
    }

    #[test]
    fn operations_under_the_prefix_need_the_scheme_and_get_the_common_problems() {
        let mut spec = spec();
        conventions(true).modify(&mut spec);
        let json = serde_json::to_value(&spec).expect("JSON");
        assert_eq!(
            json["components"]["securitySchemes"]["bearer"],
            json!({"type": "http", "scheme": "bearer"})
        );
        assert_eq!(
            json["paths"]["/api/things"]["post"]["security"],
            json!([{"bearer": []}])
        );
        assert_eq!(json["servers"], json!([{"url": "/"}]));
        assert_eq!(
            statuses(&spec, "/api/things", false),
            ["400", "401", "409", "413", "415", "422", "503"],
            "no 404 without a path parameter; 413/415/422 with a body"
        );
        assert_eq!(
            json["paths"]["/api/things"]["post"]["responses"]["409"]["description"], "taken",
            "a documented response is kept"
        );
        assert_eq!(
            statuses(&spec, "/api/things/{id}", true),
            ["400", "401", "404", "503"]
        );
        assert_eq!(
            json["paths"]["/api/things/{id}"]["get"]["responses"]["401"],
            json!({
                "description": "who",
                "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
            })
        );
        assert_eq!(statuses(&spec, "/healthz", true), Vec::<String>::new());
        assert_eq!(
            json["paths"]["/healthz"]["get"]["security"],
            json!([]),
            "an operation outside the prefix says it needs no credentials"
        );
    }

    #[test]
    fn a_session_cookie_is_an_alternative_scheme_and_unsafe_operations_may_be_refused_cross_site() {
        let mut spec = spec();
        let mut own = OperationBuilder::new().build();
        own.security = Some(vec![SecurityRequirement::default()]);
        spec.paths
            .paths
            .insert("/api/session".into(), PathItem::new(HttpMethod::Post, own));
        Conventions {
            session_cookie: Some(SessionCookie {
                scheme: "session",
                cookie: "sid",
                description: "signed in",
                cross_site: "elsewhere",
            }),
            ..conventions(false)
        }
        .modify(&mut spec);
        let json = serde_json::to_value(&spec).expect("JSON");
        assert_eq!(
            json["components"]["securitySchemes"]["session"],
            json!({"type": "apiKey", "in": "cookie", "name": "sid", "description": "signed in"})
        );
        assert_eq!(
            json["paths"]["/api/things"]["post"]["security"],
            json!([{"bearer": []}, {"session": []}])
        );
        assert_eq!(
            json["paths"]["/api/things"]["post"]["responses"]["403"]["description"],
            "elsewhere"
        );
        assert!(json["paths"]["/api/things/{id}"]["get"]["responses"]["403"].is_null());
        assert_eq!(
            json["paths"]["/api/session"]["post"]["security"],
            json!([{}]),
            "an operation's own requirements are kept"
        );
    }

    #[test]
    fn the_problem_schema_carries_the_services_example_and_field_errors_only_when_asked() {
        let mut with = spec();
        conventions(true).modify(&mut with);
        let with = serde_json::to_value(&with).expect("JSON");
        let schemas = &with["components"]["schemas"];
        assert_eq!(
            schemas["Problem"]["example"],
            json!({"code": "unauthorized"})
        );
        assert_eq!(
            schemas["Problem"]["properties"]["errors"]["items"]["$ref"],
            "#/components/schemas/FieldError"
        );
        assert!(schemas["FieldError"].is_object());

        let mut without = spec();
        conventions(false).modify(&mut without);
        let without = serde_json::to_value(&without).expect("JSON");
        let schemas = &without["components"]["schemas"];
        assert!(schemas["Problem"]["properties"]["errors"].is_null());
        assert!(schemas["Problem"]["properties"]["code"].is_object());
        assert!(schemas["FieldError"].is_null());
        assert_eq!(
            schemas["Problem"]["required"],
            json!(["type", "title", "status", "code", "detail"])
        );
    }

    /// Creates a thing.
    #[utoipa::path(request_body = String, responses((status = 201, description = "Created")))]
    #[post("/things")]
    async fn create_thing() -> actix_web::HttpResponse {
        actix_web::HttpResponse::Created().finish()
    }

    #[test]
    fn a_document_applies_the_conventions_to_the_merged_routes() {
        let spec = document(
            OpenApiBuilder::new().build(),
            |cfg| {
                cfg.service(crate::health::healthz);
            },
            "/api",
            |cfg| {
                cfg.service(create_thing);
            },
            &conventions(false),
        );
        assert_eq!(
            statuses(&spec, "/api/things", false),
            ["201", "400", "401", "413", "415", "422", "503"]
        );
        assert_eq!(statuses(&spec, "/healthz", true), ["200"]);
        let json = committed_json(&spec);
        assert!(json.ends_with("}\n"), "one trailing newline");
        let parsed: Value = serde_json::from_str(&json).expect("JSON");
        assert_eq!(
            parsed["paths"]["/api/things"]["post"]["security"],
            json!([{"bearer": []}])
        );
        assert_eq!(
            parsed["components"]["schemas"]["Health"]["properties"]["status"]["example"],
            "ok"
        );
    }
}

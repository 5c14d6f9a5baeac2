//! The web dashboard (`web/dist`, built by `make web`), served at `/` from the api binary, and
//! the security headers of every response.
//!
//! - Exact file paths are served from the embedded build with their content type; Vite's
//!   content-hashed files under `/assets/` are cached for a year (`immutable`), everything
//!   else (`index.html` first) is revalidated on each use (`no-cache`, with an `ETag`).
//! - Any other GET for an HTML page (the SPA's client-side routes) gets `index.html`, except
//!   under `/api/`, `/docs/`, `/healthz`, `/readyz` and `/metrics`, which keep their own
//!   answers (an unknown `/api/...` path stays a problem+json 404).
//! - Without a built UI, `cargo build` and `cargo test` still work: the page routes then
//!   answer a short page saying how to build it.
//!
//! In release builds the files are embedded at compile time (`build.rs` makes cargo rebuild
//! the api when `web/dist` changes); debug builds read them from `web/dist` at run time.

use actix_web::{
    Error, HttpRequest, HttpResponse,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::{
        Method,
        header::{self, HeaderValue},
    },
    middleware::Next,
    web,
};
use http_support::{RouteTable, routes::not_routed};

use crate::error::ApiError;

#[derive(rust_embed::Embed)]
#[folder = "../../web/dist/"]
#[allow_missing = true]
struct Assets;

/// Whether `web/dist/index.html` existed when the api was compiled.
pub const UI_BUILT: bool = matches!(env!("API_WEB_UI_BUILT").as_bytes(), b"true");

/// The policy of every response but the API docs': scripts, styles, images and connections
/// from this origin only (no inline scripts or styles), no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// Swagger UI at `/docs/` sets inline styles from HTML strings; its scripts are still only
/// its own files.
pub const DOCS_CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

const HASHED_ASSETS: &str = "assets/";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// Shown at `/` when the UI was not built.
const NOT_BUILT_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Image pipelines: dashboard not built</title></head>
<body>
<h1>The dashboard has not been built</h1>
<p>This api serves the web dashboard from <code>web/dist</code>, which does not exist yet.
Build it, then restart the api (release builds embed it, so rebuild those):</p>
<pre>make web</pre>
<p>or</p>
<pre>npm --prefix web ci &amp;&amp; npm --prefix web run build</pre>
<p>The REST API works meanwhile: see <a href="/docs/">/docs/</a>.</p>
</body>
</html>
"#;

/// Paths the UI never answers.
fn reserved(path: &str) -> bool {
    ["/api", "/docs", "/healthz", "/readyz", "/metrics"]
        .iter()
        .any(|prefix| {
            path.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
}

fn accepts_html(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

fn content_type(path: &str) -> String {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    match (mime.type_(), mime.subtype().as_str()) {
        (mime::TEXT, _) | (_, "javascript" | "json" | "xml" | "svg") => {
            format!("{mime}; charset=utf-8")
        }
        _ => mime.to_string(),
    }
}

/// The embedded file at `path`, with its caching headers; 304 when the client has it.
fn file(req: &HttpRequest, path: &str) -> Option<HttpResponse> {
    let file = Assets::get(path)?;
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16]));
    let cache = if path.starts_with(HASHED_ASSETS) {
        IMMUTABLE
    } else {
        REVALIDATE
    };
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == etag));
    let mut response = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header((header::ETAG, etag));
    Some(if fresh {
        response.finish()
    } else {
        response
            .content_type(content_type(path))
            .body(file.data.into_owned())
    })
}

/// The SPA's page: `index.html`, or the page saying how to build it.
fn index(req: &HttpRequest) -> HttpResponse {
    file(req, "index.html").unwrap_or_else(|| {
        HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, REVALIDATE))
            .content_type("text/html; charset=utf-8")
            .body(NOT_BUILT_PAGE)
    })
}

/// The default service: UI files and pages, else the API's 405/404 problems.
pub async fn serve(req: HttpRequest, routes: web::Data<RouteTable>) -> HttpResponse {
    let path = req.path();
    let readable = matches!(*req.method(), Method::GET | Method::HEAD);
    if !readable || reserved(path) {
        return not_routed::<ApiError>(req, routes).await;
    }
    let relative = path.trim_start_matches('/');
    if relative.is_empty() {
        return index(&req);
    }
    if let Some(response) = file(&req, relative) {
        return response;
    }
    // A missing asset is a 404, never the page (a stale bundle must not run HTML as script).
    if !relative.starts_with(HASHED_ASSETS) && accepts_html(&req) {
        return index(&req);
    }
    not_routed::<ApiError>(req, routes).await
}

/// Adds the security headers to every response: the content security policy (a laxer one for
/// the API docs), no MIME sniffing, no referrer to other origins, no framing.
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let docs = req.path() == "/docs" || req.path().starts_with("/docs/");
    let mut response = next.call(req).await?;
    let headers = response.headers_mut();
    let policy = if docs {
        DOCS_CONTENT_SECURITY_POLICY
    } else {
        CONTENT_SECURITY_POLICY
    };
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(policy),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_paths_are_whole_segments() {
        for path in [
            "/api", "/api/x", "/docs/", "/healthz", "/readyz", "/metrics",
        ] {
            assert!(reserved(path), "{path}");
        }
        for path in ["/", "/apis", "/jobs/1", "/documents", "/healthzone"] {
            assert!(!reserved(path), "{path}");
        }
    }

    #[test]
    fn text_types_say_their_charset() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(
            content_type("assets/index-abc.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("assets/logo.png"), "image/png");
        assert_eq!(content_type("assets/x.woff2"), "font/woff2");
    }
}

//! The web dashboard served by the api, and the security headers of every response.

use reqwest::{Method, Response, header};
use serde_json::Value;
use system_tests::TestApp;

fn header_of(response: &Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

fn assert_security_headers(response: &Response, what: &str) {
    let policy = header_of(response, "content-security-policy");
    for directive in [
        "default-src 'self'",
        "script-src 'self';",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(
            policy.contains(directive),
            "{what}: {directive} in {policy}"
        );
    }
    assert!(!policy.contains("unsafe-inline"), "{what}: {policy}");
    assert_eq!(
        header_of(response, "x-content-type-options"),
        "nosniff",
        "{what}"
    );
    assert_eq!(
        header_of(response, "referrer-policy"),
        "same-origin",
        "{what}"
    );
    assert_eq!(header_of(response, "x-frame-options"), "DENY", "{what}");
}

async fn page(app: &TestApp, path: &str) -> Response {
    app.anonymous(Method::GET, path)
        .header(header::ACCEPT, "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_root_serves_the_dashboard_or_says_how_to_build_it() {
    let app = TestApp::spawn().await;
    let root = page(&app, "/").await;
    assert_eq!(root.status(), 200);
    assert_eq!(header_of(&root, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header_of(&root, "cache-control"), "no-cache");
    assert_security_headers(&root, "/");
    let html = root.text().await.unwrap();
    if api::ui::UI_BUILT {
        assert!(!html.contains("has not been built"), "{html}");
        assert!(
            html.contains("/assets/"),
            "the built index names its assets"
        );
    } else {
        assert!(html.contains("make web"), "{html}");
        assert!(html.contains("npm --prefix web ci &amp;&amp; npm --prefix web run build"));
    }

    // A client-side route gets the same page.
    let route = page(&app, "/jobs/0193a0b5-7c1e-7000-8000-000000000000?tab=items").await;
    assert_eq!(route.status(), 200);
    assert_security_headers(&route, "SPA route");
    assert_eq!(route.text().await.unwrap(), html);
}

#[tokio::test]
async fn hashed_assets_are_cached_for_a_year_and_missing_ones_are_404() {
    let app = TestApp::spawn().await;
    if api::ui::UI_BUILT {
        let html = page(&app, "/").await.text().await.unwrap();
        let start = html.find("/assets/").expect("an asset");
        let end = start + html[start..].find('"').expect("a quoted path");
        let asset = &html[start..end];
        let response = app.anonymous(Method::GET, asset).send().await.unwrap();
        assert_eq!(response.status(), 200, "{asset}");
        assert_eq!(
            header_of(&response, "cache-control"),
            "public, max-age=31536000, immutable"
        );
        assert!(!header_of(&response, "content-type").starts_with("text/html"));
        let index = app
            .anonymous(Method::GET, "/index.html")
            .send()
            .await
            .unwrap();
        assert_eq!(header_of(&index, "cache-control"), "no-cache");
        let etag = header_of(&index, "etag");
        let again = app
            .anonymous(Method::GET, "/index.html")
            .header(header::IF_NONE_MATCH, etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304);
    }
    // Never the page in place of a missing asset, even for a browser.
    let missing = page(&app, "/assets/index-0000000.js").await;
    assert_eq!(missing.status(), 404);
    assert_security_headers(&missing, "missing asset");
    let not_a_page = app
        .anonymous(Method::GET, "/jobs")
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_a_page.status(), 404, "only HTML requests get the page");
}

#[tokio::test]
async fn api_paths_keep_their_problems_and_every_response_has_the_security_headers() {
    let app = TestApp::spawn().await;
    for path in [
        "/api/unknown",
        "/api/libraries/a/b/c",
        "/docs/nothing-here.js",
    ] {
        let response = page(&app, path).await;
        assert_eq!(response.status(), 404, "{path}");
        if path.starts_with("/api") {
            assert_security_headers(&response, path);
            assert_eq!(
                header_of(&response, "content-type"),
                "application/problem+json"
            );
            let problem: Value = response.json().await.unwrap();
            assert_eq!(problem["code"], "not_found", "{path}");
        }
    }
    let unauthorized = app
        .anonymous(Method::GET, "/api/libraries")
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);
    assert_security_headers(&unauthorized, "a 401");
    let listed = app.get("/api/libraries").send().await.unwrap();
    assert_eq!(listed.status(), 200);
    assert_security_headers(&listed, "/api/libraries");
    let healthz = app.anonymous(Method::GET, "/healthz").send().await.unwrap();
    assert_eq!(healthz.status(), 200);
    assert_security_headers(&healthz, "/healthz");

    // The API docs keep working: their own files, styles inline, scripts still not.
    let docs = page(&app, "/docs/").await;
    assert_eq!(docs.status(), 200);
    let policy = header_of(&docs, "content-security-policy");
    assert!(policy.contains("script-src 'self';"), "{policy}");
    assert!(
        policy.contains("style-src 'self' 'unsafe-inline'"),
        "{policy}"
    );
    assert_eq!(header_of(&docs, "x-frame-options"), "DENY");
}

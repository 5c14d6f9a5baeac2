//! Browser sessions: sign-in with an API key sets an HttpOnly cookie that authenticates every
//! `/api` route; sign-out, expiry and key revocation end it at once; cookie-authenticated
//! writes from another site are refused.

use api::routes::{Paged, libraries::Library, session::Session};
use reqwest::{Method, RequestBuilder, Response, StatusCode, header};
use serde_json::json;
use system_tests::{TestApp, body_as, problem, sample_image};

/// `POST /api/session` with `key`, without credentials (as a browser signs in).
async fn post_session(app: &TestApp, key: &str) -> Response {
    app.anonymous(Method::POST, "/api/session")
        .json(&json!({"api_key": key}))
        .send()
        .await
        .unwrap()
}

/// Signs in with `key`; returns the response's session token and `Set-Cookie` header.
async fn sign_in(app: &TestApp, key: &str) -> (String, String) {
    let response = post_session(app, key).await;
    assert_eq!(response.status(), 200);
    let set_cookie = set_cookie(&response);
    let token = set_cookie
        .split(';')
        .next()
        .and_then(|pair| pair.strip_prefix("ipk_session="))
        .expect("the session cookie")
        .to_string();
    assert!(!token.is_empty());
    (token, set_cookie)
}

fn set_cookie(response: &Response) -> String {
    response
        .headers()
        .get(header::SET_COOKIE)
        .expect("Set-Cookie")
        .to_str()
        .unwrap()
        .to_string()
}

/// A request carrying only the session cookie (no `Sec-Fetch-Site` or `Origin`).
fn cookie_only(app: &TestApp, method: Method, path: &str, token: &str) -> RequestBuilder {
    app.anonymous(method, path)
        .header(header::COOKIE, format!("ipk_session={token}"))
}

/// A request carrying only the session cookie, sent as the dashboard's own pages send it.
fn with_cookie(app: &TestApp, method: Method, path: &str, token: &str) -> RequestBuilder {
    cookie_only(app, method, path, token).header("sec-fetch-site", "same-origin")
}

async fn library_count(app: &TestApp) -> i64 {
    app.query_i64("SELECT count(*) FROM libraries").await
}

#[tokio::test]
async fn signing_in_sets_an_http_only_strict_cookie_that_authenticates_api_calls() {
    let app = TestApp::spawn().await;
    let response = post_session(&app, &app.key).await;
    let cookie = set_cookie(&response);
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/api", "Max-Age=43200"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    assert!(!cookie.contains(&app.key), "the key is not the cookie");
    let session: Session = body_as(response, StatusCode::OK).await;
    assert_eq!(session.tenant_name, "tenant-a");
    let token = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("ipk_session=");

    let current = with_cookie(&app, Method::GET, "/api/session", token)
        .send()
        .await
        .unwrap();
    let current: Session = body_as(current, StatusCode::OK).await;
    assert_eq!(current.tenant_id, session.tenant_id);
    assert_eq!(current.expires_at, session.expires_at);

    let created = with_cookie(&app, Method::POST, "/api/libraries", token)
        .json(&json!({"name": "from the browser"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "a same-origin write works");
    let listed = with_cookie(&app, Method::GET, "/api/libraries", token)
        .send()
        .await
        .unwrap();
    let listed: Paged<Library> = body_as(listed, StatusCode::OK).await;
    assert_eq!(listed.items[0].name, "from the browser");

    let stored = app
        .query_i64(&format!(
            "SELECT count(*) FROM sessions WHERE token_hash = '{}'",
            store::tenants::hash_key(token)
        ))
        .await;
    assert_eq!(stored, 1, "the token is stored as its SHA-256");
    let plain = app
        .query_i64(&format!(
            "SELECT count(*) FROM sessions WHERE token_hash = '{token}' OR id::text = '{token}'"
        ))
        .await;
    assert_eq!(plain, 0, "and never in plain text");
}

#[tokio::test]
async fn a_wrong_key_or_no_session_is_401() {
    let app = TestApp::spawn().await;
    let wrong = post_session(&app, "ipk_not-a-real-key").await;
    assert!(wrong.headers().get(header::SET_COOKIE).is_none());
    let wrong = problem(wrong, StatusCode::UNAUTHORIZED).await;
    assert_eq!(wrong.code, "unauthorized");

    let anonymous = app
        .anonymous(Method::GET, "/api/session")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let made_up = with_cookie(&app, Method::GET, "/api/libraries", "made-up")
        .send()
        .await
        .unwrap();
    assert_eq!(made_up.status(), 401);
    let bearer = app.get("/api/session").send().await.unwrap();
    assert_eq!(bearer.status(), 401, "a key is not a browser session");
}

#[tokio::test]
async fn signing_out_ends_the_session_at_once_and_clears_the_cookie() {
    let app = TestApp::spawn().await;
    let (token, _) = sign_in(&app, &app.key).await;
    let (other, _) = sign_in(&app, &app.key).await;

    let out = with_cookie(&app, Method::DELETE, "/api/session", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    let cleared = set_cookie(&out);
    assert!(cleared.starts_with("ipk_session=;"), "{cleared}");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert!(cleared.contains("Path=/api"), "{cleared}");

    for path in ["/api/session", "/api/libraries"] {
        let after = with_cookie(&app, Method::GET, path, &token)
            .send()
            .await
            .unwrap();
        assert_eq!(after.status(), 401, "{path} after sign-out");
    }
    let still = with_cookie(&app, Method::GET, "/api/libraries", &other)
        .send()
        .await
        .unwrap();
    assert_eq!(
        still.status(),
        200,
        "another session of the same key lives on"
    );

    let again = with_cookie(&app, Method::DELETE, "/api/session", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 204, "signing out twice is harmless");
    let without = app
        .anonymous(Method::DELETE, "/api/session")
        .send()
        .await
        .unwrap();
    assert_eq!(without.status(), 401, "no session to end");
}

#[tokio::test]
async fn an_expired_session_or_one_whose_key_was_revoked_stops_working() {
    let app = TestApp::spawn().await;
    let (expiring, _) = sign_in(&app, &app.key).await;
    let (keyed, _) = sign_in(&app, &app.key).await;
    let works = |token: String| {
        let request = with_cookie(&app, Method::GET, "/api/libraries", &token);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(works(expiring.clone()).await, 200);

    app.query_i64(&format!(
        "WITH e AS (UPDATE sessions SET expires_at = now() - interval '1 second' \
         WHERE token_hash = '{}' RETURNING 1) SELECT count(*) FROM e",
        store::tenants::hash_key(&expiring)
    ))
    .await;
    assert_eq!(works(expiring).await, 401, "expired");
    assert_eq!(works(keyed.clone()).await, 200);

    app.query_i64(
        "WITH r AS (UPDATE api_keys SET revoked_at = now() RETURNING 1) SELECT count(*) FROM r",
    )
    .await;
    assert_eq!(
        works(keyed).await,
        401,
        "the key it was opened with is revoked"
    );
}

#[tokio::test]
async fn a_cross_site_form_post_with_the_cookie_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (token, _) = sign_in(&app, &app.key).await;
    let forged = cookie_only(&app, Method::POST, "/api/libraries", &token)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "cross-site")
        .header(header::ORIGIN, "https://evil.example")
        .body("name=forged")
        .send()
        .await
        .unwrap();
    let forged = problem(forged, StatusCode::FORBIDDEN).await;
    assert_eq!(forged.code, "cross_site_request");
    assert_eq!(library_count(&app).await, 0, "nothing changed");

    // A form can also send multipart (an upload) and needs no body at all for an action.
    let library = app.create_library("mine").await;
    let upload = cookie_only(
        &app,
        Method::POST,
        &format!("/api/libraries/{library}/images"),
        &token,
    )
    .header(header::ORIGIN, "https://evil.example")
    .multipart(reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(sample_image("chelsea.png")).file_name("chelsea.png"),
    ))
    .send()
    .await
    .unwrap();
    assert_eq!(
        upload.status(),
        403,
        "a foreign Origin without Sec-Fetch-Site"
    );
    let library_path = format!("/api/libraries/{library}");
    let deleted = cookie_only(&app, Method::DELETE, &library_path, &token)
        .header("sec-fetch-site", "same-site")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 403, "a sibling subdomain is another site");
    let unproven = cookie_only(&app, Method::DELETE, &library_path, &token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        unproven.status(),
        403,
        "neither header: not provably this site"
    );
    assert_eq!(app.query_i64("SELECT count(*) FROM images").await, 0);
    assert_eq!(library_count(&app).await, 1);

    // The same requests from the dashboard's own pages go through.
    let own_origin = app.address.clone();
    let renamed = cookie_only(&app, Method::PATCH, &library_path, &token)
        .header(header::ORIGIN, own_origin)
        .json(&json!({"name": "renamed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(renamed.status(), 200, "a matching Origin");
    let deleted = with_cookie(&app, Method::DELETE, &library_path, &token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204, "Sec-Fetch-Site: same-origin");
    assert_eq!(library_count(&app).await, 0);

    // A bearer key is no ambient credential: the check does not apply.
    let bearer = app
        .post("/api/libraries")
        .header("sec-fetch-site", "cross-site")
        .json(&json!({"name": "by key"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 201);
}

#[tokio::test]
async fn another_site_cannot_sign_a_browser_in() {
    let app = TestApp::spawn().await;
    let response = app
        .anonymous(Method::POST, "/api/session")
        .header("sec-fetch-site", "cross-site")
        .json(&json!({"api_key": app.key}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(response.headers().get(header::SET_COOKIE).is_none());
    assert_eq!(app.query_i64("SELECT count(*) FROM sessions").await, 0);
}

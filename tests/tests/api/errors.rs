use api::error::Problem;
use reqwest::{Method, StatusCode};
use system_tests::TestApp;

/// The problem `response` is, asserting its status, its code and that it says what went wrong.
async fn problem(response: reqwest::Response, status: u16, code: &str) -> Problem {
    let status = StatusCode::from_u16(status).unwrap();
    let body = system_tests::problem(response, status).await;
    assert_eq!(body.code, code, "{body:?}");
    assert!(!body.detail.is_empty());
    body
}

#[tokio::test]
async fn malformed_json_is_400() {
    let app = TestApp::spawn().await;
    let response = app
        .post("/api/libraries")
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    problem(response, 400, "malformed_json").await;
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415() {
    let app = TestApp::spawn().await;
    let response = app
        .post("/api/libraries")
        .header("content-type", "text/plain")
        .body("name=x")
        .send()
        .await
        .unwrap();
    problem(response, 415, "unsupported_media_type").await;
}

#[tokio::test]
async fn an_oversized_body_is_413() {
    let app = TestApp::spawn_with(|s| s.http.max_json_bytes = 4096).await;
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(10_000));
    let response = app
        .post("/api/libraries")
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    problem(response, 413, "payload_too_large").await;
}

#[tokio::test]
async fn unknown_fields_and_blank_names_are_422_with_paths() {
    let app = TestApp::spawn().await;
    let response = app
        .post("/api/libraries")
        .json(&serde_json::json!({"name": "ok", "colour": "red"}))
        .send()
        .await
        .unwrap();
    let body = problem(response, 422, "validation_failed").await;
    assert!(body.errors[0].message.contains("colour"));
    let response = app
        .post("/api/libraries")
        .json(&serde_json::json!({"name": "   "}))
        .send()
        .await
        .unwrap();
    let body = problem(response, 422, "validation_failed").await;
    assert_eq!(body.errors[0].path, "/name");
}

#[tokio::test]
async fn a_malformed_id_in_the_path_is_400_and_an_unknown_one_404() {
    let app = TestApp::spawn().await;
    problem(
        app.get("/api/jobs/not-a-uuid").send().await.unwrap(),
        400,
        "bad_request",
    )
    .await;
    let unknown = uuid::Uuid::now_v7();
    let body = problem(
        app.get(&format!("/api/jobs/{unknown}"))
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
    assert!(body.detail.contains("job"));
}

#[tokio::test]
async fn an_unknown_route_is_a_404_problem() {
    let app = TestApp::spawn().await;
    problem(
        app.get("/api/nothing-here").send().await.unwrap(),
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn a_database_outage_is_503_not_500() {
    let app = TestApp::spawn_with(|s| {
        s.database.url = secrecy::SecretString::from("postgres://postgres@127.0.0.1:1/nowhere");
        s.database.acquire_timeout_seconds = 1;
        s.database.connect_timeout_seconds = 1;
    })
    .await;
    let response = app.get("/api/libraries").send().await.unwrap();
    problem(response, 503, "service_unavailable").await;
    let ready = app.anonymous(Method::GET, "/readyz").send().await.unwrap();
    assert_eq!(ready.status(), 503);
}

#[tokio::test]
async fn a_known_path_with_an_unsupported_method_is_405_with_allow() {
    let app = TestApp::spawn().await;
    let response = app.put("/api/libraries").send().await.unwrap();
    assert_eq!(response.status(), 405);
    let allow = response.headers()["allow"].to_str().unwrap().to_string();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    problem(response, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn a_json_array_where_an_object_belongs_is_422() {
    let app = TestApp::spawn().await;
    let library = app.create_library("x").await;
    let response = app
        .patch(&format!("/api/libraries/{library}"))
        .header("content-type", "application/json")
        .body("[null, null]")
        .send()
        .await
        .unwrap();
    problem(response, 422, "validation_failed").await;
}

#[tokio::test]
async fn a_literal_route_under_the_wrong_method_is_405_not_a_bad_id() {
    let app = TestApp::spawn().await;
    let response = app.get("/api/jobs/submit").send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
}

#[tokio::test]
async fn a_nul_character_in_any_text_field_is_422_with_its_path() {
    let app = TestApp::spawn().await;
    let body =
        r#"{"name": "p", "stages": [{"name": "a", "prompt": "ok", "system_prompt": "bad\u0000"}]}"#;
    let response = app
        .post("/api/pipelines")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let problem = problem(response, 422, "validation_failed").await;
    assert_eq!(problem.errors[0].path, "/stages/0/system_prompt");
}

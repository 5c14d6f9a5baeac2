use api::routes::jobs::Job;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use system_tests::{TestApp, body_as, one_stage, problem};

#[tokio::test]
async fn requests_without_a_key_or_with_a_wrong_key_get_401_problems() {
    let app = TestApp::spawn().await;
    let missing = app
        .anonymous(Method::GET, "/api/libraries")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    let missing = problem(missing, StatusCode::UNAUTHORIZED).await;
    assert_eq!(missing.code, "unauthorized");

    let wrong = app
        .request_with_key("ipk_not-a-real-key", Method::GET, "/api/libraries")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
}

#[tokio::test]
async fn only_a_hash_of_each_key_is_stored() {
    use sea_orm::{ConnectionTrait, Statement};
    let app = TestApp::spawn().await;
    let rows = app
        .db
        .query_all_raw(Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT key_hash, prefix FROM api_keys",
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let hash: String = rows[0].try_get("", "key_hash").unwrap();
    assert_ne!(hash, app.key);
    assert!(!hash.contains(&app.key[4..]));
    assert_eq!(hash, store::tenants::hash_key(&app.key));
}

#[tokio::test]
async fn another_tenants_resources_are_not_found_and_never_listed() {
    let app = TestApp::spawn().await;
    let library = app.create_library("private").await;
    let images = app.upload(library, &["chelsea.png"]).await;
    let pipeline = app.create_pipeline("mine", one_stage()).await;
    let submission = json!({"pipeline_id": pipeline, "library_id": library});
    let job: Job = body_as(app.submit(&submission).await, StatusCode::ACCEPTED).await;
    let job_id = job.id;

    let other = app.other_tenant_key("tenant-b").await;
    let as_other = |method: Method, path: &str| app.request_with_key(&other, method, path);
    for path in [
        format!("/api/libraries/{library}"),
        format!("/api/libraries/{library}/images"),
        format!("/api/libraries/{library}/images/{}", images[0]),
        format!("/api/libraries/{library}/images/{}/content", images[0]),
        format!("/api/pipelines/{pipeline}"),
        format!("/api/jobs/{job_id}"),
    ] {
        let response = as_other(Method::GET, &path).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        let body = response.text().await.unwrap();
        assert!(
            !body.contains("private") && !body.contains("chelsea"),
            "{path} leaked: {body}"
        );
    }
    for path in ["/api/libraries", "/api/pipelines", "/api/jobs/history"] {
        let response = as_other(Method::GET, path).send().await.unwrap();
        let body: Value = body_as(response, StatusCode::OK).await;
        assert_eq!(body["total"], 0, "{path}: {body}");
    }
    // Nor can the other tenant change or submit against them.
    let rename = as_other(Method::PATCH, &format!("/api/libraries/{library}"))
        .json(&json!({"name": "stolen"}))
        .send()
        .await
        .unwrap();
    assert_eq!(rename.status(), 404);
    let submit = as_other(Method::POST, "/api/jobs/submit")
        .json(&submission)
        .send()
        .await
        .unwrap();
    assert_eq!(submit.status(), 422);
    let cancel = as_other(Method::POST, &format!("/api/jobs/{job_id}/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), 404);
}

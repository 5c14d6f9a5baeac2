use serde_json::{Value, json};
use system_tests::TestApp;

#[tokio::test]
async fn requests_without_a_key_or_with_a_wrong_key_get_401_problems() {
    let app = TestApp::spawn().await;
    let missing = app
        .client
        .get(app.url("/api/libraries"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 401);
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["code"], "unauthorized");

    let wrong = app
        .client
        .get(app.url("/api/libraries"))
        .bearer_auth("ipk_not-a-real-key")
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
    let pipeline = app.create_pipeline("mine", system_tests::one_stage()).await;
    let job = app
        .post("/api/jobs/submit")
        .json(&json!({"pipeline_id": pipeline, "library_id": library}))
        .send()
        .await
        .unwrap();
    assert_eq!(job.status(), 202);
    let job_id = system_tests::id_of(&job.json::<Value>().await.unwrap());

    let other = app.other_tenant_key("tenant-b").await;
    let as_other = |path: String| app.client.get(app.url(&path)).bearer_auth(&other);
    for path in [
        format!("/api/libraries/{library}"),
        format!("/api/libraries/{library}/images"),
        format!("/api/libraries/{library}/images/{}", images[0]),
        format!("/api/libraries/{library}/images/{}/content", images[0]),
        format!("/api/pipelines/{pipeline}"),
        format!("/api/jobs/{job_id}"),
    ] {
        let response = as_other(path.clone()).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        let body = response.text().await.unwrap();
        assert!(
            !body.contains("private") && !body.contains("chelsea"),
            "{path} leaked: {body}"
        );
    }
    for path in ["/api/libraries", "/api/pipelines", "/api/jobs/history"] {
        let body: Value = as_other(path.to_string())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["total"], 0, "{path}: {body}");
    }
    // Nor can the other tenant change or submit against them.
    let rename = app
        .client
        .patch(app.url(&format!("/api/libraries/{library}")))
        .bearer_auth(&other)
        .json(&json!({"name": "stolen"}))
        .send()
        .await
        .unwrap();
    assert_eq!(rename.status(), 404);
    let submit = app
        .client
        .post(app.url("/api/jobs/submit"))
        .bearer_auth(&other)
        .json(&json!({"pipeline_id": pipeline, "library_id": library}))
        .send()
        .await
        .unwrap();
    assert_eq!(submit.status(), 422);
    let cancel = app
        .client
        .post(app.url(&format!("/api/jobs/{job_id}/cancel")))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), 404);
}

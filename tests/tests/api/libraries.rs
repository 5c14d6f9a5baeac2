use serde_json::{Value, json};
use system_tests::TestApp;

#[tokio::test]
async fn a_library_can_be_created_listed_renamed_and_deleted() {
    let app = TestApp::spawn().await;
    let created = app
        .post("/api/libraries")
        .json(&json!({"name": "Field photos", "description": "spring"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let location = created.headers()["location"].to_str().unwrap().to_string();
    let library: Value = created.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/libraries/{}", library["id"].as_str().unwrap())
    );
    assert_eq!(library["image_count"], 0);

    let fetched: Value = app.get_json(&location).await;
    assert_eq!(fetched["name"], "Field photos");

    let renamed = app
        .patch(&location)
        .json(&json!({"name": "Field photos 2026"}))
        .send()
        .await
        .unwrap();
    assert_eq!(renamed.status(), 200);
    let renamed: Value = renamed.json().await.unwrap();
    assert_eq!(renamed["name"], "Field photos 2026");
    assert_eq!(renamed["description"], "spring");

    let deleted = app.delete(&location).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(app.get(&location).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn libraries_are_paginated_newest_first_with_a_total() {
    let app = TestApp::spawn().await;
    for i in 0..5 {
        app.create_library(&format!("lib-{i}")).await;
    }
    let page: Value = app.get_json("/api/libraries?limit=2&offset=1").await;
    assert_eq!(page["total"], 5);
    assert_eq!(page["limit"], 2);
    assert_eq!(page["offset"], 1);
    let names: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["lib-3", "lib-2"]);
}

#[tokio::test]
async fn a_duplicate_library_name_is_a_conflict() {
    let app = TestApp::spawn().await;
    app.create_library("same").await;
    let again = app
        .post("/api/libraries")
        .json(&json!({"name": "same"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["code"], "conflict");
}

#[tokio::test]
async fn a_library_used_by_a_queued_job_cannot_be_deleted_until_the_job_is_cancelled() {
    let app = TestApp::spawn().await;
    let library = app.create_library("busy").await;
    app.upload(library, &["coffee.png"]).await;
    let pipeline = app.create_pipeline("p", system_tests::one_stage()).await;
    let job: Value = app
        .post("/api/jobs/submit")
        .json(&json!({"pipeline_id": pipeline, "library_id": library}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refused = app
        .delete(&format!("/api/libraries/{library}"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 409);
    assert_eq!(
        app.get(&format!("/api/libraries/{library}"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let cancel = app
        .post(&format!("/api/jobs/{}/cancel", job["id"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), 200);
    assert_eq!(
        app.delete(&format!("/api/libraries/{library}"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
}

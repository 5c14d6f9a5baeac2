use api::routes::{Paged, jobs::Job, libraries::Library};
use reqwest::StatusCode;
use serde_json::json;
use system_tests::{TestApp, body_as, one_stage, problem};

#[tokio::test]
async fn a_library_can_be_created_listed_renamed_and_deleted() {
    let app = TestApp::spawn().await;
    let created = app
        .post("/api/libraries")
        .json(&json!({"name": "Field photos", "description": "spring"}))
        .send()
        .await
        .unwrap();
    let location = created.headers()["location"].to_str().unwrap().to_string();
    let library: Library = body_as(created, StatusCode::CREATED).await;
    assert_eq!(location, format!("/api/libraries/{}", library.id));
    assert_eq!(library.image_count, 0);

    let fetched: Library = app.get_as(&location, StatusCode::OK).await;
    assert_eq!(fetched.name, "Field photos");

    let renamed = app
        .patch(&location)
        .json(&json!({"name": "Field photos 2026"}))
        .send()
        .await
        .unwrap();
    let renamed: Library = body_as(renamed, StatusCode::OK).await;
    assert_eq!(renamed.name, "Field photos 2026");
    assert_eq!(renamed.description.as_deref(), Some("spring"));

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
    let page: Paged<Library> = app
        .get_as("/api/libraries?limit=2&offset=1", StatusCode::OK)
        .await;
    assert_eq!(page.total, 5);
    assert_eq!(page.limit, 2);
    assert_eq!(page.offset, 1);
    let names: Vec<&str> = page.items.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["lib-3", "lib-2"]);
}

#[tokio::test]
async fn a_duplicate_library_name_is_a_conflict() {
    let app = TestApp::spawn().await;
    app.create_library("same").await;
    let again = app
        .post_problem(
            "/api/libraries",
            &json!({"name": "same"}),
            StatusCode::CONFLICT,
        )
        .await;
    assert_eq!(again.code, "conflict");
}

#[tokio::test]
async fn a_library_used_by_a_queued_job_cannot_be_deleted_until_the_job_is_cancelled() {
    let app = TestApp::spawn().await;
    let library = app.create_library("busy").await;
    app.upload(library, &["coffee.png"]).await;
    let pipeline = app.create_pipeline("p", one_stage()).await;
    let job: Job = app
        .post_as(
            "/api/jobs/submit",
            &json!({"pipeline_id": pipeline, "library_id": library}),
            StatusCode::ACCEPTED,
        )
        .await;
    let refused = app
        .delete(&format!("/api/libraries/{library}"))
        .send()
        .await
        .unwrap();
    problem(refused, StatusCode::CONFLICT).await;
    assert_eq!(
        app.get(&format!("/api/libraries/{library}"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    app.cancel_job(job.id).await;
    assert_eq!(
        app.delete(&format!("/api/libraries/{library}"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
}

use api::routes::{Paged, pipelines::Pipeline};
use domain::{filter::Filter, pipeline::ImageDetail};
use reqwest::StatusCode;
use serde_json::{Value, json};
use system_tests::{TestApp, body_as, problem, two_stages};

#[tokio::test]
async fn a_pipeline_round_trips_with_defaults_filled_in_and_updates_bump_its_version() {
    let app = TestApp::spawn().await;
    let id = app.create_pipeline("survey", two_stages()).await;
    let pipeline: Pipeline = app
        .get_as(&format!("/api/pipelines/{id}"), StatusCode::OK)
        .await;
    assert_eq!(pipeline.version, 1);
    let stages = &pipeline.stages;
    assert_eq!(stages.len(), 2);
    assert_eq!(stages[0].model, "command-a-vision-07-2025");
    assert!(
        matches!(&stages[0].filter, Some(Filter::Field { pointer, .. }) if pointer == "/animal"),
        "{:?}",
        stages[0].filter
    );
    assert_eq!(stages[1].image_detail, ImageDetail::High);
    assert_eq!(stages[1].max_tokens, Some(300));

    let updated = app
        .put(&format!("/api/pipelines/{id}"))
        .json(
            &json!({"name": "survey v2", "stages": [{"name": "only", "prompt": "What is this?"}]}),
        )
        .send()
        .await
        .unwrap();
    let updated: Pipeline = body_as(updated, StatusCode::OK).await;
    assert_eq!(updated.version, 2);
    assert_eq!(updated.stages.len(), 1);

    let listed: Paged<Pipeline> = app.get_as("/api/pipelines", StatusCode::OK).await;
    assert_eq!(listed.total, 1);
    assert_eq!(
        app.delete(&format!("/api/pipelines/{id}"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        app.get(&format!("/api/pipelines/{id}"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn invalid_stages_are_rejected_with_the_path_of_each_bad_field() {
    let app = TestApp::spawn().await;
    let body = json!({
        "name": "broken",
        "stages": [
            {"name": "a", "prompt": "  "},
            {"name": "b", "prompt": "ok", "temperature": 3.5,
             "json_schema": {"type": "array"},
             "filter": {"type": "regex", "pattern": "(unclosed"}}
        ]
    });
    let problem = app
        .post_problem("/api/pipelines", &body, StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    assert_eq!(problem.code, "validation_failed");
    let paths: Vec<&str> = problem.errors.iter().map(|e| e.path.as_str()).collect();
    for expected in [
        "/stages/0/prompt",
        "/stages/1/temperature",
        "/stages/1/json_schema",
    ] {
        assert!(
            paths.iter().any(|p| p.starts_with(expected)),
            "{expected} missing from {paths:?}"
        );
    }
    assert!(
        paths.iter().any(|p| p.starts_with("/stages/1/filter")),
        "{paths:?}"
    );
}

#[tokio::test]
async fn a_pipeline_needs_one_to_ten_stages() {
    let app = TestApp::spawn().await;
    let none = app
        .post("/api/pipelines")
        .json(&json!({"name": "empty", "stages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 422);
    let eleven: Vec<Value> = (0..11)
        .map(|i| json!({"name": format!("s{i}"), "prompt": "p"}))
        .collect();
    let too_many = app
        .post("/api/pipelines")
        .json(&json!({"name": "long", "stages": eleven}))
        .send()
        .await
        .unwrap();
    let too_many = problem(too_many, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(too_many.errors[0].path, "/stages");
}

#[tokio::test]
async fn a_field_of_the_wrong_type_is_a_422_naming_the_field() {
    let app = TestApp::spawn().await;
    let problem = app
        .post_problem(
            "/api/pipelines",
            &json!({"name": "typed", "stages": [{"name": "a", "prompt": "p", "max_tokens": "lots"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(problem.errors[0].path, "/stages/0/max_tokens");
}

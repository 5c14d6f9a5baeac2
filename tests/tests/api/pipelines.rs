use serde_json::{Value, json};
use system_tests::{TestApp, two_stages};

#[tokio::test]
async fn a_pipeline_round_trips_with_defaults_filled_in_and_updates_bump_its_version() {
    let app = TestApp::spawn().await;
    let id = app.create_pipeline("survey", two_stages()).await;
    let pipeline: Value = app.get_json(&format!("/api/pipelines/{id}")).await;
    assert_eq!(pipeline["version"], 1);
    let stages = pipeline["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 2);
    assert_eq!(stages[0]["model"], "command-a-vision-07-2025");
    assert_eq!(stages[0]["filter"]["pointer"], "/animal");
    assert_eq!(stages[1]["image_detail"], "high");
    assert_eq!(stages[1]["max_tokens"], 300);

    let updated = app
        .put(&format!("/api/pipelines/{id}"))
        .json(
            &json!({"name": "survey v2", "stages": [{"name": "only", "prompt": "What is this?"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), 200);
    let updated: Value = updated.json().await.unwrap();
    assert_eq!(updated["version"], 2);
    assert_eq!(updated["stages"].as_array().unwrap().len(), 1);

    let listed: Value = app.get_json("/api/pipelines").await;
    assert_eq!(listed["total"], 1);
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
    let response = app.post("/api/pipelines").json(&body).send().await.unwrap();
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "validation_failed");
    let paths: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
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
    assert_eq!(too_many.status(), 422);
    assert_eq!(
        too_many.json::<Value>().await.unwrap()["errors"][0]["path"],
        "/stages"
    );
}

#[tokio::test]
async fn a_field_of_the_wrong_type_is_a_422_naming_the_field() {
    let app = TestApp::spawn().await;
    let response = app
        .post("/api/pipelines")
        .json(&json!({"name": "typed", "stages": [{"name": "a", "prompt": "p", "max_tokens": "lots"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["errors"][0]["path"], "/stages/0/max_tokens");
}

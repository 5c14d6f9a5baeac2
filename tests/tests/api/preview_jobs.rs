//! `POST /api/jobs/preview`: one stage tried on a few images through the normal workers,
//! hidden from the job history by default.

use std::time::Duration;

use serde_json::{Value, json};
use system_tests::{RunningWorker, TestApp, distinct_images, one_stage, start_standin, two_stages};

const RUN_TIMEOUT: Duration = Duration::from_secs(90);

fn history_ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| job["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_runs_its_stage_through_a_worker_and_stays_out_of_the_default_history() {
    let mut app = TestApp::spawn().await;
    let _standin = start_standin(&mut app.settings);
    let library = app.create_library("photos").await;
    let images = app.upload_bytes(library, &distinct_images(3)).await;
    let pipeline = app.create_pipeline("saved", one_stage()).await;
    let normal = app.submit_job(pipeline, library).await;
    // The first stage of the two-stage pipeline, as an editor would try it.
    let stage = two_stages()[0].clone();

    let preview = app
        .post_expecting(
            "/api/jobs/preview",
            json!({ "library_id": library, "image_ids": [images[0], images[2]], "stage": stage }),
            202,
        )
        .await;
    assert_eq!(preview["preview"], true);
    assert_eq!(preview["priority"], "high");
    assert_eq!(preview["pipeline_version"], 0);
    assert_eq!(preview["pipeline_id"], uuid::Uuid::nil().to_string());
    assert_eq!(preview["counts"]["total"], 2);
    assert_eq!(preview["stages"].as_array().unwrap().len(), 1);
    assert_eq!(preview["stages"][0]["name"], stage["name"]);
    let job = preview["id"].as_str().unwrap().to_string();

    let worker = RunningWorker::start(&app.settings).await;
    let finished = app.wait_for_job(job.parse().unwrap(), RUN_TIMEOUT).await;
    worker.stop().await;
    assert_eq!(finished["status"], "completed", "{finished}");
    assert_eq!(finished["preview"], true);
    let stage_counts = &finished["stages"][0];
    assert_eq!(stage_counts["processed"], 2);

    // Each image's answer, with the stage's prompt and the filter's verdict.
    let items = app.get_json(&format!("/api/jobs/{job}/items")).await;
    assert_eq!(items["total"], 2);
    for item in items["items"].as_array().unwrap() {
        let detail = app
            .get_json(&format!(
                "/api/jobs/{job}/items/{}",
                item["item_id"].as_str().unwrap()
            ))
            .await;
        let answered = &detail["stages"][0];
        assert_eq!(answered["prompt"], stage["prompt"]);
        assert!(answered["answer"]["output_json"]["animal"].is_boolean());
        assert!(
            ["passed", "filtered_out"].contains(&answered["answer"]["verdict"].as_str().unwrap())
        );
    }

    let default = app.get_json("/api/jobs/history").await;
    assert_eq!(history_ids(&default), vec![normal.to_string()]);
    assert_eq!(default["total"], 1);
    assert_eq!(default["items"][0]["preview"], false);
    let all = app
        .get_json("/api/jobs/history?include_previews=true")
        .await;
    assert_eq!(history_ids(&all), vec![job.clone(), normal.to_string()]);
    assert_eq!(all["items"][0]["preview"], true);
}

#[tokio::test]
async fn a_preview_is_validated_like_a_pipeline_stage_with_pointers_under_stage() {
    let app = TestApp::spawn().await;
    let library = app.create_library("photos").await;
    let images = app.upload_bytes(library, &distinct_images(4)).await;
    let stage = json!({ "name": "describe", "prompt": "Describe it." });
    for (body, path) in [
        (
            json!({ "library_id": library, "image_ids": [images[0]],
                    "stage": { "name": "describe", "prompt": "   " } }),
            "/stage/prompt",
        ),
        (
            json!({ "library_id": library, "image_ids": [images[0]],
                    "stage": { "name": "d", "prompt": "p", "temperature": 3.0 } }),
            "/stage/temperature",
        ),
        (
            json!({ "library_id": library, "image_ids": images, "stage": stage }),
            "/image_ids",
        ),
        (
            json!({ "library_id": library, "image_ids": [], "stage": stage }),
            "/image_ids",
        ),
        (
            json!({ "library_id": library, "image_ids": [images[1], images[1]], "stage": stage }),
            "/image_ids/1",
        ),
        (
            json!({ "library_id": library, "image_ids": [uuid::Uuid::now_v7()], "stage": stage }),
            "/image_ids",
        ),
        (
            json!({ "library_id": uuid::Uuid::now_v7(), "image_ids": [images[0]], "stage": stage }),
            "/library_id",
        ),
    ] {
        let problem = app
            .post_expecting("/api/jobs/preview", body.clone(), 422)
            .await;
        assert_eq!(problem["code"], "validation_failed", "{body}");
        assert_eq!(problem["errors"][0]["path"], path, "{problem}");
    }
    assert_eq!(
        app.query_i64("SELECT count(*) FROM jobs").await,
        0,
        "nothing was stored"
    );
}

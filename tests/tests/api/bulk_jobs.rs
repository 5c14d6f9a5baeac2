//! `POST /api/jobs/bulk/cancel` and `/api/jobs/bulk/retry`: many jobs at once, each as its
//! single-job endpoint would, with an outcome per job.

use std::time::Duration;

use cohere_standin::{RuntimeConfig, sha256_hex};
use serde_json::{Value, json};
use system_tests::{RunningWorker, TestApp, distinct_images, one_stage, start_standin};
use uuid::Uuid;

const RUN_TIMEOUT: Duration = Duration::from_secs(90);

fn outcomes(body: &Value) -> Vec<(String, String)> {
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["job_id"].as_str().unwrap().to_string(),
                r["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_cancel_and_retry_answer_each_job_like_the_single_endpoints() {
    let mut app = TestApp::spawn().await;
    let standin = start_standin(&mut app.settings);
    let images = distinct_images(2);
    standin
        .standin
        .set_config(RuntimeConfig {
            reject_images: [sha256_hex(&images[0].1)].into(),
            ..RuntimeConfig::default()
        })
        .unwrap();
    let library = app.create_library("photos").await;
    app.upload_bytes(library, &images).await;
    let pipeline = app.create_pipeline("describe", one_stage()).await;

    // A job that ends with one failed item.
    let with_failure = app.submit_job(pipeline, library).await;
    let worker = RunningWorker::start(&app.settings).await;
    let finished = app.wait_for_job(with_failure, RUN_TIMEOUT).await;
    worker.stop().await;
    assert_eq!(finished["counts"]["failed"], 1, "{finished}");
    app.drain_stage_queue(100).await;

    let queued = app.submit_job(pipeline, library).await;
    let also_queued = app.submit_job(pipeline, library).await;
    let unknown = Uuid::now_v7();
    let other_key = app.other_tenant_key("tenant-b").await;
    let key_a = std::mem::replace(&mut app.key, other_key.clone());
    let library_b = app.create_library("theirs").await;
    app.upload_bytes(library_b, &distinct_images(1)).await;
    let pipeline_b = app.create_pipeline("theirs", one_stage()).await;
    let foreign = app.submit_job(pipeline_b, library_b).await;
    app.key = key_a;

    let cancelled = app
        .post_expecting(
            "/api/jobs/bulk/cancel",
            json!({ "job_ids": [queued, with_failure, unknown, foreign, also_queued] }),
            200,
        )
        .await;
    let expected: Vec<(String, String)> = [
        (queued, "done"),
        (with_failure, "conflict"),
        (unknown, "not_found"),
        (foreign, "not_found"),
        (also_queued, "done"),
    ]
    .iter()
    .map(|(id, outcome)| (id.to_string(), outcome.to_string()))
    .collect();
    assert_eq!(outcomes(&cancelled), expected);
    assert!(
        cancelled["results"][1]["detail"]
            .as_str()
            .unwrap()
            .contains("finished"),
        "{cancelled}"
    );
    for job in [queued, also_queued] {
        assert_eq!(
            app.get_json(&format!("/api/jobs/{job}")).await["status"],
            "cancelled"
        );
    }
    let foreign_status = app
        .client
        .get(app.url(&format!("/api/jobs/{foreign}")))
        .bearer_auth(&other_key)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(
        foreign_status["status"], "queued",
        "another tenant's job is untouched"
    );

    // What the submissions queued; the retry's message comes after.
    app.drain_stage_queue(100).await;
    let retried = app
        .post_expecting(
            "/api/jobs/bulk/retry",
            json!({ "job_ids": [with_failure, queued, unknown] }),
            200,
        )
        .await;
    assert_eq!(
        outcomes(&retried),
        vec![
            (with_failure.to_string(), "done".to_string()),
            (queued.to_string(), "conflict".to_string()),
            (unknown.to_string(), "not_found".to_string()),
        ]
    );
    let job = app.get_json(&format!("/api/jobs/{with_failure}")).await;
    assert_eq!(job["status"], "running", "{job}");
    assert_eq!(job["counts"]["failed"], 0);
    assert_eq!(job["counts"]["pending"], 1);
    let messages = app.drain_stage_queue(100).await;
    assert_eq!(
        messages.len(),
        1,
        "the failed item's stage message was published"
    );
    assert_eq!(messages[0].0["job_id"], with_failure.to_string());
}

#[tokio::test]
async fn bad_bulk_bodies_are_422_with_pointers() {
    let app = TestApp::spawn().await;
    let id = Uuid::now_v7();
    let many: Vec<Uuid> = (0..101).map(|_| Uuid::now_v7()).collect();
    for (body, path) in [
        (json!({ "job_ids": [] }), "/job_ids"),
        (json!({ "job_ids": many }), "/job_ids"),
        (json!({ "job_ids": [id, Uuid::now_v7(), id] }), "/job_ids/2"),
    ] {
        for action in ["cancel", "retry"] {
            let problem = app
                .post_expecting(&format!("/api/jobs/bulk/{action}"), body.clone(), 422)
                .await;
            assert_eq!(problem["code"], "validation_failed");
            assert_eq!(problem["errors"][0]["path"], path, "{problem}");
        }
    }
    let problem = app
        .post_expecting("/api/jobs/bulk/cancel", json!({ "job_ids": ["nope"] }), 422)
        .await;
    assert_eq!(problem["code"], "validation_failed");
}

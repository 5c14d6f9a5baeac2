//! An estimate checked against the job it estimated, run end to end through the scheduler, a
//! worker and the Cohere stand-in.

use api::routes::jobs::{Job, JobEstimate};
use domain::job::JobStatus;
use reqwest::StatusCode;
use serde_json::json;
use system_tests::{RunningWorker, SAMPLE_IMAGES, TestApp, start_standin};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_is_billed_within_a_fifth_of_its_estimated_input_tokens_and_its_eta_ends_with_it() {
    let mut app = TestApp::spawn().await;
    let _standin = start_standin(&mut app.settings);
    let library = app.create_library("samples").await;
    app.upload(library, &SAMPLE_IMAGES).await;
    // No filter: every image goes through every stage, as the estimate's input tokens assume.
    let stages = json!([
        {"name": "look", "system_prompt": "You are terse.", "prompt": "What is in this image?", "max_tokens": 40},
        {"name": "read", "prompt": "Read any text in the image.", "image_detail": "high", "max_tokens": 40}
    ]);
    let pipeline = app.create_pipeline("two looks", stages).await;
    let body = json!({"pipeline_id": pipeline, "library_id": library});
    let estimate: JobEstimate = app
        .post_as("/api/jobs/estimate", &body, StatusCode::OK)
        .await;
    assert_eq!(estimate.max_calls, 24);
    assert_eq!(estimate.input_tokens.low, estimate.input_tokens.high);

    let job: Job = app
        .post_as("/api/jobs/submit", &body, StatusCode::ACCEPTED)
        .await;
    assert!(job.eta_seconds.is_some(), "{job:?}");
    let worker = RunningWorker::start(&app.settings).await;
    let finished = app.wait_for_job(job.id).await;
    worker.stop().await;

    assert_eq!(finished.status, JobStatus::Completed, "{finished:?}");
    assert_eq!(finished.eta_seconds, None, "a finished job has no ETA");
    let billed = finished.usage.billed_input_tokens as f64;
    let ratio = estimate.input_tokens.low as f64 / billed;
    println!(
        "estimated {} input tokens, billed {billed} ({:+.2}%)",
        estimate.input_tokens.low,
        (ratio - 1.0) * 100.0
    );
    assert!(
        (0.8..=1.2).contains(&ratio),
        "estimated {} input tokens, billed {billed}",
        estimate.input_tokens.low
    );
    // Output is assumed at each stage's max_tokens, which no answer exceeds: the job cost no
    // more than the high end.
    assert!(finished.usage.cost_usd > 0.0);
    assert!(
        finished.usage.cost_usd <= estimate.cost_usd.high + 1e-9,
        "cost {} over the estimate {:?}",
        finished.usage.cost_usd,
        estimate.cost_usd
    );
}

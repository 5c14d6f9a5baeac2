//! `POST /api/jobs/preview`: one stage tried on a few images through the normal workers,
//! hidden from the job history by default.

use api::routes::{
    Paged,
    items::{JobItem, JobItemDetail},
    jobs::{Job, JobSummary},
};
use domain::job::{JobStatus, Priority, Verdict};
use reqwest::StatusCode;
use serde_json::json;
use system_tests::{TestApp, distinct_images, one_stage, start_standin, two_stages};
use uuid::Uuid;

fn history_ids(page: &Paged<JobSummary>) -> Vec<Uuid> {
    page.items.iter().map(|job| job.id).collect()
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

    let preview: Job = app
        .post_as(
            "/api/jobs/preview",
            &json!({ "library_id": library, "image_ids": [images[0], images[2]], "stage": stage }),
            StatusCode::ACCEPTED,
        )
        .await;
    assert!(preview.preview);
    assert_eq!(preview.priority, Priority::High);
    assert_eq!(preview.pipeline_version, 0);
    assert_eq!(preview.pipeline_id, Uuid::nil());
    assert_eq!(preview.counts.total, 2);
    assert_eq!(preview.stages.len(), 1);
    assert_eq!(stage["name"], preview.stages[0].name.as_str());
    let job = preview.id;

    let finished = app.run_to_end(job).await;
    assert_eq!(finished.status, JobStatus::Completed, "{finished:?}");
    assert!(finished.preview);
    assert_eq!(finished.stages[0].processed, 2);

    // Each image's answer, with the stage's prompt and the filter's verdict.
    let items: Paged<JobItem> = app
        .get_as(&format!("/api/jobs/{job}/items"), StatusCode::OK)
        .await;
    assert_eq!(items.total, 2);
    for item in &items.items {
        let detail: JobItemDetail = app
            .get_as(
                &format!("/api/jobs/{job}/items/{}", item.item_id),
                StatusCode::OK,
            )
            .await;
        let answered = &detail.stages[0];
        assert_eq!(stage["prompt"], answered.prompt.as_str());
        let answer = answered.answer.as_ref().unwrap();
        assert!(answer.output_json.as_ref().unwrap()["animal"].is_boolean());
        assert!([Verdict::Passed, Verdict::FilteredOut].contains(&answer.verdict));
    }

    let default = app.history("").await;
    assert_eq!(history_ids(&default), vec![normal]);
    assert_eq!(default.total, 1);
    assert!(!default.items[0].preview);
    let all = app.history("?include_previews=true").await;
    assert_eq!(history_ids(&all), vec![job, normal]);
    assert!(all.items[0].preview);
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
            json!({ "library_id": library, "image_ids": [Uuid::now_v7()], "stage": stage }),
            "/image_ids",
        ),
        (
            json!({ "library_id": Uuid::now_v7(), "image_ids": [images[0]], "stage": stage }),
            "/library_id",
        ),
    ] {
        let problem = app
            .post_problem("/api/jobs/preview", &body, StatusCode::UNPROCESSABLE_ENTITY)
            .await;
        assert_eq!(problem.code, "validation_failed", "{body}");
        assert_eq!(problem.errors[0].path, path, "{problem:?}");
    }
    assert_eq!(
        app.query_i64("SELECT count(*) FROM jobs").await,
        0,
        "nothing was stored"
    );
}

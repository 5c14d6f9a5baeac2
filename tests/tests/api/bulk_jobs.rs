//! `POST /api/jobs/bulk/cancel` and `/api/jobs/bulk/retry`: many jobs at once, each as its
//! single-job endpoint would, with an outcome per job.

use api::routes::{
    bulk::{BulkOutcome, BulkResults},
    jobs::Job,
};
use domain::job::JobStatus;
use reqwest::{Method, StatusCode};
use serde_json::json;
use system_tests::{TestApp, app_rejecting_one, body_as, distinct_images, one_stage};
use uuid::Uuid;

fn outcomes(body: &BulkResults) -> Vec<(Uuid, BulkOutcome)> {
    body.results.iter().map(|r| (r.job_id, r.outcome)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_cancel_and_retry_answer_each_job_like_the_single_endpoints() {
    let (mut app, _standin, images) = app_rejecting_one(2, 0).await;
    let library = app.create_library("photos").await;
    app.upload_bytes(library, &images).await;
    let pipeline = app.create_pipeline("describe", one_stage()).await;

    // A job that ends with one failed item.
    let with_failure = app.submit_job(pipeline, library).await;
    let finished = app.run_to_end(with_failure).await;
    assert_eq!(finished.counts.failed, 1, "{finished:?}");
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

    let cancelled: BulkResults = app
        .post_as(
            "/api/jobs/bulk/cancel",
            &json!({ "job_ids": [queued, with_failure, unknown, foreign, also_queued] }),
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        outcomes(&cancelled),
        [
            (queued, BulkOutcome::Done),
            (with_failure, BulkOutcome::Conflict),
            (unknown, BulkOutcome::NotFound),
            (foreign, BulkOutcome::NotFound),
            (also_queued, BulkOutcome::Done),
        ]
    );
    assert!(
        cancelled.results[1]
            .detail
            .as_deref()
            .unwrap()
            .contains("finished"),
        "{cancelled:?}"
    );
    for job in [queued, also_queued] {
        assert_eq!(app.job(job).await.status, JobStatus::Cancelled);
    }
    let foreign_job = app
        .request_with_key(&other_key, Method::GET, &format!("/api/jobs/{foreign}"))
        .send()
        .await
        .unwrap();
    let foreign_job: Job = body_as(foreign_job, StatusCode::OK).await;
    assert_eq!(
        foreign_job.status,
        JobStatus::Queued,
        "another tenant's job is untouched"
    );

    // What the submissions queued; the retry's message comes after.
    app.drain_stage_queue(100).await;
    let retried: BulkResults = app
        .post_as(
            "/api/jobs/bulk/retry",
            &json!({ "job_ids": [with_failure, queued, unknown] }),
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        outcomes(&retried),
        [
            (with_failure, BulkOutcome::Done),
            (queued, BulkOutcome::Conflict),
            (unknown, BulkOutcome::NotFound),
        ]
    );
    let job = app.job(with_failure).await;
    assert_eq!(job.status, JobStatus::Running, "{job:?}");
    assert_eq!(job.counts.failed, 0);
    assert_eq!(job.counts.pending, 1);
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
                .post_problem(
                    &format!("/api/jobs/bulk/{action}"),
                    &body,
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await;
            assert_eq!(problem.code, "validation_failed");
            assert_eq!(problem.errors[0].path, path, "{problem:?}");
        }
    }
    let problem = app
        .post_problem(
            "/api/jobs/bulk/cancel",
            &json!({ "job_ids": ["nope"] }),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(problem.code, "validation_failed");
}

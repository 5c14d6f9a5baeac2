//! Retrying a job's failed items (`POST /api/jobs/{id}/retry`), and cancelling a job whose
//! items are between stages.

use api::routes::jobs::Job;
use cohere_standin::{RuntimeConfig, sha256_hex};
use domain::job::{ErrorClass, JobStatus, Priority};
use lapin::types::AMQPValue;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use store::work::{self, Change};
use system_tests::{TestApp, app_rejecting_one, body_as, distinct_images, one_stage, problem};
use uuid::Uuid;

/// Two stages without a filter: every image that gets through both passes.
fn two_open_stages() -> Value {
    json!([
        { "name": "describe", "prompt": "Describe this image in one sentence." },
        { "name": "caption", "prompt": "Write a caption for this image." }
    ])
}

/// How the worker fails an image Cohere refuses.
const REFUSED: &str = "Cohere answered 400: invalid image";

async fn retry(app: &TestApp, job: Uuid) -> reqwest::Response {
    app.post(&format!("/api/jobs/{job}/retry"))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_item_retried_once_the_cause_is_gone_completes_the_job() {
    let (app, standin, images) = app_rejecting_one(3, 0).await;
    let rejected = sha256_hex(&images[0].1);
    let (job, image_ids) = app.submit_job_over_images(&images, two_open_stages()).await;

    // No worker while the retry commits: what happens to a message that arrives before the
    // commit is the worker's business, not what this test is about.
    let failed = app.run_to_end(job).await;
    assert_eq!(failed.status, JobStatus::CompletedWithErrors, "{failed:?}");
    assert_eq!(failed.counts.failed, 1);
    assert_eq!(failed.counts.passed, 2);
    assert_eq!(failed.stages[0].failed, 1);
    assert_eq!(failed.stages[0].processed, 3);
    assert_eq!(app.inconsistent_counters(job).await, 0);

    // The cause goes away; the retry re-opens the failed item.
    standin
        .standin
        .set_config(RuntimeConfig::default())
        .unwrap();
    let retried: Job = body_as(retry(&app, job).await, StatusCode::OK).await;
    assert_eq!(retried.status, JobStatus::Running, "{retried:?}");
    assert_eq!(retried.counts.failed, 0);
    assert_eq!(retried.counts.pending, 1);
    assert_eq!(retried.counts.passed, 2);
    assert!(retried.finished_at.is_none());
    assert_eq!(retried.stages[0].failed, 0);
    assert_eq!(retried.stages[0].processed, 2);
    assert_eq!(app.inconsistent_counters(job).await, 0);

    let finished = app.run_to_end(job).await;
    assert_eq!(finished.status, JobStatus::Completed, "{finished:?}");
    assert_eq!(finished.counts.passed, 3);
    assert_eq!(finished.counts.failed, 0);
    assert_eq!(finished.counts.pending, 0);
    assert_eq!(finished.counts.running, 0);
    assert!(finished.finished_at.is_some());
    for stage in &finished.stages {
        assert_eq!(stage.processed, 3, "{stage:?}");
        assert_eq!(stage.passed, 3, "{stage:?}");
        assert_eq!(stage.failed, 0, "{stage:?}");
    }
    assert_eq!(app.inconsistent_counters(job).await, 0);
    assert_eq!(
        app.query_i64(&format!(
            "SELECT count(*) FROM job_results WHERE job_id = '{job}'"
        ))
        .await,
        6,
        "one result per image and stage"
    );
    assert_eq!(
        app.query_i64(&format!(
            "SELECT count(*) FROM job_items WHERE job_id = '{job}' AND image_id = '{}'
               AND status = 'passed' AND last_error IS NULL AND error_class IS NULL",
            image_ids[0]
        ))
        .await,
        1,
        "the retried item passed and its old error is gone"
    );
    let calls = standin.standin.calls();
    assert_eq!(
        calls.by_image.get(&rejected),
        Some(&3),
        "the retried image: once refused, then both stages"
    );
    assert_eq!(calls.succeeded_by_image.get(&rejected), Some(&2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_requeues_the_item_at_its_failing_stage_with_the_reopened_header() {
    let app = TestApp::spawn().await;
    let job = app
        .submit_job_over(&distinct_images(2), two_open_stages())
        .await;
    let first = app.take_stage_messages(2).await;
    // Both pass the first stage; one then fails the second, the other passes it.
    app.record_answer(first[0], false).await;
    app.record_answer(first[1], false).await;
    app.fail_items(&[first[0].next_stage()], ErrorClass::Permanent, REFUSED)
        .await;
    app.record_answer(first[1].next_stage(), true).await;
    let before = app.job(job).await; // now cached
    assert_eq!(before.status, JobStatus::CompletedWithErrors, "{before:?}");
    assert_eq!(before.stages[1].failed, 1);
    let seq_before = app
        .query_i64(&format!("SELECT event_seq FROM jobs WHERE id = '{job}'"))
        .await;
    assert!(
        app.drain_stage_queue(10).await.is_empty(),
        "nothing queued before the retry"
    );

    let retried: Job = body_as(retry(&app, job).await, StatusCode::OK).await;
    assert_eq!(retried.status, JobStatus::Running);
    assert_eq!(retried.counts.pending, 1);
    assert_eq!(retried.counts.failed, 0);
    assert_eq!(retried.counts.passed, 1);
    assert_eq!(retried.stages[0].processed, 2, "stage 0 is untouched");
    assert_eq!(retried.stages[1].processed, 1);
    assert_eq!(retried.stages[1].failed, 0);
    assert_eq!(
        app.job(job).await.status,
        JobStatus::Running,
        "visible at once, not when the cached view expires"
    );
    assert_eq!(app.inconsistent_counters(job).await, 0);

    let queued = app.drain_stage_queue(10).await;
    assert_eq!(queued.len(), 1, "one message: the re-opened item");
    let (body, properties) = &queued[0];
    assert_eq!(body["job_id"], job.to_string());
    assert_eq!(body["item_id"], first[0].item_id.to_string());
    assert_eq!(body["stage_index"], 1, "the stage where it failed");
    assert_eq!(body["attempt"], 0);
    let headers = properties.headers().as_ref().expect("headers");
    assert_eq!(
        headers.inner().get(broker::dead_letter::REOPENED),
        Some(&AMQPValue::Boolean(true))
    );
    assert!(broker::dead_letter::is_reopened(Some(headers)));
    assert_eq!(
        *properties.priority(),
        Some(Priority::Normal.amqp_priority())
    );

    let item = first[0].item_id;
    assert_eq!(
        app.query_i64(&format!(
            "SELECT count(*) FROM job_items WHERE id = '{item}' AND status = 'pending'
               AND current_stage = 1 AND attempts = 0 AND last_error IS NULL
               AND error_class IS NULL AND finished_at IS NULL"
        ))
        .await,
        1,
        "the item is pending again at its stage, its failure forgotten"
    );
    assert_eq!(
        app.query_i64(&format!(
            "SELECT count(*) FROM jobs WHERE id = '{job}' AND finished_at IS NULL AND event_seq = {}",
            seq_before + 1
        ))
        .await,
        1
    );

    // Nothing failed any more: a second retry has nothing to do.
    let again = retry(&app, job).await;
    assert_eq!(again.status(), 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_refuses_a_job_without_failed_items_a_cancelled_job_and_another_tenants_job() {
    let app = TestApp::spawn().await;
    let library = app.create_library("photos").await;
    app.upload_bytes(library, &distinct_images(2)).await;
    let pipeline = app.create_pipeline("one", one_stage()).await;

    // Queued, nothing failed.
    let fresh = app.submit_job(pipeline, library).await;
    let messages = app.take_stage_messages(2).await;
    let refused = problem(retry(&app, fresh).await, StatusCode::CONFLICT).await;
    assert_eq!(refused.code, "conflict");
    assert!(refused.detail.contains("no failed items"), "{refused:?}");

    // One item failed, then the job was cancelled: its failed item stays failed.
    app.fail_items(&messages[..1], ErrorClass::Permanent, REFUSED)
        .await;
    let other_key = app.other_tenant_key("tenant-b").await;
    let foreign = app
        .request_with_key(
            &other_key,
            Method::POST,
            &format!("/api/jobs/{fresh}/retry"),
        )
        .send()
        .await
        .unwrap();
    let foreign = problem(foreign, StatusCode::NOT_FOUND).await;
    assert_eq!(
        foreign.code, "not_found",
        "another tenant's job does not exist"
    );
    assert_eq!(
        app.query_i64(&format!(
            "SELECT failed_items::bigint FROM jobs WHERE id = '{fresh}'"
        ))
        .await,
        1,
        "the other tenant's request changed nothing"
    );
    assert_eq!(retry(&app, Uuid::now_v7()).await.status(), 404);

    app.cancel_job(fresh).await;
    let refused = problem(retry(&app, fresh).await, StatusCode::CONFLICT).await;
    assert_eq!(refused.code, "conflict");
    assert!(refused.detail.contains("cancelled"), "{refused:?}");
    let job = app.job(fresh).await;
    assert_eq!(job.status, JobStatus::Cancelled);
    assert_eq!(job.counts.failed, 1);
    assert_eq!(job.counts.cancelled, 1);
    assert!(
        app.drain_stage_queue(10).await.is_empty(),
        "a refused retry publishes nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_job_with_items_between_stages_counts_them_cancelled() {
    let app = TestApp::spawn().await;
    let job = app
        .submit_job_over(&distinct_images(3), two_open_stages())
        .await;
    let first = app.take_stage_messages(3).await;
    // Two items pass the first stage and wait for the second (`running`); one is `pending`.
    app.record_answer(first[0], false).await;
    app.record_answer(first[1], false).await;
    let running = app.job(job).await;
    assert_eq!(running.counts.running, 2, "{running:?}");
    assert_eq!(running.counts.pending, 1);

    let cancelled = app.cancel_job(job).await;
    assert_eq!(cancelled.status, JobStatus::Cancelled);
    assert_eq!(cancelled.counts.cancelled, 3, "{cancelled:?}");
    assert_eq!(cancelled.counts.running, 0);
    assert_eq!(cancelled.counts.pending, 0);
    assert_eq!(cancelled.percent_complete, 100.0);
    assert_eq!(
        app.query_i64(&format!(
            "SELECT count(*) FROM job_items WHERE job_id = '{job}' AND status = 'cancelled'
               AND finished_at IS NOT NULL"
        ))
        .await,
        3
    );
    assert_eq!(app.inconsistent_counters(job).await, 0);

    // The second-stage message of a cancelled item arriving late changes nothing.
    let late = work::apply(
        &app.db,
        &[Change::Cancel {
            message: first[0].next_stage(),
        }],
    )
    .await
    .unwrap();
    assert!(late.events.is_empty());
    assert_eq!(app.inconsistent_counters(job).await, 0);
}

#[tokio::test]
async fn when_the_broker_is_unreachable_a_retry_is_503_and_changes_nothing() {
    let app = TestApp::spawn_with(|s| {
        s.amqp.url = secrecy::SecretString::from("amqp://guest:guest@127.0.0.1:1/%2f");
        s.amqp.timeout_seconds = 2;
    })
    .await;
    let library = app.create_library("photos").await;
    app.upload_bytes(library, &distinct_images(2)).await;
    let pipeline = app.create_pipeline("one", one_stage()).await;
    // The api cannot submit without a broker: write the job as a submission would.
    let tenant = store::tenants::tenant_for_key_hash(&app.db, &store::tenants::hash_key(&app.key))
        .await
        .unwrap()
        .unwrap();
    let accepted = store::jobs::submit(
        &app.db,
        tenant,
        store::jobs::Submission {
            pipeline_id: pipeline,
            library_id: library,
            images: &domain::selection::ImageSelection::ALL,
            priority: Priority::High,
            idempotency_key: None,
            request_hash: "test",
            preview: None,
            max_cost_usd: None,
            traceparent: None,
        },
    )
    .await
    .map_err(|e| e.to_string())
    .unwrap();
    // Write and release the items as the scheduler would.
    store::admission::materialize(&app.db, accepted.job.job.id, 10)
        .await
        .unwrap();
    let messages: Vec<_> =
        store::admission::claim(&app.db, accepted.job.job.id, Priority::High, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|released| released.message)
            .collect();
    let job = accepted.job.job.id;
    app.fail_items(&messages[..1], ErrorClass::Permanent, REFUSED)
        .await;
    let seq = app
        .query_i64(&format!("SELECT event_seq FROM jobs WHERE id = '{job}'"))
        .await;

    let response = retry(&app, job).await;
    assert!(response.headers().contains_key("retry-after"));
    let refused = problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(refused.code, "service_unavailable");
    assert_eq!(
        app.query_i64(&format!(
            "SELECT count(*) FROM job_items WHERE job_id = '{job}' AND status = 'failed'
               AND last_error IS NOT NULL"
        ))
        .await,
        1,
        "the failed item is still failed"
    );
    assert_eq!(
        app.query_i64(&format!(
            "SELECT count(*) FROM jobs WHERE id = '{job}' AND failed_items = 1
               AND pending_items = 1 AND event_seq = {seq}"
        ))
        .await,
        1
    );
    assert_eq!(app.inconsistent_counters(job).await, 0);
}

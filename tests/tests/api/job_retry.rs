//! Retrying a job's failed items (`POST /api/jobs/{id}/retry`, `store::retry::reopen`), and
//! cancelling a job whose items are between stages.

use std::time::Duration;

use cohere_standin::{RuntimeConfig, sha256_hex};
use domain::{
    event::{ItemProgress, JobEventKind},
    job::{ErrorClass, ItemStatus, JobStatus, Priority},
    message::StageMessage,
};
use lapin::types::AMQPValue;
use serde_json::{Value, json};
use store::{
    retry::{ReopenError, ReopenScope},
    work::{self, Change, StageResult},
};
use system_tests::{RunningWorker, TestApp, distinct_images, one_stage, start_standin};
use uuid::Uuid;

const RUN_TIMEOUT: Duration = Duration::from_secs(90);

/// Two stages without a filter: every image that gets through both passes.
fn two_open_stages() -> Value {
    json!([
        { "name": "describe", "prompt": "Describe this image in one sentence." },
        { "name": "caption", "prompt": "Write a caption for this image." }
    ])
}

fn answer() -> StageResult {
    StageResult {
        model: "command-a-vision-07-2025".into(),
        output_text: "a photo".into(),
        output_json: None,
        passed: true,
        filter_reason: None,
        finish_reason: Some("COMPLETE".into()),
        input_tokens: 10,
        output_tokens: 2,
        billed_input_tokens: 8,
        billed_output_tokens: 2,
        latency_ms: 5,
    }
}

/// The first-stage messages of what was submitted, taken off the queue (so no worker is needed).
async fn first_messages(app: &TestApp, count: usize) -> Vec<StageMessage> {
    let messages: Vec<StageMessage> = app
        .drain_stage_queue(count)
        .await
        .into_iter()
        .map(|(body, _)| StageMessage::decode(&serde_json::to_vec(&body).unwrap()).unwrap())
        .collect();
    assert_eq!(messages.len(), count);
    messages
}

/// Writes a stage outcome as a worker would.
async fn record(app: &TestApp, message: StageMessage, last_stage: bool) {
    let found = work::load(&app.db, &[message]).await.unwrap().remove(0);
    let applied = work::apply(
        &app.db,
        &[Change::Record {
            message,
            image_id: found.expect("the item exists").image_id,
            result: answer(),
            last_stage,
        }],
    )
    .await
    .unwrap();
    assert_eq!(applied.events.len(), 1, "the outcome was written");
}

/// Fails an item at the message's stage as a worker would.
async fn fail(app: &TestApp, message: StageMessage) {
    let applied = work::apply(
        &app.db,
        &[Change::Fail {
            message,
            class: ErrorClass::Permanent,
            reason: "Cohere answered 400: invalid image".into(),
        }],
    )
    .await
    .unwrap();
    assert_eq!(applied.events.len(), 1, "the failure was written");
}

/// Counters that disagree with the rows they count: the job's item counters against its
/// items, and each stage's counters against its results and the items that failed there.
async fn inconsistent_counters(app: &TestApp, job: Uuid) -> i64 {
    let jobs = app
        .query_i64(&format!(
            r#"SELECT count(*) FROM jobs j, LATERAL (
                   SELECT count(*) AS total,
                          count(*) FILTER (WHERE status = 'pending') AS pending,
                          count(*) FILTER (WHERE status = 'running') AS running,
                          count(*) FILTER (WHERE status = 'passed') AS passed,
                          count(*) FILTER (WHERE status = 'filtered_out') AS filtered_out,
                          count(*) FILTER (WHERE status = 'failed') AS failed,
                          count(*) FILTER (WHERE status = 'cancelled') AS cancelled
                   FROM job_items i WHERE i.job_id = j.id) c
               WHERE j.id = '{job}' AND (j.total_items <> c.total OR j.pending_items <> c.pending
                   OR j.running_items <> c.running OR j.passed_items <> c.passed
                   OR j.filtered_out_items <> c.filtered_out OR j.failed_items <> c.failed
                   OR j.cancelled_items <> c.cancelled)"#
        ))
        .await;
    let stages = app
        .query_i64(&format!(
            r#"SELECT count(*) FROM job_stage_stats s,
                   LATERAL (SELECT count(*) AS results,
                                   count(*) FILTER (WHERE r.passed) AS passed,
                                   count(*) FILTER (WHERE NOT r.passed) AS filtered_out
                            FROM job_results r
                            WHERE r.job_id = s.job_id AND r.stage_index = s.stage_index) r,
                   LATERAL (SELECT count(*) AS failed FROM job_items i
                            WHERE i.job_id = s.job_id AND i.status = 'failed'
                              AND i.current_stage = s.stage_index) f
               WHERE s.job_id = '{job}' AND (s.passed <> r.passed
                   OR s.filtered_out <> r.filtered_out OR s.failed <> f.failed
                   OR s.processed <> r.results + f.failed)"#
        ))
        .await;
    jobs + stages
}

async fn retry(app: &TestApp, job: Uuid) -> reqwest::Response {
    app.post(&format!("/api/jobs/{job}/retry"))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_item_retried_once_the_cause_is_gone_completes_the_job() {
    let mut app = TestApp::spawn().await;
    let standin = start_standin(&mut app.settings);
    let images = distinct_images(3);
    let rejected = sha256_hex(&images[0].1);
    standin
        .standin
        .set_config(RuntimeConfig {
            reject_images: [rejected.clone()].into(),
            ..RuntimeConfig::default()
        })
        .unwrap();
    let library = app.create_library("photos").await;
    let image_ids = app.upload_bytes(library, &images).await;
    let pipeline = app.create_pipeline("two", two_open_stages()).await;
    let job = app.submit_job(pipeline, library).await;

    let worker = RunningWorker::start(&app.settings).await;
    let failed = app.wait_for_job(job, RUN_TIMEOUT).await;
    // No worker while the retry commits: what happens to a message that arrives before the
    // commit is the worker's business, not what this test is about.
    worker.stop().await;
    assert_eq!(failed["status"], "completed_with_errors", "{failed}");
    assert_eq!(failed["counts"]["failed"], 1);
    assert_eq!(failed["counts"]["passed"], 2);
    assert_eq!(failed["stages"][0]["failed"], 1);
    assert_eq!(failed["stages"][0]["processed"], 3);
    assert_eq!(inconsistent_counters(&app, job).await, 0);

    // The cause goes away; the retry re-opens the failed item.
    standin
        .standin
        .set_config(RuntimeConfig::default())
        .unwrap();
    let response = retry(&app, job).await;
    assert_eq!(response.status(), 200);
    let retried: Value = response.json().await.unwrap();
    assert_eq!(retried["status"], "running", "{retried}");
    assert_eq!(retried["counts"]["failed"], 0);
    assert_eq!(retried["counts"]["pending"], 1);
    assert_eq!(retried["counts"]["passed"], 2);
    assert!(retried["finished_at"].is_null());
    assert_eq!(retried["stages"][0]["failed"], 0);
    assert_eq!(retried["stages"][0]["processed"], 2);
    assert_eq!(inconsistent_counters(&app, job).await, 0);

    let worker = RunningWorker::start(&app.settings).await;
    let finished = app.wait_for_job(job, RUN_TIMEOUT).await;
    worker.stop().await;
    assert_eq!(finished["status"], "completed", "{finished}");
    assert_eq!(finished["counts"]["passed"], 3);
    assert_eq!(finished["counts"]["failed"], 0);
    assert_eq!(finished["counts"]["pending"], 0);
    assert_eq!(finished["counts"]["running"], 0);
    assert!(finished["finished_at"].is_string());
    for stage in finished["stages"].as_array().unwrap() {
        assert_eq!(stage["processed"], 3, "{stage}");
        assert_eq!(stage["passed"], 3, "{stage}");
        assert_eq!(stage["failed"], 0, "{stage}");
    }
    assert_eq!(inconsistent_counters(&app, job).await, 0);
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
    let library = app.create_library("photos").await;
    app.upload_bytes(library, &distinct_images(2)).await;
    let pipeline = app.create_pipeline("two", two_open_stages()).await;
    let job = app.submit_job(pipeline, library).await;
    let first = first_messages(&app, 2).await;
    // Both pass the first stage; one then fails the second, the other passes it.
    record(&app, first[0], false).await;
    record(&app, first[1], false).await;
    fail(&app, first[0].next_stage()).await;
    record(&app, first[1].next_stage(), true).await;
    let path = format!("/api/jobs/{job}");
    let before: Value = app.get_json(&path).await; // now cached
    assert_eq!(before["status"], "completed_with_errors", "{before}");
    assert_eq!(before["stages"][1]["failed"], 1);
    let seq_before = app
        .query_i64(&format!("SELECT event_seq FROM jobs WHERE id = '{job}'"))
        .await;
    assert!(
        app.drain_stage_queue(10).await.is_empty(),
        "nothing queued before the retry"
    );

    let response = retry(&app, job).await;
    assert_eq!(response.status(), 200);
    let retried: Value = response.json().await.unwrap();
    assert_eq!(retried["status"], "running");
    assert_eq!(retried["counts"]["pending"], 1);
    assert_eq!(retried["counts"]["failed"], 0);
    assert_eq!(retried["counts"]["passed"], 1);
    assert_eq!(retried["stages"][0]["processed"], 2, "stage 0 is untouched");
    assert_eq!(retried["stages"][1]["processed"], 1);
    assert_eq!(retried["stages"][1]["failed"], 0);
    let fetched: Value = app.get_json(&path).await;
    assert_eq!(
        fetched["status"], "running",
        "visible at once, not when the cached view expires"
    );
    assert_eq!(inconsistent_counters(&app, job).await, 0);

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
    let messages = first_messages(&app, 2).await;
    let response = retry(&app, fresh).await;
    assert_eq!(response.status(), 409);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "conflict");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("no failed items"),
        "{problem}"
    );

    // One item failed, then the job was cancelled: its failed item stays failed.
    fail(&app, messages[0]).await;
    let other_key = app.other_tenant_key("tenant-b").await;
    let foreign = app
        .client
        .post(app.url(&format!("/api/jobs/{fresh}/retry")))
        .bearer_auth(&other_key)
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 404, "another tenant's job does not exist");
    assert_eq!(foreign.json::<Value>().await.unwrap()["code"], "not_found");
    assert_eq!(
        app.query_i64(&format!(
            "SELECT failed_items::bigint FROM jobs WHERE id = '{fresh}'"
        ))
        .await,
        1,
        "the other tenant's request changed nothing"
    );
    assert_eq!(retry(&app, Uuid::now_v7()).await.status(), 404);

    let cancelled = app
        .post(&format!("/api/jobs/{fresh}/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200);
    let response = retry(&app, fresh).await;
    assert_eq!(response.status(), 409);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "conflict");
    assert!(
        problem["detail"].as_str().unwrap().contains("cancelled"),
        "{problem}"
    );
    let job: Value = app.get_json(&format!("/api/jobs/{fresh}")).await;
    assert_eq!(job["status"], "cancelled");
    assert_eq!(job["counts"]["failed"], 1);
    assert_eq!(job["counts"]["cancelled"], 1);
    assert!(
        app.drain_stage_queue(10).await.is_empty(),
        "a refused retry publishes nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_items_by_id_skips_what_is_not_failed_and_a_broker_failure_changes_nothing() {
    let app = TestApp::spawn().await;
    let library = app.create_library("photos").await;
    app.upload_bytes(library, &distinct_images(2)).await;
    let pipeline = app.create_pipeline("one", one_stage()).await;
    let job = app.submit_job(pipeline, library).await;
    let messages = first_messages(&app, 2).await;
    fail(&app, messages[0]).await;
    record(&app, messages[1], true).await;
    let (failed, passed, unknown) = (messages[0].item_id, messages[1].item_id, Uuid::now_v7());
    let seq = app
        .query_i64(&format!("SELECT event_seq FROM jobs WHERE id = '{job}'"))
        .await;

    // The broker refuses: nothing changes.
    let refused = store::retry::reopen(
        &app.db,
        ReopenScope::Items(vec![failed, passed, unknown]),
        |_| async { Err::<(), _>("the broker is down") },
    )
    .await;
    assert!(matches!(
        refused,
        Err(ReopenError::Publish("the broker is down"))
    ));
    assert_eq!(
        app.query_i64(&format!(
            "SELECT count(*) FROM jobs WHERE id = '{job}' AND status = 'completed_with_errors'
               AND failed_items = 1 AND pending_items = 0 AND event_seq = {seq}"
        ))
        .await,
        1
    );
    assert_eq!(inconsistent_counters(&app, job).await, 0);

    let mut published = Vec::new();
    let reopened = store::retry::reopen(
        &app.db,
        ReopenScope::Items(vec![failed, passed, unknown, failed]),
        |batch| {
            published = batch;
            async { Ok::<(), ()>(()) }
        },
    )
    .await
    .unwrap();
    assert_eq!(reopened.reopened, vec![failed]);
    assert_eq!(reopened.skipped, vec![passed, unknown]);
    let message = StageMessage {
        job_id: job,
        item_id: failed,
        stage_index: 0,
        attempt: 0,
    };
    assert_eq!(published, vec![(message, Priority::Normal)]);
    assert_eq!(reopened.messages, published);
    assert_eq!(reopened.events.len(), 1);
    let event = &reopened.events[0];
    assert_eq!(event.job_id, job);
    assert_eq!(event.seq, seq + 1);
    assert_eq!(event.status, JobStatus::Running);
    assert_eq!(
        (
            event.counts.pending,
            event.counts.failed,
            event.counts.passed
        ),
        (1, 0, 1)
    );
    assert_eq!(
        event.kind,
        JobEventKind::Progress {
            items: vec![ItemProgress {
                item_id: failed,
                stage_index: 0,
                item_status: ItemStatus::Pending,
            }]
        }
    );
    assert_eq!(inconsistent_counters(&app, job).await, 0);

    // Nothing left to re-open is an empty answer, not an error, and publishes nothing.
    let nothing = store::retry::reopen(&app.db, ReopenScope::Items(vec![passed]), |_| async {
        Err::<(), _>("publish must not be called with nothing to publish")
    })
    .await
    .unwrap();
    assert!(nothing.reopened.is_empty() && nothing.messages.is_empty());
    assert_eq!(nothing.skipped, vec![passed]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_job_with_items_between_stages_counts_them_cancelled() {
    let app = TestApp::spawn().await;
    let library = app.create_library("photos").await;
    app.upload_bytes(library, &distinct_images(3)).await;
    let pipeline = app.create_pipeline("two", two_open_stages()).await;
    let job = app.submit_job(pipeline, library).await;
    let first = first_messages(&app, 3).await;
    // Two items pass the first stage and wait for the second (`running`); one is `pending`.
    record(&app, first[0], false).await;
    record(&app, first[1], false).await;
    let running: Value = app.get_json(&format!("/api/jobs/{job}")).await;
    assert_eq!(running["counts"]["running"], 2, "{running}");
    assert_eq!(running["counts"]["pending"], 1);

    let response = app
        .post(&format!("/api/jobs/{job}/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cancelled: Value = response.json().await.unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["counts"]["cancelled"], 3, "{cancelled}");
    assert_eq!(cancelled["counts"]["running"], 0);
    assert_eq!(cancelled["counts"]["pending"], 0);
    assert_eq!(cancelled["percent_complete"], 100.0);
    assert_eq!(
        app.query_i64(&format!(
            "SELECT count(*) FROM job_items WHERE job_id = '{job}' AND status = 'cancelled'
               AND finished_at IS NOT NULL"
        ))
        .await,
        3
    );
    assert_eq!(inconsistent_counters(&app, job).await, 0);

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
    assert_eq!(inconsistent_counters(&app, job).await, 0);
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
    let mut messages = Vec::new();
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
        },
        |batch| {
            messages = batch;
            async { Ok::<(), ()>(()) }
        },
    )
    .await
    .map_err(|e| e.to_string())
    .unwrap();
    let job = accepted.job.job.id;
    fail(&app, messages[0]).await;
    let seq = app
        .query_i64(&format!("SELECT event_seq FROM jobs WHERE id = '{job}'"))
        .await;

    let response = retry(&app, job).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(
        response.json::<Value>().await.unwrap()["code"],
        "service_unavailable"
    );
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
    assert_eq!(inconsistent_counters(&app, job).await, 0);
}

//! Failure handling end to end (DESIGN.md, "Failure handling"): the worker against the Cohere
//! stand-in's injected faults, with the real PostgreSQL and RabbitMQ. What each failure class
//! must do to items, dead letters, the circuit breaker and the calls Cohere sees.

use std::{collections::BTreeMap, time::Duration};

use api::routes::Paged;
use cohere_standin::{RuntimeConfig, sha256_hex};
use domain::job::{ErrorClass, JobStatus};
use lapin::{BasicProperties, options::BasicPublishOptions};
use redriver::{RedriveReport, http::DeadLetterSummary};
use serde_json::json;
use settings::Settings;
use system_tests::{
    RUN_TIMEOUT, RedriverAdmin, RunningWorker, STANDIN_KEY, TestApp, accept_only_key,
    app_rejecting_one, distinct_images, eventually, fail_every_call_transiently, one_stage,
    start_standin,
};
use uuid::Uuid;

/// A breaker that opens after a few failures and probes every second or two, so a test sees
/// it open and close within seconds.
fn quick_breaker(settings: &mut Settings) {
    settings.breaker.window_calls = 10;
    settings.breaker.min_calls = 3;
    settings.breaker.failure_rate = 0.5;
    settings.breaker.open_seconds = 1;
    settings.breaker.max_open_seconds = 4;
    settings.retry.initial_backoff_millis = 20;
    settings.retry.max_backoff_millis = 100;
}

fn calls_with(standin: &cohere_standin::Running, status: u16) -> u64 {
    standin
        .standin
        .calls()
        .by_status
        .get(&status)
        .copied()
        .unwrap_or_default()
}

async fn breaker_state(worker: &RunningWorker) -> (u16, String) {
    let (status, body) = worker.readiness().await;
    (
        status,
        body["checks"]["cohere"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

async fn submit_images(app: &TestApp, count: usize) -> (Uuid, Vec<(String, Vec<u8>)>) {
    let images = distinct_images(count);
    (app.submit_job_over(&images, one_stage()).await, images)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_opens_the_breaker_holds_the_messages_and_the_job_completes_without_failures() {
    let mut app = TestApp::spawn().await;
    let standin = start_standin(&mut app.settings);
    quick_breaker(&mut app.settings);
    app.settings.worker.concurrency = 4;
    standin
        .standin
        .set_config(RuntimeConfig {
            latency_ms: cohere_standin::config::Latency { min: 20, max: 20 },
            ..Default::default()
        })
        .unwrap();
    let (job, _) = submit_images(&app, 40).await;
    let worker = RunningWorker::start(&app.settings).await;
    eventually(RUN_TIMEOUT, "a few results", || async {
        (app.query_i64(&format!(
            "SELECT count(*) FROM job_results WHERE job_id = '{job}'"
        ))
        .await
            >= 5)
            .then_some(())
    })
    .await;

    // Cohere goes down.
    let mut config = standin.standin.config();
    config.outage = true;
    standin.standin.set_config(config.clone()).unwrap();
    eventually(RUN_TIMEOUT, "the breaker to open", || async {
        (breaker_state(&worker).await == (503, "open".to_string())).then_some(())
    })
    .await;
    let (_, ready) = worker.readiness().await;
    assert_eq!(ready["circuit_breakers"][0]["state"], "open", "{ready}");
    assert!(
        worker
            .metrics()
            .await
            .contains("cohere_circuit_state{model=\"command-a-vision-07-2025\"} 2"),
        "the gauge says open"
    );
    let failed_when_opened = calls_with(&standin, 503);
    // Cohere stays down for 30 s: only the breaker's probes reach it meanwhile.
    let outage = Duration::from_secs(30);
    tokio::time::sleep(outage).await;
    let probes = calls_with(&standin, 503) - failed_when_opened;
    // Open 1 s, then 2 s, then 4 s, 4 s...: about 9 probes in 30 s, one at a time.
    assert!(
        probes <= 12,
        "only probes while open, not every queued message: {probes} calls in {outage:?}"
    );
    config.outage = false;
    standin.standin.set_config(config).unwrap();

    let finished = app.wait_for_job(job).await;
    assert_eq!(finished.status, JobStatus::Completed, "{finished:?}");
    assert_eq!(finished.counts.passed, 40);
    assert_eq!(finished.counts.failed, 0);
    assert_eq!(breaker_state(&worker).await, (200, "closed".to_string()));
    assert!(
        app.drain_dead_letters(10).await.is_empty(),
        "an outage dead-letters nothing"
    );
    let transitions = app
        .query_i64("SELECT count(*) FROM circuit_breakers WHERE state = 'closed'")
        .await;
    assert_eq!(transitions, 1, "the closing transition is recorded");
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_opens_the_breaker_at_once_and_the_job_completes_once_the_key_works() {
    let mut app = TestApp::spawn().await;
    let standin = start_standin(&mut app.settings);
    quick_breaker(&mut app.settings);
    // Only systemic errors could open it: the failure rate alone never would here.
    app.settings.breaker.min_calls = app.settings.breaker.window_calls;
    app.settings.breaker.failure_rate = 1.0;
    app.settings.worker.concurrency = 2;
    // The key the worker holds stops working (rotated at Cohere).
    accept_only_key(&standin, "rotated-key");
    let (job, _) = submit_images(&app, 12).await;
    let worker = RunningWorker::start(&app.settings).await;
    eventually(RUN_TIMEOUT, "the breaker to open", || async {
        (breaker_state(&worker).await == (503, "open".to_string())).then_some(())
    })
    .await;
    let (_, ready) = worker.readiness().await;
    let reason = ready["circuit_breakers"][0]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reason.contains("401"),
        "the reason names the refusal: {ready}"
    );
    let refused = calls_with(&standin, 401);
    assert!(
        refused <= 2,
        "the first refusal opens it (2 calls were in flight): {refused}"
    );
    assert_eq!(
        app.job(job).await.counts.failed,
        0,
        "a refused key fails nothing"
    );

    // The operator fixes the key at Cohere's end; nobody touches the job.
    accept_only_key(&standin, STANDIN_KEY);
    let finished = app.wait_for_job(job).await;
    assert_eq!(finished.status, JobStatus::Completed, "{finished:?}");
    assert_eq!(finished.counts.passed, 12);
    assert!(app.drain_dead_letters(10).await.is_empty());
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_cohere_rejects_fails_alone_and_is_dead_lettered_with_its_reason() {
    let (app, standin, images) = app_rejecting_one(6, 2).await;
    let (job, ids) = app.submit_job_over_images(&images, one_stage()).await;
    let finished = app.run_to_end(job).await;

    assert_eq!(
        finished.status,
        JobStatus::CompletedWithErrors,
        "{finished:?}"
    );
    assert_eq!(finished.counts.failed, 1);
    assert_eq!(finished.counts.passed, 5);
    let letters = app.drain_dead_letters(10).await;
    assert_eq!(letters.len(), 1, "one dead letter");
    let (body, letter) = &letters[0];
    assert_eq!(letter.class, ErrorClass::Permanent);
    assert!(letter.message.contains("400"), "{}", letter.message);
    assert_eq!(letter.attempts, 1, "a permanent error is not retried");
    assert_eq!(letter.job_id, Some(job));
    assert_eq!(letter.stage_index, Some(0));
    assert_eq!(letter.model.as_deref(), Some("command-a-vision-07-2025"));
    assert!(letter.tenant_id.is_some());
    let message = domain::message::StageMessage::decode(body).unwrap();
    assert_eq!(Some(message.item_id), letter.item_id);
    let failed_image = app
        .query_i64(&format!(
            "SELECT count(*) FROM job_items WHERE id = '{}' AND image_id = '{}' AND status = 'failed' AND error_class = 'permanent'",
            message.item_id, ids[2]
        ))
        .await;
    assert_eq!(
        failed_image, 1,
        "the rejected image's item failed as permanent"
    );
    assert_eq!(
        standin
            .standin
            .calls()
            .by_image
            .get(&sha256_hex(&images[2].1)),
        Some(&1),
        "called once, never retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_failure_waits_in_the_delay_queues_then_is_dead_lettered_after_its_attempts() {
    let mut app = TestApp::spawn().await;
    let standin = start_standin(&mut app.settings);
    // Every call fails with a 503, and the breaker never opens: retries alone decide.
    app.settings.retry.initial_backoff_millis = 10;
    fail_every_call_transiently(&mut app.settings, &standin, 2, 3);
    let (job, images) = submit_images(&app, 1).await;
    let finished = app.run_to_end(job).await;

    assert_eq!(finished.status, JobStatus::Failed, "{finished:?}");
    assert_eq!(finished.counts.failed, 1);
    assert_eq!(
        standin
            .standin
            .calls()
            .by_image
            .get(&sha256_hex(&images[0].1)),
        Some(&6),
        "3 attempts of 2 in-process tries each"
    );
    let letters = app.drain_dead_letters(10).await;
    assert_eq!(letters.len(), 1);
    let letter = &letters[0].1;
    assert_eq!(letter.class, ErrorClass::Transient);
    assert_eq!(letter.attempts, 3);
    assert!(
        letter.message.contains("gave up after 3 attempts"),
        "{}",
        letter.message
    );
    // The delay queues waited 1 s then 2 s: the first failure is that much older.
    let waited = letter.dead_lettered_at - letter.first_failed_at;
    assert!(
        waited >= chrono::Duration::milliseconds(2900),
        "the first failure's time survived the delay queues: {waited}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_calls_wait_without_spending_attempts() {
    let mut app = TestApp::spawn().await;
    let standin = start_standin(&mut app.settings);
    app.settings.retry.max_attempts = 1;
    app.settings.retry.in_process_tries = 1;
    standin
        .standin
        .set_config(RuntimeConfig {
            error_rates: BTreeMap::from([(429, 0.5)]),
            retry_after_seconds: Some(1),
            ..Default::default()
        })
        .unwrap();
    // Twelve calls at a 429 rate of one half: all twelve answered at once is a 1-in-4,096 chance.
    let (job, _) = submit_images(&app, 12).await;
    let finished = app.run_to_end(job).await;
    assert!(
        calls_with(&standin, 429) > 0,
        "the stand-in did answer 429s"
    );
    assert_eq!(finished.status, JobStatus::Completed, "{finished:?}");
    assert_eq!(
        finished.counts.passed, 12,
        "with one attempt allowed, a counted 429 would have failed the item"
    );
    let backed_off = app
        .query_i64("SELECT count(*) FROM cohere_rate_limits WHERE backoff_until IS NOT NULL")
        .await;
    assert_eq!(backed_off, 1, "the back-off is shared through the database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_message_is_dead_lettered_with_its_reason() {
    let mut app = TestApp::spawn().await;
    let _standin = start_standin(&mut app.settings);
    let worker = RunningWorker::start(&app.settings).await;
    let connection = broker::connect(
        &system_tests::amqp_url(),
        "test-poison",
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let topology = broker::Topology::from_settings(&app.settings);
    channel
        .basic_publish(
            topology.work_exchange().into(),
            broker::topology::STAGE_ROUTING_KEY.into(),
            BasicPublishOptions::default(),
            b"{not a stage message",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let letters = eventually(RUN_TIMEOUT, "the poison message's dead letter", || async {
        let letters = app.drain_dead_letters(10).await;
        (!letters.is_empty()).then_some(letters)
    })
    .await;
    worker.stop().await;
    assert_eq!(letters.len(), 1);
    let (body, letter) = &letters[0];
    assert_eq!(body.as_slice(), b"{not a stage message");
    assert_eq!(letter.class, ErrorClass::Poison);
    assert!(
        letter.message.contains("undecodable"),
        "the reason: {}",
        letter.message
    );
    let _ = connection.close(200, "done".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_running_job_stops_its_calls_within_a_second_and_aborts_those_in_flight() {
    let mut app = TestApp::spawn().await;
    let standin = start_standin(&mut app.settings);
    app.settings.worker.concurrency = 16;
    // Slow calls: when the job is cancelled, 16 are in flight and must be abandoned.
    standin
        .standin
        .set_config(RuntimeConfig {
            latency_ms: cohere_standin::config::Latency {
                min: 1500,
                max: 1500,
            },
            ..Default::default()
        })
        .unwrap();
    let library = app.create_library("photos").await;
    let first = app.upload_bytes(library, &distinct_images(1)).await[0];
    app.copy_image(library, first, 999).await;
    let pipeline = app.create_pipeline("describe", one_stage()).await;
    let job = app.submit_job(pipeline, library).await;
    let worker = RunningWorker::start(&app.settings).await;
    eventually(RUN_TIMEOUT, "some calls answered", || async {
        (standin.standin.calls().total >= 16).then_some(())
    })
    .await;

    let cancelled = app.cancel_job(job).await;
    assert_eq!(cancelled.status, JobStatus::Cancelled);
    // The calls in flight are abandoned, not awaited: the worker has none left well before
    // the 1.5 s a call takes.
    eventually(Duration::from_secs(1), "no call in flight", || async {
        let metrics = worker.metrics().await;
        metrics
            .contains("worker_cohere_calls_in_flight 0")
            .then_some(())
    })
    .await;
    assert!(
        worker
            .metrics()
            .await
            .contains("worker_cohere_calls_total{outcome=\"cancelled\"}"),
        "abandoned calls are counted"
    );
    // No new call reaches Cohere after a second (the observation window is the assertion).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let received_after_a_second = standin.standin.calls().received;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        standin.standin.calls().received,
        received_after_a_second,
        "no call received more than a second after the cancellation"
    );
    let job_now = app.job(job).await;
    assert_eq!(job_now.status, JobStatus::Cancelled);
    let counts = &job_now.counts;
    assert_eq!(counts.pending, 0, "{job_now:?}");
    assert_eq!(counts.running, 0, "{job_now:?}");
    assert_eq!(counts.passed + counts.cancelled, 1000, "{job_now:?}");
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_image_re_driven_once_cohere_accepts_it_completes_the_job() {
    let (app, standin, images) = app_rejecting_one(4, 3).await;
    let redriver = RedriverAdmin::start(&app.settings).await;
    let job = app.submit_job_over(&images, one_stage()).await;
    let worker = RunningWorker::start(&app.settings).await;
    let finished = app.wait_for_job(job).await;
    assert_eq!(
        finished.status,
        JobStatus::CompletedWithErrors,
        "{finished:?}"
    );

    // The re-driver holds the dead letter; the image is "fixed" (Cohere now accepts it).
    eventually(RUN_TIMEOUT, "the dead letter drained", || async {
        let page: Paged<DeadLetterSummary> = redriver
            .get_as(&format!("/admin/dead-letters?job_id={job}"))
            .await;
        (page.total == 1).then_some(())
    })
    .await;
    standin
        .standin
        .set_config(RuntimeConfig::default())
        .unwrap();
    let report: RedriveReport = redriver
        .post_as(
            "/admin/dead-letters/redrive",
            &json!({ "filter": { "job_id": job } }),
            None,
        )
        .await;
    assert_eq!(report.redriven, 1, "{report:?}");

    // The worker picks the re-opened item up and the job finishes again, complete this time.
    let finished = eventually(RUN_TIMEOUT, "the job to complete", || async {
        let job = app.job(job).await;
        (job.status == JobStatus::Completed).then_some(job)
    })
    .await;
    assert_eq!(finished.counts.passed, 4, "{finished:?}");
    assert_eq!(finished.counts.failed, 0, "{finished:?}");
    assert_eq!(finished.stages[0].processed, 4, "{finished:?}");
    assert_eq!(
        standin
            .standin
            .calls()
            .succeeded_by_image
            .get(&sha256_hex(&images[3].1)),
        Some(&1)
    );
    worker.stop().await;
    redriver.stop().await;
}

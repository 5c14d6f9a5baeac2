//! Jobs run end to end: the api, workers and the Cohere stand-in, with the real PostgreSQL and
//! RabbitMQ.

use std::{collections::BTreeMap, time::Duration};

use cohere_standin::sha256_hex;
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use serde_json::{Value, json};
use system_tests::{
    EventReader, RunningWorker, TestApp, distinct_images, passes_first_stage, start_standin,
    two_stages,
};

const RUN_TIMEOUT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_stage_pipeline_over_twenty_images_ends_with_the_predicted_counts_and_tokens() {
    let mut app = TestApp::spawn().await;
    let standin = start_standin(&mut app.settings);
    let images = distinct_images(20);
    let expected_passed = images
        .iter()
        .filter(|(_, bytes)| passes_first_stage(bytes))
        .count() as i64;
    assert!(
        0 < expected_passed && expected_passed < 20,
        "the sample set exercises the filter both ways"
    );

    let library = app.create_library("photos").await;
    app.upload_bytes(library, &images).await;
    let pipeline = app.create_pipeline("survey", two_stages()).await;
    let job = app.submit_job(pipeline, library).await;
    let worker = RunningWorker::start(&app.settings).await;

    let finished = app.wait_for_job(job, RUN_TIMEOUT).await;
    worker.stop().await;
    assert_eq!(finished["status"], "completed", "{finished}");
    assert_eq!(finished["counts"]["total"], 20);
    assert_eq!(finished["counts"]["passed"], expected_passed);
    assert_eq!(finished["counts"]["filtered_out"], 20 - expected_passed);
    assert_eq!(finished["counts"]["failed"], 0);
    assert_eq!(finished["counts"]["running"], 0);
    assert_eq!(finished["percent_complete"], 100.0);
    let stages = finished["stages"].as_array().unwrap();
    assert_eq!(stages[0]["processed"], 20);
    assert_eq!(stages[0]["passed"], expected_passed);
    assert_eq!(stages[0]["filtered_out"], 20 - expected_passed);
    assert_eq!(stages[1]["processed"], expected_passed);
    assert_eq!(stages[1]["passed"], expected_passed);

    // Token totals are the sums of what each call reported.
    let stage_input: i64 = stages
        .iter()
        .map(|s| s["input_tokens"].as_i64().unwrap())
        .sum();
    assert!(stage_input > 0);
    assert_eq!(finished["usage"]["input_tokens"], stage_input);
    let result_input = app
        .query_i64(&format!(
            "SELECT sum(input_tokens)::bigint FROM job_results WHERE job_id = '{job}'"
        ))
        .await;
    assert_eq!(result_input, stage_input);

    // One result per image and stage reached, and the stand-in saw exactly those calls.
    assert_eq!(
        app.query_i64(&format!(
            "SELECT count(*) FROM job_results WHERE job_id = '{job}'"
        ))
        .await,
        20 + expected_passed
    );
    let calls = standin.standin.calls();
    assert_eq!(calls.total as i64, 20 + expected_passed);
    for (_, bytes) in &images {
        let expected = if passes_first_stage(bytes) { 2 } else { 1 };
        assert_eq!(calls.by_image.get(&sha256_hex(bytes)), Some(&expected));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_redelivered_after_its_result_was_stored_does_not_call_cohere_again() {
    let mut app = TestApp::spawn().await;
    let standin = start_standin(&mut app.settings);
    let images = distinct_images(1);
    let library = app.create_library("photos").await;
    app.upload_bytes(library, &images).await;
    let pipeline = app.create_pipeline("survey", two_stages()).await;
    let job = app.submit_job(pipeline, library).await;

    // Process the first-stage message, then "crash" before acknowledging it: the broker
    // would deliver the same message again.
    let first = app.drain_stage_queue(1).await;
    let body = serde_json::to_vec(&first[0].0).unwrap();
    let worker = worker::Worker::build(&app.settings).await.unwrap();
    let ctx = worker.context();
    assert_eq!(
        worker::process::process(&ctx, &body).await,
        worker::process::Disposition::Ack
    );
    assert_eq!(standin.standin.calls().total, 1);
    assert_eq!(
        worker::process::process(&ctx, &body).await,
        worker::process::Disposition::Ack
    );
    assert_eq!(
        standin.standin.calls().total,
        1,
        "the redelivery found its result and moved on"
    );

    let stage_zero_results = app
        .query_i64(&format!(
            "SELECT count(*) FROM job_results WHERE job_id = '{job}' AND stage_index = 0"
        ))
        .await;
    assert_eq!(stage_zero_results, 1);
    let stats: Value = app.get_json(&format!("/api/jobs/{job}")).await;
    assert_eq!(stats["stages"][0]["processed"], 1, "counted once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_one_job_without_analysing_any_image_twice() {
    let mut app = TestApp::spawn().await;
    let standin = start_standin(&mut app.settings);
    let images = distinct_images(24);
    let library = app.create_library("photos").await;
    app.upload_bytes(library, &images).await;
    let pipeline = app.create_pipeline("survey", two_stages()).await;
    let mut settings = app.settings.clone();
    settings.worker.concurrency = 4;
    let first = RunningWorker::start(&settings).await;
    let second = RunningWorker::start(&settings).await;
    let job = app.submit_job(pipeline, library).await;

    let finished = app.wait_for_job(job, RUN_TIMEOUT).await;
    first.stop().await;
    second.stop().await;
    assert_eq!(finished["status"], "completed");
    let calls = standin.standin.calls();
    let per_image: BTreeMap<_, _> = images
        .iter()
        .map(|(_, bytes)| {
            (
                sha256_hex(bytes),
                if passes_first_stage(bytes) { 2 } else { 1 },
            )
        })
        .collect();
    assert_eq!(
        calls.by_image, per_image,
        "each image analysed once per stage it reached"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_high_priority_job_overtakes_a_normal_backlog() {
    let mut app = TestApp::spawn().await;
    let _standin = start_standin(&mut app.settings);
    let images = distinct_images(3);
    let library = app.create_library("photos").await;
    app.upload_bytes(library, &images).await;
    let backlog_library = app.create_library("backlog").await;
    app.add_url_images(backlog_library, 150).await.unwrap();
    let pipeline = app.create_pipeline("one", system_tests::one_stage()).await;

    let backlog = app.submit_job(pipeline, backlog_library).await;
    let urgent: Value = app
        .post("/api/jobs/submit")
        .json(&json!({"pipeline_id": pipeline, "library_id": library, "priority": "high"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let urgent = system_tests::id_of(&urgent);

    // One message at a time, so the order of processing is the order of delivery.
    let mut settings = app.settings.clone();
    settings.worker.concurrency = 1;
    let worker = RunningWorker::start(&settings).await;
    let finished = app.wait_for_job(urgent, RUN_TIMEOUT).await;
    worker.stop().await;
    assert_eq!(finished["status"], "completed");
    // The backlog's URL images point nowhere reachable, so its items fail; what matters is how
    // many of them were taken before the urgent job was done: none but the one in hand.
    let backlog_done = app
        .query_i64(&format!(
            "SELECT count(*) FROM job_items WHERE job_id = '{backlog}' AND status <> 'pending'"
        ))
        .await;
    assert!(
        backlog_done <= 1,
        "{backlog_done} backlog items were processed before the high-priority job"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_sent_events_follow_the_job_in_order_to_its_end() {
    let mut app = TestApp::spawn().await;
    let _standin = start_standin(&mut app.settings);
    let images = distinct_images(6);
    let library = app.create_library("photos").await;
    app.upload_bytes(library, &images).await;
    let pipeline = app.create_pipeline("survey", two_stages()).await;
    let job = app.submit_job(pipeline, library).await;

    let response = app
        .get(&format!("/api/jobs/{job}/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let worker = RunningWorker::start(&app.settings).await;

    let mut reader = EventReader::new(response);
    let mut events: Vec<(String, i64, Value)> = Vec::new();
    let read = async {
        while let Some(event) = reader.next().await {
            events.push((event.event, event.id.parse().unwrap(), event.data));
        }
    };
    tokio::time::timeout(RUN_TIMEOUT, read)
        .await
        .expect("the stream ends when the job does");
    worker.stop().await;

    assert_eq!(events.first().unwrap().0, "snapshot");
    let (last_kind, _, last) = events.last().unwrap();
    assert!(
        last_kind == "job_finished" || last_kind == "snapshot",
        "{last_kind}"
    );
    assert_eq!(last["status"], "completed");
    let seqs: Vec<i64> = events.iter().map(|(_, seq, _)| *seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
    // Progress events list the items that moved; each item finishes once.
    let finished: Vec<&Value> = events
        .iter()
        .filter(|(kind, _, _)| kind == "progress" || kind == "job_finished")
        .flat_map(|(_, _, data)| data["items"].as_array().unwrap().iter())
        .filter(|item| item["item_status"] != "running")
        .collect();
    let distinct: std::collections::BTreeSet<&str> = finished
        .iter()
        .map(|item| item["item_id"].as_str().unwrap())
        .collect();
    assert_eq!(distinct.len(), finished.len(), "no item finishes twice");
    if events.iter().skip(1).all(|(kind, _, _)| kind != "snapshot") {
        assert_eq!(
            finished.len(),
            images.len(),
            "every item's end was streamed"
        );
    } else {
        assert!(!finished.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_delivered_before_its_submission_commits_is_processed_not_dropped() {
    let mut app = TestApp::spawn().await;
    let standin = start_standin(&mut app.settings);
    let library = app.create_library("photos").await;
    app.upload_bytes(library, &distinct_images(2)).await;
    let pipeline = app.create_pipeline("one", system_tests::one_stage()).await;
    let worker = worker::Worker::build(&app.settings).await.unwrap();
    let ctx = worker.context();

    // Hand the messages to the worker from inside the submission, i.e. before its commit, as a
    // worker already consuming the queue would get them.
    let tenant = store::TenantId(
        app.db
            .query_one_raw(Statement::from_string(
                DatabaseBackend::Postgres,
                "SELECT id FROM tenants WHERE name = 'tenant-a'",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get::<uuid::Uuid>("", "id")
            .unwrap(),
    );
    let mut processing = Vec::new();
    let submission = store::jobs::Submission {
        pipeline_id: pipeline,
        library_id: library,
        images: &domain::selection::ImageSelection::ALL,
        priority: domain::job::Priority::Normal,
        idempotency_key: None,
        request_hash: "test",
        preview: None,
    };
    let accepted = store::jobs::submit(&app.db, tenant, submission, |messages| {
        for message in messages {
            let ctx = ctx.clone();
            processing.push(tokio::spawn(async move {
                worker::process::process(&ctx, &message.encode()).await
            }));
        }
        async { Ok::<(), std::convert::Infallible>(()) }
    })
    .await
    .unwrap();
    for task in processing {
        assert_eq!(task.await.unwrap(), worker::process::Disposition::Ack);
    }
    let job = app
        .get_json(&format!("/api/jobs/{}", accepted.job.job.id))
        .await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(standin.standin.calls().total, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_in_a_jobs_events_is_filled_with_a_fresh_snapshot() {
    use domain::event::{JOB_EVENT_VERSION, JobCounts, JobEvent, JobEventKind};
    let app = TestApp::spawn().await;
    let library = app.create_library("photos").await;
    app.upload(library, &["horse.png"]).await;
    let pipeline = app
        .create_pipeline("describe", system_tests::one_stage())
        .await;
    let job = app.submit_job(pipeline, library).await;
    let response = app
        .get(&format!("/api/jobs/{job}/events"))
        .send()
        .await
        .unwrap();
    let mut reader = EventReader::new(response);
    assert_eq!(reader.next().await.unwrap().event, "snapshot");

    // Two changes happened, and only the second one's event reaches this replica.
    app.db
        .execute_unprepared(&format!(
            "UPDATE jobs SET event_seq = 2, status = 'running' WHERE id = '{job}'"
        ))
        .await
        .unwrap();
    let tenant_id = app
        .db
        .query_one_raw(Statement::from_string(
            DatabaseBackend::Postgres,
            format!("SELECT tenant_id FROM jobs WHERE id = '{job}'"),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "tenant_id")
        .unwrap();
    let event = JobEvent {
        v: JOB_EVENT_VERSION,
        job_id: job,
        tenant_id,
        seq: 2,
        kind: JobEventKind::Progress { items: Vec::new() },
        status: domain::job::JobStatus::Running,
        counts: JobCounts::default(),
    };
    let publisher = broker::Publisher::new(
        app.settings.amqp.url.clone(),
        broker::Topology::from_settings(&app.settings),
        Duration::from_secs(5),
    );
    // Published until the api's listener (bound in the background at start-up) hears it.
    let next = tokio::time::timeout(RUN_TIMEOUT, async {
        let publishing = async {
            loop {
                publisher.publish_event(&event).await.unwrap();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        tokio::select! {
            next = reader.next() => next.expect("the stream goes on"),
            _ = publishing => unreachable!(),
        }
    })
    .await
    .expect("an event after the published one");
    assert_eq!(
        (next.event.as_str(), next.id.as_str()),
        ("snapshot", "2"),
        "the missing change is covered by the job as stored: {next:?}"
    );
    assert_eq!(next.data["status"], "running", "{next:?}");
}

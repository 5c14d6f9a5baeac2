//! Jobs run end to end: the api, workers and the Cohere stand-in, with the real PostgreSQL and
//! RabbitMQ.

use std::{collections::BTreeMap, time::Duration};

use api::routes::jobs::Job;
use cohere_standin::sha256_hex;
use domain::{
    job::{JobStatus, Priority},
    message::StageMessage,
};
use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use system_tests::{
    EventReader, RUN_TIMEOUT, RunningWorker, TestApp, distinct_images, eventually,
    passes_first_stage, start_standin, two_stages,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_stage_pipeline_over_twenty_images_ends_with_the_predicted_counts_and_tokens() {
    let mut app = TestApp::spawn().await;
    let standin = start_standin(&mut app.settings);
    let images = distinct_images(20);
    let expected_passed = images
        .iter()
        .filter(|(_, bytes)| passes_first_stage(bytes))
        .count() as i32;
    assert!(
        0 < expected_passed && expected_passed < 20,
        "the sample set exercises the filter both ways"
    );

    let job = app.submit_job_over(&images, two_stages()).await;
    let worker = RunningWorker::start(&app.settings).await;

    let finished = app.wait_for_job(job).await;
    worker.stop().await;
    assert_eq!(finished.status, JobStatus::Completed, "{finished:?}");
    assert_eq!(finished.counts.total, 20);
    assert_eq!(finished.counts.passed, expected_passed);
    assert_eq!(finished.counts.filtered_out, 20 - expected_passed);
    assert_eq!(finished.counts.failed, 0);
    assert_eq!(finished.counts.running, 0);
    assert_eq!(finished.percent_complete, 100.0);
    let stages = &finished.stages;
    assert_eq!(stages[0].processed, 20);
    assert_eq!(stages[0].passed, expected_passed);
    assert_eq!(stages[0].filtered_out, 20 - expected_passed);
    assert_eq!(stages[1].processed, expected_passed);
    assert_eq!(stages[1].passed, expected_passed);
    let expected_passed = i64::from(expected_passed);

    // Token totals are the sums of what each call reported.
    let stage_input: i64 = stages.iter().map(|s| s.input_tokens).sum();
    assert!(stage_input > 0);
    assert_eq!(finished.usage.input_tokens, stage_input);
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
    // An image that goes on to the second stage: its item is still running after the first.
    let image = distinct_images(8)
        .into_iter()
        .find(|(_, bytes)| passes_first_stage(bytes))
        .expect("an image that passes the first stage");
    let job = app.submit_job_over(&[image], two_stages()).await;
    let first = app.drain_stage_queue(1).await;
    let message = StageMessage::decode(&serde_json::to_vec(&first[0].0).unwrap()).unwrap();

    // One call a minute: the second stage's call waits for the rate limiter until the test is
    // over, so the item stays at its second stage meanwhile.
    let mut settings = app.settings.clone();
    settings.cohere.requests_per_minute = Some(1);
    settings.worker.shutdown_grace_seconds = 1;
    let worker = RunningWorker::start(&settings).await;
    let stages_written = |at_least: u64| {
        let worker = &worker;
        eventually(
            RUN_TIMEOUT,
            "the worker to write the stage",
            move || async move {
                let text = worker.metrics().await;
                let written = text
                    .lines()
                    .find_map(|line| line.strip_prefix("worker_stage_duration_seconds_count "))
                    .and_then(|value| value.parse::<u64>().ok());
                written.filter(|written| *written >= at_least)
            },
        )
    };
    let publisher = broker::Publisher::new(
        app.settings.amqp.url.clone(),
        broker::Topology::from_settings(&app.settings),
        Duration::from_secs(5),
    );

    publisher
        .publish_prioritised(&[(message, Priority::Normal)])
        .await
        .unwrap();
    stages_written(1).await;
    assert_eq!(standin.standin.calls().received, 1);
    // The same message again, as the broker delivers it when a worker stopped before its ack.
    publisher
        .publish_prioritised(&[(message, Priority::Normal)])
        .await
        .unwrap();
    stages_written(2).await;
    assert_eq!(
        standin.standin.calls().received,
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
    worker.stop().await;
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

    let finished = app.wait_for_job(job).await;
    first.stop().await;
    second.stop().await;
    assert_eq!(finished.status, JobStatus::Completed);
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
    let urgent: Job = app
        .post_as(
            "/api/jobs/submit",
            &json!({"pipeline_id": pipeline, "library_id": library, "priority": "high"}),
            StatusCode::ACCEPTED,
        )
        .await;
    let urgent = urgent.id;

    // One message at a time, so the order of processing is the order of delivery.
    let mut settings = app.settings.clone();
    settings.worker.concurrency = 1;
    let worker = RunningWorker::start(&settings).await;
    let finished = app.wait_for_job(urgent).await;
    worker.stop().await;
    assert_eq!(finished.status, JobStatus::Completed);
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
    let job = app.submit_job_over(&images, two_stages()).await;

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
    let tenant_id = app.tenant_id("tenant-a").await;
    let event = JobEvent {
        v: JOB_EVENT_VERSION,
        job_id: job,
        tenant_id,
        seq: 2,
        kind: JobEventKind::Progress { items: Vec::new() },
        status: domain::job::JobStatus::Running,
        counts: JobCounts::default(),
        stop_reason: None,
    };
    let next = reader
        .publish_until(&app.publisher(), &event, |_| true)
        .await;
    assert_eq!(
        (next.event.as_str(), next.id.as_str()),
        ("snapshot", "2"),
        "the missing change is covered by the job as stored: {next:?}"
    );
    assert_eq!(next.data["status"], "running", "{next:?}");
}

//! `/metrics` on the api, the re-driver and the worker: the series the dashboards and alert
//! rules read, with the labels they expect.

use std::time::Duration;

use serde_json::json;
use system_tests::{
    RunningWorker, TestApp, distinct_images, eventually, fail_every_call_transiently, one_stage,
    start_standin,
};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(30);

/// The value of one series (`name{labels}` exactly as exposed) in Prometheus text.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok()).flatten()
        })
}

async fn scrape(url: &str) -> String {
    let response = reqwest::get(url).await.expect("GET /metrics");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"),
        "Prometheus text format"
    );
    response.text().await.expect("metrics text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_requests_are_counted_by_route_pattern_and_status_never_by_id() {
    let app = TestApp::spawn().await;
    let unknown = Uuid::new_v4();
    for _ in 0..2 {
        let response = app
            .get(&format!("/api/jobs/{unknown}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404);
    }
    let response = app.get("/api/no-such-thing").send().await.unwrap();
    assert_eq!(response.status(), 404);

    let text = scrape(&app.url("/metrics")).await;
    assert_eq!(
        sample(
            &text,
            r#"http_server_request_duration_seconds_count{method="GET",route="/api/jobs/{job_id}",status="404"}"#
        ),
        Some(2.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            r#"http_server_request_duration_seconds_bucket{method="GET",route="/api/jobs/{job_id}",status="404",le="+Inf"}"#
        ) == Some(2.0),
        "a histogram: {text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"http_server_request_duration_seconds_count{method="GET",route="unmatched",status="404"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert!(!text.contains(&unknown.to_string()), "no id in a label");
    assert!(
        !text.contains("no-such-thing"),
        "no unmatched path in a label"
    );
    assert_eq!(
        sample(
            &text,
            &format!(
                r#"build_info{{service="api",version="{}"}}"#,
                env!("CARGO_PKG_VERSION")
            )
        ),
        Some(1.0),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submitted_jobs_are_counted_by_priority_and_replays_are_not() {
    let app = TestApp::spawn().await;
    let library = app.create_library("photos").await;
    app.upload_bytes(library, &distinct_images(2)).await;
    let pipeline = app.create_pipeline("one", one_stage()).await;
    let body = json!({"pipeline_id": pipeline, "library_id": library, "priority": "high"});
    for _ in 0..2 {
        let response = app
            .post("/api/jobs/submit")
            .header("Idempotency-Key", "metrics-once")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
    }
    app.submit_job(pipeline, library).await;

    let text = scrape(&app.url("/metrics")).await;
    assert_eq!(
        sample(&text, r#"api_jobs_submitted_total{priority="high"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"api_jobs_submitted_total{priority="normal"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"api_jobs_submitted_total{priority="low"}"#),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"http_server_request_duration_seconds_count{method="POST",route="/api/jobs/submit",status="202"}"#
        ),
        Some(3.0),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_event_stream_is_counted_until_its_client_goes_away() {
    let app = TestApp::spawn().await;
    let library = app.create_library("photos").await;
    app.upload_bytes(library, &distinct_images(1)).await;
    let pipeline = app.create_pipeline("one", one_stage()).await;
    // No worker: the job stays queued, so its stream stays open.
    let job = app.submit_job(pipeline, library).await;
    let metrics = app.url("/metrics");
    let open =
        || async { sample(&scrape(&metrics).await, "api_event_streams_open").expect("the gauge") };
    assert_eq!(open().await, 0.0);

    let streams = [
        app.get(&format!("/api/jobs/{job}/events"))
            .send()
            .await
            .unwrap(),
        app.get(&format!("/api/jobs/{job}/events"))
            .send()
            .await
            .unwrap(),
    ];
    assert!(streams.iter().all(|s| s.status() == 200));
    assert_eq!(open().await, 2.0);

    let [first, second] = streams;
    drop(first);
    // The server notices the disconnection at its next write (a keep-alive within 5 s).
    eventually(WAIT, "the closed stream to be uncounted", || async {
        (open().await == 1.0).then_some(())
    })
    .await;
    drop(second);
    eventually(WAIT, "every stream to be uncounted", || async {
        (open().await == 0.0).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redriver_reports_queue_depths_and_the_oldest_waiting_item() {
    let app = TestApp::spawn().await;
    let library = app.create_library("photos").await;
    app.upload_bytes(library, &distinct_images(5)).await;
    let pipeline = app.create_pipeline("one", one_stage()).await;
    // No worker: the five first-stage messages stay in the stage queue.
    app.submit_job(pipeline, library).await;

    let mut settings = app.settings.clone();
    settings.redriver.host = "127.0.0.1".into();
    settings.redriver.port = 0;
    settings.redriver.auto_redrive = false;
    let redriver = redriver::Application::build(&settings)
        .await
        .expect("build the redriver")
        .start();
    let metrics = format!("http://127.0.0.1:{}/metrics", redriver.port());
    let prefix = &app.settings.amqp.prefix;

    let text = eventually(WAIT, "the stage queue's depth", || async {
        let text = scrape(&metrics).await;
        (sample(
            &text,
            &format!(r#"queue_messages{{queue="{prefix}.stage"}}"#),
        ) == Some(5.0))
        .then_some(text)
    })
    .await;
    assert_eq!(
        sample(
            &text,
            &format!(r#"queue_messages{{queue="{prefix}.dead"}}"#)
        ),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!(r#"queue_messages{{queue="{prefix}.delay.1000ms"}}"#)
        ),
        Some(0.0),
        "{text}"
    );
    let age = sample(&text, "queue_oldest_pending_seconds").expect("the queue age");
    assert!(age > 0.0, "five items wait: {text}");
    assert_eq!(
        sample(&text, r#"redriver_redrives_total{trigger="operator"}"#),
        Some(0.0),
        "{text}"
    );
    assert!(text.contains(r#"build_info{service="redriver","#), "{text}");
    redriver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_reports_tokens_stage_durations_and_cohere_latency() {
    let mut app = TestApp::spawn().await;
    let standin = start_standin(&mut app.settings);
    let library = app.create_library("photos").await;
    app.upload_bytes(library, &distinct_images(3)).await;
    let pipeline = app.create_pipeline("one", one_stage()).await;
    let job = app.submit_job(pipeline, library).await;
    let worker = RunningWorker::start(&app.settings).await;
    let finished = app.wait_for_job(job, WAIT).await;
    assert_eq!(finished["status"], "completed", "{finished}");

    let text = worker.metrics().await;
    let input = sample(&text, r#"worker_tokens_total{kind="input"}"#).expect("input tokens");
    assert_eq!(
        input,
        finished["usage"]["input_tokens"].as_f64().unwrap(),
        "{text}"
    );
    let output = sample(&text, r#"worker_tokens_total{kind="output"}"#).expect("output tokens");
    assert!(output > 0.0, "{text}");
    assert_eq!(
        sample(&text, "worker_stage_duration_seconds_count"),
        Some(3.0),
        "{text}"
    );
    assert!(sample(&text, "worker_stage_duration_seconds_sum").unwrap() > 0.0);
    assert_eq!(
        sample(
            &text,
            r#"worker_cohere_request_duration_seconds_count{outcome="ok"}"#
        ),
        Some(standin.standin.calls().total as f64),
        "{text}"
    );
    assert_eq!(
        sample(&text, "worker_rate_limiter_wait_seconds_count"),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"worker_cohere_calls_total{outcome="ok"}"#),
        Some(3.0)
    );
    assert_eq!(sample(&text, "worker_cost_usd_total"), Some(0.0), "{text}");
    assert!(text.contains(r#"build_info{service="worker","#), "{text}");
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redriver_counts_dead_letters_by_class_and_redrives_by_trigger() {
    let mut app = TestApp::spawn().await;
    let standin = start_standin(&mut app.settings);
    // A 503 fails the item at once (one attempt of one try): it is dead-lettered.
    fail_every_call_transiently(&mut app.settings, &standin, 1, 1);
    let mut settings = app.settings.clone();
    settings.redriver.host = "127.0.0.1".into();
    settings.redriver.port = 0;
    settings.redriver.auto_redrive = false;
    let redriver = redriver::Application::build(&settings)
        .await
        .expect("build the redriver")
        .start();
    let metrics = format!("http://127.0.0.1:{}/metrics", redriver.port());
    let library = app.create_library("photos").await;
    app.upload_bytes(library, &distinct_images(2)).await;
    let pipeline = app.create_pipeline("one", one_stage()).await;
    let job = app.submit_job(pipeline, library).await;
    let worker = RunningWorker::start(&app.settings).await;
    app.wait_for_job(job, WAIT).await;
    eventually(WAIT, "two transient dead letters drained", || async {
        let text = scrape(&metrics).await;
        (sample(&text, r#"redriver_dead_letters_total{class="transient"}"#) == Some(2.0))
            .then_some(())
    })
    .await;

    let request = redriver::RedriveRequest {
        filter: redriver::DeadLetterFilter::default(),
        dry_run: false,
        limit: Some(1),
    };
    redriver::redrive(&redriver.context(), &request, "operator", &mut |_| {})
        .await
        .unwrap();
    let text = scrape(&metrics).await;
    assert_eq!(
        sample(&text, r#"redriver_redrives_total{trigger="operator"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"redriver_redrives_total{trigger="automatic"}"#),
        Some(0.0),
        "{text}"
    );
    worker.stop().await;
    redriver.stop().await;
}

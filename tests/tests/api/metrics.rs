//! The api's `/metrics`: the series the dashboards and alert rules read, with the labels they
//! expect.

use reqwest::StatusCode;
use serde_json::json;
use system_tests::{
    RUN_TIMEOUT, TestApp, distinct_images, eventually,
    metrics::{assert_sample, sample, scrape},
    one_stage,
};
use uuid::Uuid;

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
    assert_sample(
        &text,
        r#"http_server_request_duration_seconds_count{method="GET",route="/api/jobs/{job_id}",status="404"}"#,
        2.0,
    );
    assert!(
        sample(
            &text,
            r#"http_server_request_duration_seconds_bucket{method="GET",route="/api/jobs/{job_id}",status="404",le="+Inf"}"#
        ) == Some(2.0),
        "a histogram: {text}"
    );
    assert_sample(
        &text,
        r#"http_server_request_duration_seconds_count{method="GET",route="unmatched",status="404"}"#,
        1.0,
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
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }
    app.submit_job(pipeline, library).await;

    let text = scrape(&app.url("/metrics")).await;
    assert_sample(&text, r#"api_jobs_submitted_total{priority="high"}"#, 1.0);
    assert_sample(&text, r#"api_jobs_submitted_total{priority="normal"}"#, 1.0);
    assert_sample(&text, r#"api_jobs_submitted_total{priority="low"}"#, 0.0);
    assert_sample(
        &text,
        r#"http_server_request_duration_seconds_count{method="POST",route="/api/jobs/submit",status="202"}"#,
        3.0,
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
    eventually(RUN_TIMEOUT, "the closed stream to be uncounted", || async {
        (open().await == 1.0).then_some(())
    })
    .await;
    drop(second);
    eventually(RUN_TIMEOUT, "every stream to be uncounted", || async {
        (open().await == 0.0).then_some(())
    })
    .await;
}

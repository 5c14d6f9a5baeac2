//! `GET /api/health`: the api's readiness and the workers' circuit breakers, as the
//! dashboard's health strip reads them.

use reqwest::Method;
use serde_json::Value;
use system_tests::{
    RUN_TIMEOUT, RunningWorker, TestApp, accept_only_key, eventually, one_stage, start_standin,
};

async fn health(app: &TestApp) -> Value {
    let response = app.get("/api/health").send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn record_breaker(app: &TestApp, worker: &str, state: &str, reason: &str, age: &str) {
    app.query_i64(&format!(
        "WITH r AS (INSERT INTO circuit_breakers (worker_id, model, state, reason, changed_at, open_until) \
         VALUES ('{worker}', 'command-a-vision-07-2025', '{state}', '{reason}', now() - interval '{age}', \
                 now() - interval '{age}' + interval '5 seconds') RETURNING 1) SELECT count(*) FROM r"
    ))
    .await;
}

#[tokio::test]
async fn health_is_ready_with_no_breakers_and_needs_a_key() {
    let app = TestApp::spawn().await;
    let anonymous = app
        .anonymous(Method::GET, "/api/health")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let body = health(&app).await;
    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["broker"], "ok");
    assert_eq!(body["workers"]["paused"], false);
    assert_eq!(body["workers"]["key_rejected"], false);
    assert_eq!(body["workers"]["breakers"], serde_json::json!([]));
}

#[tokio::test]
async fn an_open_breaker_pauses_the_workers_and_a_stopped_workers_leftover_does_not() {
    let app = TestApp::spawn().await;
    // A worker that stopped an hour ago with its breaker open: no longer counts.
    record_breaker(
        &app,
        "gone-1",
        "open",
        "systemic failure: Cohere answered HTTP 401",
        "1 hour",
    )
    .await;
    let body = health(&app).await;
    assert_eq!(body["workers"]["paused"], false, "{body}");
    assert_eq!(body["status"], "ready");

    // A live worker's breaker opens on an outage: paused, but the key is fine.
    record_breaker(
        &app,
        "live-1",
        "open",
        "6 of the last 10 calls failed (last: Cohere answered HTTP 503)",
        "1 second",
    )
    .await;
    record_breaker(&app, "live-2", "closed", "probe succeeded", "2 seconds").await;
    let body = health(&app).await;
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(body["workers"]["paused"], true);
    assert_eq!(body["workers"]["key_rejected"], false);
    let breakers = body["workers"]["breakers"].as_array().unwrap();
    assert_eq!(breakers.len(), 1, "one entry per model: {body}");
    assert_eq!(breakers[0]["state"], "open", "the worst state wins");
    assert!(breakers[0]["open_until"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_cohere_refuses_shows_as_paused_with_the_key_rejected() {
    let mut app = TestApp::spawn().await;
    let standin = start_standin(&mut app.settings);
    app.settings.worker.concurrency = 2;
    accept_only_key(&standin, "rotated-key");
    let library = app.create_library("photos").await;
    app.upload(library, &["chelsea.png"]).await;
    let pipeline = app.create_pipeline("describe", one_stage()).await;
    app.submit_job(pipeline, library).await;
    let worker = RunningWorker::start(&app.settings).await;

    let body = eventually(RUN_TIMEOUT, "the workers paused", || async {
        let body = health(&app).await;
        (body["workers"]["paused"] == true).then_some(body)
    })
    .await;
    assert_eq!(body["workers"]["key_rejected"], true, "{body}");
    assert_eq!(body["status"], "degraded");
    let breaker = &body["workers"]["breakers"][0];
    assert_eq!(breaker["model"], "command-a-vision-07-2025");
    assert_eq!(breaker["state"], "open");
    assert!(
        breaker["reason"].as_str().unwrap().contains("HTTP 401"),
        "{body}"
    );
    assert!(breaker["open_until"].is_string(), "{body}");
    worker.stop().await;
}

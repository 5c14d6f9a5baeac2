//! RabbitMQ restarted in the middle of a job: the api and the worker reconnect by themselves,
//! the job completes with every item accounted for, and a job submitted afterwards completes
//! too (invariants 1, 2 and 4).

use std::time::{Duration, Instant};

use serde_json::json;
use system_tests::{TestApp, eventually, start_standin, two_stages};

use crate::support::{
    ServicesGuard, Tuning, WorkerProcess, assert_job_consistent, dead_letters_of,
    ensure_services_up, job_finished, note, result_count, set_latency, submit_two_stage_job,
    wait_until_finished,
};

const IMAGES: usize = 200;
const OUTAGE: Duration = Duration::from_secs(3);
const RUN_TIMEOUT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_rabbitmq_restarts_mid_job_the_api_and_the_worker_reconnect_and_nothing_is_lost() {
    ensure_services_up();
    let mut app = TestApp::spawn().await;
    let standin = start_standin(&mut app.settings);
    set_latency(&standin, 20, 50);
    let services = ServicesGuard::new();
    let pipeline = app.create_pipeline("survey", two_stages()).await;
    let first = submit_two_stage_job(&app, pipeline, IMAGES).await;
    let mut worker = WorkerProcess::start("w", &app.settings, Tuning::with_concurrency(2));
    let expected = first.expected_results();
    eventually(RUN_TIMEOUT, "a fifth of the results", || async {
        (result_count(&app, first.job).await >= expected / 5).then_some(())
    })
    .await;

    services.stop_rabbitmq().await;
    let stopped = Instant::now();
    let stored = result_count(&app, first.job).await;
    assert!(
        stored < expected && !job_finished(&app, first.job).await,
        "the job was still running when RabbitMQ stopped ({stored} of {expected} results)"
    );
    // While the broker is down a submission is refused with a clear error and leaves nothing.
    let jobs_before = app.query_i64("SELECT count(*) FROM jobs").await;
    let refused = app
        .post("/api/jobs/submit")
        .json(&json!({ "pipeline_id": pipeline, "library_id": first.library }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    let problem: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(problem["code"], "service_unavailable", "{problem}");
    assert_eq!(
        app.query_i64("SELECT count(*) FROM jobs").await,
        jobs_before,
        "a refused submission stores no job"
    );
    tokio::time::sleep(OUTAGE.saturating_sub(stopped.elapsed())).await;
    services.start_rabbitmq().await;
    note(format!(
        "RabbitMQ down for {:.1?} with {stored} of {expected} results stored",
        stopped.elapsed()
    ));

    wait_until_finished(&app, first.job, &mut worker, RUN_TIMEOUT).await;
    assert_job_consistent(&app, &first).await;
    assert!(
        dead_letters_of(&app, first.job).await.is_empty(),
        "a broker restart dead-letters nothing"
    );

    // The api's publisher reconnected: a new submission is accepted and the same worker
    // process, reconnected, runs it.
    let second = submit_two_stage_job(&app, pipeline, 20).await;
    wait_until_finished(&app, second.job, &mut worker, RUN_TIMEOUT).await;
    assert_job_consistent(&app, &second).await;
    worker.assert_alive("after RabbitMQ restarted (it should reconnect, not exit)");
    assert_eq!(worker.starts, 1, "the worker was never restarted");
    let consumed = worker.log_text().matches("consuming").count();
    assert!(
        consumed >= 2,
        "the worker lost its connection and consumed again: {consumed} starts of consuming"
    );
}

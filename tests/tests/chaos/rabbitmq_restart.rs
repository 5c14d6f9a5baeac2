//! RabbitMQ restarted in the middle of a job: the api and the worker reconnect by themselves,
//! the job completes with every item accounted for, and a job submitted afterwards completes
//! too (invariants 1, 2 and 4).

use std::time::{Duration, Instant};

use serde_json::json;

use system_tests::{RUN_TIMEOUT, process::note};

use crate::underway::JobUnderway;

const IMAGES: usize = 200;
const OUTAGE: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_rabbitmq_restarts_mid_job_the_api_and_the_worker_reconnect_and_nothing_is_lost() {
    let mut run = JobUnderway::start(IMAGES, RUN_TIMEOUT).await;
    let (stored, expected) = (run.stored, run.job.expected_results());
    run.services.stop_rabbitmq().await;
    let stopped = Instant::now();
    // While the broker is down a submission is refused with a clear error and leaves nothing.
    let app = &run.app;
    let jobs_before = app.query_i64("SELECT count(*) FROM jobs").await;
    let refused = app
        .post("/api/jobs/submit")
        .json(&json!({ "pipeline_id": run.job.pipeline, "library_id": run.job.library }))
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
    run.services.start_rabbitmq().await;
    note(format!(
        "RabbitMQ down for {:.1?} with {stored} of {expected} results stored",
        stopped.elapsed()
    ));

    // The api's publisher reconnected (the second submission is accepted) and the same worker
    // process, reconnected, runs both jobs.
    run.assert_recovered("RabbitMQ", RUN_TIMEOUT).await;
    let consumed = run.worker.log_text().matches("consuming").count();
    assert!(
        consumed >= 2,
        "the worker lost its connection and consumed again: {consumed} starts of consuming"
    );
}

//! RabbitMQ restarted in the middle of a job: the api and the worker reconnect by themselves,
//! the job completes with every item accounted for, and a job submitted afterwards completes
//! too, and so does one submitted while the broker was down (invariants 1, 2 and 4).

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
    // While the broker is down a submission is still accepted: nothing is published at
    // submission, the job waits in PostgreSQL and the scheduler releases it once the broker is
    // back.
    let app = &run.app;
    let some_images: Vec<String> = app
        .sql_rows(
            "SELECT id::text AS id FROM images WHERE library_id = $1 ORDER BY created_at LIMIT 5",
            [run.job.library.into()],
        )
        .await
        .iter()
        .map(|row| row.try_get::<String>("", "id").unwrap())
        .collect();
    let accepted = app
        .post("/api/jobs/submit")
        .json(&json!({
            "pipeline_id": run.job.pipeline,
            "library_id": run.job.library,
            "image_ids": some_images,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 202);
    let during: serde_json::Value = accepted.json().await.unwrap();
    let during: uuid::Uuid = during["id"].as_str().unwrap().parse().unwrap();
    tokio::time::sleep(OUTAGE.saturating_sub(stopped.elapsed())).await;
    run.services.start_rabbitmq().await;
    note(format!(
        "RabbitMQ down for {:.1?} with {stored} of {expected} results stored",
        stopped.elapsed()
    ));

    // The api's publisher reconnected (the second submission is accepted) and the same worker
    // process, reconnected, runs both jobs.
    run.assert_recovered("RabbitMQ", RUN_TIMEOUT).await;
    let during = run.app.wait_for_job(during).await;
    assert_eq!(
        (during.status, during.counts.total),
        (domain::job::JobStatus::Completed, 5),
        "the job submitted during the outage ran once the broker was back"
    );
    let consumed = run.worker.log_text().matches("consuming").count();
    assert!(
        consumed >= 2,
        "the worker lost its connection and consumed again: {consumed} starts of consuming"
    );
}

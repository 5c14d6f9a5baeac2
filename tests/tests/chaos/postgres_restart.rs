//! PostgreSQL restarted in the middle of a job: the worker and the api ride it out, the job
//! completes with exactly one result per item and stage reached, and nothing is dead-lettered
//! (invariants 2 to 4).

use std::time::{Duration, Instant};

use system_tests::{TestApp, eventually, start_standin, two_stages};

use crate::support::{
    ServicesGuard, Tuning, WorkerProcess, assert_job_consistent, dead_letters_of,
    ensure_services_up, job_finished, note, result_count, set_latency, submit_two_stage_job,
    wait_until_finished,
};

const IMAGES: usize = 200;
/// Longer than the pools' acquire timeout (5 s by default): the worker's queries fail, rather
/// than only wait, while the database is down.
const OUTAGE: Duration = Duration::from_secs(8);
const RUN_TIMEOUT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_postgresql_restarts_mid_job_the_job_completes_with_every_result_once() {
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

    let stored = result_count(&app, first.job).await;
    assert!(
        stored < expected && !job_finished(&app, first.job).await,
        "the job was still running when PostgreSQL stopped ({stored} of {expected} results)"
    );
    services.stop_postgres().await;
    let stopped = Instant::now();
    tokio::time::sleep(OUTAGE.saturating_sub(stopped.elapsed())).await;
    services.start_postgres().await;
    note(format!(
        "PostgreSQL down for {:.1?} with about {stored} of {expected} results stored",
        stopped.elapsed()
    ));

    wait_until_finished(&app, first.job, &mut worker, RUN_TIMEOUT).await;
    assert_job_consistent(&app, &first).await;
    assert!(
        dead_letters_of(&app, first.job).await.is_empty(),
        "a database restart dead-letters nothing"
    );

    // The api's pool reconnected too: a new submission is stored and runs.
    let second = submit_two_stage_job(&app, pipeline, 20).await;
    wait_until_finished(&app, second.job, &mut worker, RUN_TIMEOUT).await;
    assert_job_consistent(&app, &second).await;
    worker.assert_alive("after PostgreSQL restarted (it should reconnect, not exit)");
    assert_eq!(worker.starts, 1, "the worker was never restarted");
}

//! PostgreSQL restarted in the middle of a job: the worker and the api ride it out, the job
//! completes with exactly one result per item and stage reached, and nothing is dead-lettered
//! (invariants 2 to 4).

use std::time::{Duration, Instant};

use system_tests::{RUN_TIMEOUT, process::note};

use crate::underway::JobUnderway;

const IMAGES: usize = 200;
/// Longer than the pools' acquire timeout (5 s by default): the worker's queries fail, rather
/// than only wait, while the database is down.
const OUTAGE: Duration = Duration::from_secs(8);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_postgresql_restarts_mid_job_the_job_completes_with_every_result_once() {
    let mut run = JobUnderway::start(IMAGES, RUN_TIMEOUT).await;
    let stored = run.stored;
    let expected = run.job.expected_results();
    run.services.stop_postgres().await;
    let stopped = Instant::now();
    tokio::time::sleep(OUTAGE.saturating_sub(stopped.elapsed())).await;
    run.services.start_postgres().await;
    note(format!(
        "PostgreSQL down for {:.1?} with about {stored} of {expected} results stored",
        stopped.elapsed()
    ));
    // The api's pool reconnected too: the second submission is stored and runs.
    run.assert_recovered("PostgreSQL", RUN_TIMEOUT).await;
}

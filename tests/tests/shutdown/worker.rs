//! A worker process gets SIGTERM in the middle of a job, the stand-in answering slowly: it
//! stops consuming, finishes the calls it has in flight, writes and acknowledges them, hands
//! back what it had not started, and exits 0 within its grace period. Another worker then
//! finishes the job with every item in exactly one terminal state and one result per stage
//! it reached, and Cohere was never asked twice for the same thing (nothing was in flight
//! when the process ended).

use std::time::Duration;

use cohere_standin::sha256_hex;
use system_tests::{
    RUN_TIMEOUT, TestApp, passes_first_stage,
    process::{ServiceProcess, Tuning, WORKER_GRACE, note},
    runs::{
        assert_job_consistent, dead_letters_of, job_finished, result_count, submit_two_stage_job,
        wait_until_finished,
    },
    set_latency, start_standin,
};

use crate::terminate_and_expect_clean_exit;

const IMAGES: usize = 60;
/// The stand-in's latency (uniform, milliseconds): calls are in flight at the signal, and
/// finish well within the grace period.
const LATENCY_MS: (u64, u64) = (200, 300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stopped_with_sigterm_mid_job_finishes_its_calls_and_loses_nothing() {
    let mut app = TestApp::spawn().await;
    let standin = start_standin(&mut app.settings);
    set_latency(&standin, LATENCY_MS.0, LATENCY_MS.1);
    let submitted = submit_two_stage_job(&app, IMAGES).await;
    let job = submitted.job;
    let expected = submitted.expected_results();

    let mut first = ServiceProcess::start("first", &app.settings, Tuning::with_concurrency(4));
    system_tests::eventually(RUN_TIMEOUT, "some results", || async {
        (result_count(&app, job).await >= 8).then_some(())
    })
    .await;
    let before = result_count(&app, job).await;
    assert!(
        before < expected && !job_finished(&app, job).await,
        "the job is still running at the signal ({before} of {expected} results)"
    );

    terminate_and_expect_clean_exit(&mut first, "worker", WORKER_GRACE + Duration::from_secs(5))
        .await;
    let log = first.log_text();
    assert!(
        log.contains("stopping: no new messages"),
        "the worker stopped consuming: {log}"
    );
    assert!(
        !log.contains("grace period over"),
        "the calls in flight finished within the grace period: {log}"
    );
    let stopped_at = result_count(&app, job).await;
    assert!(stopped_at < expected, "work was left for the second worker");

    let mut second = ServiceProcess::start("second", &app.settings, Tuning::with_concurrency(4));
    wait_until_finished(&app, job, &mut second, RUN_TIMEOUT).await;
    assert_job_consistent(&app, &submitted).await;
    assert!(
        dead_letters_of(&app, job).await.is_empty(),
        "a stopped worker dead-letters nothing"
    );

    // Every call the first worker started was finished and acknowledged before it exited:
    // no image was analysed twice at a stage.
    let calls = standin.standin.calls();
    let mut repeated = Vec::new();
    for bytes in submitted.images.values() {
        let expected = if passes_first_stage(bytes) { 2 } else { 1 };
        let sha = sha256_hex(bytes);
        let succeeded = calls.succeeded_by_image.get(&sha).copied().unwrap_or(0);
        assert!(
            succeeded >= expected,
            "{sha}: {succeeded} of {expected} calls"
        );
        if succeeded > expected {
            repeated.push(format!("{sha}: {succeeded} calls for {expected} results"));
        }
    }
    note(format!(
        "worker: {before} results at SIGTERM, {stopped_at} at exit, {expected} in all; {} repeated",
        repeated.len()
    ));
    assert!(
        repeated.is_empty(),
        "calls repeated after a graceful stop: {repeated:?}"
    );
}

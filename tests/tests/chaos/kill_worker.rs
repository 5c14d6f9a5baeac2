//! A worker process killed with SIGKILL every few seconds while another keeps working: the job
//! completes, every item has exactly one result per stage it reached, and Cohere is asked again
//! only for the calls the killed process had in flight (invariants 2 to 4).

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use cohere_standin::sha256_hex;
use system_tests::{RunningWorker, TestApp, passes_first_stage, set_latency, start_standin};

use system_tests::{
    process::{ServiceProcess, Tuning, note},
    runs::{assert_job_consistent, dead_letters_of, job_finished, submit_two_stage_job},
};

use crate::services::ensure_services_up;

/// More than the scheduler's window (128 by default): items are released as others finish
/// while workers die.
const IMAGES: usize = 500;
/// Worker A, the one killed: calls in flight at once, and deliveries held (the same, so at most
/// that many deliveries are in its hands when it dies).
const KILLED: Tuning = Tuning {
    concurrency: 3,
    prefetch: 3,
};
/// Worker B, never killed (in this process).
const SURVIVOR_CONCURRENCY: usize = 1;
/// Time between kills (the process is restarted at once after each).
const KILL_INTERVALS_MS: [u64; 5] = [2_000, 2_000, 2_000, 2_500, 3_000];
/// Longer than a job is given elsewhere (`RUN_TIMEOUT`): every kill loses the calls in flight
/// and a process start.
const KILLED_JOB_TIMEOUT: Duration = Duration::from_secs(150);
/// Fewer kills than this and the test has not shown much. The stand-in's latency alone makes
/// the job outlast the first three intervals (6 s): about 620 calls (500, and a quarter of the
/// images again for the second stage), 4 at a time, at least 40 ms each, take over 6.1 s.
const MIN_KILLS: usize = 3;
/// The stand-in's latency (uniform, milliseconds).
const LATENCY_MS: (u64, u64) = (40, 50);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_every_few_seconds_loses_nothing_and_repeats_only_the_calls_it_had_in_flight()
 {
    ensure_services_up();
    let mut app = TestApp::spawn().await;
    let standin = start_standin(&mut app.settings);
    set_latency(&standin, LATENCY_MS.0, LATENCY_MS.1);
    let submitted = submit_two_stage_job(&app, IMAGES).await;
    let job = submitted.job;

    let mut survivor_settings = app.settings.clone();
    survivor_settings.worker.concurrency = SURVIVOR_CONCURRENCY;
    survivor_settings.worker.prefetch = SURVIVOR_CONCURRENCY as u16;
    let survivor = RunningWorker::start(&survivor_settings).await;
    let mut killed = ServiceProcess::start("a", &app.settings, KILLED);
    let started = Instant::now();

    let mut kills = 0;
    for interval in KILL_INTERVALS_MS.iter().cycle() {
        let finished = tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(*interval)) => false,
            _ = async {
                while !job_finished(&app, job).await {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            } => true,
        };
        if finished {
            break;
        }
        killed.assert_alive("between kills");
        assert!(
            started.elapsed() < KILLED_JOB_TIMEOUT,
            "the job did not finish within {KILLED_JOB_TIMEOUT:?} ({kills} kills): {}",
            app.get_json(&format!("/api/jobs/{job}")).await
        );
        killed.kill();
        kills += 1;
        killed.spawn();
    }
    let elapsed = started.elapsed();
    killed.assert_alive("after the job finished");
    let consumed = killed.consumed_per_start();
    killed.kill();
    survivor.stop().await;

    let finished = assert_job_consistent(&app, &submitted).await;
    assert!(
        dead_letters_of(&app, job).await.is_empty(),
        "a killed worker dead-letters nothing"
    );
    assert!(
        kills >= MIN_KILLS,
        "the job finished after only {kills} kills ({elapsed:?}): too fast to show anything"
    );
    assert!(
        consumed[..kills].iter().all(|c| *c),
        "each killed process had started consuming: {consumed:?}"
    );

    // Cohere answered every result, and answered again only for calls lost with a process:
    // at most one per delivery it held when killed (its call's outcome not yet stored, or,
    // stored but not acknowledged, the next stage's message published twice).
    let calls = standin.standin.calls();
    let mut missing = Vec::new();
    let mut repeated = BTreeMap::new();
    for bytes in submitted.images.values() {
        let expected = if passes_first_stage(bytes) { 2 } else { 1 };
        let sha = sha256_hex(bytes);
        let succeeded = calls.succeeded_by_image.get(&sha).copied().unwrap_or(0);
        if succeeded < expected {
            missing.push(format!("{sha}: {succeeded} of {expected}"));
        }
        if succeeded > expected {
            repeated.insert(sha, succeeded - expected);
        }
    }
    assert!(
        missing.is_empty(),
        "results without a successful call: {missing:?}"
    );
    let extra_calls: u64 = repeated.values().sum();
    let bound = (kills * KILLED.concurrency) as u64;
    note(format!(
        "{kills} kills in {elapsed:.1?}; {} images analysed again, {extra_calls} extra calls \
         (bound {bound}); {} calls in all for {} results; job {}",
        repeated.len(),
        calls.total,
        submitted.expected_results(),
        finished.status
    ));
    assert!(
        extra_calls <= bound,
        "{extra_calls} calls repeated ({} images) after {kills} kills of a worker with \
         concurrency {}: more than the calls in flight at the kills; per image: {repeated:?}",
        repeated.len(),
        KILLED.concurrency
    );
}

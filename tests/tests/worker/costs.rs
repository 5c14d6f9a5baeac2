//! Costs and budget caps end to end (api, scheduler, worker, Cohere stand-in): every result is
//! priced from its billed tokens at the configured price and the costs add up to the stages
//! and the job; a job with a small cap stops within the calls in flight, its remaining items
//! skipped, and a retry with a higher cap finishes it.

use api::routes::jobs::Job;
use domain::job::{JobStatus, StopReason};
use reqwest::StatusCode;
use serde_json::json;
use settings::{ModelPrice, Settings};
use system_tests::{
    RunningWorker, TestApp, distinct_images, one_stage, set_latency, start_standin, two_stages,
};
use uuid::Uuid;

/// The price the tests configure for the stages' model (not the default, so a result priced
/// at the default would show).
const PRICE: ModelPrice = ModelPrice {
    input_per_million_usd: 3.0,
    output_per_million_usd: 15.0,
};

fn set_price(settings: &mut Settings) {
    settings
        .cohere
        .prices
        .models
        .insert(domain::pipeline::DEFAULT_MODEL.into(), PRICE);
}

/// `(stage, cost, billed input, billed output)` of each of the job's results.
async fn results(app: &TestApp, job: Uuid) -> Vec<(i32, f64, i64, i64)> {
    app.sql_rows(
        r#"SELECT stage_index, cost_usd, billed_input_tokens, billed_output_tokens
           FROM job_results WHERE job_id = $1"#,
        [job.into()],
    )
    .await
    .iter()
    .map(|row| {
        (
            row.try_get("", "stage_index").unwrap(),
            row.try_get("", "cost_usd").unwrap(),
            row.try_get("", "billed_input_tokens").unwrap(),
            row.try_get("", "billed_output_tokens").unwrap(),
        )
    })
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_result_costs_its_billed_tokens_at_the_configured_price_and_costs_add_up_to_the_job()
{
    let mut app = TestApp::spawn().await;
    let _standin = start_standin(&mut app.settings);
    set_price(&mut app.settings);
    let job = app.submit_job_over(&distinct_images(6), two_stages()).await;
    let worker = RunningWorker::start(&app.settings).await;
    let finished = app.wait_for_job(job).await;
    worker.stop().await;
    assert_eq!(finished.status, JobStatus::Completed, "{finished:?}");

    let results = results(&app, job).await;
    assert!(
        results.iter().any(|r| r.0 == 1),
        "some images reach the second stage"
    );
    let mut per_stage = [0.0f64; 2];
    for &(stage, cost, billed_in, billed_out) in &results {
        assert!(billed_in > 0 && billed_out > 0, "the stand-in bills tokens");
        let expected = (billed_in as f64 * PRICE.input_per_million_usd
            + billed_out as f64 * PRICE.output_per_million_usd)
            / 1e6;
        assert!(
            (cost - expected).abs() < 1e-12,
            "a result of stage {stage} costs {cost}, its billed tokens {expected}"
        );
        per_stage[stage as usize] += cost;
    }
    for (index, stage) in finished.stages.iter().enumerate() {
        assert!(
            (stage.cost_usd - per_stage[index]).abs() < 1e-9,
            "stage {index}: {} shown, {} in its results",
            stage.cost_usd,
            per_stage[index]
        );
    }
    let stages: f64 = finished.stages.iter().map(|s| s.cost_usd).sum();
    assert!(stages > 0.0);
    assert!(
        (finished.usage.cost_usd - stages).abs() < 1e-9,
        "job {}, stages {stages}",
        finished.usage.cost_usd
    );

    // Each result shows its cost.
    let listed = app
        .get_json(&format!("/api/jobs/{job}/results?limit=200"))
        .await;
    let shown: f64 = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["usage"]["cost_usd"].as_f64().expect("a cost"))
        .sum();
    assert!((shown - finished.usage.cost_usd).abs() < 1e-9);
}

/// What a budget stop looked like, from the rows it left.
#[derive(Debug)]
struct Stop {
    spent: f64,
    /// The most one call cost.
    max_call: f64,
    /// What the results written when the spend reached the cap and after it cost.
    from_the_crossing_on: f64,
    /// Results written when the spend reached the cap and after it.
    calls_from_the_crossing_on: i64,
    /// Items released (by the time the first item was skipped) and not finished when the
    /// spend reached the cap: every call that could still end after it is one of theirs.
    in_flight: i64,
    /// Items skipped although released: their message reached a worker after the cap.
    skipped_released: i64,
    skipped: i64,
    skipped_with_a_result: i64,
}

/// The cap was reached by the batch write whose results first brought the running sum to it
/// (its transaction time `t_cap`, the `created_at` of its results and `finished_at` of its
/// items). Every call that spent past the cap passed its worker's check before that commit,
/// so its item was released before the first skip (which comes after the commit) and was not
/// finished before `t_cap`.
async fn stop_of(app: &TestApp, job: Uuid, cap: f64) -> Stop {
    let rows = app
        .sql_rows(
            r#"WITH batches AS (
                   SELECT created_at, sum(cost_usd) AS cost FROM job_results WHERE job_id = $1
                   GROUP BY created_at),
               running AS (
                   SELECT created_at, sum(cost) OVER (ORDER BY created_at) AS spent FROM batches),
               t AS (
                   SELECT (SELECT min(created_at) FROM running WHERE spent >= $2) AS t_cap,
                          (SELECT min(finished_at) FROM job_items
                           WHERE job_id = $1 AND status = 'skipped') AS t_skip)
               SELECT (SELECT cost_usd FROM jobs WHERE id = $1) AS spent,
                      (SELECT max(cost_usd) FROM job_results WHERE job_id = $1) AS max_call,
                      (SELECT coalesce(sum(cost_usd), 0) FROM job_results, t
                       WHERE job_id = $1 AND created_at >= t.t_cap) AS from_the_crossing_on,
                      (SELECT count(*) FROM job_results, t
                       WHERE job_id = $1 AND created_at >= t.t_cap) AS calls_from_the_crossing_on,
                      (SELECT count(*) FROM job_items i, t
                       WHERE i.job_id = $1 AND i.released_at IS NOT NULL
                         AND i.released_at <= t.t_skip
                         AND (i.finished_at IS NULL OR i.finished_at >= t.t_cap)) AS in_flight,
                      (SELECT count(*) FROM job_items
                       WHERE job_id = $1 AND status = 'skipped'
                         AND released_at IS NOT NULL) AS skipped_released,
                      (SELECT count(*) FROM job_items
                       WHERE job_id = $1 AND status = 'skipped'
                         AND skip_reason = 'budget_exhausted') AS skipped,
                      (SELECT count(*) FROM job_items i
                       WHERE i.job_id = $1 AND i.status = 'skipped'
                         AND EXISTS (SELECT 1 FROM job_results r WHERE r.item_id = i.id))
                         AS skipped_with_a_result
               FROM t"#,
            [job.into(), cap.into()],
        )
        .await;
    let row = &rows[0];
    Stop {
        spent: row.try_get("", "spent").unwrap(),
        max_call: row.try_get("", "max_call").unwrap(),
        from_the_crossing_on: row.try_get("", "from_the_crossing_on").unwrap(),
        calls_from_the_crossing_on: row.try_get("", "calls_from_the_crossing_on").unwrap(),
        in_flight: row.try_get("", "in_flight").unwrap(),
        skipped_released: row.try_get("", "skipped_released").unwrap(),
        skipped: row.try_get("", "skipped").unwrap(),
        skipped_with_a_result: row.try_get("", "skipped_with_a_result").unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_with_a_small_cap_stops_within_the_calls_in_flight_and_a_retry_with_a_higher_cap_finishes_it()
 {
    const IMAGES: usize = 30;
    const WINDOW: u32 = 8;
    let mut app = TestApp::spawn_with(|s| s.scheduler.window = WINDOW).await;
    let standin = start_standin(&mut app.settings);
    // Calls overlap, and the window holds more than the worker calls at once: when the cap
    // is reached, released messages are still queued.
    set_latency(&standin, 40, 80);
    app.settings.worker.concurrency = 2;
    set_price(&mut app.settings);
    let worker = RunningWorker::start(&app.settings).await;

    // One image and copies of it: every call bills the same tokens. A one-image job tells
    // what a call costs.
    let library = app.create_library("copies").await;
    let image = app.upload_bytes(library, &distinct_images(1)).await[0];
    let pipeline = app.create_pipeline("describe", one_stage()).await;
    let probe: Job = app
        .post_as(
            "/api/jobs/submit",
            &json!({"pipeline_id": pipeline, "library_id": library, "image_ids": [image]}),
            StatusCode::ACCEPTED,
        )
        .await;
    let call = app.wait_for_job(probe.id).await.usage.cost_usd;
    assert!(call > 0.0);
    app.copy_image(library, image, IMAGES - 1).await;

    // Reached by the ninth call.
    let cap = call * 8.5;
    let submitted: Job = app
        .post_as(
            "/api/jobs/submit",
            &json!({"pipeline_id": pipeline, "library_id": library, "max_cost_usd": cap}),
            StatusCode::ACCEPTED,
        )
        .await;
    let job = submitted.id;
    assert_eq!(submitted.counts.total, IMAGES as i32);
    let stopped = app.wait_for_job(job).await;
    assert_eq!(stopped.status, JobStatus::Completed, "{stopped:?}");
    assert_eq!(stopped.stop_reason, Some(StopReason::BudgetExhausted));
    assert_eq!(stopped.max_cost_usd, Some(cap));
    assert!(stopped.counts.skipped > 0, "{stopped:?}");
    assert_eq!(
        stopped.counts.passed + stopped.counts.skipped,
        IMAGES as i32,
        "{stopped:?}"
    );

    let stop = stop_of(&app, job, cap).await;
    let overshoot = stop.spent - cap;
    eprintln!(
        "budget stop: cap {cap:.9} USD, spent {:.9} USD, overshoot {overshoot:.9} USD = {:.2} calls; \
         {} calls written from the crossing on; in-flight bound {} calls x {:.9} USD = {:.9} USD; \
         {} items skipped ({} of them released)",
        stop.spent,
        overshoot / stop.max_call,
        stop.calls_from_the_crossing_on,
        stop.in_flight,
        stop.max_call,
        stop.in_flight as f64 * stop.max_call,
        stop.skipped,
        stop.skipped_released,
    );
    assert!(stop.spent >= cap, "{stop:?}");
    assert!((stop.spent - stopped.usage.cost_usd).abs() < 1e-12);
    // The overshoot is what the calls written from the crossing on cost past the cap, and
    // those are calls of items in flight when the cap was reached: at most their number times
    // the most one call costs.
    assert!(
        overshoot <= stop.from_the_crossing_on + 1e-12,
        "{overshoot} over, {stop:?}"
    );
    assert!(
        stop.calls_from_the_crossing_on <= stop.in_flight,
        "{stop:?}"
    );
    assert!(
        overshoot <= stop.in_flight as f64 * stop.max_call + 1e-12,
        "overshoot {overshoot} beyond the in-flight bound: {stop:?}"
    );
    // The items in flight are the scheduler's window (and what it released while the cap was
    // being written), not the job.
    assert!(stop.in_flight < IMAGES as i64 / 2, "{stop:?}");
    assert_eq!(stop.skipped, i64::from(stopped.counts.skipped), "{stop:?}");
    assert_eq!(
        stop.skipped_with_a_result, 0,
        "skipped items made no call: {stop:?}"
    );
    assert!(
        stop.skipped_released > 0,
        "messages already queued were skipped by the worker, not called: {stop:?}"
    );
    // No call without its result: the stand-in answered the probe and each result once.
    let results = app
        .query_i64(&format!(
            "SELECT count(*) FROM job_results WHERE job_id = '{job}'"
        ))
        .await;
    assert_eq!(results, i64::from(stopped.counts.passed));
    assert_eq!(standin.standin.calls().total as i64, 1 + results);

    // A retry with a higher cap resumes what was skipped, and the job finishes.
    let resumed: Job = app
        .post_as(
            &format!("/api/jobs/{job}/retry"),
            &json!({"max_cost_usd": call * 100.0}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(resumed.status, JobStatus::Running, "{resumed:?}");
    assert_eq!(resumed.stop_reason, None);
    assert_eq!(resumed.counts.skipped, 0);
    let finished = app.wait_for_job(job).await;
    worker.stop().await;
    assert_eq!(finished.status, JobStatus::Completed, "{finished:?}");
    assert_eq!(finished.stop_reason, None);
    assert_eq!(
        (finished.counts.passed, finished.counts.skipped),
        (IMAGES as i32, 0),
        "{finished:?}"
    );
    assert!(
        (finished.usage.cost_usd - call * IMAGES as f64).abs() < 1e-9,
        "{} for {IMAGES} calls of {call}",
        finished.usage.cost_usd
    );
    assert!((finished.stages[0].cost_usd - finished.usage.cost_usd).abs() < 1e-9);
    assert_eq!(
        standin.standin.calls().total as usize,
        1 + IMAGES,
        "each image called once over both runs"
    );
}

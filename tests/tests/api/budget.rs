//! Budget caps through the api: `max_cost_usd` on a submission (checked like every field), the
//! job view's cap, skipped count and stop reason, the items a stop skipped, and a retry that
//! raises the cap. Items are written, released and answered here as the scheduler and a worker
//! would (`store::admission`, `store::work`): the app's scheduler is stopped and no worker runs.

use api::routes::jobs::Job;
use domain::job::{JobStatus, Priority, StopReason};
use reqwest::StatusCode;
use serde_json::{Value, json};
use system_tests::{TestApp, distinct_images, one_stage, stage_answer};
use uuid::Uuid;

/// A library of `count` images and a one-stage pipeline: the body of a submission over them.
async fn body(app: &TestApp, count: usize) -> Value {
    let library = app.create_library("photos").await;
    app.upload_bytes(library, &distinct_images(count)).await;
    let pipeline = app.create_pipeline("describe", one_stage()).await;
    json!({ "pipeline_id": pipeline, "library_id": library })
}

fn with(mut body: Value, field: &str, value: Value) -> Value {
    body[field] = value;
    body
}

#[tokio::test]
async fn a_cap_must_be_a_number_of_dollars_above_zero() {
    let app = TestApp::spawn().await;
    let body = body(&app, 1).await;
    for bad in [json!(0), json!(0.0), json!(-1.5), json!("5"), json!(true)] {
        let problem = app
            .post_problem(
                "/api/jobs/submit",
                &with(body.clone(), "max_cost_usd", bad.clone()),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        assert_eq!(problem.code, "validation_failed", "{bad}: {problem:?}");
        let paths: Vec<&str> = problem.errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["/max_cost_usd"], "{bad}: {problem:?}");
    }
    // Reported with the other fields' problems at once.
    let both = with(
        with(body.clone(), "max_cost_usd", json!(-1)),
        "image_ids",
        json!([]),
    );
    let problem = app
        .post_problem("/api/jobs/submit", &both, StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    let mut paths: Vec<&str> = problem.errors.iter().map(|e| e.path.as_str()).collect();
    paths.sort_unstable();
    assert_eq!(paths, ["/image_ids", "/max_cost_usd"], "{problem:?}");
    assert_eq!(
        app.query_i64("SELECT count(*) FROM jobs").await,
        0,
        "nothing was created"
    );

    let job: Job = app
        .post_as(
            "/api/jobs/submit",
            &with(body.clone(), "max_cost_usd", json!(2.5)),
            StatusCode::ACCEPTED,
        )
        .await;
    assert_eq!(job.max_cost_usd, Some(2.5));
    assert_eq!(job.stop_reason, None);
    assert_eq!(job.counts.skipped, 0);
    assert_eq!(job.usage.cost_usd, 0.0);
    assert!(job.stages.iter().all(|s| s.cost_usd == 0.0));
    let wire = app.get_json(&format!("/api/jobs/{}", job.id)).await;
    assert_eq!(wire["max_cost_usd"], 2.5);
    assert_eq!(wire["stop_reason"], Value::Null);
    assert_eq!(wire["counts"]["skipped"], 0);
    assert_eq!(wire["stages"][0]["cost_usd"], 0.0);

    let uncapped: Job = app
        .post_as("/api/jobs/submit", &body, StatusCode::ACCEPTED)
        .await;
    assert_eq!(uncapped.max_cost_usd, None);
}

/// Writes `write` items of `job`, releases one and records its answer (which costs
/// [`stage_answer`]'s cost), then stops the job as the scheduler would; the stop's event.
async fn spend_one_answer_and_stop(app: &TestApp, job: Uuid, write: u32) {
    store::admission::materialize(&app.db, job, write)
        .await
        .unwrap();
    let released = store::admission::claim(&app.db, job, Priority::Normal, 1)
        .await
        .unwrap();
    app.record_answer(released[0].message, true).await;
    let event = store::budget::stop_if_exhausted(&app.db, job)
        .await
        .unwrap()
        .expect("the job is over its cap");
    // As the scheduler does: the event makes the api drop its cached view.
    app.publisher().publish_events(&[event]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_its_budget_stopped_shows_why_and_a_retry_with_a_higher_cap_resumes_it() {
    let mut app = TestApp::spawn().await;
    // This test writes and releases items itself.
    app.stop_scheduler().await;
    let cost = stage_answer(true).cost_usd;
    let body = with(body(&app, 3).await, "max_cost_usd", json!(cost));
    let job: Job = app
        .post_as("/api/jobs/submit", &body, StatusCode::ACCEPTED)
        .await;
    // Two of three items written, one released and answered: its cost reaches the cap.
    spend_one_answer_and_stop(&app, job.id, 2).await;

    let stopped =
        system_tests::eventually(system_tests::RUN_TIMEOUT, "the stopped job", || async {
            let view = app.job(job.id).await;
            view.status.is_terminal().then_some(view)
        })
        .await;
    assert_eq!(stopped.status, JobStatus::Completed, "{stopped:?}");
    assert_eq!(stopped.stop_reason, Some(StopReason::BudgetExhausted));
    assert_eq!(
        (stopped.counts.passed, stopped.counts.skipped),
        (1, 2),
        "the unreleased item and the one never written"
    );
    assert!((stopped.usage.cost_usd - cost).abs() < 1e-12);
    assert!((stopped.stages[0].cost_usd - cost).abs() < 1e-12);
    let skipped = app
        .get_json(&format!("/api/jobs/{}/items?outcome=skipped", job.id))
        .await;
    assert_eq!(skipped["total"], 1, "{skipped}");
    assert_eq!(skipped["items"][0]["skip_reason"], "budget_exhausted");
    let item = skipped["items"][0]["item_id"].as_str().unwrap();
    let detail = app
        .get_json(&format!("/api/jobs/{}/items/{item}", job.id))
        .await;
    assert_eq!(detail["stages"][0]["state"], "skipped", "{detail}");
    let results = app.get_json(&format!("/api/jobs/{}/results", job.id)).await;
    assert_eq!(results["items"][0]["usage"]["cost_usd"], json!(cost));

    let retry = format!("/api/jobs/{}/retry", job.id);
    // Without a higher cap there is nothing a retry could run.
    let refused = app.post(&retry).send().await.unwrap();
    let problem = system_tests::problem(refused, StatusCode::CONFLICT).await;
    assert!(problem.detail.contains("max_cost_usd"), "{problem:?}");
    for (bad, why) in [
        (json!({"max_cost_usd": 0}), "not above 0"),
        (json!({"max_cost_usd": "1"}), "not a number"),
        (json!({"max_cost_usd": cost / 2.0}), "not above the spend"),
        (json!({"max_cost_usd": cost}), "equal to the spend"),
    ] {
        let problem = app
            .post_problem(&retry, &bad, StatusCode::UNPROCESSABLE_ENTITY)
            .await;
        let paths: Vec<&str> = problem.errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["/max_cost_usd"], "{why}: {problem:?}");
    }
    app.post_problem(
        &retry,
        &json!({"max_cost": 1}),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        app.query_i64(&format!(
            "SELECT count(*) FROM jobs WHERE id = '{}' AND status = 'completed'
               AND stop_reason = 'budget_exhausted' AND max_cost_usd = {cost}",
            job.id
        ))
        .await,
        1,
        "refused retries change nothing"
    );

    let resumed: Job = app
        .post_as(&retry, &json!({"max_cost_usd": 1.0}), StatusCode::OK)
        .await;
    assert_eq!(resumed.status, JobStatus::Running, "{resumed:?}");
    assert_eq!(resumed.stop_reason, None);
    assert_eq!(resumed.max_cost_usd, Some(1.0));
    assert_eq!(
        (
            resumed.counts.pending,
            resumed.counts.skipped,
            resumed.counts.passed
        ),
        (2, 0, 1)
    );
    assert_eq!(resumed.finished_at, None);
    // Released again by the scheduler, not published (nor marked released) by the retry.
    assert_eq!(
        app.query_i64(&format!(
            "SELECT count(*) FROM job_items WHERE job_id = '{}' AND status = 'pending'
               AND released_at IS NOT NULL",
            job.id
        ))
        .await,
        0
    );
    let released = store::admission::claim(&app.db, job.id, Priority::Normal, 10)
        .await
        .unwrap();
    assert_eq!(
        released.len(),
        1,
        "the skipped item; the other is to be written"
    );
    assert_eq!(
        store::admission::materialize(&app.db, job.id, 10)
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn a_new_cap_for_a_job_without_one_is_refused() {
    let app = TestApp::spawn().await;
    let body = body(&app, 1).await;
    let job: Job = app
        .post_as("/api/jobs/submit", &body, StatusCode::ACCEPTED)
        .await;
    let problem = app
        .post_problem(
            &format!("/api/jobs/{}/retry", job.id),
            &json!({"max_cost_usd": 5}),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(problem.errors[0].path, "/max_cost_usd", "{problem:?}");
    // Without a body, a job with nothing failed has nothing to retry, as before.
    let response = app
        .post(&format!("/api/jobs/{}/retry", job.id))
        .send()
        .await
        .unwrap();
    system_tests::problem(response, StatusCode::CONFLICT).await;
}

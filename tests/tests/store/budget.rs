//! Costs and budget caps in the database layer: results priced into their stages and jobs
//! (`store::work::apply`), a job stopped once its spend reaches its cap
//! (`store::budget::stop_if_exhausted`), items skipped by a worker (`Change::Skip`), and a
//! retry that raises the cap and resumes the job (`store::retry::reopen`). Items are written and
//! released with `store::admission` as the scheduler does: the app's scheduler is stopped.

use domain::{
    job::{ItemStatus, JobStatus, Priority, StopReason},
    message::StageMessage,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use store::{
    TenantId,
    retry::{ReopenError, ReopenScope},
    work::{self, Change},
};
use system_tests::{TestApp, distinct_images, one_stage, stage_answer, two_stages};
use uuid::Uuid;

/// What one recorded answer costs ([`stage_answer`]: 8 and 2 billed tokens at the default
/// price of `command-a-vision-07-2025`).
fn answer_cost() -> f64 {
    stage_answer(true).cost_usd
}

/// Submits a job of `stages` over `count` new images through the api, with `body`'s extra
/// fields (a cap, say); its id.
async fn submit(app: &TestApp, count: usize, stages: Value, extra: Value) -> Uuid {
    let library = app.create_library("photos").await;
    app.upload_bytes(library, &distinct_images(count)).await;
    let pipeline = app.create_pipeline("survey", stages).await;
    let mut body = json!({ "pipeline_id": pipeline, "library_id": library });
    body.as_object_mut()
        .expect("an object")
        .extend(extra.as_object().expect("an object").clone());
    let job: api::routes::jobs::Job = app
        .post_as("/api/jobs/submit", &body, StatusCode::ACCEPTED)
        .await;
    job.id
}

/// Writes up to `write` items of the job and releases up to `release`, as the scheduler does;
/// the released items' messages.
async fn write_and_release(
    app: &TestApp,
    job: Uuid,
    write: u32,
    release: u32,
) -> Vec<StageMessage> {
    store::admission::materialize(&app.db, job, write)
        .await
        .unwrap();
    store::admission::claim(&app.db, job, Priority::Normal, release)
        .await
        .unwrap()
        .into_iter()
        .map(|released| released.message)
        .collect()
}

async fn tenant(app: &TestApp) -> TenantId {
    TenantId(app.tenant_id("tenant-a").await)
}

async fn float(app: &TestApp, sql: &str) -> f64 {
    app.sql_rows(sql, [])
        .await
        .first()
        .expect("a row")
        .try_get_by_index::<f64>(0)
        .expect("a float")
}

/// Every stage's cost is the sum of its results' costs, and the job's the sum of its stages'.
async fn assert_costs_add_up(app: &TestApp, job: Uuid) {
    let stages = app
        .sql_rows(
            r#"SELECT s.stage_index, s.cost_usd,
                      (SELECT coalesce(sum(r.cost_usd), 0) FROM job_results r
                       WHERE r.job_id = s.job_id AND r.stage_index = s.stage_index) AS from_results
               FROM job_stage_stats s WHERE s.job_id = $1 ORDER BY s.stage_index"#,
            [job.into()],
        )
        .await;
    let mut sum = 0.0;
    for row in &stages {
        let (index, cost, from_results): (i32, f64, f64) = (
            row.try_get("", "stage_index").unwrap(),
            row.try_get("", "cost_usd").unwrap(),
            row.try_get("", "from_results").unwrap(),
        );
        assert!(
            (cost - from_results).abs() < 1e-9,
            "stage {index}: {cost} counted, {from_results} in its results"
        );
        sum += cost;
    }
    let job_cost = float(
        app,
        &format!("SELECT cost_usd FROM jobs WHERE id = '{job}'"),
    )
    .await;
    assert!(
        (job_cost - sum).abs() < 1e-9,
        "job {job_cost}, stages {sum}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_over_its_cap_stops_once_and_a_retry_with_a_higher_cap_resumes_it() {
    let mut app = TestApp::spawn().await;
    // This test writes and releases items itself.
    app.stop_scheduler().await;
    // Reached by the second answer, not by the first.
    let cap = answer_cost() * 1.5;
    let job = submit(&app, 6, one_stage(), json!({ "max_cost_usd": cap })).await;
    // Four of six items written, three of them released.
    let released = write_and_release(&app, job, 4, 3).await;
    assert_eq!(released.len(), 3);

    app.record_answer(released[0], true).await;
    assert_eq!(
        store::budget::stop_if_exhausted(&app.db, job)
            .await
            .unwrap(),
        None,
        "under its cap: the job goes on"
    );
    let spend = store::budget::spend(&app.db, job).await.unwrap().unwrap();
    assert!(!spend.exhausted() && !spend.stopped, "{spend:?}");

    app.record_answer(released[1], true).await;
    let spend = store::budget::spend(&app.db, job).await.unwrap().unwrap();
    assert!(spend.exhausted() && !spend.stopped, "{spend:?}");
    let seq = app
        .query_i64(&format!("SELECT event_seq FROM jobs WHERE id = '{job}'"))
        .await;
    let event = store::budget::stop_if_exhausted(&app.db, job)
        .await
        .unwrap()
        .expect("stopped");
    assert_eq!(event.seq, seq + 1);
    assert_eq!(event.stop_reason, Some(StopReason::BudgetExhausted));
    assert_eq!(
        event.status,
        JobStatus::Running,
        "the released item is still to come"
    );
    // The unreleased written item and the two never written are skipped; the released one
    // is left to the worker that takes its message.
    assert_eq!(
        (
            event.counts.skipped,
            event.counts.pending,
            event.counts.passed
        ),
        (3, 1, 2),
        "{event:?}"
    );
    assert_eq!(
        store::budget::stop_if_exhausted(&app.db, job)
            .await
            .unwrap(),
        None,
        "stopped once"
    );
    let skipped = app
        .sql_rows(
            r#"SELECT id FROM job_items WHERE job_id = $1 AND status = 'skipped'
                 AND skip_reason = 'budget_exhausted' AND finished_at IS NOT NULL
                 AND released_at IS NULL"#,
            [job.into()],
        )
        .await;
    assert_eq!(skipped.len(), 1);
    assert_eq!(
        app.query_i64(&format!(
            "SELECT count(*) FROM jobs WHERE id = '{job}' AND materialized_items = total_items
               AND stop_reason = 'budget_exhausted' AND skipped_items = 3"
        ))
        .await,
        1,
        "nothing more is written"
    );
    assert_eq!(
        store::admission::materialize(&app.db, job, 10)
            .await
            .unwrap(),
        0
    );
    assert!(
        store::admission::claim(&app.db, job, Priority::Normal, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // A worker takes the released item's message and skips it: the job ends.
    let applied = work::apply(
        &app.db,
        &[Change::Skip {
            message: released[2],
        }],
    )
    .await
    .unwrap();
    let last = &applied.events[0];
    assert_eq!(last.status, JobStatus::Completed, "{last:?}");
    assert_eq!(last.stop_reason, Some(StopReason::BudgetExhausted));
    assert_eq!((last.counts.skipped, last.counts.pending), (4, 0));
    assert_eq!(last.name(), "job_finished");
    let item = app
        .sql_rows(
            "SELECT status, skip_reason, attempts FROM job_items WHERE id = $1",
            [released[2].item_id.into()],
        )
        .await;
    assert_eq!(
        item[0].try_get::<String>("", "status").unwrap(),
        ItemStatus::Skipped.as_str()
    );
    assert_eq!(
        item[0].try_get::<String>("", "skip_reason").unwrap(),
        "budget_exhausted"
    );
    assert_eq!(
        item[0].try_get::<i32>("", "attempts").unwrap(),
        0,
        "never tried"
    );
    assert_costs_add_up(&app, job).await;

    let view = app.job(job).await;
    assert_eq!(view.stop_reason, Some(StopReason::BudgetExhausted));
    assert_eq!(view.max_cost_usd, Some(cap));
    assert_eq!(view.counts.skipped, 4);
    assert_eq!(view.percent_complete, 100.0);
    assert!((view.usage.cost_usd - 2.0 * answer_cost()).abs() < 1e-12);

    // A retry must raise the cap above the spend; until then nothing changes.
    let tenant = tenant(&app).await;
    let scope = |max_cost_usd| ReopenScope::Job {
        tenant,
        job_id: job,
        max_cost_usd,
    };
    let never = |_| async { Err::<(), _>("nothing is published for a resumed job") };
    assert!(matches!(
        store::retry::reopen(&app.db, scope(None), never).await,
        Err(ReopenError::BudgetExhausted { .. })
    ));
    assert!(matches!(
        store::retry::reopen(&app.db, scope(Some(answer_cost())), never).await,
        Err(ReopenError::CapNotAboveSpend { spent_usd }) if (spent_usd - 2.0 * answer_cost()).abs() < 1e-12
    ));
    let stored = store::jobs::get(&app.db, tenant, job).await.unwrap().job;
    assert_eq!(
        (stored.status, stored.stop_reason, stored.max_cost_usd),
        (
            JobStatus::Completed,
            Some(StopReason::BudgetExhausted),
            Some(cap)
        )
    );

    let resumed = store::retry::reopen(&app.db, scope(Some(1.0)), never)
        .await
        .unwrap();
    assert_eq!(
        resumed.resumed, 4,
        "two skipped items and two never written"
    );
    assert!(resumed.messages.is_empty() && resumed.reopened.is_empty());
    let event = &resumed.events[0];
    assert_eq!(event.status, JobStatus::Running);
    assert_eq!(event.stop_reason, None);
    assert_eq!(
        (
            event.counts.skipped,
            event.counts.pending,
            event.counts.total
        ),
        (0, 4, 6)
    );
    assert_eq!(
        app.query_i64(&format!(
            "SELECT count(*) FROM job_items WHERE job_id = '{job}' AND status = 'pending'
               AND released_at IS NULL AND skip_reason IS NULL AND finished_at IS NULL"
        ))
        .await,
        2,
        "the skipped items wait to be released again"
    );
    assert_eq!(
        app.query_i64(&format!(
            "SELECT count(*) FROM jobs WHERE id = '{job}' AND max_cost_usd = 1.0
               AND materialized_items = 4 AND finished_at IS NULL"
        ))
        .await,
        1
    );

    // The scheduler writes the rest and releases all four; they run to the end.
    let rest = write_and_release(&app, job, 10, 10).await;
    assert_eq!(rest.len(), 4);
    for message in &rest {
        app.record_answer(*message, true).await;
    }
    // Read from the database: the api's cached view hears of changes through events, which
    // the writes here do not publish.
    let done = store::jobs::get(&app.db, tenant, job).await.unwrap().job;
    assert_eq!(done.status, JobStatus::Completed, "{done:?}");
    assert_eq!(done.stop_reason, None);
    assert_eq!((done.passed_items, done.skipped_items), (6, 0));
    assert_eq!(
        app.query_i64(&format!(
            "SELECT count(DISTINCT image_id) FROM job_items WHERE job_id = '{job}'"
        ))
        .await,
        6,
        "every image written once"
    );
    assert!((done.cost_usd - 6.0 * answer_cost()).abs() < 1e-12);
    assert_costs_add_up(&app, job).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_items_were_all_skipped_after_running_ends_completed_and_says_why() {
    let mut app = TestApp::spawn().await;
    // This test writes and releases items itself.
    app.stop_scheduler().await;
    let job = submit(&app, 2, two_stages(), json!({ "max_cost_usd": 1.0 })).await;
    let released = write_and_release(&app, job, 10, 10).await;
    // Both pass the first stage, then a worker skips both at the second, before anyone
    // stopped the job: skipped items count like cancelled ones, so it did not fail.
    for message in &released {
        app.record_answer(*message, false).await;
    }
    let at_second: Vec<Change> = released
        .iter()
        .map(|m| Change::Skip {
            message: m.next_stage(),
        })
        .collect();
    let applied = work::apply(&app.db, &at_second).await.unwrap();
    let event = &applied.events[0];
    assert_eq!(event.status, JobStatus::Completed, "{event:?}");
    assert_eq!(event.stop_reason, Some(StopReason::BudgetExhausted));
    assert_eq!(event.counts.skipped, 2);
    assert_eq!(
        app.query_i64(&format!(
            "SELECT count(*) FROM job_items WHERE job_id = '{job}' AND status = 'skipped'
               AND current_stage = 1"
        ))
        .await,
        2,
        "skipped where they were"
    );
    // Skipped items were never processed by the stage they were skipped at.
    let stages = store::jobs::get(&app.db, tenant(&app).await, job)
        .await
        .unwrap()
        .stages;
    assert_eq!((stages[0].processed, stages[1].processed), (2, 0));
    assert_costs_add_up(&app, job).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skip_for_a_stage_the_item_has_left_changes_nothing() {
    let mut app = TestApp::spawn().await;
    // This test writes and releases items itself.
    app.stop_scheduler().await;
    let job = submit(&app, 1, two_stages(), json!({ "max_cost_usd": 1.0 })).await;
    let released = write_and_release(&app, job, 10, 10).await;
    app.record_answer(released[0], false).await;
    // A late duplicate of the first stage's message.
    let applied = work::apply(
        &app.db,
        &[Change::Skip {
            message: released[0],
        }],
    )
    .await
    .unwrap();
    assert!(applied.events.is_empty(), "{:?}", applied.events);
    assert_eq!(app.job(job).await.counts.running, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_cap_is_refused_for_a_job_without_one() {
    let app = TestApp::spawn().await;
    let job = submit(&app, 1, one_stage(), json!({})).await;
    let scope = ReopenScope::Job {
        tenant: tenant(&app).await,
        job_id: job,
        max_cost_usd: Some(5.0),
    };
    assert!(matches!(
        store::retry::reopen(&app.db, scope, |_| async { Ok::<(), ()>(()) }).await,
        Err(ReopenError::Uncapped)
    ));
    // No cap, no budget: never exhausted, and nothing to stop.
    assert!(
        !store::budget::spend(&app.db, job)
            .await
            .unwrap()
            .unwrap()
            .exhausted()
    );
    assert_eq!(
        store::budget::stop_if_exhausted(&app.db, job)
            .await
            .unwrap(),
        None
    );
}

//! Admission by the scheduler: windows, fair shares by weight, per-tenant caps, racing
//! schedulers, the sweep, and cancellation. The app's own scheduler is stopped so each test
//! drives passes one at a time.

use std::collections::HashSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use system_tests::{TestApp, one_stage};
use uuid::Uuid;

/// An app without a running scheduler, with `window`.
async fn app_with_window(window: u32) -> TestApp {
    let mut app = TestApp::spawn_with(|s| s.scheduler.window = window).await;
    app.stop_scheduler().await;
    app
}

async fn scheduler(app: &TestApp) -> scheduler::Scheduler {
    scheduler::Scheduler::build(&app.settings)
        .await
        .expect("build a scheduler")
}

/// A job of `images` URL images for the tenant whose key is `key`.
async fn job_for(app: &TestApp, key: &str, images: usize) -> Uuid {
    let post = |path: &'static str, body: Value| async move {
        let response = app
            .request_with_key(key, Method::POST, path)
            .json(&body)
            .send()
            .await
            .expect("request");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        let body: Value = response.json().await.expect("json");
        body["id"]
            .as_str()
            .expect("an id")
            .parse::<Uuid>()
            .expect("a uuid")
    };
    let library = post(
        "/api/libraries",
        json!({"name": format!("lib-{}", Uuid::now_v7())}),
    )
    .await;
    app.add_url_images(library, images).await.unwrap();
    let pipeline = post(
        "/api/pipelines",
        json!({"name": format!("p-{}", Uuid::now_v7()), "stages": one_stage()}),
    )
    .await;
    post(
        "/api/jobs/submit",
        json!({"pipeline_id": pipeline, "library_id": library}),
    )
    .await
}

async fn released(app: &TestApp, job: Uuid) -> i64 {
    app.query_i64(&format!(
        "SELECT count(*) FROM job_items WHERE job_id = '{job}' AND released_at IS NOT NULL"
    ))
    .await
}

/// Marks `count` of the job's released items passed, as workers finishing them would.
async fn finish(app: &TestApp, job: Uuid, count: usize) {
    app.sql_execute(
        r#"UPDATE job_items SET status = 'passed' WHERE id IN (
               SELECT id FROM job_items WHERE job_id = $1 AND status = 'pending'
                 AND released_at IS NOT NULL ORDER BY position LIMIT $2)"#,
        [job.into(), (count as i64).into()],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_bounds_what_is_released_and_more_follows_as_items_finish() {
    let app = app_with_window(10).await;
    let job = job_for(&app, &app.key, 30).await;
    let mut scheduler = scheduler(&app).await;

    assert_eq!(scheduler.pass().await.unwrap().released, 10);
    assert_eq!(
        scheduler.pass().await.unwrap().released,
        0,
        "the window is full"
    );
    assert_eq!(released(&app, job).await, 10);
    assert_eq!(app.drain_stage_queue(100).await.len(), 10);

    finish(&app, job, 4).await;
    assert_eq!(scheduler.pass().await.unwrap().released, 4);
    assert_eq!(released(&app, job).await, 14);
    // Counts are right although most items are not even written yet.
    let view: Value = app
        .get_as(&format!("/api/jobs/{job}"), StatusCode::OK)
        .await;
    assert_eq!(view["counts"]["total"], 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_racing_release_each_item_exactly_once() {
    let app = app_with_window(1000).await;
    let job = job_for(&app, &app.key, 300).await;
    let (mut first, mut second) = (scheduler(&app).await, scheduler(&app).await);
    let mut total = 0;
    for _ in 0..3 {
        let (a, b) = tokio::join!(first.pass(), second.pass());
        total += a.unwrap().released + b.unwrap().released;
    }
    assert_eq!(total, 300);
    let messages = app.drain_stage_queue(1000).await;
    let items: HashSet<String> = messages
        .iter()
        .map(|(body, _)| body["item_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!((messages.len(), items.len()), (300, 300));
    assert_eq!(
        app.query_i64(&format!(
            "SELECT count(*) FROM job_items WHERE job_id = '{job}'"
        ))
        .await,
        300,
        "each item written once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_marked_released_but_never_published_are_published_by_the_sweep() {
    let mut app = app_with_window(100).await;
    app.settings.scheduler.sweep_after_seconds = 0;
    let job = job_for(&app, &app.key, 5).await;
    // A scheduler that stopped between marking and publishing: marked, nothing on the queue.
    store::admission::materialize(&app.db, job, 100)
        .await
        .unwrap();
    let marked = store::admission::claim(&app.db, job, domain::job::Priority::Normal, 5)
        .await
        .unwrap();
    assert_eq!(marked.len(), 5);

    let report = scheduler(&app).await.pass().await.unwrap();
    assert_eq!((report.swept, report.released), (5, 0));
    let messages = app.drain_stage_queue(100).await;
    let items: HashSet<String> = messages
        .iter()
        .map(|(body, _)| body["item_id"].as_str().unwrap().to_string())
        .collect();
    let expected: HashSet<String> = marked
        .iter()
        .map(|released| released.message.item_id.to_string())
        .collect();
    assert_eq!(items, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_job_releases_nothing_more_and_counts_every_item_cancelled() {
    let app = app_with_window(5).await;
    let job = job_for(&app, &app.key, 20).await;
    let mut scheduler = scheduler(&app).await;
    assert_eq!(scheduler.pass().await.unwrap().released, 5);

    let cancelled = app.cancel_job(job).await;
    assert_eq!(cancelled.counts.cancelled, 20);
    assert_eq!(cancelled.counts.pending, 0);
    assert_eq!(scheduler.pass().await.unwrap().released, 0);
    assert_eq!(released(&app, job).await, 5);
    assert_eq!(
        app.query_i64(&format!(
            "SELECT count(*) FROM job_items WHERE job_id = '{job}' AND status <> 'cancelled'"
        ))
        .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_with_work_share_the_window_by_weight_and_one_alone_takes_it_all() {
    let app = app_with_window(40).await;
    let other = app.other_tenant_key("tenant-b").await;
    let alone = job_for(&app, &app.key, 100).await;
    let mut scheduler = scheduler(&app).await;
    assert_eq!(
        scheduler.pass().await.unwrap().released,
        40,
        "alone: the whole window"
    );
    app.sql_execute(
        "UPDATE job_items SET status = 'passed' WHERE job_id = $1 AND released_at IS NOT NULL",
        [alone.into()],
    )
    .await;
    app.cancel_job(alone).await;

    // Equal weights: half each.
    let a = job_for(&app, &app.key, 100).await;
    let b = job_for(&app, &other, 100).await;
    assert_eq!(scheduler.pass().await.unwrap().released, 40);
    assert_eq!((released(&app, a).await, released(&app, b).await), (20, 20));
    app.cancel_job(a).await;
    app.request_with_key(&other, Method::POST, &format!("/api/jobs/{b}/cancel"))
        .send()
        .await
        .unwrap();

    // Weights 3:1, set as an operator would.
    store::tenants::set_share(
        &app.db,
        "tenant-a",
        store::tenants::Share {
            weight: 3,
            calls_per_minute: None,
        },
    )
    .await
    .unwrap();
    let a = job_for(&app, &app.key, 100).await;
    let b = job_for(&app, &other, 100).await;
    assert_eq!(scheduler.pass().await.unwrap().released, 40);
    assert_eq!((released(&app, a).await, released(&app, b).await), (30, 10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_calls_per_minute_cap_limits_its_releases_and_leaves_the_rest_to_others() {
    let app = app_with_window(100).await;
    let other = app.other_tenant_key("tenant-b").await;
    store::tenants::set_share(
        &app.db,
        "tenant-a",
        store::tenants::Share {
            weight: 1,
            calls_per_minute: Some(60),
        },
    )
    .await
    .unwrap();
    let capped = job_for(&app, &app.key, 100).await;
    let free = job_for(&app, &other, 100).await;
    let mut scheduler = scheduler(&app).await;
    scheduler.pass().await.unwrap();
    // 60 calls a minute holds a burst of 10 s: 10 one-stage items; the other tenant takes
    // the rest of the window.
    assert_eq!(released(&app, capped).await, 10);
    assert_eq!(released(&app, free).await, 90);
    finish(&app, free, 90).await;
    scheduler.pass().await.unwrap();
    assert!(
        released(&app, capped).await <= 11,
        "the cap holds across passes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_serves_readiness_and_counts_its_releases_in_its_metrics() {
    let app = app_with_window(10).await;
    job_for(&app, &app.key, 4).await;
    let mut scheduler = scheduler(&app).await;
    let probes = scheduler.serve_health().expect("the probe server");
    let base = format!("http://{}", probes.address);
    assert_eq!(scheduler.pass().await.unwrap().released, 4);

    let ready = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let text = system_tests::metrics::scrape(&format!("{base}/metrics")).await;
    assert!(text.contains("scheduler_released_items_total 4"), "{text}");
    assert!(
        text.contains("scheduler_window_items 0"),
        "the window before the pass: {text}"
    );
    assert!(
        text.contains(r#"build_info{service="scheduler","#),
        "{text}"
    );
    probes.stop().await;
}

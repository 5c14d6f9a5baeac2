use std::collections::HashSet;

use api::routes::jobs::Job;
use domain::job::{JobStatus, Priority};
use reqwest::{Method, StatusCode};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use system_tests::{
    EventReader, TestApp, body_as, distinct_images, id_of, one_stage, problem, start_standin,
    two_stages,
};
use uuid::Uuid;

#[tokio::test]
async fn a_submitted_job_puts_one_persistent_prioritised_first_stage_message_per_item_on_the_queue()
{
    let app = TestApp::spawn().await;
    let library = app.create_library("photos").await;
    app.upload(library, &["chelsea.png", "coffee.png", "astronaut.png"])
        .await;
    let pipeline = app.create_pipeline("survey", two_stages()).await;

    let response = app
        .submit(&json!({"pipeline_id": pipeline, "library_id": library, "priority": "high"}))
        .await;
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let job: Job = body_as(response, StatusCode::ACCEPTED).await;
    let job_id = job.id;
    assert_eq!(location, format!("/api/jobs/{job_id}"));
    assert_eq!(job.status, JobStatus::Queued);
    assert_eq!(job.priority, Priority::High);
    assert_eq!(job.counts.total, 3);
    assert_eq!(job.counts.pending, 3);
    assert_eq!(job.percent_complete, 0.0);
    assert_eq!(job.pipeline_name, "survey");
    let stage_names: Vec<&str> = job.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(stage_names, ["detect", "describe"]);

    let messages = app.drain_stage_queue(10).await;
    assert_eq!(messages.len(), 3);
    let item_ids: HashSet<Uuid> = sqlx_items(&app, job_id).await;
    let mut seen = HashSet::new();
    for (body, properties) in &messages {
        assert_eq!(body["v"], 1);
        assert_eq!(body["job_id"], job_id.to_string());
        assert_eq!(body["stage_index"], 0);
        assert_eq!(body["attempt"], 0);
        let item: Uuid = body["item_id"].as_str().unwrap().parse().unwrap();
        assert!(item_ids.contains(&item), "message names an unknown item");
        assert!(seen.insert(item), "two messages for one item");
        assert_eq!(properties.priority(), &Some(2));
        assert_eq!(properties.delivery_mode(), &Some(2), "persistent");
    }

    let fetched = app.job(job_id).await;
    assert_eq!(fetched.counts.total, 3);
    assert_eq!(fetched.stages[1].processed, 0);
}

async fn sqlx_items(app: &TestApp, job_id: Uuid) -> HashSet<Uuid> {
    let rows = app
        .sql_rows(
            "SELECT id FROM job_items WHERE job_id = $1 AND status = 'pending'",
            [job_id.into()],
        )
        .await;
    rows.iter()
        .map(|r| r.try_get::<Uuid>("", "id").unwrap())
        .collect()
}

#[tokio::test]
async fn image_ids_choose_a_subset_and_ids_outside_the_library_are_rejected() {
    let app = TestApp::spawn().await;
    let library = app.create_library("photos").await;
    let ids = app
        .upload(library, &["chelsea.png", "coffee.png", "horse.png"])
        .await;
    let other_library = app.create_library("other").await;
    let foreign = app.upload(other_library, &["coins.png"]).await;
    let pipeline = app.create_pipeline("p", one_stage()).await;

    let subset = app.submit(&json!({"pipeline_id": pipeline, "library_id": library, "image_ids": [ids[0], ids[2]], "priority": "low"})).await;
    let subset: Job = body_as(subset, StatusCode::ACCEPTED).await;
    assert_eq!(subset.counts.total, 2);
    let messages = app.drain_stage_queue(10).await;
    assert_eq!(messages.len(), 2);
    assert!(messages.iter().all(|(_, p)| p.priority() == &Some(0)));

    let wrong = app
        .submit(&json!({"pipeline_id": pipeline, "library_id": library, "image_ids": [ids[0], foreign[0]]}))
        .await;
    let wrong = problem(wrong, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(wrong.errors[0].path, "/image_ids");
    assert!(wrong.errors[0].message.contains(&foreign[0].to_string()));

    let duplicate = app
        .submit(
            &json!({"pipeline_id": pipeline, "library_id": library, "image_ids": [ids[0], ids[0]]}),
        )
        .await;
    assert_eq!(duplicate.status(), 422);
    let empty = app
        .submit(&json!({"pipeline_id": pipeline, "library_id": library, "image_ids": []}))
        .await;
    assert_eq!(empty.status(), 422);
    assert_eq!(
        app.drain_stage_queue(10).await.len(),
        0,
        "rejected submissions publish nothing"
    );
    assert_eq!(app.query_i64("SELECT count(*) FROM jobs").await, 1);
}

#[tokio::test]
async fn unknown_pipeline_or_library_and_empty_libraries_are_422() {
    let app = TestApp::spawn().await;
    let library = app.create_library("photos").await;
    let empty = app.create_library("empty").await;
    app.upload(library, &["chelsea.png"]).await;
    let pipeline = app.create_pipeline("p", one_stage()).await;
    let cases = [
        (
            json!({"pipeline_id": Uuid::now_v7(), "library_id": library}),
            "/pipeline_id",
        ),
        (
            json!({"pipeline_id": pipeline, "library_id": Uuid::now_v7()}),
            "/library_id",
        ),
        (
            json!({"pipeline_id": pipeline, "library_id": empty}),
            "/library_id",
        ),
        (
            json!({"pipeline_id": pipeline, "library_id": library, "priority": "urgent"}),
            "/priority",
        ),
        (json!({"library_id": library}), ""),
    ];
    for (body, path) in cases {
        let response = app.submit(&body).await;
        let problem = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem.errors[0].path, path, "{body}: {problem:?}");
    }
    assert_eq!(app.query_i64("SELECT count(*) FROM jobs").await, 0);
}

#[tokio::test]
async fn a_retried_submission_with_the_same_idempotency_key_returns_the_same_job_and_publishes_once()
 {
    let app = TestApp::spawn().await;
    let library = app.create_library("photos").await;
    app.upload(library, &["chelsea.png", "coffee.png"]).await;
    let pipeline = app.create_pipeline("p", one_stage()).await;
    let body = json!({"pipeline_id": pipeline, "library_id": library});
    let send = || {
        app.post("/api/jobs/submit")
            .header("Idempotency-Key", "order-42")
            .json(&body)
            .send()
    };

    // Two concurrent attempts and a later retry all get the one job.
    let (first, second) = tokio::join!(send(), send());
    let third = send().await.unwrap();
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(first.status(), 202);
    assert_eq!(second.status(), 202);
    assert_eq!(third.status(), 202);
    assert_eq!(third.headers()["idempotent-replayed"], "true");
    let ids: HashSet<Uuid> = [
        id_of(&first.json().await.unwrap()),
        id_of(&second.json().await.unwrap()),
        id_of(&third.json().await.unwrap()),
    ]
    .into();
    assert_eq!(ids.len(), 1);
    assert_eq!(app.query_i64("SELECT count(*) FROM jobs").await, 1);
    assert_eq!(
        app.drain_stage_queue(10).await.len(),
        2,
        "messages of one job only"
    );

    let different = app
        .post("/api/jobs/submit")
        .header("Idempotency-Key", "order-42")
        .json(&json!({"pipeline_id": pipeline, "library_id": library, "priority": "high"}))
        .send()
        .await
        .unwrap();
    assert_eq!(different.status(), 409);
}

#[tokio::test]
async fn while_the_broker_is_unreachable_a_submission_is_accepted_and_waits_in_postgres() {
    let mut app = TestApp::spawn_with(|s| {
        s.amqp.url = secrecy::SecretString::from("amqp://guest:guest@127.0.0.1:1/%2f");
        s.amqp.timeout_seconds = 2;
    })
    .await;
    app.stop_scheduler().await;
    let library = app.create_library("photos").await;
    app.upload(library, &["chelsea.png"]).await;
    let pipeline = app.create_pipeline("p", one_stage()).await;
    // Nothing is published at submission: the job is stored and the scheduler releases it
    // once the broker is back.
    let job = app.submit_job(pipeline, library).await;
    assert_eq!(app.job(job).await.status, JobStatus::Queued);

    // A scheduler that cannot publish hands its claims back: nothing stays marked released.
    let mut scheduler = scheduler::Scheduler::build(&app.settings).await.unwrap();
    assert!(scheduler.pass().await.is_err());
    assert_eq!(
        app.query_i64("SELECT count(*) FROM job_items WHERE released_at IS NOT NULL")
            .await,
        0
    );
    assert_eq!(
        app.query_i64("SELECT count(*) FROM job_items WHERE status = 'pending'")
            .await,
        1
    );

    let ready = app.anonymous(Method::GET, "/readyz").send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["checks"]["broker"], "unavailable");
    assert_eq!(ready["checks"]["database"], "ok");
}

#[tokio::test]
async fn readiness_reports_ok_when_postgres_and_rabbitmq_answer() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.anonymous(Method::GET, "/healthz")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let ready = app.anonymous(Method::GET, "/readyz").send().await.unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn cancelling_a_queued_job_cancels_every_item_and_is_idempotent() {
    let app = TestApp::spawn().await;
    let library = app.create_library("photos").await;
    app.upload(library, &["chelsea.png", "coffee.png"]).await;
    let pipeline = app.create_pipeline("p", one_stage()).await;
    let job = app.submit_job(pipeline, library).await;
    // Read it first, so a cached view of the queued job exists.
    let queued = app.job(job).await;
    assert_eq!(queued.status, JobStatus::Queued);

    let cancelled = app.cancel_job(job).await;
    assert_eq!(cancelled.status, JobStatus::Cancelled);
    assert_eq!(cancelled.counts.cancelled, 2);
    assert_eq!(cancelled.counts.pending, 0);
    assert_eq!(cancelled.percent_complete, 100.0);
    assert!(cancelled.finished_at.is_some());
    // Items written before the cancellation are cancelled; the rest are never written.
    assert_eq!(
        app.query_i64("SELECT count(*) FROM job_items WHERE status <> 'cancelled'")
            .await,
        0
    );

    let fetched = app.job(job).await;
    assert_eq!(
        fetched.status,
        JobStatus::Cancelled,
        "visible at once, not when the cached view expires"
    );

    let again = app.cancel_job(job).await;
    assert_eq!(again.counts.cancelled, 2);

    assert_eq!(
        app.post(&format!("/api/jobs/{}/cancel", Uuid::now_v7()))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn a_finished_job_cannot_be_cancelled() {
    let app = TestApp::spawn().await;
    let library = app.create_library("photos").await;
    app.upload(library, &["chelsea.png"]).await;
    let pipeline = app.create_pipeline("p", one_stage()).await;
    let job = app.submit_job(pipeline, library).await;
    app.db
        .execute_unprepared(&format!(
            "UPDATE jobs SET status = 'completed' WHERE id = '{job}'"
        ))
        .await
        .unwrap();
    let response = app
        .post(&format!("/api/jobs/{job}/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
}

#[tokio::test]
async fn a_job_keeps_the_pipeline_as_it_was_at_submission() {
    let app = TestApp::spawn().await;
    let library = app.create_library("photos").await;
    app.upload(library, &["chelsea.png"]).await;
    let pipeline = app.create_pipeline("before", two_stages()).await;
    let job = app.submit_job(pipeline, library).await;
    let update = app
        .put(&format!("/api/pipelines/{pipeline}"))
        .json(&json!({"name": "after", "stages": [{"name": "x", "prompt": "y"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(update.status(), 200);
    let job = app.job(job).await;
    assert_eq!(job.pipeline_name, "before");
    assert_eq!(job.pipeline_version, 1);
    assert_eq!(job.stages.len(), 2);
}

#[tokio::test]
async fn history_is_newest_first_filtered_and_paginated_with_a_total() {
    let app = TestApp::spawn().await;
    let lib_a = app.create_library("a").await;
    let lib_b = app.create_library("b").await;
    app.upload(lib_a, &["chelsea.png"]).await;
    app.upload(lib_b, &["coffee.png"]).await;
    let p1 = app.create_pipeline("p1", one_stage()).await;
    let p2 = app.create_pipeline("p2", one_stage()).await;
    let mut jobs = Vec::new();
    for (pipeline, library) in [
        (p1, lib_a),
        (p1, lib_b),
        (p2, lib_a),
        (p2, lib_b),
        (p1, lib_a),
    ] {
        jobs.push(app.submit_job(pipeline, library).await);
    }
    app.cancel_job(jobs[1]).await;

    let history = |query: String| {
        let app = &app;
        async move {
            let page = app.history(&query).await;
            let ids: Vec<Uuid> = page.items.iter().map(|job| job.id).collect();
            (page.total, ids)
        }
    };
    let (total, ids) = history(String::new()).await;
    assert_eq!(total, 5);
    assert_eq!(
        ids,
        jobs.iter().rev().copied().collect::<Vec<_>>(),
        "newest first"
    );

    assert_eq!(
        history("?limit=2&offset=2".into()).await,
        (5, vec![jobs[2], jobs[1]])
    );
    assert_eq!(
        history("?status=cancelled".into()).await,
        (1, vec![jobs[1]])
    );
    assert_eq!(
        history(format!("?pipeline_id={p2}")).await,
        (2, vec![jobs[3], jobs[2]])
    );
    assert_eq!(
        history(format!("?library_id={lib_b}&pipeline_id={p1}")).await,
        (1, vec![jobs[1]])
    );

    // The times as the api writes them.
    let created: Vec<String> = {
        let body: Value = app.get_json("/api/jobs/history").await;
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["created_at"].as_str().unwrap().to_string())
            .collect()
    };
    // created_from is inclusive, created_to exclusive: [job 1, job 3) holds jobs 1 and 2.
    let from = urlencode(&created[4 - 1]);
    let to = urlencode(&created[4 - 3]);
    assert_eq!(
        history(format!("?created_from={from}&created_to={to}")).await,
        (2, vec![jobs[2], jobs[1]])
    );

    let bad_status = app
        .get("/api/jobs/history?status=exploded")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_status.status(), 400);
    let bad_limit = app.get("/api/jobs/history?limit=0").send().await.unwrap();
    assert_eq!(bad_limit.status(), 400);
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test]
async fn history_sorts_by_creation_finish_or_status_with_stable_pages() {
    let app = TestApp::spawn().await;
    let library = app.create_library("photos").await;
    app.upload(library, &["chelsea.png"]).await;
    let pipeline = app.create_pipeline("p", one_stage()).await;
    let mut jobs = Vec::new();
    for _ in 0..3 {
        jobs.push(app.submit_job(pipeline, library).await);
    }
    let [a, b, c] = jobs[..] else { unreachable!() };
    // Finished in the order c, a; b stays queued (no worker runs).
    for job in [c, a] {
        app.cancel_job(job).await;
    }

    let sorted = |sort: &'static str| {
        let app = &app;
        async move {
            let page = app.history(&format!("?sort={sort}")).await;
            page.items.iter().map(|job| job.id).collect::<Vec<Uuid>>()
        }
    };
    assert_eq!(sorted("created_at").await, vec![a, b, c]);
    assert_eq!(sorted("-created_at").await, vec![c, b, a]);
    assert_eq!(
        sorted("finished_at").await,
        vec![c, a, b],
        "unfinished last"
    );
    assert_eq!(
        sorted("-finished_at").await,
        vec![a, c, b],
        "unfinished last"
    );
    assert_eq!(
        sorted("status").await,
        vec![c, a, b],
        "cancelled before queued, newest first within a status"
    );
    let page = app.history("?sort=created_at&limit=1&offset=1").await;
    assert_eq!(page.items[0].id, b, "the order holds across pages");

    let bad = app
        .get("/api/jobs/history?sort=pipeline_name")
        .send()
        .await
        .unwrap();
    problem(bad, StatusCode::BAD_REQUEST).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_items_carry_the_tokens_and_stage_counts_of_the_jobs_details() {
    let mut app = TestApp::spawn().await;
    let _standin = start_standin(&mut app.settings);
    let job = app.submit_job_over(&distinct_images(6), two_stages()).await;
    let finished = app.run_to_end(job).await;
    assert_eq!(finished.status, JobStatus::Completed, "{finished:?}");
    assert!(finished.usage.input_tokens > 0);

    // The same JSON in both.
    let detail: Value = app.get_json(&format!("/api/jobs/{job}")).await;
    let history: Value = app.get_json("/api/jobs/history").await;
    let item = &history["items"][0];
    assert_eq!(id_of(item), job);
    assert_eq!(item["usage"], detail["usage"]);
    assert_eq!(item["stages"], detail["stages"]);
    assert_eq!(item["stages"].as_array().unwrap().len(), 2);
    assert_eq!(item["stages"][0]["processed"], 6);
}

#[tokio::test]
async fn a_stored_status_that_names_no_status_is_a_corrupt_row_and_a_500_without_details() {
    let app = TestApp::spawn().await;
    let library = app.create_library("photos").await;
    app.upload(library, &["chelsea.png"]).await;
    let pipeline = app.create_pipeline("p", one_stage()).await;
    let job = app.submit_job(pipeline, library).await;
    // As a newer release that added a status (and widened the check) might have written it.
    app.db
        .execute_unprepared("ALTER TABLE jobs DROP CONSTRAINT jobs_status_check")
        .await
        .unwrap();
    app.sql_execute(
        "UPDATE jobs SET status = 'done' WHERE id = $1",
        [job.into()],
    )
    .await;
    let tenant = app
        .sql_rows("SELECT tenant_id FROM jobs WHERE id = $1", [job.into()])
        .await[0]
        .try_get::<Uuid>("", "tenant_id")
        .unwrap();

    // Read by raw SQL and by the entity: the same error.
    let tenant = store::TenantId(tenant);
    let by_sql = store::jobs::get(&app.db, tenant, job).await.unwrap_err();
    let by_entity = store::jobs::by_ids(&app.db, tenant, &[job])
        .await
        .unwrap_err();
    for error in [by_sql, by_entity] {
        let store::StoreError::Corrupt(what) = error else {
            panic!("expected a corrupt row, got {error:?}");
        };
        assert!(what.contains("unknown job status \"done\""), "{what}");
    }

    for path in [format!("/api/jobs/{job}"), "/api/jobs/history".to_string()] {
        let response = app.get(&path).send().await.unwrap();
        assert_eq!(response.status(), 500, "{path}");
        let body = response.text().await.unwrap();
        assert!(body.contains("internal_error"), "{body}");
        assert!(!body.contains("done"), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_event_makes_the_next_get_read_the_job_afresh() {
    use domain::event::{JOB_EVENT_VERSION, JobCounts, JobEvent, JobEventKind};
    // Views cached for a minute: only the event can make the second read fresh.
    let app = TestApp::spawn_with(|s| s.http.job_cache_millis = 60_000).await;
    let job = app.submit_job_over(&distinct_images(1), one_stage()).await;
    assert_eq!(app.job(job).await.status, JobStatus::Queued);
    let mut reader = EventReader::new(
        app.get(&format!("/api/jobs/{job}/events"))
            .send()
            .await
            .unwrap(),
    );
    assert_eq!(reader.next().await.unwrap().event, "snapshot");

    // Another process (a worker, the re-driver) changes the job and announces it.
    app.db
        .execute_unprepared(&format!(
            "UPDATE jobs SET event_seq = 1, status = 'running' WHERE id = '{job}'"
        ))
        .await
        .unwrap();
    let event = JobEvent {
        v: JOB_EVENT_VERSION,
        job_id: job,
        tenant_id: app.tenant_id("tenant-a").await,
        seq: 1,
        kind: JobEventKind::Progress { items: Vec::new() },
        status: JobStatus::Running,
        counts: JobCounts::default(),
        stop_reason: None,
    };
    let heard = reader
        .publish_until(&app.publisher(), &event, |_| true)
        .await;
    assert_eq!(heard.event, "progress", "{heard:?}");

    // A client that saw the event reads the job as the event says, not as it was cached.
    assert_eq!(app.job(job).await.status, JobStatus::Running);
}

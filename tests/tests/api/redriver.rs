//! The dead-letter re-driver: draining `{prefix}.dead` into `dead_letters`, the admin API
//! (auth, listing, re-drive, purge, audit) and the automatic re-drive policy, against the
//! real PostgreSQL and RabbitMQ.

use std::time::Duration;

use broker::{DeadLetter, Publisher, Topology};
use chrono::{DateTime, Utc};
use cohere_standin::{RuntimeConfig, sha256_hex};
use domain::{job::ErrorClass, message::StageMessage};
use lapin::{
    BasicProperties,
    options::{BasicGetOptions, BasicPublishOptions, BasicRejectOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable},
};
use redriver::{PolicyPass, RunningRedriver};
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use secrecy::SecretString;
use serde_json::{Value, json};
use store::{
    dead_letters::NewDeadLetter,
    entities::redrive_audit,
    work::{self, Change},
};
use system_tests::{
    RunningWorker, TestApp, amqp_url, distinct_images, eventually, one_stage, start_standin,
};
use uuid::Uuid;

const TOKEN: &str = "test-admin-token-0123456789";
const WAIT: Duration = Duration::from_secs(30);
const RUN_TIMEOUT: Duration = Duration::from_secs(90);

/// The re-driver (drainer + admin API) on a free port, for the test's database and broker
/// prefix. The policy timer is off: tests run its pass directly.
async fn start_redriver(app: &TestApp, token: Option<&str>) -> Admin {
    let mut settings = app.settings.clone();
    settings.redriver.host = "127.0.0.1".into();
    settings.redriver.port = 0;
    settings.redriver.admin_token = token.map(SecretString::from);
    settings.redriver.auto_redrive = false;
    let running = redriver::Application::build(&settings)
        .await
        .expect("build the redriver")
        .start();
    Admin {
        address: format!("http://127.0.0.1:{}", running.port()),
        client: reqwest::Client::new(),
        running,
    }
}

/// A running re-driver and a client for its admin API.
struct Admin {
    address: String,
    client: reqwest::Client,
    running: RunningRedriver,
}

impl Admin {
    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client
            .get(format!("{}{path}", self.address))
            .bearer_auth(TOKEN)
    }

    fn post(&self, path: &str, body: Value) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}{path}", self.address))
            .bearer_auth(TOKEN)
            .json(&body)
    }

    async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).send().await.unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    async fn post_json(&self, path: &str, body: Value, requested_by: Option<&str>) -> Value {
        let mut request = self.post(path, body);
        if let Some(who) = requested_by {
            request = request.header("X-Requested-By", who);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, 200, "POST {path}: {text}");
        serde_json::from_str(&text).unwrap()
    }
}

fn publisher(app: &TestApp) -> Publisher {
    Publisher::new(
        app.settings.amqp.url.clone(),
        Topology::from_settings(&app.settings),
        Duration::from_secs(5),
    )
}

fn time(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

async fn tenant_id(app: &TestApp) -> Uuid {
    app.db
        .query_one_raw(Statement::from_string(
            DatabaseBackend::Postgres,
            "SELECT id FROM tenants LIMIT 1",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "id")
        .unwrap()
}

async fn item_status(app: &TestApp, item: Uuid) -> String {
    app.db
        .query_one_raw(Statement::from_string(
            DatabaseBackend::Postgres,
            format!("SELECT status FROM job_items WHERE id = '{item}'"),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "status")
        .unwrap()
}

async fn audits(app: &TestApp) -> Vec<redrive_audit::Model> {
    store::dead_letters::recent_audits(&app.db, 100)
        .await
        .unwrap()
}

/// A dead letter as the worker would describe one.
fn transient_letter(job: Uuid, item: Uuid, stage: u32) -> DeadLetter {
    let mut letter = DeadLetter::new(ErrorClass::Transient, "Cohere answered HTTP 503");
    letter.attempts = 5;
    letter.first_failed_at = time("2026-11-29T08:00:00.123456Z");
    letter.job_id = Some(job);
    letter.item_id = Some(item);
    letter.stage_index = Some(stage);
    letter.model = Some("command-a-vision-07-2025".into());
    letter
}

/// A row as the drainer would store it, inserted directly (for tests about what happens to
/// stored letters).
fn row(
    class: ErrorClass,
    job: Option<Uuid>,
    item: Option<Uuid>,
    stage: Option<u32>,
    dead_lettered_at: DateTime<Utc>,
) -> NewDeadLetter {
    let payload = match (job, item) {
        (Some(job_id), Some(item_id)) => StageMessage {
            job_id,
            item_id,
            stage_index: stage.unwrap_or(0),
            attempt: 0,
        }
        .encode(),
        _ => b"not a stage message".to_vec(),
    };
    NewDeadLetter {
        id: Uuid::now_v7(),
        tenant_id: None,
        job_id: job,
        item_id: item,
        stage_index: stage,
        error_class: class,
        error_message: format!("{} failure", class.as_str()),
        attempts: 1,
        first_failed_at: Some(dead_lettered_at),
        dead_lettered_at,
        payload,
        headers: json!({"x-error-class": class.as_str()}),
    }
}

async fn insert(app: &TestApp, letter: &NewDeadLetter) {
    assert!(
        store::dead_letters::insert(&app.db, letter).await.unwrap(),
        "stored"
    );
}

/// Publishes `body` to the stage queue without headers, takes it back off and rejects it:
/// the broker itself dead-letters it.
async fn reject_through_the_broker(app: &TestApp, body: &[u8]) {
    let connection = broker::connect(&amqp_url(), "test-reject", Duration::from_secs(5))
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let topology = Topology::from_settings(&app.settings);
    topology.declare(&channel).await.unwrap();
    channel
        .basic_publish(
            topology.work_exchange().as_str().into(),
            broker::topology::STAGE_ROUTING_KEY.into(),
            BasicPublishOptions::default(),
            body,
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let queue = topology.stage_queue();
    let message = eventually(WAIT, "the raw message on the stage queue", || async {
        channel
            .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false })
            .await
            .unwrap()
    })
    .await;
    channel
        .basic_reject(
            message.delivery.delivery_tag,
            BasicRejectOptions { requeue: false },
        )
        .await
        .unwrap();
    let _ = connection.close(200, "done".into()).await;
}

/// Messages waiting in this test's dead-letter queue (none held by a consumer).
async fn dead_queue_depth(app: &TestApp) -> u32 {
    let connection = broker::connect(&amqp_url(), "test-depth", Duration::from_secs(5))
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let queue = Topology::from_settings(&app.settings).dead_letter_queue();
    let declared = channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let _ = connection.close(200, "done".into()).await;
    declared.message_count()
}

/// Submits a one-stage job over `count` images and fails the items `failing` picks at
/// stage 0, as a worker would. Returns the job and its items in the order of the messages.
async fn job_with_failed_items(
    app: &TestApp,
    count: usize,
    failing: &[usize],
) -> (Uuid, Vec<Uuid>) {
    let library = app.create_library("photos").await;
    app.upload_bytes(library, &distinct_images(count)).await;
    let pipeline = app.create_pipeline("describe", one_stage()).await;
    let job = app.submit_job(pipeline, library).await;
    let messages: Vec<StageMessage> = app
        .drain_stage_queue(count)
        .await
        .into_iter()
        .map(|(body, _)| StageMessage::decode(&serde_json::to_vec(&body).unwrap()).unwrap())
        .collect();
    assert_eq!(messages.len(), count);
    let changes: Vec<Change> = failing
        .iter()
        .map(|&i| Change::Fail {
            message: messages[i],
            class: ErrorClass::Transient,
            reason: "Cohere answered HTTP 503".into(),
        })
        .collect();
    work::apply(&app.db, &changes).await.unwrap();
    for &i in failing {
        assert_eq!(item_status(app, messages[i].item_id).await, "failed");
    }
    (job, messages.iter().map(|m| m.item_id).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_drained_with_their_class_reason_attempts_and_item() {
    let app = TestApp::spawn().await;
    let admin = start_redriver(&app, Some(TOKEN)).await;
    let tenant = tenant_id(&app).await;
    let (job, item) = (Uuid::new_v4(), Uuid::new_v4());
    let mut letter = transient_letter(job, item, 1);
    letter.tenant_id = Some(tenant);
    let body = StageMessage {
        job_id: job,
        item_id: item,
        stage_index: 1,
        attempt: 4,
    }
    .encode();
    publisher(&app)
        .publish_dead_letters(&[(body.clone(), letter.clone())])
        .await
        .unwrap();
    reject_through_the_broker(&app, b"{not a stage message").await;

    eventually(WAIT, "both dead letters stored", || async {
        (app.query_i64("SELECT count(*) FROM dead_letters").await == 2).then_some(())
    })
    .await;

    let stored = admin
        .get_json(&format!("/admin/dead-letters/{}", letter.id))
        .await;
    assert_eq!(stored["error_class"], "transient");
    assert_eq!(stored["error_message"], "Cohere answered HTTP 503");
    assert_eq!(stored["attempts"], 5);
    assert_eq!(
        time(stored["first_failed_at"].as_str().unwrap()),
        letter.first_failed_at
    );
    assert_eq!(stored["tenant_id"], tenant.to_string());
    assert_eq!(stored["job_id"], job.to_string());
    assert_eq!(stored["item_id"], item.to_string());
    assert_eq!(stored["stage_index"], 1);
    assert_eq!(stored["status"], "open");
    assert_eq!(stored["redrive_count"], 0);
    assert_eq!(
        stored["payload_text"],
        String::from_utf8(body.clone()).unwrap()
    );
    assert_eq!(stored["payload_bytes"], body.len());
    assert_eq!(stored["headers"]["x-error-class"], "transient");
    assert_eq!(stored["headers"]["x-model"], "command-a-vision-07-2025");

    let poison = admin
        .get_json("/admin/dead-letters?error_class=poison")
        .await;
    assert_eq!(poison["total"], 1, "{poison}");
    let poison_id = poison["items"][0]["id"].as_str().unwrap();
    let poison = admin
        .get_json(&format!("/admin/dead-letters/{poison_id}"))
        .await;
    assert_eq!(poison["error_class"], "poison");
    assert!(
        poison["error_message"].as_str().unwrap().contains("broker"),
        "{poison}"
    );
    assert!(poison["item_id"].is_null());
    assert!(poison["job_id"].is_null());
    assert_eq!(poison["payload_text"], "{not a stage message");
    assert_eq!(
        poison["headers"]["x-death"][0]["reason"], "rejected",
        "the broker's own headers are kept: {poison}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_delivered_twice_is_stored_once_and_acknowledged() {
    let app = TestApp::spawn().await;
    let admin = start_redriver(&app, Some(TOKEN)).await;
    let letter = transient_letter(Uuid::new_v4(), Uuid::new_v4(), 0);
    let marker = transient_letter(Uuid::new_v4(), Uuid::new_v4(), 0);
    let publisher = publisher(&app);
    // The same dead letter twice (as after an ack lost with a connection), then another.
    for l in [&letter, &letter, &marker] {
        publisher
            .publish_dead_letters(&[(b"{}".to_vec(), l.clone())])
            .await
            .unwrap();
    }
    // One consumer settles deliveries in order: once the last is stored, the others are done.
    eventually(WAIT, "the last dead letter stored", || async {
        store::dead_letters::get(&app.db, marker.id).await.ok()
    })
    .await;
    assert_eq!(
        app.query_i64(&format!(
            "SELECT count(*) FROM dead_letters WHERE id = '{}'",
            letter.id
        ))
        .await,
        1
    );
    assert_eq!(app.query_i64("SELECT count(*) FROM dead_letters").await, 2);
    // Stopped, the re-driver hands back whatever it had not acknowledged: nothing is left.
    admin.running.stop().await;
    assert_eq!(
        dead_queue_depth(&app).await,
        0,
        "the duplicate was acknowledged, not refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_filters_by_job_class_stage_and_status_newest_first() {
    let app = TestApp::spawn().await;
    let admin = start_redriver(&app, Some(TOKEN)).await;
    let (job_a, job_b) = (Uuid::new_v4(), Uuid::new_v4());
    let rows = [
        row(
            ErrorClass::Transient,
            Some(job_a),
            Some(Uuid::new_v4()),
            Some(0),
            time("2026-11-29T01:00:00Z"),
        ),
        row(
            ErrorClass::Permanent,
            Some(job_a),
            Some(Uuid::new_v4()),
            Some(1),
            time("2026-11-29T02:00:00Z"),
        ),
        row(
            ErrorClass::Transient,
            Some(job_b),
            Some(Uuid::new_v4()),
            Some(0),
            time("2026-11-29T03:00:00Z"),
        ),
        row(
            ErrorClass::Poison,
            None,
            None,
            None,
            time("2026-11-29T04:00:00Z"),
        ),
    ];
    for r in &rows {
        insert(&app, r).await;
    }
    store::dead_letters::mark_redriven(&app.db, &[rows[2].id])
        .await
        .unwrap();
    let ids = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["id"].as_str().unwrap().to_string())
            .collect()
    };
    let id = |i: usize| rows[i].id.to_string();

    let all = admin.get_json("/admin/dead-letters").await;
    assert_eq!(all["total"], 4);
    assert_eq!(ids(&all), [id(3), id(2), id(1), id(0)], "newest first");
    let by_job = admin
        .get_json(&format!("/admin/dead-letters?job_id={job_a}"))
        .await;
    assert_eq!(ids(&by_job), [id(1), id(0)]);
    let by_class = admin
        .get_json("/admin/dead-letters?error_class=transient")
        .await;
    assert_eq!(ids(&by_class), [id(2), id(0)]);
    let by_stage = admin.get_json("/admin/dead-letters?stage_index=1").await;
    assert_eq!(ids(&by_stage), [id(1)]);
    let combined = admin
        .get_json(&format!(
            "/admin/dead-letters?job_id={job_a}&error_class=transient&stage_index=0"
        ))
        .await;
    assert_eq!(ids(&combined), [id(0)]);
    let open = admin.get_json("/admin/dead-letters?status=open").await;
    assert_eq!(open["total"], 3);
    let redriven = admin.get_json("/admin/dead-letters?status=redriven").await;
    assert_eq!(ids(&redriven), [id(2)]);
    let window = admin
        .get_json("/admin/dead-letters?since=2026-11-29T02:00:00Z&until=2026-11-29T04:00:00Z")
        .await;
    assert_eq!(
        ids(&window),
        [id(2), id(1)],
        "since inclusive, until exclusive"
    );
    let page = admin.get_json("/admin/dead-letters?limit=2&offset=1").await;
    assert_eq!(page["total"], 4);
    assert_eq!(ids(&page), [id(2), id(1)]);

    let bad = admin
        .get("/admin/dead-letters?error_class=sometimes")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(bad.headers()["content-type"], "application/problem+json");
    let missing = admin
        .get(&format!("/admin/dead-letters/{}", Uuid::new_v4()))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_refuses_a_missing_or_wrong_token_and_everything_without_a_configured_one() {
    let app = TestApp::spawn().await;
    let admin = start_redriver(&app, Some(TOKEN)).await;
    let url = |path: &str| format!("{}{path}", admin.address);

    let anonymous = admin
        .client
        .get(url("/admin/dead-letters"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        anonymous.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = anonymous.json().await.unwrap();
    assert_eq!(problem["code"], "unauthorized");
    assert!(!problem.to_string().contains(TOKEN));

    for (method, path) in [
        ("GET", "/admin/dead-letters"),
        ("GET", "/admin/openapi.json"),
        ("POST", "/admin/dead-letters/redrive"),
        ("POST", "/admin/dead-letters/purge"),
    ] {
        let request = match method {
            "GET" => admin.client.get(url(path)),
            _ => admin
                .client
                .post(url(path))
                .json(&json!({"filter": {}, "dry_run": false})),
        };
        let wrong = request
            .bearer_auth(format!("{TOKEN}x"))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401, "{method} {path} with a wrong token");
    }
    assert!(
        audits(&app).await.is_empty(),
        "a refused request does nothing"
    );

    // With the token: the document it serves is the one it generates.
    let served: Value = admin.get_json("/admin/openapi.json").await;
    let generated: Value = serde_json::from_str(&redriver::openapi::spec_json()).unwrap();
    assert_eq!(served, generated);
    // Health needs no token.
    let health = admin.client.get(url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = admin.client.get(url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);

    // No token configured: every admin request is refused, whatever it carries.
    let closed = start_redriver(&app, None).await;
    let refused = closed.get("/admin/dead-letters").send().await.unwrap();
    assert_eq!(refused.status(), 503);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["code"], "admin_api_disabled");
    let refused = closed
        .client
        .get(format!("{}/admin/dead-letters", closed.address))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_without_a_broker_is_503_with_the_documented_report() {
    let mut app = TestApp::spawn().await;
    app.settings.amqp.url = SecretString::from("amqp://guest:guest@127.0.0.1:1/%2f");
    let admin = start_redriver(&app, Some(TOKEN)).await;
    let ready = admin
        .client
        .get(format!("{}/readyz", admin.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(ready.headers()["content-type"], "application/json");
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["database"], "ok", "{body}");
    assert_eq!(body["checks"]["broker"], "unavailable", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_re_drive_counts_what_it_would_do_changes_nothing_and_is_audited() {
    let app = TestApp::spawn().await;
    let admin = start_redriver(&app, Some(TOKEN)).await;
    let (job, items) = job_with_failed_items(&app, 2, &[0]).await;
    let now = Utc::now();
    let letters = [
        // Its item failed: would be re-driven.
        row(
            ErrorClass::Transient,
            Some(job),
            Some(items[0]),
            Some(0),
            now,
        ),
        // Its item is still pending: skipped.
        row(
            ErrorClass::Transient,
            Some(job),
            Some(items[1]),
            Some(0),
            now,
        ),
        // No item: skipped.
        row(ErrorClass::Poison, None, None, None, now),
    ];
    for l in &letters {
        insert(&app, l).await;
    }

    let report = admin
        .post_json(
            "/admin/dead-letters/redrive",
            json!({"filter": {}, "dry_run": true}),
            Some("alice"),
        )
        .await;
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["matched"], 3, "{report}");
    assert_eq!(report["would_redrive"], 1, "{report}");
    assert_eq!(report["redriven"], 0);
    assert_eq!(report["skipped"]["no_item"], 1);
    assert_eq!(report["skipped"]["item_not_failed"], 1);

    // Nothing changed.
    assert_eq!(item_status(&app, items[0]).await, "failed");
    for l in &letters {
        let stored = store::dead_letters::get(&app.db, l.id).await.unwrap();
        assert_eq!(stored.status, domain::job::DeadLetterStatus::Open);
        assert_eq!(stored.redrive_count, 0);
    }
    assert!(
        app.drain_stage_queue(10).await.is_empty(),
        "no stage message published"
    );
    // But it is on record.
    let audits = audits(&app).await;
    assert_eq!(audits.len(), 1);
    let audit = &audits[0];
    assert_eq!(audit.requested_by, "alice");
    assert!(audit.dry_run);
    assert_eq!(audit.matched, 3);
    assert_eq!(audit.redriven, 0);
    assert_eq!(audit.filter["action"], "redrive");
    assert_eq!(audit.filter["filter"]["status"], "open");
    assert_eq!(
        report["audit_id"],
        audit.id.to_string(),
        "the report names its audit record"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_driving_a_failed_item_reopens_it_publishes_its_stage_message_and_is_audited() {
    let mut app = TestApp::spawn().await;
    let standin = start_standin(&mut app.settings);
    let images = distinct_images(3);
    standin
        .standin
        .set_config(RuntimeConfig {
            reject_images: [sha256_hex(&images[1].1)].into(),
            ..RuntimeConfig::default()
        })
        .unwrap();
    let admin = start_redriver(&app, Some(TOKEN)).await;
    let library = app.create_library("photos").await;
    app.upload_bytes(library, &images).await;
    let pipeline = app.create_pipeline("describe", one_stage()).await;
    let job = app.submit_job(pipeline, library).await;
    let worker = RunningWorker::start(&app.settings).await;
    let finished = app.wait_for_job(job, RUN_TIMEOUT).await;
    // No worker while re-driving: the re-opened message must stay on the queue to be seen.
    worker.stop().await;
    assert_eq!(finished["status"], "completed_with_errors", "{finished}");
    assert_eq!(finished["counts"]["failed"], 1);

    // The worker dead-lettered the rejected image's message; the re-driver drained it.
    let listed = eventually(WAIT, "the worker's dead letter drained", || async {
        let page = admin
            .get_json(&format!("/admin/dead-letters?job_id={job}"))
            .await;
        (page["total"] == 1).then_some(page)
    })
    .await;
    let letter = &listed["items"][0];
    assert_eq!(letter["error_class"], "permanent");
    let letter_id: Uuid = letter["id"].as_str().unwrap().parse().unwrap();
    let item: Uuid = letter["item_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(item_status(&app, item).await, "failed");

    // An operator re-drives the job's dead letters.
    let report = admin
        .post_json(
            "/admin/dead-letters/redrive",
            json!({"filter": {"job_id": job}, "dry_run": false}),
            Some("ops@example.org"),
        )
        .await;
    assert_eq!(report["dry_run"], false);
    assert_eq!(report["matched"], 1, "{report}");
    assert_eq!(report["redriven"], 1, "{report}");
    assert_eq!(report["skipped"]["no_item"], 0);
    assert_eq!(report["skipped"]["item_not_failed"], 0);

    // The item is pending again at the stage where it failed, and the job runs again.
    assert_eq!(item_status(&app, item).await, "pending");
    // (The api caches job views for a moment.)
    let reopened = eventually(WAIT, "the job to run again", || async {
        let job: Value = app.get_json(&format!("/api/jobs/{job}")).await;
        (job["status"] == "running").then_some(job)
    })
    .await;
    assert_eq!(reopened["counts"]["failed"], 0);
    assert_eq!(reopened["counts"]["pending"], 1);
    // Its stage message is on the stage queue, marked as re-opening the item.
    let messages = app.drain_stage_queue(10).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let (body, properties) = &messages[0];
    assert_eq!(body["item_id"], item.to_string());
    assert_eq!(body["job_id"], job.to_string());
    assert_eq!(body["stage_index"], 0);
    let headers = properties.headers().as_ref().expect("headers");
    assert!(
        matches!(
            headers.inner().get(broker::dead_letter::REOPENED),
            Some(AMQPValue::Boolean(true))
        ),
        "{headers:?}"
    );
    // The dead letter is marked re-driven.
    let stored = admin
        .get_json(&format!("/admin/dead-letters/{letter_id}"))
        .await;
    assert_eq!(stored["status"], "redriven");
    assert_eq!(stored["redrive_count"], 1);
    assert!(stored["last_redriven_at"].is_string());
    // And the request is on record.
    let audits = audits(&app).await;
    assert_eq!(audits.len(), 1);
    assert_eq!(audits[0].requested_by, "ops@example.org");
    assert!(!audits[0].dry_run);
    assert_eq!(audits[0].matched, 1);
    assert_eq!(audits[0].redriven, 1);
    assert_eq!(audits[0].filter["filter"]["job_id"], job.to_string());

    // Re-driving again finds nothing open.
    let again = admin
        .post_json(
            "/admin/dead-letters/redrive",
            json!({"filter": {"job_id": job}}),
            None,
        )
        .await;
    assert_eq!(again["matched"], 0);
    let latest = &audits_newest(&app).await;
    assert_eq!(latest.requested_by, "admin-api");
}

async fn audits_newest(app: &TestApp) -> redrive_audit::Model {
    audits(app).await.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auto_redrive_pass_takes_old_transient_letters_only_while_no_breaker_is_open() {
    let app = TestApp::spawn().await;
    let (job, items) = job_with_failed_items(&app, 4, &[0, 1, 2, 3]).await;
    let old = Utc::now() - chrono::Duration::hours(2);
    let due = row(
        ErrorClass::Transient,
        Some(job),
        Some(items[0]),
        Some(0),
        old,
    );
    let permanent = row(
        ErrorClass::Permanent,
        Some(job),
        Some(items[1]),
        Some(0),
        old,
    );
    let young = row(
        ErrorClass::Transient,
        Some(job),
        Some(items[2]),
        Some(0),
        Utc::now(),
    );
    let exhausted = row(
        ErrorClass::Transient,
        Some(job),
        Some(items[3]),
        Some(0),
        old,
    );
    for l in [&due, &permanent, &young, &exhausted] {
        insert(&app, l).await;
    }
    app.db
        .execute_unprepared(&format!(
            "UPDATE dead_letters SET redrive_count = 3 WHERE id = '{}'",
            exhausted.id
        ))
        .await
        .unwrap();
    let mut settings = app.settings.clone();
    settings.redriver.auto_redrive_after_seconds = 600;
    settings.redriver.auto_redrive_max = 3;
    let ctx = redriver::Redriver::connect(&settings).await.unwrap();

    // A worker's breaker opened a moment ago: Cohere may still be down.
    app.db
        .execute_unprepared(
            "INSERT INTO circuit_breakers (worker_id, model, state, reason, changed_at)
             VALUES ('worker-1', 'command-a-vision-07-2025', 'open', 'HTTP 503', now())",
        )
        .await
        .unwrap();
    let pass = redriver::auto_redrive_pass(&ctx).await.unwrap();
    assert_eq!(pass, PolicyPass::CohereUnhealthy);
    assert_eq!(item_status(&app, items[0]).await, "failed");
    assert_eq!(
        store::dead_letters::get(&app.db, due.id)
            .await
            .unwrap()
            .status,
        domain::job::DeadLetterStatus::Open
    );
    assert!(audits(&app).await.is_empty());
    assert!(app.drain_stage_queue(10).await.is_empty());

    // The breaker closed again.
    app.db
        .execute_unprepared("UPDATE circuit_breakers SET state = 'closed', changed_at = now()")
        .await
        .unwrap();
    let PolicyPass::Redrove(report) = redriver::auto_redrive_pass(&ctx).await.unwrap() else {
        panic!("the pass should re-drive");
    };
    assert_eq!(report.matched, 1, "{report:?}");
    assert_eq!(report.redriven, 1);
    let redriven = store::dead_letters::get(&app.db, due.id).await.unwrap();
    assert_eq!(redriven.status, domain::job::DeadLetterStatus::Redriven);
    assert_eq!(redriven.redrive_count, 1);
    assert_eq!(item_status(&app, items[0]).await, "pending");
    for (untouched, item) in [
        (&permanent, items[1]),
        (&young, items[2]),
        (&exhausted, items[3]),
    ] {
        assert_eq!(
            store::dead_letters::get(&app.db, untouched.id)
                .await
                .unwrap()
                .status,
            domain::job::DeadLetterStatus::Open
        );
        assert_eq!(item_status(&app, item).await, "failed");
    }
    let messages = app.drain_stage_queue(10).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].0["item_id"], items[0].to_string());
    let audits = audits(&app).await;
    assert_eq!(audits.len(), 1);
    assert_eq!(audits[0].requested_by, "auto-redrive");
    assert_eq!(audits[0].redriven, 1);
    assert!(!audits[0].dry_run);

    // Nothing left to do: the next pass does nothing and writes nothing.
    assert_eq!(
        redriver::auto_redrive_pass(&ctx).await.unwrap(),
        PolicyPass::NothingToDo
    );
    assert_eq!(self::audits(&app).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purging_marks_letters_purged_keeps_their_payload_and_is_audited() {
    let app = TestApp::spawn().await;
    let admin = start_redriver(&app, Some(TOKEN)).await;
    let now = Utc::now();
    let poison = [
        row(ErrorClass::Poison, None, None, None, now),
        row(ErrorClass::Poison, None, None, None, now),
    ];
    let transient = row(
        ErrorClass::Transient,
        Some(Uuid::new_v4()),
        Some(Uuid::new_v4()),
        Some(0),
        now,
    );
    for l in poison.iter().chain([&transient]) {
        insert(&app, l).await;
    }

    let dry = admin
        .post_json(
            "/admin/dead-letters/purge",
            json!({"filter": {"error_class": "poison"}, "dry_run": true}),
            None,
        )
        .await;
    assert_eq!(dry["matched"], 2, "{dry}");
    assert_eq!(dry["purged"], 0);
    assert_eq!(
        admin.get_json("/admin/dead-letters?status=open").await["total"],
        3,
        "a dry run purges nothing"
    );

    let purged = admin
        .post_json(
            "/admin/dead-letters/purge",
            json!({"filter": {"error_class": "poison"}}),
            Some("bob"),
        )
        .await;
    assert_eq!(purged["matched"], 2, "{purged}");
    assert_eq!(purged["purged"], 2);
    let listed = admin.get_json("/admin/dead-letters?status=purged").await;
    assert_eq!(listed["total"], 2);
    assert_eq!(
        store::dead_letters::get(&app.db, transient.id)
            .await
            .unwrap()
            .status,
        domain::job::DeadLetterStatus::Open,
        "the filter kept the transient letter out"
    );
    let kept = admin
        .get_json(&format!("/admin/dead-letters/{}", poison[0].id))
        .await;
    assert_eq!(kept["status"], "purged");
    assert_eq!(kept["payload_text"], "not a stage message", "payload kept");

    let audits = audits(&app).await;
    assert_eq!(audits.len(), 2);
    let (real, dry_run) = (&audits[0], &audits[1]);
    assert!(dry_run.dry_run);
    assert_eq!(dry_run.requested_by, "admin-api");
    assert_eq!(dry_run.matched, 2);
    assert!(!real.dry_run);
    assert_eq!(real.requested_by, "bob");
    assert_eq!(real.filter["action"], "purge");
    assert_eq!(real.filter["filter"]["error_class"], "poison");
    assert_eq!(real.matched, 2);

    // A purged letter is not re-driven by a filter that does not ask for purged letters.
    let report = admin
        .post_json(
            "/admin/dead-letters/redrive",
            json!({"filter": {"error_class": "poison"}, "dry_run": true}),
            None,
        )
        .await;
    assert_eq!(report["matched"], 0);
}

const COMMITTED: &str = include_str!("../../../openapi/redriver.json");

#[test]
fn the_committed_redriver_openapi_document_is_what_the_code_generates() {
    assert!(
        redriver::openapi::spec_json() == COMMITTED,
        "openapi/redriver.json is stale: run `make openapi` and commit the result"
    );
}

#[test]
fn every_admin_operation_requires_the_token_and_documents_its_errors() {
    let spec: Value = serde_json::from_str(&redriver::openapi::spec_json()).unwrap();
    let mut admin_operations = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if !path.starts_with("/admin/") {
                assert_eq!(
                    operation["security"],
                    json!([]),
                    "{method} {path} needs no credentials"
                );
                continue;
            }
            admin_operations += 1;
            assert_eq!(
                operation["security"],
                json!([{"admin_token": []}]),
                "{method} {path}"
            );
            let responses = operation["responses"].as_object().unwrap();
            for status in ["400", "401", "503"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {path} lacks {status}"
                );
            }
        }
    }
    assert_eq!(admin_operations, 4);
}

//! The re-driver's admin API: listing and filtering dead letters, its token, its readiness and
//! its OpenAPI document.

use api::routes::Paged;
use domain::job::ErrorClass;
use redriver::http::DeadLetterSummary;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};
use system_tests::{ADMIN_TOKEN, RedriverAdmin, TestApp, problem};
use uuid::Uuid;

use crate::letters::{audits, insert, row, time};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_filters_by_job_class_stage_and_status_newest_first() {
    let app = TestApp::spawn().await;
    let admin = RedriverAdmin::start(&app.settings).await;
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
    let list = |query: &'static str| admin.get_as::<Paged<DeadLetterSummary>>(query);
    let ids = |page: &Paged<DeadLetterSummary>| -> Vec<Uuid> {
        page.items.iter().map(|letter| letter.id).collect()
    };
    let id = |i: usize| rows[i].id;

    let all = list("/admin/dead-letters").await;
    assert_eq!(all.total, 4);
    assert_eq!(ids(&all), [id(3), id(2), id(1), id(0)], "newest first");
    let by_job: Paged<DeadLetterSummary> = admin
        .get_as(&format!("/admin/dead-letters?job_id={job_a}"))
        .await;
    assert_eq!(ids(&by_job), [id(1), id(0)]);
    let by_class = list("/admin/dead-letters?error_class=transient").await;
    assert_eq!(ids(&by_class), [id(2), id(0)]);
    let by_stage = list("/admin/dead-letters?stage_index=1").await;
    assert_eq!(ids(&by_stage), [id(1)]);
    let combined: Paged<DeadLetterSummary> = admin
        .get_as(&format!(
            "/admin/dead-letters?job_id={job_a}&error_class=transient&stage_index=0"
        ))
        .await;
    assert_eq!(ids(&combined), [id(0)]);
    let open = list("/admin/dead-letters?status=open").await;
    assert_eq!(open.total, 3);
    let redriven = list("/admin/dead-letters?status=redriven").await;
    assert_eq!(ids(&redriven), [id(2)]);
    let window =
        list("/admin/dead-letters?since=2026-11-29T02:00:00Z&until=2026-11-29T04:00:00Z").await;
    assert_eq!(
        ids(&window),
        [id(2), id(1)],
        "since inclusive, until exclusive"
    );
    let page = list("/admin/dead-letters?limit=2&offset=1").await;
    assert_eq!(page.total, 4);
    assert_eq!(ids(&page), [id(2), id(1)]);

    let bad = admin
        .get("/admin/dead-letters?error_class=sometimes")
        .send()
        .await
        .unwrap();
    problem(bad, StatusCode::BAD_REQUEST).await;
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
    let admin = RedriverAdmin::start(&app.settings).await;
    let url = |path: &str| admin.url(path);

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
    assert!(!problem.to_string().contains(ADMIN_TOKEN));

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
            .bearer_auth(format!("{ADMIN_TOKEN}x"))
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
    let served: Value = admin.get_as("/admin/openapi.json").await;
    let generated: Value = serde_json::from_str(&redriver::openapi::spec_json()).unwrap();
    assert_eq!(served, generated);
    // Health needs no token.
    let health = admin.client.get(url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = admin.client.get(url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);

    // No token configured: every admin request is refused, whatever it carries.
    let closed = RedriverAdmin::start_with_token(&app.settings, None).await;
    let refused = closed.get("/admin/dead-letters").send().await.unwrap();
    assert_eq!(refused.status(), 503);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["code"], "admin_api_disabled");
    let refused = closed
        .client
        .get(closed.url("/admin/dead-letters"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_without_a_broker_is_503_with_the_documented_report() {
    let mut app = TestApp::spawn().await;
    app.settings.amqp.url = SecretString::from("amqp://guest:guest@127.0.0.1:1/%2f");
    let admin = RedriverAdmin::start(&app.settings).await;
    let ready = admin.client.get(admin.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(ready.headers()["content-type"], "application/json");
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["database"], "ok", "{body}");
    assert_eq!(body["checks"]["broker"], "unavailable", "{body}");
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

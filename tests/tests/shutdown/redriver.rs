//! The re-driver gets SIGTERM in the middle of an operator's re-drive of many dead letters:
//! it finishes the paced step it is in, answers the request with what it did and why it
//! stopped, completes the audit record and exits 0. Every letter is either re-driven (marked
//! so, its item re-opened and its stage message published once) or still open with its item
//! still failed, ready to be re-driven again: none lost, none half done.

use std::time::Duration;

use domain::job::ErrorClass;
use serde_json::{Value, json};
use store::dead_letters::NewDeadLetter;
use system_tests::{
    ADMIN_TOKEN, RUN_TIMEOUT, TestApp, distinct_images, eventually, one_stage,
    process::{ServiceProcess, base_config, note},
    runs::rows,
};
use uuid::Uuid;

use crate::{free_port, terminate_and_expect_clean_exit};

const LETTERS: usize = 60;
/// `redriver.redrive_per_second`: each paced step takes this many letters, one step a
/// second, so the re-drive runs for several seconds.
const PER_SECOND: u64 = 10;

/// A one-stage job over `LETTERS` images, every item failed at stage 0 as a worker would
/// fail it, with a dead letter each (as the drainer would store it).
async fn failed_job_with_dead_letters(app: &TestApp) -> Uuid {
    let library = app.create_library("photos").await;
    let mut images = Vec::new();
    while images.len() < LETTERS {
        images.extend(distinct_images(LETTERS - images.len()));
    }
    for chunk in images.chunks(50) {
        app.upload_bytes(library, chunk).await;
    }
    let pipeline = app.create_pipeline("describe", one_stage()).await;
    let job = app.submit_job(pipeline, library).await;
    let messages = app.take_stage_messages(LETTERS).await;
    app.fail_items(&messages, ErrorClass::Transient, "Cohere answered HTTP 503")
        .await;
    for message in &messages {
        let letter = NewDeadLetter {
            id: Uuid::now_v7(),
            tenant_id: None,
            job_id: Some(message.job_id),
            item_id: Some(message.item_id),
            stage_index: Some(0),
            error_class: ErrorClass::Transient,
            error_message: "Cohere answered HTTP 503".into(),
            attempts: 5,
            first_failed_at: Some(chrono::Utc::now()),
            dead_lettered_at: chrono::Utc::now(),
            payload: message.encode(),
            headers: json!({"x-error-class": "transient"}),
        };
        assert!(store::dead_letters::insert(&app.db, &letter).await.unwrap());
    }
    job
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    app.query_i64(sql).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redriver_stopped_with_sigterm_mid_redrive_finishes_its_step_and_leaves_the_rest_open() {
    let app = TestApp::spawn().await;
    let job = failed_job_with_dead_letters(&app).await;

    let port = free_port();
    let config = format!(
        "{}
[redriver]
host = \"127.0.0.1\"
port = {port}
admin_token = \"{ADMIN_TOKEN}\"
auto_redrive = false
redrive_per_second = {PER_SECOND}
",
        base_config(&app.settings)
    );
    let mut redriver = ServiceProcess::start_binary("redriver", "redriver", &["serve"], &config);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    eventually(RUN_TIMEOUT, "the re-driver ready", || async {
        let response = client.get(format!("{base}/readyz")).send().await.ok()?;
        (response.status() == 200).then_some(())
    })
    .await;

    // An operator re-drives every letter of the job: several seconds at this pace.
    let request = {
        let (client, base) = (client.clone(), base.clone());
        tokio::spawn(async move {
            let response = client
                .post(format!("{base}/admin/dead-letters/redrive"))
                .bearer_auth(ADMIN_TOKEN)
                .header("X-Requested-By", "ops@example.org")
                .json(&json!({"filter": {"job_id": job}, "dry_run": false}))
                .send()
                .await
                .expect("the re-drive request is answered");
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.expect("a JSON report"),
            )
        })
    };
    let redriven_sql =
        format!("SELECT count(*) FROM dead_letters WHERE job_id = '{job}' AND status = 'redriven'");
    eventually(RUN_TIMEOUT, "a first step re-driven", || async {
        (count(&app, &redriven_sql).await >= PER_SECOND as i64).then_some(())
    })
    .await;

    terminate_and_expect_clean_exit(&mut redriver, "redriver", Duration::from_secs(10)).await;
    let (status, report) = request.await.unwrap();
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        report["stopped"], "the re-driver is shutting down",
        "{report}"
    );
    let redriven = report["redriven"].as_i64().unwrap();
    assert!(
        redriven > 0 && redriven < LETTERS as i64,
        "stopped midway: {report}"
    );
    assert_eq!(
        redriven + report["not_attempted"].as_i64().unwrap(),
        LETTERS as i64,
        "{report}"
    );
    assert_eq!(
        redriven % PER_SECOND as i64,
        0,
        "whole steps only: {report}"
    );

    // Each letter: re-driven with its item re-opened, or open with its item still failed.
    let letters = rows(
        &app,
        &format!(
            "SELECT d.status AS letter, i.status AS item FROM dead_letters d
             JOIN job_items i ON i.id = d.item_id WHERE d.job_id = '{job}'"
        ),
    )
    .await;
    assert_eq!(letters.len(), LETTERS, "no letter lost");
    let mut open = 0;
    for row in &letters {
        let letter: String = row.try_get("", "letter").unwrap();
        let item: String = row.try_get("", "item").unwrap();
        match letter.as_str() {
            "redriven" => assert_eq!(item, "pending", "a re-driven letter's item is re-opened"),
            "open" => {
                assert_eq!(
                    item, "failed",
                    "an open letter's item can still be re-driven"
                );
                open += 1;
            }
            other => panic!("letter status {other}"),
        }
    }
    assert_eq!(
        count(&app, &redriven_sql).await,
        redriven,
        "the report matches"
    );
    assert_eq!(open, LETTERS as i64 - redriven);

    // One stage message per re-opened item, none for the others.
    let published = app.drain_stage_queue(LETTERS).await;
    assert_eq!(
        published.len() as i64,
        redriven,
        "one message per re-opened item"
    );

    // The audit record is complete and says what happened.
    let audit = rows(
        &app,
        "SELECT redriven, note FROM redrive_audit WHERE requested_by = 'ops@example.org'",
    )
    .await;
    assert_eq!(audit.len(), 1);
    assert_eq!(
        i64::from(audit[0].try_get::<i32>("", "redriven").unwrap()),
        redriven
    );
    let audit_note: String = audit[0].try_get("", "note").unwrap();
    assert!(
        audit_note.contains("stopped early (the re-driver is shutting down)"),
        "{audit_note}"
    );
    note(format!(
        "redriver: {redriven} of {LETTERS} re-driven before it stopped"
    ));
}

//! Dead letters as the worker and the drainer make them, written straight to the test's
//! database, and what the tests read back: items' states and audit records.

use chrono::{DateTime, Utc};
use domain::{job::ErrorClass, message::StageMessage};
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use serde_json::json;
use store::{dead_letters::NewDeadLetter, entities::redrive_audit};
use system_tests::{TestApp, distinct_images, one_stage};
use uuid::Uuid;

pub fn time(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

pub async fn item_status(app: &TestApp, item: Uuid) -> String {
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

/// Audit records, newest first.
pub async fn audits(app: &TestApp) -> Vec<redrive_audit::Model> {
    store::dead_letters::recent_audits(&app.db, 100)
        .await
        .unwrap()
}

/// A row as the drainer would store it, inserted directly (for tests about what happens to
/// stored letters).
pub fn row(
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

pub async fn insert(app: &TestApp, letter: &NewDeadLetter) {
    assert!(
        store::dead_letters::insert(&app.db, letter).await.unwrap(),
        "stored"
    );
}

/// Submits a one-stage job over `count` images and fails the items `failing` picks at
/// stage 0, as a worker would. Returns the job and its items in the order of the messages.
pub async fn job_with_failed_items(
    app: &TestApp,
    count: usize,
    failing: &[usize],
) -> (Uuid, Vec<Uuid>) {
    let job = app
        .submit_job_over(&distinct_images(count), one_stage())
        .await;
    let messages = app.take_stage_messages(count).await;
    let failed: Vec<StageMessage> = failing.iter().map(|&i| messages[i]).collect();
    app.fail_items(&failed, ErrorClass::Transient, "Cohere answered HTTP 503")
        .await;
    for &i in failing {
        assert_eq!(item_status(app, messages[i].item_id).await, "failed");
    }
    (job, messages.iter().map(|m| m.item_id).collect())
}

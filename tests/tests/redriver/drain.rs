//! Draining `{prefix}.dead` into `dead_letters`: what is stored of each dead letter, and a
//! dead letter delivered twice stored once.

use std::time::Duration;

use api::routes::Paged;
use broker::{DeadLetter, Topology};
use domain::job::{DeadLetterStatus, ErrorClass};
use domain::message::StageMessage;
use lapin::{
    BasicProperties,
    options::{BasicGetOptions, BasicPublishOptions, BasicRejectOptions},
};
use redriver::http::{DeadLetterDetail, DeadLetterSummary};
use system_tests::{RUN_TIMEOUT, RedriverAdmin, TestApp, amqp_url, eventually};
use uuid::Uuid;

use crate::letters::time;

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
    let message = eventually(
        RUN_TIMEOUT,
        "the raw message on the stage queue",
        || async {
            channel
                .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false })
                .await
                .unwrap()
        },
    )
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
    let queue = Topology::from_settings(&app.settings).dead_letter_queue();
    let depths = app.publisher().queue_depths().await.unwrap();
    depths
        .into_iter()
        .find_map(|(name, depth)| (name == queue).then_some(depth))
        .expect("the dead-letter queue is the topology's")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_drained_with_their_class_reason_attempts_and_item() {
    let app = TestApp::spawn().await;
    let admin = RedriverAdmin::start(&app.settings).await;
    let tenant = app.tenant_id("tenant-a").await;
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
    app.publisher()
        .publish_dead_letters(&[(body.clone(), letter.clone())])
        .await
        .unwrap();
    reject_through_the_broker(&app, b"{not a stage message").await;

    eventually(RUN_TIMEOUT, "both dead letters stored", || async {
        (app.query_i64("SELECT count(*) FROM dead_letters").await == 2).then_some(())
    })
    .await;

    let stored: DeadLetterDetail = admin
        .get_as(&format!("/admin/dead-letters/{}", letter.id))
        .await;
    let summary = &stored.summary;
    assert_eq!(summary.error_class, ErrorClass::Transient);
    assert_eq!(summary.error_message, "Cohere answered HTTP 503");
    assert_eq!(summary.attempts, 5);
    assert_eq!(summary.first_failed_at, Some(letter.first_failed_at));
    assert_eq!(summary.tenant_id, Some(tenant));
    assert_eq!(summary.job_id, Some(job));
    assert_eq!(summary.item_id, Some(item));
    assert_eq!(summary.stage_index, Some(1));
    assert_eq!(summary.status, DeadLetterStatus::Open);
    assert_eq!(summary.redrive_count, 0);
    assert_eq!(
        stored.payload_text.as_deref(),
        Some(std::str::from_utf8(&body).unwrap())
    );
    assert_eq!(stored.payload_bytes, body.len());
    assert_eq!(stored.headers["x-error-class"], "transient");
    assert_eq!(stored.headers["x-model"], "command-a-vision-07-2025");

    let poison: Paged<DeadLetterSummary> =
        admin.get_as("/admin/dead-letters?error_class=poison").await;
    assert_eq!(poison.total, 1, "{poison:?}");
    let poison: DeadLetterDetail = admin
        .get_as(&format!("/admin/dead-letters/{}", poison.items[0].id))
        .await;
    assert_eq!(poison.summary.error_class, ErrorClass::Poison);
    assert!(
        poison.summary.error_message.contains("broker"),
        "{poison:?}"
    );
    assert!(poison.summary.item_id.is_none());
    assert!(poison.summary.job_id.is_none());
    assert_eq!(poison.payload_text.as_deref(), Some("{not a stage message"));
    assert_eq!(
        poison.headers["x-death"][0]["reason"], "rejected",
        "the broker's own headers are kept: {poison:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_delivered_twice_is_stored_once_and_acknowledged() {
    let app = TestApp::spawn().await;
    let admin = RedriverAdmin::start(&app.settings).await;
    let letter = transient_letter(Uuid::new_v4(), Uuid::new_v4(), 0);
    let marker = transient_letter(Uuid::new_v4(), Uuid::new_v4(), 0);
    let publisher = app.publisher();
    // The same dead letter twice (as after an ack lost with a connection), then another.
    for l in [&letter, &letter, &marker] {
        publisher
            .publish_dead_letters(&[(b"{}".to_vec(), l.clone())])
            .await
            .unwrap();
    }
    // One consumer settles deliveries in order: once the last is stored, the others are done.
    eventually(RUN_TIMEOUT, "the last dead letter stored", || async {
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

//! Re-opening failed items (`store::retry::reopen`), as a retry or a re-drive does: what it
//! skips, and that a broker failure changes nothing.

use domain::{
    event::{ItemProgress, JobEventKind},
    job::{ErrorClass, ItemStatus, JobStatus, Priority},
    message::StageMessage,
};
use store::retry::{ReopenError, ReopenScope};
use system_tests::{TestApp, distinct_images, one_stage};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_items_by_id_skips_what_is_not_failed_and_a_broker_failure_changes_nothing() {
    let app = TestApp::spawn().await;
    let job = app.submit_job_over(&distinct_images(2), one_stage()).await;
    let messages = app.take_stage_messages(2).await;
    app.fail_items(
        &messages[..1],
        ErrorClass::Permanent,
        "Cohere answered 400: invalid image",
    )
    .await;
    app.record_answer(messages[1], true).await;
    let (failed, passed, unknown) = (messages[0].item_id, messages[1].item_id, Uuid::now_v7());
    let seq = app
        .query_i64(&format!("SELECT event_seq FROM jobs WHERE id = '{job}'"))
        .await;

    // The broker refuses: nothing changes.
    let refused = store::retry::reopen(
        &app.db,
        ReopenScope::Items(vec![failed, passed, unknown]),
        |_| async { Err::<(), _>("the broker is down") },
    )
    .await;
    assert!(matches!(
        refused,
        Err(ReopenError::Publish("the broker is down"))
    ));
    assert_eq!(
        app.query_i64(&format!(
            "SELECT count(*) FROM jobs WHERE id = '{job}' AND status = 'completed_with_errors'
               AND failed_items = 1 AND pending_items = 0 AND event_seq = {seq}"
        ))
        .await,
        1
    );
    assert_eq!(app.inconsistent_counters(job).await, 0);

    let mut published = Vec::new();
    let reopened = store::retry::reopen(
        &app.db,
        ReopenScope::Items(vec![failed, passed, unknown, failed]),
        |batch| {
            published = batch;
            async { Ok::<(), ()>(()) }
        },
    )
    .await
    .unwrap();
    assert_eq!(reopened.reopened, vec![failed]);
    assert_eq!(reopened.skipped, vec![passed, unknown]);
    let message = StageMessage {
        job_id: job,
        item_id: failed,
        stage_index: 0,
        attempt: 0,
    };
    assert_eq!(published, vec![(message, Priority::Normal)]);
    assert_eq!(reopened.messages, published);
    assert_eq!(reopened.events.len(), 1);
    let event = &reopened.events[0];
    assert_eq!(event.job_id, job);
    assert_eq!(event.seq, seq + 1);
    assert_eq!(event.status, JobStatus::Running);
    assert_eq!(
        (
            event.counts.pending,
            event.counts.failed,
            event.counts.passed
        ),
        (1, 0, 1)
    );
    assert_eq!(
        event.kind,
        JobEventKind::Progress {
            items: vec![ItemProgress {
                item_id: failed,
                stage_index: 0,
                item_status: ItemStatus::Pending,
            }]
        }
    );
    assert_eq!(app.inconsistent_counters(job).await, 0);

    // Nothing left to re-open is an empty answer, not an error, and publishes nothing.
    let nothing = store::retry::reopen(&app.db, ReopenScope::Items(vec![passed]), |_| async {
        Err::<(), _>("publish must not be called with nothing to publish")
    })
    .await
    .unwrap();
    assert!(nothing.reopened.is_empty() && nothing.messages.is_empty());
    assert_eq!(nothing.skipped, vec![passed]);
}

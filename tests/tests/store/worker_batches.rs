//! The worker's batched writes (`store::work`), against the real database: one transaction
//! per batch of outcomes, spanning jobs, that counts each outcome once however often it is
//! written.

use domain::{
    event::JobEventKind,
    job::{ErrorClass, ItemStatus, JobStatus},
    message::StageMessage,
};
use store::work::{self, Change};
use system_tests::{TestApp, distinct_images, one_stage, stage_answer, two_stages};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_over_two_jobs_is_counted_once_even_when_written_again() {
    let app = TestApp::spawn().await;
    let library = app.create_library("photos").await;
    app.upload_bytes(library, &distinct_images(3)).await;
    let pipeline = app.create_pipeline("one", one_stage()).await;
    let first = app.submit_job(pipeline, library).await;
    let second = app.submit_job(pipeline, library).await;
    let messages = app.take_stage_messages(6).await;

    let loaded = work::load(&app.db, &messages).await.unwrap();
    let mut changes: Vec<Change> = messages
        .iter()
        .zip(&loaded)
        .enumerate()
        .map(|(i, (message, found))| {
            let found = found.as_ref().expect("every message finds its item");
            assert_eq!(found.item_status, ItemStatus::Pending);
            assert!(!found.result_stored);
            assert!(found.image.is_some());
            Change::Record {
                message: *message,
                image_id: found.image_id,
                result: stage_answer(i % 3 != 0),
                last_stage: true,
            }
        })
        .collect();
    // The same outcome twice in one batch (a redelivery racing the original) counts once.
    changes.push(changes[1].clone());

    let applied = work::apply(&app.db, &changes).await.unwrap();
    assert!(applied.next.iter().all(Option::is_none), "single stage");
    assert_eq!(applied.events.len(), 2, "one event per job");
    for event in &applied.events {
        assert_eq!(event.status, JobStatus::Completed);
        assert_eq!(event.counts.passed + event.counts.filtered_out, 3);
        assert_eq!(event.counts.pending + event.counts.running, 0);
        let JobEventKind::Progress { items } = &event.kind else {
            panic!("a progress event: {event:?}")
        };
        assert_eq!(items.len(), 3);
    }

    for job in [first, second] {
        let view = app.job(job).await;
        assert_eq!(view.status, JobStatus::Completed, "{view:?}");
        assert_eq!(view.stages[0].processed, 3);
        assert_eq!(view.usage.input_tokens, 30, "{view:?}");
    }
    let passed = app
        .query_i64("SELECT (sum(passed_items) + sum(filtered_out_items))::bigint FROM jobs")
        .await;
    assert_eq!(passed, 6);

    // Written again (a whole batch redelivered): nothing changes, no event.
    let again = work::apply(&app.db, &changes).await.unwrap();
    assert!(again.events.is_empty());
    assert_eq!(app.query_i64("SELECT count(*) FROM job_results").await, 6);
    let processed = app
        .query_i64("SELECT sum(processed)::bigint FROM job_stage_stats")
        .await;
    assert_eq!(processed, 6);
    let loaded = work::load(&app.db, &messages).await.unwrap();
    assert!(loaded.iter().all(|l| l.as_ref().unwrap().result_stored));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_move_to_the_next_stage_fail_or_are_cancelled_in_one_batch() {
    let app = TestApp::spawn().await;
    let job = app.submit_job_over(&distinct_images(3), two_stages()).await;
    let messages = app.take_stage_messages(3).await;
    let loaded = work::load(&app.db, &messages).await.unwrap();
    let changes = vec![
        Change::Record {
            message: messages[0],
            image_id: loaded[0].as_ref().unwrap().image_id,
            result: stage_answer(true),
            last_stage: false,
        },
        Change::Fail {
            message: messages[1],
            class: ErrorClass::Permanent,
            reason: "the image is not an image".into(),
        },
        Change::Cancel {
            message: messages[2],
        },
    ];
    let applied = work::apply(&app.db, &changes).await.unwrap();
    assert_eq!(
        applied.next,
        vec![Some(messages[0].next_stage()), None, None],
        "only the passing item moves on"
    );
    let event = &applied.events[0];
    assert_eq!(event.status, JobStatus::Running);
    assert_eq!(
        (
            event.counts.running,
            event.counts.failed,
            event.counts.cancelled
        ),
        (1, 1, 1)
    );
    let failed = app
        .query_i64(&format!(
            "SELECT count(*) FROM job_items WHERE job_id = '{job}' AND status = 'failed' \
             AND error_class = 'permanent' AND last_error = 'the image is not an image'"
        ))
        .await;
    assert_eq!(failed, 1);

    // A stage-0 message for the item that moved on only re-announces its next stage.
    let replay = work::apply(
        &app.db,
        &[Change::Resume {
            message: messages[0],
        }],
    )
    .await
    .unwrap();
    assert_eq!(replay.next, vec![Some(messages[0].next_stage())]);
    assert!(replay.events.is_empty());
    let unknown = StageMessage::first(job, Uuid::now_v7());
    assert!(work::load(&app.db, &[unknown]).await.unwrap()[0].is_none());
}

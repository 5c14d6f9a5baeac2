//! The automatic re-drive policy: which letters a pass takes, and that it waits while a
//! breaker is open.

use chrono::Utc;
use domain::job::{DeadLetterStatus, ErrorClass};
use redriver::PolicyPass;
use sea_orm::ConnectionTrait;
use system_tests::TestApp;

use crate::letters::{audits, insert, item_status, job_with_failed_items, row};

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
        DeadLetterStatus::Open
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
    assert_eq!(redriven.status, DeadLetterStatus::Redriven);
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
            DeadLetterStatus::Open
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
    assert_eq!(crate::letters::audits(&app).await.len(), 1);
}

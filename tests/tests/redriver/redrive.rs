//! Re-driving and purging dead letters through the admin API: dry runs, what a re-drive does
//! to the item and the queue, and the audit record of every request.

use api::routes::Paged;
use chrono::Utc;
use domain::job::{DeadLetterStatus, ErrorClass, JobStatus};
use lapin::types::AMQPValue;
use redriver::{
    PurgeReport, RedriveReport,
    http::{DeadLetterDetail, DeadLetterSummary},
};
use serde_json::json;
use system_tests::{RUN_TIMEOUT, RedriverAdmin, TestApp, app_rejecting_one, eventually, one_stage};
use uuid::Uuid;

use crate::letters::{audits, insert, item_status, job_with_failed_items, row};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_re_drive_counts_what_it_would_do_changes_nothing_and_is_audited() {
    let app = TestApp::spawn().await;
    let admin = RedriverAdmin::start(&app.settings).await;
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

    let report: RedriveReport = admin
        .post_as(
            "/admin/dead-letters/redrive",
            &json!({"filter": {}, "dry_run": true}),
            Some("alice"),
        )
        .await;
    assert!(report.dry_run);
    assert_eq!(report.matched, 3, "{report:?}");
    assert_eq!(report.would_redrive, Some(1), "{report:?}");
    assert_eq!(report.redriven, 0);
    assert_eq!(report.skipped.no_item, 1);
    assert_eq!(report.skipped.item_not_failed, 1);

    // Nothing changed.
    assert_eq!(item_status(&app, items[0]).await, "failed");
    for l in &letters {
        let stored = store::dead_letters::get(&app.db, l.id).await.unwrap();
        assert_eq!(stored.status, DeadLetterStatus::Open);
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
        report.audit_id,
        Some(audit.id),
        "the report names its audit record"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_driving_a_failed_item_reopens_it_publishes_its_stage_message_and_is_audited() {
    let (app, _standin, images) = app_rejecting_one(3, 1).await;
    let admin = RedriverAdmin::start(&app.settings).await;
    let job = app.submit_job_over(&images, one_stage()).await;
    // No worker while re-driving: the re-opened message must stay on the queue to be seen.
    let finished = app.run_to_end(job).await;
    assert_eq!(
        finished.status,
        JobStatus::CompletedWithErrors,
        "{finished:?}"
    );
    assert_eq!(finished.counts.failed, 1);

    // The worker dead-lettered the rejected image's message; the re-driver drained it.
    let listed = eventually(RUN_TIMEOUT, "the worker's dead letter drained", || async {
        let page: Paged<DeadLetterSummary> = admin
            .get_as(&format!("/admin/dead-letters?job_id={job}"))
            .await;
        (page.total == 1).then_some(page)
    })
    .await;
    let letter = &listed.items[0];
    assert_eq!(letter.error_class, ErrorClass::Permanent);
    let letter_id = letter.id;
    let item = letter.item_id.unwrap();
    assert_eq!(item_status(&app, item).await, "failed");

    // An operator re-drives the job's dead letters.
    let report: RedriveReport = admin
        .post_as(
            "/admin/dead-letters/redrive",
            &json!({"filter": {"job_id": job}, "dry_run": false}),
            Some("ops@example.org"),
        )
        .await;
    assert!(!report.dry_run);
    assert_eq!(report.matched, 1, "{report:?}");
    assert_eq!(report.redriven, 1, "{report:?}");
    assert_eq!(report.skipped.no_item, 0);
    assert_eq!(report.skipped.item_not_failed, 0);

    // The item is pending again at the stage where it failed, and the job runs again.
    assert_eq!(item_status(&app, item).await, "pending");
    // (The api caches job views for a moment.)
    let reopened = eventually(RUN_TIMEOUT, "the job to run again", || async {
        let job = app.job(job).await;
        (job.status == JobStatus::Running).then_some(job)
    })
    .await;
    assert_eq!(reopened.counts.failed, 0);
    assert_eq!(reopened.counts.pending, 1);
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
    let stored: DeadLetterDetail = admin
        .get_as(&format!("/admin/dead-letters/{letter_id}"))
        .await;
    assert_eq!(stored.summary.status, DeadLetterStatus::Redriven);
    assert_eq!(stored.summary.redrive_count, 1);
    assert!(stored.summary.last_redriven_at.is_some());
    // And the request is on record.
    let audits = audits(&app).await;
    assert_eq!(audits.len(), 1);
    assert_eq!(audits[0].requested_by, "ops@example.org");
    assert!(!audits[0].dry_run);
    assert_eq!(audits[0].matched, 1);
    assert_eq!(audits[0].redriven, 1);
    assert_eq!(audits[0].filter["filter"]["job_id"], job.to_string());

    // Re-driving again finds nothing open.
    let again: RedriveReport = admin
        .post_as(
            "/admin/dead-letters/redrive",
            &json!({"filter": {"job_id": job}}),
            None,
        )
        .await;
    assert_eq!(again.matched, 0);
    let latest = &crate::letters::audits(&app).await[0];
    assert_eq!(latest.requested_by, "admin-api");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purging_marks_letters_purged_keeps_their_payload_and_is_audited() {
    let app = TestApp::spawn().await;
    let admin = RedriverAdmin::start(&app.settings).await;
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

    let list = |query: &'static str| admin.get_as::<Paged<DeadLetterSummary>>(query);
    let dry: PurgeReport = admin
        .post_as(
            "/admin/dead-letters/purge",
            &json!({"filter": {"error_class": "poison"}, "dry_run": true}),
            None,
        )
        .await;
    assert_eq!(dry.matched, 2, "{dry:?}");
    assert_eq!(dry.purged, 0);
    assert_eq!(
        list("/admin/dead-letters?status=open").await.total,
        3,
        "a dry run purges nothing"
    );

    let purged: PurgeReport = admin
        .post_as(
            "/admin/dead-letters/purge",
            &json!({"filter": {"error_class": "poison"}}),
            Some("bob"),
        )
        .await;
    assert_eq!(purged.matched, 2, "{purged:?}");
    assert_eq!(purged.purged, 2);
    let listed = list("/admin/dead-letters?status=purged").await;
    assert_eq!(listed.total, 2);
    assert_eq!(
        store::dead_letters::get(&app.db, transient.id)
            .await
            .unwrap()
            .status,
        DeadLetterStatus::Open,
        "the filter kept the transient letter out"
    );
    let kept: DeadLetterDetail = admin
        .get_as(&format!("/admin/dead-letters/{}", poison[0].id))
        .await;
    assert_eq!(kept.summary.status, DeadLetterStatus::Purged);
    assert_eq!(
        kept.payload_text.as_deref(),
        Some("not a stage message"),
        "payload kept"
    );

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
    let report: RedriveReport = admin
        .post_as(
            "/admin/dead-letters/redrive",
            &json!({"filter": {"error_class": "poison"}, "dry_run": true}),
            None,
        )
        .await;
    assert_eq!(report.matched, 0);
}

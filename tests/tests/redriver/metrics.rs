//! The re-driver's `/metrics`: queue depths and age, dead letters by class, re-drives by
//! trigger.

use system_tests::{
    DeadLetteredRun, RUN_TIMEOUT, RedriverAdmin, TestApp, dead_lettered_run, distinct_images,
    eventually,
    metrics::{assert_sample, sample},
    one_stage,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redriver_reports_queue_depths_and_the_oldest_waiting_item() {
    let app = TestApp::spawn().await;
    let library = app.create_library("photos").await;
    app.upload_bytes(library, &distinct_images(5)).await;
    let pipeline = app.create_pipeline("one", one_stage()).await;
    // No worker: the five first-stage messages stay in the stage queue.
    app.submit_job(pipeline, library).await;

    let redriver = RedriverAdmin::start(&app.settings).await;
    let prefix = &app.settings.amqp.prefix;

    let text = eventually(RUN_TIMEOUT, "the stage queue's depth", || async {
        let text = redriver.metrics().await;
        (sample(
            &text,
            &format!(r#"queue_messages{{queue="{prefix}.stage"}}"#),
        ) == Some(5.0))
        .then_some(text)
    })
    .await;
    assert_sample(
        &text,
        &format!(r#"queue_messages{{queue="{prefix}.dead"}}"#),
        0.0,
    );
    assert_sample(
        &text,
        &format!(r#"queue_messages{{queue="{prefix}.delay.1000ms"}}"#),
        0.0,
    );
    let age = sample(&text, "queue_oldest_pending_seconds").expect("the queue age");
    assert!(age > 0.0, "five items wait: {text}");
    assert_sample(&text, r#"redriver_redrives_total{trigger="operator"}"#, 0.0);
    assert!(text.contains(r#"build_info{service="redriver","#), "{text}");
    redriver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redriver_counts_dead_letters_by_class_and_redrives_by_trigger() {
    // The app and the failing stand-in live until the test ends.
    let DeadLetteredRun {
        app: _app,
        standin: _standin,
        redriver,
        worker,
        ..
    } = dead_lettered_run(2).await;
    eventually(
        RUN_TIMEOUT,
        "two transient dead letters drained",
        || async {
            let text = redriver.metrics().await;
            (sample(&text, r#"redriver_dead_letters_total{class="transient"}"#) == Some(2.0))
                .then_some(())
        },
    )
    .await;

    let request = redriver::RedriveRequest {
        filter: redriver::DeadLetterFilter::default(),
        dry_run: false,
        limit: Some(1),
    };
    redriver::redrive(
        &redriver.running.context(),
        &request,
        "operator",
        &mut |_| {},
    )
    .await
    .unwrap();
    let text = redriver.metrics().await;
    assert_sample(&text, r#"redriver_redrives_total{trigger="operator"}"#, 1.0);
    assert_sample(
        &text,
        r#"redriver_redrives_total{trigger="automatic"}"#,
        0.0,
    );
    worker.stop().await;
    redriver.stop().await;
}

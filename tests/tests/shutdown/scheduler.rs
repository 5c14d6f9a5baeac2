//! Scheduler processes: SIGTERM stops one promptly with nothing marked released that was not
//! published, and a second replica, waiting while the first led, takes over the release of
//! work once the first is gone.

use std::time::Duration;

use system_tests::{
    RUN_TIMEOUT, TestApp, eventually, one_stage,
    process::{ServiceProcess, base_config},
};
use uuid::Uuid;

use crate::terminate_and_expect_clean_exit;

/// A small window, so the job outlasts what one replica releases before it is stopped.
const WINDOW: u32 = 5;

fn scheduler(name: &str, app: &TestApp) -> ServiceProcess {
    let config = format!(
        "{}
[scheduler]
window = {WINDOW}
tick_millis = 50
health_port = 0
",
        base_config(&app.settings)
    );
    ServiceProcess::start_binary(name, "scheduler", &[], &config)
}

async fn released(app: &TestApp, job: Uuid) -> i64 {
    app.query_i64(&format!(
        "SELECT count(*) FROM job_items WHERE job_id = '{job}' AND released_at IS NOT NULL"
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_stopped_with_sigterm_exits_at_once_and_another_replica_takes_over() {
    let mut app = TestApp::spawn_with(|s| s.scheduler.window = WINDOW).await;
    app.stop_scheduler().await;
    let library = app.create_library("photos").await;
    app.add_url_images(library, 20).await.unwrap();
    let pipeline = app.create_pipeline("one", one_stage()).await;
    let job = app.submit_job(pipeline, library).await;

    let mut leader = scheduler("leader", &app);
    eventually(RUN_TIMEOUT, "the leader to fill the window", || async {
        (released(&app, job).await == WINDOW as i64).then_some(())
    })
    .await;
    // A second replica waits: the window is full and only one replica releases anyway.
    let mut standby = scheduler("standby", &app);
    terminate_and_expect_clean_exit(&mut leader, "scheduler", Duration::from_secs(5)).await;
    // Everything marked released was published.
    assert_eq!(app.drain_stage_queue(100).await.len(), WINDOW as usize);

    // The window's items finish; the standby, leading now, releases the next ones.
    app.sql_execute(
        "UPDATE job_items SET status = 'passed' WHERE job_id = $1 AND released_at IS NOT NULL",
        [job.into()],
    )
    .await;
    eventually(RUN_TIMEOUT, "the standby to release more", || async {
        (released(&app, job).await == 2 * WINDOW as i64).then_some(())
    })
    .await;
    assert!(
        standby.log_text().contains("leading: releasing work"),
        "{}",
        standby.log_tail(40)
    );
    terminate_and_expect_clean_exit(&mut standby, "scheduler", Duration::from_secs(5)).await;
}

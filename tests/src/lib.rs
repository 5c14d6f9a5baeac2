//! Test harness: starts the real API (`Application::build`) on port 0 against the machine's
//! PostgreSQL and RabbitMQ, with a fresh database and a unique exchange/queue prefix per test.
//! Everything a test created is dropped when its [`TestApp`] goes out of scope, even on panic.

mod app;
mod client;
mod events;
mod fixtures;
pub mod metrics;
pub mod process;
mod queues;
mod redriver;
mod resources;
pub mod runs;
mod scheduler;
mod standin;
mod work;
mod worker;

use std::time::Duration;

pub use app::TestApp;
pub use client::{body_as, problem};
pub use events::{EventReader, ServerEvent};
pub use fixtures::{
    SAMPLE_IMAGES, distinct_images, id_of, one_stage, passes_first_stage, sample_image, two_stages,
};
pub use redriver::{ADMIN_TOKEN, RedriverAdmin};
pub use resources::{TestResources, amqp_url, database_server};
pub use scheduler::RunningScheduler;
pub use standin::{
    DeadLetteredRun, STANDIN_KEY, accept_only_key, app_rejecting_one, dead_lettered_run,
    fail_every_call_transiently, reject_images, set_latency, start_standin,
};
pub use work::stage_answer;
pub use worker::RunningWorker;

/// How long a test waits for a job to run, or for anything else that happens in the
/// background, before it fails.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// Polls `check` until it returns `Some`, failing the test after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

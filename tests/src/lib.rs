//! Test harness: starts the real API (`Application::build`) on port 0 against the machine's
//! PostgreSQL and RabbitMQ, with a fresh database and a unique exchange/queue prefix per test.
//! Everything a test created is dropped when its [`TestApp`] goes out of scope, even on panic.

mod app;
mod events;
mod fixtures;
pub mod process;
mod queues;
mod resources;
pub mod runs;
mod standin;
mod worker;

use std::time::Duration;

pub use app::TestApp;
pub use events::{EventReader, ServerEvent};
pub use fixtures::{
    distinct_images, id_of, one_stage, passes_first_stage, sample_image, two_stages,
};
pub use resources::{TestResources, amqp_url, database_server};
pub use standin::{STANDIN_KEY, fail_every_call_transiently, set_latency, start_standin};
pub use worker::RunningWorker;

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

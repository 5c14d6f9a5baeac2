//! A test's own queues: a publisher to them, and the stage messages and dead letters it takes
//! off them.

use std::time::Duration;

use lapin::{BasicProperties, options::BasicGetOptions};
use serde_json::Value;

use crate::{TestApp, amqp_url};

impl TestApp {
    /// A publisher (with confirms) to this test's exchanges.
    pub fn publisher(&self) -> broker::Publisher {
        broker::Publisher::new(
            self.settings.amqp.url.clone(),
            broker::Topology::from_settings(&self.settings),
            Duration::from_secs(5),
        )
    }

    /// Takes up to `max` messages off this test's stage queue (acknowledging them), once the
    /// scheduler has released what it can: it waits until no unfinished job has items left to
    /// release (or the window is full), then for the message of every released item still
    /// waiting for its stage (fewer when a worker took some meanwhile; at most `max`).
    pub async fn drain_stage_queue(&self, max: usize) -> Vec<(Value, BasicProperties)> {
        let window = self.settings.scheduler.window as i64;
        let released = crate::eventually(
            crate::RUN_TIMEOUT,
            "the scheduler to release the waiting items",
            || async move {
                let waiting = self.query_i64(WAITING_TO_BE_RELEASED).await;
                let in_window = self.query_i64(IN_WINDOW).await;
                (waiting == 0 || in_window >= window).then_some(in_window)
            },
        )
        .await;
        let wanted = (released.max(0) as usize).min(max);
        let topology = broker::Topology::from_settings(&self.resources.settings());
        let mut taken = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            taken.extend(
                self.take_messages(&topology.stage_queue(), max - taken.len())
                    .await,
            );
            // The scheduler publishes right after it marks items released.
            if taken.len() >= wanted || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        taken
            .into_iter()
            .map(|delivery| {
                let body = serde_json::from_slice(&delivery.data).expect("message is JSON");
                (body, delivery.properties)
            })
            .collect()
    }

    /// Takes up to `max` messages off one of this test's queues (acknowledging them).
    async fn take_messages(&self, queue: &str, max: usize) -> Vec<lapin::message::Delivery> {
        let connection = broker::connect(&amqp_url(), "test-drain", Duration::from_secs(5))
            .await
            .expect("connect");
        let channel = connection.create_channel().await.expect("channel");
        let mut messages = Vec::new();
        while messages.len() < max {
            let Some(message) = channel
                .basic_get(queue.into(), BasicGetOptions { no_ack: true })
                .await
                .expect("basic.get")
            else {
                break;
            };
            messages.push(message.delivery);
        }
        let _ = connection.close(200, "done".into()).await;
        messages
    }

    /// Takes up to `max` messages off this test's dead-letter queue (acknowledging them):
    /// each body with its headers.
    pub async fn drain_dead_letters(&self, max: usize) -> Vec<(Vec<u8>, broker::DeadLetter)> {
        let topology = broker::Topology::from_settings(&self.resources.settings());
        self.take_messages(&topology.dead_letter_queue(), max)
            .await
            .into_iter()
            .map(|delivery| {
                let letter =
                    broker::DeadLetter::from_headers(delivery.properties.headers().as_ref());
                (delivery.data, letter)
            })
            .collect()
    }
}

/// Items of unfinished, unstopped jobs that the scheduler has yet to release (written or not).
const WAITING_TO_BE_RELEASED: &str = r#"
SELECT coalesce(sum(j.total_items - j.materialized_items), 0)::bigint
     + (SELECT count(*) FROM job_items i JOIN jobs j2 ON j2.id = i.job_id
        WHERE i.status = 'pending' AND i.released_at IS NULL
          AND j2.status IN ('queued', 'running') AND j2.stop_reason IS NULL)
FROM jobs j WHERE j.status IN ('queued', 'running') AND j.stop_reason IS NULL"#;

/// Items released and not finished: each has its message in the stage queue or in a worker.
const IN_WINDOW: &str = r#"
SELECT count(*) FROM job_items i JOIN jobs j ON j.id = i.job_id
WHERE i.released_at IS NOT NULL AND i.status IN ('pending', 'running')
  AND j.status IN ('queued', 'running')"#;

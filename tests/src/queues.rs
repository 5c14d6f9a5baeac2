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

    /// Takes up to `max` messages off this test's stage queue (acknowledging them).
    pub async fn drain_stage_queue(&self, max: usize) -> Vec<(Value, BasicProperties)> {
        let topology = broker::Topology::from_settings(&self.resources.settings());
        self.take_messages(&topology.stage_queue(), max)
            .await
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

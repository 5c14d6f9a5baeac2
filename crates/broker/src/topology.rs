//! Every exchange and queue the system uses, named in one place and declared
//! idempotently (re-declaring with the same arguments is a no-op in RabbitMQ).
//!
//! ```text
//!  api ──publish──▶ {p}.work (direct) ──"stage"──▶ {p}.stage ──▶ workers
//!                                                     │ rejected / expired
//!                                                     ▼
//!                  {p}.dlx (fanout) ──────────────▶ {p}.dead ──▶ redriver
//!  workers ──▶ {p}.events (topic, "job.<id>.<event>") ──▶ api replicas (SSE)
//! ```

use lapin::{
    Channel, ExchangeKind,
    options::{
        ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
        QueueDeleteOptions,
    },
    types::{AMQPValue, FieldTable, ShortString},
};
use settings::QueueType;

/// Routing key of stage messages on the work exchange.
pub const STAGE_ROUTING_KEY: &str = "stage";

/// Names of the exchanges and queues for one deployment prefix.
#[derive(Debug, Clone)]
pub struct Topology {
    prefix: String,
    queue_type: QueueType,
}

impl Topology {
    pub fn new(prefix: impl Into<String>, queue_type: QueueType) -> Self {
        Self {
            prefix: prefix.into(),
            queue_type,
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Direct exchange that stage messages are published to.
    pub fn work_exchange(&self) -> String {
        format!("{}.work", self.prefix)
    }

    /// Queue the workers consume stage messages from.
    pub fn stage_queue(&self) -> String {
        format!("{}.stage", self.prefix)
    }

    /// Exchange for what cannot be processed.
    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dlx", self.prefix)
    }

    /// Queue the re-driver drains into the `dead_letters` table.
    pub fn dead_letter_queue(&self) -> String {
        format!("{}.dead", self.prefix)
    }

    /// Topic exchange for job events (`job.<job_id>.<event>`).
    pub fn events_exchange(&self) -> String {
        format!("{}.events", self.prefix)
    }

    fn stage_queue_arguments(&self) -> FieldTable {
        let mut args = FieldTable::default();
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(self.dead_letter_exchange().into()),
        );
        match self.queue_type {
            QueueType::Classic => {
                args.insert(
                    "x-queue-type".into(),
                    AMQPValue::LongString("classic".into()),
                );
                args.insert(
                    "x-max-priority".into(),
                    AMQPValue::ShortShortUInt(domain::job::MAX_AMQP_PRIORITY),
                );
            }
            QueueType::Quorum => {
                args.insert(
                    "x-queue-type".into(),
                    AMQPValue::LongString("quorum".into()),
                );
            }
        }
        args
    }

    /// Declares every exchange, queue and binding. Safe to call from every process at start-up.
    pub async fn declare(&self, channel: &Channel) -> Result<(), lapin::Error> {
        let durable_exchange = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        let durable_queue = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };

        channel
            .exchange_declare(
                name(self.work_exchange()),
                ExchangeKind::Direct,
                durable_exchange,
                FieldTable::default(),
            )
            .await?;
        channel
            .exchange_declare(
                name(self.dead_letter_exchange()),
                ExchangeKind::Fanout,
                durable_exchange,
                FieldTable::default(),
            )
            .await?;
        channel
            .exchange_declare(
                name(self.events_exchange()),
                ExchangeKind::Topic,
                durable_exchange,
                FieldTable::default(),
            )
            .await?;

        channel
            .queue_declare(
                name(self.stage_queue()),
                durable_queue,
                self.stage_queue_arguments(),
            )
            .await?;
        channel
            .queue_bind(
                name(self.stage_queue()),
                name(self.work_exchange()),
                STAGE_ROUTING_KEY.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;

        channel
            .queue_declare(
                name(self.dead_letter_queue()),
                durable_queue,
                FieldTable::default(),
            )
            .await?;
        channel
            .queue_bind(
                name(self.dead_letter_queue()),
                name(self.dead_letter_exchange()),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(())
    }

    /// Deletes everything [`declare`](Self::declare) created. Used by tests to leave nothing behind.
    pub async fn delete(&self, channel: &Channel) -> Result<(), lapin::Error> {
        for queue in [self.stage_queue(), self.dead_letter_queue()] {
            channel
                .queue_delete(name(queue), QueueDeleteOptions::default())
                .await?;
        }
        for exchange in [
            self.work_exchange(),
            self.dead_letter_exchange(),
            self.events_exchange(),
        ] {
            channel
                .exchange_delete(name(exchange), ExchangeDeleteOptions::default())
                .await?;
        }
        Ok(())
    }
}

fn name(s: String) -> ShortString {
    s.into()
}

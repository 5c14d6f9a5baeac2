//! Every exchange and queue the system uses, named in one place and declared
//! idempotently (re-declaring with the same arguments is a no-op in RabbitMQ).
//!
//! ```text
//!  api ──publish──▶ {p}.work (direct) ──"stage"──▶ {p}.stage ──▶ workers
//!                        ▲                            │ rejected
//!                        │ TTL over                   ▼
//!  workers ──retry──▶ {p}.delay.<n>s          {p}.dlx (fanout) ──▶ {p}.dead ──▶ redriver
//!                                                     ▲
//!  workers ──dead letter (with headers)───────────────┘
//!  workers ──▶ {p}.events (topic, "job.<id>.<event>") ──▶ api replicas (SSE), workers (cancel)
//! ```
//!
//! A delay queue has no consumer: a message published to it (through the default exchange)
//! waits its queue's TTL, then the broker dead-letters it back to the work exchange with its
//! headers and priority intact. Each delay has its own queue (named by its length), so a new
//! set of delays declares new queues instead of conflicting with the old ones.

use lapin::{
    Channel, Consumer, ExchangeKind,
    options::{
        BasicConsumeOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
        QueueDeclareOptions, QueueDeleteOptions,
    },
    types::{AMQPValue, FieldTable, ShortString},
};
use std::time::Duration;

use settings::QueueType;

/// Routing key of stage messages on the work exchange.
pub const STAGE_ROUTING_KEY: &str = "stage";

/// Names of the exchanges and queues for one deployment prefix.
#[derive(Debug, Clone)]
pub struct Topology {
    prefix: String,
    queue_type: QueueType,
    retry_delays: Vec<Duration>,
}

/// The retry delays a topology has unless told otherwise (`retry.delays_seconds`).
pub const DEFAULT_RETRY_DELAYS: [Duration; 3] = [
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(120),
];

impl Topology {
    pub fn new(prefix: impl Into<String>, queue_type: QueueType) -> Self {
        Self {
            prefix: prefix.into(),
            queue_type,
            retry_delays: DEFAULT_RETRY_DELAYS.to_vec(),
        }
    }

    /// The topology the settings describe (prefix, queue type, retry delays).
    pub fn from_settings(settings: &settings::Settings) -> Self {
        let mut topology = Self::new(settings.amqp.prefix.clone(), settings.amqp.queue_type);
        topology.retry_delays = settings
            .retry
            .delays_seconds
            .iter()
            .map(|s| Duration::from_secs(*s))
            .collect();
        topology
    }

    /// The delay before attempt `attempt` (counted from 1) is tried again, and the queue
    /// that holds it meanwhile: the `attempt`-th delay, or the last one past the end.
    pub fn retry_delay(&self, attempt: u32) -> (Duration, String) {
        let index = (attempt.max(1) as usize - 1).min(self.retry_delays.len() - 1);
        let delay = self.retry_delays[index];
        (delay, self.delay_queue(delay))
    }

    /// The queue where a message waits `delay` before going back to the work exchange.
    pub fn delay_queue(&self, delay: Duration) -> String {
        format!("{}.delay.{}ms", self.prefix, delay.as_millis())
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

    fn delay_queue_arguments(&self, delay: Duration) -> FieldTable {
        let mut args = FieldTable::default();
        args.insert(
            "x-message-ttl".into(),
            AMQPValue::LongLongInt(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)),
        );
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(self.work_exchange().into()),
        );
        args.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(STAGE_ROUTING_KEY.into()),
        );
        let queue_type = match self.queue_type {
            QueueType::Classic => "classic",
            QueueType::Quorum => "quorum",
        };
        args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString(queue_type.into()),
        );
        args
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
        self.declare_events_exchange(channel).await?;

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
        for delay in &self.retry_delays {
            channel
                .queue_declare(
                    name(self.delay_queue(*delay)),
                    durable_queue,
                    self.delay_queue_arguments(*delay),
                )
                .await?;
        }
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

    async fn declare_events_exchange(&self, channel: &Channel) -> Result<(), lapin::Error> {
        channel
            .exchange_declare(
                name(self.events_exchange()),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
    }

    /// Consumes the job events whose routing key matches `binding` (`job.#` for all,
    /// `job.*.cancel_requested` for cancellations) through an exclusive queue of this
    /// connection, without acks: events are notifications, and the queue goes away with the
    /// connection. Declares the events exchange first, so a listener needs nothing else
    /// declared (an api replica declares no other part of the topology).
    pub async fn subscribe_to_events(
        &self,
        channel: &Channel,
        binding: &str,
    ) -> Result<Consumer, lapin::Error> {
        self.declare_events_exchange(channel).await?;
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        channel
            .queue_bind(
                queue.name().clone(),
                name(self.events_exchange()),
                binding.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        channel
            .basic_consume(
                queue.name().clone(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
    }

    /// Every durable queue [`declare`](Self::declare) creates: the stage queue, the
    /// dead-letter queue and the delay queues.
    pub fn queues(&self) -> Vec<String> {
        let delay_queues = self.retry_delays.iter().map(|d| self.delay_queue(*d));
        [self.stage_queue(), self.dead_letter_queue()]
            .into_iter()
            .chain(delay_queues)
            .collect()
    }

    /// Deletes everything [`declare`](Self::declare) created. Used by tests to leave nothing behind.
    pub async fn delete(&self, channel: &Channel) -> Result<(), lapin::Error> {
        for queue in self.queues() {
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

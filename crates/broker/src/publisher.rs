//! Publishing stage messages with publisher confirms.
//!
//! One long-lived connection and confirm-mode channel, shared by every request. When the
//! broker goes away the next publish fails fast with [`BrokerError`] (the API answers
//! 503) and the one after reconnects, so the API recovers on its own when the broker returns.

use std::{collections::HashMap, time::Duration};

use domain::{event::JobEvent, job::Priority, message::StageMessage};
use futures::future::try_join_all;
use lapin::{
    BasicProperties, Channel, Connection,
    options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable},
};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{
    dead_letter::DeadLetter,
    topology::{STAGE_ROUTING_KEY, Topology},
};

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("broker error: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("timed out {0}")]
    Timeout(&'static str),
    #[error("the broker refused {0} message(s)")]
    Nacked(usize),
}

struct Live {
    connection: Connection,
    channel: Channel,
}

/// Publishes stage messages; cheap to share behind an `Arc`.
pub struct Publisher {
    url: SecretString,
    topology: Topology,
    timeout: Duration,
    live: Mutex<Option<Live>>,
}

impl Publisher {
    /// Creates a publisher; the connection is opened on first use (or by [`Publisher::ready`]).
    pub fn new(url: SecretString, topology: Topology, timeout: Duration) -> Self {
        Self {
            url,
            topology,
            timeout,
            live: Mutex::new(None),
        }
    }

    /// The publisher the settings describe: `amqp.url`, the settings' [`Topology`] and
    /// `amqp.timeout_seconds`.
    pub fn from_settings(settings: &settings::Settings) -> Self {
        Self::new(
            settings.amqp.url.clone(),
            Topology::from_settings(settings),
            Duration::from_secs(settings.amqp.timeout_seconds),
        )
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// A connected confirm-mode channel, (re)connecting and declaring the topology if needed.
    async fn channel(&self) -> Result<Channel, BrokerError> {
        let mut live = self.live.lock().await;
        if let Some(l) = live.as_ref()
            && l.connection.status().connected()
            && l.channel.status().connected()
        {
            return Ok(l.channel.clone());
        }
        *live = None;
        let connection =
            crate::connect(self.url.expose_secret(), "api-publisher", self.timeout).await?;
        let channel = connection.create_channel().await?;
        self.topology.declare(&channel).await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        tracing::info!(prefix = self.topology.prefix(), "connected to the broker");
        *live = Some(Live {
            connection,
            channel: channel.clone(),
        });
        Ok(channel)
    }

    async fn forget(&self) {
        *self.live.lock().await = None;
    }

    /// True when the broker is reachable (connecting if necessary).
    pub async fn ready(&self) -> bool {
        self.channel().await.is_ok()
    }

    /// The number of messages ready in each of the topology's queues ([`Topology::queues`]),
    /// read with passive declares (which create nothing).
    pub async fn queue_depths(&self) -> Result<Vec<(String, u32)>, BrokerError> {
        let read = async {
            let channel = self.channel().await?;
            let mut depths = Vec::new();
            for queue in self.topology.queues() {
                let declared = channel
                    .queue_declare(
                        queue.as_str().into(),
                        QueueDeclareOptions {
                            passive: true,
                            ..Default::default()
                        },
                        FieldTable::default(),
                    )
                    .await?;
                depths.push((queue, declared.message_count()));
            }
            Ok(depths)
        };
        let result = tokio::time::timeout(self.timeout, read)
            .await
            .unwrap_or(Err(BrokerError::Timeout("reading queue depths")));
        if result.is_err() {
            // A failed passive declare closes the channel.
            self.forget().await;
        }
        result
    }

    /// Publishes every message persistently with the given priority and returns once the
    /// broker has confirmed all of them. Any failure means none may be assumed delivered.
    pub async fn publish_stage_messages(
        &self,
        messages: &[StageMessage],
        priority: Priority,
    ) -> Result<(), BrokerError> {
        let batch: Vec<(StageMessage, Priority)> =
            messages.iter().map(|m| (*m, priority)).collect();
        self.publish_prioritised(&batch).await
    }

    /// Like [`Publisher::publish_stage_messages`], each message with its own priority.
    pub async fn publish_prioritised(
        &self,
        messages: &[(StageMessage, Priority)],
    ) -> Result<(), BrokerError> {
        self.publish_stage(messages, stage_properties()).await
    }

    /// Like [`Publisher::publish_prioritised`], for messages that re-open failed items (job
    /// retry, re-drive): they carry the [`REOPENED`](crate::dead_letter::REOPENED) header.
    pub async fn publish_reopened(
        &self,
        messages: &[(StageMessage, Priority)],
    ) -> Result<(), BrokerError> {
        self.publish_redriven(messages, &HashMap::new()).await
    }

    /// Like [`Publisher::publish_reopened`], for re-driven dead letters: each message whose
    /// item has an entry in `origins` (the `traceparent` of its first delivery) carries it as
    /// [`ORIGIN_TRACEPARENT`](crate::trace::ORIGIN_TRACEPARENT), so its processing links to
    /// the original trace.
    pub async fn publish_redriven(
        &self,
        messages: &[(StageMessage, Priority)],
        origins: &HashMap<uuid::Uuid, String>,
    ) -> Result<(), BrokerError> {
        let mut headers = FieldTable::default();
        headers.insert(
            crate::dead_letter::REOPENED.into(),
            AMQPValue::Boolean(true),
        );
        self.publish_stage_with(messages, stage_properties().with_headers(headers), |m| {
            origins.get(&m.item_id).map(|origin| {
                (
                    crate::trace::ORIGIN_TRACEPARENT,
                    AMQPValue::LongString(origin.clone().into()),
                )
            })
        })
        .await
    }

    /// Publishes stage messages to the work exchange with `base` properties and each
    /// message's priority, and waits for the broker's confirms.
    async fn publish_stage(
        &self,
        messages: &[(StageMessage, Priority)],
        base: BasicProperties,
    ) -> Result<(), BrokerError> {
        self.publish_stage_with(messages, base, |_| None).await
    }

    /// [`Publisher::publish_stage`], adding to each message the header `extra` gives it.
    async fn publish_stage_with(
        &self,
        messages: &[(StageMessage, Priority)],
        base: BasicProperties,
        extra: impl Fn(&StageMessage) -> Option<(&'static str, AMQPValue)>,
    ) -> Result<(), BrokerError> {
        let exchange = self.topology.work_exchange();
        let span = producer_span(&exchange, STAGE_ROUTING_KEY, messages.len());
        let mut headers = base.headers().clone().unwrap_or_default();
        crate::trace::inject(&span.context(), &mut headers);
        let base = base.with_headers(headers);
        let batch = messages.iter().map(|(message, priority)| {
            let properties = base.clone().with_priority(priority.amqp_priority());
            let properties = match extra(message) {
                Some((key, value)) => {
                    let mut headers = properties.headers().clone().unwrap_or_default();
                    headers.insert(key.into(), value);
                    properties.with_headers(headers)
                }
                None => properties,
            };
            Outgoing {
                exchange: &exchange,
                routing_key: STAGE_ROUTING_KEY.to_string(),
                payload: message.encode(),
                properties,
            }
        });
        self.publish_all(batch.collect(), "waiting for publisher confirms")
            .instrument(span)
            .await
    }

    /// Puts stage messages in delay queues: each waits in `queue` (one of
    /// [`Topology::retry_delay`]'s) and then goes back to the workers. Each keeps its priority
    /// and carries `x-first-failed-at` and its first delivery's trace context.
    pub async fn publish_delayed(&self, messages: &[Delayed]) -> Result<(), BrokerError> {
        let default_exchange = String::new();
        let queue = messages
            .first()
            .map(|d| d.queue.as_str())
            .unwrap_or_default();
        let span = producer_span(queue, queue, messages.len());
        let context = span.context();
        let batch = messages.iter().map(|delayed| {
            let mut headers = FieldTable::default();
            headers.insert(
                crate::dead_letter::FIRST_FAILED_AT.into(),
                AMQPValue::LongString(delayed.first_failed_at.to_rfc3339().into()),
            );
            crate::trace::inject(&context, &mut headers);
            if let Some(origin) = &delayed.origin_traceparent {
                headers.insert(
                    crate::trace::ORIGIN_TRACEPARENT.into(),
                    AMQPValue::LongString(origin.clone().into()),
                );
            }
            Outgoing {
                exchange: &default_exchange,
                routing_key: delayed.queue.clone(),
                payload: delayed.message.encode(),
                properties: stage_properties()
                    .with_priority(delayed.priority)
                    .with_headers(headers),
            }
        });
        self.publish_all(batch.collect(), "waiting for publisher confirms")
            .instrument(span)
            .await
    }

    /// Publishes dead letters (the failed message's body, with headers saying why) to the
    /// dead-letter exchange, persistently and confirmed.
    pub async fn publish_dead_letters(
        &self,
        letters: &[(Vec<u8>, DeadLetter)],
    ) -> Result<(), BrokerError> {
        let exchange = self.topology.dead_letter_exchange();
        let span = producer_span(&exchange, "", letters.len());
        let context = span.context();
        let batch = letters.iter().map(|(body, letter)| {
            let mut headers = letter.to_headers();
            crate::trace::inject(&context, &mut headers);
            Outgoing {
                exchange: &exchange,
                routing_key: String::new(),
                payload: body.clone(),
                properties: BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_headers(headers),
            }
        });
        self.publish_all(batch.collect(), "waiting for publisher confirms")
            .instrument(span)
            .await
    }

    /// Publishes one job event; see [`Publisher::publish_events`].
    pub async fn publish_event(&self, event: &JobEvent) -> Result<(), BrokerError> {
        self.publish_events(std::slice::from_ref(event)).await
    }

    /// Publishes job events on the events exchange (not persistent: they are notifications;
    /// readers fall back to the database).
    pub async fn publish_events(&self, events: &[JobEvent]) -> Result<(), BrokerError> {
        let exchange = self.topology.events_exchange();
        let span = producer_span(&exchange, "job.*", events.len());
        let mut headers = FieldTable::default();
        crate::trace::inject(&span.context(), &mut headers);
        let base = BasicProperties::default()
            .with_delivery_mode(1)
            .with_content_type("application/json".into())
            .with_type(domain::event::JOB_EVENT_KIND.into())
            .with_headers(headers);
        let batch = events.iter().map(|event| Outgoing {
            exchange: &exchange,
            routing_key: event.routing_key(),
            payload: event.encode(),
            properties: base.clone(),
        });
        self.publish_all(batch.collect(), "publishing job events")
            .instrument(span)
            .await
    }

    /// Publishes a batch on the confirm channel and waits for every confirm, within the
    /// timeout; on any failure the channel is dropped so the next call starts afresh.
    async fn publish_all(
        &self,
        batch: Vec<Outgoing<'_>>,
        waiting_for: &'static str,
    ) -> Result<(), BrokerError> {
        if batch.is_empty() {
            return Ok(());
        }
        let result = tokio::time::timeout(self.timeout, self.publish_confirmed(&batch))
            .await
            .unwrap_or(Err(BrokerError::Timeout(waiting_for)));
        if result.is_err() {
            // The channel may be half-broken; start over on the next call.
            self.forget().await;
        }
        result
    }

    async fn publish_confirmed(&self, batch: &[Outgoing<'_>]) -> Result<(), BrokerError> {
        let channel = self.channel().await?;
        // All publishes are polled together: each one queues its frames (and takes its
        // delivery tag) on first poll, in order, then waits for the socket write. Awaiting
        // them one by one would pay a round trip through the I/O loop per message.
        let confirms = try_join_all(batch.iter().map(|out| {
            channel.basic_publish(
                out.exchange.as_str().into(),
                out.routing_key.as_str().into(),
                BasicPublishOptions::default(),
                &out.payload,
                out.properties.clone(),
            )
        }))
        .await?;
        let confirmations = try_join_all(confirms).await?;
        let nacked = confirmations.iter().filter(|c| !c.is_ack()).count();
        if nacked > 0 {
            return Err(BrokerError::Nacked(nacked));
        }
        Ok(())
    }
}

/// The PRODUCER span of one publish (messaging semantic conventions); its trace context goes
/// into the messages' headers. One span per batch: a submission's thousand messages share it.
fn producer_span(destination: &str, routing_key: &str, messages: usize) -> tracing::Span {
    tracing::info_span!(
        "publish",
        otel.name = %format!("{destination} publish"),
        otel.kind = "producer",
        messaging.system = "rabbitmq",
        messaging.operation.type = "publish",
        messaging.operation.name = "publish",
        messaging.destination.name = %destination,
        messaging.rabbitmq.destination.routing_key = %routing_key,
        messaging.batch.message_count = messages,
    )
}

/// Properties of every stage message: persistent JSON of the stage-message kind.
fn stage_properties() -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_type(domain::message::STAGE_MESSAGE_KIND.into())
}

/// A stage message on its way to a delay queue.
#[derive(Debug, Clone)]
pub struct Delayed {
    pub message: StageMessage,
    /// The AMQP priority it had (kept as it was delivered).
    pub priority: u8,
    /// The delay queue ([`Topology::retry_delay`]).
    pub queue: String,
    pub first_failed_at: chrono::DateTime<chrono::Utc>,
    /// The `traceparent` of its first delivery ([`crate::trace::origin_of`]).
    pub origin_traceparent: Option<String>,
}

/// One message to publish.
struct Outgoing<'a> {
    exchange: &'a String,
    routing_key: String,
    payload: Vec<u8>,
    properties: BasicProperties,
}

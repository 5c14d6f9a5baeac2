//! Drains `{prefix}.dead` into the `dead_letters` table.
//!
//! Manual acks with a prefetch: a delivery is acknowledged only once its row is committed.
//! Nothing is ever dropped: when the insert fails (the database is down, say) the delivery is
//! handed back (nack with requeue) after a pause, and the broker delivers it again. A dead
//! letter delivered twice (an ack lost with a connection) is stored once: its row id is the
//! `x-dead-letter-id` header (or, for a message the broker dead-lettered itself, a digest of
//! the message, the same on every delivery). When the broker goes away the drainer
//! reconnects.

use std::{sync::Arc, time::Duration};

use broker::{DeadLetter, Topology};
use chrono::{TimeZone, Utc};
use domain::message::StageMessage;
use futures::StreamExt;
use lapin::{
    BasicProperties, Channel,
    message::Delivery,
    options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions},
    types::{AMQPValue, FieldTable},
};
use sea_orm::DatabaseConnection;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use store::dead_letters::NewDeadLetter;
use tokio::sync::watch;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use uuid::Uuid;

use crate::metrics::RedriverMetrics;

/// Unacknowledged dead letters held at once.
pub const PREFETCH: u16 = 32;

/// Pause before a delivery whose row could not be stored is handed back.
const STORE_RETRY_PAUSE: Duration = Duration::from_secs(2);

/// Pause before reconnecting to the broker.
const RECONNECT_PAUSE: Duration = Duration::from_secs(2);

/// Consumes the dead-letter queue into the database.
pub struct Drainer {
    db: DatabaseConnection,
    metrics: Arc<RedriverMetrics>,
    url: SecretString,
    topology: Topology,
    timeout: Duration,
}

impl Drainer {
    pub fn new(
        settings: &settings::Settings,
        db: DatabaseConnection,
        metrics: Arc<RedriverMetrics>,
    ) -> Self {
        Self {
            db,
            metrics,
            url: settings.amqp.url.clone(),
            topology: Topology::from_settings(settings),
            timeout: Duration::from_secs(settings.amqp.timeout_seconds),
        }
    }

    /// Drains until `stop` turns true, reconnecting whenever the broker goes away.
    pub async fn run(&self, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            let connection =
                match broker::connect(self.url.expose_secret(), "redriver", self.timeout).await {
                    Ok(connection) => connection,
                    Err(error) => {
                        tracing::warn!(%error, "broker unreachable; retrying");
                        if pause(&mut stop, RECONNECT_PAUSE).await {
                            return;
                        }
                        continue;
                    }
                };
            let outcome = self.consume(&connection, stop.clone()).await;
            if *stop.borrow() {
                broker::close(&connection, "shutting down").await;
                return;
            }
            match outcome {
                Ok(()) => tracing::warn!("the dead-letter consumer ended; reconnecting"),
                Err(error) => {
                    tracing::warn!(%error, "the dead-letter consumer failed; reconnecting")
                }
            }
            broker::close(&connection, "reconnecting").await;
            if pause(&mut stop, RECONNECT_PAUSE).await {
                return;
            }
        }
    }

    async fn consume(
        &self,
        connection: &lapin::Connection,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), lapin::Error> {
        let channel = connection.create_channel().await?;
        self.topology.declare(&channel).await?;
        channel
            .basic_qos(PREFETCH, BasicQosOptions::default())
            .await?;
        let queue = self.topology.dead_letter_queue();
        let mut consumer = channel
            .basic_consume(
                queue.as_str().into(),
                format!("redriver-{}", Uuid::new_v4()).into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        tracing::info!(queue, prefetch = PREFETCH, "draining dead letters");
        loop {
            let delivery = tokio::select! {
                _ = stop.changed() => return Ok(()),
                next = consumer.next() => match next {
                    Some(Ok(delivery)) => delivery,
                    Some(Err(error)) => return Err(error),
                    None => return Ok(()),
                },
            };
            if !self.settle(&channel, &delivery, &mut stop).await? {
                return Ok(());
            }
        }
    }

    /// Stores one delivery and acks it, or hands it back after a pause. `Ok(false)`: stop.
    async fn settle(
        &self,
        channel: &Channel,
        delivery: &Delivery,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<bool, lapin::Error> {
        let letter = letter_from_delivery(&delivery.data, &delivery.properties);
        let span = tracing::info_span!(
            "dead_letter",
            otel.name = %format!("{} process", self.topology.dead_letter_queue()),
            otel.kind = "consumer",
            messaging.system = "rabbitmq",
            messaging.operation.type = "process",
            messaging.destination.name = %self.topology.dead_letter_queue(),
            dead_letter_id = %letter.id,
            class = letter.error_class.as_str(),
            job_id = letter.job_id.map(|id| id.to_string()),
            item_id = letter.item_id.map(|id| id.to_string()),
        );
        // Continues the dead-lettering worker's trace, linked to the failed work's origin.
        let headers = delivery.properties.headers().as_ref();
        let _ = span.set_parent(broker::trace::extract(headers));
        if let Some(origin) = broker::trace::origin(headers) {
            span.add_link(origin);
        }
        self.store_and_settle(channel, delivery, &letter, stop)
            .instrument(span)
            .await
    }

    async fn store_and_settle(
        &self,
        channel: &Channel,
        delivery: &Delivery,
        letter: &NewDeadLetter,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<bool, lapin::Error> {
        match store::dead_letters::insert(&self.db, letter).await {
            Ok(inserted) => {
                if inserted {
                    self.metrics.dead_letter_stored(letter.error_class);
                    tracing::info!(message = %letter.error_message, "dead letter stored");
                } else {
                    tracing::debug!("dead letter already stored (a redelivery)");
                }
                channel
                    .basic_ack(delivery.delivery_tag, BasicAckOptions::default())
                    .await?;
                Ok(true)
            }
            Err(error) => {
                tracing::warn!(%error, "could not store a dead letter; handing it back");
                let stopping = pause(stop, STORE_RETRY_PAUSE).await;
                channel
                    .basic_nack(
                        delivery.delivery_tag,
                        BasicNackOptions {
                            multiple: false,
                            requeue: true,
                        },
                    )
                    .await?;
                Ok(!stopping)
            }
        }
    }
}

/// Waits `duration` or until stop; true when stopping.
async fn pause(stop: &mut watch::Receiver<bool>, duration: Duration) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = stop.changed() => true,
        _ = tokio::time::sleep(duration) => *stop.borrow(),
    }
}

/// The row a delivery becomes: the fields of its dead-letter headers
/// ([`DeadLetter::from_headers`]), its body and all its headers as JSON.
///
/// A message the broker dead-lettered by itself carries no such headers: it reads as
/// `poison`, with an id digested from the message (so its redeliveries are stored once) and,
/// when its body is a stage message, the job, item and stage that message names.
pub fn letter_from_delivery(body: &[u8], properties: &BasicProperties) -> NewDeadLetter {
    let headers = properties.headers().as_ref();
    let letter = DeadLetter::from_headers(headers);
    // `from_headers` takes the id from the header only for a letter it could read; any other
    // gets a fresh id, which would store each redelivery again.
    let has_id = header_uuid(headers, broker::dead_letter::DEAD_LETTER_ID) == Some(letter.id);
    let headers_json = headers.map(table_to_json).unwrap_or_else(|| json!({}));
    let mut row = NewDeadLetter {
        id: letter.id,
        tenant_id: letter.tenant_id,
        job_id: letter.job_id,
        item_id: letter.item_id,
        stage_index: letter.stage_index,
        error_class: letter.class,
        error_message: letter.message,
        attempts: letter.attempts,
        first_failed_at: Some(letter.first_failed_at),
        dead_lettered_at: letter.dead_lettered_at,
        payload: body.to_vec(),
        headers: headers_json,
    };
    if !has_id {
        row.id = digest_id(body, properties, &row.headers);
        row.first_failed_at = broker::dead_letter::first_failed_at(headers).or(row.first_failed_at);
        if let Some(time) = first_death_time(headers) {
            row.dead_lettered_at = time;
            if row.first_failed_at.is_none_or(|t| t > time) {
                row.first_failed_at = Some(time);
            }
        }
    }
    if row.item_id.is_none()
        && let Ok(message) = StageMessage::decode(body)
    {
        row.job_id = row.job_id.or(Some(message.job_id));
        row.item_id = Some(message.item_id);
        row.stage_index = row.stage_index.or(Some(message.stage_index));
    }
    row
}

fn header_uuid(headers: Option<&FieldTable>, key: &str) -> Option<Uuid> {
    match headers?.inner().get(key)? {
        AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes()).ok()?.parse().ok(),
        AMQPValue::ShortString(s) => s.as_str().parse().ok(),
        _ => None,
    }
}

/// A stable id for a message without `x-dead-letter-id`: the same message (body, headers,
/// message id and timestamp) always gives the same id.
fn digest_id(body: &[u8], properties: &BasicProperties, headers: &Value) -> Uuid {
    let mut hasher = Sha256::new();
    hasher.update((body.len() as u64).to_be_bytes());
    hasher.update(body);
    hasher.update(headers.to_string().as_bytes());
    if let Some(id) = properties.message_id() {
        hasher.update(b"message-id:");
        hasher.update(id.as_str().as_bytes());
    }
    if let Some(timestamp) = properties.timestamp() {
        hasher.update(b"timestamp:");
        hasher.update(timestamp.to_be_bytes());
    }
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// When the broker first dead-lettered the message (`x-death`'s earliest `time`).
fn first_death_time(headers: Option<&FieldTable>) -> Option<chrono::DateTime<Utc>> {
    let AMQPValue::FieldArray(deaths) = headers?.inner().get("x-death")? else {
        return None;
    };
    deaths
        .as_slice()
        .iter()
        .filter_map(|death| match death {
            AMQPValue::FieldTable(death) => match death.inner().get("time")? {
                AMQPValue::Timestamp(seconds) => i64::try_from(*seconds)
                    .ok()
                    .and_then(|s| Utc.timestamp_opt(s, 0).single()),
                _ => None,
            },
            _ => None,
        })
        .min()
}

/// AMQP headers as JSON: strings stay strings (bytes that are not UTF-8 are replaced),
/// numbers and booleans stay themselves, timestamps become RFC 3339, byte arrays hex.
pub fn table_to_json(table: &FieldTable) -> Value {
    let mut object = Map::new();
    for (key, value) in table {
        object.insert(key.as_str().to_string(), value_to_json(value));
    }
    Value::Object(object)
}

fn value_to_json(value: &AMQPValue) -> Value {
    match value {
        AMQPValue::Boolean(b) => json!(b),
        AMQPValue::ShortShortInt(n) => json!(n),
        AMQPValue::ShortShortUInt(n) => json!(n),
        AMQPValue::ShortInt(n) => json!(n),
        AMQPValue::ShortUInt(n) => json!(n),
        AMQPValue::LongInt(n) => json!(n),
        AMQPValue::LongUInt(n) => json!(n),
        AMQPValue::LongLongInt(n) => json!(n),
        AMQPValue::Float(n) => json!(n),
        AMQPValue::Double(n) => json!(n),
        AMQPValue::DecimalValue(d) => {
            let value = f64::from(d.value) / 10f64.powi(i32::from(d.scale));
            json!(value)
        }
        AMQPValue::ShortString(s) => json!(s.as_str()),
        AMQPValue::LongString(s) => json!(String::from_utf8_lossy(s.as_bytes())),
        AMQPValue::FieldArray(items) => {
            Value::Array(items.as_slice().iter().map(value_to_json).collect())
        }
        AMQPValue::Timestamp(seconds) => i64::try_from(*seconds)
            .ok()
            .and_then(|s| Utc.timestamp_opt(s, 0).single())
            .map_or_else(|| json!(seconds), |t| json!(t.to_rfc3339())),
        AMQPValue::FieldTable(table) => table_to_json(table),
        AMQPValue::ByteArray(bytes) => json!(hex::encode(bytes.as_slice())),
        AMQPValue::Void => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use domain::job::ErrorClass;
    use lapin::types::{FieldArray, LongString};

    use super::*;

    #[test]
    fn a_worker_dead_letter_keeps_its_id_and_fields() {
        let mut letter = DeadLetter::new(ErrorClass::Transient, "Cohere answered 503");
        letter.attempts = 5;
        letter.job_id = Some(Uuid::new_v4());
        letter.item_id = Some(Uuid::new_v4());
        letter.stage_index = Some(1);
        let properties = BasicProperties::default().with_headers(letter.to_headers());
        let row = letter_from_delivery(b"{}", &properties);
        assert_eq!(row.id, letter.id);
        assert_eq!(row.error_class, ErrorClass::Transient);
        assert_eq!(row.attempts, 5);
        assert_eq!(row.item_id, letter.item_id);
        assert_eq!(row.stage_index, Some(1));
        assert_eq!(row.headers["x-error-message"], "Cohere answered 503");
        assert_eq!(row.headers["x-attempts"], 5);
    }

    #[test]
    fn a_message_the_broker_dead_lettered_is_poison_with_a_stable_id() {
        let properties = BasicProperties::default();
        let first = letter_from_delivery(b"not json", &properties);
        let again = letter_from_delivery(b"not json", &properties);
        assert_eq!(first.error_class, ErrorClass::Poison);
        assert_eq!(first.id, again.id, "a redelivery maps to the same row");
        assert_ne!(
            first.id,
            letter_from_delivery(b"other", &properties).id,
            "another message is another row"
        );
        assert_eq!(first.item_id, None);
    }

    #[test]
    fn a_rejected_stage_message_names_its_item() {
        let message = StageMessage {
            job_id: Uuid::new_v4(),
            item_id: Uuid::new_v4(),
            stage_index: 2,
            attempt: 0,
        };
        let mut death = FieldTable::default();
        death.insert("time".into(), AMQPValue::Timestamp(1_795_000_000));
        death.insert(
            "reason".into(),
            AMQPValue::LongString(LongString::from("rejected")),
        );
        let mut headers = FieldTable::default();
        headers.insert(
            "x-death".into(),
            AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::FieldTable(death)])),
        );
        let properties = BasicProperties::default().with_headers(headers);
        let row = letter_from_delivery(&message.encode(), &properties);
        assert_eq!(row.error_class, ErrorClass::Poison);
        assert_eq!(row.item_id, Some(message.item_id));
        assert_eq!(row.job_id, Some(message.job_id));
        assert_eq!(row.stage_index, Some(2));
        assert_eq!(row.dead_lettered_at.timestamp(), 1_795_000_000);
        assert_eq!(row.headers["x-death"][0]["reason"], "rejected");
    }
}

//! One delivery on its way through the consumer, its span, and how it is settled on the
//! broker once its disposition is known.

use std::time::{Duration, Instant};

use broker::{DeadLetter, Delayed, dead_letter};
use chrono::Utc;
use domain::{job::ErrorClass, message::StageMessage};
use lapin::{
    message::Delivery,
    options::{BasicAckOptions, BasicNackOptions},
};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{context::Context, plan::Disposition};

/// A delivery on its way to a call or a write, with when it was received and its span.
pub(super) struct Received {
    pub(super) delivery: Delivery,
    pub(super) at: Instant,
    pub(super) span: Span,
}

/// A delivery waiting for its submission's commit.
pub(super) struct Incoming {
    pub(super) delivery: Delivery,
    pub(super) since: Instant,
    pub(super) pause: Duration,
    /// The CONSUMER span of this delivery, from its receipt to its settlement.
    pub(super) span: Span,
}

impl Incoming {
    pub(super) fn new(delivery: Delivery, queue: &str) -> Self {
        let span = consumer_span(&delivery, queue);
        Self {
            delivery,
            since: Instant::now(),
            pause: Duration::from_millis(20),
            span,
        }
    }

    pub(super) fn received(self, message: &StageMessage) -> Received {
        self.span
            .record("job.id", tracing::field::display(message.job_id));
        self.span
            .record("item.id", tracing::field::display(message.item_id));
        self.span.record("stage.index", message.stage_index);
        Received {
            delivery: self.delivery,
            at: self.since,
            span: self.span,
        }
    }
}

/// The CONSUMER span of one delivery (messaging semantic conventions): its parent is the
/// publisher's span named in the message's `traceparent`; a retried message also links to
/// its first delivery's trace.
fn consumer_span(delivery: &Delivery, queue: &str) -> Span {
    let span = tracing::info_span!(
        "process",
        otel.name = %format!("{queue} process"),
        otel.kind = "consumer",
        messaging.system = "rabbitmq",
        messaging.operation.type = "process",
        messaging.operation.name = "process",
        messaging.destination.name = %queue,
        messaging.rabbitmq.destination.routing_key = %delivery.routing_key,
        messaging.rabbitmq.message.delivery_tag = delivery.delivery_tag,
        job.id = tracing::field::Empty,
        item.id = tracing::field::Empty,
        stage.index = tracing::field::Empty,
    );
    let headers = delivery.properties.headers().as_ref();
    let _ = span.set_parent(broker::trace::extract(headers));
    if let Some(origin) = broker::trace::origin(headers) {
        span.add_link(origin);
    }
    span
}

pub(super) async fn settle(ctx: &Context, delivery: &Delivery, disposition: Disposition) {
    let requeue_later = |after: Duration| async move {
        tokio::time::sleep(after).await;
        delivery
            .nack(BasicNackOptions {
                requeue: true,
                ..Default::default()
            })
            .await
    };
    let result = match disposition {
        Disposition::Ack => delivery.ack(BasicAckOptions::default()).await,
        Disposition::Requeue { after, reason } => {
            tracing::debug!(%reason, ?after, "handing the message back");
            requeue_later(after).await
        }
        Disposition::Retry { message, reason } => {
            let attempt = message.attempt + 1;
            let (delay, queue) = ctx.publisher.topology().retry_delay(attempt);
            let headers = delivery.properties.headers().as_ref();
            let delayed = Delayed {
                message: message.next_attempt(),
                priority: delivery.properties.priority().unwrap_or_default(),
                queue,
                first_failed_at: dead_letter::first_failed_at(headers).unwrap_or_else(Utc::now),
                origin_traceparent: broker::trace::origin_of(headers),
            };
            tracing::info!(job_id = %message.job_id, item_id = %message.item_id, attempt, ?delay, %reason, "stage failed; trying again after a delay");
            match ctx.publisher.publish_delayed(&[delayed]).await {
                Ok(()) => delivery.ack(BasicAckOptions::default()).await,
                Err(error) => {
                    tracing::warn!(%error, "could not delay the message; handing it back");
                    requeue_later(Duration::from_secs(2)).await
                }
            }
        }
        Disposition::Poison { reason } => {
            tracing::warn!(%reason, "dead-lettering an undecodable message");
            let mut letter = DeadLetter::new(ErrorClass::Poison, reason);
            letter.origin_traceparent =
                broker::trace::origin_of(delivery.properties.headers().as_ref());
            match ctx
                .publisher
                .publish_dead_letters(&[(delivery.data.clone(), letter)])
                .await
            {
                Ok(()) => delivery.ack(BasicAckOptions::default()).await,
                Err(error) => {
                    tracing::warn!(%error, "could not dead-letter the message; handing it back");
                    requeue_later(Duration::from_secs(2)).await
                }
            }
        }
    };
    if let Err(error) = result {
        // The channel is gone; the broker redelivers the message.
        tracing::warn!(%error, "could not settle a delivery");
    }
}

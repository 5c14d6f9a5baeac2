//! The consumer: a pipeline over batches of deliveries.
//!
//! ```text
//! deliveries ─► loader ─┬─► calls (at most `concurrency` in flight) ─┐
//!  (prefetch)  1 query  └─► outcomes that need no call ─────────────┴─► writer ─► follow-up
//!              per batch                                           1 transaction  publish next
//!                                                                  per batch      stages, then ack
//! ```
//!
//! Each stage takes whatever has queued up in front of it as its batch, so a busy worker
//! makes few, large database round trips and an idle one answers at once. Manual acks: a
//! delivery is acknowledged only once its outcome is committed and the next stage's message
//! confirmed. The prefetch is larger than the concurrency so the next messages are loaded
//! while the current ones are analysed. Stopping: the consumer is cancelled (no new messages)
//! and no new calls start; the calls in flight finish, are written and acknowledged (up to a
//! grace period); everything else is handed back (nack with requeue) or, past the grace,
//! redelivered when the connection closes.
//!
//! Failures (DESIGN.md, "Failure handling"): an item that fails is dead-lettered (published
//! to the dead-letter exchange with its reason) before its failure is written; a transient
//! failure that outlived its in-process tries goes to a delay queue with one more attempt,
//! or, its attempts spent, fails the item; an undecodable message is dead-lettered as poison.
//! While a circuit breaker is open the consumer is cancelled, so messages stay queued; it
//! consumes again when the breaker half-opens to let its probes through.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use broker::{DeadLetter, Delayed, dead_letter};
use chrono::Utc;
use domain::job::ErrorClass;
use domain::message::StageMessage;
use futures::{FutureExt, StreamExt, future::join_all};
use lapin::{
    Channel, Consumer,
    message::Delivery,
    options::{
        BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    },
    types::FieldTable,
};
use opentelemetry::trace::TraceContextExt;
use store::work::Change;
use tokio::{
    sync::{Semaphore, mpsc, watch},
    task::JoinSet,
};
use tracing::{Instrument, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::process::{self, Call, Context, Disposition, Envelope, Step, UNCOMMITTED_JOB_WAIT};

/// Most deliveries loaded, or outcomes written, at once.
const MAX_BATCH: usize = 256;

/// Tries of a batch write before its messages are handed back (a deadlock or a dropped
/// connection usually clears at once).
const WRITE_TRIES: u32 = 4;

/// How the consumer is tuned.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Cohere calls in flight at once.
    pub concurrency: usize,
    /// Unacknowledged deliveries held.
    pub prefetch: u16,
    /// How long a stop waits for the calls in flight.
    pub grace: Duration,
}

/// A delivery on its way to a call or a write, with when it was received and its span.
struct Received {
    delivery: Delivery,
    at: Instant,
    span: Span,
}

/// A delivery waiting for its submission's commit.
struct Incoming {
    delivery: Delivery,
    since: Instant,
    pause: Duration,
    /// The CONSUMER span of this delivery, from its receipt to its settlement.
    span: Span,
}

/// Consumes `queue` until `stop` turns true (or the channel fails), pausing while a circuit
/// breaker is open.
pub async fn run(
    ctx: Arc<Context>,
    channel: Channel,
    queue: &str,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) -> Result<(), lapin::Error> {
    channel
        .basic_qos(limits.prefetch, BasicQosOptions::default())
        .await?;
    let slots = Arc::new(Semaphore::new(limits.concurrency));
    let (calls, calls_rx) = mpsc::unbounded_channel();
    let (writes, writes_rx) = mpsc::unbounded_channel();
    let (retries, mut retries_rx) = mpsc::unbounded_channel::<Incoming>();
    let dispatcher = tokio::spawn(dispatch(
        ctx.clone(),
        calls_rx,
        writes.clone(),
        slots.clone(),
        stop.clone(),
    ));
    let writer = tokio::spawn(write_batches(ctx.clone(), writes_rx));
    let mut breakers = ctx.guard.subscribe();
    let mut consumer: Option<Consumer> = None;

    let mut failure = None;
    loop {
        let open = breakers.borrow_and_update().open.clone();
        match (&consumer, open.is_empty()) {
            (Some(_), false) => {
                tracing::warn!(models = ?open, "circuit breaker open: taking no new messages");
                if let Some(old) = consumer.take() {
                    pause(&channel, old).await;
                }
            }
            (None, true) => {
                consumer = Some(
                    channel
                        .basic_consume(
                            queue.into(),
                            format!("worker-{}", uuid::Uuid::new_v4()).into(),
                            BasicConsumeOptions::default(),
                            FieldTable::default(),
                        )
                        .await?,
                );
                tracing::info!(
                    queue,
                    concurrency = limits.concurrency,
                    prefetch = limits.prefetch,
                    "consuming"
                );
            }
            _ => {}
        }
        let first = tokio::select! {
            _ = stop.changed() => break,
            changed = breakers.changed() => match changed {
                Ok(()) => continue,
                Err(_) => break,
            },
            retry = retries_rx.recv() => match retry {
                Some(incoming) => incoming,
                None => break,
            },
            next = next_delivery(&mut consumer) => match next {
                Some(Ok(delivery)) => Incoming::new(delivery, queue),
                Some(Err(error)) => { failure = Some(error); break }
                None => break,
            },
        };
        let mut batch = vec![first];
        while let Some(consumer) = consumer.as_mut()
            && batch.len() < MAX_BATCH
        {
            match consumer.next().now_or_never() {
                Some(Some(Ok(delivery))) => batch.push(Incoming::new(delivery, queue)),
                Some(Some(Err(error))) => {
                    failure = Some(error);
                    break;
                }
                Some(None) | None => break,
            }
        }
        while batch.len() < MAX_BATCH
            && let Ok(incoming) = retries_rx.try_recv()
        {
            batch.push(incoming);
        }
        let envelopes: Vec<Envelope> = batch
            .iter()
            .map(|i| Envelope {
                body: i.delivery.data.as_slice(),
                reopened: dead_letter::is_reopened(i.delivery.properties.headers().as_ref()),
            })
            .collect();
        let started = Instant::now();
        let prepared = process::prepare(&ctx, &envelopes).await;
        tracing::debug!(
            messages = batch.len(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "batch loaded"
        );
        match prepared {
            Err(error) => {
                let reason = process::store_failed(&error);
                for incoming in batch {
                    let (ctx, reason) = (ctx.clone(), reason.clone());
                    tokio::spawn(async move { settle(&ctx, &incoming.delivery, reason).await });
                }
            }
            Ok(steps) => {
                for (incoming, step) in batch.into_iter().zip(steps) {
                    route(&ctx, incoming, step, &calls, &writes, &retries);
                }
            }
        }
        if failure.is_some() {
            break;
        }
    }

    tracing::info!("stopping: no new messages; finishing the calls in flight");
    if failure.is_none()
        && let Some(consumer) = consumer.take()
    {
        // The broker stops sending; what it had sent and no call took yet goes back at once.
        pause(&channel, consumer).await;
    }
    drop(calls);
    drop(writes);
    let drained = async {
        let _ = dispatcher.await;
        let all = u32::try_from(limits.concurrency).unwrap_or(u32::MAX);
        let _ = slots.acquire_many(all).await;
        let _ = writer.await;
    };
    if tokio::time::timeout(limits.grace, drained).await.is_err() {
        tracing::warn!("grace period over; unfinished messages go back to the queue");
    }
    failure.map_or(Ok(()), Err)
}

/// The next delivery of the consumer; never, while there is none.
async fn next_delivery(consumer: &mut Option<Consumer>) -> Option<Result<Delivery, lapin::Error>> {
    match consumer {
        Some(consumer) => consumer.next().await,
        None => std::future::pending().await,
    }
}

/// Cancels `consumer` so the broker stops sending; what it had sent already and nobody
/// took yet goes straight back to the queue.
async fn pause(channel: &Channel, consumer: Consumer) {
    // Bounded: a broker that does not answer must not hold up the shutdown.
    let cancelled = tokio::time::timeout(
        Duration::from_secs(5),
        channel.basic_cancel(consumer.tag(), BasicCancelOptions::default()),
    )
    .await;
    if !matches!(cancelled, Ok(Ok(()))) {
        tracing::warn!(?cancelled, "could not cancel the consumer");
        return;
    }
    tokio::spawn(async move {
        let mut consumer = consumer;
        let handed_back = async {
            while let Some(Ok(delivery)) = consumer.next().await {
                let requeue = BasicNackOptions {
                    requeue: true,
                    ..Default::default()
                };
                let _ = delivery.nack(requeue).await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(30), handed_back).await;
    });
}

impl Incoming {
    fn new(delivery: Delivery, queue: &str) -> Self {
        let span = consumer_span(&delivery, queue);
        Self {
            delivery,
            since: Instant::now(),
            pause: Duration::from_millis(20),
            span,
        }
    }

    fn received(self, message: &StageMessage) -> Received {
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

/// Sends a prepared delivery where its step says.
fn route(
    ctx: &Arc<Context>,
    incoming: Incoming,
    step: Step,
    calls: &mpsc::UnboundedSender<(Received, Box<Call>)>,
    writes: &mpsc::UnboundedSender<(Received, Change)>,
    retries: &mpsc::UnboundedSender<Incoming>,
) {
    match step {
        Step::Settle(disposition) => {
            let ctx = ctx.clone();
            let span = incoming.span.clone();
            tokio::spawn(
                async move { settle(&ctx, &incoming.delivery, disposition).await }.instrument(span),
            );
        }
        Step::Call(call) => {
            let received = incoming.received(&call.message);
            let _ = calls.send((received, call));
        }
        Step::Write(change) => {
            let received = incoming.received(change.message());
            let _ = writes.send((received, change));
        }
        Step::NotYetVisible if incoming.since.elapsed() >= UNCOMMITTED_JOB_WAIT => {
            let span = incoming.span.clone();
            let disposition = span.in_scope(process::dropped_unknown);
            let ctx = ctx.clone();
            tokio::spawn(
                async move { settle(&ctx, &incoming.delivery, disposition).await }.instrument(span),
            );
        }
        Step::NotYetVisible => {
            let retries = retries.clone();
            tokio::spawn(async move {
                tokio::time::sleep(incoming.pause).await;
                // Usually the commit is milliseconds away: look often at first.
                let pause = if incoming.since.elapsed() < Duration::from_secs(1) {
                    incoming.pause
                } else {
                    Duration::from_millis(250)
                };
                // When the consumer has stopped, the delivery is simply redelivered later.
                let _ = retries.send(Incoming { pause, ..incoming });
            });
        }
    }
}

/// Starts each call once a slot is free; its outcome goes to the writer.
async fn dispatch(
    ctx: Arc<Context>,
    mut calls: mpsc::UnboundedReceiver<(Received, Box<Call>)>,
    writes: mpsc::UnboundedSender<(Received, Change)>,
    slots: Arc<Semaphore>,
    stop: watch::Receiver<bool>,
) {
    while let Some((received, call)) = calls.recv().await {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        if *stop.borrow() {
            // Not started: left unacknowledged, the broker hands it to another worker.
            continue;
        }
        if ctx.cancellations.is_cancelled(call.message.job_id) {
            let change = Change::Cancel {
                message: call.message,
            };
            let _ = writes.send((received, change));
            continue;
        }
        let ctx = ctx.clone();
        let writes = writes.clone();
        let span = received.span.clone();
        tokio::spawn(
            async move {
                let outcome = process::call(&ctx, &call)
                    .await
                    .or_else(|disposition| process::spend_attempt(&ctx, disposition));
                drop(permit);
                match outcome {
                    Ok(change) => {
                        let _ = writes.send((received, change));
                    }
                    Err(disposition) => settle(&ctx, &received.delivery, disposition).await,
                }
            }
            .instrument(span),
        );
    }
}

/// Writes outcomes in batches; after each commit a follow-up task publishes what the batch
/// leads to and then settles its deliveries, while the next batch is written.
async fn write_batches(ctx: Arc<Context>, mut writes: mpsc::UnboundedReceiver<(Received, Change)>) {
    let mut follow_ups = JoinSet::new();
    while let Some(first) = writes.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH
            && let Ok(next) = writes.try_recv()
        {
            batch.push(next);
        }
        let batch = dead_letter_failures(&ctx, batch, &mut follow_ups).await;
        if batch.is_empty() {
            continue;
        }
        let (received, changes): (Vec<Received>, Vec<Change>) = batch.into_iter().unzip();
        // One write for many deliveries: linked to each delivery's span.
        let span = tracing::info_span!("write batch", outcomes = changes.len());
        for r in &received {
            span.add_link(r.span.context().span().span_context().clone());
        }
        let started = Instant::now();
        let written = write_with_retries(&ctx, &changes)
            .instrument(span.clone())
            .await;
        tracing::debug!(
            outcomes = changes.len(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "batch written"
        );
        match written {
            Ok(applied) => {
                for r in &received {
                    ctx.metrics.stage_written(r.at.elapsed());
                }
                let ctx = ctx.clone();
                follow_ups.spawn(async move {
                    let ctx = &ctx;
                    let started = Instant::now();
                    let dispositions = process::follow(ctx, &applied).instrument(span).await;
                    let published_us = started.elapsed().as_micros() as u64;
                    join_all(received.iter().zip(dispositions).map(|(r, disposition)| {
                        settle(ctx, &r.delivery, disposition).instrument(r.span.clone())
                    }))
                    .await;
                    tracing::debug!(
                        published_us,
                        settled_us = started.elapsed().as_micros() as u64,
                        "batch followed up"
                    );
                });
            }
            Err(error) => {
                let disposition = process::store_failed(&error);
                let ctx = ctx.clone();
                follow_ups.spawn(async move {
                    join_all(received.iter().map(|r| {
                        settle(&ctx, &r.delivery, disposition.clone()).instrument(r.span.clone())
                    }))
                    .await;
                });
            }
        }
        while follow_ups.try_join_next().is_some() {}
    }
    while follow_ups.join_next().await.is_some() {}
}

async fn write_with_retries(
    ctx: &Context,
    changes: &[Change],
) -> Result<store::work::Applied, store::StoreError> {
    let mut pause = Duration::from_millis(50);
    let mut tries = 1;
    loop {
        match process::write(ctx, changes).await {
            Ok(applied) => return Ok(applied),
            Err(error) if tries < WRITE_TRIES => {
                tracing::debug!(%error, tries, "writing a batch failed; trying again");
                tokio::time::sleep(pause).await;
                pause *= 2;
                tries += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

/// Publishes a dead letter for every failure in `batch` (before the failure is written, so
/// a crash in between redelivers the message instead of losing the dead letter) and returns
/// what can be written. Failures whose dead letter the broker did not take go back to the
/// queue after a pause.
async fn dead_letter_failures(
    ctx: &Arc<Context>,
    batch: Vec<(Received, Change)>,
    follow_ups: &mut JoinSet<()>,
) -> Vec<(Received, Change)> {
    if !batch.iter().any(|(_, c)| matches!(c, Change::Fail { .. })) {
        return batch;
    }
    let jobs = ctx
        .jobs
        .get_all(&ctx.db, batch.iter().map(|(_, c)| c.message().job_id))
        .await
        .unwrap_or_default();
    let letters: Vec<(Vec<u8>, DeadLetter)> = batch
        .iter()
        .filter_map(|(received, change)| {
            let delivery = &received.delivery;
            let Change::Fail {
                message,
                class,
                reason,
            } = change
            else {
                return None;
            };
            let mut letter = DeadLetter::new(*class, reason.clone());
            letter.attempts = message.attempt + 1;
            if let Some(first) =
                dead_letter::first_failed_at(delivery.properties.headers().as_ref())
            {
                letter.first_failed_at = first;
            }
            letter.origin_traceparent =
                broker::trace::origin_of(delivery.properties.headers().as_ref());
            letter.job_id = Some(message.job_id);
            letter.item_id = Some(message.item_id);
            letter.stage_index = Some(message.stage_index);
            if let Some(job) = jobs.get(&message.job_id) {
                letter.tenant_id = Some(job.tenant_id);
                letter.model = job
                    .snapshot
                    .stages
                    .get(message.stage_index as usize)
                    .map(|stage| stage.model.clone());
            }
            Some((delivery.data.clone(), letter))
        })
        .collect();
    match ctx.publisher.publish_dead_letters(&letters).await {
        Ok(()) => batch,
        Err(error) => {
            let (failed, rest): (Vec<_>, Vec<_>) = batch
                .into_iter()
                .partition(|(_, c)| matches!(c, Change::Fail { .. }));
            let disposition = process::requeue(
                Duration::from_secs(2),
                format!("could not dead-letter a failed item: {error}"),
            );
            let ctx = ctx.clone();
            follow_ups.spawn(async move {
                join_all(failed.iter().map(|(r, _)| {
                    settle(&ctx, &r.delivery, disposition.clone()).instrument(r.span.clone())
                }))
                .await;
            });
            rest
        }
    }
}

async fn settle(ctx: &Context, delivery: &Delivery, disposition: Disposition) {
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

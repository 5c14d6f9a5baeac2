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
//!
//! The steps: loading and deciding in [`plan`](crate::plan), the call in
//! [`call`](crate::call), writing and following up in `writer`, settling on the broker in
//! `delivery`.

mod delivery;
mod writer;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use broker::dead_letter;
use futures::{FutureExt, StreamExt};
use lapin::{
    Channel, Consumer,
    message::Delivery,
    options::{BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions},
    types::FieldTable,
};
use store::work::Change;
use tokio::sync::{Semaphore, mpsc, watch};
use tracing::Instrument;

use crate::{
    call,
    context::Context,
    plan::{self, Call, Disposition, Envelope, Step, UNCOMMITTED_JOB_WAIT},
};
use delivery::{Incoming, Received, settle};

/// Most deliveries loaded, or outcomes written, at once.
const MAX_BATCH: usize = 256;

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
    let writer = tokio::spawn(writer::write_batches(ctx.clone(), writes_rx));
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
        let prepared = plan::prepare(&ctx, &envelopes).await;
        tracing::debug!(
            messages = batch.len(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "batch loaded"
        );
        match prepared {
            Err(error) => {
                let reason = plan::store_failed(&error);
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

/// Sends a prepared delivery where its step says.
fn route(
    ctx: &Arc<Context>,
    incoming: Incoming,
    step: Step,
    calls: &mpsc::UnboundedSender<(Received, Box<Call>)>,
    writes: &mpsc::UnboundedSender<(Received, Change)>,
    retries: &mpsc::UnboundedSender<Incoming>,
) {
    let disposition = match step {
        Step::Settle(disposition) => disposition,
        Step::Call(call) => {
            let received = incoming.received(&call.message);
            let _ = calls.send((received, call));
            return;
        }
        Step::Write(change) => {
            let received = incoming.received(change.message());
            let _ = writes.send((received, change));
            return;
        }
        Step::NotYetVisible if incoming.since.elapsed() >= UNCOMMITTED_JOB_WAIT => {
            // A submission whose commit failed after its messages were confirmed: nothing
            // refers to the message.
            incoming
                .span
                .in_scope(|| tracing::info!("message names no job or item; dropped"));
            Disposition::Ack
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
            return;
        }
    };
    let ctx = ctx.clone();
    let span = incoming.span.clone();
    tokio::spawn(
        async move { settle(&ctx, &incoming.delivery, disposition).await }.instrument(span),
    );
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
                let outcome = call::run(&ctx, &call)
                    .await
                    .or_else(|disposition| plan::spend_attempt(disposition, ctx.max_attempts));
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

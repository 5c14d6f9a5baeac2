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
//! while the current ones are analysed. Stopping: no new messages and no new calls, the calls
//! in flight finish and are written (up to a grace period); everything else is redelivered.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures::{FutureExt, StreamExt, future::join_all};
use lapin::{
    Channel,
    message::Delivery,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, BasicRejectOptions,
    },
    types::FieldTable,
};
use store::work::Change;
use tokio::{
    sync::{Semaphore, mpsc, watch},
    task::JoinSet,
};

use crate::process::{self, Call, Context, Disposition, Step, UNCOMMITTED_JOB_WAIT};

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

/// A delivery waiting for its submission's commit.
struct Incoming {
    delivery: Delivery,
    since: Instant,
    pause: Duration,
}

/// Consumes `queue` until `stop` turns true (or the channel fails).
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
    let mut consumer = channel
        .basic_consume(
            queue.into(),
            format!("worker-{}", uuid::Uuid::new_v4()).into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
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
    tracing::info!(
        queue,
        concurrency = limits.concurrency,
        prefetch = limits.prefetch,
        "consuming"
    );

    let mut failure = None;
    loop {
        let first = tokio::select! {
            _ = stop.changed() => break,
            retry = retries_rx.recv() => match retry {
                Some(incoming) => incoming,
                None => break,
            },
            next = consumer.next() => match next {
                Some(Ok(delivery)) => Incoming::new(delivery),
                Some(Err(error)) => { failure = Some(error); break }
                None => break,
            },
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match consumer.next().now_or_never() {
                Some(Some(Ok(delivery))) => batch.push(Incoming::new(delivery)),
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
        let bodies: Vec<&[u8]> = batch.iter().map(|i| i.delivery.data.as_slice()).collect();
        let started = Instant::now();
        let prepared = process::prepare(&ctx, &bodies).await;
        tracing::debug!(
            messages = batch.len(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "batch loaded"
        );
        match prepared {
            Err(error) => {
                let reason = process::store_failed(&error);
                for incoming in batch {
                    let reason = reason.clone();
                    tokio::spawn(async move { settle(&incoming.delivery, reason).await });
                }
            }
            Ok(steps) => {
                for (incoming, step) in batch.into_iter().zip(steps) {
                    route(incoming, step, &calls, &writes, &retries);
                }
            }
        }
        if failure.is_some() {
            break;
        }
    }

    tracing::info!("stopping: no new messages; finishing the calls in flight");
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

impl Incoming {
    fn new(delivery: Delivery) -> Self {
        Self {
            delivery,
            since: Instant::now(),
            pause: Duration::from_millis(20),
        }
    }
}

/// Sends a prepared delivery where its step says.
fn route(
    incoming: Incoming,
    step: Step,
    calls: &mpsc::UnboundedSender<(Delivery, Box<Call>)>,
    writes: &mpsc::UnboundedSender<(Delivery, Change)>,
    retries: &mpsc::UnboundedSender<Incoming>,
) {
    match step {
        Step::Settle(disposition) => {
            tokio::spawn(async move { settle(&incoming.delivery, disposition).await });
        }
        Step::Call(call) => {
            let _ = calls.send((incoming.delivery, call));
        }
        Step::Write(change) => {
            let _ = writes.send((incoming.delivery, change));
        }
        Step::NotYetVisible if incoming.since.elapsed() >= UNCOMMITTED_JOB_WAIT => {
            let disposition = process::dropped_unknown();
            tokio::spawn(async move { settle(&incoming.delivery, disposition).await });
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
    mut calls: mpsc::UnboundedReceiver<(Delivery, Box<Call>)>,
    writes: mpsc::UnboundedSender<(Delivery, Change)>,
    slots: Arc<Semaphore>,
    stop: watch::Receiver<bool>,
) {
    while let Some((delivery, call)) = calls.recv().await {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        if *stop.borrow() {
            // Not started: left unacknowledged, the broker hands it to another worker.
            continue;
        }
        let ctx = ctx.clone();
        let writes = writes.clone();
        tokio::spawn(async move {
            let outcome = process::call(&ctx, &call).await;
            drop(permit);
            match outcome {
                Ok(change) => {
                    let _ = writes.send((delivery, change));
                }
                Err(disposition) => settle(&delivery, disposition).await,
            }
        });
    }
}

/// Writes outcomes in batches; after each commit a follow-up task publishes what the batch
/// leads to and then settles its deliveries, while the next batch is written.
async fn write_batches(ctx: Arc<Context>, mut writes: mpsc::UnboundedReceiver<(Delivery, Change)>) {
    let mut follow_ups = JoinSet::new();
    while let Some(first) = writes.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH
            && let Ok(next) = writes.try_recv()
        {
            batch.push(next);
        }
        let (deliveries, changes): (Vec<Delivery>, Vec<Change>) = batch.into_iter().unzip();
        let started = Instant::now();
        let written = write_with_retries(&ctx, &changes).await;
        tracing::debug!(
            outcomes = changes.len(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "batch written"
        );
        match written {
            Ok(applied) => {
                let ctx = ctx.clone();
                follow_ups.spawn(async move {
                    let started = Instant::now();
                    let dispositions = process::follow(&ctx, &applied).await;
                    let published_us = started.elapsed().as_micros() as u64;
                    join_all(
                        deliveries
                            .iter()
                            .zip(dispositions)
                            .map(|(delivery, disposition)| settle(delivery, disposition)),
                    )
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
                follow_ups.spawn(async move {
                    join_all(
                        deliveries
                            .iter()
                            .map(|delivery| settle(delivery, disposition.clone())),
                    )
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

async fn settle(delivery: &Delivery, disposition: Disposition) {
    let result = match disposition {
        Disposition::Ack => delivery.ack(BasicAckOptions::default()).await,
        Disposition::Requeue { after, reason } => {
            tracing::debug!(%reason, ?after, "handing the message back");
            tokio::time::sleep(after).await;
            delivery
                .nack(BasicNackOptions {
                    requeue: true,
                    ..Default::default()
                })
                .await
        }
        Disposition::Reject { reason } => {
            tracing::warn!(%reason, "rejecting the message to the dead-letter queue");
            delivery.reject(BasicRejectOptions { requeue: false }).await
        }
    };
    if let Err(error) = result {
        // The channel is gone; the broker redelivers the message.
        tracing::warn!(%error, "could not settle a delivery");
    }
}

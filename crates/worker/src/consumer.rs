//! The consumer loop: manual acks, an explicit prefetch, at most `concurrency` messages in
//! flight, and a graceful stop that finishes (or hands back) what is in flight.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use lapin::{
    Channel,
    message::Delivery,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, BasicRejectOptions,
    },
    types::FieldTable,
};
use tokio::sync::{Semaphore, watch};

use crate::process::{Context, Disposition, process};

/// Consumes the stage queue until `stop` turns true, then waits up to `grace` for the
/// messages in flight; any still unfinished are redelivered to another worker by the broker.
pub async fn run(
    ctx: Arc<Context>,
    channel: Channel,
    queue: &str,
    concurrency: usize,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) -> Result<(), lapin::Error> {
    let prefetch = u16::try_from(concurrency).unwrap_or(u16::MAX);
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await?;
    let mut consumer = channel
        .basic_consume(
            queue.into(),
            format!("worker-{}", uuid::Uuid::new_v4()).into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let slots = Arc::new(Semaphore::new(concurrency));
    tracing::info!(queue, concurrency, "consuming");
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            next = consumer.next() => {
                let Some(delivery) = next else { break };
                let delivery = delivery?;
                let Ok(permit) = slots.clone().acquire_owned().await else { break };
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    let disposition = process(&ctx, &delivery.data).await;
                    settle(&delivery, disposition).await;
                    drop(permit);
                });
            }
        }
    }
    tracing::info!("stopping: no new messages; waiting for the ones in flight");
    let all = u32::try_from(concurrency).unwrap_or(u32::MAX);
    if tokio::time::timeout(grace, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("grace period over; unfinished messages go back to the queue");
    }
    Ok(())
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

//! The writer: outcomes written in batches (one transaction each), failures dead-lettered
//! first, and what a committed batch leads to published before its deliveries are settled.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use broker::{DeadLetter, dead_letter};
use domain::message::StageMessage;
use futures::future::join_all;
use opentelemetry::trace::TraceContextExt;
use store::work::{self, Applied, Change};
use tokio::{sync::mpsc, task::JoinSet};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::{
    MAX_BATCH,
    delivery::{Received, settle},
};
use crate::{
    context::Context,
    plan::{self, Disposition, requeue},
};

/// Tries of a batch write before its messages are handed back (a deadlock or a dropped
/// connection usually clears at once).
const WRITE_TRIES: u32 = 4;

/// Writes outcomes in batches; after each commit a follow-up task publishes what the batch
/// leads to and then settles its deliveries, while the next batch is written.
pub(super) async fn write_batches(
    ctx: Arc<Context>,
    mut writes: mpsc::UnboundedReceiver<(Received, Change)>,
) {
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
                    let dispositions = follow(ctx, &applied).instrument(span).await;
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
                let disposition = plan::store_failed(&error);
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
) -> Result<Applied, store::StoreError> {
    let mut pause = Duration::from_millis(50);
    let mut tries = 1;
    loop {
        match work::apply(&ctx.db, changes).await {
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
                letter.tenant_id = Some(job.header.tenant_id);
                letter.model = job
                    .stage(message.stage_index)
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
            let disposition = requeue(
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

/// Publishes what a committed batch leads to: the next stages' messages (confirmed before
/// any of the batch is acknowledged) and the job events. Returns each change's disposition.
async fn follow(ctx: &Context, applied: &Applied) -> Vec<Disposition> {
    if !applied.events.is_empty() {
        // Best effort: live views re-read the job from the database when events go missing.
        if let Err(error) = ctx.publisher.publish_events(&applied.events).await {
            tracing::warn!(%error, "could not publish job events");
        }
        for event in applied.events.iter().filter(|e| e.is_final()) {
            tracing::info!(job_id = %event.job_id, status = event.status.as_str(), "job finished");
        }
    }
    let next: Vec<StageMessage> = applied.next.iter().flatten().copied().collect();
    let published = if next.is_empty() {
        Ok(())
    } else {
        let priorities = ctx
            .jobs
            .get_all(&ctx.db, next.iter().map(|m| m.job_id))
            .await;
        match priorities {
            Ok(jobs) => {
                let batch: Vec<_> = next
                    .iter()
                    .map(|m| {
                        let priority = jobs.get(&m.job_id).map(|j| j.header.priority);
                        (*m, priority.unwrap_or_default())
                    })
                    .collect();
                ctx.publisher
                    .publish_prioritised(&batch)
                    .await
                    .map_err(|e| e.to_string())
            }
            Err(error) => Err(error.to_string()),
        }
    };
    applied
        .next
        .iter()
        .map(|next| match (next, &published) {
            (Some(_), Err(error)) => requeue(
                Duration::from_secs(2),
                // Stored; the redelivery of this message publishes the next one.
                format!("publishing the next stage: {error}"),
            ),
            _ => Disposition::Ack,
        })
        .collect()
}

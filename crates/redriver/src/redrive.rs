//! Re-driving and purging dead letters (the automatic policy's passes are [`crate::policy`]'s).
//!
//! Re-driving a dead letter re-opens its item ([`store::retry::reopen_and_announce`], as a
//! job's retry does: the failed item goes back to `pending` at the stage where it failed, the
//! job's counters and status follow) and publishes the item's stage message again, with
//! publisher confirms and the `x-reopened` header; then the letter is marked `redriven`. A letter that names no item (a poison
//! message), or whose item is no longer failed, is skipped with its reason. Re-drives are
//! paced at `redriver.redrive_per_second`, shared by every request of the process.
//!
//! Every request, dry runs included, writes one `redrive_audit` record: who asked, the
//! request as JSON (`action`, `filter`, options), what matched and what was re-driven. The
//! record is written before the work starts and completed after it, so a re-drive cut short
//! by a crash still shows up.
//!
//! A re-drive proceeds in paced steps, each re-opening its items and marking their letters
//! in turn. When the process is asked to stop, a re-drive finishes the step it is in and
//! stops there (`stopped` says so; the letters not attempted stay open, to be re-driven
//! later), so no step is left half done.

use std::{collections::HashSet, time::Duration};

use serde::{Deserialize, Serialize};
use serde_json::json;
use store::{
    StoreError,
    dead_letters::{self, DeadLetterFilter, NewAudit, Target},
    retry::{ReopenError, ReopenScope},
};
use tokio::{sync::Mutex, time::Instant};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{Redriver, metrics::Trigger};

/// `requested_by` of the automatic policy's re-drives.
pub const AUTO_REDRIVE_REQUESTER: &str = "auto-redrive";

/// Items whose state is looked up in one query.
const LOOKUP_CHUNK: usize = 1_000;

/// Largest `limit` a request may ask for.
pub const MAX_LIMIT: u64 = 1_000_000;

#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    /// The request itself is wrong; the message is safe to show.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Re-drive the dead letters a filter selects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"filter": {"error_class": "transient"}, "dry_run": true, "limit": 100}))]
pub struct RedriveRequest {
    /// Which dead letters (status `open` unless the filter names one). Required, so that
    /// "every open dead letter" is always asked for explicitly, as `{}`.
    pub filter: DeadLetterFilter,
    /// Count what would be re-driven, change nothing (the request is still audited).
    #[serde(default)]
    pub dry_run: bool,
    /// Re-drive at most this many letters, the oldest first.
    #[schema(minimum = 1, maximum = 1000000)]
    pub limit: Option<u64>,
}

/// Purge the dead letters a filter selects: mark them `purged` (rows, payloads and headers
/// are kept).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"filter": {"error_class": "poison"}, "dry_run": true}))]
pub struct PurgeRequest {
    /// Which dead letters (status `open` unless the filter names one). Required; `{}` means
    /// every open dead letter.
    pub filter: DeadLetterFilter,
    /// Count what would be purged, change nothing (the request is still audited).
    #[serde(default)]
    pub dry_run: bool,
}

/// Letters a re-drive left alone, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Skipped {
    /// Letters that name no item (poison messages): there is nothing to re-open.
    pub no_item: u64,
    /// Letters whose item is no longer failed (retried or re-driven already, or gone) or
    /// whose job was cancelled.
    pub item_not_failed: u64,
}

impl Skipped {
    pub fn total(&self) -> u64 {
        self.no_item + self.item_not_failed
    }
}

/// What a re-drive did (or, in a dry run, would do).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RedriveReport {
    pub dry_run: bool,
    /// Dead letters the filter (and limit) selected.
    pub matched: u64,
    /// Dead letters re-driven: their items re-opened and stage messages published (0 in a
    /// dry run).
    pub redriven: u64,
    /// Dry run only: how many would be re-driven now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would_redrive: Option<u64>,
    pub skipped: Skipped,
    /// Letters not attempted because the re-drive stopped early (see `stopped`); they stay
    /// as they were.
    pub not_attempted: u64,
    /// Why the re-drive stopped early (the broker or the database became unavailable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// The `redrive_audit` record of this request (absent only from the CLI's confirmation
    /// preview, which is not audited).
    pub audit_id: Option<Uuid>,
}

/// What a purge did (or, in a dry run, would do).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PurgeReport {
    pub dry_run: bool,
    /// Dead letters the filter selected.
    pub matched: u64,
    /// Dead letters marked `purged` (0 in a dry run).
    pub purged: u64,
    /// The `redrive_audit` record of this request.
    pub audit_id: Option<Uuid>,
}

/// Paces re-drives across every request of the process: `per_second` letters a second.
pub struct RedriveRateLimiter {
    per_second: u32,
    next: Mutex<Option<Instant>>,
}

impl RedriveRateLimiter {
    pub fn new(per_second: u32) -> Self {
        Self {
            per_second: per_second.max(1),
            next: Mutex::new(None),
        }
    }

    /// The most letters one paced step should take.
    pub fn batch(&self) -> usize {
        self.per_second as usize
    }

    /// Waits until `n` more letters may go.
    pub async fn acquire(&self, n: usize) {
        let start = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let start = next.map_or(now, |t| t.max(now));
            let cost = Duration::from_secs_f64(n as f64 / f64::from(self.per_second));
            *next = Some(start + cost);
            start
        };
        tokio::time::sleep_until(start).await;
    }
}

/// Where a long re-drive is: letters dealt with so far, of how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
}

/// Re-drives (or, with `dry_run`, counts) the dead letters `request` selects, and audits it.
///
/// `progress` is called after each paced step. A broker or database failure midway stops
/// the re-drive: the report says why and how many letters were not attempted.
#[tracing::instrument(skip(ctx, progress))]
pub async fn redrive(
    ctx: &Redriver,
    request: &RedriveRequest,
    requested_by: &str,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<RedriveReport, RedriveError> {
    request.filter.check().map_err(RedriveError::Invalid)?;
    if request.limit.is_some_and(|l| !(1..=MAX_LIMIT).contains(&l)) {
        return Err(RedriveError::Invalid(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let filter = request.filter.open_by_default();
    let targets = dead_letters::targets(&ctx.db, &filter, request.limit).await?;
    let audit_filter = json!({
        "action": "redrive",
        "filter": filter,
        "limit": request.limit,
    });
    let audit_letter = filter.id;
    run(
        ctx,
        targets,
        request.dry_run,
        requested_by,
        audit_filter,
        audit_letter,
        progress,
    )
    .await
}

/// Counts what [`redrive`] would do, without auditing: for a confirmation prompt.
pub async fn preview(
    ctx: &Redriver,
    request: &RedriveRequest,
) -> Result<RedriveReport, RedriveError> {
    request.filter.check().map_err(RedriveError::Invalid)?;
    let filter = request.filter.open_by_default();
    let targets = dead_letters::targets(&ctx.db, &filter, request.limit).await?;
    let (would, skipped) = classify(ctx, &targets).await?;
    Ok(RedriveReport {
        dry_run: true,
        matched: targets.len() as u64,
        redriven: 0,
        would_redrive: Some(would.len() as u64),
        skipped,
        not_attempted: 0,
        stopped: None,
        audit_id: None,
    })
}

/// Splits targets into the ones a re-drive would re-open now and the skipped ones.
async fn classify(
    ctx: &Redriver,
    targets: &[Target],
) -> Result<(Vec<Target>, Skipped), StoreError> {
    let mut skipped = Skipped::default();
    let items: Vec<Uuid> = targets.iter().filter_map(|t| t.item_id).collect();
    let mut reopenable = HashSet::new();
    for chunk in items.chunks(LOOKUP_CHUNK) {
        reopenable.extend(dead_letters::reopenable_items(&ctx.db, chunk).await?);
    }
    let mut would = Vec::new();
    for target in targets {
        match target.item_id {
            None => skipped.no_item += 1,
            Some(item) if reopenable.contains(&item) => would.push(*target),
            Some(_) => skipped.item_not_failed += 1,
        }
    }
    Ok((would, skipped))
}

/// Re-drives `targets` (or, in a dry run, counts them) in paced steps, and audits it.
pub(crate) async fn run(
    ctx: &Redriver,
    targets: Vec<Target>,
    dry_run: bool,
    requested_by: &str,
    audit_filter: serde_json::Value,
    audit_letter: Option<Uuid>,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<RedriveReport, RedriveError> {
    let matched = targets.len() as u64;
    let counted = if dry_run {
        Some(classify(ctx, &targets).await?)
    } else {
        None
    };
    let note = match &counted {
        Some((would, skipped)) => format!(
            "dry run: would re-drive {}; would skip {} without an item, {} whose item is not failed",
            would.len(),
            skipped.no_item,
            skipped.item_not_failed
        ),
        None => "started".into(),
    };
    // Written before any step, so a re-drive cut short by a crash is on record too.
    let audit_id = dead_letters::insert_audit(
        &ctx.db,
        &NewAudit {
            requested_by: requested_by.to_string(),
            dead_letter_id: audit_letter,
            filter: audit_filter,
            dry_run,
            matched,
            redriven: 0,
            note: Some(note),
        },
    )
    .await?;
    if let Some((would, skipped)) = counted {
        tracing::info!(matched, would_redrive = would.len(), "dry-run re-drive");
        return Ok(RedriveReport {
            dry_run: true,
            matched,
            redriven: 0,
            would_redrive: Some(would.len() as u64),
            skipped,
            not_attempted: 0,
            stopped: None,
            audit_id: Some(audit_id),
        });
    }

    let mut skipped = Skipped::default();
    let with_item: Vec<Target> = targets
        .iter()
        .filter(|t| t.item_id.is_some())
        .copied()
        .collect();
    skipped.no_item = matched - with_item.len() as u64;
    let mut done = skipped.no_item;
    let mut redriven = 0u64;
    let mut stopped = None;
    let mut not_attempted = 0u64;
    progress(Progress {
        done,
        total: matched,
    });
    let chunks: Vec<&[Target]> = with_item.chunks(ctx.limiter.batch()).collect();
    for (index, chunk) in chunks.iter().enumerate() {
        let paced = tokio::select! {
            _ = ctx.limiter.acquire(chunk.len()) => !ctx.shutdown.is_begun(),
            _ = ctx.shutdown.begun() => false,
        };
        if !paced {
            stopped = Some("the re-driver is shutting down".to_string());
            not_attempted = chunks[index..].iter().map(|c| c.len() as u64).sum();
            break;
        }
        match redrive_chunk(ctx, chunk).await {
            Ok(step) => {
                redriven += step.redriven;
                skipped.item_not_failed += step.item_not_failed;
                if let Some(reason) = step.stopped {
                    // The items were re-opened but their letters could not be marked: the
                    // rest waits for the database.
                    stopped = Some(reason);
                    not_attempted = chunks[index + 1..].iter().map(|c| c.len() as u64).sum();
                    break;
                }
            }
            Err(reason) => {
                stopped = Some(reason);
                not_attempted = chunks[index..].iter().map(|c| c.len() as u64).sum();
                break;
            }
        }
        done += chunk.len() as u64;
        progress(Progress {
            done,
            total: matched,
        });
    }

    let mut note = format!(
        "re-drove {redriven}; skipped {} without an item, {} whose item is not failed",
        skipped.no_item, skipped.item_not_failed
    );
    if let Some(reason) = &stopped {
        note.push_str(&format!(
            "; stopped early ({reason}), {not_attempted} not attempted"
        ));
    }
    let trigger = if requested_by == AUTO_REDRIVE_REQUESTER {
        Trigger::Automatic
    } else {
        Trigger::Operator
    };
    ctx.metrics.redriven(trigger, redriven);
    if let Err(error) = dead_letters::finish_audit(&ctx.db, audit_id, redriven, Some(&note)).await {
        // The record exists (it was written first) but still says "started".
        tracing::error!(%error, %audit_id, redriven, "could not complete the audit record of a re-drive");
    }
    tracing::info!(
        matched,
        redriven,
        skipped = skipped.total(),
        not_attempted,
        "re-drive done"
    );
    Ok(RedriveReport {
        dry_run: false,
        matched,
        redriven,
        would_redrive: None,
        skipped,
        not_attempted,
        stopped,
        audit_id: Some(audit_id),
    })
}

struct Step {
    redriven: u64,
    item_not_failed: u64,
    /// Set when the items were re-opened but their letters could not be marked.
    stopped: Option<String>,
}

/// Re-opens the items of one paced step and marks their letters re-driven. `Err`: nothing
/// changed, and why.
async fn redrive_chunk(ctx: &Redriver, chunk: &[Target]) -> Result<Step, String> {
    let items: Vec<Uuid> = chunk.iter().filter_map(|t| t.item_id).collect();
    let publisher = &ctx.publisher;
    // Best effort: without them the re-driven work simply starts fresh traces.
    let ids: Vec<Uuid> = chunk.iter().map(|t| t.id).collect();
    let origins = dead_letters::trace_origins(&ctx.db, &ids)
        .await
        .unwrap_or_default();
    let origins = &origins;
    let reopened = store::retry::reopen_and_announce(
        &ctx.db,
        ReopenScope::Items(items),
        |messages| async move { publisher.publish_redriven(&messages, origins).await },
        |events| async move { publisher.publish_events(&events).await },
    )
    .await
    .map_err(|error| match error {
        ReopenError::Publish(cause) => {
            tracing::warn!(error = %cause, "could not publish re-driven stage messages");
            "the message broker is unavailable".to_string()
        }
        ReopenError::Store(cause) => {
            tracing::warn!(error = %cause, "could not re-open items");
            "the database is unavailable".to_string()
        }
        // Only a job's retry changes or checks budget caps, never a re-drive of items.
        other @ (ReopenError::Uncapped
        | ReopenError::CapNotAboveSpend { .. }
        | ReopenError::BudgetExhausted { .. }) => other.to_string(),
    })?;
    let reopened_items: HashSet<Uuid> = reopened.reopened.into_iter().collect();
    let letters: Vec<Uuid> = chunk
        .iter()
        .filter(|t| t.item_id.is_some_and(|item| reopened_items.contains(&item)))
        .map(|t| t.id)
        .collect();
    let item_not_failed = (chunk.len() - letters.len()) as u64;
    match dead_letters::mark_redriven(&ctx.db, &letters).await {
        Ok(_) => Ok(Step {
            redriven: letters.len() as u64,
            item_not_failed,
            stopped: None,
        }),
        Err(error) => {
            tracing::error!(%error, letters = letters.len(), "items re-opened, but their dead letters could not be marked re-driven");
            Ok(Step {
                redriven: letters.len() as u64,
                item_not_failed,
                stopped: Some(
                    "the database is unavailable (the last items were re-opened but their letters are still open)"
                        .into(),
                ),
            })
        }
    }
}

/// Purges (or, with `dry_run`, counts) the dead letters `request` selects, and audits it.
#[tracing::instrument(skip(ctx))]
pub async fn purge(
    ctx: &Redriver,
    request: &PurgeRequest,
    requested_by: &str,
) -> Result<PurgeReport, RedriveError> {
    request.filter.check().map_err(RedriveError::Invalid)?;
    let filter = request.filter.open_by_default();
    let audit = |matched: u64, note: String| NewAudit {
        requested_by: requested_by.to_string(),
        dead_letter_id: filter.id,
        filter: json!({"action": "purge", "filter": filter}),
        dry_run: request.dry_run,
        matched,
        redriven: 0,
        note: Some(note),
    };
    if request.dry_run {
        let matched = dead_letters::count(&ctx.db, &filter).await?;
        let audit_id = dead_letters::insert_audit(
            &ctx.db,
            &audit(matched, format!("dry run: would purge {matched}")),
        )
        .await?;
        return Ok(PurgeReport {
            dry_run: true,
            matched,
            purged: 0,
            audit_id: Some(audit_id),
        });
    }
    let matched = dead_letters::count(&ctx.db, &filter).await?;
    let purged = dead_letters::purge(&ctx.db, &filter).await?;
    let audit_id =
        dead_letters::insert_audit(&ctx.db, &audit(matched, format!("purged {purged}"))).await?;
    tracing::info!(matched, purged, "dead letters purged");
    Ok(PurgeReport {
        dry_run: false,
        matched,
        purged,
        audit_id: Some(audit_id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_limiter_lets_one_batch_through_per_second() {
        let limiter = RedriveRateLimiter::new(10);
        let start = tokio::time::Instant::now();
        limiter.acquire(10).await;
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "the first batch goes at once"
        );
        limiter.acquire(10).await;
        limiter.acquire(5).await;
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_secs(2) && elapsed < Duration::from_millis(2_100),
            "{elapsed:?}"
        );
    }

    #[test]
    fn a_request_without_a_filter_is_refused() {
        let err = serde_json::from_str::<RedriveRequest>(r#"{"dry_run": false}"#).unwrap_err();
        assert!(err.to_string().contains("filter"), "{err}");
        let err =
            serde_json::from_str::<PurgeRequest>(r#"{"filter": {}, "dryrun": true}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}

//! The budget cap (docs/api.md, "Costs and budget caps"): before a call for a job with a cap,
//! the job's spend is read fresh (the cached job header cannot know it); once it has reached
//! the cap no call starts, the item is skipped, and the job is stopped
//! ([`store::budget::stop_if_exhausted`]) so nothing more of it is released.

use store::work::Change;

use crate::{
    context::Context,
    plan::{self, Call, Disposition},
};

/// `Some(skip)` when the call must not start because its job's spend reached its cap (or the
/// job is gone); `None` to go ahead. Jobs without a cap cost no query.
pub async fn check(ctx: &Context, call: &Call) -> Result<Option<Change>, Disposition> {
    if !call.job.header.capped {
        return Ok(None);
    }
    let job_id = call.message.job_id;
    let skip = Change::Skip {
        message: call.message,
    };
    let spend = match store::budget::spend(&ctx.db, job_id).await {
        Ok(Some(spend)) => spend,
        // Deleted meanwhile: nothing to spend on (the write finds no item and does nothing).
        Ok(None) => return Ok(Some(skip)),
        Err(error) => return Err(plan::store_failed(&error)),
    };
    if !spend.exhausted() {
        return Ok(None);
    }
    tracing::debug!(%job_id, spent_usd = spend.cost_usd, max_cost_usd = ?spend.max_cost_usd, "the job's spend reached its cap; item skipped without a call");
    if !spend.stopped {
        match store::budget::stop_if_exhausted(&ctx.db, job_id).await {
            Ok(Some(event)) => {
                // Best effort, like the writer's events: live views re-read the job.
                if let Err(error) = ctx.publisher.publish_events(&[event]).await {
                    tracing::warn!(%error, %job_id, "could not publish a budget stop's event");
                }
            }
            Ok(None) => {}
            // The scheduler stops the job on its next pass (it sees it over budget).
            Err(error) => tracing::warn!(%error, %job_id, "could not stop a job over its budget"),
        }
    }
    Ok(Some(skip))
}

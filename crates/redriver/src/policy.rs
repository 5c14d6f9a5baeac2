//! The automatic re-drive policy: when Cohere looks healthy, open `transient` dead letters
//! that have waited long enough are re-driven, audited as `auto-redrive`.

use std::time::Duration;

use domain::job::ErrorClass;
use serde_json::json;
use store::dead_letters;

use crate::{
    Redriver,
    redrive::{AUTO_REDRIVE_REQUESTER, RedriveError, RedriveReport, run},
};

/// A breaker that opened or half-opened this recently means Cohere may still be unhealthy.
pub const BREAKER_QUIET_PERIOD: Duration = Duration::from_secs(600);

/// What one pass of the automatic policy did.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicyPass {
    /// A circuit breaker opened or half-opened within [`BREAKER_QUIET_PERIOD`]: nothing done.
    CohereUnhealthy,
    /// No dead letter qualified: nothing done (and nothing audited).
    NothingToDo,
    /// These letters were re-driven (audited as `auto-redrive`).
    Redrove(RedriveReport),
}

/// One pass of the automatic re-drive policy (`redriver serve` runs it every
/// `auto_redrive_interval_seconds` when `auto_redrive` is on; tests call it directly).
///
/// When Cohere looks healthy — no circuit breaker open or half-open that changed within the
/// last 10 minutes — it re-drives open `transient` dead letters older than
/// `auto_redrive_after_seconds` and re-driven fewer than `auto_redrive_max` times, whose
/// item is still failed; at most as many as one interval's rate allows.
#[tracing::instrument(skip(ctx))]
pub async fn auto_redrive_pass(ctx: &Redriver) -> Result<PolicyPass, RedriveError> {
    if store::breakers::tripped_within(&ctx.db, BREAKER_QUIET_PERIOD).await? {
        tracing::debug!("a circuit breaker tripped recently; no automatic re-drive");
        return Ok(PolicyPass::CohereUnhealthy);
    }
    let settings = &ctx.settings;
    let before = chrono::Utc::now()
        - chrono::Duration::seconds(
            i64::try_from(settings.auto_redrive_after_seconds).unwrap_or(i64::MAX / 1_000),
        );
    let limit =
        u64::from(settings.redrive_per_second) * settings.auto_redrive_interval_seconds.max(1);
    let targets = dead_letters::policy_targets(
        &ctx.db,
        ErrorClass::Transient,
        before,
        settings.auto_redrive_max,
        limit,
    )
    .await?;
    if targets.is_empty() {
        return Ok(PolicyPass::NothingToDo);
    }
    let audit_filter = json!({
        "action": "auto-redrive",
        "filter": {"error_class": "transient", "status": "open"},
        "older_than_seconds": settings.auto_redrive_after_seconds,
        "max_redrives": settings.auto_redrive_max,
        "limit": limit,
    });
    let report = run(
        ctx,
        targets,
        false,
        AUTO_REDRIVE_REQUESTER,
        audit_filter,
        None,
        &mut |_| {},
    )
    .await?;
    Ok(PolicyPass::Redrove(report))
}

/// Runs [`auto_redrive_pass`] every `auto_redrive_interval_seconds` until `stop` turns true.
pub async fn run_policy(ctx: &Redriver, mut stop: tokio::sync::watch::Receiver<bool>) {
    let period = Duration::from_secs(ctx.settings.auto_redrive_interval_seconds.max(1));
    let mut timer = tokio::time::interval(period);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(
        interval_seconds = period.as_secs(),
        after_seconds = ctx.settings.auto_redrive_after_seconds,
        max = ctx.settings.auto_redrive_max,
        "automatic re-drive policy on"
    );
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = timer.tick() => {}
        }
        if *stop.borrow() || ctx.shutdown.is_begun() {
            return;
        }
        match auto_redrive_pass(ctx).await {
            Ok(PolicyPass::Redrove(report)) => tracing::info!(
                matched = report.matched,
                redriven = report.redriven,
                "automatic re-drive"
            ),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "automatic re-drive pass failed"),
        }
    }
}

//! One image analysed for one stage: the image fetched, the request built, and Cohere called
//! behind the circuit breaker and the cluster-wide rate limiter, with in-process retries
//! (DESIGN.md, "Failure handling").

use std::time::{Duration, Instant};

use domain::job::ErrorClass;
use store::work::Change;
use tracing::Instrument;

use crate::{
    answer::stage_result,
    budget,
    context::Context,
    fetch::FetchError,
    guard::Admission,
    plan::{Call, Disposition, requeue},
    request,
};

/// How long every replica waits after a 429 without `Retry-After`.
const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(1);

/// Longest `Retry-After` honoured (a larger one is most likely a mistake upstream).
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// Longest pause between looks while a half-open breaker's probe slots are taken.
const PROBE_WAIT: Duration = Duration::from_millis(200);

/// Fetches the image and asks Cohere; the outcome to write, or how to hand the message back.
/// A cancellation of the job stops it wherever it is, aborting a call in flight. A job whose
/// spend reached its cap gets no new call: the item is skipped ([`budget::check`]).
#[tracing::instrument(skip_all, fields(job_id = %call.message.job_id, item_id = %call.message.item_id, stage_index = call.message.stage_index))]
pub async fn run(ctx: &Context, call: &Call) -> Result<Change, Disposition> {
    if let Some(skip) = budget::check(ctx, call).await? {
        return Ok(skip);
    }
    let job_id = call.message.job_id;
    tokio::select! {
        biased;
        _ = ctx.cancellations.cancelled(job_id) => {
            tracing::debug!("job cancelled: call abandoned");
            ctx.metrics.outcome("cancelled");
            Ok(Change::Cancel { message: call.message })
        }
        outcome = analyse(ctx, call) => outcome,
    }
}

/// [`run`] without the cancellation.
async fn analyse(ctx: &Context, call: &Call) -> Result<Change, Disposition> {
    let stage = call.stage();
    let retry = |reason: String| Disposition::Retry {
        message: call.message,
        reason,
    };
    let fetch_span = tracing::info_span!("image fetch", image.id = %call.image_id);
    let (media_type, bytes) = match ctx.fetcher.fetch(&call.image).instrument(fetch_span).await {
        Ok(found) => found,
        Err(FetchError::Permanent(reason)) => return Ok(call.fail(reason)),
        Err(FetchError::Transient(reason)) => return Err(retry(reason)),
    };
    // Only the serialized body stays alive during the call: the image and its base64 copy
    // are freed here, which is what bounds a worker's memory with many calls in flight.
    let request = request::build(stage, media_type.mime(), &bytes).encode();
    drop(bytes);
    let request = match request {
        Ok(request) => request,
        Err(error) => return Ok(call.fail(format!("cannot encode the request: {error}"))),
    };
    let model = stage.model.as_str();
    let mut backoff = ctx.guard.backoff();
    let mut tries = 0u32;
    loop {
        let permit = match ctx.guard.admit(model) {
            Admission::Go(permit) => permit,
            Admission::Wait(pause) => {
                // A half-open breaker's probe slots are taken: wait for the probe's verdict.
                tokio::time::sleep(pause.min(PROBE_WAIT)).await;
                continue;
            }
            Admission::Open => {
                ctx.metrics.outcome("breaker_open");
                return Err(breaker_open(model));
            }
        };
        // Waiting for the cluster-wide limiter is not an attempt.
        match ctx.guard.pace(model).await {
            Ok(waited) => ctx.metrics.limiter_waited(waited),
            Err(error) => {
                return Err(requeue(
                    Duration::from_secs(2),
                    format!("the rate limiter is unavailable: {error}"),
                ));
            }
        }
        let started = Instant::now();
        let in_flight = crate::metrics::InFlight::start(&ctx.metrics);
        let sent = ctx.cohere.send(&request).await;
        drop(in_flight);
        let error = match sent {
            Ok(response) => {
                permit.success();
                ctx.metrics.outcome("ok");
                ctx.metrics.request("ok", started.elapsed());
                let latency_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
                let filter = call.job.filter(call.message.stage_index);
                let result = stage_result(stage, filter, &response, latency_ms, &ctx.prices);
                ctx.metrics
                    .tokens(result.input_tokens, result.output_tokens);
                ctx.metrics.cost(result.cost_usd);
                return Ok(Change::Record {
                    message: call.message,
                    image_id: call.image_id,
                    result,
                    last_stage: call.job.is_last_stage(call.message.stage_index),
                });
            }
            Err(error) => error,
        };
        let class = error.class();
        tracing::warn!(%error, class = class.as_str(), model, "Cohere call failed");
        ctx.metrics.outcome(class.as_str());
        ctx.metrics.request(class.as_str(), started.elapsed());
        match class {
            ErrorClass::RateLimited => {
                // Every replica backs off; the call is made again once the limiter allows.
                drop(permit);
                let wait = error
                    .retry_after()
                    .unwrap_or(DEFAULT_RATE_LIMIT_WAIT)
                    .min(MAX_RATE_LIMIT_WAIT);
                if let Err(error) = ctx.guard.back_off(model, wait).await {
                    tracing::warn!(%error, "could not share the rate-limit back-off");
                    tokio::time::sleep(wait).await;
                }
            }
            ErrorClass::Transient => {
                permit.failure(error.to_string());
                tries += 1;
                if ctx.guard.is_open(model) {
                    return Err(breaker_open(model));
                }
                match backoff.next() {
                    Some(pause) if tries < ctx.guard.in_process_tries() => {
                        tokio::time::sleep(pause).await;
                    }
                    _ => return Err(retry(error.to_string())),
                }
            }
            ErrorClass::Systemic => {
                permit.systemic(error.to_string());
                return Err(requeue(Duration::ZERO, error.to_string()));
            }
            ErrorClass::Permanent | ErrorClass::Poison => {
                drop(permit);
                return Ok(call.fail(error.to_string()));
            }
        }
    }
}

fn breaker_open(model: &str) -> Disposition {
    requeue(
        Duration::ZERO,
        format!("the circuit breaker for {model} is open"),
    )
}

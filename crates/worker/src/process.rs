//! One stage message, start to finish. [`process`] is the unit tests and the consumer drive:
//! it returns what to do with the delivery once everything it changed is durable.

use std::time::{Duration, Instant};

use broker::Publisher;
use cohere::{
    ChatRequest, ChatResponse, CohereClient, ContentPart, ImageUrl, Message, ResponseFormat,
};
use domain::{
    filter::{StageOutput, parse_json_output},
    job::{ErrorClass, JobStatus},
    message::StageMessage,
    pipeline::StageSpec,
};
use sea_orm::DatabaseConnection;
use store::work::{self, Advance, Outcome, StageResult, Work};

use crate::fetch::{FetchError, Fetcher};

/// Longest wait before a message is handed back after a retryable failure.
const MAX_REQUEUE_DELAY: Duration = Duration::from_secs(10);

/// What the worker's shared parts are.
pub struct Context {
    pub db: DatabaseConnection,
    pub publisher: Publisher,
    pub cohere: CohereClient,
    pub fetcher: Fetcher,
}

/// What to do with a delivery.
#[derive(Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Done (or nothing to do): acknowledge.
    Ack,
    /// Not done, and trying again later may work: hand it back after `after`.
    Requeue { after: Duration, reason: String },
    /// Cannot ever be processed (undecodable): reject to the dead-letter exchange.
    Reject { reason: String },
}

fn requeue(after: Duration, reason: impl Into<String>) -> Disposition {
    Disposition::Requeue {
        after: after.min(MAX_REQUEUE_DELAY),
        reason: reason.into(),
    }
}

/// Processes one delivery body.
#[tracing::instrument(skip_all, fields(job_id, item_id, stage_index))]
pub async fn process(ctx: &Context, body: &[u8]) -> Disposition {
    let message = match StageMessage::decode(body) {
        Ok(message) => message,
        Err(error) => {
            return Disposition::Reject {
                reason: format!("undecodable stage message: {error}"),
            };
        }
    };
    let span = tracing::Span::current();
    span.record("job_id", tracing::field::display(message.job_id));
    span.record("item_id", tracing::field::display(message.item_id));
    span.record("stage_index", message.stage_index);
    match process_message(ctx, &message).await {
        Ok(disposition) => disposition,
        Err(error) => {
            tracing::warn!(%error, "stage not processed; will retry");
            requeue(Duration::from_secs(2), error.to_string())
        }
    }
}

async fn process_message(
    ctx: &Context,
    message: &StageMessage,
) -> Result<Disposition, store::StoreError> {
    let Some(work) = load_committed(ctx, message).await? else {
        // A submission whose commit failed after its messages were confirmed.
        tracing::info!("message names no job or item; dropped");
        return Ok(Disposition::Ack);
    };
    if work.job_status == JobStatus::Cancelled {
        let outcome = work::cancel_item(&ctx.db, &work).await?;
        return Ok(follow(ctx, &work, outcome).await);
    }
    if work.job_status.is_terminal() {
        return Ok(Disposition::Ack);
    }
    let Some(stage) = work
        .snapshot
        .stages
        .get(message.stage_index as usize)
        .cloned()
    else {
        let reason = format!("the pipeline has no stage {}", message.stage_index);
        return fail(ctx, &work, message.stage_index, &reason).await;
    };
    if work.existing_result.is_some() {
        // Redelivered after its result was stored: move on without calling Cohere again.
        let advance = work::resume(&work, message.stage_index)?;
        return Ok(follow(
            ctx,
            &work,
            Outcome {
                advance,
                event: None,
            },
        )
        .await);
    }
    if work.item.status == "pending" {
        work::start(&ctx.db, work.job_id, work.item.id).await?;
    } else if work.item.status != "running" || work.item.current_stage != message.stage_index as i32
    {
        // Terminal already, or a stale message for a stage the item has left.
        return Ok(Disposition::Ack);
    }

    let Some(image) = &work.image else {
        return fail(ctx, &work, message.stage_index, "the image was deleted").await;
    };
    let (media_type, bytes) = match ctx.fetcher.fetch(image).await {
        Ok(found) => found,
        Err(FetchError::Permanent(reason)) => {
            return fail(ctx, &work, message.stage_index, &reason).await;
        }
        Err(FetchError::Transient(reason)) => return Ok(requeue(Duration::from_secs(2), reason)),
    };

    let request = build_request(&stage, media_type.mime(), &bytes);
    let started = Instant::now();
    let response = match ctx.cohere.chat(&request).await {
        Ok(response) => response,
        Err(error) => {
            let class = error.class();
            tracing::warn!(%error, class = class.as_str(), "Cohere call failed");
            return Ok(match class {
                ErrorClass::Permanent | ErrorClass::Poison => {
                    fail(ctx, &work, message.stage_index, &error.to_string()).await?
                }
                ErrorClass::RateLimited => requeue(
                    error.retry_after().unwrap_or(Duration::from_secs(1)),
                    error.to_string(),
                ),
                ErrorClass::Transient => requeue(
                    error.retry_after().unwrap_or(Duration::from_secs(1)),
                    error.to_string(),
                ),
                ErrorClass::Systemic => requeue(MAX_REQUEUE_DELAY, error.to_string()),
            });
        }
    };
    let latency_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
    let result = stage_result(&stage, &response, latency_ms);
    let outcome = work::record(&ctx.db, &work, message.stage_index, &result).await?;
    Ok(follow(ctx, &work, outcome).await)
}

/// How long a message may name a job that is not visible yet. The api commits a submission
/// right after the broker confirmed its messages, so a consuming worker can see a message
/// first; only a submission whose commit failed stays invisible for longer.
const UNCOMMITTED_JOB_WAIT: Duration = Duration::from_secs(10);

/// Loads the message's work, waiting (up to [`UNCOMMITTED_JOB_WAIT`]) for the submission's
/// commit when the job or item is not there yet.
async fn load_committed(
    ctx: &Context,
    message: &StageMessage,
) -> Result<Option<Work>, store::StoreError> {
    let deadline = Instant::now() + UNCOMMITTED_JOB_WAIT;
    let mut pause = Duration::from_millis(20);
    loop {
        if let Some(work) = work::load(&ctx.db, message).await? {
            return Ok(Some(work));
        }
        if Instant::now() + pause > deadline {
            return Ok(None);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// Fails the item permanently with `reason`, then follows up like any outcome.
async fn fail(
    ctx: &Context,
    work: &Work,
    stage_index: u32,
    reason: &str,
) -> Result<Disposition, store::StoreError> {
    tracing::info!(%reason, "item failed");
    let outcome = work::fail(&ctx.db, work, stage_index, ErrorClass::Permanent, reason).await?;
    Ok(follow(ctx, work, outcome).await)
}

/// Publishes the job event and the next stage's message when there is one.
async fn follow(ctx: &Context, work: &Work, outcome: Outcome) -> Disposition {
    if let Some(event) = &outcome.event {
        // Best effort: live views re-read the job from the database when events go missing.
        if let Err(error) = ctx.publisher.publish_event(event).await {
            tracing::warn!(%error, "could not publish a job event");
        }
    }
    match outcome.advance {
        Advance::Next(next) => match ctx
            .publisher
            .publish_stage_messages(&[next], work.priority)
            .await
        {
            Ok(()) => Disposition::Ack,
            // The outcome is stored; the redelivery of this message publishes the next one.
            Err(error) => requeue(
                Duration::from_secs(2),
                format!("publishing the next stage: {error}"),
            ),
        },
        Advance::Finished { item, job_finished } => {
            if let Some(status) = job_finished {
                tracing::info!(job_id = %work.job_id, status = status.as_str(), "job finished");
            }
            tracing::debug!(item = item.as_str(), "item finished");
            Disposition::Ack
        }
        Advance::Nothing => Disposition::Ack,
    }
}

/// The Cohere request for one stage and one image.
pub fn build_request(stage: &StageSpec, media_type: &str, image: &[u8]) -> ChatRequest {
    let mut messages = Vec::with_capacity(2);
    if let Some(system) = &stage.system_prompt {
        messages.push(Message::system(system.clone()));
    }
    messages.push(Message::user(vec![
        ContentPart::text(stage.prompt.clone()),
        ContentPart::image(ImageUrl::data_uri(
            media_type,
            image,
            Some(stage.image_detail.into()),
        )),
    ]));
    let mut request = ChatRequest::new(stage.model.clone(), messages);
    request.temperature = stage.temperature;
    request.max_tokens = stage.max_tokens;
    request.response_format = stage
        .json_schema
        .as_ref()
        .map(|schema| ResponseFormat::JsonObject {
            json_schema: Some(schema.clone()),
        });
    request
}

/// Cohere's name for a finish reason.
fn finish_reason(reason: cohere::FinishReason) -> &'static str {
    use cohere::FinishReason::*;
    match reason {
        Complete => "COMPLETE",
        StopSequence => "STOP_SEQUENCE",
        MaxTokens => "MAX_TOKENS",
        ToolCall => "TOOL_CALL",
        Error => "ERROR",
        Timeout => "TIMEOUT",
        Other => "OTHER",
    }
}

fn tokens(value: Option<f64>) -> i64 {
    value.map_or(0, |v| v.max(0.0).round() as i64)
}

/// The stored form of an answer, with the stage's filter applied.
pub fn stage_result(stage: &StageSpec, response: &ChatResponse, latency_ms: i32) -> StageResult {
    let text = response.text();
    let json = parse_json_output(&text);
    let verdict = stage.filter.as_ref().map(|filter| match filter.compile() {
        Ok(compiled) => compiled.evaluate(&StageOutput {
            text: &text,
            json: json.as_ref(),
        }),
        // Validated at pipeline creation; a snapshot that no longer compiles fails closed.
        Err(error) => {
            domain::filter::FilterVerdict::reject(format!("the stage filter is invalid: {error}"))
        }
    });
    let usage = response.usage.as_ref();
    let billed = usage.and_then(|u| u.billed_units.as_ref());
    let counted = usage.and_then(|u| u.tokens.as_ref());
    StageResult {
        model: stage.model.clone(),
        output_text: text,
        output_json: json,
        passed: verdict.as_ref().is_none_or(|v| v.passed),
        filter_reason: verdict.and_then(|v| v.reason),
        finish_reason: Some(finish_reason(response.finish_reason).to_string()),
        input_tokens: tokens(counted.and_then(|t| t.input_tokens)),
        output_tokens: tokens(counted.and_then(|t| t.output_tokens)),
        billed_input_tokens: tokens(billed.and_then(|b| b.input_tokens)),
        billed_output_tokens: tokens(billed.and_then(|b| b.output_tokens)),
        latency_ms,
    }
}

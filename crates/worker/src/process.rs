//! Stage messages, start to finish, in four steps the consumer pipelines over batches:
//! [`prepare`] decodes a batch and loads what each message finds (one query), [`call`]
//! analyses one image with Cohere, [`write`] stores a batch of outcomes (one transaction) and
//! [`follow`] publishes what the outcomes lead to (next stages, job events). [`process`] runs
//! all four for a single message; tests drive it directly.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use broker::Publisher;
use cohere::{
    ChatRequest, ChatResponse, CohereClient, ContentPart, ImageUrl, Message, ResponseFormat,
};
use domain::{
    filter::{StageOutput, parse_json_output},
    job::{ErrorClass, ItemStatus, JobStatus},
    message::StageMessage,
    pipeline::StageSpec,
};
use sea_orm::DatabaseConnection;
use store::work::{self, Applied, Change, ImageSource, JobHeader, StageResult};
use tracing::Instrument;
use uuid::Uuid;

use crate::{
    cancel::Cancellations,
    fetch::{FetchError, Fetcher},
    guard::{Admission, Guard},
};

/// Longest wait before a message is handed back after a retryable failure.
const MAX_REQUEUE_DELAY: Duration = Duration::from_secs(10);

/// How long every replica waits after a 429 without `Retry-After`.
const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(1);

/// Longest `Retry-After` honoured (a larger one is most likely a mistake upstream).
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// Longest pause between looks while a half-open breaker's probe slots are taken.
const PROBE_WAIT: Duration = Duration::from_millis(200);

/// How long a message may name a job that is not visible yet. The api commits a submission
/// right after the broker confirmed its messages, so a consuming worker can see a message
/// first; only a submission whose commit failed stays invisible for longer.
pub const UNCOMMITTED_JOB_WAIT: Duration = Duration::from_secs(10);

/// What the worker's parts share.
pub struct Context {
    pub db: DatabaseConnection,
    pub publisher: Publisher,
    pub cohere: CohereClient,
    pub fetcher: Fetcher,
    pub jobs: JobCache,
    /// Circuit breakers, the cluster-wide rate limiter and the in-process retry policy.
    pub guard: Guard,
    pub cancellations: Arc<Cancellations>,
    pub metrics: crate::metrics::Metrics,
    /// Deliveries of one stage of one item before a transient failure is dead-lettered.
    pub max_attempts: u32,
}

/// What to do with a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Done (or nothing to do): acknowledge.
    Ack,
    /// Not done, and not its fault (the breaker is open, the key was refused, the database
    /// is unreachable): hand it back after `after`, without counting an attempt.
    Requeue { after: Duration, reason: String },
    /// A transient failure that outlived the in-process tries: one attempt spent. The
    /// consumer puts the message in a delay queue, or, when its attempts are spent, fails the
    /// item and dead-letters the message.
    Retry {
        message: StageMessage,
        reason: String,
    },
    /// Cannot ever be processed (undecodable): dead-letter it as poison, with the reason.
    Poison { reason: String },
}

pub fn requeue(after: Duration, reason: impl Into<String>) -> Disposition {
    Disposition::Requeue {
        after: after.min(MAX_REQUEUE_DELAY),
        reason: reason.into(),
    }
}

/// The job headers (pipeline snapshot, priority) of running jobs: they never change, so each
/// worker reads a job's header once.
#[derive(Default)]
pub struct JobCache {
    headers: Mutex<HashMap<Uuid, Arc<JobHeader>>>,
}

/// Headers kept before the cache starts over (a few hundred bytes to a few KB each).
const JOB_CACHE_CAPACITY: usize = 4096;

impl JobCache {
    /// The headers of `job_ids`, reading the ones not cached from the database.
    pub(crate) async fn get_all(
        &self,
        db: &DatabaseConnection,
        job_ids: impl IntoIterator<Item = Uuid>,
    ) -> Result<HashMap<Uuid, Arc<JobHeader>>, store::StoreError> {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        {
            let cached = self.headers.lock().unwrap_or_else(|e| e.into_inner());
            for id in job_ids {
                match cached.get(&id) {
                    Some(header) => {
                        found.insert(id, header.clone());
                    }
                    None if !missing.contains(&id) => missing.push(id),
                    None => {}
                }
            }
        }
        if !missing.is_empty() {
            let loaded = work::job_headers(db, &missing).await?;
            let mut cached = self.headers.lock().unwrap_or_else(|e| e.into_inner());
            if cached.len() + loaded.len() > JOB_CACHE_CAPACITY {
                cached.clear();
            }
            for header in loaded {
                let header = Arc::new(header);
                cached.insert(header.job_id, header.clone());
                found.insert(header.job_id, header);
            }
        }
        Ok(found)
    }
}

/// What a message needs next.
#[derive(Debug)]
pub enum Step {
    /// Nothing more: settle the delivery.
    Settle(Disposition),
    /// Its job or item is not visible yet (a submission about to commit): try again shortly.
    NotYetVisible,
    /// Analyse the image.
    Call(Box<Call>),
    /// Write this outcome; no call is needed.
    Write(Change),
}

/// One image to analyse for one stage.
#[derive(Debug)]
pub struct Call {
    pub message: StageMessage,
    pub job: Arc<JobHeader>,
    pub image_id: Uuid,
    pub image: ImageSource,
}

impl Call {
    fn stage(&self) -> &StageSpec {
        &self.job.snapshot.stages[self.message.stage_index as usize]
    }

    fn last_stage(&self) -> bool {
        self.message.stage_index as usize + 1 >= self.job.snapshot.stages.len()
    }

    fn fail(&self, reason: String) -> Change {
        tracing::info!(job_id = %self.message.job_id, item_id = %self.message.item_id, %reason, "item failed");
        Change::Fail {
            message: self.message,
            class: ErrorClass::Permanent,
            reason,
        }
    }
}

/// A delivery as [`prepare`] sees it.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    pub body: &'a [u8],
    /// It re-opens a failed item (job retry, re-drive): the item may still read `failed`
    /// until the re-opening transaction commits.
    pub reopened: bool,
}

/// Decodes a batch of deliveries and decides, from one database read, what each needs.
pub async fn prepare(
    ctx: &Context,
    envelopes: &[Envelope<'_>],
) -> Result<Vec<Step>, store::StoreError> {
    let decoded: Vec<_> = envelopes
        .iter()
        .map(|e| StageMessage::decode(e.body))
        .collect();
    let messages: Vec<StageMessage> = decoded.iter().filter_map(|d| d.clone().ok()).collect();
    let mut loaded = work::load(&ctx.db, &messages).await?.into_iter();
    let headers = ctx
        .jobs
        .get_all(&ctx.db, messages.iter().map(|m| m.job_id))
        .await?;
    Ok(decoded
        .into_iter()
        .zip(envelopes)
        .map(|(decoded, envelope)| match decoded {
            Err(error) => Step::Settle(Disposition::Poison {
                reason: format!("undecodable stage message: {error}"),
            }),
            Ok(message) => match (loaded.next().flatten(), headers.get(&message.job_id)) {
                (Some(found), Some(_))
                    if envelope.reopened && found.item_status == ItemStatus::Failed =>
                {
                    // Published before the re-opening commits, like a submission's messages.
                    Step::NotYetVisible
                }
                (Some(found), Some(job)) => decide(message, found, job),
                _ => Step::NotYetVisible,
            },
        })
        .collect())
}

/// What a message needs, given what it found.
fn decide(message: StageMessage, found: work::Loaded, job: &Arc<JobHeader>) -> Step {
    if found.job_status == JobStatus::Cancelled {
        return Step::Write(Change::Cancel { message });
    }
    if found.job_status.is_terminal() || found.item_status.is_terminal() {
        return Step::Settle(Disposition::Ack);
    }
    if found.result_stored {
        // Redelivered after its result was stored: move on without calling Cohere again.
        return Step::Write(Change::Resume { message });
    }
    if found.current_stage != message.stage_index {
        // A stale message for a stage the item has left (or not reached).
        return Step::Settle(Disposition::Ack);
    }
    if job.snapshot.stages.len() <= message.stage_index as usize {
        return Step::Write(Change::Fail {
            message,
            class: ErrorClass::Permanent,
            reason: format!("the pipeline has no stage {}", message.stage_index),
        });
    }
    let Some(image) = found.image else {
        return Step::Write(Change::Fail {
            message,
            class: ErrorClass::Permanent,
            reason: "the image was deleted".into(),
        });
    };
    Step::Call(Box::new(Call {
        message,
        job: job.clone(),
        image_id: found.image_id,
        image,
    }))
}

/// Fetches the image and asks Cohere; the outcome to write, or how to hand the message back.
/// A cancellation of the job stops it wherever it is, aborting a call in flight.
#[tracing::instrument(skip_all, fields(job_id = %call.message.job_id, item_id = %call.message.item_id, stage_index = call.message.stage_index))]
pub async fn call(ctx: &Context, call: &Call) -> Result<Change, Disposition> {
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

/// [`call`] without the cancellation.
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
    let request = build_request(stage, media_type.mime(), &bytes).encode();
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
                let result = stage_result(stage, &response, latency_ms);
                ctx.metrics
                    .tokens(result.input_tokens, result.output_tokens);
                return Ok(Change::Record {
                    message: call.message,
                    image_id: call.image_id,
                    result,
                    last_stage: call.last_stage(),
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

/// Stores a batch of outcomes in one transaction.
pub async fn write(ctx: &Context, changes: &[Change]) -> Result<Applied, store::StoreError> {
    work::apply(&ctx.db, changes).await
}

/// Publishes what a committed batch leads to: the next stages' messages (confirmed before
/// any of the batch is acknowledged) and the job events. Returns each change's disposition.
pub async fn follow(ctx: &Context, applied: &Applied) -> Vec<Disposition> {
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
                        let priority = jobs.get(&m.job_id).map(|j| j.priority);
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

/// Processes one delivery body start to finish (waiting up to [`UNCOMMITTED_JOB_WAIT`] for a
/// submission's commit when its job is not visible yet). What the consumer does with the
/// result on the broker (delay queues, dead letters) is left to the caller: the disposition
/// says it.
pub async fn process(ctx: &Context, body: &[u8]) -> Disposition {
    let deadline = Instant::now() + UNCOMMITTED_JOB_WAIT;
    let mut pause = Duration::from_millis(20);
    let step = loop {
        let envelope = Envelope {
            body,
            reopened: false,
        };
        match prepare(ctx, &[envelope])
            .await
            .map(|mut steps| steps.remove(0))
        {
            Ok(Step::NotYetVisible) if Instant::now() + pause <= deadline => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(500));
            }
            Ok(step) => break step,
            Err(error) => return store_failed(&error),
        }
    };
    let change = match step {
        Step::Settle(disposition) => return disposition,
        Step::NotYetVisible => return dropped_unknown(),
        Step::Write(change) => change,
        Step::Call(work) => match call(ctx, &work)
            .await
            .or_else(|disposition| spend_attempt(ctx, disposition))
        {
            Ok(change) => change,
            Err(disposition) => return disposition,
        },
    };
    match write(ctx, std::slice::from_ref(&change)).await {
        Ok(applied) => follow(ctx, &applied).await.remove(0),
        Err(error) => store_failed(&error),
    }
}

/// A transient failure whose attempts are spent becomes the item's failure (which the
/// consumer dead-letters); anything else stays as it is.
pub fn spend_attempt(ctx: &Context, disposition: Disposition) -> Result<Change, Disposition> {
    match disposition {
        Disposition::Retry { message, reason } if message.attempt + 1 >= ctx.max_attempts => {
            let attempts = message.attempt + 1;
            tracing::info!(job_id = %message.job_id, item_id = %message.item_id, attempts, %reason, "attempts spent; the item fails");
            Ok(Change::Fail {
                message,
                class: ErrorClass::Transient,
                reason: format!("gave up after {attempts} attempts: {reason}"),
            })
        }
        other => Err(other),
    }
}

/// A message whose job never became visible: a submission whose commit failed after its
/// messages were confirmed. Nothing refers to it.
pub fn dropped_unknown() -> Disposition {
    tracing::info!("message names no job or item; dropped");
    Disposition::Ack
}

pub fn store_failed(error: &store::StoreError) -> Disposition {
    tracing::warn!(%error, "stage not processed; will retry");
    requeue(Duration::from_secs(2), error.to_string())
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

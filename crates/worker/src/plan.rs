//! What each delivery needs: [`prepare`] decodes a batch and loads what its messages find (one
//! query); [`decide`] turns what one message found into its next [`Step`]. What becomes of a
//! delivery on the broker is a [`Disposition`].

use std::{sync::Arc, time::Duration};

use domain::{
    job::{ErrorClass, ItemStatus, JobStatus},
    message::StageMessage,
    pipeline::StageSpec,
};
use store::work::{self, Change, ImageSource, Loaded};
use uuid::Uuid;

use crate::{context::Context, jobs::Job};

/// Longest wait before a message is handed back after a retryable failure.
const MAX_REQUEUE_DELAY: Duration = Duration::from_secs(10);

/// How long a message may name a job that is not visible yet. The api commits a submission
/// right after the broker confirmed its messages, so a consuming worker can see a message
/// first; only a submission whose commit failed stays invisible for longer.
pub const UNCOMMITTED_JOB_WAIT: Duration = Duration::from_secs(10);

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

/// Hand the delivery back after `after` (at most [`MAX_REQUEUE_DELAY`]).
pub fn requeue(after: Duration, reason: impl Into<String>) -> Disposition {
    Disposition::Requeue {
        after: after.min(MAX_REQUEUE_DELAY),
        reason: reason.into(),
    }
}

/// The database could not be read or written: hand the delivery back shortly.
pub fn store_failed(error: &store::StoreError) -> Disposition {
    tracing::warn!(%error, "stage not processed; will retry");
    requeue(Duration::from_secs(2), error.to_string())
}

/// A transient failure whose attempts are spent (`max_attempts` deliveries) becomes the item's
/// failure (which the consumer dead-letters); anything else stays as it is.
pub fn spend_attempt(disposition: Disposition, max_attempts: u32) -> Result<Change, Disposition> {
    match disposition {
        Disposition::Retry { message, reason } if message.attempt + 1 >= max_attempts => {
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
    pub job: Arc<Job>,
    pub image_id: Uuid,
    pub image: ImageSource,
}

impl Call {
    /// The stage to run ([`decide`] made sure the pipeline has it).
    pub fn stage(&self) -> &StageSpec {
        &self.job.header.snapshot.stages[self.message.stage_index as usize]
    }

    /// The item fails for good, with `reason`.
    pub fn fail(&self, reason: String) -> Change {
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
    let jobs = ctx
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
            Ok(message) => decide(
                message,
                envelope.reopened,
                loaded.next().flatten(),
                jobs.get(&message.job_id),
            ),
        })
        .collect())
}

/// What a message needs, given what it found: its item's state (`None` when the job or the
/// item is not visible) and its job.
pub fn decide(
    message: StageMessage,
    reopened: bool,
    found: Option<Loaded>,
    job: Option<&Arc<Job>>,
) -> Step {
    let (Some(found), Some(job)) = (found, job) else {
        return Step::NotYetVisible;
    };
    if reopened && found.item_status == ItemStatus::Failed {
        // Published before the re-opening commits, like a submission's messages.
        return Step::NotYetVisible;
    }
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
    if job.stage(message.stage_index).is_none() {
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

#[cfg(test)]
mod tests {
    use domain::{job::Priority, pipeline::PipelineSnapshot};
    use serde_json::json;
    use store::work::JobHeader;

    use super::*;

    fn job(stages: usize) -> Arc<Job> {
        let stages = (0..stages)
            .map(|i| serde_json::from_value(json!({"name": format!("s{i}"), "prompt": "?"})))
            .collect::<Result<_, _>>()
            .expect("stages");
        Arc::new(Job::new(JobHeader {
            job_id: Uuid::now_v7(),
            tenant_id: Uuid::now_v7(),
            priority: Priority::Normal,
            snapshot: PipelineSnapshot {
                pipeline_id: Uuid::now_v7(),
                name: "p".into(),
                version: 1,
                stages,
            },
            capped: false,
        }))
    }

    fn message(job: &Job, stage_index: u32) -> StageMessage {
        StageMessage {
            job_id: job.header.job_id,
            item_id: Uuid::now_v7(),
            stage_index,
            attempt: 0,
        }
    }

    /// An item of a running job, at `stage`, its stage not done yet, with an uploaded image.
    fn found(stage: u32) -> Loaded {
        Loaded {
            job_status: JobStatus::Running,
            item_status: ItemStatus::Running,
            current_stage: stage,
            image_id: Uuid::now_v7(),
            image: Some(ImageSource {
                object_key: Some("images/a".into()),
                url: None,
            }),
            result_stored: false,
        }
    }

    fn failure(step: Step) -> (ErrorClass, String) {
        match step {
            Step::Write(Change::Fail { class, reason, .. }) => (class, reason),
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn a_message_at_its_items_stage_calls_cohere_for_its_image() {
        let job = job(2);
        let message = message(&job, 1);
        let found = found(1);
        let image_id = found.image_id;
        let Step::Call(call) = decide(message, false, Some(found), Some(&job)) else {
            panic!("a call")
        };
        assert_eq!(call.message, message);
        assert_eq!(call.image_id, image_id);
        assert_eq!(call.stage().name, "s1");
        assert_eq!(call.image.object_key.as_deref(), Some("images/a"));
    }

    #[test]
    fn a_message_whose_job_or_item_is_not_visible_waits() {
        let job = job(1);
        let message = message(&job, 0);
        assert!(matches!(
            decide(message, false, None, Some(&job)),
            Step::NotYetVisible
        ));
        assert!(matches!(
            decide(message, false, Some(found(0)), None),
            Step::NotYetVisible
        ));
    }

    #[test]
    fn a_reopening_message_waits_while_its_item_still_reads_failed() {
        let job = job(1);
        let message = message(&job, 0);
        let failed = Loaded {
            item_status: ItemStatus::Failed,
            ..found(0)
        };
        assert!(matches!(
            decide(message, true, Some(failed.clone()), Some(&job)),
            Step::NotYetVisible
        ));
        // Without the re-opening mark, a failed item is finished: nothing to do.
        assert!(matches!(
            decide(message, false, Some(failed), Some(&job)),
            Step::Settle(Disposition::Ack)
        ));
        assert!(matches!(
            decide(message, true, Some(found(0)), Some(&job)),
            Step::Call(_)
        ));
    }

    #[test]
    fn a_cancelled_job_cancels_the_item_without_a_call() {
        let job = job(1);
        let message = message(&job, 0);
        let cancelled = Loaded {
            job_status: JobStatus::Cancelled,
            ..found(0)
        };
        assert!(matches!(
            decide(message, false, Some(cancelled), Some(&job)),
            Step::Write(Change::Cancel { message: m }) if m == message
        ));
    }

    #[test]
    fn a_finished_job_or_item_is_acknowledged() {
        let job = job(1);
        let message = message(&job, 0);
        for found in [
            Loaded {
                job_status: JobStatus::Completed,
                ..found(0)
            },
            Loaded {
                item_status: ItemStatus::Passed,
                result_stored: true,
                ..found(0)
            },
            Loaded {
                item_status: ItemStatus::FilteredOut,
                ..found(0)
            },
        ] {
            assert!(matches!(
                decide(message, false, Some(found), Some(&job)),
                Step::Settle(Disposition::Ack)
            ));
        }
    }

    #[test]
    fn a_redelivery_whose_result_is_stored_resumes_without_a_call() {
        let job = job(2);
        let message = message(&job, 0);
        // The item moved on to the next stage when the result was stored.
        let stored = Loaded {
            result_stored: true,
            current_stage: 1,
            ..found(1)
        };
        assert!(matches!(
            decide(message, false, Some(stored), Some(&job)),
            Step::Write(Change::Resume { message: m }) if m == message
        ));
    }

    #[test]
    fn a_message_for_a_stage_the_item_is_not_at_is_acknowledged() {
        let job = job(3);
        for (at, stage) in [(2, 1), (0, 1)] {
            assert!(matches!(
                decide(message(&job, stage), false, Some(found(at)), Some(&job)),
                Step::Settle(Disposition::Ack)
            ));
        }
    }

    #[test]
    fn a_stage_the_pipeline_lacks_or_a_deleted_image_fails_the_item_for_good() {
        let job = job(1);
        let (class, reason) = failure(decide(message(&job, 1), false, Some(found(1)), Some(&job)));
        assert_eq!(class, ErrorClass::Permanent);
        assert_eq!(reason, "the pipeline has no stage 1");

        let deleted = Loaded {
            image: None,
            ..found(0)
        };
        let (class, reason) = failure(decide(message(&job, 0), false, Some(deleted), Some(&job)));
        assert_eq!(class, ErrorClass::Permanent);
        assert_eq!(reason, "the image was deleted");
    }

    #[test]
    fn a_retry_on_its_last_attempt_fails_the_item_as_transient() {
        let job = job(1);
        let first = message(&job, 0);
        let retry = |attempt| Disposition::Retry {
            message: StageMessage { attempt, ..first },
            reason: "HTTP 503".into(),
        };
        assert_eq!(spend_attempt(retry(1), 3).err(), Some(retry(1)));
        let (class, reason) = match spend_attempt(retry(2), 3) {
            Ok(Change::Fail { class, reason, .. }) => (class, reason),
            other => panic!("expected a failure, got {other:?}"),
        };
        assert_eq!(class, ErrorClass::Transient);
        assert_eq!(reason, "gave up after 3 attempts: HTTP 503");
        let requeued = requeue(Duration::from_secs(60), "breaker open");
        assert_eq!(spend_attempt(requeued.clone(), 1).err(), Some(requeued));
    }

    #[test]
    fn a_requeue_waits_at_most_ten_seconds() {
        assert_eq!(
            requeue(Duration::from_secs(60), "later"),
            Disposition::Requeue {
                after: MAX_REQUEUE_DELAY,
                reason: "later".into()
            }
        );
    }
}

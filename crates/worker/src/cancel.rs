//! Cancellation in flight: which jobs were cancelled, learnt from the `cancel_requested` job
//! events the api publishes, so a worker stops calling Cohere for them within moments.
//!
//! The job's status in the database stays the authority: a message loaded after the cancel
//! commits finds the job `cancelled` and is dropped. This set covers what the database read
//! cannot: calls in flight (aborted), calls waiting for the rate limiter or a probe slot, and
//! messages loaded just before the cancellation.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use broker::Topology;
use domain::event::{JobEvent, JobEventKind};
use futures::StreamExt;
use lapin::Channel;
use tokio::sync::watch;
use uuid::Uuid;

/// How long a cancelled job is remembered (its queued messages are dropped by the database
/// check after that).
const REMEMBER: Duration = Duration::from_secs(3600);

/// The jobs cancelled lately.
pub struct Cancellations {
    jobs: Mutex<HashMap<Uuid, Instant>>,
    /// Bumped on every cancellation, so waiters look again.
    generation: watch::Sender<u64>,
}

impl Default for Cancellations {
    fn default() -> Self {
        Self {
            jobs: Mutex::new(HashMap::new()),
            generation: watch::Sender::new(0),
        }
    }
}

impl Cancellations {
    /// Records that `job` was cancelled and wakes every call waiting on it.
    pub fn cancel(&self, job: Uuid) {
        {
            let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            jobs.retain(|_, at| now.duration_since(*at) < REMEMBER);
            jobs.insert(job, now);
        }
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn is_cancelled(&self, job: Uuid) -> bool {
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&job)
    }

    /// Resolves once `job` is cancelled (at once if it already is).
    pub async fn cancelled(&self, job: Uuid) {
        let mut generation = self.generation.subscribe();
        loop {
            if self.is_cancelled(job) {
                return;
            }
            if generation.changed().await.is_err() {
                // Never: the sender lives as long as `self`.
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Listens for `cancel_requested` events on `channel` until the channel fails. The queue is
/// exclusive to this connection and goes away with it.
pub async fn listen(
    channel: Channel,
    topology: &Topology,
    cancellations: &Cancellations,
) -> Result<(), lapin::Error> {
    let mut deliveries = topology
        .subscribe_to_events(&channel, "job.*.cancel_requested")
        .await?;
    while let Some(delivery) = deliveries.next().await {
        let delivery = delivery?;
        if let Some(event) = JobEvent::decode(&delivery.data)
            && matches!(event.kind, JobEventKind::CancelRequested)
        {
            tracing::info!(job_id = %event.job_id, "job cancelled: stopping its calls");
            cancellations.cancel(event.job_id);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiter_wakes_when_its_job_is_cancelled_and_not_for_another() {
        let cancellations = std::sync::Arc::new(Cancellations::default());
        let job = Uuid::new_v4();
        let waiter = tokio::spawn({
            let cancellations = cancellations.clone();
            async move { cancellations.cancelled(job).await }
        });
        cancellations.cancel(Uuid::new_v4());
        tokio::task::yield_now().await;
        assert!(
            !waiter.is_finished(),
            "another job's cancel does not wake it"
        );
        assert!(!cancellations.is_cancelled(job));
        cancellations.cancel(job);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .expect("joined");
        assert!(cancellations.is_cancelled(job));
    }
}
